"""Releases over the Delta Sharing protocol, read by the official client from a live server."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from tests.api.conftest import running
from tests.api.delta_client import read, write_profile
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import CONSUMER, OUTSIDER, grant, released, seed, served_node

from entrepot.api import create_app
from entrepot.client.http import HttpClient
from entrepot.errors import PolicyViolation
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, token_id_of
from entrepot.exchange.node import Node
from entrepot.exchange.release import ReleaseSpec
from entrepot.exchange.sharing import FileGrant
from entrepot.settings import Settings

QUASI = ("visit_date", "district", "sex", "age_band")
TABLES = "/delta-sharing/shares/riverside-hospitals/schemas/outpatient-visits/tables"


def _token(ex: Exchange, org: str) -> str:
    return ex.accounts.issue_token(LOCAL, org).secret


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with served_node(tmp_path / "node") as opened:
        yield opened


@pytest.fixture
def world(node: Node, tmp_path: Path) -> Exchange:
    return released(node, tmp_path)


def test_the_official_client_lists_and_loads_a_release(
    world: Exchange, node: Node, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    [release] = world.releases.all(world.actor(CONSUMER))
    token = _token(world, CONSUMER)
    table = "riverside-hospitals.outpatient-visits.anonymized-1"
    with caplog.at_level(logging.INFO), running(create_app(node)) as api:
        profile = write_profile(tmp_path / "bureau.share", f"{api.base_url}/delta-sharing", token)
        found = read(profile, table)
    assert found.get("tables") == [table], found
    kept = pq.read_table(node.home / "releases" / f"{release.record.name}.parquet")
    assert found["rows"] == kept.num_rows == release.record.rows
    assert found["columns"] == kept.column_names
    # The release meets the model it claims, checked on what the client read.
    classes = Counter(tuple(r[c] for c in QUASI) for r in found["records"])
    assert min(classes.values()) >= 5
    assert not {"visit_id", "patient_id"} & set(found["columns"])
    # The read is logged, and neither the bearer token nor a file URL's token is.
    entries = [e for _, e in node.log.search(limit=50)]
    assert any(e["kind"] == "download" and e["release"] == "R-1" for e in entries)
    logged = " ".join(map(str, entries)) + caplog.text
    assert token not in logged
    assert not re.search(r"/files/(?!\{token\})", caplog.text)


def test_another_consumer_sees_no_table_and_cannot_read_one(
    world: Exchange, node: Node, tmp_path: Path
) -> None:
    with running(create_app(node)) as api:
        endpoint = f"{api.base_url}/delta-sharing"
        profile = write_profile(tmp_path / "x.share", endpoint, _token(world, OUTSIDER))
        found = read(profile, "riverside-hospitals.outpatient-visits.anonymized-1")
    assert found["tables"] == []
    assert found["error"]["status"] == 404


def test_a_revoked_release_is_no_longer_readable(
    world: Exchange, node: Node, tmp_path: Path
) -> None:
    token = _token(world, CONSUMER)
    with running(create_app(node)) as api:
        headers = {"Authorization": f"Bearer {token}"}
        path = TABLES
        answered = api.post(f"{path}/anonymized-1/query", headers=headers, json={})
        assert answered.status_code == 200
        assert answered.headers["delta-table-version"] == "0"
        url = next(line for line in answered.text.splitlines() if '"file"' in line)
        file_url = httpx.Response(200, content=url).json()["file"]["url"]
        assert api.get(file_url).status_code == 200

        world.releases.revoke(world.actor(PROVIDER), "R-1", "test")
        profile = write_profile(tmp_path / "b.share", f"{api.base_url}/delta-sharing", token)
        found = read(profile, "riverside-hospitals.outpatient-visits.anonymized-1")
        assert found["tables"] == []
        assert found["error"]["status"] == 404
        # A URL handed out before the revocation stops working at once.
        refused = api.get(file_url)
        assert refused.status_code == 404
        assert set(refused.json()) == {"errorCode", "message"}


def test_a_later_grant_for_aggregates_only_reads_no_release(
    world: Exchange, node: Node, tmp_path: Path
) -> None:
    token = _token(world, CONSUMER)
    headers = {"Authorization": f"Bearer {token}"}
    path = TABLES
    with running(create_app(node)) as api:
        answered = api.post(f"{path}/anonymized-1/query", headers=headers, json={})
        assert answered.status_code == 200
        url = next(line for line in answered.text.splitlines() if '"file"' in line)
        file_url = httpx.Response(200, content=url).json()["file"]["url"]

        # The grant the release was made under ends; the next is for aggregates only.
        held = world.contracts.authorize(world.actor(CONSUMER), DATASET, "release-download")
        world.contracts.revoke(world.actor(PROVIDER), held.ref, "project over")
        grant(world, CONSUMER, "market-analysis")
        reads = len(list(node.log.search(kind="download", limit=100)))
        profile = write_profile(tmp_path / "b.share", f"{api.base_url}/delta-sharing", token)
        found = read(profile, "riverside-hospitals.outpatient-visits.anonymized-1")
        assert found["tables"] == []
        assert found["error"]["status"] == 404
        assert api.post(f"{path}/anonymized-1/query", headers=headers, json={}).status_code == 404
        assert api.get(file_url).status_code == 404
        assert len(list(node.log.search(kind="download", limit=100))) == reads


def test_a_release_made_under_a_revoked_grant_is_not_read_through_a_later_one(
    world: Exchange, node: Node, tmp_path: Path
) -> None:
    token = _token(world, CONSUMER)
    headers = {"Authorization": f"Bearer {token}"}
    path = TABLES
    table = "riverside-hospitals.outpatient-visits.anonymized-1"
    with running(create_app(node)) as api:
        answered = api.post(f"{path}/anonymized-1/query", headers=headers, json={})
        assert answered.status_code == 200
        url = next(line for line in answered.text.splitlines() if '"file"' in line)
        file_url = httpx.Response(200, content=url).json()["file"]["url"]

        # The grant the release was made under ends; the next allows rows as well.
        held = world.contracts.authorize(world.actor(CONSUMER), DATASET, "release-download")
        world.contracts.revoke(world.actor(PROVIDER), held.ref, "project over")
        grant(world, CONSUMER, "research")
        reads = len(list(node.log.search(kind="download", limit=100)))
        profile = write_profile(tmp_path / "b.share", f"{api.base_url}/delta-sharing", token)
        found = read(profile, table)
        assert found["tables"] == []
        assert found["error"]["status"] == 404
        assert api.get(f"{path}/anonymized-1/metadata", headers=headers).status_code == 404
        assert api.post(f"{path}/anonymized-1/query", headers=headers, json={}).status_code == 404
        assert api.get(file_url).status_code == 404
        assert api.get("/v1/releases", headers=headers).json()["items"] == []
        assert api.get("/v1/releases/R-1", headers=headers).status_code == 404
        assert len(list(node.log.search(kind="download", limit=100))) == reads

        # A release made under the grant now in force is read.
        remade = world.releases.create(
            world.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2)
        )
        now_read = read(profile, "riverside-hospitals.outpatient-visits.anonymized-2")
    assert now_read["tables"] == ["riverside-hospitals.outpatient-visits.anonymized-2"]
    assert now_read.get("rows") == remade.record.rows, now_read


def test_file_urls_expire_and_cannot_be_forged(world: Exchange, node: Node) -> None:
    consumer = world.actor(CONSUMER)
    assert consumer.org_id is not None
    sharing = world.sharing
    mine, yours = (token_id_of(_token(world, org)) or "" for org in (CONSUMER, OUTSIDER))
    expired = sharing.sign(FileGrant(1, consumer.org_id, 1_000, mine))
    fresh = sharing.sign(FileGrant(1, consumer.org_id, 10**15, mine))
    forged = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    other = world.actor(OUTSIDER)
    assert other.org_id is not None
    theirs = sharing.sign(FileGrant(1, other.org_id, 10**15, yours))
    with running(create_app(node)) as api:
        gone = api.get(f"/delta-sharing/files/{expired}")
        assert gone.status_code == 403
        assert "expired" in gone.json()["message"]
        assert api.get(f"/delta-sharing/files/{forged}").status_code == 400
        assert api.get(f"/delta-sharing/files/{theirs}").status_code == 404
        head = api.head(f"/delta-sharing/files/{fresh}")
        size = int(head.headers["content-length"])
        assert head.status_code == 200
        assert size > 0
        part = api.get(f"/delta-sharing/files/{fresh}", headers={"Range": "bytes=4-11"})
        whole = api.get(f"/delta-sharing/files/{fresh}")
    assert part.status_code == 206
    assert part.content == whole.content[4:12]
    assert whole.content[:4] == b"PAR1"
    assert len(whole.content) == size
    # No file or refusal is sniffed into a page or kept by a cache.
    for answer in (whole, part, head, gone):
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
        assert answer.headers.get_list("cache-control") == ["no-store"]


def test_the_http_client_makes_a_release_and_the_consumer_reads_it_with_its_profile(
    node: Node, tmp_path: Path
) -> None:
    ex = seed(node, tmp_path)
    _, provider = ex.accounts.create(LOCAL, "riverside-admin", "provider", org=PROVIDER)
    with running(create_app(node)) as api:
        url = str(api.base_url)
        with HttpClient(url, provider.secret) as maker:
            made = maker.release_create(DATASET, CONSUMER, kind="anonymized", k=5, l=2)
            with pytest.raises(PolicyViolation) as refused:
                maker.release_create(DATASET, CONSUMER, kind="anonymized", k=2)
        assert refused.value.details["rule"] == "k_floor"
        assert made["release"] == "R-1"
        with HttpClient(url, _token(ex, CONSUMER)) as reader:
            [listed] = reader.releases()
            profile_body = reader.share_profile()
        assert listed["report"].get("rows_in") is None
        assert profile_body["endpoint"] == f"{url}/delta-sharing"
        profile = tmp_path / "bureau.share"
        profile.write_text(json.dumps(profile_body), encoding="utf-8")
        table = ".".join(made["share"][part] for part in ("share", "schema", "table"))
        found = read(profile, table)
    assert found.get("rows") == made["rows"], found


def test_each_read_is_a_metered_use_of_the_grant_logged_with_its_ledger_row(
    node: Node, tmp_path: Path
) -> None:
    ex = seed(node, tmp_path)
    ex.accounts.create(LOCAL, "metered-bureau", "consumer")
    asked = ex.contracts.request(
        ex.actor("metered-bureau"),
        DATASET,
        purpose="official-statistics",
        epsilon=1.0,
        until=date.today() + timedelta(days=30),
        actions=("release-download",),
    )
    # Three uses at 2.50 each: the release made, then two reads.
    ex.contracts.grant(ex.actor(PROVIDER), asked.ref, max_queries=3, price_per_query="2.50")
    ex.releases.create(ex.actor(PROVIDER), DATASET, "metered-bureau", ReleaseSpec(k=5, l=2))
    headers = {"Authorization": f"Bearer {_token(ex, 'metered-bureau')}"}
    path = f"{TABLES}/"
    with running(create_app(node)) as api:
        read_twice = [api.post(f"{path}anonymized-1/query", headers=headers, json={}) for _ in "ab"]
        spent = api.post(f"{path}anonymized-1/query", headers=headers, json={})
        usage = api.get(f"/v1/usage?month={date.today():%Y-%m}", headers=headers)
    assert [r.status_code for r in read_twice] == [200, 200]
    # The fourth use is refused by the grant's count, in the protocol's shape, and logged.
    assert spent.status_code == 403
    assert set(spent.json()) == {"errorCode", "message"}
    [line] = usage.json()["lines"]
    assert (line["action"], line["uses"], line["amount"]) == ("release-download", 3, "7.50")
    reads = [e for _, e in node.log.search(kind="download", limit=10)]
    assert sorted(e["outcome"] for e in reads) == ["answered", "answered", "refused"]
    rows = {e.id for e in ex.ledger.entries(consumer_id=ex.actor("metered-bureau").org_id)}
    assert {e["reservation"] for e in reads if e["outcome"] == "answered"} < rows
    assert ex.reconcile().differences == []


# URLs end with the bearer token that asked for them: a share profile's token revoked
# (leaked with its profile, say) stops the URLs already handed out under it at once.
_URL_TABLE = (
    "/delta-sharing/shares/riverside-hospitals/schemas/outpatient-visits/tables/anonymized-1"
)


def _file_url(api: httpx.Client, token: str) -> str:
    """Read the table with ``token``: the pre-signed URL of its one file."""
    answered = api.post(
        f"{_URL_TABLE}/query", headers={"Authorization": f"Bearer {token}"}, json={}
    )
    assert answered.status_code == 200, answered.text
    [line] = [line for line in answered.text.splitlines() if '"file"' in line]
    url: str = json.loads(line)["file"]["url"]
    return url


def _shown(url: str) -> str:
    """What a URL shows to whoever holds it: its text, and each of its parts decoded."""
    shown = [url]
    for part in url.rsplit("/", 1)[-1].split("."):
        try:
            shown.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1"))
        except (binascii.Error, ValueError):
            continue
    return " ".join(shown)


def _revoke(world: Exchange, token: str) -> None:
    token_id = token_id_of(token)
    assert token_id is not None
    world.accounts.revoke_token(world.actor(CONSUMER), token_id)


def test_revoking_a_profiles_token_stops_the_urls_it_was_handed(
    node: Node, world: Exchange
) -> None:
    profile = world.sharing.issue_token(world.actor(CONSUMER)).secret
    with running(create_app(node)) as api:
        url = _file_url(api, profile)
        assert api.get(url).status_code == 200
        assert api.head(url).status_code == 200
        _revoke(world, profile)
        for answer in (api.get(url), api.get(url, headers={"Range": "bytes=0-3"})):
            assert answer.status_code == 404
            assert set(answer.json()) == {"errorCode", "message"}
        assert api.head(url).status_code == 404


def test_urls_of_the_accounts_other_tokens_go_on(node: Node, world: Exchange) -> None:
    profile = world.sharing.issue_token(world.actor(CONSUMER)).secret
    account = world.accounts.issue_token(LOCAL, CONSUMER).secret
    with running(create_app(node)) as api:
        kept = _file_url(api, account)
        ended = _file_url(api, profile)
        _revoke(world, profile)
        assert api.get(ended).status_code == 404
        answer = api.get(kept)
        assert answer.status_code == 200
        assert answer.content[:4] == b"PAR1"


def test_a_url_does_not_show_the_id_of_the_token_it_ends_with(node: Node, world: Exchange) -> None:
    # A token's id is half of the token: whoever holds a URL must not learn it.
    profile = world.sharing.issue_token(world.actor(CONSUMER)).secret
    token_id = token_id_of(profile)
    assert token_id is not None
    with running(create_app(node)) as api:
        url = _file_url(api, profile)
        assert token_id not in _shown(url)
        assert api.get(url).status_code == 200


def test_a_file_url_expires_no_later_than_the_token_that_asked_for_it(tmp_path: Path) -> None:
    # A URL would live a week; the profile's token, a day.
    settings = Settings(
        home=tmp_path / "node",
        token_hash_memory_kib=1024,
        api_query_workers=0,
        token_ttl_days=1,
        share_url_ttl_s=7 * 24 * 3600,
    )
    node = Node.init(settings)
    try:
        ex = released(node, tmp_path)
        profile = ex.sharing.issue_token(ex.actor(CONSUMER))
        with running(create_app(node)) as api:
            answered = api.post(
                f"{_URL_TABLE}/query",
                headers={"Authorization": f"Bearer {profile.secret}"},
                json={},
            )
        assert answered.status_code == 200, answered.text
        [file] = [
            json.loads(line)["file"] for line in answered.text.splitlines() if '"file"' in line
        ]
        token_ends = int(profile.info.expires_at.replace(tzinfo=UTC).timestamp() * 1000)
        assert token_ends - 1 <= file["expirationTimestamp"] <= token_ends
        # The URL itself ends when it says it does.
        sealed = ex.sharing.check(file["url"].rsplit("/", 1)[-1])
        assert sealed.expires_ms == file["expirationTimestamp"]
    finally:
        node.close()
