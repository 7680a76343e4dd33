"""The Gaussian mechanism's ρ for a query's (ε, δ): OpenDP's conversion against Bun & Steinke.

For each ε and δ, two ways to turn (ε, δ) into the ρ of a ρ-zCDP Gaussian:

- ``Bun & Steinke``: ``ρ = (√(ln(1/δ) + ε) − √ln(1/δ))²``, the inverse of
  ``ε = ρ + 2√(ρ ln(1/δ))`` (2016, Prop. 1.3), the formula the mechanism used before;
- ``OpenDP``: :meth:`entrepot.privacy.mechanisms.Gaussian.rho`, the largest ρ whose
  OpenDP profile (``make_zCDP_to_approxDP``) has δ(ε) at most δ.

For each ρ the table gives σ of one value of L2 sensitivity 1 (the smallest scale
whose OpenDP privacy map fits ρ, as queries get it), the 95% half-width ``1.96 σ``,
and the δ OpenDP's profile of that ρ actually reaches at ε (the closed form leaves
part of δ unspent). The last column is the time of one uncached inversion.

    python benchmarks/bench_delta.py
"""

from __future__ import annotations

import math
import time

from entrepot.privacy.mechanisms import Gaussian, _profile_delta

EPSILONS = (0.1, 0.5, 1.0)
DELTAS = (1e-10, 1e-8, 1e-6)


def bun_steinke(epsilon: float, delta: float) -> float:
    log_term = math.log(1 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def main() -> None:
    gaussian = Gaussian()
    print(
        "| ε | δ | ρ Bun & Steinke | ρ OpenDP | ρ gain | σ B&S | σ OpenDP | σ ratio "
        "| half-width B&S | half-width OpenDP | δ reached B&S | δ reached OpenDP | inversion |"
    )
    print("|" + " --- |" * 13)
    for epsilon in EPSILONS:
        for delta in DELTAS:
            closed = bun_steinke(epsilon, delta)
            Gaussian.rho.cache_clear()
            start = time.perf_counter()
            opendp = Gaussian.rho(epsilon, delta)
            took = time.perf_counter() - start
            sigma_closed = gaussian.scale(1.0, closed, 1)
            sigma_opendp = gaussian.scale(1.0, opendp, 1)
            print(
                f"| {epsilon:g} | {delta:g} | {closed:.5g} | {opendp:.5g} "
                f"| {opendp / closed - 1:+.1%} | {sigma_closed:.4g} | {sigma_opendp:.4g} "
                f"| {sigma_opendp / sigma_closed:.3f} | {gaussian.halfwidth(sigma_closed):.4g} "
                f"| {gaussian.halfwidth(sigma_opendp):.4g} "
                f"| {_profile_delta(closed, epsilon):.3g} | {_profile_delta(opendp, epsilon):.3g} "
                f"| {took * 1000:.0f} ms |"
            )


if __name__ == "__main__":
    main()
