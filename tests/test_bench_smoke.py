"""The benchmark harness runs end to end in smoke mode, so it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"}
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
    assert (out / "results.md").read_text().startswith("# Bastion benchmark results")
