"""Bastion's benchmark harness: one command, every target, every workload.

Usage (from the repository root)::

    .venv/bin/python -m bench.run [--smoke] [--only W1,W3] [--targets bare,bastion] [--out DIR]

Each target server runs on 127.0.0.1 pinned to CPU 0 (``taskset -c 0``) and
every load generator on CPU 1. Servers are started one at a time, driven for a
bounded time and count, and torn down (process groups, ``finally``) before the
next. Results go to ``bench/results/results.json`` and ``results.md`` (and
``results.png``); see bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.loadgen import RequestSpec, request_once
from bench.procs import (
    CLIENT_CPU,
    SERVER_CPU,
    ProcessGroup,
    can_pin,
    clean_env,
    free_port,
    memory_kib,
    wait_for_port,
    wait_quiet,
)
from bench.targets import (
    ROOT,
    Target,
    bare,
    bare_h11,
    bastion,
    bastion_cli,
    bastion_in_process,
    bastion_pg,
    bastion_serve,
    blogpost,
    ensure_peers_venv,
    fastapi_users,
    postgres_and_redis,
)
from bench.wrk import find_wrk, parse_wrk

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9")
WORKLOAD_TITLES = {
    "W1": "authenticated GET /protected",
    "W2": "logins/s against the physical limit (each connection logs in its own user)",
    "W3": "/health latency during a login flood vs idle, two kinds of flooding client",
    "W4": "registrations/s",
    "W5": "rate limiter: cost per check, memory at many distinct clients (Redis: PG+Redis column)",
    "W6": "revocation-check overhead on token verification",
    "W7": "observability overhead: access log + metrics on vs off (in process)",
    "W8": "bastion serve --workers 1 vs 2 on PostgreSQL + Redis (unpinned)",
    "W9": "memory: server RSS idle and after N distinct clients (X-Forwarded-For)",
}
#: W3's two kinds of flooding client (issue 15): closed loop, retrying at once
#: on 429/503, and the same clients honouring ``Retry-After``.
W3_KINDS = ("retry-at-once", "honour-retry-after")
#: Longest ``Retry-After`` a polite W3 client waits, seconds.
W3_RETRY_AFTER_CAP = 5.0
#: Where W8's processes run: on purpose not pinned (see ``Harness.w8``).
W8_PLACEMENT = "not pinned: server workers, PostgreSQL, Redis and wrk share both CPUs"
TARGET_NAMES = ("bare", "bare-h11", "blogpost", "bastion", "bastion-pg", "fastapi-users")
SETUP_USER = "benchuser"
#: ``nice -n`` of W3's flooding client (its CPU also runs the /health sampler).
FLOOD_NICENESS = 19
#: W2's users, one per connection: ``benchuser0``, ``benchuser1``, ... (loadgen's
#: ``{c}``). One account logged in from one client by many connections at once
#: meets Bastion's login throttle (at most 5 reservations in flight per account
#: and client, by design), which would measure the throttle, not logins.
W2_USER = SETUP_USER + "{c}"
#: W9's user (a database shared by two instances of bastion-pg has SETUP_USER).
W9_USER = "memuser"


@dataclass(frozen=True)
class Params:
    """Durations and counts of one mode; every loop is bounded by them."""

    w1_seconds: int
    w1_warmup: int
    w1_connections: int
    w2_seconds: float
    w2_concurrency: int
    w3_idle_seconds: float
    w3_flood_seconds: float
    w3_flood_concurrency: int
    w3_sample_rate: float
    w4_seconds: float
    w4_concurrency: int
    w5_clients: int
    w5_hot_checks: int
    w5_redis_calls: int
    w6_calls: int
    w7_requests: int
    w7_rounds: int
    w8_seconds: int
    w8_warmup: int
    w8_connections: int
    w9_clients: int
    w9_seconds: float
    """Bound on W9's load; the figure says how many clients it reached."""
    w9_connections: int
    hash_count: int
    hash_per_target: bool
    """Time the hash just before each target (closer in time, less exposed to the
    shared machine's drifting load) rather than all at once at the start."""
    quiet_timeout: float
    start_timeout: float
    request_timeout: float
    max_requests: int
    stop_grace: float
    """Seconds a server gets to exit on SIGTERM before SIGKILL. After a flood some
    servers would first work through their whole backlog; we do not wait for that."""


SMOKE = Params(
    w1_seconds=1,
    w1_warmup=0,
    w1_connections=16,
    w2_seconds=1.0,
    w2_concurrency=4,
    w3_idle_seconds=0.4,
    w3_flood_seconds=1.0,
    w3_flood_concurrency=32,
    w3_sample_rate=40.0,
    w4_seconds=1.0,
    w4_concurrency=4,
    w5_clients=20_000,
    w5_hot_checks=50_000,
    w5_redis_calls=100,
    w6_calls=500,
    w7_requests=200,
    w7_rounds=3,
    w8_seconds=1,
    w8_warmup=0,
    w8_connections=16,
    w9_clients=2_000,
    w9_seconds=20.0,
    w9_connections=16,
    hash_count=1,
    hash_per_target=False,
    quiet_timeout=0.0,
    start_timeout=60.0,
    request_timeout=5.0,
    max_requests=20_000,
    stop_grace=1.0,
)
FULL = Params(
    w1_seconds=10,
    w1_warmup=2,
    w1_connections=32,
    w2_seconds=8.0,
    w2_concurrency=8,
    w3_idle_seconds=5.0,
    w3_flood_seconds=8.0,
    w3_flood_concurrency=200,
    w3_sample_rate=50.0,
    w4_seconds=8.0,
    w4_concurrency=8,
    w5_clients=1_000_000,
    w5_hot_checks=1_000_000,
    w5_redis_calls=2_000,
    w6_calls=5_000,
    w7_requests=5_000,
    w7_rounds=3,
    w8_seconds=10,
    w8_warmup=2,
    w8_connections=32,
    w9_clients=100_000,
    w9_seconds=180.0,
    w9_connections=32,
    hash_count=10,
    hash_per_target=True,
    quiet_timeout=15.0,
    start_timeout=90.0,
    request_timeout=30.0,
    max_requests=2_000_000,
    stop_grace=5.0,
)


class Harness:
    """Runs the selected workloads on the selected targets and collects results."""

    def __init__(
        self, params: Params, workloads: list[str], work: Path, *, use_wrk: bool = True
    ) -> None:
        self.p = params
        self.workloads = workloads
        self.work = work
        self.procs = ProcessGroup()
        self.pinned = can_pin()
        self.server_cores = 1 if self.pinned else (os.cpu_count() or 1)
        self.wrk = find_wrk() if use_wrk else None
        self.failures: list[str] = []
        self.results: dict[str, Any] = {
            w: {"title": WORKLOAD_TITLES[w], "results": {}} for w in workloads
        }
        self.targets: dict[str, Any] = {}
        self.hash_times: dict[str, dict[str, Any]] = {}

    # -- helpers -------------------------------------------------------------------------

    def micro(self, python: Path, *args: str, timeout: float = 600.0) -> dict[str, Any]:
        """Run ``bench.micro`` pinned to the server CPU (nothing else of ours runs there)."""
        proc = self.procs.spawn(
            [str(python), "-m", "bench.micro", *args],
            cpu=SERVER_CPU,
            env=clean_env(),
            cwd=ROOT,
            log=self.work / "micro.log",
            capture=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            self.procs.stop(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"bench.micro {' '.join(args)} failed: {self._tail('micro.log')}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    def loadgen(
        self, cfg: dict[str, Any], cpu: int | None = CLIENT_CPU, *, niceness: int = 0
    ) -> subprocess.Popen[bytes]:
        """Start a load generator process on the client CPU (or unpinned: ``cpu=None``),
        at ``niceness`` (``nice -n``)."""
        prefix = ["nice", "-n", str(niceness)] if niceness else []
        return self.procs.spawn(
            [*prefix, sys.executable, "-m", "bench.loadgen", json.dumps(cfg)],
            cpu=cpu,
            env=clean_env(),
            cwd=ROOT,
            log=self.work / "loadgen.log",
            capture=True,
        )

    def collect(self, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
        """Wait for a load generator and parse its JSON line."""
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            self.procs.stop(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed: {self._tail('loadgen.log')}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    def _tail(self, name: str, lines: int = 15) -> str:
        path = self.work / name
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def call(port: int, spec: RequestSpec) -> tuple[int, Any]:
        """One request (setup steps); returns status and parsed JSON body (or text)."""
        status, body = asyncio.run(request_once(port, spec))
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def record(self, workload: str, target: str, value: dict[str, Any]) -> None:
        """Store one figure set."""
        self.results[workload]["results"][target] = value

    def measure_hashes(self, targets: list[Target]) -> None:
        """Single-hash times of every hasher in play, one process per interpreter."""
        if not {"W2", "W4"} & set(self.workloads):
            return
        by_python: dict[Path, set[str]] = {}
        for target in targets:
            if target.hasher:
                by_python.setdefault(target.python, set()).add(target.hasher)
        if by_python and not self.p.hash_per_target:
            print("\n== measuring single-hash times on the server CPU")
        for python, algos in by_python.items():
            joined = ",".join(sorted(algos))
            self.hash_times.update(self.micro(python, "hash", joined, str(self.p.hash_count)))

    # -- servers -------------------------------------------------------------------------

    @contextlib.contextmanager
    def serving(
        self,
        target: Target,
        cpu: int | None = SERVER_CPU,
        extra_env: dict[str, str] | None = None,
    ) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
        """Start ``target`` pinned to ``cpu`` (the server CPU; ``None``: unpinned),
        with ``extra_env`` on top of its own; stop it (whole group) afterwards."""
        workdir = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=self.work))
        port = free_port()
        log = workdir / "server.log"
        proc = self.procs.spawn(
            target.command(port, workdir),
            cpu=cpu,
            env=clean_env({**target.env(workdir), **(extra_env or {})}),
            # `bastion serve` reads a .env of its current directory: give it its
            # empty work directory, so nothing of the checkout leaks in.
            cwd=workdir if target.in_work_dir else ROOT,
            log=log,
        )
        try:
            try:
                wait_for_port(port, proc, self.p.start_timeout)
            except RuntimeError as exc:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{exc}\n{tail}") from None
            yield port, proc
        finally:
            self.procs.stop(proc, timeout=self.p.stop_grace)

    def run_target(self, target: Target) -> None:
        """Set ``target`` up and run the HTTP workloads on it."""
        info: dict[str, Any] = {"title": target.title, "notes": target.notes}
        self.targets[target.name] = info
        print(f"\n== {target.name}: {target.title}")
        for note in target.notes:
            print(f"   note: {note}")
        info["load_average_before"] = os.getloadavg()[0]
        t_hash = None
        if self.p.hash_per_target:
            self.measure_hashes([target])
        if target.hasher in self.hash_times:
            measured = self.hash_times[target.hasher]
            # The best of several runs: the physical limit is what the CPU can do
            # undisturbed, and the shared machine only ever adds time.
            t_hash = measured["min_s"]
            info["hash"] = measured
            print(
                f"   single-hash time ({target.hasher}, CPU {SERVER_CPU}): {t_hash * 1000:.1f} ms"
            )
        with self.serving(target) as (port, proc):
            headers = self.setup(target, port, info, w2_users="W2" in self.workloads)
            info["rss_mib_after_setup"] = memory_kib(proc.pid).get("VmRSS", 0) / 1024
            for workload in ("W1", "W2", "W4", "W3"):  # the flood last: it leaves a backlog
                if workload not in self.workloads:
                    continue
                waited = wait_quiet(proc.pid, self.p.quiet_timeout)
                try:
                    result = getattr(self, f"w{workload[1]}")(target, port, proc, headers, t_hash)
                except Exception as exc:
                    traceback.print_exc()
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                    self.failures.append(f"{workload} on {target.name}: {exc}")
                if result is not None:
                    result["quiet_wait_s"] = round(waited, 2)
                    result["server_peak_rss_mib"] = memory_kib(proc.pid).get("VmHWM", 0) / 1024
                    self.record(workload, target.name, result)
                    print(f"   {workload}: {report.one_line(workload, result)}")
        if "W9" in self.workloads and target.forwarded_env is not None:
            try:
                result = self.w9(target)
            except Exception as exc:
                traceback.print_exc()
                result = {"error": f"{type(exc).__name__}: {exc}"}
                self.failures.append(f"W9 on {target.name}: {exc}")
            self.record("W9", target.name, result)
            print(f"   W9: {report.one_line('W9', result)}")
        info["load_average_after"] = os.getloadavg()[0]

    def setup(
        self,
        target: Target,
        port: int,
        info: dict[str, Any],
        *,
        w2_users: bool = False,
        user: str = SETUP_USER,
    ) -> dict[str, str]:
        """Register and log in ``user`` (and W2's users when ``w2_users``); check
        ``GET /protected``; return auth headers."""
        headers: dict[str, str] = {}
        if target.register is not None and target.login is not None:
            users = [user]
            if w2_users:
                users += [W2_USER.replace("{c}", str(c)) for c in range(self.p.w2_concurrency)]
            for user in users:
                status, body = self.call(port, target.register(user))
                if status >= 300:
                    raise RuntimeError(f"registration of {user} failed: {status} {body}")
            status, body = self.call(port, target.login(user))
            if status != 200 or not isinstance(body, dict) or "access_token" not in body:
                raise RuntimeError(f"login failed: {status} {body}")
            headers = {"Authorization": f"Bearer {body['access_token']}"}
        status, body = self.call(port, RequestSpec("GET", "/protected", headers=headers))
        info["protected_check"] = {"status": status, "body": body}
        if status != 200 or "Hello user" not in json.dumps(body):
            raise RuntimeError(f"GET /protected answered {status} {body}")
        return headers

    # -- workloads -----------------------------------------------------------------------

    def w1(
        self, target: Target, port: int, proc: Any, headers: dict[str, str], _t: float | None
    ) -> dict[str, Any]:
        """Authenticated GET /protected at full speed."""
        return self.drive_protected(
            port, headers, self.p.w1_seconds, self.p.w1_warmup, self.p.w1_connections, CLIENT_CPU
        )

    def drive_protected(
        self,
        port: int,
        headers: dict[str, str],
        seconds: int,
        warmup: int,
        connections: int,
        cpu: int | None,
    ) -> dict[str, Any]:
        """``GET /protected`` with wrk (or bench.loadgen) from ``cpu`` (``None``: unpinned)."""
        url = f"http://127.0.0.1:{port}/protected"
        if self.wrk is None:
            cfg = {
                "port": port,
                "mode": "closed",
                "concurrency": connections,
                "duration": seconds,
                "max_requests": self.p.max_requests,
                "timeout": self.p.request_timeout,
                "request": {"method": "GET", "path": "/protected", "headers": headers},
            }
            if warmup:
                self.collect(self.loadgen({**cfg, "duration": warmup}, cpu), 120)
            out = self.collect(self.loadgen(cfg, cpu), seconds + 60)
            lat = out["latency_ms"]
            non2xx = out["completed"] - out["ok"]
            return {
                "tool": "bench.loadgen (no wrk: Python client, figures are client-bound)",
                "connections": connections,
                "requests": out["completed"],
                "rps": out["rps"],
                "p50_ms": lat.get("p50"),
                "p90_ms": lat.get("p90"),
                "p99_ms": lat.get("p99"),
                "non_2xx": non2xx,
                "errors": sum(out["errors"].values()),
            }
        auth = [f"{k}: {v}" for k, v in headers.items()]
        cmd = [self.wrk, "-t1", f"-c{connections}", "--latency"]
        cmd += ["--timeout", f"{int(self.p.request_timeout)}s"]
        for header in auth:
            cmd += ["-H", header]
        if warmup:
            self.collect_text([*cmd, f"-d{warmup}s", url], warmup + 60, cpu)
        text = self.collect_text([*cmd, f"-d{seconds}s", url], seconds + 60, cpu)
        return {"tool": "wrk", "connections": connections, **parse_wrk(text)}

    def collect_text(self, cmd: list[str], timeout: float, cpu: int | None = CLIENT_CPU) -> str:
        """Run a command on the client CPU (``None``: unpinned) and return its stdout."""
        proc = self.procs.spawn(
            cmd, cpu=cpu, env=clean_env(), cwd=ROOT, log=self.work / "wrk.log", capture=True
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            self.procs.stop(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {self._tail('wrk.log')}")
        return out.decode(errors="replace")

    def _throughput(
        self, spec: RequestSpec, port: int, seconds: float, concurrency: int, t_hash: float | None
    ) -> dict[str, Any]:
        cfg = {
            "port": port,
            "mode": "closed",
            "concurrency": concurrency,
            "duration": seconds,
            "max_requests": self.p.max_requests,
            "timeout": self.p.request_timeout,
            "first_n": 1000,
            "request": dataclasses.asdict(spec),
        }
        out = self.collect(self.loadgen(cfg), seconds + self.p.request_timeout + 30)
        result = {
            "concurrency": concurrency,
            "per_s": out["ok_rps"],
            "ok": out["ok"],
            "status": out["status"],
            "errors": out["errors"],
            "p50_ms": out["ok_latency_ms"].get("p50"),
            "p99_ms": out["ok_latency_ms"].get("p99"),
        }
        if t_hash:
            limit = self.server_cores / t_hash
            result.update(
                t_hash_ms=t_hash * 1000,
                server_cores=self.server_cores,
                physical_limit_per_s=limit,
                fraction_of_limit=out["ok_rps"] / limit,
            )
        return result

    def w2(
        self, target: Target, port: int, proc: Any, headers: dict[str, str], t: float | None
    ) -> dict[str, Any] | None:
        """Logins/s, closed loop, each connection logging in its own user."""
        if target.login is None:
            return None
        result = self._throughput(
            target.login(W2_USER), port, self.p.w2_seconds, self.p.w2_concurrency, t
        )
        result["users"] = self.p.w2_concurrency
        return result

    def w4(
        self, target: Target, port: int, proc: Any, headers: dict[str, str], t: float | None
    ) -> dict[str, Any] | None:
        """Registrations/s of distinct new users, closed loop."""
        if target.register is None:
            return None
        return self._throughput(
            target.register("reg{n}"), port, self.p.w4_seconds, self.p.w4_concurrency, t
        )

    def w3(
        self,
        target: Target,
        port: int,
        proc: subprocess.Popen[bytes],
        headers: dict[str, str],
        _t: float | None,
    ) -> dict[str, Any] | None:
        """/health latency sampled open-loop, idle and then under a login flood, once
        per kind of flooding client (``W3_KINDS``); the idle sample is shared."""
        if target.login is None:
            return None
        sample = {
            "port": port,
            "mode": "open",
            "rate": self.p.w3_sample_rate,
            "max_outstanding": 200,
            "timeout": self.p.w3_flood_seconds + 5,
            "request": {"method": "GET", "path": "/health"},
        }
        idle = self.collect(
            self.loadgen({**sample, "duration": self.p.w3_idle_seconds}),
            self.p.w3_idle_seconds + 60,
        )
        idle_p99 = idle["latency_ms"].get("p99")
        kinds: dict[str, Any] = {}
        for i, kind in enumerate(W3_KINDS):
            if i:
                # The previous flood may leave a backlog: let it drain first.
                kinds[kind] = {"quiet_wait_s": round(wait_quiet(proc.pid, self.p.quiet_timeout), 2)}
            else:
                kinds[kind] = {}
            kinds[kind].update(self._w3_flood(target, port, proc, sample, kind, idle_p99))
        return {
            "sample_rate_per_s": self.p.w3_sample_rate,
            "flood_concurrency": self.p.w3_flood_concurrency,
            "retry_after_cap_s": W3_RETRY_AFTER_CAP,
            "idle_p50_ms": idle["latency_ms"].get("p50"),
            "idle_p99_ms": idle_p99,
            "kinds": kinds,
        }

    def _w3_flood(
        self,
        target: Target,
        port: int,
        proc: subprocess.Popen[bytes],
        sample: dict[str, Any],
        kind: str,
        idle_p99: float | None,
    ) -> dict[str, Any]:
        """One login flood of ``kind`` with /health sampled during it."""
        assert target.login is not None
        rss_before = memory_kib(proc.pid).get("VmRSS", 0) / 1024
        delay = min(0.5, self.p.w3_flood_seconds / 4)
        flood_cfg: dict[str, Any] = {
            "port": port,
            "mode": "closed",
            "concurrency": self.p.w3_flood_concurrency,
            "duration": self.p.w3_flood_seconds,
            "max_requests": self.p.max_requests,
            "timeout": self.p.w3_flood_seconds + 5,
            "request": dataclasses.asdict(target.login(SETUP_USER)),
        }
        if kind == "honour-retry-after":
            flood_cfg["honour_retry_after"] = W3_RETRY_AFTER_CAP
        # The flood shares the client CPU with the /health sampler; niced, it
        # cannot delay the sampler's own reads, so the sampler measures the
        # server's latency and not the load generator's.
        flood = self.loadgen(flood_cfg, niceness=FLOOD_NICENESS)
        sampler = self.loadgen(
            {**sample, "duration": self.p.w3_flood_seconds - delay, "start_delay": delay}
        )
        try:
            during = self.collect(sampler, self.p.w3_flood_seconds + 60)
        finally:
            flooded = self.collect(flood, self.p.w3_flood_seconds + 60)
        mem = memory_kib(proc.pid)
        flood_p99 = during["latency_ms"].get("p99")
        return {
            "flood_p50_ms": during["latency_ms"].get("p50"),
            "flood_p99_ms": flood_p99,
            "flood_max_ms": during["latency_ms"].get("max"),
            "p99_ratio": flood_p99 / idle_p99 if idle_p99 and flood_p99 else None,
            "health_samples": during["completed"],
            "health_unanswered": during["started"] - during["ok"],
            "health_not_sent": during["errors"].get("skipped_outstanding", 0),
            "health_status": during["status"],
            "health_errors": {
                k: v for k, v in during["errors"].items() if k != "skipped_outstanding"
            },
            "flood_requests": flooded["completed"],
            "flood_logins_ok": flooded["ok"],
            "flood_status": flooded["status"],
            "flood_unfinished": flooded["unfinished"],
            "flood_retry_after_waits": flooded["retry_after_waits"],
            "flood_retry_after_slept_s": flooded["retry_after_slept_s"],
            "rss_before_flood_mib": rss_before,
            "rss_after_flood_mib": mem.get("VmRSS", 0) / 1024,
        }

    def w9(self, target: Target) -> dict[str, Any]:
        """Server RSS idle (fresh instance, after setup) and after ``w9_clients``
        authenticated ``GET /protected`` requests, each from a distinct client.

        The server believes ``X-Forwarded-For`` from 127.0.0.1 (the target's
        ``forwarded_env``) and every request carries a different address
        (loadgen's ``{ip}``), so the server sees that many distinct clients:
        per-client state (rate limiter buckets, ...) is what grows.
        """
        assert target.forwarded_env is not None
        redis_url = target.env(self.work).get("BASTION_REDIS_URL")
        with self.serving(target, extra_env=target.forwarded_env) as (port, proc):
            # Its own user: bastion-pg's database outlives the first instance.
            headers = self.setup(target, port, {}, user=W9_USER)
            wait_quiet(proc.pid, self.p.quiet_timeout)
            idle = memory_kib(proc.pid)
            redis_idle = redis_used_mib(redis_url) if redis_url else None
            cfg = {
                "port": port,
                "mode": "closed",
                "concurrency": self.p.w9_connections,
                "duration": self.p.w9_seconds,
                "max_requests": self.p.w9_clients,
                "timeout": self.p.request_timeout,
                "request": {
                    "method": "GET",
                    "path": "/protected",
                    "headers": {**headers, "X-Forwarded-For": "{ip}"},
                },
            }
            out = self.collect(self.loadgen(cfg), self.p.w9_seconds + 60)
            after = memory_kib(proc.pid)
            redis_after = redis_used_mib(redis_url) if redis_url else None
        rss_idle = idle.get("VmRSS", 0) / 1024
        rss_after = after.get("VmRSS", 0) / 1024
        return {
            "clients_target": self.p.w9_clients,
            "clients": out["completed"],
            "ok": out["ok"],
            "status": out["status"],
            "errors": out["errors"],
            "seconds": round(out["elapsed_s"], 1),
            "rps": out["rps"],
            "forwarded_env": target.forwarded_env,
            "rss_idle_mib": rss_idle,
            "rss_after_mib": rss_after,
            "rss_growth_mib": rss_after - rss_idle,
            "hwm_after_mib": after.get("VmHWM", 0) / 1024,
            "growth_kib_per_client": (
                (after.get("VmRSS", 0) - idle.get("VmRSS", 0)) / out["completed"]
                if out["completed"]
                else None
            ),
            # bastion-pg keeps its limiter state in Redis, not in the server.
            "redis_used_idle_mib": redis_idle,
            "redis_used_after_mib": redis_after,
        }

    def w5(self) -> None:
        """Limiter microbenchmark, each implementation in a fresh process."""
        for impl in ("blog", "bastion"):
            out = self.micro(
                Path(sys.executable),
                "limiter",
                impl,
                str(self.p.w5_clients),
                str(self.p.w5_hot_checks),
            )
            self.record("W5", "blogpost" if impl == "blog" else "bastion", out)
            if "skipped" in out:
                print(f"   W5 {impl}: {out['skipped']}")
            else:
                print(f"   W5 {impl}: {report.one_line('W5', out)}")
        self.w5_redis()

    def w5_redis(self) -> None:
        """Bastion's Redis limiter against a throwaway redis-server (column bastion-pg).

        redis-server is not pinned (like bastion-pg's); the measuring process is,
        to the server CPU.
        """
        if shutil.which("redis-server") is None:
            why = "redis-server is not installed (scripts/test installs it): no Redis figure"
            print(f"   W5 redis: {why}")
            self.record(
                "W5",
                "bastion-pg",
                {
                    "impl": "redis",
                    "skipped": why,
                    "new_client_check_us": None,
                    "hot_check_us": None,
                },
            )
            return
        from tests.servers import redis_server

        with redis_server() as redis:
            out = self.micro(
                Path(sys.executable), "limiter-redis", redis.url, str(self.p.w5_redis_calls)
            )
        out["redis"] = "redis-server on loopback, not pinned"
        self.record("W5", "bastion-pg", out)
        print(f"   W5 redis: {report.one_line('W5', out)}")

    def w6(self) -> None:
        """Revocation-check microbenchmark."""
        out = self.micro(Path(sys.executable), "revocation", str(self.p.w6_calls))
        self.record("W6", "bastion", out)
        print(f"   W6: {report.one_line('W6', out)}")

    def w7(self) -> None:
        """Observability overhead, in process: access log + metrics on vs off."""
        out = self.micro(
            Path(sys.executable), "observability", str(self.p.w7_requests), str(self.p.w7_rounds)
        )
        # The same comparison over HTTP: two servers, one run, W1's load.
        # Both sides run through bench.serve_bastion: only the observability differs.
        sides = (("on", True), ("off", False))
        for name, target in ((n, bastion_in_process(observability=o)) for n, o in sides):
            info: dict[str, Any] = {}
            with self.serving(target) as (port, _proc):
                headers = self.setup(target, port, info)
                http = self.drive_protected(
                    port,
                    headers,
                    self.p.w1_seconds,
                    self.p.w1_warmup,
                    self.p.w1_connections,
                    CLIENT_CPU,
                )
            out[f"http_{name}_rps"] = http.get("rps")
        on, off = out.get("http_on_rps"), out.get("http_off_rps")
        out["http_overhead_fraction"] = 1 - on / off if on and off else None
        self.record("W7", "bastion", out)
        print(f"   W7: {report.one_line('W7', out)}")
        if out["http_overhead_fraction"] is not None:
            print(
                f"   W7 over HTTP (W1's load, server on one CPU): on {on:,.0f} req/s, "
                f"off {off:,.0f} req/s -> overhead {out['http_overhead_fraction']:.1%}"
            )

    def w8(self) -> None:
        """``bastion serve --workers 1`` vs ``--workers 2`` on PostgreSQL + Redis, by wrk.

        Nothing is pinned: the point is what a second worker buys on this
        machine, so the workers may use both CPUs, which they share with
        PostgreSQL, Redis and wrk. Each worker count gets its own database
        (migrated with ``bastion migrate``), Redis database and data directory.
        """
        import asyncpg
        from tests.servers import postgres_server, redis_server

        print(f"   W8: {W8_PLACEMENT}")
        runs: dict[int, dict[str, Any]] = {}
        with postgres_server() as pg, redis_server() as redis:

            async def create(names: list[str]) -> None:
                conn = await asyncpg.connect(pg.admin_dsn)
                try:
                    for name in names:
                        await conn.execute(f'CREATE DATABASE "{name}"')
                finally:
                    await conn.close()

            asyncio.run(create([f"w8_{n}" for n in (1, 2)]))
            for workers in (1, 2):
                redis_url = f"redis://127.0.0.1:{redis.port}/{workers}"
                target = bastion_serve(pg.url(f"w8_{workers}"), redis_url, workers)
                work = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=self.work))
                migrate = subprocess.run(
                    [*bastion_cli(), "migrate"],
                    cwd=work,  # as `serving`: no .env of the checkout
                    env=clean_env(target.env(work)),
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                if migrate.returncode != 0:
                    raise RuntimeError(f"bastion migrate failed: {migrate.stderr[-2000:]}")
                info: dict[str, Any] = {}
                with self.serving(target, cpu=None) as (port, proc):
                    headers = self.setup(target, port, info)
                    out = self.drive_protected(
                        port,
                        headers,
                        self.p.w8_seconds,
                        self.p.w8_warmup,
                        self.p.w8_connections,
                        None,
                    )
                    out["server_peak_rss_mib"] = memory_kib(proc.pid).get("VmHWM", 0) / 1024
                runs[workers] = out
                print(f"   W8 --workers {workers}: {report.one_line('W1', out)}")
        one, two = runs[1], runs[2]
        result = {
            "placement": W8_PLACEMENT,
            "tool": one.get("tool"),
            "connections": self.p.w8_connections,
            "seconds": self.p.w8_seconds,
            "workers_1_rps": one.get("rps"),
            "workers_1_p50_ms": one.get("p50_ms"),
            "workers_1_p99_ms": one.get("p99_ms"),
            "workers_2_rps": two.get("rps"),
            "workers_2_p50_ms": two.get("p50_ms"),
            "workers_2_p99_ms": two.get("p99_ms"),
            "speedup": two["rps"] / one["rps"] if one.get("rps") else None,
            "non_2xx": (one.get("non_2xx") or 0) + (two.get("non_2xx") or 0),
            "errors": (one.get("errors") or 0) + (two.get("errors") or 0),
            "runs": {str(k): v for k, v in runs.items()},
        }
        p50 = two.get("p50_ms")
        if result["speedup"] is not None and result["speedup"] < 1 and p50 and 38 <= p50 <= 50:
            # Seen with uvicorn 0.54: with --workers > 1 it binds the socket itself
            # (proto 0), so asyncio does not set TCP_NODELAY on accepted connections.
            result["hint"] = (
                "--workers 2 p50 near 40 ms: looks like Nagle + delayed ACK "
                "(accepted sockets without TCP_NODELAY)"
            )
            print(f"   W8 hint: {result['hint']}")
        self.record("W8", "bastion-pg", result)
        print(f"   W8: {report.one_line('W8', result)}")


def redis_used_mib(url: str) -> float:
    """Redis ``used_memory`` (INFO memory) in MiB."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return float(client.info("memory")["used_memory"]) / (1 << 20)
    finally:
        client.close()


def machine_facts(harness: Harness, mode: str) -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    wrk_version = ""
    if harness.wrk:
        wrk_version = (
            subprocess.run([harness.wrk, "--version"], capture_output=True, text=True, check=False)
            .stdout.split("\n")[0]
            .split(" [")[0][:60]
        )
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "git_commit": commit + ("+uncommitted changes" if dirty else ""),
        "pinning": (
            f"servers on CPU {SERVER_CPU}, load generators on CPU {CLIENT_CPU} (taskset)"
            if harness.pinned
            else "not pinned (taskset or a second CPU missing)"
        ),
        "w1_tool": wrk_version or "bench.loadgen (wrk not installed or --no-wrk)",
        "params": harness.p.__dict__,
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="about a second per workload (CI)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads, e.g. W1,W3")
    parser.add_argument("--targets", default=",".join(TARGET_NAMES), help="targets to run")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="output directory"
    )
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the work directory (server logs)"
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="drive W1 with bench.loadgen even if wrk exists"
    )
    parser.add_argument(
        "--build-peers",
        choices=("auto", "yes", "no"),
        default="auto",
        help="build .bench-peers-venv for fastapi-users (auto: in full runs only)",
    )
    args = parser.parse_args(argv)
    args.only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for name in args.only:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name}; choose from {', '.join(WORKLOADS)}")
    for name in args.targets:
        if name not in TARGET_NAMES:
            parser.error(f"unknown target {name}; choose from {', '.join(TARGET_NAMES)}")
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    """Run the harness; exit status 1 if any workload failed (skips are not failures)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    params = SMOKE if args.smoke else FULL
    mode = "smoke" if args.smoke else "full"
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    harness = Harness(params, args.only, work, use_wrk=not args.no_wrk)
    facts = machine_facts(harness, mode)
    print(f"Bastion benchmark ({mode}) on {facts['nproc']} x {facts['cpu_model']}")
    print(f"{facts['pinning']}; W1 with {facts['w1_tool']}; work dir {work}")
    skipped: dict[str, str] = {}
    http = [w for w in args.only if w in ("W1", "W2", "W3", "W4", "W9")]
    try:
        with contextlib.ExitStack() as stack:
            targets: list[Target] = []
            for name in args.targets if http else []:
                if name == "bare":
                    targets.append(bare())
                elif name == "bare-h11":
                    targets.append(bare_h11())
                elif name == "blogpost":
                    targets.append(blogpost())
                elif name == "bastion":
                    targets.append(bastion())
                elif name == "bastion-pg":
                    try:
                        db_url, redis_url = stack.enter_context(postgres_and_redis())
                    except Exception as exc:
                        skipped[name] = f"PostgreSQL/Redis could not start: {exc}"
                        harness.failures.append(f"bastion-pg: {exc}")
                        continue
                    targets.append(bastion_pg(db_url, redis_url))
                elif name == "fastapi-users":
                    build = args.build_peers == "yes" or (
                        args.build_peers == "auto" and not args.smoke
                    )
                    python, why = ensure_peers_venv(build=build, log=work / "peers-venv.log")
                    if python is None:
                        skipped[name] = why
                        print(f"\n== fastapi-users skipped: {why}")
                        continue
                    targets.append(fastapi_users(python))
            if not params.hash_per_target:
                harness.measure_hashes(targets)
            for target in targets:
                try:
                    harness.run_target(target)
                except Exception as exc:
                    traceback.print_exc()
                    harness.targets.setdefault(target.name, {})["error"] = str(exc)
                    harness.failures.append(f"{target.name}: {exc}")
            if "W5" in args.only:
                print("\n== W5: limiter microbenchmark")
                try:
                    harness.w5()
                except Exception as exc:
                    traceback.print_exc()
                    harness.failures.append(f"W5: {exc}")
            if "W6" in args.only:
                print("\n== W6: revocation check microbenchmark")
                try:
                    harness.w6()
                except Exception as exc:
                    traceback.print_exc()
                    harness.failures.append(f"W6: {exc}")
            if "W7" in args.only:
                print("\n== W7: observability overhead (in process)")
                try:
                    harness.w7()
                except Exception as exc:
                    traceback.print_exc()
                    harness.failures.append(f"W7: {exc}")
            if "W8" in args.only:
                print("\n== W8: bastion serve --workers 1 vs 2 (PostgreSQL + Redis)")
                try:
                    harness.w8()
                except Exception as exc:
                    traceback.print_exc()
                    harness.record("W8", "bastion-pg", {"error": f"{type(exc).__name__}: {exc}"})
                    harness.failures.append(f"W8: {exc}")
    finally:
        harness.procs.close()
    facts["load_average_at_end"] = os.getloadavg()
    facts["wall_seconds"] = round(time.monotonic() - started, 1)
    results = {
        "machine": facts,
        "targets": harness.targets,
        "skipped_targets": skipped,
        "workloads": harness.results,
        "failures": harness.failures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    _write(args.out / "results.md", report.markdown(results))
    chart = report.chart(results, args.out / "results.png")
    print(
        f"\nwrote {args.out / 'results.json'}, {args.out / 'results.md'}"
        + (f", {chart}" if chart else " (no chart: matplotlib not installed)")
    )
    print(report.summary_table(results))
    if args.keep_work or harness.failures:
        print(f"work directory (server logs) kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if harness.failures:
        print("\nFAILURES:\n  " + "\n  ".join(harness.failures))
        return 1
    return 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
