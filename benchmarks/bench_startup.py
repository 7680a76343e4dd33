"""CPU cost of starting a command: local read-only commands against two baselines.

    python benchmarks/bench_startup.py              # 7 runs of each command
    python benchmarks/bench_startup.py --runs 3     # quick

Builds a node with the demo (``entrepot demo --no-serve --scale 0.05``) in a
temporary home, then runs each command ``--runs`` times in a fresh interpreter and
measures its CPU time (user + sys of the child, which a busy machine disturbs less
than the wall clock). Baselines in the same run: ``python -c pass`` (the
interpreter) and ``entrepot --version`` (the CLI's own start). Prints the best and
the median of the runs, and each command's best as a ratio to ``--version``.
Bar: every local read-only command measured (each one that reads the demo's home)
costs at most 0.35 s of CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BAR_S = 0.35
# A dataset of the demo, for the commands that show one, and its consumer, for the
# commands run as an organization (``--as``).
SHOWN = "riverside-hospitals/outpatient-visits"
CONSUMER = "lanshan-health-bureau"


def _cpu(command: list[str], env: dict[str, str]) -> float:
    """User + sys CPU seconds of one run of ``command``, from the children's rusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="Runs of each command.")
    args = parser.parse_args()
    python = sys.executable
    entrepot = [python, "-m", "entrepot"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    with tempfile.TemporaryDirectory() as tmp:
        home = str(Path(tmp) / "node")
        env["ENTREPOT_CLIENT_CONFIG"] = str(Path(tmp) / "remote.json")
        subprocess.run(
            [*entrepot, "demo", "--home", home, "--no-serve", "--scale", "0.05"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

        def on_home(*words: str) -> list[str]:
            return [*entrepot, *words, "--home", home]

        commands = {
            "python -c pass": [python, "-c", "pass"],
            "entrepot --version": [*entrepot, "--version"],
            "entrepot --help": [*entrepot, "--help"],
            "entrepot catalog list": on_home("catalog", "list"),
            "entrepot standard list": on_home("standard", "list"),
            "entrepot budget": on_home("budget"),
            "entrepot catalog show": on_home("catalog", "show", SHOWN),
            "entrepot provider list": on_home("provider", "list"),
            "entrepot account list": on_home("account", "list"),
            "entrepot access list": on_home("access", "list"),
            "entrepot policy show": on_home("policy", "show", SHOWN),
            "entrepot peer list": on_home("peer", "list"),
            "entrepot release list": on_home("release", "list"),
            "entrepot db status": on_home("db", "status"),
            "entrepot catalog search": on_home("catalog", "search", "visits"),
            "entrepot standard show": on_home("standard", "show", "health.visit"),
            "entrepot whoami": on_home("whoami"),
            "entrepot node id": on_home("node", "id"),
            "entrepot audit log": on_home("audit", "log"),
            "entrepot audit head": on_home("audit", "head"),
            "entrepot audit prove 1": on_home("audit", "prove", "1"),
            "entrepot budget --as": on_home("budget", "--as", CONSUMER),
            "entrepot access list --as": on_home("access", "list", "--as", CONSUMER),
            "entrepot usage --as": on_home("usage", "--as", CONSUMER),
        }
        figures = {
            name: [_cpu(command, env) for _ in range(args.runs)]
            for name, command in commands.items()
        }
    load = os.getloadavg()
    version = min(figures["entrepot --version"])
    print(f"CPU seconds (user + sys), {args.runs} runs each; load average {load[0]:.2f}")
    print(f"{'command':<28} {'best':>6} {'median':>7} {'× --version':>12}")
    for name, runs in figures.items():
        best = min(runs)
        print(f"{name:<28} {best:>6.3f} {statistics.median(runs):>7.3f} {best / version:>12.2f}")
    # The local read-only commands: every one that reads the demo's home.
    local = {name: min(figures[name]) for name, command in commands.items() if home in command}
    over = sorted((name for name, best in local.items() if best > BAR_S), key=local.__getitem__)
    verdict = "met" if not over else f"NOT met by {', '.join(over)}"
    print(f"bar: a local read-only command ≤ {BAR_S} s of CPU (best run): {verdict}")


if __name__ == "__main__":
    main()
