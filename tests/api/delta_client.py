"""The official Delta Sharing client (PyPI ``delta-sharing``), run in its own environment.

Its releases pin pandas < 3 and pyarrow <= 23, which the project's environment does not
hold, so it lives in ``.venv-clients`` (``make clients``), as a consumer's machine would
have it, and tests run it as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(os.environ.get("ENTREPOT_DELTA_SHARING_PYTHON", ROOT / ".venv-clients/bin/python"))

_SCRIPT = """
import json, sys
import delta_sharing as ds
profile, table = sys.argv[1], sys.argv[2]
out = {}
try:
    client = ds.SharingClient(profile)
    out["tables"] = sorted(f"{t.share}.{t.schema}.{t.name}" for t in client.list_all_tables())
    if table:
        frame = ds.load_as_pandas(f"{profile}#{table}")
        out["rows"] = len(frame)
        out["columns"] = list(frame.columns)
        out["records"] = json.loads(frame.astype(str).to_json(orient="records"))
except Exception as error:
    status = getattr(getattr(error, "response", None), "status_code", None)
    out["error"] = {"type": type(error).__name__, "status": status, "message": str(error)[:800]}
print(json.dumps(out))
"""


def read(profile: Path, table: str = "") -> dict[str, Any]:
    """What the official client lists and loads through ``profile``."""
    if not PYTHON.exists():
        raise AssertionError(f"no Delta Sharing client environment at {PYTHON}: run `make clients`")
    done = subprocess.run(
        [str(PYTHON), "-c", _SCRIPT, str(profile), table],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_profile(path: Path, endpoint: str, token: str) -> Path:
    path.write_text(
        json.dumps({"shareCredentialsVersion": 1, "endpoint": endpoint, "bearerToken": token}),
        encoding="utf-8",
    )
    return path
