"""The one seam between the exchange and a provider's data: the :class:`Vault` protocol.

:class:`~entrepot.vault.local.LocalVault` keeps the data in the node's own home; a
remote vault speaks the same protocol over HTTP. Signatures therefore carry only
plain values (references, standards, streams, figures, described operations): no
database sessions, no engines and no file paths. A vault never hands out rows: it
publishes them, describes them with public figures, and runs a described operation
where the data is, returning only its released result.

The protocol is compute-to-data. An operation names its kind and carries what the
holder needs to run it; the holder's engine, sandbox and files never leave it. The
first kind is :class:`Aggregate` (a checked, priced query plan run on one version,
with its noise added by the holder). A private join takes two more, sent to each of
its two holders in turn: :class:`Blind` (filter, blind the link keys with a fresh key
kept for this join, send the tokens and the attribute columns the query reads) and
:class:`Reblind` (blind the other holder's tokens again, then forget the key).
Making a release is a further kind of :data:`Operation`, not a new method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, runtime_checkable

from entrepot.standards.mapping import Mapping
from entrepot.standards.schema import Standard
from entrepot.vault.datasets import VersionInfo
from entrepot.vault.refs import DatasetRef

if TYPE_CHECKING:
    # Only named in annotations: a vault runs a plan it is handed, it imports no privacy.
    import pandas as pd
    import pyarrow as pa

    from entrepot.privacy import Answer, Plan
    from entrepot.privacy.psi import BlindedBatch, DoublyBlindedBatch

__all__ = [
    "Aggregate",
    "Aggregated",
    "Blind",
    "Blinded",
    "MakeRelease",
    "OnError",
    "Operation",
    "OperationKind",
    "Outcome",
    "Progress",
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
]

# Called as progress(step, done, total) while a publish runs; total 0 means unknown.
Progress = Callable[[str, int, int], None]

# Called by a vault once, right before it reads any data for an operation: from then
# on the operation's reservation is spent whatever happens (a refund that depends on
# what the data did would be a side channel).
Touched = Callable[[], None]


class OnError(StrEnum):
    """What a publish does with rows that break the standard."""

    REJECT = "reject"  # publish nothing, report why
    QUARANTINE = "quarantine"  # publish the valid rows, keep the others with reasons


@dataclass(frozen=True)
class PublishRequest:
    """Everything a publish needs besides the raw bytes."""

    provider: str
    standard: Standard
    title: str
    dataset: str | None = None  # default: the title, slugified, without a trailing year
    description: str = ""
    # The dataset's scope in the catalog, codes of the shipped code lists (see
    # entrepot.standards.scope); empty or None keeps what the dataset has.
    regions: tuple[str, ...] = ()
    sector: str | None = None
    mapping: Mapping | None = None  # how the provider's local format becomes the standard
    mapping_text: str | None = None  # the mapping as written, kept with the version
    on_error: OnError = OnError.REJECT
    filename: str = "upload.csv"  # names the source in reports; its suffix tells the format
    # A publish whose valid rows hash as the latest version's, under the same standard
    # and mapping, returns that version (a retry makes no duplicate) unless forced.
    force: bool = False
    # Called with the dataset and its count of valid rows once validated, before anything
    # is written; raising refuses the publish (the exchange checks its policy's δ here).
    admit: Callable[[DatasetRef, int], None] | None = None
    # Called with how many units have each number of rows (``{rows: units}``), for a
    # standard that bounds units, once the version is written and before it is
    # committed: the rows-per-unit bound to keep with the version, or None.
    calibrate: Callable[[dict[int, int]], UnitBound | None] | None = None


@dataclass(frozen=True)
class UnitBound:
    """A version's rows-per-unit bound, released with differential privacy at publish,
    the quantile level of rows per unit it estimates, the rows it keeps and removes
    (noisy, with the Laplace scale of each one's noise), and the ε the releases spent
    of the dataset's cap."""

    rows: int
    epsilon: float
    level: float
    kept: float | None = None
    removed: float | None = None
    removed_scale: float = 0.0


@dataclass(frozen=True)
class Published:
    """The outcome of a publish: the new version and, for its provider, the full report."""

    version: VersionInfo
    report: dict[str, Any]
    rows_total: int
    quarantined: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "rows_total": self.rows_total,
            "quarantined": self.quarantined,
            "report": self.report,
        }


class OperationKind(StrEnum):
    """What a vault is asked to compute; each kind has one operation class."""

    AGGREGATE = "aggregate"
    BLIND = "blind"
    REBLIND = "reblind"
    RELEASE = "release"


@dataclass(frozen=True)
class Aggregate:
    """Answer a checked, priced aggregate query on one version of one dataset.

    The plan was checked against the dataset's policy and priced before any data was
    touched; the holder runs its rewritten SQL and adds the plan's noise itself.
    """

    kind: ClassVar[OperationKind] = OperationKind.AGGREGATE
    ref: DatasetRef
    version: int
    plan: Plan


@dataclass(frozen=True)
class Aggregated:
    """A released aggregate and the version's row count (its provider's figure)."""

    answer: Answer
    rows: int


@dataclass(frozen=True)
class Blind:
    """A holder's first step in a private join: blind its link keys for join ``join``.

    The holder brings every value of the ``link`` column of ``ref`` at ``version`` to
    the canonical form of ``concept`` and blinds one token per distinct value with a
    secret key it draws for this join alone, whatever ``where`` keeps (a checked filter
    over its own columns, in DuckDB SQL): the work, and so its duration, is the
    version's. It answers the tokens and, per row that passes ``where``, its token's
    handle and the ``columns`` the query reads: never an identifier, raw or blinded.
    """

    kind: ClassVar[OperationKind] = OperationKind.BLIND
    ref: DatasetRef
    version: int
    join: str  # names this join's key at the holder until it reblinds
    link: str
    concept: str
    where: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Blinded:
    """A holder's tokens (blinded once, by itself) and the kept rows' columns by handle."""

    tokens: BlindedBatch
    attributes: pa.Table  # a ``handle`` column, then the columns asked for
    rows: int  # the version's row count (its provider's figure)


@dataclass(frozen=True)
class Reblind:
    """A holder's second step: blind the other holder's ``tokens`` with this join's key.

    The holder forgets its key once it has answered: no token of another join can
    ever be made to match this one's.
    """

    kind: ClassVar[OperationKind] = OperationKind.REBLIND
    ref: DatasetRef
    join: str
    tokens: BlindedBatch


@dataclass(frozen=True)
class Reblinded:
    """The other holder's tokens, now carrying both blindings, with that holder's handles."""

    tokens: DoublyBlindedBatch
    rows: int = 0


class Recipe(Protocol):
    """How a release is made from a version's rows (de-identification or synthesis)."""

    def make(self, frame: pd.DataFrame, *, plan_only: bool) -> tuple[pa.Table, dict[str, Any]]:
        """The rows to release and their report; with ``plan_only``, the report alone."""
        ...


@dataclass(frozen=True)
class MakeRelease:
    """Make a release of one version where the data is, and keep its file in the vault.

    The recipe was checked against the dataset's policy and priced before any data was
    touched; ``name`` is the file's name in the vault (random, chosen by the caller).
    With ``plan_only`` nothing is written: only the report comes back.
    """

    kind: ClassVar[OperationKind] = OperationKind.RELEASE
    ref: DatasetRef
    version: int
    name: str
    recipe: Recipe
    plan_only: bool = False


@dataclass(frozen=True)
class Released:
    """A release kept in the vault, described by its figures and report."""

    name: str
    rows: int  # the version's rows (its provider's figure)
    released_rows: int
    sha256: str
    size_bytes: int
    report: dict[str, Any]


# Every operation a vault answers, and every result it returns; a new kind adds one
# class to each.
Operation = Aggregate | Blind | Reblind | MakeRelease
Outcome = Aggregated | Blinded | Reblinded | Released


@runtime_checkable
class Vault(Protocol):
    """Publish and describe dataset versions and run operations on them; never return rows."""

    def publish(
        self, request: PublishRequest, data: BinaryIO, *, progress: Progress | None = None
    ) -> Published:
        """Validate ``data`` and add it as the dataset's next immutable version."""
        ...

    def versions(self, ref: DatasetRef | str) -> list[VersionInfo]:
        """The dataset's versions, oldest first."""
        ...

    def standard(self, ref: DatasetRef | str) -> Standard:
        """The standard the dataset follows: public metadata a query is checked against."""
        ...

    def run(self, operation: Operation, *, touched: Touched) -> Outcome:
        """Compute ``operation`` where the data is; call ``touched`` before reading any."""
        ...

    def release_file(self, name: str) -> BinaryIO:
        """Open the file of a release this vault made (read-only, seekable)."""
        ...
