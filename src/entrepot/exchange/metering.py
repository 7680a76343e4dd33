"""Metering: monthly usage and invoices, computed from the ledger and nothing else.

Every successful use of data — an aggregate query, a private join, a release made,
each read of a release over Delta Sharing (these spend no ε, or ε for a synthetic
release, but are reserved and completed like the others, under the action
``release-download``, so their count and price go through the same rows) — is a
``completed`` ledger row carrying
its ε, rows scanned and price, fixed from the grant's terms when it was reserved.
A month's usage is those rows grouped by grant and action; totals are sums of them, so
an invoice always equals the sum of its ledger rows, by construction. A use that failed
after touching data is completed too: it spent its ε, is billed like any other, and
its log entry (outcome ``failed``) tells it apart, so every ε spent has its usage line.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from entrepot.db import Database
from entrepot.errors import Forbidden, InvalidInput, NotFound, param
from entrepot.exchange._account_tables import organizations
from entrepot.exchange.actors import Actor
from entrepot.privacy._ledger_tables import COMPLETED, budgets, from_nano, ledger_entries
from entrepot.roles import Role
from entrepot.settings import Settings
from entrepot.vault.tables import datasets, providers

__all__ = ["CSV_COLUMNS", "MONTH_PATTERN", "Invoice", "InvoiceLine", "Metering", "month_bounds"]

# A month of an invoice: 1970 to 2999.
MONTH_PATTERN = r"(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])"
_MONTH = re.compile(MONTH_PATTERN)
CSV_COLUMNS = (
    "grant",
    "consumer",
    "provider",
    "dataset",
    "action",
    "uses",
    "epsilon",
    "rows_scanned",
    "amount",
    "currency",
)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``2026-11`` as the half-open UTC interval [2026-11-01, 2026-12-01)."""
    found = _MONTH.fullmatch(month.strip())
    if found is None:
        raise InvalidInput(
            f"{month!r} is not a month from 1970 to 2999",
            hint=f"write it as YYYY-MM, e.g. {param('month')} 2026-11",
        )
    year, number = int(found.group(1)), int(found.group(2))
    start = datetime(year, number, 1)
    end = datetime(year + number // 12, number % 12 + 1, 1)
    return start, end


@dataclass(frozen=True)
class InvoiceLine:
    grant: str
    consumer: str
    provider: str
    dataset: str
    action: str
    uses: int
    epsilon_nano: int
    # None on a consumer's invoice: the rows a query scanned are its version's exact
    # row count, which only the provider and operators may see (docs/privacy.md).
    rows_scanned: int | None
    amount_cents: int

    @property
    def epsilon(self) -> float:
        return from_nano(self.epsilon_nano)

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_cents) / 100


@dataclass(frozen=True)
class Invoice:
    """One party's usage in one month: what a consumer owes, or what a provider earns."""

    party: str
    role: str
    month: str
    currency: str
    lines: tuple[InvoiceLine, ...]
    rows_shown: bool = True  # False on a consumer's invoice, see InvoiceLine.rows_scanned

    @property
    def uses(self) -> int:
        return sum(line.uses for line in self.lines)

    @property
    def epsilon(self) -> float:
        return from_nano(sum(line.epsilon_nano for line in self.lines))

    @property
    def rows_scanned(self) -> int | None:
        if not self.rows_shown:
            return None
        return sum(line.rows_scanned or 0 for line in self.lines)

    @property
    def amount(self) -> Decimal:
        return Decimal(sum(line.amount_cents for line in self.lines)) / 100

    def to_dict(self) -> dict[str, Any]:
        """The invoice as the API's ``InvoiceOut`` answers it, key order included: the
        local client answers with it without building the model (a test pins the two
        equal)."""
        return {
            "party": self.party,
            "role": self.role,
            "month": self.month,
            "currency": self.currency,
            "lines": [
                {
                    "grant": line.grant,
                    "consumer": line.consumer,
                    "provider": line.provider,
                    "dataset": line.dataset,
                    "action": line.action,
                    "uses": line.uses,
                    "epsilon": line.epsilon,
                    "rows_scanned": line.rows_scanned,
                    "amount": f"{line.amount:.2f}",
                }
                for line in self.lines
            ],
            "total": {
                "uses": self.uses,
                "epsilon": self.epsilon,
                "rows_scanned": self.rows_scanned,
                "amount": f"{self.amount:.2f}",
            },
        }

    def to_csv(self) -> str:
        """One row per line, then a ``total`` row; amounts with two decimals."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for line in self.lines:
            writer.writerow(
                [
                    line.grant,
                    line.consumer,
                    line.provider,
                    line.dataset,
                    line.action,
                    line.uses,
                    repr(line.epsilon),
                    "" if line.rows_scanned is None else line.rows_scanned,
                    f"{line.amount:.2f}",
                    self.currency,
                ]
            )
        writer.writerow(
            [
                "total",
                "",
                "",
                "",
                "",
                self.uses,
                repr(self.epsilon),
                "" if self.rows_scanned is None else self.rows_scanned,
                f"{self.amount:.2f}",
                self.currency,
            ]
        )
        return out.getvalue()


class Metering:
    """Monthly usage and invoices of one node."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def invoice(self, actor: Actor, month: str, party: str | None = None) -> Invoice:
        """The month's invoice of ``party`` (default: the actor's own organization).

        A consumer gets what it owes, a provider what its datasets earned. Only
        administrators may ask for another organization's.
        """
        start, end = month_bounds(month)
        slug = party or actor.org_slug
        if not slug:
            raise InvalidInput(
                "whose usage? the local CLI acts for no organization",
                hint=f"name one with {param('as')} ORG",
            )
        org_table = organizations.c
        with self.db.connect() as connection:
            org = connection.execute(
                select(org_table.id, org_table.slug, org_table.kind, org_table.provider_id).where(
                    org_table.slug == slug
                )
            ).first()
            if org is None or not (actor.administers or org.id == actor.org_id):
                raise NotFound(
                    f"no organization {slug!r} whose usage you may see",
                    hint="ask for your own organization's usage",
                )
            if org.kind not in (Role.CONSUMER, Role.PROVIDER):
                raise Forbidden(
                    f"{slug} is an {org.kind}: only consumers and providers have usage",
                    hint="ask for a consumer's or a provider's usage",
                )
            entry, consumer = ledger_entries.c, organizations.alias("consumer")
            query = (
                select(
                    budgets.c.grant_id,
                    consumer.c.slug,
                    providers.c.slug,
                    datasets.c.slug,
                    entry.action,
                    func.count(),
                    func.sum(entry.epsilon_nano),
                    func.sum(func.coalesce(entry.rows_scanned, 0)),
                    func.sum(entry.price_cents),
                )
                .join_from(ledger_entries, budgets, budgets.c.id == entry.budget_id)
                .join(consumer, consumer.c.id == entry.consumer_id)
                .join(datasets, datasets.c.id == entry.dataset_id)
                .join(providers, providers.c.id == datasets.c.provider_id)
                .where(
                    entry.state == COMPLETED,
                    entry.finished_at >= start,
                    entry.finished_at < end,
                )
                .group_by(
                    budgets.c.grant_id,
                    consumer.c.slug,
                    providers.c.slug,
                    datasets.c.slug,
                    entry.action,
                )
                .order_by(budgets.c.grant_id, entry.action)
            )
            figures = org.kind == Role.PROVIDER or actor.administers
            if org.kind == Role.CONSUMER:
                query = query.where(entry.consumer_id == org.id)
            else:
                query = query.where(datasets.c.provider_id == org.provider_id)
            lines = tuple(
                InvoiceLine(
                    grant=f"GRANT-{row[0]}",
                    consumer=row[1],
                    provider=row[2],
                    dataset=f"{row[2]}/{row[3]}",
                    action=row[4],
                    uses=int(row[5]),
                    epsilon_nano=int(row[6]),
                    rows_scanned=int(row[7]) if figures else None,
                    amount_cents=int(row[8]),
                )
                for row in connection.execute(query)
            )
        return Invoice(org.slug, org.kind, month, self.settings.currency, lines, figures)
