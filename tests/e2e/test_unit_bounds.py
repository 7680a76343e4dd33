"""Bounds that fit the data, end to end: a skewed dataset published from the CLI gets
its rows-per-unit bound estimated privately, shown with its ε, paid from the dataset's
cap; a provider's own bound in the policy wins over it."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from entrepot.exchange.node import Node
from entrepot.privacy.bounds import (
    CANDIDATES,
    LEVELS,
    QUANTILE,
    UNITS_SHARE,
    level_for,
    percentile,
)
from entrepot.privacy.ledger import Ledger
from entrepot.privacy.sql.rewrite import REMOVED_CAP
from entrepot.settings import Settings
from entrepot.standards import codelist, get
from entrepot.vault import add_provider
from entrepot.vault.datasets import find_dataset

DATASET = "riverside-hospitals/outpatient-visits"


def skewed_visits(path: Path, patients: int = 1_500, seed: int = 5) -> Path:
    """Most patients visit once to three times, a few dozens of times."""
    rng = random.Random(seed)
    districts = codelist("region.district").codes[:4]
    lines = [",".join(get("health.visit").field_names)]
    visit = 0
    for patient in range(patients):
        draw = rng.random()
        count = rng.randint(1, 3) if draw < 0.8 else rng.randint(5, 12) if draw < 0.95 else 40
        for _ in range(count):
            lines.append(
                f"V{visit:07d},P-{patient:05d},2025-{rng.randrange(1, 7):02d}-"
                f"{rng.randrange(1, 29):02d},{rng.choice(districts)},{rng.choice((1, 2))},"
                f"{rng.choice(codelist('age_band').codes)},"
                f"{rng.choice(codelist('diagnosis_group').codes)},"
                f"{rng.uniform(10, 900):.2f},{rng.uniform(0.1, 5):.2f}"
            )
            visit += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "entrepot", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("bounds")
    node = Node.init(Settings(home=base / "node"))
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    node.close()
    return base / "node"


def test_a_publish_shows_the_private_bound_and_its_epsilon_and_a_policy_bound_wins(
    home: Path, tmp_path: Path
) -> None:
    source = skewed_visits(tmp_path / "visits.csv")
    publish = ("dataset", "publish", str(source), "--provider", "riverside-hospitals")
    publish += ("--standard", "health.visit", "--title", "Outpatient visits 2025")
    shown = " ".join(cli(home, *publish).split())
    # the provider reads it in the versions, as in the publish's JSON
    [published] = json.loads(cli(home, "dataset", "versions", DATASET, "--json"))
    bound, level = published["unit_bound"], published["unit_level"]
    assert bound in CANDIDATES
    # 1,500 patients at ε 0.1 are too few for the 95th: at most the level 1,500 resolve
    assert level in LEVELS
    quantile = 0.1 * (1 - UNITS_SHARE)  # the count of units takes the rest
    assert level_for(1_500, quantile) < QUANTILE
    # the count's noise (scale 100) passes ln(1e6)·100 with probability 1e-6
    assert level <= level_for(1_500 + 100 * math.log(1e6), quantile)
    assert f"rows per unit: {bound} (the {percentile(level)}, the highest its units" in shown
    table = " ".join(cli(home, "dataset", "versions", DATASET).split())
    assert f"{bound} (p{round(level * 100)})" in table
    assert "it removes an estimated" in shown
    # bound_epsilon (0.1) for the bound, as much again for the rows it keeps and removes
    assert published["bound_epsilon"] == pytest.approx(0.2)
    per_unit = Counter(line.split(",")[1] for line in source.read_text().splitlines()[1:])
    kept = sum(min(n, bound) for n in per_unit.values())
    removed = sum(min(max(n - bound, 0), REMOVED_CAP * bound) for n in per_unit.values())
    scale = published["unit_removed_scale"]
    assert scale == pytest.approx((REMOVED_CAP + 1) * bound / 0.1)
    # each noise exceeds ln(1e6)·scale with probability 1e-6
    assert abs(published["unit_kept"] - kept) <= scale * math.log(1e6)
    assert abs(published["unit_removed"] - removed) <= scale * math.log(1e6)

    # the same in the policy in force
    shown = json.loads(cli(home, "policy", "show", DATASET, "--json"))
    assert shown["policy"]["contributions"]["rows_per_unit"] == "auto"
    assert shown["bound"] == {
        "rows_per_unit": bound,
        "source": "estimate",
        "version": 1,
        "estimate": bound,
        "estimate_level": level,
        "estimate_epsilon": 0.2,
    }
    text = " ".join(cli(home, "policy", "show", DATASET).split())
    assert f"Rows per unit on version 1: {bound}, estimated privately at publish" in text
    assert f"({percentile(level)}, ε 0.2 of the dataset's cap" in text

    # its ε came out of the dataset's global cap, and the ledger accounts for it
    node = Node.open(Settings(home=home))
    try:
        with node.db.read() as session:
            dataset_id = find_dataset(session, DATASET).id
        ledger = Ledger(node.db)
        cap = ledger.cap(dataset_id)
        assert cap is not None
        assert cap.epsilon_spent == pytest.approx(0.2)
        assert ledger.check() == []
    finally:
        node.close()

    # the provider's bound wins; a second version is not estimated under it
    policy = tmp_path / "policy.yaml"
    policy.write_text("contributions:\n  rows_per_unit: 7\n", encoding="utf-8")
    cli(home, "policy", "set", DATASET, str(policy))
    shown = json.loads(cli(home, "policy", "show", DATASET, "--json"))
    assert shown["bound"]["rows_per_unit"] == 7
    assert shown["bound"]["source"] == "policy"
    text = " ".join(cli(home, "policy", "show", DATASET).split())
    assert f"7, set by the policy (the private estimate: {bound}" in text
    again = json.loads(cli(home, *publish, "--force", "--json"))
    assert (again["version"], again["unit_bound"], again["bound_epsilon"]) == (2, None, 0.0)
    assert "rows per unit" not in cli(home, *publish, "--force")
