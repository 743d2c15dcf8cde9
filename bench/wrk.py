"""Finding wrk and reading its ``--latency`` report."""

from __future__ import annotations

import re
import shutil
from typing import Any

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def find_wrk() -> str | None:
    """Path of wrk, or ``None`` (the harness then uses ``bench.loadgen`` for W1)."""
    return shutil.which("wrk")


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms), totals and errors from wrk's output.

    Raises:
        ValueError: when the output has no ``Requests/sec`` line.
    """
    result: dict[str, Any] = {}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if rps is None:
        raise ValueError(f"wrk printed no Requests/sec:\n{text}")
    result["rps"] = float(rps.group(1))
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if match:
            result[f"p{pct}_ms"] = _ms(match.group(1))
    total = re.search(r"^\s+(\d+) requests in ([\d.]+\w+)", text, re.M)
    if total:
        result["requests"] = int(total.group(1))
        result["duration_s"] = _ms(total.group(2)) / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    result["errors"] = sum(int(g) for g in errors.groups()) if errors else 0
    return result
