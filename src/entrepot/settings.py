"""Every option of a node in one typed object.

Values come, in order of precedence, from keyword arguments, environment variables
``ENTREPOT_<NAME>`` and the defaults below. Limits are on by default; an error that
hits one names the setting that raises it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENTREPOT_", extra="forbid")

    home: Path = Field(Path(".entrepot"), description="The node's home directory.")
    db: str | None = Field(
        None,
        description="Metadata database URL; default sqlite:///<home>/node.db. "
        "A postgresql:// URL runs the same code path on PostgreSQL.",
    )
    engine: str = Field("duckdb", description="Analytical engine backend, by registered name.")

    host: str = Field("127.0.0.1", description="Address `entrepot serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `entrepot serve` listens on.")

    engine_threads: int = Field(2, ge=1, description="Threads the analytical engine may use.")
    engine_memory_limit: str = Field("4GB", description="Memory the analytical engine may use.")
    query_timeout_s: float = Field(60.0, gt=0, description="Wall-clock limit of one query.")
    max_epsilon_per_query: float = Field(
        1.0, gt=0, description="Node-wide cap on the ε one query may spend."
    )
    report_rows: int = Field(
        20, ge=0, description="Offending rows listed per validation report (counts are complete)."
    )
    max_upload_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest raw file a provider may publish."
    )
    request_body_max_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest HTTP request body the API accepts."
    )
    http_timeout_s: float = Field(30.0, gt=0, description="Timeout of outgoing HTTP calls.")
    log_head_every_entries: int = Field(
        1000, ge=1, description="Sign a new transparency tree head at least every N entries."
    )
    log_head_every_s: float = Field(
        60.0, gt=0, description="Sign a new transparency tree head at least every T seconds."
    )

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'node.db'}"
