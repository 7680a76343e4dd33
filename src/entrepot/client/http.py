"""The client interface over HTTP: what the CLI uses once `entrepot login` stored a server.

Each operation is one call of the HTTP API; the answer is the API's JSON body, so it
equals what :class:`~entrepot.client.local.LocalClient` returns in-process. Timeouts
are strict by default (connect 5 s, everything else ``timeout_s``). An error answered
by the server is raised again as the same class of the error tree, with its message,
hint and fields, so the CLI prints it as it would a local one. The token lives only
in the Authorization header; it is never printed, logged or put in a URL, and it is
sent over plain ``http://`` only to this machine (a loopback address) unless the
caller allows it by name (``plain_http``, the setting ``allow_plain_http``;
:mod:`entrepot._urls`).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import httpx

from entrepot._urls import plain_http_refused
from entrepot.client.protocol import POLICY_DOCUMENT, Advance, Progress, Standards
from entrepot.errors import Conflict, InvalidInput, NotFound, PeerError, from_body

if TYPE_CHECKING:
    from entrepot.transparency.heads import TreeHead

__all__ = ["HttpClient"]

# A server that does not accept a connection within this is down or unreachable.
_CONNECT_TIMEOUT_S = 5.0
# Items asked for per page when a command reads a whole list (the server may cap it).
_PAGE = 500
# A publish unanswered in time is sent once more, under the same Idempotency-Key.
_PUBLISH_ATTEMPTS = 2


def _raise_for(response: httpx.Response, url: str) -> None:
    try:
        body = response.json()["error"]
        if not all(isinstance(body.get(key), str) for key in ("code", "message")):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise PeerError(
            f"{url} answered HTTP {response.status_code} without an entrepot error body",
            hint="check that the login URL points at an entrepot server",
        ) from None
    raise from_body(body)


def _check_finite(body: Any, where: str) -> None:
    """Refuse a number JSON cannot carry (NaN, ±infinity) anywhere in ``body``, naming
    its field, before anything is sent."""
    if isinstance(body, float) and not math.isfinite(body):
        raise InvalidInput(
            f"{where or 'the request'} is {body}, not a finite number",
            hint="give a finite number",
        )
    if isinstance(body, dict):
        for key, value in body.items():
            _check_finite(value, f"{where}.{key}" if where else str(key))
    elif isinstance(body, list | tuple):
        for i, value in enumerate(body):
            _check_finite(value, f"{where}[{i}]")


def _sendable_mapping(path: Path) -> bytes:
    """The mapping to upload, read and checked here as a local publish reads it (a
    refusal names the file); each `codes_file` is read beside the mapping and sent inline
    as `codes:` (the server cannot read this machine's files)."""
    from entrepot.standards.mapping import load_mapping, read_yaml, write_yaml

    # Files relative to the mapping, inline codes over the file's.
    resolved = load_mapping(path)
    text = path.read_text(encoding="utf-8-sig")
    if "codes_file" not in text:
        return path.read_bytes()
    document = read_yaml(text, str(path))
    for target, column in document["columns"].items():
        found = resolved.column(target)
        if isinstance(column, dict) and "codes_file" in column and found is not None:
            del column["codes_file"]
            column["codes"] = dict(found.codes)
    return write_yaml(document).encode("utf-8")


def _publish_timed_out(url: str, provider: str | None, dataset: str, key: str) -> PeerError:
    """A publish sent whole, twice, and unanswered: the server may still commit it."""
    from entrepot.vault.refs import dataset_slug_from_title

    ref = f"{provider or 'ORG'}/{dataset_slug_from_title(dataset)}"
    return PeerError(
        f"{url} did not answer the publish in time, and may still commit the version: "
        f"the whole file was sent, under Idempotency-Key {key}",
        hint=f"see whether it did with `entrepot dataset versions {ref}`"
        + ("" if provider else " (ORG: `entrepot whoami`)")
        + f", or publish again with --idempotency-key {key}: the server answers the first "
        "publish again and never adds a second version; raise ENTREPOT_HTTP_TIMEOUT_S for "
        "large files",
        timed_out="answer",
        idempotency_key=key,
    )


class HttpClient:
    """The client interface over HTTP: one entrepot server, as one token's account."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        plain_http: bool = False,
        transport: Any = None,
    ) -> None:
        refused = None if plain_http else plain_http_refused(url, "the token and every answer")
        if refused is not None:
            raise refused
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s, connect=min(_CONNECT_TIMEOUT_S, timeout_s)),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"HttpClient(url={self.url!r})"

    def _unreachable(self, method: str, path: str, error: httpx.TransportError) -> PeerError:
        if isinstance(error, httpx.TimeoutException):
            # A read time-out came after the whole request was sent: the server may act on it.
            return PeerError(
                f"{self.url} did not answer {method} {path} in time",
                hint="check the server, or raise ENTREPOT_HTTP_TIMEOUT_S",
                timed_out="answer" if isinstance(error, httpx.ReadTimeout) else "request",
            )
        return PeerError(
            f"cannot reach {self.url} ({type(error).__name__})",
            hint="is `entrepot serve` running there? `entrepot logout` to work locally",
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; the decoded JSON body, or the error tree's error."""
        if "json" in kwargs:
            _check_finite(kwargs["json"], "")
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self._unreachable(method, path, error) from None
        if not response.is_success:
            _raise_for(response, self.url)
        if not response.content:
            return None
        content_type = response.headers.get("content-type", "")
        return response.json() if "json" in content_type else response.text

    def items(
        self, path: str, *, most: int | None = None, start: int = 0, **params: Any
    ) -> list[Any]:
        """The items of a paged list route from the ``start``-th, page after page (the
        first ``most`` of them)."""
        found: list[Any] = []
        offset: int | None = start
        while offset is not None and (most is None or len(found) < most):
            limit = _PAGE if most is None else min(_PAGE, most - len(found))
            page = self.get(path, limit=limit, offset=offset, **params)
            found.extend(page["items"])
            offset = page["next_offset"]
        return found

    def lines(self, path: str) -> Iterator[bytes]:
        """The lines of a JSON-lines route as the exact bytes sent, read as a stream."""
        try:
            with self._http.stream("GET", path, headers={"Accept": "application/jsonl"}) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    _raise_for(reply, self.url)
                rest = b""
                for chunk in reply.iter_bytes():
                    *whole, rest = (rest + chunk).split(b"\n")
                    yield from whole
        except httpx.TransportError as error:
            raise self._unreachable("GET", path, error) from None
        if rest:
            raise PeerError(
                f"{self.url}{path} ended inside a line",
                hint="the transfer was cut; run the command again",
            )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.request("POST", path, **kwargs)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- who ----------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/v1/me")
        return found

    def whoami(self) -> dict[str, Any]:
        return {"server": self.url, "home": None, **self.me()}

    # -- catalog and datasets ------------------------------------------------------

    def catalog_datasets(
        self,
        provider: str | Sequence[str] | None = None,
        *,
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        providers = [provider] if isinstance(provider, str) else list(provider or ())
        facets = _facet_params(providers, standard, region, sector)
        return self.items("/v1/catalog/datasets", most=limit, start=offset, **facets)

    def catalog_search(
        self,
        query: str,
        limit: int | None = None,
        *,
        offset: int = 0,
        provider: Sequence[str] = (),
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        facets = _facet_params(provider, standard, region, sector)
        return self.items("/v1/catalog/search", most=limit, start=offset, q=query, **facets)

    def catalog_search_federated(
        self,
        query: str,
        limit: int = 20,
        *,
        provider: Sequence[str] = (),
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        facets = _facet_params(provider, standard, region, sector)
        found: list[dict[str, Any]] = self.get(
            "/v1/catalog/federated", q=query, limit=limit, **facets
        )["items"]
        return found

    def catalog_show(self, dataset: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/v1/catalog/datasets/{dataset_path(dataset)}")
        return found

    def catalog_dcat(self, base_url: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/v1/catalog/dcat", base_url=base_url)
        return found

    def dataset_versions(
        self, dataset: str, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        path = f"/v1/datasets/{dataset_path(dataset)}/versions"
        return self.items(path, most=limit, start=offset)

    def publish(
        self,
        source: Path,
        *,
        standard: str,
        title: str,
        provider: str | None = None,
        mapping: Path | None = None,
        dataset: str | None = None,
        description: str = "",
        region: Sequence[str] = (),
        sector: str | None = None,
        on_error: str = "reject",
        progress: Advance | None = None,
        force: bool = False,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if Path(standard).is_file():
            raise InvalidInput(
                f"--standard {standard} is a file on this machine; a server publishes only "
                "in the standards it ships",
                hint="pick one from `entrepot standard list`, or `entrepot logout` to publish "
                "on the local node",
            )
        if provider is not None:
            org = self.me()["org"]
            if org != provider:
                raise InvalidInput(
                    f"--provider {provider}, but the logged-in token acts for {org}",
                    hint=f"drop --provider (the server publishes for {org}), or log in with "
                    f"a token of {provider}",
                )
        form: dict[str, Any] = {"standard": standard, "title": title, "description": description}
        form["on_error"] = on_error
        if region:
            form["region"] = list(region)
        if sector is not None:
            form["sector"] = sector
        if force:
            form["force"] = "true"
        if dataset is not None:
            form["dataset"] = dataset
        mapping_bytes = None
        if mapping is not None:
            mapping_bytes = _sendable_mapping(mapping)
        # One key per publish, sent again on its retry: the server answers a repeat with
        # what the first request did, so a retry after a time-out never adds a version.
        key = idempotency_key or secrets.token_urlsafe(18)
        for attempt in range(_PUBLISH_ATTEMPTS):
            with open_raw(source) as handle:
                files: dict[str, Any] = {
                    "file": (source.name, _Upload(handle, Path(source).stat().st_size, progress))
                }
                if mapping is not None:
                    files["mapping"] = (mapping.name, mapping_bytes, "application/yaml")
                try:
                    data: dict[str, Any] = self.post(
                        "/v1/datasets", data=form, files=files, headers={"Idempotency-Key": key}
                    )
                except PeerError as error:
                    if error.details.get("timed_out") != "answer":
                        raise
                    if attempt + 1 < _PUBLISH_ATTEMPTS:
                        continue
                    raise _publish_timed_out(self.url, provider, dataset or title, key) from None
                except Conflict as error:
                    # The retry found the first request still running on the server.
                    if attempt == 0 or error.details.get("idempotency") != "running":
                        raise
                    raise _publish_timed_out(self.url, provider, dataset or title, key) from None
                return data
        raise AssertionError("unreachable: every attempt returns or raises")

    # -- standards -----------------------------------------------------------------

    def standards(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        return self.items("/v1/standards", most=limit, start=offset)

    def standard(self, name: str) -> dict[str, Any]:
        return self._shipped(f"/v1/standards/{_segment(name)}", lambda: _library().standard(name))

    def codelist(self, name: str) -> dict[str, Any]:
        path = f"/v1/standards/codelists/{_segment(name)}"
        return self._shipped(path, lambda: _library().codelist(name))

    def _shipped(self, path: str, library: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The server's standard or code list at ``path``; one it refuses is refused in
        the library's words (the package ships the same names here)."""
        try:
            found: dict[str, Any] = self.get(path)
        except (NotFound, InvalidInput) as refused:
            library()
            raise refused from None
        return found

    # -- policies ------------------------------------------------------------------

    def policy(self, dataset: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/v1/policies/{dataset_path(dataset)}")
        return found

    def set_policy(
        self, dataset: str, document: str, *, where: str = POLICY_DOCUMENT
    ) -> dict[str, Any]:
        path = f"/v1/policies/{dataset_path(dataset)}"
        try:
            found: dict[str, Any] = self.request("PUT", path, json={"document": document})
        except InvalidInput as refused:
            raise _named(refused, where) from None
        return found

    # -- access contracts ----------------------------------------------------------

    def purposes(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        return self.items("/v1/access/purposes", most=limit, start=offset)

    def request_access(
        self,
        dataset: str,
        *,
        purpose: str,
        epsilon: float,
        until: date,
        since: date | None = None,
        actions: Sequence[str] = ("aggregate-query",),
        note: str = "",
    ) -> dict[str, Any]:
        body = {
            "dataset": dataset,
            "purpose": purpose,
            "epsilon": epsilon,
            "until": until.isoformat(),
            "since": None if since is None else since.isoformat(),
            "actions": list(actions),
            "note": note,
        }
        created: dict[str, Any] = self.post("/v1/access/requests", body)
        return created

    def access_requests(
        self, *, pending: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        return self.items("/v1/access/requests", most=limit, start=offset, pending=pending)

    def access_grants(
        self, *, active: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        return self.items("/v1/access/grants", most=limit, start=offset, active=active)

    def access_remote(self) -> list[dict[str, Any]]:
        return self.items("/v1/access/remote")

    def access_show(self, ident: str) -> dict[str, Any]:
        found: dict[str, Any]
        # As the library reads it: GRANT-n is a grant, anything else a request number.
        if ident.strip().upper().startswith("GRANT"):
            found = self.get(f"/v1/access/grants/{_segment(ident)}")
        else:
            found = self.get(f"/v1/access/requests/{_segment(ident)}")
        return found

    def grant_access(
        self,
        request: str,
        *,
        epsilon: float | None = None,
        max_queries: int | None = None,
        price_per_query: str = "0",
        price_per_epsilon: str = "0",
        actions: Sequence[str] | None = None,
        until: date | None = None,
    ) -> dict[str, Any]:
        body = {
            "epsilon": epsilon,
            "max_queries": max_queries,
            "price_per_query": price_per_query,
            "price_per_epsilon": price_per_epsilon,
            "actions": None if actions is None else list(actions),
            "until": None if until is None else until.isoformat(),
        }
        granted: dict[str, Any] = self.post(f"/v1/access/requests/{_segment(request)}/grant", body)
        return granted

    def refuse_access(self, request: str, reason: str = "") -> dict[str, Any]:
        found: dict[str, Any] = self.post(
            f"/v1/access/requests/{_segment(request)}/refuse", {"reason": reason}
        )
        return found

    def revoke_grant(self, grant: str, reason: str = "") -> dict[str, Any]:
        found: dict[str, Any] = self.post(
            f"/v1/access/grants/{_segment(grant)}/revoke", {"reason": reason}
        )
        return found

    def grant_odrl(self, grant: str, base_url: str | None = None) -> dict[str, Any]:
        path = f"/v1/access/grants/{_segment(grant)}/odrl"
        found: dict[str, Any] = self.get(path, base_url=base_url)
        return found

    # -- budgets and usage -----------------------------------------------------------

    def budgets(
        self, *, closed: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        return self.items("/v1/budgets", most=limit, start=offset, closed=closed)

    def set_cap(self, dataset: str, epsilon: float) -> dict[str, Any]:
        cap: dict[str, Any] = self.post(
            "/v1/budgets/caps", {"dataset": dataset, "epsilon": epsilon}
        )
        return cap

    def usage(self, month: str, party: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/v1/usage", month=month, party=party, format="json")
        return found

    def usage_csv(self, month: str, party: str | None = None) -> str:
        found: str = self.get("/v1/usage", month=month, party=party, format="csv")
        return found

    # -- accounts and providers ------------------------------------------------------

    def accounts(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        return self.items("/v1/accounts", most=limit, start=offset)

    def tokens(
        self, account: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        if account is None:
            return self.items("/v1/tokens", most=limit, start=offset)
        return self.items(f"/v1/accounts/{_segment(account)}/tokens", most=limit, start=offset)

    def create_account(
        self, name: str, role: str, *, org: str | None = None, org_name: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "role": role, "org": org, "org_name": org_name}
        created: dict[str, Any] = self.post("/v1/accounts", body)
        return created

    def issue_token(self, account: str) -> dict[str, Any]:
        issued: dict[str, Any] = self.post(f"/v1/accounts/{_segment(account)}/tokens")
        return issued

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.post(f"/v1/tokens/{_segment(token_id)}/revoke")
        return found

    def providers(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        return self.items("/v1/providers", most=limit, start=offset)

    def add_provider(self, slug: str, name: str) -> dict[str, Any]:
        added: dict[str, Any] = self.post("/v1/providers", {"slug": slug, "name": name})
        return added

    # -- queries and openings ------------------------------------------------------

    def query(
        self,
        sql: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        progress: Advance | None = None,
    ) -> dict[str, Any]:
        # A join's steps run on the server: nothing to follow here.
        answered: dict[str, Any] = self.post(
            "/v1/queries", {"sql": sql, "epsilon": epsilon, "purpose": purpose}
        )
        return answered

    def join_overlap(
        self,
        left: str,
        right: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        progress: Advance | None = None,
    ) -> dict[str, Any]:
        # Read as a local join reads them: a reference it would refuse is refused here.
        sides = {"left": dataset_path(left), "right": dataset_path(right)}
        answered: dict[str, Any] = self.post(
            "/v1/queries/overlap", {**sides, "epsilon": epsilon, "purpose": purpose}
        )
        return answered

    def query_opening(self, index: int) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/v1/openings/queries/{index}")
        return found

    def version_opening(self, dataset: str, version: int) -> dict[str, Any]:
        found: dict[str, Any] = self.get(
            f"/v1/openings/datasets/{dataset_path(dataset)}/versions/{version}"
        )
        return found

    # -- releases and sharing ------------------------------------------------------

    def release_plan(self, dataset: str, consumer: str, **spec: Any) -> dict[str, Any]:
        body = {"dataset": dataset, "consumer": consumer, **spec}
        planned: dict[str, Any] = self.post("/v1/releases/plan", body)
        return planned

    def release_create(self, dataset: str, consumer: str, **spec: Any) -> dict[str, Any]:
        body = {"dataset": dataset, "consumer": consumer, **spec}
        made: dict[str, Any] = self.post("/v1/releases", body)
        return made

    def releases(self, *, state: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.items("/v1/releases", state=state)
        return found

    def release_show(self, release: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/v1/releases/{_segment(release.strip())}")
        return found

    def release_revoke(self, release: str, reason: str = "") -> dict[str, Any]:
        path = f"/v1/releases/{_segment(release.strip())}/revoke"
        revoked: dict[str, Any] = self.post(path, {"reason": reason})
        return revoked

    def share_profile(self) -> dict[str, Any]:
        profile: dict[str, Any] = self.post("/v1/sharing/profile")
        return profile

    # -- the transparency log ------------------------------------------------------

    def audit_entries(
        self,
        *,
        dataset: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        filters = {
            "dataset": dataset,
            "kind": kind,
            "since": None if since is None else since.isoformat(),
        }
        if offset is None:
            # The last `limit` entries: the first page's total says where they start.
            total = self.get("/v1/audit/entries", limit=1, **filters)["total"]
            offset = max(0, total - limit)
        return self.items("/v1/audit/entries", most=limit, start=offset, **filters)

    def audit_head(self) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/v1/audit/head")
        return found

    def audit_sign_head(self) -> dict[str, Any]:
        found: dict[str, Any] = self.post("/v1/audit/heads")
        return found

    def audit_inclusion(self, index: int, size: int | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/v1/audit/proofs/inclusion/{index}", size=size)
        return found

    def audit_consistency(self, size1: int, size2: int) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/v1/audit/proofs/consistency", size1=size1, size2=size2)
        return found

    def audit_reconciliation(self) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/v1/audit/reconciliation")
        return found

    def audit_export_heads(self) -> Iterator[bytes]:
        return self.lines("/v1/audit/export/heads")

    def audit_export_entries(self) -> Iterator[bytes]:
        return self.lines("/v1/audit/export/entries")

    def audit_verify(
        self,
        earlier: TreeHead | None = None,
        *,
        full: bool = False,
        node_key: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Fetch heads, proofs and entries and check them here with the node's key.

        The key is ``node_key``, else the earlier head's, else the one the server's
        first head names (returned: compare it with one you trust).
        """
        from entrepot.exchange.reconcile import WITNESS_NOTE, Reconciliation
        from entrepot.transparency import read_verify_key, remote

        heads = remote.source_heads(self) if full or earlier is None else []
        if node_key is not None:
            key = read_verify_key(node_key, Path(node_key))
        else:
            key = remote.source_key(earlier or (heads[0] if heads else None))
        data: dict[str, Any] = {"ok": True, "key": bytes(key).hex()}
        if earlier is not None:
            data["consistency"] = remote.source_extends(self, earlier, key)
        if full or earlier is None:
            data["check"] = remote.verify_source(self, heads, key, progress).to_json()
            # The server compares its own database with its own log: reported, not proved.
            found = Reconciliation.from_json(self.audit_reconciliation())
            found.raise_for_differences()
            data["database"] = found.to_json()
            data["needs_witness"] = WITNESS_NOTE
        return data

    def audit_export(self, directory: Path) -> dict[str, Any]:
        from entrepot.transparency.remote import export_source

        return export_source(self, directory)


def dataset_path(ref: str) -> str:
    """``provider/dataset`` for a URL path, read by the library's rule: a reference it
    would refuse is refused here, with its words, before anything is sent."""
    from entrepot.vault.refs import DatasetRef

    return str(DatasetRef.parse(ref))


def _named(refused: InvalidInput, where: str) -> InvalidInput:
    """A refusal of the document the server read under its own name, naming it ``where``
    (the file it was read from here), as a local call names it."""
    prefix = f"{POLICY_DOCUMENT}:"
    if refused.message.startswith(prefix):
        refused.message = f"{where}:{refused.message.removeprefix(prefix)}"
        refused.args = (refused.message,)
    return refused


def _segment(text: str) -> str:
    """``text`` as one segment of a URL path: every character escaped, ``/`` included.
    An empty one, which no path can carry, is sent blank for the server to refuse."""
    return quote(text or " ", safe="")


def _library() -> Standards:
    from entrepot.client.shipped import ShippedStandards

    return ShippedStandards()


def open_raw(source: Path) -> BinaryIO:
    """A raw file to publish, named directly: no link, pipe or device."""
    from entrepot._files import check_regular

    check_regular(source)
    return source.open("rb")


class _Upload:
    """A file httpx streams in chunks, reporting the bytes sent so far."""

    def __init__(self, handle: BinaryIO, total: int, advance: Advance | None) -> None:
        self._handle = handle
        self._total = total
        self._sent = 0
        self._advance = advance

    def fileno(self) -> int:
        # httpx reads the size from the descriptor to send a Content-Length.
        return self._handle.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        self._sent = 0
        return self._handle.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._sent += len(chunk)
        if self._advance is not None:
            if chunk:
                self._advance("upload", self._sent, self._total)
            else:
                # Sent: what remains is the server's work, of unknown length.
                self._advance("server", 0, 0)
        return chunk


def _facet_params(
    provider: Sequence[str], standard: Sequence[str], region: Sequence[str], sector: Sequence[str]
) -> dict[str, list[str] | None]:
    """The catalog routes' facet parameters, each repeated once per value (absent if none)."""
    given = {"provider": provider, "standard": standard, "region": region, "sector": sector}
    return {name: list(values) or None for name, values in given.items()}
