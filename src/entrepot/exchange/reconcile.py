"""The database against the log: every recorded change has its entry, and no more.

What a node's database holds and what its transparency log states must agree:

- every published version, every grant's change (granted, revoked, expired),
  every account created, token issued or revoked, and every policy in force has
  its log entry; and every such entry names something the database holds (an
  account by its ``ACCOUNT-<n>`` reference, or by its name in an entry written
  before accounts had references);
- every entry that issues a token names an API token node.db holds, with the scope
  it holds (an entry written before tokens had scopes states none: its token is
  ``full``);
- every ledger row that spent ε (``touched`` or ``completed``) has exactly one
  ``query`` (or ``join``, ``release``, ``download``) entry with outcome ``answered``
  or ``failed`` naming its reservation,
  and is one use on its grant's usage (metering): the ledger ⇔ log ⇔ usage
  invariant. An ``answered`` or ``failed`` entry names a spent ledger row;
- no committed change still owes the log its entry (the outbox is empty);
- the log is no shorter, and its heads no fewer, than node.db last saw them
  (:func:`~entrepot.exchange.outbox.log_state_problems`).

Each disagreement is a :class:`Difference` naming what and where. What this cannot
see: a log and a database rewritten together, consistently (only a head saved by
someone else, or a witness, shows that), and entries that state nothing the
database keeps (refusals, repeated answers, peers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from entrepot.db import Database
from entrepot.errors import ProofInvalid
from entrepot.exchange._contract_models import ContractEvent
from entrepot.exchange._policy_models import PolicyRecord
from entrepot.exchange.accounts import (
    LOCAL,
    Account,
    ApiToken,
    Organization,
    Scope,
    account_ref,
    token_ref,
)
from entrepot.exchange.metering import Metering
from entrepot.exchange.outbox import log_state_problems, pending_entries
from entrepot.privacy._ledger_tables import TOUCHED
from entrepot.privacy.ledger import COMPLETED, Budget, LedgerEntry
from entrepot.transparency import TransparencyLog
from entrepot.vault.models import Dataset, Provider, Version

__all__ = ["WITNESS_NOTE", "Difference", "Reconciliation", "reconcile"]

# Said with every verification: what no check on one node's files can establish.
WITNESS_NOTE = (
    "entries after the last signed head are vouched for by node.db alone; a log and a "
    "node.db rewritten together show only against a head saved elsewhere "
    "(audit verify --from-head) or held by a witness"
)
# Differences named in an error's message; all of them are in its details.
_NAMED = 5

# Account changes that issue a token, naming it and its scope.
_ISSUING = ("created", "token_issued")
# Grant changes the log states; a request's own events stay in the contract's history.
_GRANT_CHANGES = ("granted", "revoked", "expired")
# Outcomes of a query that spent ε (a repeat spends none, a refusal touches nothing).
_SPENT_OUTCOMES = ("answered", "failed")
_SPENT = (TOUCHED, COMPLETED)
# Entries of operations the coordinator runs, each naming the reservation it spent.
_SPENDING_KINDS = ("query", "join", "release", "download")


@dataclass(frozen=True)
class Difference:
    """One disagreement: ``what`` it is about, which ``subject``, and the ``problem``."""

    what: str
    subject: str
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "subject": self.subject, "problem": self.problem}

    def __str__(self) -> str:
        return f"{self.what} {self.subject}: {self.problem}"


@dataclass
class Reconciliation:
    """How many records of each kind were compared, and every difference found."""

    checked: Counter[str] = field(default_factory=Counter)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def add(self, what: str, subject: str, problem: str) -> None:
        self.differences.append(Difference(what, subject, problem))

    def raise_for_differences(self) -> None:
        """ProofInvalid naming the differences (all of them in ``differences``), if any."""
        if self.ok:
            return
        named = "; ".join(str(d) for d in self.differences[:_NAMED])
        more = len(self.differences) - _NAMED
        raise ProofInvalid(
            f"node.db and the log disagree in {len(self.differences)} places: {named}"
            + (f"; and {more} more" if more > 0 else ""),
            hint="a change without its entry, or an entry without its change: the log was "
            "altered, truncated or replaced, or a writer died between its commit and its "
            "entry (opening the node appends entries still owed)",
            part="database",
            differences=[d.to_json() for d in self.differences],
        )

    @classmethod
    def from_json(cls, body: Any) -> Reconciliation:
        """A reconciliation as :meth:`to_json` wrote it (e.g. a server's answer)."""
        try:
            return cls(
                Counter({str(k): int(v) for k, v in body["checked"].items()}),
                [Difference(d["what"], d["subject"], d["problem"]) for d in body["differences"]],
            )
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ProofInvalid(
                f"the reconciliation is malformed ({error!r})",
                hint="the server is not an entrepot node of this version",
                part="database",
            ) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": dict(sorted(self.checked.items())),
            "differences": [d.to_json() for d in self.differences],
        }


@dataclass
class _Stated:
    """What the log states, by the keys the database is compared on."""

    versions: Counter[tuple[str, int]] = field(default_factory=Counter)
    grants: Counter[tuple[str, str]] = field(default_factory=Counter)
    accounts: Counter[tuple[str, str]] = field(default_factory=Counter)
    scopes: set[tuple[str, str]] = field(default_factory=set)
    policies: set[tuple[str, str]] = field(default_factory=set)
    spent: Counter[int] = field(default_factory=Counter)
    unlinked: list[int] = field(default_factory=list)


def _read(entries: Iterable[tuple[int, Any]]) -> _Stated:
    stated = _Stated()
    for index, entry in entries:
        kind = entry.get("kind")
        if kind == "dataset_version":
            stated.versions[(str(entry.get("dataset")), int(entry.get("version", -1)))] += 1
        elif kind == "grant":
            stated.grants[(str(entry.get("grant")), str(entry.get("change")))] += 1
        elif kind == "account":
            change, token = str(entry.get("change")), entry.get("token")
            stated.accounts[(str(entry.get("account")), change)] += 1
            if change in _ISSUING and token is not None:
                # Entries written before tokens had scopes state none: those are full.
                stated.scopes.add((str(token), str(entry.get("scope", Scope.FULL.value))))
        elif kind == "policy":
            stated.policies.add((str(entry.get("dataset")), str(entry.get("digest"))))
        elif kind in _SPENDING_KINDS and entry.get("outcome") in _SPENT_OUTCOMES:
            reservation = entry.get("reservation")
            if isinstance(reservation, int):
                # An operation over several datasets (a join) names each row it spent.
                debits = entry.get("debits") or [reservation]
                for row in debits if isinstance(debits, list) else [reservation]:
                    stated.spent[row] += 1
            else:
                stated.unlinked.append(index)
    return stated


def reconcile(db: Database, log: TransparencyLog, metering: Metering) -> Reconciliation:
    """Compare node.db with ``log`` (read from the start); see the module docstring.

    ``metering`` bills the uses that the ledger's spent rows are compared with.
    """
    result = Reconciliation()
    for problem in log_state_problems(db, log):
        result.add("log", "size and heads", problem)
    for data in pending_entries(db):
        result.add("outbox", data.decode("utf-8"), "committed, but not yet in the log")
    stated = _read(log.entries())
    _versions(db, stated, result)
    _grants(db, stated, result)
    _accounts(db, stated, result)
    _policies(db, stated, result)
    _ledger(db, stated, result, metering)
    return result


def _versions(db: Database, stated: _Stated, result: Reconciliation) -> None:
    with db.read() as session:
        held = {
            (f"{provider}/{dataset}", number)
            for provider, dataset, number in session.execute(
                select(Provider.slug, Dataset.slug, Version.number)
                .join(Dataset, Dataset.id == Version.dataset_id)
                .join(Provider, Provider.id == Dataset.provider_id)
            )
        }
    result.checked["versions"] = len(held)
    for ref, number in sorted(held - set(stated.versions)):
        result.add("dataset_version", f"{ref} v{number}", "published, but the log has no entry")
    for ref, number in sorted(set(stated.versions) - held):
        result.add("dataset_version", f"{ref} v{number}", "logged, but node.db has no such version")


def _grants(db: Database, stated: _Stated, result: Reconciliation) -> None:
    with db.read() as session:
        held = {
            (f"GRANT-{grant_id}", change)
            for grant_id, change in session.execute(
                select(ContractEvent.grant_id, ContractEvent.to_state).where(
                    ContractEvent.grant_id.is_not(None),
                    ContractEvent.to_state.in_(_GRANT_CHANGES),
                )
            )
        }
    result.checked["grant changes"] = len(held)
    for ref, change in sorted(held - set(stated.grants)):
        result.add("grant", ref, f"{change} in node.db, but the log has no entry")
    for ref, change in sorted(set(stated.grants) - held):
        result.add("grant", ref, f"logged as {change}, but node.db records no such change")


def _accounts(db: Database, stated: _Stated, result: Reconciliation) -> None:
    # A portal session's token is never logged: only API tokens are compared.
    api_token = (ApiToken.account_id == Account.id) & ApiToken.parent_id.is_(None)
    with db.read() as session:
        held = session.execute(
            # Counting a column counts its non-null values: here, the revoked tokens.
            select(
                Account.id, Account.name, func.count(ApiToken.id), func.count(ApiToken.revoked_at)
            )
            .join(ApiToken, api_token, isouter=True)
            .group_by(Account.id)
            .order_by(Account.id)
        ).all()
        scopes = {
            token_ref(row_id): scope
            for row_id, scope in session.execute(
                select(ApiToken.id, ApiToken.scope).where(ApiToken.parent_id.is_(None))
            )
        }
    result.checked["accounts"] = len(held)
    known: set[str] = set()
    for row_id, name, tokens, revoked in held:
        ref = account_ref(row_id)
        # Entries written before accounts had references name the account instead: a
        # slug, lowercase, so never another account's reference.
        names = (ref, name)
        known.update(names)
        created = _logged(stated, names, "created")
        if created != 1:
            result.add("account", ref, f"created in node.db, logged as created {created} times")
        # The first token is issued with the account, in its "created" entry.
        issued = _logged(stated, names, "token_issued")
        if issued < tokens - 1:
            result.add(
                "account", ref, f"{tokens - 1} more tokens issued, {issued} logged as issued"
            )
        logged = _logged(stated, names, "token_revoked")
        if logged < revoked:
            result.add("account", ref, f"{revoked} tokens revoked, {logged} logged as revoked")
    for account, change in sorted(stated.accounts):
        if account not in known:
            result.add("account", account, f"logged as {change}, but node.db has no such account")
    for ref, scope in sorted(stated.scopes):
        held_scope = scopes.get(ref)
        if held_scope is None:
            # An API token's row is never deleted (only portal sessions' are).
            result.add("token", ref, "logged as issued, but node.db has no such API token")
        elif held_scope != scope:
            result.add("token", ref, f"logged as issued {scope}, but node.db holds it {held_scope}")


def _logged(stated: _Stated, names: Iterable[str], change: str) -> int:
    """How many account entries of ``change`` name the account by any of ``names``."""
    return sum(stated.accounts[(name, change)] for name in names)


def _policies(db: Database, stated: _Stated, result: Reconciliation) -> None:
    with db.read() as session:
        held = {
            (f"{provider}/{dataset}", digest)
            for provider, dataset, digest in session.execute(
                select(Provider.slug, Dataset.slug, PolicyRecord.digest)
                .join(Dataset, Dataset.id == PolicyRecord.dataset_id)
                .join(Provider, Provider.id == Dataset.provider_id)
            )
        }
    result.checked["policies"] = len(held)
    for ref, digest in sorted(held - stated.policies):
        result.add("policy", ref, f"policy {digest[:16]}… is in force, but the log has no entry")


def _ledger(db: Database, stated: _Stated, result: Reconciliation, metering: Metering) -> None:
    with db.read() as session:
        rows = session.execute(
            select(
                LedgerEntry.id,
                Budget.grant_id,
                Organization.slug,
                LedgerEntry.created_at,
                func.coalesce(LedgerEntry.finished_at, LedgerEntry.touched_at),
            )
            .join(Budget, Budget.id == LedgerEntry.budget_id)
            .join(Organization, Organization.id == LedgerEntry.consumer_id)
            .where(LedgerEntry.state.in_(_SPENT))
            .order_by(LedgerEntry.id)
        ).all()
    result.checked["ledger rows"] = len(rows)
    spent = {row[0] for row in rows}
    for reservation in sorted(spent):
        logged = stated.spent[reservation]
        if logged != 1:
            result.add(
                "query",
                f"ledger row {reservation}",
                f"spent ε, but the log has {logged} answered or failed entries for it, not 1",
            )
    for reservation in sorted(set(stated.spent) - spent):
        result.add(
            "query", f"reservation {reservation}", "logged as spent, but no ledger row spent ε"
        )
    for index in stated.unlinked:
        result.add("query", f"log entry {index}", "answered or failed, but names no reservation")
    _usage(metering, rows, result)


def _usage(metering: Metering, rows: Sequence[Any], result: Reconciliation) -> None:
    """Each spent ledger row is one use on its grant's usage, over the months it spans."""
    per_grant: Counter[int] = Counter(row[1] for row in rows)
    consumers = {row[2] for row in rows}
    moments = [moment for row in rows for moment in (row[3], row[4]) if moment is not None]
    billed: Counter[int] = Counter()
    for month in _months(min(moments), max(moments)) if moments else ():
        for consumer in sorted(consumers):
            for line in metering.invoice(LOCAL, month, consumer).lines:
                billed[int(line.grant.removeprefix("GRANT-"))] += line.uses
    for grant in sorted(set(per_grant) | set(billed)):
        if per_grant[grant] != billed[grant]:
            result.add(
                "usage",
                f"GRANT-{grant}",
                f"{per_grant[grant]} ledger rows spent ε, usage counts {billed[grant]} uses",
            )


def _months(first: datetime, last: datetime) -> Iterator[str]:
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
