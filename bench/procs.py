"""Child processes of the harness: pinned to a CPU, in their own process group, always reaped.

Every process the harness starts goes through :class:`ProcessGroup`, which
kills whole process groups (``start_new_session=True``) so that a server's own
children (uvicorn workers, PostgreSQL backends started by ``pg_ctl`` are not
ours: ``tests.servers`` stops those) die with it, and which is closed in a
``finally`` by ``bench.run`` even when a workload fails or the run is
interrupted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The server runs on this CPU, the load generators on the other one.
SERVER_CPU = 0
CLIENT_CPU = 1


def can_pin() -> bool:
    """Whether ``taskset`` exists and both CPUs we pin to are ours."""
    if shutil.which("taskset") is None:
        return False
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - not Linux
        return False
    return {SERVER_CPU, CLIENT_CPU} <= allowed


def pinned(cmd: Sequence[str], cpu: int | None) -> list[str]:
    """``cmd`` prefixed with ``taskset -c CPU`` when pinning is possible."""
    if cpu is None or not can_pin():
        return list(cmd)
    return ["taskset", "-c", str(cpu), *cmd]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any ``BASTION_*``/``BENCH_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "BENCH_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class ProcessGroup:
    """Starts processes in new sessions and terminates all of them on :meth:`close`."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        self,
        cmd: Sequence[str],
        *,
        cpu: int | None,
        env: Mapping[str, str],
        cwd: Path,
        log: Path | None = None,
        capture: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` pinned to ``cpu`` (when possible) in a new process group.

        Args:
            cmd: The command.
            cpu: CPU to pin to, or ``None``.
            env: Its environment.
            cwd: Its working directory.
            log: File for stderr (stdout goes to /dev/null unless ``capture``).
            capture: Pipe stdout (for load generators that print JSON).
        """
        stderr = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                pinned(cmd, cpu),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            if log is not None and not isinstance(stderr, int):
                stderr.close()
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        """SIGTERM the process group of ``proc``, SIGKILL it if it lingers."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Stragglers of the group (a child that outlived its parent).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc in self._procs:
            self._procs.remove(proc)

    def close(self) -> None:
        """Stop every process still running, newest first."""
        for proc in reversed(list(self._procs)):
            self.stop(proc, timeout=5.0)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once 127.0.0.1:``port`` accepts connections.

    Raises:
        RuntimeError: if ``proc`` exits first or ``timeout`` passes.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of ``pid`` in KiB, empty if unreadable."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields 14 and 15 of stat (utime, stime); index 11/12 after the ")".
    return (int(fields[11]) + int(fields[12])) / ticks


def wait_quiet(pid: int, timeout: float, threshold: float = 0.05) -> float:
    """Wait until ``pid`` uses under ``threshold`` of a CPU; return the seconds waited.

    A flood leaves work queued inside some servers (the blog post's unbounded
    executor queue); the next workload should not pay for it.
    """
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        before = _cpu_seconds(pid)
        time.sleep(0.25)
        after = _cpu_seconds(pid)
        if before is None or after is None or (after - before) / 0.25 < threshold:
            break
    return time.monotonic() - start
