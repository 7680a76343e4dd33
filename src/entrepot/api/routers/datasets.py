"""Datasets: a provider publishes a raw file as a new version; anyone lists versions.

A version's content figures (rows, size, SHA-256, quality) are ``null`` in the list
unless the caller is the dataset's provider or an operator; the publish answer, which
only the publishing provider receives, always has them.

The upload is multipart and limited by ``max_upload_bytes`` (not the small
``request_body_max_bytes`` of other calls); like every body, it must keep arriving
(``request_body_timeout_s`` per MiB). A provider account publishes only for
its own organization: the provider is taken from the token, never from the request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile, status

from entrepot import standards
from entrepot._text import TEXT_MAX, TITLE_MAX
from entrepot.api._exchange import exchange_of
from entrepot.api.auth import AnyActor, Provider, checked_first
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.api.routers.catalog import DatasetSlug, ProviderSlug
from entrepot.errors import EntrepotError, InvalidInput, NotFound
from entrepot.exchange.accounts import Role
from entrepot.schemas.catalog import SLUG, VersionOut
from entrepot.schemas.datasets import PublishedOut
from entrepot.standards.mapping import read_yaml
from entrepot.vault import LocalVault
from entrepot.vault.refs import SLUG_MAX

if TYPE_CHECKING:
    from entrepot.client.protocol import Advance
    from entrepot.exchange.idempotency import Held

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/datasets", tags=["datasets"], generate_unique_id_function=operation_id
)

Paging = Annotated[PageParams, Depends(page_params)]
# A provider mapping is a short YAML document; anything larger is not one.
_MAPPING_MAX_BYTES = 256 * 1024
# A client's key for one publish: an opaque token (a UUID, or 16+ random bytes encoded).
_KEY = r"^[A-Za-z0-9._:-]{8,200}$"


def _outgoing(response: Response) -> Response:
    """The response being built, for a header (a direct call of a route has none)."""
    return response


def publish_version(
    request: Request,
    actor: Provider,
    file: Annotated[UploadFile, File(description="The raw file (CSV, ...).")],
    standard: Annotated[str, Form(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")],
    title: Annotated[str, Form(min_length=1, max_length=TITLE_MAX)],
    dataset: Annotated[str | None, Form(pattern=SLUG, max_length=SLUG_MAX)] = None,
    description: Annotated[str, Form(max_length=TEXT_MAX)] = "",
    region: Annotated[
        list[str] | None,
        Form(
            description="The regions the dataset covers: codes of region.province, "
            "region.city or region.district, repeated for several (absent: keep the "
            "dataset's)."
        ),
    ] = None,
    sector: Annotated[
        str | None,
        Form(
            max_length=16,
            description="Its sector of activity, a code of the sector list (absent: keep).",
        ),
    ] = None,
    on_error: Annotated[Literal["reject", "quarantine"], Form()] = "reject",
    mapping: Annotated[UploadFile | None, File(description="Provider mapping (YAML).")] = None,
    force: Annotated[
        bool,
        Form(description="Publish a new version even if the latest holds the same rows."),
    ] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=_KEY,
            description="The client's key for this publish: a repeat with the same key and "
            "request answers what the first did (header `Idempotent-Replayed: true`) and "
            "never adds a version; the same key with another request is refused (409).",
        ),
    ] = None,
    outgoing: Annotated[Response | None, Depends(_outgoing)] = None,
) -> PublishedOut:
    """The file is mapped onto the standard and validated row by row; the new version is
    immutable, content-hashed and logged. With `on_error=quarantine`, invalid rows are
    set aside and counted instead of refusing the file. A client that times out sends
    the request again with the same `Idempotency-Key`."""
    if standard not in standards.names():
        raise NotFound(
            f"no standard {standard!r} on this node",
            hint=f"the shipped standards are: {', '.join(standards.names())}",
        )
    mapping_text = None if mapping is None else _read_mapping(mapping)

    def run(progress: Advance | None) -> dict[str, Any]:
        """The publish itself, as the token's organization: its answer, as the client
        sees it."""
        filename = file.filename or "upload.csv"
        spool = _spool_path(LocalVault.of(request.app.state.node).vaults_dir)
        try:
            published = client_of(request, actor).publish_stream(
                file.file,
                filename=filename,
                provider=actor.org_slug,
                standard=standards.get(standard),
                title=title,
                mapping=None if mapping_text is None else _parse_mapping(mapping_text),
                mapping_text=mapping_text,
                dataset=dataset,
                description=description,
                region=region or (),
                sector=sector,
                on_error=on_error,
                progress=progress,
                force=force,
            )
        except EntrepotError as error:
            error.message = _named(error.message, spool, filename)
            error.hint = _named(error.hint, spool, filename)
            error.details = _named(error.details, spool, filename)
            raise
        answer: dict[str, Any] = _named(published, spool, filename)
        return answer

    if idempotency_key is None:
        return PublishedOut.model_validate(run(None))
    keys = exchange_of(request).idempotency
    fields = [standard, title, dataset, description, region, sector, on_error, force, mapping_text]
    held = keys.hold(actor.org_slug, idempotency_key, _fingerprint(fields, file.file))
    if isinstance(held, dict):
        if outgoing is not None:
            outgoing.headers["Idempotent-Replayed"] = "true"
        return PublishedOut.model_validate(held)
    return PublishedOut.model_validate(_once(held, run))


# A provider's token is checked before the upload is read, not after.
router.add_api_route(
    "",
    publish_version,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    summary="Publish a raw file as a new immutable version (provider).",
    route_class_override=checked_first(Role.PROVIDER),
)


@router.get("/{provider}/{dataset}/versions", summary="A dataset's versions, oldest first.")
def list_versions(
    request: Request,
    actor: AnyActor,
    provider: ProviderSlug,
    dataset: DatasetSlug,
    paging: Paging,
) -> Page[VersionOut]:
    """Each version's number, title and time; content figures only for its provider."""
    client = client_of(request, actor)
    body = client.dataset_versions_page(f"{provider}/{dataset}", paging.limit, paging.offset)
    return page_of(body, VersionOut.model_validate)


def _once(held: Held, run: Callable[[Advance | None], dict[str, Any]]) -> dict[str, Any]:
    """``run``'s answer, kept under the key ``held`` while its lease is renewed.

    The commit step starts (``done`` 0) before the version's transaction, whose key
    must still be this request's, and ends (``done`` 1) when that transaction has done
    all it does and commits. A failure before that end releases the key: the
    transaction, if it began, rolled back (a refusal inside it, such as the dataset's
    ε cap), nothing was committed, and a retry runs afresh. From then on, the version
    may be committed whatever is raised (the commit itself, the log's append, the
    answer's making), so a failure is kept under the key and a retry is refused
    instead of publishing a second version.
    """
    committing = False

    def progress(step: str, done: int, _total: int) -> None:
        nonlocal committing
        if step == "commit" and not done:
            held.check()
        elif step == "commit":
            committing = True

    with held.renewed():
        try:
            answer = run(progress)
        except BaseException as error:
            if committing:
                held.fail(error.code if isinstance(error, EntrepotError) else EntrepotError.code)
            else:
                held.release()
            raise
        held.keep(answer)
    return answer


def _fingerprint(fields: list[Any], data: BinaryIO) -> str:
    """SHA-256 of a publish request: its fields, then the uploaded file's bytes."""
    digest = hashlib.sha256(json.dumps(fields).encode("utf-8"))
    while chunk := data.read(1 << 20):
        digest.update(chunk)
    data.seek(0)
    return digest.hexdigest()


def _spool_path(vaults: Path) -> re.Pattern[str]:
    """The names the upload is spooled under on the server's disk (host and PID inside)."""
    folders = {str(vaults / ".incoming"), str(vaults.resolve() / ".incoming")}
    alternatives = "|".join(re.escape(folder) for folder in sorted(folders, key=len, reverse=True))
    return re.compile(rf"(?:{alternatives})/\.tmp-[A-Za-z0-9._-]+")


def _named(value: Any, spool: re.Pattern[str], filename: str) -> Any:
    """``value`` with the spooled file's path replaced by the client's own file name."""
    if isinstance(value, str):
        return spool.sub(lambda _match: filename, value)
    if isinstance(value, dict):
        return {key: _named(item, spool, filename) for key, item in value.items()}
    if isinstance(value, list):
        return [_named(item, spool, filename) for item in value]
    return value


def _read_mapping(upload: UploadFile) -> str:
    raw = upload.file.read(_MAPPING_MAX_BYTES + 1)
    if len(raw) > _MAPPING_MAX_BYTES:
        raise InvalidInput(
            f"the mapping is larger than {_MAPPING_MAX_BYTES} bytes",
            hint="a mapping is a short YAML document; check the file",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the mapping is not UTF-8 text", hint="save it as UTF-8") from None


def _parse_mapping(text: str) -> standards.Mapping:
    document = read_yaml(text, "uploaded mapping")
    columns = document.get("columns") if isinstance(document, dict) else None
    # A `codes_file` names a file on the machine that reads the mapping: over the API that
    # would be the server's disk, so uploaded mappings must carry their codes inline.
    if isinstance(columns, dict) and any(
        isinstance(column, dict) and "codes_file" in column for column in columns.values()
    ):
        raise InvalidInput(
            "an uploaded mapping may not use codes_file",
            hint="put the code mapping inline under `codes:`, or publish with the local CLI",
        )
    return standards.parse_mapping(document, "uploaded mapping")
