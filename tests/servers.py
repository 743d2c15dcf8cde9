"""Real PostgreSQL and Redis servers for the test session, on loopback ports.

Started by the test run itself in a temporary directory and removed at the
end: nothing to install by hand beyond the server binaries.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (scripts/test installs it)")
    return candidates[-1]


def _as_postgres_user() -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    return []


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster."""

    port: int
    datadir: Path
    options: str = ""
    logfile: Path | None = None

    def start(self) -> None:
        """(Re)start the cluster with its loopback port and settings."""
        log = ["-l", str(self.logfile)] if self.logfile else []
        self.pg_ctl("-o", self.options, *log, "start")
        _wait_for_port(self.port)

    def stop(self) -> None:
        """Stop at once, as a crash would (fault tests)."""
        self.pg_ctl("-m", "immediate", "stop")

    @property
    def admin_dsn(self) -> str:
        """asyncpg DSN of the maintenance database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database``."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on this cluster (stop/start in fault tests)."""
        subprocess.run(
            [*_as_postgres_user(), _pg_bin("pg_ctl"), "-D", str(self.datadir), "-w", *args],
            check=True,
            capture_output=True,
        )


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """Start a PostgreSQL cluster on a free loopback port; remove it afterwards.

    Args:
        durable: Keep fsync and synchronous commit, for tests that crash the
            server and check that committed data survived.
    """
    base = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
    datadir = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    run_as = _as_postgres_user()
    subprocess.run(
        [
            *run_as,
            _pg_bin("initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
        "-c max_connections=200"
    )
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    server = PostgresServer(port, datadir, options, base / "log")
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class RedisServer:
    """A throwaway Redis server."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """Redis URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start redis-server on a free loopback port without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (scripts/test installs it)")
    workdir = tempfile.mkdtemp(prefix="bastion-redis-")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield RedisServer(port, process)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


# -- restartable Redis and nginx (tests/deploy) --------------------------------------


@dataclass
class RestartableRedis:
    """A throwaway Redis server that a test may stop and start again on its port."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Redis URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start redis-server on this object's port (no persistence)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/test installs it)")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)

    def stop(self) -> None:
        """Stop the server and wait until it is gone (an outage)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@contextlib.contextmanager
def restartable_redis_server() -> Iterator[RestartableRedis]:
    """A Redis server of the caller's own on a free loopback port; removed afterwards."""
    server = RestartableRedis(free_port(), Path(tempfile.mkdtemp(prefix="bastion-redis-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


def render_template(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``${NAME}`` of ``values`` replaced (as ``envsubst``
    with a list of names does: nginx's own ``$variables`` stay as they are).

    Raises:
        ValueError: when a ``${...}`` placeholder is left unfilled.
    """
    for name, value in values.items():
        template = template.replace("${" + name + "}", value)
    if "${" in template:
        raise ValueError("the template has a placeholder without a value")
    return template


@dataclass
class NginxServer:
    """nginx in the foreground, its pid, logs and temporary files in ``prefix``."""

    port: int
    prefix: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"


def _nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed (scripts/test installs it)")
    return found


@contextlib.contextmanager
def nginx_server(template: Path, upstreams: tuple[str, str]) -> Iterator[NginxServer]:
    """Run the nginx configuration ``template`` (deploy/nginx/bastion.conf) on a
    free loopback port in front of ``upstreams`` (``host:port`` each)."""
    prefix = Path(tempfile.mkdtemp(prefix="bastion-nginx-"))
    # nginx's workers drop root for "nobody": they must reach the prefix.
    prefix.chmod(0o755)
    (prefix / "logs").mkdir()
    (prefix / "temp").mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        render_template(
            template.read_text(),
            {"LISTEN": f"127.0.0.1:{port}", "UPSTREAM_1": upstreams[0], "UPSTREAM_2": upstreams[1]},
        )
    )
    binary = _nginx_binary()
    check = subprocess.run(
        [binary, "-t", "-q", "-p", f"{prefix}/", "-c", str(conf)],
        capture_output=True,
        check=False,
    )
    if check.returncode != 0:
        shutil.rmtree(prefix, ignore_errors=True)
        raise RuntimeError(f"nginx refuses the configuration: {check.stderr.decode()}")
    process = subprocess.Popen(
        [binary, "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield NginxServer(port, prefix, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(prefix, ignore_errors=True)
