"""Memory of one Bastion instance under a few parallel oversized chunked bodies.

Issue 17 #1: a 60 MB chunked body sent with ``Content-Length: 0`` used to be
parsed whole, taking an instance from 117 to 305 MB. This starts Bastion as
``bench.run`` does (``bench.serve_bastion``, SQLite), reads its RSS, then
sends ``--parallel`` bodies of ``--megabytes`` each at once, in three framings
(chunked alone; chunked then ``Content-Length: 0``; the reverse), each to
``POST /users`` and ``POST /auth/token``, and reads the RSS and the peak RSS
(``VmHWM``) again. The figure holds when the peak stays near the idle RSS.

Usage: ``python -m bench.body_memory [--parallel 4] [--megabytes 60] [--out FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import ProcessGroup, clean_env, free_port, memory_kib, wait_for_port
from bench.targets import RAISED_LIMIT

ROOT = Path(__file__).resolve().parent.parent
FRAMINGS = {
    "chunked": b"Transfer-Encoding: chunked\r\n",
    "chunked+cl0": b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    "cl0+chunked": b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
}
TARGETS = {
    "/users": b"application/json",
    "/auth/token": b"application/x-www-form-urlencoded",
}
CHUNK = 64 * 1024


async def send_oversized(port: int, path: str, framing: bytes, megabytes: int) -> str:
    """Send one oversized chunked body; the status the server answered (or why none)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\n".encode()
        + b"Content-Type: "
        + TARGETS[path]
        + b"\r\n"
        + framing
        + b"\r\n"
    )
    chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
    # Read while writing: the server answers early and closes, and a reset
    # after our next write would discard an answer not yet read.
    answer = asyncio.ensure_future(reader.readline())
    try:
        writer.write(head)
        sent = 0
        while sent < megabytes * 1024 * 1024 and not answer.done():
            writer.write(chunk)
            await writer.drain()
            sent += CHUNK
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    except (ConnectionError, OSError):
        pass  # the server answered early and closed: the point of the limit
    try:
        line = await asyncio.wait_for(answer, 10)
        status = line.decode("latin-1").split(" ")[1] if line else "closed"
    except (TimeoutError, ConnectionError, OSError, IndexError):
        status = "closed"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return status


async def flood(port: int, parallel: int, megabytes: int) -> dict[str, list[str]]:
    """Every framing to every target, ``parallel`` bodies at once each."""
    statuses: dict[str, list[str]] = {}
    for name, framing in FRAMINGS.items():
        for path in TARGETS:
            sends = [send_oversized(port, path, framing, megabytes) for _ in range(parallel)]
            statuses[f"{name} {path}"] = list(await asyncio.gather(*sends))
    return statuses


def reset_peak(pid: int) -> None:
    """Reset ``VmHWM`` to the current RSS (``clear_refs`` 5), so the peak read
    later is the flood's, not start-up's (migrations, imports)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(parallel: int, megabytes: int) -> dict[str, Any]:
    """Start an instance, flood it, return the memory figures and statuses."""
    group = ProcessGroup()
    with tempfile.TemporaryDirectory(prefix="bastion-bench-body-") as work:
        port = free_port()
        env = clean_env(
            {
                "BASTION_DATA_DIR": str(Path(work) / "data"),
                # Raised, as in bench.run, so the limiter does not answer first.
                "BASTION_RATE_LIMIT": RAISED_LIMIT,
                "BASTION_LOGIN_RATE_LIMIT": RAISED_LIMIT,
                "BASTION_REGISTER_RATE_LIMIT": RAISED_LIMIT,
            }
        )
        proc = group.spawn(
            [sys.executable, "-m", "bench.serve_bastion", str(port)],
            cpu=None,
            env=env,
            cwd=ROOT,
            log=Path(work) / "server.log",
        )
        try:
            wait_for_port(port, proc, 60)
            time.sleep(1.0)
            reset_peak(proc.pid)
            idle = memory_kib(proc.pid)
            started = time.monotonic()
            statuses = asyncio.run(flood(port, parallel, megabytes))
            seconds = time.monotonic() - started
            after = memory_kib(proc.pid)
        finally:
            group.close()
    return {
        "parallel": parallel,
        "megabytes_each": megabytes,
        "idle_rss_mib": round(idle.get("VmRSS", 0) / 1024, 1),
        "after_rss_mib": round(after.get("VmRSS", 0) / 1024, 1),
        "peak_rss_mib": round(after.get("VmHWM", 0) / 1024, 1),
        "growth_mib": round((after.get("VmHWM", 0) - idle.get("VmRSS", 0)) / 1024, 1),
        "seconds": round(seconds, 2),
        "statuses": statuses,
    }


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--megabytes", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    figures = measure(args.parallel, args.megabytes)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
