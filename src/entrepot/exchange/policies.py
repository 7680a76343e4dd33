"""Where each dataset's analysis policy is kept, and who may change it.

A provider sets a policy per dataset (YAML, see :mod:`entrepot.privacy.policy`); a
dataset without one is governed by the default its standard's roles imply. Setting a
policy also sets the dataset's global ε and δ caps in the ledger, and is logged publicly. A
Gaussian policy's δ is checked against the current version's row count here, and a
new version's against the policy in force when it is published
(:func:`~entrepot.exchange.catalog.publish_version`): both on the provider's side, as
N is not public, so no consumer's query is ever refused because of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from entrepot.clock import utcnow
from entrepot.db import Base
from entrepot.exchange.accounts import Actor
from entrepot.exchange.node import Node
from entrepot.privacy import Policy, default_policy, parse_policy
from entrepot.privacy.bounds import bound_in_force
from entrepot.privacy.ledger import write_cap
from entrepot.privacy.policy import check_delta, dataset_delta_cap
from entrepot.standards.schema import Standard, parse_standard
from entrepot.transparency import Kind, make_entry
from entrepot.vault import DatasetRef
from entrepot.vault.datasets import dataset_not_found, find_dataset
from entrepot.vault.models import Version

__all__ = ["Policies", "PolicyInfo", "PolicyRecord"]


class PolicyRecord(Base):
    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), unique=True)
    document: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(DateTime)


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


def _bound(policy: Policy, latest: Version | None) -> dict[str, Any] | None:
    """What :func:`~entrepot.privacy.bounds.bound_in_force` gives on ``latest``."""
    if latest is None:
        return None
    bound = bound_in_force(policy, latest.unit_bound)
    return {
        **bound.to_dict(),
        "version": latest.number,
        "estimate": latest.unit_bound,
        "estimate_epsilon": latest.bound_epsilon_nano / 10**9,
    }


def _dataset(node: Node, ref: DatasetRef) -> tuple[int, int, Standard]:
    """The dataset's id, its provider's id, and the standard it was published in."""
    with node.db.read() as session:
        dataset = find_dataset(session, ref)
        return dataset.id, dataset.provider_id, parse_standard(dataset.schema, dataset.standard)


class Policies:
    """Read and set dataset policies on one node."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def get(self, dataset: DatasetRef | str) -> PolicyInfo:
        """The policy in force: the provider's, or the default of the standard's roles."""
        ref = DatasetRef.parse(dataset) if isinstance(dataset, str) else dataset
        with self.node.db.read() as session:
            row = find_dataset(session, ref)
            standard = parse_standard(row.schema, row.standard)
            record = session.scalar(select(PolicyRecord).where(PolicyRecord.dataset_id == row.id))
            latest = session.scalar(
                select(Version).where(Version.dataset_id == row.id).order_by(Version.number.desc())
            )
        if record is None:
            policy = default_policy(standard)
            return PolicyInfo(str(ref), policy, explicit=False, bound=_bound(policy, latest))
        policy = parse_policy(yaml.safe_load(record.document), standard, where=f"policy of {ref}")
        return PolicyInfo(
            str(ref), policy, True, record.set_by, record.set_at, _bound(policy, latest)
        )

    def set(self, actor: Actor, dataset: DatasetRef | str, text: str, *, where: str) -> PolicyInfo:
        """Set ``dataset``'s policy from YAML ``text`` (``where`` names its source)."""
        ref = DatasetRef.parse(dataset) if isinstance(dataset, str) else dataset
        dataset_id, provider_id, standard = _dataset(self.node, ref)
        if not (actor.administers or actor.provider_id == provider_id):
            raise dataset_not_found(ref)
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
