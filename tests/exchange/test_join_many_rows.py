"""One person with thousands of rows on each side of a private join: m × n pairs of rows,
read as the pairs of a random part of their rows on each side (about
:data:`~entrepot.exchange.join.PAIRS_READ` of them), bounded and answered in memory that
the sides' rows bound.

The join runs in a child process whose address space may grow by :data:`HEADROOM`
past what it holds with the node open: far more than the sides' rows and the
engine's working memory, far less than the person's m × n pairs of rows.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.exchange.join_world import (
    CONSUMER,
    SQL,
    JoinWorld,
    Payment,
    Visit,
    exact_answers,
    priced,
)

from entrepot.exchange import Exchange
from entrepot.exchange.join import pairs_read
from entrepot.exchange.node import Node
from entrepot.privacy.sql.rewrite import OVER, REMOVED_CAP
from entrepot.settings import Settings

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the address space from /proc"
)

R = 3  # rows per unit, in both policies
D1, D2 = "910101", "910102"
# One person's visits, and payments in each district: 6,000 × 6,000 pairs of rows,
# over a GB when held (about 36 bytes a pair).
M, N1, N2 = 6_000, 4_500, 1_500
HEADROOM = 512 << 20
# Another person, over the bound by less than the removed total's cap.
SMALL_M, SMALL_N = 2, 4
MEDIAN = (
    "SELECT MEDIAN(t.amount) AS median_amount, COUNT(*) AS pairs "
    "FROM riverside_hospitals.outpatient_visits v "
    "JOIN acme_pay.transactions t ON v.patient_id = t.person_id"
)
_ROOT = Path(__file__).resolve().parents[2]


def _rows() -> tuple[list[Visit], list[Payment]]:
    visits: list[Visit] = [("AB0001", D1, "I")] * M
    visits += [("AB0002", D2, "I")] * SMALL_M + [("AB0003", D1, "I")]
    payments: list[Payment] = [("AB0001", D1, 2.0)] * N1 + [("AB0001", D2, 5.0)] * N2
    payments += [("AB0002", D2, 7.0)] * SMALL_N + [("AB0003", D1, 11.0)]
    return visits, payments


def _address_space() -> int:
    """This process's virtual memory, in bytes."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    [kib] = [line.split()[1] for line in status.splitlines() if line.startswith("VmSize:")]
    return int(kib) * 1024


def child(home: str) -> None:
    """Answer :data:`SQL` exactly and :data:`MEDIAN` with noise, the address space limited
    to :data:`HEADROOM` more than the open node's; print the figures as JSON."""
    node = Node.open(Settings(home=Path(home), token_hash_memory_kib=1024))
    try:
        exchange = Exchange(node)
        node.engine.session().close()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + HEADROOM, hard))
        run = priced(exchange, SQL)
        exact = run.exact(exchange.vault)
        rewrite = run.plan.plan.rewrite
        removed = {q.kind: f"{q.name}_removed" for q in rewrite.quantities if q.removed}
        answers = exact_answers(run.plan.plan, exact)
        figures = {
            row["__k0"]: {
                "answers": answers[row["__k0"]],
                "removed": row[removed["rows"]],
                "over": row[OVER.name],
            }
            for row in exact.to_pylist()
            if row["__k0"] is not None
        }
        median = exchange.queries.run(exchange.actor(CONSUMER), MEDIAN, epsilon=1.0)
        print(json.dumps({"groups": figures, "median": median.answer.aggregates}))
    finally:
        node.close()


def _expected(drawn: float) -> dict[str, dict[str, Any]]:
    """The figures of m × n: a person's pairs of rows weigh R / (m · n) each, and their
    removed rows are min(m · n - R, REMOVED_CAP · R) and their put-back share 1 when
    m · n passes (REMOVED_CAP + 1) · R, spread over the districts as their pairs are;
    a person with more than :func:`pairs_read` pairs spread as the pairs read of them
    are, ``drawn`` of them in :data:`D1`."""
    # per person: rows on the left, rows on the right and their amount per district
    people = [
        (M, {D1: (N1, 2.0), D2: (N2, 5.0)}),
        (SMALL_M, {D2: (SMALL_N, 7.0)}),
        (1, {D1: (1, 11.0)}),
    ]
    # per district: people, pairs, paid, removed pairs, put-back share
    want: dict[str, list[float]] = {}
    for m, right in people:
        pairs = m * sum(n for n, _ in right.values())
        weight = min(1.0, R / pairs)
        cut = min(max(pairs - R, 0), REMOVED_CAP * R) / pairs
        over = 1 / pairs if pairs > (REMOVED_CAP + 1) * R else 0.0
        for district, (n, amount) in right.items():
            share = m * n
            if pairs > pairs_read(R):
                share = pairs * (drawn if district == D1 else 1 - drawn)
            person = [1.0, share * weight, share * weight * amount, share * cut, share * over]
            total = want.get(district, [0.0] * len(person))
            want[district] = [a + b for a, b in zip(total, person, strict=True)]
    return {d: {"answers": v[:3], "removed": v[3], "over": v[4]} for d, v in want.items()}


def test_a_person_with_thousands_of_rows_on_each_side_is_answered_from_pairs_drawn_of_m_times_n(
    tmp_path: Path,
) -> None:
    world = JoinWorld(tmp_path / "node", rows=R)
    try:
        world.publish(*_rows())
    finally:
        world.close()
    paths = [str(_ROOT / "src"), str(_ROOT), os.environ.get("PYTHONPATH", "")]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tests.exchange.test_join_many_rows import child; child(sys.argv[1])",
            str(world.home),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)},
        cwd=_ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["median"] == ["median_amount", "pairs"]
    # The heavy person's share of the pairs read in D1: that of the payments read of
    # them, a random choice of 32 of the 6,000 (4,500 in D1), within 5 of its standard
    # deviations (about 0.076) but about once in 10^6 runs.
    drawn = got["groups"][D1]["over"]
    p, chosen = N1 / (N1 + N2), 32
    assert abs(drawn - p) <= 5 * math.sqrt(p * (1 - p) / chosen)
    assert drawn * chosen == pytest.approx(round(drawn * chosen))
    want = _expected(drawn)
    assert set(got["groups"]) == set(want)
    for district, figures in want.items():
        assert got["groups"][district]["answers"] == pytest.approx(figures["answers"])
        assert got["groups"][district]["removed"] == pytest.approx(figures["removed"])
        assert got["groups"][district]["over"] == pytest.approx(figures["over"])
