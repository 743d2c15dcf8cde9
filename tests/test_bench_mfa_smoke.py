"""``python -m bench.mfa`` runs and prints its figures (smallest settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_mfa_bench_prints_its_figures() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.mfa",
            "--rounds",
            "1",
            "--concurrency",
            "1",
            "--calls",
            "1000",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    line = next(text for text in result.stdout.splitlines() if text.startswith('{"bench": "mfa"'))
    figures = json.loads(line)
    assert figures["password_logins_per_s"] > 0
    assert figures["password_totp_logins_per_s"] > 0
    assert figures["amr_check_added_us"] < 100
    assert "logins/s" in result.stdout
