"""Release speed and quality: entrepot's optimal lattice search vs anjana, and DP synthesis.

Anonymization: k = 5 and k = 10 over five quasi-identifiers (age 17-90, a 3,000-value
zip-like code, sex, education in 16 values, marital status in 7) at a 5% suppression
limit, on the same seeded data and the same hierarchies (age: intervals of 2, 5, 10,
20, 50; zip: one more trailing digit masked per level; education: groups of 4 and 8;
marital status: groups of 3; each then withheld):

- ``entrepot``: :func:`entrepot.privacy.anonymize.anonymize` (the optimal search for
  the least loss, LM), CPU time in process;
- ``anjana``: anjana's ``k_anonymity`` (a greedy full-domain generalization), in its
  own environment (``benchmarks/.venv-anjana``: it pins numpy 2.0 and pandas 2.3), run
  as a subprocess; its output's loss is measured here with the same metric.

Loss is LM (Iyengar's loss metric, averaged over cells; a suppressed row loses 1), the
figure entrepot minimizes. Times are CPU seconds (user + sys of the process doing the
work), which a busy machine disturbs less than the wall clock.

Synthesis: 100k synthetic rows over the health.visit dimensions at ε = 1 and ε = 5,
with the total variation distance of every 1- and 2-way marginal to the real rows,
beside the anchor, smartnoise-synth's MST (Private-PGM), in its own environment
(``benchmarks/.venv-snsynth``, with the versions smartnoise-synth 1.0.8 asks for but
opacus 0.14, which pulls PyTorch that MST never imports), on the same encoded rows at
the same ε, and a baseline: independent noisy 1-way marginals (OpenDP Laplace). MST's
rows are drawn i.i.d. from its fitted model by mbi's own sampler; the distances of the
rows smartnoise-synth's ``sample`` draws (mbi 1.1.0's randomized rounding, which links
siblings of one parent) are shown beside them.

    python benchmarks/bench_anonymize.py                     # 30k and 1M, k = 5 and 10
    python benchmarks/bench_anonymize.py --rows 30k --anjana-max-rows 30k
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from entrepot.privacy.anonymize import Criteria, anonymize
from entrepot.privacy.anonymize.hierarchy import STAR, Hierarchy, Levels
from entrepot.standards.schema import Standard, parse_standard

ROOT = Path(__file__).resolve().parent
ANJANA = ROOT / ".venv-anjana" / "bin" / "python"
SNSYNTH = ROOT / ".venv-snsynth" / "bin" / "python"
# smartnoise-synth 1.0.8 with the versions its metadata asks for, resolved by pip,
# except opacus (< 0.15, which pulls PyTorch and which MST never imports).
SNSYNTH_SETUP = (
    f"python3 -m venv {SNSYNTH.parent.parent} && {SNSYNTH.parent}/pip install --no-deps "
    f"smartnoise-synth==1.0.8 && {SNSYNTH.parent}/pip install smartnoise-sql==1.0.10 "
    "mbi==1.1.0 disjoint-set==0.9.0 pac-synth==0.0.8 'Faker>=17'"
)
QUASI = ["age", "zip", "sex", "education", "marital"]
LIMIT = 0.05

_ANJANA_SCRIPT = """
import json, sys, time, resource
import pandas as pd
from anjana.anonymity import utils
from anjana.anonymity._k_anonymity import k_anonymity_inner
data = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
ladder = json.load(open(sys.argv[2]))
hierarchies = {q: {int(i): v for i, v in h.items()} for q, h in ladder.items()}
k, supp = int(sys.argv[3]), float(sys.argv[4])
start = resource.getrusage(resource.RUSAGE_SELF)
out, suppressed, levels = k_anonymity_inner(data, [], list(hierarchies), k, supp, hierarchies)
end = resource.getrusage(resource.RUSAGE_SELF)
cpu = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
out.to_csv(sys.argv[5], index=False)
print(json.dumps({"cpu_s": cpu, "suppressed": int(suppressed),
                  "levels": {q: int(v) for q, v in levels.items()}}))
"""


_MST_SCRIPT = """
import json, sys, time, resource, warnings
import numpy as np, pandas as pd
from snsynth import Synthesizer
warnings.simplefilter("ignore")
codes = np.load(sys.argv[1])
epsilon, rows = float(sys.argv[2]), int(sys.argv[3])
frame = pd.DataFrame({f"c{i}": codes[:, i] for i in range(codes.shape[1])})
start = resource.getrusage(resource.RUSAGE_SELF)
synth = Synthesizer.create("mst", epsilon=epsilon, verbose=False)
synth.fit(frame, preprocessor_eps=0.0, categorical_columns=list(frame.columns))
# mbi's own i.i.d. draw from the fitted model: its default draw (randomized rounding)
# gives every child of a parent the same order within the parent's rows, which links
# siblings the model leaves independent (fixed in mbi 2.0, which smartnoise-synth
# 1.0.8's pin mbi < 2 excludes).
drawn = synth.undo_compress_fn(synth.synthesizer.synthetic_data(rows=rows, method="sample"))
out = synth._transformer.inverse_transform([tuple(t[1:]) for t in drawn.df.itertuples()])
end = resource.getrusage(resource.RUSAGE_SELF)
np.save(sys.argv[4], out[list(frame.columns)].to_numpy(dtype=np.int64))
np.save(sys.argv[5], synth.sample(rows)[list(frame.columns)].to_numpy(dtype=np.int64))
cpu = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
print(json.dumps({"cpu_s": cpu}))
"""


def run_mst(codes: np.ndarray, epsilon: float, rows: int) -> tuple[np.ndarray, np.ndarray, float]:
    """smartnoise-synth's MST on ``codes`` at ``epsilon``: its rows drawn i.i.d. from its
    model, its rows as its ``sample`` draws them, and the CPU seconds of fitting and
    the first draw. Its categories are read from the data (the same public domains,
    less the empty codes)."""
    with tempfile.TemporaryDirectory() as work:
        np.save(Path(work) / "in.npy", codes)
        done = subprocess.run(
            [
                str(SNSYNTH),
                "-c",
                _MST_SCRIPT,
                str(Path(work) / "in.npy"),
                str(epsilon),
                str(rows),
                str(Path(work) / "out.npy"),
                str(Path(work) / "shipped.npy"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"smartnoise-synth failed: {done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        drawn, shipped = np.load(Path(work) / "out.npy"), np.load(Path(work) / "shipped.npy")
        return drawn, shipped, float(result["cpu_s"])


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def people(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    zips = [f"{z:05d}" for z in rng.choice(100_000, 3_000, replace=False)]
    # Skewed like real data: a few zip codes and ages are common, many are rare.
    zip_weights = rng.dirichlet([0.7] * len(zips))
    return pd.DataFrame(
        {
            "age": np.clip(rng.normal(42, 14, rows).round(), 17, 90).astype(int),
            "zip": rng.choice(zips, rows, p=zip_weights),
            "sex": rng.choice(["F", "M"], rows),
            "education": rng.choice([f"e{i:02d}" for i in range(16)], rows),
            "marital": rng.choice([f"m{i}" for i in range(7)], rows),
        }
    )


def standard() -> Standard:
    fields = [
        {"name": "age", "type": "integer", "entrepot:role": "quasi_identifier"},
        *(
            {"name": name, "type": "string", "entrepot:role": "quasi_identifier"}
            for name in QUASI[1:]
        ),
    ]
    return parse_standard(
        {"name": "bench.person", "title": "People", "version": "1", "fields": fields},
        "bench.person",
    )


def _same(values: Any) -> list[str]:
    return [str(v) for v in values]


def _withheld(values: Any) -> list[str]:
    return [STAR] * len(values)


def _groups(size: int) -> Any:
    return lambda values: [f"g{int(str(v)[1:]) // size}" for v in values]


def _interval(width: int) -> Any:
    return lambda values: [
        f"[{int(v) // width * width}, {int(v) // width * width + width})" for v in values
    ]


def _masked(keep: int) -> Any:
    return lambda values: [str(v)[:keep] + STAR * (5 - keep) for v in values]


def hierarchies() -> list[Hierarchy]:
    return [
        Hierarchy(
            "age",
            ("value", "2", "5", "10", "20", "50", "withheld"),
            (_same, *(_interval(w) for w in (2, 5, 10, 20, 50)), _withheld),
        ),
        Hierarchy(
            "zip",
            ("value", "4", "3", "2", "1", "withheld"),
            (_same, *(_masked(k) for k in (4, 3, 2, 1)), _withheld),
        ),
        Hierarchy("sex", ("value", "withheld"), (_same, _withheld)),
        Hierarchy(
            "education", ("value", "4", "8", "withheld"), (_same, _groups(4), _groups(8), _withheld)
        ),
        Hierarchy("marital", ("value", "3", "withheld"), (_same, _groups(3), _withheld)),
    ]


def levels_of(frame: pd.DataFrame) -> dict[str, tuple[list[Any], Levels]]:
    out = {}
    for h in hierarchies():
        values = list(pd.unique(frame[h.column]))
        out[h.column] = (values, h.levels(values))
    return out


def lm_of(
    frame: pd.DataFrame,
    output: pd.DataFrame,
    chosen: dict[str, int],
    levels: dict[str, tuple[list[Any], Levels]],
) -> float:
    """LM of a full-domain generalization's output: each kept cell's label at its
    column's level, each suppressed row 1."""
    total = 0.0
    for column, level in chosen.items():
        _, lv = levels[column]
        loss = dict(zip(lv.labels[level].tolist(), lv.losses[level].tolist(), strict=True))
        total += float(output[column].astype(str).map(loss).fillna(1.0).sum())
    suppressed = len(frame) - len(output)
    return (total + suppressed * len(chosen)) / (len(frame) * len(chosen))


def run_entrepot(frame: pd.DataFrame, k: int) -> dict[str, Any]:
    started = time.process_time()
    done = anonymize(
        frame,
        standard(),
        quasi=QUASI,
        criteria=Criteria(k=k, max_suppression=LIMIT),
        hierarchies=hierarchies(),
    )
    cpu = time.process_time() - started
    report = done.report
    return {
        "cpu_s": cpu,
        "loss": report["information_loss"]["loss"],
        "suppressed": report["rows_suppressed"],
        "levels": {g["column"]: g["generalized_to"] for g in report["generalization"]},
        "evaluated": f"{report['search']['evaluated']}/{report['search']['lattice_nodes']}",
    }


def run_anjana(frame: pd.DataFrame, k: int, work: Path) -> dict[str, Any]:
    levels = levels_of(frame)
    ladder = {
        column: {i: lv.labels[i][lv.maps[i]].tolist() for i in range(lv.height)}
        for column, (_, lv) in levels.items()
    }
    for column, (values, _) in levels.items():
        ladder[column][0] = [str(v) for v in values]
    data = frame.astype(str)
    data.to_csv(work / "in.csv", index=False)
    (work / "h.json").write_text(json.dumps(ladder))
    done = subprocess.run(
        [
            str(ANJANA),
            "-c",
            _ANJANA_SCRIPT,
            str(work / "in.csv"),
            str(work / "h.json"),
            str(k),
            str(LIMIT * 100),
            str(work / "out.csv"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"anjana failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    output = pd.read_csv(work / "out.csv", dtype=str, keep_default_na=False)
    result["loss"] = lm_of(frame, output, result["levels"], levels)
    result["levels"] = {c: levels[c][1].names[lv] for c, lv in result["levels"].items()}
    return result


def synthesis_rows(epsilons: list[float], rows: int) -> list[list[str]]:
    from entrepot.privacy.synth import _noisy, columns_of, fidelity, synthesize
    from entrepot.standards import codelist, get

    std = get("health.visit")
    rng = np.random.default_rng(11)
    n = rows
    district = rng.choice(list(codelist("region.district").codes), n, p=rng.dirichlet([1.0] * 60))
    age = rng.choice(list(codelist("age_band").codes), n)
    # Diagnosis depends on age band, so 2-way marginals carry signal.
    diag_codes = list(codelist("diagnosis_group").codes)
    diagnosis = [
        diag_codes[
            (list(codelist("age_band").codes).index(a) * 2 + int(rng.integers(0, 3)))
            % len(diag_codes)
        ]
        for a in age
    ]
    frame = pd.DataFrame(
        {
            "visit_date": pd.to_datetime("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 180, n), "D"),
            "district": district,
            "sex": rng.choice([1, 2], n),
            "age_band": age,
            "diagnosis_group": diagnosis,
        }
    )
    names = ("visit_date", "district", "sex", "age_band", "diagnosis_group")
    columns, _ = columns_of(std, names)
    out = []
    for epsilon in epsilons:
        started = time.process_time()
        _, report = synthesize(frame, columns, epsilon=epsilon, rows=rows, seed=3)
        cpu = time.process_time() - started
        codes = np.column_stack([c.encode(frame[c.name]) for c in columns])
        # Baseline: independent noisy 1-way marginals at the same ε, sampled column by column.
        drawn = np.zeros_like(codes)
        for i, c in enumerate(columns):
            counts = np.bincount(codes[:, i], minlength=len(c.categories)).astype(float)
            noisy = np.clip(_noisy(counts, 1.0, epsilon / len(columns)).counts, 0, None)
            p = noisy / noisy.sum() if noisy.sum() > 0 else np.full(len(noisy), 1 / len(noisy))
            drawn[:, i] = rng.choice(len(p), rows, p=p)
        baseline = fidelity(codes, drawn, columns)
        mst_rows, shipped_rows, mst_cpu = run_mst(codes, epsilon, rows)
        mst = fidelity(codes, mst_rows, columns)
        shipped = fidelity(codes, shipped_rows, columns)
        ours = report["fidelity"]
        out.append(
            [
                f"{epsilon:g}",
                f"{rows:,}",
                f"{cpu:.2f}",
                f"{ours['one_way_mean']:.4f}",
                f"{ours['two_way_mean']:.4f}",
                f"{mst_cpu:.2f}",
                f"{mst['one_way_mean']:.4f}",
                f"{mst['two_way_mean']:.4f}",
                f"{shipped['one_way_mean']:.4f}",
                f"{shipped['two_way_mean']:.4f}",
                f"{baseline['one_way_mean']:.4f}",
                f"{baseline['two_way_mean']:.4f}",
            ]
        )
    return out


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="30k,1M", help="comma-separated sizes")
    parser.add_argument("--k", default="5,10")
    parser.add_argument("--anjana-max-rows", default="1M", help="skip anjana above this size")
    parser.add_argument("--synth-rows", default="100k")
    parser.add_argument("--epsilons", default="1,5")
    parser.add_argument("--skip-synth", action="store_true")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.rows.split(",")]
    if min(sizes) <= parse_size(args.anjana_max_rows) and not ANJANA.exists():
        sys.exit(
            f"no anjana environment at {ANJANA}: python3 -m venv {ANJANA.parent.parent} "
            f"&& {ANJANA} -m pip install anjana==1.2.3"
        )
    if not args.skip_synth and not SNSYNTH.exists():
        sys.exit(f"no smartnoise-synth environment at {SNSYNTH}: {SNSYNTH_SETUP}")
    rows_out = []
    for size in sizes:
        frame = people(size)
        for k in (int(x) for x in args.k.split(",")):
            ours = run_entrepot(frame, k)
            line = [
                f"{size:,}",
                str(k),
                f"{ours['cpu_s']:.3f}",
                f"{ours['loss']:.4f}",
                f"{ours['suppressed']:,}",
                ours["evaluated"],
            ]
            if size <= parse_size(args.anjana_max_rows):
                with tempfile.TemporaryDirectory() as work:
                    theirs = run_anjana(frame, k, Path(work))
                line += [
                    f"{theirs['cpu_s']:.2f}",
                    f"{theirs['loss']:.4f}",
                    f"{theirs['suppressed']:,}",
                    f"{theirs['cpu_s'] / max(ours['cpu_s'], 1e-9):.0f}x",
                    f"{ours['loss'] / max(theirs['loss'], 1e-12):.2f}",
                ]
            else:
                line += ["skipped"] * 5
            rows_out.append(line)
            print(" | ".join(line), file=sys.stderr)
    print(
        markdown(
            [
                "rows",
                "k",
                "entrepot CPU s",
                "entrepot LM",
                "suppressed",
                "nodes evaluated",
                "anjana CPU s",
                "anjana LM",
                "anjana suppressed",
                "anjana / entrepot time",
                "entrepot / anjana LM",
            ],
            rows_out,
        )
    )
    if not args.skip_synth:
        epsilons = [float(e) for e in args.epsilons.split(",")]
        print()
        print(
            markdown(
                [
                    "ε",
                    "rows",
                    "CPU s",
                    "1-way TVD",
                    "2-way TVD",
                    "MST (smartnoise-synth) CPU s",
                    "MST 1-way TVD",
                    "MST 2-way TVD",
                    "MST as sampled by smartnoise-synth: 1-way TVD",
                    "2-way TVD",
                    "baseline 1-way TVD",
                    "baseline 2-way TVD",
                ],
                synthesis_rows(epsilons, parse_size(args.synth_rows)),
            )
        )


if __name__ == "__main__":
    main()
