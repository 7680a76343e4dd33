"""The provider's pages: publish a file with a mapping, the access inbox, the policy editor.

A publish goes to the API's own publish route function
(:func:`entrepot.api.routers.datasets.publish_version`): the same spooling, mapping
checks, validation and vault commit, with the provider taken from the account, never
from the form. Refused rows come back in the validation report with their reasons;
the provider then publishes the valid rows and quarantines the rest, or stops.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import yaml
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from entrepot.api.routers.datasets import publish_version
from entrepot.errors import EntrepotError, InvalidInput
from entrepot.portal._web import Visit, error_body, form_text, visit
from entrepot.schemas.access import GrantCreate
from entrepot.schemas.policies import PolicyIn
from entrepot.standards.scope import REGION_LISTS, SECTOR_LIST

__all__ = ["line_of", "router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]
_PROVIDER = ("provider",)


def _inbox(here: Visit, **extra: Any) -> Response:
    client = here.client
    assert here.actor is not None
    mine = client.catalog_datasets(here.actor.org_slug)
    return here.render(
        "provider.html",
        title="Provider",
        standards=client.standards(),
        pending=client.access_requests(pending=True),
        grants=client.access_grants(active=True),
        datasets=mine,
        regions=[(name, client.codelist(name)["codes"]) for name in REGION_LISTS],
        sectors=client.codelist(SECTOR_LIST)["codes"],
        today=date.today().isoformat(),
        **extra,
    )


@router.get("/provider")
def provider_page(here: Visitor) -> Response:
    return here.page(lambda: _inbox(here), roles=_PROVIDER)


def _problem(
    error: ValidationError, hint: str, what: str = "the form is not complete"
) -> InvalidInput:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
    )
    return InvalidInput(f"{what}: {problems}", hint=hint)


def _optional(form: FormData, name: str) -> str | None:
    return form_text(form, name) or None


@router.post("/provider/requests/{request_id}/grant")
async def grant(request: Request, here: Visitor, request_id: str) -> Response:
    form = await request.form()
    if not here.csrf_ok(form):
        return here.refused_csrf()
    fields = {
        "epsilon": _optional(form, "epsilon"),
        "max_queries": _optional(form, "max_queries"),
        "price_per_epsilon": _optional(form, "price_per_epsilon") or "0",
        "until": _optional(form, "until"),
    }

    def build() -> Response:
        try:
            try:
                # A form's fields are text: read as the API reads a JSON body's strings.
                given = {name: text for name, text in fields.items() if text is not None}
                terms = GrantCreate.model_validate_strings(given)
            except ValidationError as error:
                raise _problem(
                    error,
                    "give an ε above 0 (or leave it for the ε asked), a whole number of "
                    "queries from 1, a price per ε with at most 2 decimals and a last day "
                    "from today",
                ) from None
            made = here.client.grant_access(
                request_id,
                epsilon=terms.epsilon,
                max_queries=terms.max_queries,
                price_per_epsilon=terms.price_per_epsilon,
                until=terms.until,
            )
        except EntrepotError as error:
            return _inbox(
                here, inbox_error=error_body(error), failed_id=request_id, status=error.status
            )
        return _inbox(
            here, notice=f"{made['id']} granted to {made['consumer']}: ε {made['epsilon']:g}"
        )

    return await here.page_async(build, roles=_PROVIDER)


@router.post("/provider/requests/{request_id}/refuse")
async def refuse(request: Request, here: Visitor, request_id: str) -> Response:
    form = await request.form()
    if not here.csrf_ok(form):
        return here.refused_csrf()
    reason = form_text(form, "reason")

    def build() -> Response:
        try:
            made = here.client.refuse_access(request_id, reason)
        except EntrepotError as error:
            return _inbox(
                here, inbox_error=error_body(error), failed_id=request_id, status=error.status
            )
        return _inbox(here, notice=f"{made['id']} refused")

    return await here.page_async(build, roles=_PROVIDER)


@router.post("/provider/grants/{grant_id}/revoke")
async def revoke(request: Request, here: Visitor, grant_id: str) -> Response:
    form = await request.form()
    if not here.csrf_ok(form):
        return here.refused_csrf()
    reason = form_text(form, "reason")

    def build() -> Response:
        try:
            made = here.client.revoke_grant(grant_id, reason)
        except EntrepotError as error:
            return _inbox(
                here, inbox_error=error_body(error), failed_id=grant_id, status=error.status
            )
        return _inbox(here, notice=f"{made['id']} revoked")

    return await here.page_async(build, roles=_PROVIDER)


# -- publish ------------------------------------------------------------------------


@router.post("/provider/publish")
async def publish(request: Request, here: Visitor) -> Response:
    """Publish an upload; answers JSON to the page's script, a page to a plain form.
    Who sends it is checked before the upload is read: a stranger's is not taken in."""
    scripted = "x-csrf-token" in request.headers
    if scripted:
        refused = here.refusal(_PROVIDER)
        if refused is not None:
            return here.json_error(refused)
    else:
        gated = await anyio.to_thread.run_sync(partial(here.gate, _PROVIDER))
        if gated is not None:
            return gated
    form = await request.form()
    if not scripted and not here.csrf_ok(form):
        return here.refused_csrf()

    def build() -> dict[str, Any]:
        assert here.actor is not None
        raw = form.get("file")
        mapping = form.get("mapping")
        if not isinstance(raw, UploadFile) or not raw.filename:
            raise InvalidInput("choose the file to publish", hint="pick a CSV file")
        if not isinstance(mapping, UploadFile) or not mapping.filename:
            mapping = None
        on_error = form_text(form, "on_error", "reject")
        if on_error not in ("reject", "quarantine"):
            raise InvalidInput("on_error is reject or quarantine", hint="pick one")
        published = publish_version(
            request,
            here.actor,
            file=raw,  # type: ignore[arg-type]
            standard=form_text(form, "standard"),
            title=form_text(form, "title") or raw.filename,
            dataset=form_text(form, "dataset") or None,
            description=form_text(form, "description"),
            region=[code for code in form.getlist("region") if isinstance(code, str) and code],
            sector=form_text(form, "sector") or None,
            on_error=on_error,  # type: ignore[arg-type]
            mapping=mapping,  # type: ignore[arg-type]
        )
        return published.model_dump(mode="json")

    if scripted:
        return await here.json_async(build, roles=_PROVIDER)

    def page() -> Response:
        try:
            result = build()
        except EntrepotError as error:
            return _inbox(here, publish_error=error_body(error), status=error.status)
        return _inbox(here, published=result)

    return await here.page_async(page, roles=_PROVIDER)


# -- the policy editor ------------------------------------------------------------------


def line_of(document: str, key: str) -> int | None:
    """The line (1-based) of ``key`` (dotted, e.g. ``epsilon.per_query``) in a YAML
    document, or None when it is not there."""
    try:
        node = yaml.compose(document)
    except yaml.YAMLError:
        return None
    line = None
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        found = next(((k, v) for k, v in node.value if k.value == part), None)
        if found is None:
            return line
        line = found[0].start_mark.line + 1
        node = found[1]
    return line


def _editor(here: Visit, ref: str, document: str | None = None, **extra: Any) -> Response:
    client = here.client
    shown = client.policy(ref)
    page = client.catalog_show(ref)
    text = document
    if text is None:
        text = yaml.safe_dump(shown["policy"], sort_keys=False, allow_unicode=True)
    return here.render(
        "policy.html",
        title=f"Policy of {page['title']}",
        ref=ref,
        page=page,
        shown=shown,
        document=text,
        **extra,
    )


@router.get("/provider/policy/{provider}/{dataset}")
def policy_page(here: Visitor, provider: str, dataset: str) -> Response:
    return here.page(lambda: _editor(here, f"{provider}/{dataset}"), roles=_PROVIDER)


@router.post("/provider/policy/{provider}/{dataset}")
async def set_policy(request: Request, here: Visitor, provider: str, dataset: str) -> Response:
    form = await request.form()
    if not here.csrf_ok(form):
        return here.refused_csrf()
    ref = f"{provider}/{dataset}"
    document = form.get("document")
    text = document if isinstance(document, str) else ""

    def build() -> Response:
        try:
            checked = _policy_form(text)
        except InvalidInput as error:
            # Refused before it is read as YAML: no line to point at.
            return _editor(here, ref, text, policy_error=error_body(error), status=error.status)
        try:
            here.client.set_policy(ref, checked, where="policy document")
        except EntrepotError as error:
            key = error.details.get("key")
            line = line_of(text, key) if isinstance(key, str) else None
            if line is None and isinstance(error, InvalidInput):
                line = _yaml_line(text)
            return _editor(
                here,
                ref,
                text,
                policy_error=error_body(error),
                error_key=key,
                error_line=line,
                status=error.status,
            )
        return _editor(here, ref, notice="Policy saved: it applies to the next query")

    return await here.page_async(build, roles=_PROVIDER)


def _policy_form(text: str) -> str:
    """The editor's document as the API's request body, checked by the same model: a
    document the API refuses (for its size, say) is refused here too."""
    if not text.strip():
        raise InvalidInput("the policy is empty", hint="write at least one key")
    try:
        return PolicyIn.model_validate({"document": text}).document
    except ValidationError as error:
        raise _problem(
            error, "a policy is a page of YAML: shorten it", "the policy is not taken"
        ) from None


def _yaml_line(document: str) -> int | None:
    """Where a document stops being YAML, for a syntax error. Its events are read one by
    one, never composed into nested objects: the document may be nested deeper than any
    stack (which the policy's own reader refuses)."""
    try:
        for _event in yaml.parse(document, Loader=yaml.SafeLoader):
            pass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        return None if mark is None else mark.line + 1
    except yaml.YAMLError:
        return None
    return None
