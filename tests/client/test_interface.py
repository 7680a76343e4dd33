"""Both clients implement the one interface, operation for operation."""

from __future__ import annotations

import inspect

import pytest

from entrepot.client import Client, HttpClient, LocalClient, Standards


def _operations() -> list[str]:
    return sorted(
        name
        for protocol in (Client, Standards)
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    )


def _parameters(function: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", _operations())
@pytest.mark.parametrize("implementation", [HttpClient, LocalClient])
def test_every_operation_takes_the_same_arguments_in_both_clients(
    implementation: type, name: str
) -> None:
    declared = getattr(Client, name)
    own = _parameters(getattr(implementation, name))
    # An implementation may take more (the API's own options), after the shared ones.
    assert own[: len(_parameters(declared))] == _parameters(declared)
    assert all(p[2] is not inspect.Parameter.empty for p in own[len(_parameters(declared)) :])


def test_the_client_package_names_its_public_surface() -> None:
    import entrepot.client

    assert sorted(entrepot.client.__all__) == [
        "Client",
        "HttpClient",
        "LocalClient",
        "Remote",
        "Standards",
        "current",
        "forget",
        "load_remote",
        "require",
        "save_remote",
    ]
    for name in entrepot.client.__all__:
        assert getattr(entrepot.client, name) is not None
