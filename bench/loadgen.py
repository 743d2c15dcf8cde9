"""A small HTTP/1.1 load generator on asyncio streams (keep-alive, no dependencies).

Run as a separate process pinned to the client CPU::

    python -m bench.loadgen '{"port": 8000, "mode": "closed", "concurrency": 8, ...}'

and it prints one JSON object with counts, statuses and latency percentiles.
Two modes:

- ``closed``: ``concurrency`` connections each send the next request as soon
  as the previous answer arrives (throughput: W1 fallback, W2, W3's flood, W4).
- ``open``: a request is launched every ``1/rate`` seconds whatever happened
  to the earlier ones, on a pool of connections, and its latency is counted
  from the moment it was due. A stalled server therefore shows up as many slow
  samples, not as one (no coordinated omission): W3's ``/health`` sampler.

Every run is bounded by ``duration`` and ``max_requests``; requests still
unanswered at the end are cancelled and reported as ``unfinished``.

Request templates (:class:`RequestSpec`) may hold ``{n}`` (a counter unique per
request), ``{c}`` (the closed-loop connection's index: W2 logs each connection
in as its own user) and, in header values, ``{ip}`` (a distinct IPv4 address
``10.x.y.z`` per request, from ``{n}``: W9's distinct clients).

A closed-loop run with ``honour_retry_after`` (seconds, the cap) is a polite
client: after a 429 or 503 carrying ``Retry-After: N`` (delta-seconds) it sleeps
``min(N, cap)`` seconds, never past the run's deadline, before its next request
(W3's second kind of flooding client); without it, a client retries at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

#: Seconds a closed-loop run waits past its duration for answers already on
#: their way; requests still open then are cancelled and counted ``unfinished``
#: (as wrk does: the run ends at its deadline).
CLOSED_GRACE_SECONDS = 0.25


@dataclass(frozen=True)
class RequestSpec:
    """One request template (placeholders: ``{n}``, ``{c}``, ``{ip}``; module docstring).

    Attributes:
        method: HTTP method.
        path: Request target.
        headers: Extra headers.
        body: Body text (may hold ``{n}`` and ``{c}``).
        content_type: ``Content-Type`` of the body.
    """

    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    content_type: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestSpec:
        """Inverse of ``dataclasses.asdict``."""
        return cls(
            method=data.get("method", "GET"),
            path=data.get("path", "/"),
            headers=dict(data.get("headers", {})),
            body=data.get("body", ""),
            content_type=data.get("content_type"),
        )

    def render(self, host: str, port: int, n: int, c: int = 0) -> bytes:
        """The raw request bytes for counter value ``n`` on connection ``c``."""
        path = _fill(self.path, n, c)
        body = _fill(self.body, n, c).encode()
        lines = [f"{self.method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{name}: {_fill(value, n, c)}" for name, value in self.headers.items()]
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}")
        if body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def distinct_ipv4(n: int) -> str:
    """A distinct address in 10.0.0.0/8 for every ``n`` below 2**24."""
    n %= 1 << 24
    return f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


def _fill(text: str, n: int, c: int) -> str:
    """``text`` with its ``{n}``, ``{c}`` and ``{ip}`` placeholders filled in."""
    if "{" not in text:
        return text
    return text.replace("{n}", str(n)).replace("{c}", str(c)).replace("{ip}", distinct_ipv4(n))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as delta-seconds (RFC 9110 §10.2.3); ``None`` if absent or a date."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


class Connection:
    """One keep-alive connection to 127.0.0.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.open = True
        self.headers: dict[str, str] = {}
        """Headers of the last response (names lower-cased)."""

    @classmethod
    async def connect(cls, host: str, port: int) -> Connection:
        """Open a connection."""
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def roundtrip(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw`` and read one response; returns its status and body."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        self.headers = headers
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            body = await self.reader.read()
            self.open = False
        if headers.get("connection", "").lower() == "close":
            self.open = False
        return status, body

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        """Close the socket."""
        self.open = False
        self.writer.close()


async def request_once(
    port: int, spec: RequestSpec, *, host: str = "127.0.0.1", limit: float = 30.0
) -> tuple[int, bytes]:
    """One request on a fresh connection, at most ``limit`` seconds (setup steps)."""
    async with asyncio.timeout(limit):
        conn = await Connection.connect(host, port)
        try:
            return await conn.roundtrip(spec.render(host, port, 0))
        finally:
            conn.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of ``samples`` (seconds) in milliseconds, nearest rank."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return ordered[index] * 1000

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": ordered[-1] * 1000,
        "mean": sum(ordered) / len(ordered) * 1000,
    }


class Recorder:
    """Collects outcomes of one run."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.ok_latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.started = 0
        self.retry_after_waits = 0
        self.retry_after_slept = 0.0

    def status(self, status: int, latency: float) -> None:
        """Record an answer."""
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        self.latencies.append(latency)
        if 200 <= status < 300:
            self.ok_latencies.append(latency)

    def error(self, exc: BaseException) -> None:
        """Record a failed request."""
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    def summary(self, elapsed: float) -> dict[str, Any]:
        """The JSON-ready result."""
        done = len(self.latencies)
        ok = len(self.ok_latencies)
        return {
            "elapsed_s": elapsed,
            "started": self.started,
            "completed": done,
            "unfinished": self.started - done - sum(self.errors.values()),
            "ok": ok,
            "rps": done / elapsed if elapsed else 0.0,
            "ok_rps": ok / elapsed if elapsed else 0.0,
            "status": dict(sorted(self.statuses.items())),
            "errors": self.errors,
            "latency_ms": percentiles(self.latencies),
            "ok_latency_ms": percentiles(self.ok_latencies),
            "retry_after_waits": self.retry_after_waits,
            "retry_after_slept_s": round(self.retry_after_slept, 3),
        }


async def _closed(cfg: dict[str, Any], spec: RequestSpec, rec: Recorder) -> None:
    host, port = cfg.get("host", "127.0.0.1"), int(cfg["port"])
    deadline = time.monotonic() + float(cfg["duration"])
    budget = [int(cfg.get("max_requests", 1_000_000))]
    counter = [int(cfg.get("first_n", 0))]
    timeout = float(cfg.get("timeout", 30.0))
    polite = cfg.get("honour_retry_after")
    cap = float(polite) if polite else 0.0

    async def worker(c: int) -> None:
        conn: Connection | None = None
        try:
            while time.monotonic() < deadline and budget[0] > 0:
                budget[0] -= 1
                counter[0] += 1
                raw = spec.render(host, port, counter[0], c)
                rec.started += 1
                start = time.perf_counter()
                try:
                    if conn is None or not conn.open:
                        conn = await Connection.connect(host, port)
                    status, _ = await asyncio.wait_for(conn.roundtrip(raw), timeout)
                    rec.status(status, time.perf_counter() - start)
                    wait = retry_after_seconds(conn.headers.get("retry-after"))
                    if cap and status in (429, 503) and wait is not None:
                        # A polite client: wait as told (capped), never past the end.
                        pause = min(wait, cap, max(0.0, deadline - time.monotonic()))
                        rec.retry_after_waits += 1
                        rec.retry_after_slept += pause
                        await asyncio.sleep(pause)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    rec.error(exc)
                    if conn is not None:
                        conn.close()
                    conn = None
                    await asyncio.sleep(0.01)
        finally:
            if conn is not None:
                conn.close()

    workers = [worker(c) for c in range(int(cfg["concurrency"]))]
    await _bounded(workers, deadline + CLOSED_GRACE_SECONDS)


async def _open(cfg: dict[str, Any], spec: RequestSpec, rec: Recorder) -> None:
    host, port = cfg.get("host", "127.0.0.1"), int(cfg["port"])
    period = 1.0 / float(cfg["rate"])
    deadline = time.monotonic() + float(cfg["duration"])
    budget = int(cfg.get("max_requests", 100_000))
    max_outstanding = int(cfg.get("max_outstanding", 200))
    timeout = float(cfg.get("timeout", 30.0))
    idle: list[Connection] = []
    tasks: set[asyncio.Task[None]] = set()
    skipped = [0]

    async def one(due: float, n: int) -> None:
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = await Connection.connect(host, port)
            status, _ = await asyncio.wait_for(conn.roundtrip(spec.render(host, port, n)), timeout)
            rec.status(status, time.perf_counter() - due)
            if conn.open:
                idle.append(conn)
                conn = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            rec.error(exc)
        finally:
            if conn is not None:
                conn.close()

    due = time.perf_counter()
    n = 0
    while time.monotonic() < deadline and n < budget:
        now = time.perf_counter()
        if now < due:
            await asyncio.sleep(due - now)
        if len(tasks) >= max_outstanding:
            skipped[0] += 1  # the server holds too many of ours: count, do not pile on
        else:
            n += 1
            rec.started += 1
            task = asyncio.create_task(one(due, n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        due += period
    if tasks:
        # A sample is never dropped for being slow: wait (bounded) for its answer,
        # or a stalled server would look faster than it is.
        await _bounded(list(tasks), time.monotonic() + timeout)
    for conn in idle:
        conn.close()
    rec.errors.update({"skipped_outstanding": skipped[0]} if skipped[0] else {})


async def _bounded(coros: list[Any], deadline: float) -> None:
    """Run ``coros`` until they finish or ``deadline`` passes, then cancel the rest."""
    tasks = [c if isinstance(c, asyncio.Task) else asyncio.ensure_future(c) for c in coros]
    remaining = max(0.0, deadline - time.monotonic())
    _, pending = await asyncio.wait(tasks, timeout=remaining)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run the load described by ``cfg`` and return its summary."""
    spec = RequestSpec.from_dict(cfg["request"])
    rec = Recorder()
    await asyncio.sleep(float(cfg.get("start_delay", 0.0)))
    start = time.perf_counter()
    if cfg["mode"] == "open":
        await _open(cfg, spec, rec)
    else:
        await _closed(cfg, spec, rec)
    summary = rec.summary(time.perf_counter() - start)
    summary["mode"] = cfg["mode"]
    summary["concurrency"] = cfg.get("concurrency")
    summary["rate"] = cfg.get("rate")
    return summary


def main(argv: list[str]) -> int:
    """Entry point: one JSON argument in, one JSON line out."""
    cfg = json.loads(argv[0])
    print(json.dumps(asyncio.run(run(cfg))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
