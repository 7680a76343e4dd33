from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from entrepot.demo._joining import JOIN_EPSILON
from entrepot.demo.scenario import STEPS, Demo, Step, is_demo_home, run
from entrepot.errors import Conflict, ExitCode, InvalidInput

# Small enough for a quick run, large enough that every defect kind is injected.
SCALE = "0.05"


def entrepot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_demo_builds_an_exchange_whose_catalog_lists_every_dataset(tmp_path: Path) -> None:
    home = tmp_path / "exchange"
    shown = entrepot("demo", "--no-serve", "--home", str(home), "--scale", SCALE)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    for text in ("Published", "Quarantined, and why", "entrepot catalog list --home"):
        assert text in shown.stdout
    assert is_demo_home(home)

    listed = _json(entrepot("catalog", "list", "--home", str(home), "--json"))
    assert {d["dataset"] for d in listed} == {
        "riverside-hospitals/outpatient-visits",
        "highland-health/clinic-visits",
        "skyline-mobile/phone-presence",
        "jade-pay/payments",
    }
    assert all(d["rows"] > 0 and d["latest_version"] == 1 for d in listed)

    # Run again without --fresh, on other data: the same exchange gets a second version
    # of each dataset.
    again = _json(
        entrepot(
            "demo", "--no-serve", "--home", str(home), "--scale", SCALE, "--seed", "8", "--json"
        )
    )
    published = again["steps"]["publish"]["datasets"]
    assert {d["version"] for d in published} == {2}
    assert again["steps"]["node"]["reused"] is True
    assert again["steps"]["providers"]["added"] == []
    for d in published:
        assert d["all_defects_caught"], d["dataset"]
        assert d["rows_published"] + d["rows_quarantined"] == d["rows_read"]
        assert d["rows_quarantined"] == d["defects_injected"] > 0
    hits = again["steps"]["catalog"]["hits"]
    assert {h["standard"] for h in hits} == {"health.visit"}


@pytest.mark.slow
def test_the_consumer_gets_a_grant_a_private_answer_and_a_verifiable_log(tmp_path: Path) -> None:
    home = tmp_path / "exchange"
    first = run(home, scale=0.1)
    access = first.data("access")
    assert access["consumer_created"] is True
    assert access["grant"].startswith("GRANT-")
    assert stat.S_IMODE(Path(access["token_file"]).stat().st_mode) == 0o600
    query = first.data("query")
    assert query["answered"] is True
    answered = query["result"]
    assert answered["epsilon_spent"] == pytest.approx(1.0)
    assert answered["epsilon_left"] == pytest.approx(access["epsilon"] - 1.0)
    assert answered["answer"]["rows"], "no district reached the threshold"
    for row in answered["answer"]["rows"]:
        for value, low, high in row["values"]:
            # An AVG of a group near zero has no value.
            assert value is None or low <= value <= high
    assert query["refused_query"]["refused"] is True
    assert query["refused_query"]["rule"] == "identifier"
    audit = first.data("audit")
    published = len(first.data("publish")["datasets"])
    # The consumer's account, the grants (requests are not public), the policies, an
    # answer and a refusal, and the private join of visits and payments.
    joined = first.data("join")
    assert joined["answered"] is True
    assert [d["dataset"] for d in joined["result"]["datasets"]] == [
        "riverside-hospitals/outpatient-visits",
        "jade-pay/payments",
    ]
    expected = {
        "dataset_version": published,
        "account": 1,
        "grant": 2,
        "policy": 2,
        "query": 2,
        "join": 1,
    }
    assert audit["kinds"] == expected
    assert audit["verified_entries"] == audit["entries"] == sum(expected.values())
    assert audit["receipt_verified_at_index"] == answered["receipt"]["log"]["index"]
    verified = entrepot("receipt", "verify", query["receipt"], "--home", str(home), "--json")
    assert _json(verified)["ok"] is True

    # The same exchange, other data: the consumer and its grant carry over to version 2.
    second = run(home, scale=0.1, seed=8)
    assert second.data("access")["consumer_created"] is False
    assert second.data("access")["grant"] == access["grant"]
    assert second.data("access")["grant_reused"] is True
    again = second.data("query")["result"]
    assert again["version"] == 2
    assert again["repeated"] is False
    # Two queries and the join's share of the visits' ε.
    assert again["epsilon_left"] == pytest.approx(access["epsilon"] - 2.0 - JOIN_EPSILON)
    # New versions, one account entry, both policies set again, an answer, a refusal and
    # a join.
    assert second.data("audit")["entries"] == audit["entries"] + published + 6


def test_fresh_wipes_a_demo_home_and_starts_over(tmp_path: Path) -> None:
    home = tmp_path / "exchange"
    run(home, scale=0.02, seed=3)
    result = run(home, scale=0.02, seed=3, fresh=True)
    assert result.data("node")["reused"] is False
    assert {d["version"] for d in result.data("publish")["datasets"]} == {1}


@pytest.mark.parametrize("fresh", [False, True])
def test_an_interrupted_first_run_can_be_run_again(tmp_path: Path, fresh: bool) -> None:
    home = tmp_path / "exchange"
    # What Ctrl-C in the middle of the first run's generation leaves behind.
    run(home, scale=0.02, steps=())
    (home / "demo" / "riverside-visits-2025.csv").write_bytes(b"half a fi")
    result = run(home, scale=0.02, fresh=fresh, steps=STEPS[:2])
    assert result.data("node")["reused"] is False
    assert is_demo_home(home)


@pytest.mark.parametrize("fresh", [False, True])
def test_a_home_the_demo_did_not_build_is_left_alone(tmp_path: Path, fresh: bool) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(Conflict, match="not built by the demo"):
        run(tmp_path, scale=0.02, fresh=fresh)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_the_cli_refuses_a_foreign_home_in_one_paragraph(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    refused = entrepot("demo", "--no-serve", "--fresh", "--home", str(tmp_path))
    assert refused.returncode == ExitCode.CONFLICT
    assert "not built by the demo" in refused.stderr
    assert "hint:" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_real_node_is_never_wiped(tmp_path: Path) -> None:
    home = tmp_path / "exchange"
    assert entrepot("init", "--home", str(home)).returncode == 0
    with pytest.raises(Conflict):
        run(home, scale=0.02, fresh=True)
    assert (home / "keys" / "node.key").exists()


def test_steps_can_be_added_to_the_scenario(tmp_path: Path) -> None:
    def count_files(demo: Demo) -> dict[str, Any]:
        return {"files": len(demo.demo_manifest().files)}

    extra = Step("count", "Count the files", count_files)
    seen: list[str] = []

    class Recorder:
        def begin(self, step: Step) -> None:
            seen.append(f"begin {step.name}")

        def progress(self, task: str, done: int, total: int) -> None:
            del task, done, total

        def end(self, step: Step, data: dict[str, Any]) -> None:
            seen.append(f"end {step.name}")

    result = run(tmp_path / "x", scale=0.02, steps=(STEPS[0], extra), reporter=Recorder())
    assert result.data("count") == {"files": 4}
    assert seen == ["begin generate", "end generate", "begin count", "end count"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_without_no_serve_the_demo_serves_the_exchange(tmp_path: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "entrepot", "demo", "--home", str(tmp_path / "x")]
    log = tmp_path / "serve.log"
    with (
        log.open("wb") as output,
        subprocess.Popen(
            [*command, "--scale", "0.02", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as process,
    ):
        try:
            deadline = time.monotonic() + 240
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the demo never started serving"
                    time.sleep(0.5)
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            token = (tmp_path / "x" / "demo" / "consumer.token").read_text().strip()
            listed = httpx.get(
                f"http://127.0.0.1:{port}/v1/catalog/datasets",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert listed.status_code == 200, listed.text
            assert "riverside-hospitals/outpatient-visits" in listed.text
        finally:
            process.terminate()
            process.wait(timeout=30)
    # The scenario's links point where it serves, as `make demo PORT=...` asks.
    assert f"http://127.0.0.1:{port}/docs" in log.read_text()


@pytest.mark.parametrize(("seed", "scale"), [(7, 0.0), (7, 1000.0), (-1, 1.0)])
def test_a_bad_seed_or_scale_is_refused_before_a_fresh_run_wipes_the_home(
    tmp_path: Path, seed: int, scale: float
) -> None:
    home = tmp_path / "demo-home"
    run(home, steps=())  # an empty scenario: the home is marked as the demo's, nothing else
    assert is_demo_home(home)
    kept = home / "earlier-run.txt"
    kept.write_text("what an earlier demo run left", encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        run(home, seed=seed, scale=scale, fresh=True)
    assert refused.value.hint
    assert kept.exists()
