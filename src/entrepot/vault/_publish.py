"""Publishing: validate a raw file, write its version durably, then commit its metadata.

The steps, each a named fault point a test can kill the process at::

    validate → write temp Parquet (+ per-unit columns) → fsync → [commit lock] number
             → rename → fsync dir → insert row → commit

When the standard bounds each privacy unit's contribution, the written file also
carries each unit's row count and integer key (:mod:`entrepot.engine.units`), so
private queries need not count them; both columns go through the same temporary
name, fsync and rename as the rest of the version.

Until the commit, nothing the catalog reads has changed; a crash leaves at most
temporary or unclaimed files, which :meth:`LocalVault.recover` deletes. The commit
step gives the files their final names with :mod:`entrepot.vault._commit`.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from entrepot._text import TEXT_MAX, TITLE_MAX, check_text
from entrepot.clock import utcnow
from entrepot.engine.units import HIDDEN_PREFIX, is_hidden, write_unit_columns
from entrepot.errors import (
    Conflict,
    InvalidInput,
    LimitExceeded,
    StorageCorrupt,
    ValidationFailed,
    param,
)
from entrepot.standards import Report, Validation, validate
from entrepot.standards.scope import check_regions, check_sector
from entrepot.vault._commit import placing, serialize_commits
from entrepot.vault._storage import (
    fault,
    fsync_file,
    hash_file,
    make_dirs,
    removing,
    temp_dir,
    temp_path,
)
from entrepot.vault.datasets import version_info
from entrepot.vault.models import Dataset, DatasetRegion, Provider, Version
from entrepot.vault.protocol import (
    OnError,
    Progress,
    Published,
    PublishRequest,
    UnitBound,
    VersionInfo,
)
from entrepot.vault.providers import get_provider
from entrepot.vault.quality import quality_figures
from entrepot.vault.refs import (
    DatasetRef,
    check_slug,
    dataset_slug_from_title,
    dataset_title,
)

if TYPE_CHECKING:
    from entrepot.vault.local import LocalVault

__all__ = ["OnCommit", "publish"]

# Called inside the transaction that adds a version, with the new version.
OnCommit = Callable[[Session, VersionInfo], None]

_COPY_CHUNK = 4 * 1024 * 1024
# The suffix of an uploaded file's name is kept (it tells the format), if it is sane.
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


def _nano(epsilon: float) -> int:
    """ε as the ledger debits it: nano-ε, rounded up."""
    return int((Decimal(str(epsilon)) * 10**9).to_integral_value(ROUND_CEILING))


def _no_progress(step: str, done: int, total: int) -> None:
    del step, done, total


@contextmanager
def _source(vault: LocalVault, data: BinaryIO, filename: str) -> Iterator[Path]:
    """A path to the raw bytes: the opened file itself, or a spooled copy of the stream."""
    limit = vault.settings.max_upload_bytes
    too_big = LimitExceeded(
        f"{filename} is larger than the {limit:,} bytes a publish may take",
        setting="max_upload_bytes",
        hint="split the file, or raise ENTREPOT_MAX_UPLOAD_BYTES",
    )
    name = getattr(data, "name", None)
    if isinstance(data, io.BufferedReader | io.FileIO) and isinstance(name, str):
        path = Path(name)
        if path.is_file() and data.seekable() and data.tell() == 0:
            if path.stat().st_size > limit:
                raise too_big
            yield path
            return
    incoming = vault.vaults_dir / ".incoming"
    make_dirs(incoming)
    suffix = Path(filename).suffix
    spooled = temp_path(incoming, suffix if _SUFFIX.fullmatch(suffix) else "")
    with removing(spooled):
        written = 0
        with os.fdopen(os.open(spooled, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            while chunk := data.read(_COPY_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise too_big
                out.write(chunk)
        yield spooled


def _resolve(vault: LocalVault, request: PublishRequest) -> DatasetRef:
    """Check the request against the catalog before any work is done."""
    check_text(request.title, "title", most=TITLE_MAX)
    check_text(request.description, "description", most=TEXT_MAX, multiline=True)
    check_regions(request.regions)
    check_sector(request.sector)
    if not request.title.strip():
        raise InvalidInput(
            "a published dataset needs a title",
            hint=f'give one with {param("title")}, e.g. {param("title")} "Outpatient visits 2025"',
        )
    slug = (
        check_slug(request.dataset, "dataset")
        if request.dataset
        else dataset_slug_from_title(request.title)
    )
    ref = DatasetRef(check_slug(request.provider, "provider"), slug)
    reserved = [name for name in request.standard.field_names if is_hidden(name)]
    if reserved:
        raise InvalidInput(
            f"standard {request.standard.name} names column {reserved[0]!r}, but names "
            f"starting with {HIDDEN_PREFIX!r} are reserved for the columns a publish adds",
            hint="rename the column in the standard",
        )
    with vault.db.read() as session:
        get_provider(session, ref.provider)
        existing = session.scalar(
            select(Dataset.standard)
            .join(Provider)
            .where(Provider.slug == ref.provider, Dataset.slug == ref.dataset)
        )
    _check_same_standard(ref, existing, request.standard.name)
    return ref


def _check_same_standard(ref: DatasetRef, existing: str | None, wanted: str) -> None:
    if existing is not None and existing != wanted:
        raise Conflict(
            f"dataset {ref} follows standard {existing}, not {wanted}",
            hint=f"publish with {param('standard')} {existing}, or under another "
            f"{param('dataset')} slug",
        )


def publish(
    vault: LocalVault,
    request: PublishRequest,
    data: BinaryIO,
    *,
    progress: Progress | None = None,
    on_commit: OnCommit | None = None,
) -> Published:
    """Validate ``data`` and add it to the catalog as the dataset's next version.

    ``on_commit`` runs inside the transaction that adds the version, with the new
    version: what must exist if and only if the version does (its log entry, staged
    in the outbox) is written there.
    """
    step = progress or _no_progress
    settings = vault.settings
    ref = _resolve(vault, request)
    vault.recover()
    step("validate", 0, 0)
    with (
        _source(vault, data, request.filename) as source,
        temp_dir(vault.temp_dir) as workdir,
        validate(
            source,
            request.standard,
            request.mapping,
            report_rows=settings.report_rows,
            max_bytes=settings.max_upload_bytes,
            memory_limit=settings.engine_memory_limit,
            threads=settings.engine_threads,
            workdir=workdir,
        ) as validation,
    ):
        fault(settings.fault_point, "after-validate")
        # The report names the file as its provider sent it, never as it was spooled.
        found = replace(validation.report, source=Path(request.filename).name)
        report: dict[str, Any] = found.to_dict()
        _refuse_invalid(request, found)
        if request.admit is not None:
            request.admit(ref, found.rows_valid)
        info = _write(vault, request, ref, validation, report, step, on_commit)
    fault(settings.fault_point, "after-commit")
    return Published(info, report, found.rows_total, found.rows_invalid)


def _refuse_invalid(request: PublishRequest, report: Report) -> None:
    total, invalid = report.rows_total, report.rows_invalid
    if invalid and request.on_error is OnError.REJECT:
        raise ValidationFailed(
            f"{request.filename}: {invalid:,} of {total:,} rows break standard "
            f"{request.standard.name}; nothing was published",
            hint="fix the rows the report lists, or publish the valid rows and keep the "
            f"others aside with {param('on_error')} quarantine",
            report=report.to_dict(),
        )
    if not report.rows_valid:
        raise ValidationFailed(
            f"{request.filename}: none of its {total:,} rows meets standard "
            f"{request.standard.name}; nothing was published",
            hint="check the file and the mapping against the report",
            report=report.to_dict(),
        )


def _write(
    vault: LocalVault,
    request: PublishRequest,
    ref: DatasetRef,
    validation: Validation,
    report: dict[str, Any],
    step: Progress,
    on_commit: OnCommit | None,
) -> VersionInfo:
    """Write the version's files under temporary names, durably, then commit them.

    The commit step is reported as it starts, and again (done 1 of 1) once the
    version's transaction has done all it does and commits next.
    """
    armed = vault.settings.fault_point
    valid, invalid = validation.report.rows_valid, validation.report.rows_invalid
    directory = vault.vaults_dir / ref.provider / ref.dataset
    make_dirs(directory)
    written = temp_path(directory, ".parquet")
    rejected: Path | None = None
    if invalid:
        quarantine = vault.quarantine_dir / ref.provider / ref.dataset
        make_dirs(quarantine)
        rejected = temp_path(quarantine, ".parquet")
    unit = request.standard.privacy_unit
    counted = unit is not None and not request.standard.one_row_per_unit
    # Without per-unit columns the validation writes the version itself.
    plain = temp_path(directory, ".parquet") if counted else written
    with removing(written, plain, *([rejected] if rejected else [])):
        step("write", 0, 0)
        validation.write_valid(plain)
        # Public figures describe the standard's columns only, never the added ones.
        quality = quality_figures(plain, report)
        bound = None
        if unit is not None and plain != written:
            with temp_dir(vault.temp_dir) as workdir:
                histogram = write_unit_columns(
                    plain,
                    written,
                    unit,
                    threads=vault.settings.engine_threads,
                    memory_limit=vault.settings.ingest_memory_limit,
                    workdir=workdir,
                )
            plain.unlink()
            if request.calibrate is not None:
                step("bound", 0, 0)
                bound = request.calibrate(histogram)
        if rejected is not None:
            validation.write_rejected(rejected)
        fault(armed, "after-write")
        fsync_file(written)
        if rejected is not None:
            fsync_file(rejected)
        fault(armed, "after-fsync")
        sha256, size = hash_file(written, lambda done, total: step("hash", done, total))
        rejected_sha256 = None if rejected is None else hash_file(rejected)[0]
        _check_rows(written, valid, "valid")
        if rejected is not None:
            _check_rows(rejected, invalid, "rejected")
        step("commit", 0, 0)

        def staged(session: Session, info: VersionInfo) -> None:
            if on_commit is not None:
                on_commit(session, info)
            # The transaction commits next: until this step, a failure rolled it back.
            step("commit", 1, 1)

        return _commit(
            vault,
            request,
            ref,
            written,
            rejected,
            figures={"sha256": sha256, "size_bytes": size, "rows": valid},
            rejected_sha256=rejected_sha256,
            rows_rejected=invalid,
            report=report,
            quality=quality,
            bound=bound,
            on_commit=staged,
        )


def _check_rows(path: Path, expected: int, what: str) -> None:
    rows = pq.read_metadata(path).num_rows
    if rows != expected:
        raise StorageCorrupt(
            f"{path.name}: wrote {rows:,} {what} rows where validation counted {expected:,}",
            hint="nothing was published; report this as a bug with the file that caused it",
        )


def _same_as_latest(
    vault: LocalVault,
    session: Session,
    dataset: Dataset,
    figures: dict[str, Any],
    request: PublishRequest,
    rejected_sha256: str | None,
) -> Version | None:
    """The dataset's latest version if it holds these very rows (the same valid rows and
    the same rejected ones), under the same standard and mapping.

    Rejected rows are compared by the hash of their quarantine file, hashed here (the
    catalog keeps none): returning the latest version for other rejected rows would
    lose them."""
    if dataset.id is None:
        return None
    latest = session.scalar(
        select(Version).where(Version.dataset_id == dataset.id).order_by(Version.number.desc())
    )
    if latest is None:
        return None
    same = (latest.sha256, latest.standard_version, latest.mapping) == (
        figures["sha256"],
        request.standard.version,
        request.mapping_text,
    )
    if not same or (latest.quarantine_path is None) != (rejected_sha256 is None):
        return None
    if latest.quarantine_path is not None:
        kept = vault.home / latest.quarantine_path
        if not kept.is_file() or hash_file(kept)[0] != rejected_sha256:
            return None
    return latest


def _commit(
    vault: LocalVault,
    request: PublishRequest,
    ref: DatasetRef,
    written: Path,
    rejected: Path | None,
    *,
    figures: dict[str, Any],
    rejected_sha256: str | None,
    rows_rejected: int,
    report: dict[str, Any],
    quality: dict[str, Any],
    bound: UnitBound | None,
    on_commit: OnCommit | None,
) -> VersionInfo:
    """Under the commit lock: number the version, rename its files, insert its row."""
    armed = vault.settings.fault_point
    with vault.db.write() as session:
        serialize_commits(session)
        provider = get_provider(session, ref.provider)
        dataset = session.scalar(
            select(Dataset)
            .where(Dataset.provider_id == provider.id, Dataset.slug == ref.dataset)
            .options(selectinload(Dataset.provider))
        )
        now = utcnow()
        if dataset is None:
            dataset = Dataset(
                provider=provider,
                slug=ref.dataset,
                description=request.description,
                standard=request.standard.name,
                created_at=now,
            )
            session.add(dataset)
        _check_same_standard(ref, dataset.standard, request.standard.name)
        held = (
            None
            if request.force
            else _same_as_latest(vault, session, dataset, figures, request, rejected_sha256)
        )
        if held is not None:
            return version_info(dataset, held)
        dataset.title = dataset_title(request.title)
        dataset.description = request.description or dataset.description
        if request.regions:
            _set_regions(dataset, check_regions(request.regions))
        dataset.sector = check_sector(request.sector) or dataset.sector
        dataset.schema = request.standard.document
        dataset.updated_at = now
        session.flush()
        last = session.scalar(
            select(func.max(Version.number)).where(Version.dataset_id == dataset.id)
        )
        number = (last or 0) + 1
        final = written.with_name(f"{number}.parquet")
        final_rejected = rejected.with_name(f"{number}.parquet") if rejected else None
        fault(armed, "before-rename")
        moves = [(written, final)]
        if rejected is not None and final_rejected is not None:
            moves.append((rejected, final_rejected))
        with placing(moves):
            fault(armed, "after-rename")
            version = Version(
                dataset=dataset,
                number=number,
                title=request.title.strip(),
                path=vault.relative(final),
                quarantine_path=vault.relative(final_rejected) if final_rejected else None,
                sha256=figures["sha256"],
                size_bytes=figures["size_bytes"],
                rows=figures["rows"],
                rows_rejected=rows_rejected,
                standard_version=request.standard.version,
                mapping=request.mapping_text,
                report=report,
                quality=quality,
                created_at=now,
                unit_bound=None if bound is None else bound.rows,
                unit_level=None if bound is None else bound.level,
                bound_epsilon_nano=0 if bound is None else _nano(bound.epsilon),
                unit_kept=None if bound is None else bound.kept,
                unit_removed=None if bound is None else bound.removed,
                unit_removed_scale=None if bound is None else bound.removed_scale,
            )
            session.add(version)
            session.flush()
            info = version_info(dataset, version)
            if on_commit is not None:
                on_commit(session, info)
            fault(armed, "before-commit")
        return info


def _set_regions(dataset: Dataset, codes: tuple[str, ...]) -> None:
    """Make ``codes`` the regions of ``dataset``, in order; a kept code keeps its row."""
    kept = {region.code: region for region in dataset.regions}
    dataset.regions = [kept.get(code) or DatasetRegion(code=code) for code in codes]
    for position, region in enumerate(dataset.regions):
        region.position = position
