"""Where each dataset's analysis policy is kept, and who may change it.

A provider sets a policy per dataset (YAML, see :mod:`entrepot.privacy.policy`); a
dataset without one is governed by the default its standard's roles imply. Setting a
policy also sets the dataset's global ε and δ caps in the ledger, and is logged publicly. A
Gaussian policy's δ is checked against the current version's row count here, and a
new version's against the policy in force when it is published
(:func:`~entrepot.exchange.catalog.publish_version`): both on the provider's side, as
N is not public, so no consumer's query is ever refused because of it.

Who changes what a provider decided for its dataset, its policy here and its releases
(:meth:`~entrepot.exchange.release.Releases.revoke`), is one rule:
:func:`require_provider`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from entrepot.clock import rfc3339, utcnow
from entrepot.errors import Forbidden
from entrepot.exchange._policy_tables import policies
from entrepot.roles import Role
from entrepot.vault.datasets import dataset_not_found
from entrepot.vault.refs import DatasetRef
from entrepot.vault.tables import datasets, providers, versions

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

    from entrepot.exchange.actors import Actor
    from entrepot.exchange.node import Node
    from entrepot.privacy import Policy
    from entrepot.standards.schema import Standard

__all__ = ["Policies", "PolicyInfo", "require_provider"]


@dataclass(frozen=True)
class PolicyInfo:
    dataset: str
    policy: Policy
    explicit: bool  # False: the default the standard's roles imply
    set_by: str | None = None
    set_at: datetime | None = None
    # The rows-per-unit bound queries on the latest version use, where it comes from,
    # and that version's estimate's number and ε (None without a version).
    bound: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "explicit": self.explicit,
            "digest": self.policy.digest,
            "set_by": self.set_by,
            "set_at": self.set_at.isoformat() if self.set_at else None,
            "policy": self.policy.to_dict(),
            "bound": self.bound,
        }

    def to_body(self) -> dict[str, Any]:
        """The policy as the API's ``PolicyOut`` answers it: :meth:`to_dict` with its time
        in RFC 3339's ``Z`` form. The local client answers with it without building the
        model; tests pin it equal to the model's dump."""
        out = self.to_dict()
        if self.set_at is not None:
            out["set_at"] = rfc3339(self.set_at)
        return out


def _bound(policy: Policy, latest: Row[Any, Any, Any, Any] | None) -> dict[str, Any] | None:
    """What :func:`~entrepot.privacy.bounds.bound_in_force` gives on ``latest``, a row of
    the version's number, ``unit_bound``, ``unit_level`` and ``bound_epsilon_nano``."""
    from entrepot.privacy.bounds import bound_in_force

    if latest is None:
        return None
    bound = bound_in_force(policy, latest.unit_bound)
    return {
        **bound.to_dict(),
        "version": latest.number,
        "estimate": latest.unit_bound,
        "estimate_level": latest.unit_level,
        "estimate_epsilon": latest.bound_epsilon_nano / 10**9,
    }


def _dataset(connection: Connection, ref: DatasetRef) -> tuple[int, int, Standard]:
    """The dataset's id, its provider's id, and the standard it was published in."""
    from entrepot.standards.schema import parse_standard

    table = datasets.c
    found = connection.execute(
        select(table.id, table.provider_id, table.schema, table.standard)
        .join(providers, providers.c.id == table.provider_id)
        .where(providers.c.slug == ref.provider, table.slug == ref.dataset)
    ).first()
    if found is None:
        raise dataset_not_found(ref)
    dataset_id, provider_id, schema, standard = found
    return dataset_id, provider_id, parse_standard(schema, standard)


def require_provider(actor: Actor, ref: DatasetRef, provider_id: int, change: str) -> None:
    """Refuse ``actor`` the ``change`` of dataset ``ref`` (of provider ``provider_id``)
    unless the dataset's provider decides it.

    The provider's organization decides (any of its accounts, or ``--as`` it on the
    node's home), and so does the holder of the node's home, who holds the dataset's
    files and the node's keys already: the rule of grants,
    :func:`~entrepot.exchange._contract_models.decides`. An operator's account runs
    the node, not the provider's data: it is refused by name, so that no provider's
    rules change behind its back. Any other account gets the 404 of a dataset that
    does not exist.
    """
    from entrepot.exchange._contract_models import decides

    if decides(actor, provider_id):
        return
    if actor.role == Role.OPERATOR:
        raise Forbidden(
            f"only {ref.provider}, the provider of {ref}, may {change}",
            hint=f"ask {ref.provider}; to stop a consumer's use of the dataset at once, "
            "revoke its grant",
            rule="provider_decides",
            role=actor.role,
        )
    raise dataset_not_found(ref)


class Policies:
    """Read and set dataset policies on one node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def get(self, dataset: DatasetRef | str) -> PolicyInfo:
        """The policy in force: the provider's, or the default of the standard's roles."""
        from entrepot.privacy import default_policy, parse_policy

        ref = DatasetRef.parse(dataset) if isinstance(dataset, str) else dataset
        version = versions.c
        with self.node.db.connect() as connection:
            dataset_id, _, standard = _dataset(connection, ref)
            record = connection.execute(
                select(policies.c.document, policies.c.set_by, policies.c.set_at).where(
                    policies.c.dataset_id == dataset_id
                )
            ).first()
            latest = connection.execute(
                select(
                    version.number,
                    version.unit_bound,
                    version.unit_level,
                    version.bound_epsilon_nano,
                )
                .where(version.dataset_id == dataset_id)
                .order_by(version.number.desc())
                .limit(1)
            ).first()
        if record is None:
            policy = default_policy(standard)
            return PolicyInfo(str(ref), policy, explicit=False, bound=_bound(policy, latest))
        import yaml

        policy = parse_policy(yaml.safe_load(record.document), standard, where=f"policy of {ref}")
        return PolicyInfo(
            str(ref), policy, True, record.set_by, record.set_at, _bound(policy, latest)
        )

    def set(self, actor: Actor, dataset: DatasetRef | str, text: str, *, where: str) -> PolicyInfo:
        """Set ``dataset``'s policy from YAML ``text`` (``where`` names its source)."""
        from entrepot.exchange._policy_models import PolicyRecord
        from entrepot.privacy import parse_policy
        from entrepot.privacy.ledger import write_cap
        from entrepot.privacy.policy import check_delta, dataset_delta_cap
        from entrepot.transparency import Kind, make_entry

        ref = DatasetRef.parse(dataset) if isinstance(dataset, str) else dataset
        with self.node.db.connect() as connection:
            dataset_id, provider_id, standard = _dataset(connection, ref)
        require_provider(actor, ref, provider_id, "set its policy")
        policy = parse_policy(text, standard, where=where)
        from entrepot.vault import LocalVault

        versions = LocalVault.of(self.node).versions(ref)
        rows = versions[-1].rows if versions else 0
        if versions:
            check_delta(policy, rows, dataset=str(ref))
        now = utcnow()
        # The policy, its cap and its log entry stand or fall together: a cap the ε
        # already spent refuses leaves the policy in force unchanged.
        with self.node.db.write() as session:
            record = session.scalar(
                select(PolicyRecord).where(PolicyRecord.dataset_id == dataset_id)
            )
            if record is None:
                record = PolicyRecord(dataset_id=dataset_id)
                session.add(record)
            record.document = policy.to_yaml()
            record.digest = policy.digest
            record.set_by = actor.name
            record.set_at = now
            self.node.outbox.stage(
                session,
                make_entry(
                    Kind.POLICY,
                    actor.name,
                    dataset=str(ref),
                    digest=policy.digest,
                    epsilon_cap=str(policy.dataset_epsilon_cap),
                    max_epsilon_per_query=str(policy.max_epsilon_per_query),
                ),
            )
            write_cap(
                session,
                dataset_id,
                policy.dataset_epsilon_cap,
                delta=dataset_delta_cap(policy, rows),
                actor=actor.name,
                now=now,
            )
        self.node.outbox.flush()
        return self.get(ref)
