"""Does ``POST /auth/password/forgot`` answer faster or slower when an account
has the address? (It must not: fastapi-users #1534.)

Starts Bastion (``bench.serve_bastion``: SQLite, Maildir, its courier running)
pinned to CPU 0, registers N accounts, then sends N forgot requests for those
addresses and N for addresses nobody has, **interleaved** (each pair in random
order, so drift and the courier's background work fall on both sides alike),
over one keep-alive connection from CPU 1. Every address is used once, so
every request takes the path that queues an intent (none is cut short by the
3-an-hour limit). Prints the medians, the median difference with a bootstrap
95% interval, and a two-sided Mann-Whitney U test.

Usage: ``python -m bench.forgot_timing [--samples 300] [--smoke] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bastion.audit.stats import bootstrap_median_difference
from bastion.audit.stats import mann_whitney_u as mann_whitney

__all__ = ["mann_whitney", "measure", "median_difference_ci"]
from bench.procs import (
    CLIENT_CPU,
    SERVER_CPU,
    ProcessGroup,
    can_pin,
    clean_env,
    free_port,
    wait_for_port,
)

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def median_difference_ci(
    a: list[float], b: list[float], rounds: int = 2000, seed: int = 7
) -> tuple[float, float]:
    """Bootstrap 95% interval of ``median(a) - median(b)``, reproducible by ``seed``."""
    return bootstrap_median_difference(a, b, rng=random.Random(seed), resamples=rounds)


def measure(samples: int, workdir: Path) -> dict[str, object]:
    """Run the server, take the samples, return the figures."""
    port = free_port()
    env = clean_env(
        {
            "BASTION_DATA_DIR": str(workdir / "data"),
            "BASTION_RATE_LIMIT": "100000000/minute",
            "BASTION_REGISTER_RATE_LIMIT": "100000000/minute",
            "BASTION_RECOVERY_RATE_LIMIT": "100000000/minute",
            "BASTION_EMAIL_VERIFICATION": "off",
        }
    )
    group = ProcessGroup()
    try:
        server = group.spawn(
            [sys.executable, "-m", "bench.serve_bastion", str(port)],
            cpu=SERVER_CPU,
            env=env,
            cwd=ROOT,
            log=workdir / "server.log",
        )
        wait_for_port(port, server, 60)
        if can_pin():
            os.sched_setaffinity(0, {CLIENT_CPU})
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for n in range(samples):
                body = {"username": f"known{n}", "email": f"known{n}@bench.example", "age": 30}
                response = client.post("/users", json={**body, "password": PASSWORD})
                response.raise_for_status()
            for n in range(20):  # warm-up, neither side
                client.post("/auth/password/forgot", json={"email": f"warm{n}@bench.example"})
            rng = random.Random(11)
            times: dict[str, list[float]] = {"known": [], "unknown": []}
            statuses: set[int] = set()
            for n in range(samples):
                pair = [
                    ("known", f"known{n}@bench.example"),
                    ("unknown", f"ghost{n}@bench.example"),
                ]
                rng.shuffle(pair)
                for side, address in pair:
                    started = time.perf_counter()
                    response = client.post("/auth/password/forgot", json={"email": address})
                    times[side].append((time.perf_counter() - started) * 1000)
                    statuses.add(response.status_code)
    finally:
        group.close()
    known, unknown = times["known"], times["unknown"]
    u, p = mann_whitney(known, unknown)
    low, high = median_difference_ci(known, unknown)
    return {
        "samples_each": samples,
        "statuses": sorted(statuses),
        "median_ms": {"known": statistics.median(known), "unknown": statistics.median(unknown)},
        "p90_ms": {
            "known": statistics.quantiles(known, n=10)[-1],
            "unknown": statistics.quantiles(unknown, n=10)[-1],
        },
        "median_difference_ms": statistics.median(known) - statistics.median(unknown),
        "median_difference_ci95_ms": [low, high],
        "mann_whitney_u": u,
        "p_value": p,
        "pinned": can_pin(),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print; write ``forgot_timing.json`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="20 samples each (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    samples = 20 if args.smoke else args.samples
    with tempfile.TemporaryDirectory(prefix="bastion-forgot-") as work:
        figures = measure(samples, Path(work))
    medians = figures["median_ms"]
    assert isinstance(medians, dict)
    print(f"forgot-password, {samples} interleaved samples each (ms):")
    print(f"  median known   {medians['known']:.3f}")
    print(f"  median unknown {medians['unknown']:.3f}")
    interval = figures["median_difference_ci95_ms"]
    assert isinstance(interval, list)
    low, high = interval
    print(
        f"  median difference {figures['median_difference_ms']:+.3f} "
        f"(bootstrap 95% CI {low:+.3f} .. {high:+.3f})"
    )
    u, p = figures["mann_whitney_u"], figures["p_value"]
    print(f"  Mann-Whitney U = {u:.0f}, two-sided p = {p:.3f}")
    print(f"  statuses seen: {figures['statuses']}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "forgot_timing.json").write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
