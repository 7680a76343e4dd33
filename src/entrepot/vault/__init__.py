"""A provider's vault: immutable dataset versions in Parquet, quarantine, local execution.

The exchange reaches a provider's data only through the :class:`Vault` protocol;
:class:`LocalVault` keeps it in the node's own home.
"""

from typing import TYPE_CHECKING

from entrepot._lazy import lazy

if TYPE_CHECKING:
    from entrepot.vault.local import AttachedView, LocalVault
    from entrepot.vault.protocol import (
        Aggregate,
        Aggregated,
        Blind,
        Blinded,
        MakeRelease,
        OnError,
        Operation,
        OperationKind,
        Outcome,
        Progress,
        Published,
        PublishRequest,
        Reblind,
        Reblinded,
        Recipe,
        Released,
        Touched,
        UnitBound,
        Vault,
        VersionInfo,
    )
    from entrepot.vault.providers import ProviderInfo, add_provider, list_providers
    from entrepot.vault.refs import DatasetRef, dataset_slug_from_title, slugify

__all__ = [
    "Aggregate",
    "Aggregated",
    "AttachedView",
    "Blind",
    "Blinded",
    "DatasetRef",
    "LocalVault",
    "MakeRelease",
    "OnError",
    "Operation",
    "OperationKind",
    "Outcome",
    "Progress",
    "ProviderInfo",
    "PublishRequest",
    "Published",
    "Reblind",
    "Reblinded",
    "Recipe",
    "Released",
    "Touched",
    "UnitBound",
    "Vault",
    "VersionInfo",
    "add_provider",
    "dataset_slug_from_title",
    "list_providers",
    "slugify",
]

# Each name loads with its module: the local vault PyArrow and the engine, the protocol
# its many shapes, the providers the ORM; a node that only sweeps its files needs none.
_MODULES = {
    "AttachedView": "local",
    "LocalVault": "local",
    "ProviderInfo": "providers",
    "add_provider": "providers",
    "list_providers": "providers",
    "DatasetRef": "refs",
    "dataset_slug_from_title": "refs",
    "slugify": "refs",
}
__getattr__ = lazy(
    __name__,
    {name: f"entrepot.vault.{_MODULES.get(name, 'protocol')}" for name in __all__},
)
