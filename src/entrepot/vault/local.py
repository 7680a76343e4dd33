"""The vault that keeps a provider's data in the node's own home.

::

    <home>/vaults/<provider>/<dataset>/<number>.parquet       published versions
    <home>/quarantine/<provider>/<dataset>/<number>.parquet   their rejected rows
    <home>/releases/<name>.parquet                            releases made from them

A version's file reaches its final name atomically with its row
(:mod:`entrepot.vault._commit`), so the catalog never names a file that is missing
or partial, and a file no row names never outlives the next publish.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from entrepot.db import Database
from entrepot.engine import Engine
from entrepot.engine import Session as EngineSession
from entrepot.engine._sql import ident
from entrepot.errors import Conflict, NotFound, StorageCorrupt
from entrepot.settings import Settings
from entrepot.standards.schema import Standard, parse_standard
from entrepot.vault._commit import serialize_commits, sweep_unclaimed
from entrepot.vault._publish import OnCommit, publish
from entrepot.vault._storage import (
    check_fault_point,
    fsync_dir,
    fsync_file,
    hash_file,
    make_dirs,
    removing,
    sweep_temp_files,
    temp_path,
)
from entrepot.vault.datasets import find_dataset, version_info
from entrepot.vault.models import Dataset, Version
from entrepot.vault.protocol import (
    Aggregate,
    Aggregated,
    Blind,
    Blinded,
    MakeRelease,
    Operation,
    Outcome,
    Progress,
    Published,
    PublishRequest,
    Reblind,
    Reblinded,
    Released,
    Touched,
    VersionInfo,
)
from entrepot.vault.refs import DatasetRef

if TYPE_CHECKING:
    from entrepot.privacy.psi import Holder

__all__ = ["AttachedView", "LocalVault"]

# A release's file name: what the exchange chose, never a path.
_RELEASE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{7,63}$")


class _NodeLike(Protocol):
    home: Path
    db: Database
    settings: Settings

    @property
    def engine(self) -> Engine: ...


@dataclass(frozen=True)
class AttachedView:
    """A version registered read-only inside this node's own engine."""

    view: str
    ref: DatasetRef
    standard: Standard
    version: int
    sha256: str
    rows: int


# A join whose second step never comes (its coordinator died) loses its key after this.
_JOIN_TTL_S = 600.0
# Sides up to this many rows are blinded in this process: a pool costs more to start.
_INLINE_ROWS = 20_000


@dataclass
class _OpenJoin:
    """A holder's part in a join between its two steps: its key and its workers."""

    holder: Holder
    pool: Executor
    started: float

    def close(self) -> None:
        self.holder.forget()
        self.pool.shutdown(cancel_futures=True)


class LocalVault:
    """A :class:`~entrepot.vault.protocol.Vault` over files in the node's home."""

    def __init__(
        self,
        home: Path,
        db: Database,
        settings: Settings,
        *,
        engine: Callable[[], Engine],
    ) -> None:
        self.home = home
        self.db = db
        self.settings = settings
        self.engine = engine
        self._joins: dict[tuple[str, DatasetRef], _OpenJoin] = {}
        self._joins_lock = threading.Lock()
        check_fault_point(self.settings.fault_point)

    @classmethod
    def of(cls, node: _NodeLike) -> LocalVault:
        """The vault of an opened :class:`~entrepot.exchange.Node`."""
        return cls(node.home, node.db, node.settings, engine=lambda: node.engine)

    @property
    def vaults_dir(self) -> Path:
        return self.home / "vaults"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def releases_dir(self) -> Path:
        return self.home / "releases"

    @property
    def temp_dir(self) -> Path:
        """Working folders of running publishes (DuckDB's spill files), swept when stale."""
        return self.home / "tmp"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.home).as_posix()

    # -- publishing ---------------------------------------------------------------

    def publish(
        self,
        request: PublishRequest,
        data: BinaryIO,
        *,
        progress: Progress | None = None,
        on_commit: OnCommit | None = None,
    ) -> Published:
        """Publish ``data``; ``on_commit(session, version)`` runs in the version's transaction."""
        return publish(self, request, data, progress=progress, on_commit=on_commit)

    def recover(self) -> list[Path]:
        """Delete what crashed publishes left behind; return the deleted files.

        Temporary files go when their writer's process is gone; final-named files
        no version row claims go under the commit lock, so never while a running
        publish is between its rename and its commit.
        """
        removed = [
            *sweep_temp_files(self.vaults_dir),
            *sweep_temp_files(self.quarantine_dir),
            *sweep_temp_files(self.releases_dir),
            *sweep_temp_files(self.temp_dir),
        ]
        with self.db.write() as session:
            serialize_commits(session)
            claimed = set(session.scalars(select(Version.path)))
            claimed.update(p for p in session.scalars(select(Version.quarantine_path)) if p)
            roots = (self.vaults_dir, self.quarantine_dir)
            removed.extend(sweep_unclaimed(session, self.home, roots, claimed))
        return removed

    # -- reading ------------------------------------------------------------------

    def versions(self, ref: DatasetRef | str) -> list[VersionInfo]:
        ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.read() as session:
            dataset = find_dataset(session, ref, versions=True)
            return [version_info(dataset, v) for v in dataset.versions]

    def standard(self, ref: DatasetRef | str) -> Standard:
        """The standard the dataset follows, as stored with it."""
        ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.read() as session:
            dataset = find_dataset(session, ref)
            return parse_standard(dataset.schema, dataset.standard)

    def attach(
        self,
        engine_session: EngineSession,
        ref: DatasetRef | str,
        *,
        version: int | None = None,
        verify: bool = False,
    ) -> AttachedView:
        """Register a version as a view; ``verify`` re-hashes its file first.

        The file's size is always checked against the catalog; a full hash costs a
        read of the whole file, so it is asked for by name.
        """
        ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.read() as session:
            dataset = find_dataset(session, ref, versions=True)
            chosen = self._pick(dataset, ref, version)
            standard = parse_standard(dataset.schema, dataset.standard)
            path = self.home / chosen.path
            self._check_file(ref, chosen, path, verify)
            view = f"{ref.sql_name.replace('.', '__')}__v{chosen.number}"
            engine_session.register_parquet(view, [path])
            return AttachedView(view, ref, standard, chosen.number, chosen.sha256, chosen.rows)

    # -- computing ------------------------------------------------------------------

    def run(self, operation: Operation, *, touched: Touched) -> Outcome:
        """Compute ``operation`` in an engine that can read nothing but the vaults."""
        if isinstance(operation, Blind):
            return self._blind(operation, touched)
        if isinstance(operation, Reblind):
            return self._reblind(operation)
        if isinstance(operation, MakeRelease):
            return self._release(operation, touched)
        return self._aggregate(operation, touched)

    def _blind(self, operation: Blind, touched: Touched) -> Blinded:
        """Blind every distinct link key of the version with a key drawn for this join only;
        send the columns of the rows the WHERE keeps.

        The keys blinded, and so the costly work of both holders and the matcher, are the
        same whatever the WHERE: how long a join takes does not tell how many rows pass
        it. A key none of whose rows the WHERE keeps still matches, and has no row in the
        joined view.
        """
        import numpy as np
        import pyarrow as pa

        from entrepot.privacy.psi import BlindedBatch, Holder, InlineExecutor, make_pool

        names = ", ".join(ident(c) for c in (operation.link, *operation.columns))
        with self.engine().session() as session:
            attached = self.attach(session, operation.ref, version=operation.version)
            touched()
            rows = session.execute(
                f"SELECT {names}, ({operation.where}) IS TRUE FROM {ident(attached.view)}"
            )
        pool: Executor = (
            make_pool(self.settings.psi_workers or None)
            if rows.num_rows > _INLINE_ROWS
            else InlineExecutor()
        )
        holder = Holder(operation.concept, pool=pool, max_rows=self.settings.psi_max_rows)
        try:
            batches = list(holder.blind(rows.column(operation.link).to_pylist()))
        except BaseException:
            holder.forget()
            pool.shutdown(cancel_futures=True)
            raise
        self._open(operation.join, operation.ref, _OpenJoin(holder, pool, time.monotonic()))
        kept, handles = holder.kept()
        passes = rows.column(rows.num_columns - 1).to_numpy()[kept]
        taken = pa.array(kept[passes])
        attributes = pa.table(
            {
                "handle": pa.array(handles[passes], pa.uint64()),
                **{name: rows.column(name).take(taken) for name in operation.columns},
            }
        )
        tokens = BlindedBatch(
            handles=np.concatenate([b.handles for b in batches] or [np.empty(0, np.uint64)]),
            tokens=b"".join(b.tokens for b in batches),
        )
        return Blinded(tokens, attributes, attached.rows)

    def _open(self, join: str, ref: DatasetRef, opened: _OpenJoin) -> None:
        with self._joins_lock:
            stale = [
                key
                for key, open_join in self._joins.items()
                if opened.started - open_join.started > _JOIN_TTL_S
            ]
            for key in stale:
                self._joins.pop(key).close()
            if (join, ref) in self._joins:
                opened.close()
                raise Conflict(
                    f"join {join} has blinded {ref} already",
                    hint="start every join with a new join id: keys are never reused",
                )
            self._joins[(join, ref)] = opened

    def _reblind(self, operation: Reblind) -> Reblinded:
        """Blind the other holder's tokens again with this join's key, then forget it."""
        from entrepot.privacy.psi import BATCH_SIZE, TOKEN_BYTES, BlindedBatch, DoublyBlindedBatch

        with self._joins_lock:
            opened = self._joins.pop((operation.join, operation.ref), None)
        if opened is None:
            raise Conflict(
                f"no open join {operation.join} on {operation.ref}",
                hint="blind this side first; a join's key is forgotten after its reblind "
                f"or {_JOIN_TTL_S:g} s",
            )
        try:
            other = operation.tokens
            size = BATCH_SIZE
            chunks = (
                BlindedBatch(
                    other.handles[start : start + size],
                    other.tokens[start * TOKEN_BYTES : (start + size) * TOKEN_BYTES],
                )
                for start in range(0, len(other), size)
            )
            parts = list(opened.holder.reblind(chunks))
        finally:
            opened.close()
        import numpy as np

        return Reblinded(
            DoublyBlindedBatch(
                handles=np.concatenate([p.handles for p in parts] or [np.empty(0, np.uint64)]),
                tokens=b"".join(p.tokens for p in parts),
            )
        )

    def _release_path(self, name: str) -> Path:
        if not _RELEASE_NAME.match(name):
            raise NotFound(f"no release file {name!r}", hint="release names come from the exchange")
        return self.releases_dir / f"{name}.parquet"

    def _release(self, operation: MakeRelease, touched: Touched) -> Released:
        """Read the version, let the recipe make the rows, keep them as one Parquet file."""
        with self.engine().session() as session:
            attached = self.attach(session, operation.ref, version=operation.version)
            touched()
            frame = session.execute(f"SELECT * FROM {attached.view}").to_pandas()
        table, report = operation.recipe.make(frame, plan_only=operation.plan_only)
        if operation.plan_only:
            return Released(operation.name, attached.rows, table.num_rows, "", 0, report)
        final = self._release_path(operation.name)
        make_dirs(final.parent)
        scratch = temp_path(final.parent, ".parquet")
        with removing(scratch):
            pq.write_table(table, scratch, row_group_size=64 * 1024)
            fsync_file(scratch)
            scratch.rename(final)
            fsync_dir(final.parent)
        sha256, size = hash_file(final)
        return Released(operation.name, attached.rows, table.num_rows, sha256, size, report)

    def release_file(self, name: str) -> BinaryIO:
        """Open a release's file; a name that is not one answers 404."""
        path = self._release_path(name)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"no release file {name!r}", hint="it was never made") from None

    def _aggregate(self, operation: Aggregate, touched: Touched) -> Aggregated:
        with self.engine().session() as session:
            attached = self.attach(session, operation.ref, version=operation.version)
            touched()
            return Aggregated(operation.plan.run(session, attached.view), attached.rows)

    @staticmethod
    def _pick(dataset: Dataset, ref: DatasetRef, number: int | None) -> Version:
        if not dataset.versions:
            raise NotFound(f"dataset {ref} has no version", hint="publish one first")
        if number is None:
            return dataset.versions[-1]
        for candidate in dataset.versions:
            if candidate.number == number:
                return candidate
        known = ", ".join(str(v.number) for v in dataset.versions)
        raise NotFound(f"dataset {ref} has no version {number}", hint=f"its versions: {known}")

    def _check_file(self, ref: DatasetRef, version: Version, path: Path, verify: bool) -> None:
        problem: str | None = None
        if not path.is_file():
            problem = "its file is missing"
        elif path.stat().st_size != version.size_bytes:
            problem = "its file has the wrong size"
        elif verify and hash_file(path)[0] != version.sha256:
            problem = "its file's SHA-256 does not match the catalog"
        elif verify and pq.read_metadata(path).num_rows != version.rows:
            problem = "its file's row count does not match the catalog"
        if problem:
            raise StorageCorrupt(
                f"version {version.number} of {ref}: {problem} ({version.path})",
                hint="restore the node's home from a backup; published files must not be edited",
                dataset=str(ref),
                version=version.number,
            )

    def check(self) -> list[dict[str, Any]]:
        """Re-hash every version's file; list those that fail (empty when all is well)."""
        problems: list[dict[str, Any]] = []
        with self.db.read() as session:
            datasets = session.scalars(
                select(Dataset).options(
                    selectinload(Dataset.provider), selectinload(Dataset.versions)
                )
            ).all()
            for dataset in datasets:
                ref = DatasetRef(dataset.provider.slug, dataset.slug)
                for version in dataset.versions:
                    try:
                        self._check_file(ref, version, self.home / version.path, verify=True)
                        self._check_quarantine(ref, version)
                    except StorageCorrupt as error:
                        problems.append(error.to_dict()["error"])
        return problems

    def _check_quarantine(self, ref: DatasetRef, version: Version) -> None:
        """The version's rejected rows are all kept: its quarantine file is there and holds
        as many rows as the catalog counts (they are kept, not hashed)."""
        if version.quarantine_path is None:
            return
        path = self.home / version.quarantine_path
        problem: str | None = None
        if not path.is_file():
            problem = "is missing"
        else:
            try:
                rows = pq.read_metadata(path).num_rows
            except (OSError, pa.ArrowException):
                problem = "cannot be read"
            else:
                if rows != version.rows_rejected:
                    problem = (
                        f"holds {rows:,} rows where the catalog counts {version.rows_rejected:,}"
                    )
        if problem:
            raise StorageCorrupt(
                f"version {version.number} of {ref}: its quarantined rows' file {problem} "
                f"({version.quarantine_path})",
                hint="restore the node's home from a backup; quarantined files must not be edited",
                dataset=str(ref),
                version=version.number,
            )
