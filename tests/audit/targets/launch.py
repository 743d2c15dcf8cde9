"""Start the four audit targets as real servers on 127.0.0.1 (tests and README run)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[3]
TARGETS = ("blogpost", "bare-pyjwt", "fastapi-users", "bastion")


def peers_python() -> Path:
    """The interpreter of the venv holding fastapi-users (built on first use)."""
    from bench.targets import ensure_peers_venv

    python, why = ensure_peers_venv(build=True, log=Path(tempfile.gettempdir()) / "peers.log")
    if python is None:
        raise RuntimeError(why)
    return python


def _command(name: str, port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    uvicorn = ["-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
    uvicorn += ["--log-level", "warning", "--app-dir", str(ROOT)]
    if name == "blogpost":
        # Benchmark plumbing, as bench/ does: the post's 100/min limiter answers
        # 500 past its budget, which would end any audit run within a minute.
        env["BENCH_BLOG_RATE_LIMIT"] = "100000"
        return [sys.executable, *uvicorn, "tests.audit.targets.blogpost_as_written:app"], env
    if name == "bare-pyjwt":
        return [sys.executable, *uvicorn, "tests.audit.targets.bare_pyjwt:app"], env
    if name == "fastapi-users":
        env["BENCH_FU_DATABASE_URL"] = f"sqlite+aiosqlite:///{workdir}/fu.db"
        app = "tests.audit.targets.fastapi_users_documented:app"
        return [str(peers_python()), *uvicorn, app], env
    if name == "confused-jwks":
        return [sys.executable, *uvicorn, "tests.audit.targets.confused_jwks:app"], env
    if name == "bastion-eddsa":
        env["BASTION_JWT_ALGORITHM"] = "EdDSA"
        name = "bastion"
    if name == "bastion":
        env["BASTION_DATA_DIR"] = str(workdir / "bastion-data")
        bastion = str(Path(sys.executable).with_name("bastion"))
        return [bastion, "serve", "--host", "127.0.0.1", "--port", str(port)], env
    raise ValueError(name)


@contextlib.contextmanager
def running(name: str) -> Iterator[str]:
    """Serve target ``name`` (:data:`TARGETS`, ``confused-jwks``, ``bastion-eddsa``)."""
    with tempfile.TemporaryDirectory(prefix=f"audit-{name}-") as tmp:
        port = free_port()
        command, env = _command(name, port, Path(tmp))
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/openapi.json", timeout=2).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    output = (Path(tmp) / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"{name} did not start:\n{output}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
