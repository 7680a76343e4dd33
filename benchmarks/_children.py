"""Child processes of the benchmarks, and the virtual environments of the baselines.

SmartNoise SQL and Tumult Analytics pin dependencies that clash with entrepot's (and
with each other's), so each runs in a virtual environment of its own, made on first
use with the interpreter running the benchmark, and is driven as a child process that
prints one JSON report as its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SNSQL", "TUMULT", "Env", "load", "run_child"]

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Env:
    """A baseline's virtual environment: where it lives and what it installs."""

    name: str
    path: Path
    packages: tuple[str, ...]

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def exists(self) -> bool:
        return self.python.exists()

    def ensure(self) -> Path:
        """The environment's interpreter, the environment made first if missing."""
        if self.exists():
            return self.python
        print(f"installing {self.name} into {self.path} (once) ...", flush=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(self.path)], check=True)
        pip = [str(self.python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *self.packages], check=True)
        return self.python


SNSQL = Env("SmartNoise SQL", ROOT / ".venv-snsql", ("smartnoise-sql==1.0.10", "duckdb"))
# Tumult runs on PySpark, which needs Java 17 (Debian's openjdk-17-jre-headless).
TUMULT = Env(
    "Tumult Analytics",
    Path.home() / ".cache" / "entrepot-bench" / "tumult",
    ("tmlt.analytics==0.21.0",),
)


def run_child(
    args: list[str], stdin: str = "", env: dict[str, str] | None = None
) -> tuple[dict[str, Any], int]:
    """Run a child, return its JSON report (its last line) and its peak RSS in bytes.

    Its standard error goes to a file (Spark writes a lot there), shown if it fails.
    """
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(stdin)
        process.stdin.close()
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            errors.seek(0)
            raise SystemExit(f"child {args[1:4]} failed:\n{errors.read()[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss * 1024


def load() -> str:
    """The 1, 5 and 15-minute load averages, as /proc/loadavg prints them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
