"""Every option of a node in one typed object.

Values come, in order of precedence, from keyword arguments, environment variables
``ENTREPOT_<NAME>`` (any case) and the defaults below, and are validated as one
pydantic model. Limits are on by default; an error that hits one names the setting
that raises it.

The environment is read here rather than by pydantic-settings: importing it cost
every command about 0.15 s of CPU, for one prefix over a flat set of scalar fields.

The model's validator is built with pydantic's plugins switched off, as Typer builds its
parameters' validators: looking plugins up reads the entry points of every installed
distribution, about 20 M instructions of each command that reads a setting, for a plugin
that would only watch the node's configuration being read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Settings"]

_PREFIX = "ENTREPOT_"
_NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
# The longest wait or timeout a setting may name: longer ones overflow the clocks of
# the threads and sockets they are handed to, and would not end anyway.
_DAY_S = 24 * 3600
# A database URL's scheme: sqlite:///, postgresql://, postgresql+psycopg://.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A memory size as DuckDB and Spark both read it: 4GB, 512 MiB, 1.5gb.
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*[KMGT]i?B\s*", re.IGNORECASE)


class Settings(BaseModel):
    # Built below, once pydantic's plugins are off.
    # No setting means infinity or NaN: a limit must be a number.
    model_config = ConfigDict(extra="forbid", defer_build=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: Any) -> Any:
        """``ENTREPOT_<NAME>`` for each field not given as a keyword argument."""
        if not isinstance(given, dict):
            return given
        found = {
            name: value
            for key, value in os.environ.items()
            if key.upper().startswith(_PREFIX)
            and (name := key[len(_PREFIX) :].lower()) in cls.model_fields
        }
        return {**found, **given}

    home: Path = Field(Path(".entrepot"), description="The node's home directory.")
    db: str | None = Field(
        None,
        description="Metadata database URL; default sqlite:///<home>/node.db. "
        "A postgresql:// URL runs the same code path on PostgreSQL.",
    )
    engine: str = Field(
        "duckdb", description="Analytical engine backend, by registered name (duckdb, spark)."
    )
    spark_master: str | None = Field(
        None,
        description="With engine = spark: the Spark master URL (local[2], spark://host:7077, "
        "k8s://…); default local[<engine_threads>], Spark inside the node's process.",
    )
    spark_remote: str | None = Field(
        None,
        pattern=r"^sc://[^\s]+$",
        description="With engine = spark: a Spark Connect URL (sc://host:15002) to run "
        "queries on instead of a master; the cluster must see the vaults at the same paths.",
    )

    host: str = Field("127.0.0.1", description="Address `entrepot serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `entrepot serve` listens on.")
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="The URL clients reach the node at (behind a reverse proxy, the "
        "proxy's https:// URL); the ids of the DCAT catalog and of ODRL agreements start "
        "with it. Default: http://<host>:<port>/.",
    )
    node_name: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="The name peers know this node by (`<node>:provider/dataset`); "
        "default node-<first 8 hex digits of its public key>.",
    )
    peer_timeout_s: float = Field(
        10.0,
        gt=0,
        le=_DAY_S,
        description="Timeout of one call to a peer node, connecting and reading.",
    )
    peer_join_timeout_s: float = Field(
        600.0,
        gt=0,
        le=_DAY_S,
        description="Timeout of a join across nodes that this node asks a holder's node to "
        "lead: the leader blinds and matches both sides before it answers, which takes "
        "longer than one call for large sides.",
    )
    witness_timeout_s: float = Field(
        2.0,
        gt=0,
        le=_DAY_S,
        description="Timeout of one call to a peer asking it to cosign this node's checkpoint; "
        "a peer that does not answer in time leaves that cosignature out.",
    )
    peer_clock_skew_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="How far a peer's signed timestamp may be from this node's clock; "
        "older or newer messages are refused, and nonces are remembered this long.",
    )
    peer_response_max_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="Largest answer read from a peer node."
    )
    peer_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Times a call to a peer that may be repeated (catalog feed, grants, "
        "a query under its request id) is sent again after the peer did not answer.",
    )
    peer_backoff_s: float = Field(
        0.25,
        ge=0,
        le=10,
        description="Wait before the first repeat of a call to a peer; doubled at each "
        "repeat, never past 4 s.",
    )
    peer_breaker_failures: int = Field(
        5,
        gt=0,
        description="Failed calls in a row after which this node stops calling a peer "
        "for peer_breaker_pause_s.",
    )
    peer_breaker_pause_s: float = Field(
        30.0, gt=0, le=_DAY_S, description="How long calls to a peer that keeps failing are paused."
    )
    license: str = Field(
        "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0",
        description="IRI of the licence the node's answers are given under, stated in "
        "its DCAT catalog.",
    )

    engine_threads: int = Field(
        2, ge=1, le=1024, description="Threads the analytical engine may use."
    )
    engine_memory_limit: str = Field("4GB", description="Memory the analytical engine may use.")
    ingest_memory_limit: str = Field(
        "2GB",
        description="Memory validating one raw file may use; beyond it DuckDB spills to disk.",
    )
    query_timeout_s: float = Field(
        60.0, gt=0, le=_DAY_S, description="Wall-clock limit of one query."
    )
    share_url_ttl_s: int = Field(
        900,
        gt=0,
        le=7 * 24 * 3600,
        description="How long a release file's pre-signed URL (Delta Sharing) stays valid.",
    )
    release_max_rows: int = Field(
        1_000_000, gt=0, description="Most rows one synthetic release may hold."
    )
    report_rows: int = Field(
        20, ge=0, description="Offending rows listed per validation report (counts are complete)."
    )
    max_upload_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest raw file a provider may publish."
    )
    psi_max_rows: int = Field(
        20_000_000,
        ge=1,
        description="Most rows one side of a private join may blind: its version's rows, "
        "whatever its WHERE keeps.",
    )
    psi_workers: int = Field(
        0, ge=0, description="Processes that blind a private join's link keys; 0: one per core."
    )
    catalog_max_results: int = Field(
        200, ge=1, description="Most datasets one catalog search may return."
    )
    fault_point: str | None = Field(
        None,
        description="Testing only: a named point of the publish path where the process "
        "SIGKILLs itself (e.g. after-rename), to prove publishing is atomic.",
    )
    request_body_max_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest HTTP request body the API accepts."
    )
    request_body_timeout_s: float = Field(
        60.0,
        gt=0,
        le=_DAY_S,
        description="How long the API waits for a request body: this long, and as long "
        "again for each MiB that has arrived, so a body must come at 1 MiB per this many "
        "seconds on average (a 2 GiB upload may take 34 hours at the default); a slower "
        "one is refused with 408 and its connection closed.",
    )
    default_dataset_epsilon_cap: float = Field(
        10.0,
        gt=0,
        description="Global ε cap of a dataset across all consumers until its "
        "provider sets one (`entrepot budget set-cap`).",
    )
    token_ttl_days: int = Field(90, ge=1, description="Lifetime of a new API token, in days.")
    token_cache_ttl_s: float = Field(
        30.0,
        ge=0,
        le=_DAY_S,
        description="How long a token's Argon2id check is reused without re-hashing; "
        "revocation and expiry are read on every request. 0 disables the cache.",
    )
    token_hash_memory_kib: int = Field(
        65536,
        ge=8,
        description="Argon2id memory cost of API token hashes, in KiB (RFC 9106's "
        "second recommended profile: 64 MiB, 3 passes, 4 lanes).",
    )
    auth_failures_per_min: float = Field(
        6.0,
        gt=0,
        description="Failed authentications per minute, sustained, that one token id and "
        "one client address may make; past them a token that needs an Argon2id check is "
        "answered 429 without the check. A token already verified is never held back.",
    )
    auth_failures_burst: int = Field(
        5, ge=1, description="Failed authentications one token id may make at once."
    )
    auth_address_failures_burst: int = Field(
        20, ge=1, description="Failed authentications one client address may make at once."
    )
    auth_verify_concurrency: int = Field(
        2,
        ge=1,
        description="Argon2id checks one API worker runs at once; each holds "
        "token_hash_memory_kib of memory while it runs.",
    )
    auth_verify_wait_s: float = Field(
        2.0,
        ge=0,
        le=_DAY_S,
        description="How long a token waits for a free Argon2id check before the API "
        "answers 429 with Retry-After.",
    )
    request_header_max_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="Largest request line and headers `entrepot serve` reads; beyond it "
        "the server answers 400 and closes the connection, having held no more.",
    )
    currency: str = Field(
        "CNY",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 currency of contract prices and invoices.",
    )
    http_timeout_s: float = Field(
        30.0, gt=0, le=_DAY_S, description="Timeout of outgoing HTTP calls."
    )
    allow_plain_http: bool = Field(
        False,
        description="Let the CLI and the Python client call a server over plain "
        "http:// on another machine, its token and answers unencrypted on the way "
        "(http:// to a loopback address is always allowed).",
    )
    rate_limit_per_s: float = Field(
        50.0, gt=0, description="API requests per second one token may make, sustained."
    )
    rate_limit_burst: int = Field(
        200, ge=1, description="API requests one token may make at once, above the rate."
    )
    page_max: int = Field(500, ge=1, description="Most items one API list page returns.")
    api_query_concurrency: int = Field(
        2,
        ge=1,
        description="With api_query_workers = 0: private queries one API worker runs at "
        "once in its own threads; more wait their turn.",
    )
    api_query_workers: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) - 1),
        ge=0,
        description="Processes each API worker keeps to run private queries, so that other "
        "calls never wait for a query's turn at the interpreter; 0 runs queries in-process. "
        "The default leaves one core to serving: a query process on every core takes the "
        "CPU that catalog calls need (see benchmarks/RESULTS.md).",
    )
    api_query_queue: int = Field(
        64,
        ge=0,
        description="Private queries one API worker holds waiting for a free query process; "
        "beyond it the API answers 429.",
    )
    api_query_per_account: int = Field(
        4,
        ge=1,
        description="Private queries one account may have running or waiting on one API "
        "worker; beyond it the API answers 429, so no account takes every query process.",
    )
    api_refusals_per_minute: float = Field(
        60.0,
        gt=0,
        description="Refused private queries one account may have per minute (after a "
        "burst of 20); beyond it its queries answer 429 unscreened and unlogged.",
    )
    client_config: Path = Field(
        Path.home() / ".config" / "entrepot" / "remote.json",
        description="Where `entrepot login` keeps the server URL and token (mode 0600).",
    )
    log_head_every_entries: int = Field(
        1000, ge=1, description="Sign a new transparency tree head at least every N entries."
    )
    log_head_every_s: float = Field(
        60.0,
        gt=0,
        le=_DAY_S,
        description="Sign a new transparency tree head at least every T seconds.",
    )

    @field_validator("db")
    @classmethod
    def _a_database_url(cls, value: str | None) -> str | None:
        """A URL with its scheme; empty, as an unset variable often is, means the default."""
        if value and _SCHEME.match(value) is None:
            raise ValueError(
                "should be a database URL with its scheme, e.g. sqlite:////srv/node/node.db "
                "or postgresql://entrepot@db.internal/entrepot"
            )
        return value

    @field_validator("engine_memory_limit", "ingest_memory_limit")
    @classmethod
    def _a_size(cls, value: str) -> str:
        """A memory limit the engine can read, above zero (DuckDB takes -1 as no limit)."""
        match = _SIZE.fullmatch(value)
        if match is None or float(match.group(1)) <= 0:
            raise ValueError("should be a size above zero with its unit, e.g. 4GB or 512MiB")
        return value

    @property
    def base_url(self) -> str:
        """Where the node is published, ending with ``/``."""
        url = self.public_url or f"http://{self.host}:{self.port}/"
        return url if url.endswith("/") else url + "/"

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'node.db'}"


@contextmanager
def _without_pydantic_plugins() -> Iterator[None]:
    previous = os.environ.get(_NO_PLUGINS)
    os.environ[_NO_PLUGINS] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[_NO_PLUGINS]
        else:
            os.environ[_NO_PLUGINS] = previous


with _without_pydantic_plugins():
    Settings.model_rebuild(force=True)
