"""Noise and answer time of a private query: one OpenDP call per value vs per vector.

The query of ``bench_query.py`` (COUNT, SUM and AVG of cost by district and diagnosis
group) releases one noisy vector per quantity the plan asks for (rows, and the centred
sum of cost; the SUM is read from those two), each with one value per output group,
plus one removed total per bounded quantity. With ``--groups`` output groups (a
multiple of 20: the districts are made up to fit) that is ``quantities × groups``
noisy values. Each step is timed in process on a fixed exact table
(no engine), as the fastest of ``--repeat`` runs (the least disturbed on a shared
machine):

- ``per-value``: one OpenDP measurement call per value (the baseline);
- ``per-vector``: ``Mechanism.release``, one OpenDP call per quantity's whole vector;
- ``post-process``: intervals, AVG and thresholds on the noisy vectors;
- ``to_json``: the canonical answer bytes the coordinator caches and signs;
- ``noise + answer``: ``Plan.release`` and ``Answer.to_json``, what a query costs after
  the engine returns.

    python benchmarks/bench_noise.py --groups 40 --repeat 5     # quick
    python benchmarks/bench_noise.py --groups 400 --repeat 50   # the recorded run
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import opendp.prelude as dp
import pyarrow as pa

from entrepot.privacy import mechanisms, parse_policy, plan
from entrepot.privacy._post import Noisy, estimate_rows
from entrepot.standards.schema import load_standard_file

ROOT = Path(__file__).resolve().parent
SCHEMA = ROOT.parent / "src/entrepot/standards/schemas/health.visit.json"
DATASET = "riverside_hospitals.outpatient_visits"
QUERY = (
    "SELECT district, diagnosis_group, COUNT(*) AS visits, SUM(cost) AS total, "
    f"AVG(cost) AS avg_cost FROM {DATASET} GROUP BY district, diagnosis_group"
)


def _best_ms(run: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs: on a shared machine, the least disturbed one."""
    run()  # warm-up: OpenDP builds and caches its measurements on first use
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=400, help="output groups (x20)")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--mechanism", choices=mechanisms.names(), default="laplace")
    args = parser.parse_args()

    districts = max(args.groups // 20, 1)
    codes = {
        "region.district": [f"D{i:03d}" for i in range(districts)],
        "diagnosis_group": [chr(65 + i) for i in range(20)],
    }
    standard = load_standard_file(SCHEMA)
    policy = parse_policy(
        {"mechanism": args.mechanism, "delta": 1e-10, "epsilon": {"per_query": 1.0}}, standard
    )
    p = plan(QUERY, standard=standard, policy=policy, epsilon=1.0, codes=codes)
    keys = [list(column) for column in zip(*p.groups, strict=True)]
    quantities = p.rewrite.quantities
    exact = pa.table(
        {
            "__k0": keys[0],
            "__k1": keys[1],
            **{q.name: [100.0 + i for i in range(len(p.groups))] for q in quantities},
            **{f"{name}_removed": [0.0] * len(p.groups) for name in p.removal_scales},
        }
    )
    mechanism = mechanisms.get(args.mechanism)
    vectors = {q.name: exact.column(q.name).to_pylist() for q in quantities}
    single = {q.name: mechanism._measurement(1, p.scales[q.name]) for q in quantities}

    def per_value() -> None:
        for name, values in vectors.items():
            for value in values:
                single[name]([value])

    def per_vector() -> None:
        for name, values in vectors.items():
            mechanism.release(values, p.scales[name])

    noisy = Noisy(
        mechanism,
        quantities,
        p.scales,
        {name: mechanism.release(v, p.scales[name]) for name, v in vectors.items()},
        p.rewrite.derived,
    )

    def post_process() -> None:
        estimate_rows(
            p.groups, p.query.aggregates, noisy, standard, threshold_name=None, threshold=0.0,
            merge=False,
        )  # fmt: skip

    answer = p.release(exact)
    values = len(quantities) * len(p.groups)
    timings = {
        "per-value": _best_ms(per_value, args.repeat),
        "per-vector": _best_ms(per_vector, args.repeat),
        "post-process": _best_ms(post_process, args.repeat),
        "to_json": _best_ms(answer.to_json, args.repeat),
        "noise + answer": _best_ms(lambda: p.release(exact).to_json(), args.repeat),
    }
    baseline = timings["per-value"]
    print(f"opendp {dp.__version__}, {args.mechanism}, {len(p.groups)} groups, {values} values")
    print(f"{'step':>16} {'ms':>8} {'µs/value':>9} {'x per-value':>12}")
    for step in ("per-value", "per-vector", "post-process", "to_json", "noise + answer"):
        ms = timings[step]
        print(f"{step:>16} {ms:8.2f} {ms * 1000 / values:9.2f} {ms / baseline:12.2f}")
    outside = sum(
        e.value is not None and not e.lo <= e.value <= e.hi
        for _ in range(args.repeat)
        for row in p.release(exact).rows
        for e in row.values
    )
    print(f"estimates outside their interval in {args.repeat} answers: {outside}")
    if outside:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
