"""Releases as Delta Sharing tables: what a consumer's token lists, reads and downloads.

A share profile's token is a sharing token (:class:`~entrepot.exchange.accounts.Scope`):
the API accepts it on the Delta Sharing routes only, so the profile file can be handed
to a BI tool or a notebook without the rest of what its account may do.

A consumer sees only the active releases made for it while the very grant each was
made under is in force (a later grant of the same consumer reads none of them); each is
the table ``<provider>.<dataset>.<kind>-<number>`` (share, schema, table). Reading a
table hands out one pre-signed URL per file, served by the node itself: the URL
carries a token that names the release, the consumer, the bearer token that asked for
it and an expiry (``share_url_ttl_s`` from now, or that bearer token's own expiry if
it comes first), sealed with XSalsa20-Poly1305 (libsodium, through PyNaCl) under a key
derived with keyed BLAKE2b from the node's own secret key: no one else can make, alter
or read one (a token's id is half of the token, and is not shown to whoever holds the
URL). So it works without the bearer token, as the protocol's clients expect, and stops
working when it expires, when the release is revoked, when the grant it was made under
ends, or when that bearer token is revoked or expires (a leaked profile's token revoked
ends the URLs it was handed too).
Every read of a table is metered as a use of the consumer's grant and logged
(``download``), and the token itself never is.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from nacl.encoding import RawEncoder
from nacl.exceptions import CryptoError
from nacl.hash import blake2b
from nacl.secret import SecretBox
from sqlalchemy import select

from entrepot._text import with_article
from entrepot.clock import as_utc, utcnow
from entrepot.errors import Forbidden, InvalidInput, NotFound, param
from entrepot.exchange.accounts import Actor, ApiToken, IssuedToken, Organization, Role, Scope
from entrepot.exchange.release import ReleaseInfo, Releases, parse_ident

__all__ = ["FileGrant", "Sharing", "spark_schema"]

# The table version of a release: a release never changes once made.
TABLE_VERSION = 0
_CONTEXT = b"entrepot delta-sharing file url v2"
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class FileGrant:
    """What a valid file URL lets its holder read: a release of a consumer, until the
    expiry and while the bearer token that asked for it (``token_id``, its public id)
    is live."""

    release: int
    consumer_id: int
    expires_ms: int
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ms(moment: datetime) -> int:
    """``moment``, a naive UTC datetime as the node keeps them, in ms since the epoch."""
    return int(as_utc(moment).timestamp() * 1000)


def _grant_of(payload: str) -> FileGrant:
    """The grant a URL's sealed payload names: ``release.consumer.expiry.token id``;
    ValueError when it is not one."""
    release, consumer, expires, token_id = payload.split(".")
    return FileGrant(int(release), int(consumer), int(expires), token_id)


_SPARK_TYPES: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
    (pa.types.is_string, "string"),
    (pa.types.is_large_string, "string"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "byte"),
    (pa.types.is_int16, "short"),
    (pa.types.is_int32, "integer"),
    (pa.types.is_int64, "long"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (pa.types.is_date32, "date"),
    (pa.types.is_timestamp, "timestamp"),
)


def spark_schema(schema: pa.Schema) -> str:
    """The protocol's schema string (Spark's JSON schema) for a Parquet file's schema."""
    fields = []
    for f in schema:
        spark = next((name for test, name in _SPARK_TYPES if test(f.type)), "string")
        fields.append({"name": f.name, "type": spark, "nullable": True, "metadata": {}})
    return json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))


class Sharing:
    """The Delta Sharing view of one node's releases."""

    def __init__(
        self,
        releases: Releases,
        *,
        secret: bytes,
        ttl_s: int,
        open_file: Callable[[str], BinaryIO],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.releases = releases
        self._box = SecretBox(
            blake2b(_CONTEXT, key=secret[:64], digest_size=SecretBox.KEY_SIZE, encoder=RawEncoder)
        )
        self.ttl_s = ttl_s
        self.open_file = open_file
        self.clock = clock

    def issue_token(self, consumer: Actor) -> IssuedToken:
        """A new sharing token of the consumer's account, for its profile file (shown
        once): it reads the consumer's tables, and nothing else of the API."""
        if consumer.role != Role.CONSUMER:
            raise Forbidden(
                f"{with_article(consumer.role)} account has no releases to read",
                hint="a share profile is a consumer's: act as the consumer organization "
                f"the releases are made for ({param('as')} ORG)",
                role=consumer.role,
            )
        account = consumer.account or consumer.org_slug
        return self.releases.accounts.issue_token(consumer, account, scope=Scope.SHARING)

    # -- listing -----------------------------------------------------------------

    def tables(self, consumer: Actor) -> list[ReleaseInfo]:
        return self.releases.shared(consumer)

    def shares(self, consumer: Actor) -> list[str]:
        return sorted({info.share["share"] for info in self.tables(consumer)})

    def schemas(self, consumer: Actor, share: str) -> list[str]:
        found = sorted(
            {i.share["schema"] for i in self.tables(consumer) if i.share["share"] == share.lower()}
        )
        if not found:
            raise NotFound(f"no share {share!r}", hint="list the shares your token sees")
        return found

    def in_schema(self, consumer: Actor, share: str, schema: str | None) -> list[ReleaseInfo]:
        found = [
            i
            for i in self.tables(consumer)
            if i.share["share"] == share.lower()
            and (schema is None or i.share["schema"] == schema.lower())
        ]
        if not found:
            raise NotFound(
                f"no schema {schema!r} in share {share!r}" if schema else f"no share {share!r}",
                hint="list the shares and schemas your token sees",
            )
        return found

    def table(self, consumer: Actor, share: str, schema: str, table: str) -> ReleaseInfo:
        """The release behind a table name; 404 for any table the consumer may not read."""
        _, _, number = table.lower().rpartition("-")
        try:
            ident = parse_ident(number)
        except InvalidInput:
            raise NotFound(f"no table {table!r}", hint="list the tables of the schema") from None
        info = self.releases.readable(consumer, ident)
        if (info.share["share"], info.share["schema"], info.share["table"]) != (
            share.lower(),
            schema.lower(),
            table.lower(),
        ):
            raise NotFound(f"no table {table!r}", hint="list the tables of the schema")
        return info

    # -- reading -----------------------------------------------------------------

    def metadata(self, info: ReleaseInfo) -> dict[str, Any]:
        with self.open_file(info.record.name) as handle:
            schema = pq.read_schema(handle)
        return {
            "id": f"{info.record.name[:8]}-{info.record.id}",
            "name": info.share["table"],
            "description": f"{info.record.kind} release {info.ident} of {info.dataset}",
            "format": {"provider": "parquet"},
            "schemaString": spark_schema(schema),
            "partitionColumns": [],
            "configuration": {},
            "size": info.record.size_bytes,
            "numFiles": 1,
        }

    def files(
        self, consumer: Actor, info: ReleaseInfo, base_url: str, token_id: str
    ) -> list[dict[str, Any]]:
        """The release's file, with a fresh pre-signed URL that lives no longer than the
        bearer token ``token_id`` that asked for it; metered and logged as a read.

        The URL's expiry, the one it advertises and the one sealed in it, is the
        earlier of ``ttl_s`` from now and that token's own: a client that trusts the
        advertised time never holds a URL that is refused before it.
        """
        assert consumer.org_id is not None
        self.releases.read(consumer, info, files=1)
        now_ms = _ms(self.clock())
        with self.releases.node.db.read() as session:
            token_expires = session.scalar(
                select(ApiToken.expires_at).where(ApiToken.token_id == token_id)
            )
        # A token gone since it was authenticated (an ended portal session's row is
        # deleted) ends now, as its URLs would.
        token_ms = now_ms if token_expires is None else _ms(token_expires)
        expires_ms = min(now_ms + self.ttl_s * 1000, token_ms)
        token = self.sign(FileGrant(info.record.id, consumer.org_id, expires_ms, token_id))
        stats = {"numRecords": info.record.rows}
        return [
            {
                "url": f"{base_url.rstrip('/')}/files/{token}",
                "id": info.record.sha256,
                "partitionValues": {},
                "size": info.record.size_bytes,
                "stats": json.dumps(stats),
                "expirationTimestamp": expires_ms,
            }
        ]

    # -- file URLs ---------------------------------------------------------------

    def sign(self, grant: FileGrant) -> str:
        """A URL token for ``grant``, sealed: only this node makes, alters or reads one."""
        payload = f"{grant.release}.{grant.consumer_id}.{grant.expires_ms}.{grant.token_id}"
        return _b64(bytes(self._box.encrypt(payload.encode())))

    def check(self, token: str) -> FileGrant:
        """The grant a URL token carries; refused if forged, malformed or expired."""
        try:
            grant = _grant_of(self._box.decrypt(_unb64(token)).decode())
        except (CryptoError, ValueError, UnicodeDecodeError):
            raise InvalidInput(
                "not a file URL of this node", hint="ask for the table again"
            ) from None
        if grant.expires_ms < _ms(self.clock()):
            raise Forbidden(
                "this file URL has expired",
                hint="read the table again for a fresh URL (setting share_url_ttl_s)",
                setting="share_url_ttl_s",
            )
        return grant

    def open(self, grant: FileGrant) -> ReleaseInfo:
        """The release a valid URL names, if it is still readable by its consumer and
        the bearer token that asked for it is live; else the same 404."""
        with self.releases.node.db.read() as session:
            slug = session.scalar(
                select(Organization.slug).where(Organization.id == grant.consumer_id)
            )
        if slug is None or not self.releases.accounts.live(grant.token_id):
            raise NotFound("no such file", hint="ask for the table again")
        return self.releases.readable(self.releases.accounts.actor(slug), grant.release)

    def chunks(self, info: ReleaseInfo, start: int, length: int) -> Iterator[bytes]:
        """``length`` bytes of the release's file from ``start``, in chunks; the file is
        opened on the first chunk asked for and closed after the last."""
        with self.open_file(info.record.name) as handle:
            handle.seek(start)
            left = length
            while left > 0:
                block = handle.read(min(_CHUNK, left))
                if not block:
                    break
                left -= len(block)
                yield block
