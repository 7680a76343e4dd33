"""The rows-per-unit bound released at publish, on datasets small and large.

For each number of units (rows per unit 1 + Poisson(4), seeded), ``--draws`` releases
at ``bound_epsilon`` (0.1 by default) of:

- ``entrepot``: :func:`entrepot.privacy.bounds.estimate_rows_per_unit`, a tenth of ε
  counting the units, which choose the level, the rest on the quantile at that level;
- ``fixed 95th``: OpenDP's ``make_private_quantile`` at the 95th with the whole ε, over
  the same candidates (how every publish estimated before levels were chosen).

The table gives the data's 95th percentile and largest count, then per release the
level drawn most, the median bound and its 90th percentile over the draws, and the
share of draws above the data's largest count (a bound no unit reaches: noise grows
with it, nothing is gained). Every noisy query's noise scale is proportional to the
bound, so ``noise ×`` is the median bound over the data's 95th percentile.

    python benchmarks/bench_bounds.py
    python benchmarks/bench_bounds.py --units 100,1000,10000 --draws 400
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import Counter

import numpy as np

from entrepot.privacy.bounds import QUANTILE, estimate_rows_per_unit, percentile, quantile_release

SEED = 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", default="100,300,1000,3000,10000,100000")
    parser.add_argument("--draws", type=int, default=200, help="releases per size and method")
    parser.add_argument("--epsilon", type=float, default=0.1, help="the policy's bound_epsilon")
    args = parser.parse_args()
    one, five, fifteen = os.getloadavg()
    print(f"load average before: {one:.2f} {five:.2f} {fifteen:.2f}")
    old, _ = quantile_release(args.epsilon, QUANTILE)  # the whole ε at the 95th
    rng = np.random.default_rng(SEED)
    print(
        "| units | data's 95th | data's max | release | level | median bound | 90th of "
        "draws | above the data | noise × |"
    )
    print("| ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for units in (int(u) for u in args.units.split(",")):
        counts = (1 + rng.poisson(4, units)).astype(np.int64)
        histogram = dict(Counter(counts.tolist()))
        q95, top = float(np.quantile(counts, QUANTILE)), int(counts.max())
        new = [estimate_rows_per_unit(histogram, args.epsilon) for _ in range(args.draws)]
        runs = {
            "entrepot": ([d.rows for d in new], Counter(d.level for d in new).most_common(1)),
            "fixed 95th": ([int(old(counts)) for _ in range(args.draws)], [(QUANTILE, 0)]),
        }
        for name, (bounds, ((level, _),)) in runs.items():
            median = statistics.median(bounds)
            print(
                f"| {units:,} | {q95:g} | {top} | {name} | {percentile(level)} | {median:g} "
                f"| {np.quantile(bounds, 0.9):g} | {np.mean(np.array(bounds) > top):.1%} "
                f"| {median / q95:.1f} |"
            )
    one, five, fifteen = os.getloadavg()
    print(f"load average after: {one:.2f} {five:.2f} {fifteen:.2f}")


if __name__ == "__main__":
    main()
