"""The benchmark harness runs end to end in smoke mode, so it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9"}
#: Smoke mode takes about a minute on a busy two-core machine; this is its ceiling.
TIMEOUT_SECONDS = 300


def test_smoke_run_writes_results_for_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["workloads"]) == WORKLOADS
    for workload in WORKLOADS:
        assert results["workloads"][workload]["results"], f"{workload} produced no figures"
    assert results["machine"]["nproc"] >= 1
    figures = results["workloads"]
    # W2: one user per connection, so the per-account login throttle never answers.
    assert "429" not in figures["W2"]["results"]["bastion"]["status"]
    # W3: both kinds of flooding client, each with its p99 ratio.
    for target in ("bastion", "blogpost"):
        kinds = figures["W3"]["results"][target]["kinds"]
        assert set(kinds) == {"retry-at-once", "honour-retry-after"}
    # W9: a fresh instance, idle and after the smoke run's 2,000 distinct clients.
    for target in ("bastion", "bastion-pg", "blogpost"):
        memory = figures["W9"]["results"][target]
        assert memory["clients"] == 2_000, memory
        assert memory["rss_idle_mib"] > 0
        assert memory["rss_after_mib"] > 0
    assert (out / "results.md").read_text().startswith("# Bastion benchmark results")


def test_forgot_timing_smoke_prints_medians_and_a_test(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.forgot_timing", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    figures = json.loads((tmp_path / "forgot_timing.json").read_text())
    assert figures["statuses"] == [202]
    assert figures["samples_each"] == 20
    assert 0.0 <= figures["p_value"] <= 1.0
    assert "Mann-Whitney U" in run.stdout


def test_the_mann_whitney_test_tells_apart_shifted_samples() -> None:
    from bench.forgot_timing import mann_whitney

    same = [float(x % 17) for x in range(200)]
    assert mann_whitney(same, list(same))[1] > 0.9
    shifted = [x + 5.0 for x in same]
    assert mann_whitney(same, shifted)[1] < 0.001
