"""``bastion audit`` as a user runs it: exit codes, formats, redaction, refusals."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bastion.audit import AuditRequest, Options, ScopeError, run_audit
from tests.audit.proxy import counting_proxy
from tests.audit.targets.launch import running

BASTION = str(Path(sys.executable).with_name("bastion"))
FAST = ("--rate", "40", "--max-requests", "150", "--timing-samples", "8")


async def _bastion(*args: str, limit: float = 240) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        BASTION, "audit", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module")
def bare() -> Iterator[str]:
    """The bare FastAPI + PyJWT target."""
    with running("bare-pyjwt") as url:
        yield url


async def test_json_report_redacts_given_credentials(bare: str, tmp_path: Path) -> None:
    """With --user/--password: exit 1, SPEC's JSON keys, the password nowhere."""
    password = "audit-given-password-7c1e"
    async with httpx.AsyncClient(base_url=bare) as http:
        await http.post("/register", json={"username": "given_user", "password": password})
        login = await http.post("/login", json={"username": "given_user", "password": password})
    token = login.json()["access_token"]
    out = tmp_path / "report.json"
    code, _, err = await _bastion(
        bare,
        "--user",
        "given_user",
        "--password",
        password,
        "--format",
        "json",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 1, err
    text = out.read_text()
    report = json.loads(text)
    assert {"target", "findings", "requests", "seconds"} <= report.keys()
    assert password not in text
    assert token not in text
    assert "[redacted]" in text
    finding = report["findings"][0]
    assert {"id", "title", "severity", "evidence", "remedy", "asvs", "cwe"} <= finding.keys()


async def test_sarif_and_fail_on(bare: str, tmp_path: Path) -> None:
    """SARIF 2.1.0 with one result per finding; --fail-on critical still fails here."""
    out = tmp_path / "report.sarif"
    code, _, err = await _bastion(
        bare, "--format", "sarif", "--out", str(out), "--fail-on", "critical", *FAST
    )
    assert code == 1, err
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert any(r["ruleId"] == "jwt-weak-secret" and r["level"] == "error" for r in results)
    rules = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} == rules


async def test_table_is_the_default(bare: str) -> None:
    """The default output is a table naming findings by severity."""
    code, out, err = await _bastion(bare, "--passive", *FAST)
    assert code == 1, err
    assert "cors-reflection" in out
    assert "high" in out


async def test_passive_sends_no_login_and_no_registration(bare: str) -> None:
    """--passive: no POST at all reaches the target, and no finding needs one."""
    async with counting_proxy(bare) as (url, proxy):
        report = await run_audit(
            AuditRequest(url, options=Options(passive=True), max_requests=50, rate=40)
        )
    assert report.complete
    assert proxy.arrivals
    assert report.requests == len(proxy.arrivals)
    ids = {f.id for f in report.findings}
    assert "cors-reflection" in ids
    assert "password-echo" not in ids
    assert {c.id for c in report.checks if c.status == "skipped"} >= {"logout", "password-echo"}


async def test_small_budget_is_never_exceeded(bare: str) -> None:
    """A budget too small for the audit: it stops at exactly that many, exit 3."""
    async with counting_proxy(bare) as (url, proxy):
        report = await run_audit(
            AuditRequest(url, options=Options(intrusive=True), max_requests=25, rate=10)
        )
    assert not report.complete
    assert "budget" in (report.error or "")
    assert report.exit_code(report.findings[0].severity) == 3
    assert len(proxy.arrivals) == report.requests == 25
    assert proxy.busiest(2.0) <= 2 * 10 + 2


async def test_public_target_refused_before_any_packet() -> None:
    """Outside loopback/private ranges without --i-have-permission: refused, nothing sent."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    with pytest.raises(ScopeError, match="--i-have-permission"):
        await run_audit(
            AuditRequest("http://93.184.215.14/"), transport=httpx.MockTransport(record)
        )
    assert sent == []
    code, _, err = await _bastion("http://93.184.215.14/")
    assert code == 2
    assert "--i-have-permission" in err
    assert "Traceback" not in err


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: str) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        if mode == "slow":
            await asyncio.sleep(30)
        elif mode == "500":
            writer.write(
                b"HTTP/1.1 500 Oops\r\ncontent-length: 5\r\nconnection: close\r\n\r\noops!"
            )
        elif mode == "invalid-json":
            body = b'{"openapi": "3.1.0", "paths": {'
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
            writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        elif mode == "endless":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n[")
            while True:
                writer.write(b"0," * 8192)
                await writer.drain()
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def garbage(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A server of the test's own answering in the way the test's parameter says."""
    mode = str(request.param)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _garbage(reader, writer, mode)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


@pytest.mark.parametrize("garbage", ["slow", "500", "invalid-json", "endless"], indirect=True)
async def test_misbehaving_target_exits_3_with_a_message(garbage: str) -> None:
    """Slow, 500, invalid JSON, an endless body: exit 3, one clear line, no traceback."""
    code, _, err = await _bastion(garbage, "--timeout", "2", "--rate", "50")
    assert code == 3, err
    assert "could not complete" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("target", "found"), [("confused-jwks", True), ("bastion-eddsa", False)])
async def test_algorithm_confusion(target: str, found: bool) -> None:
    """ES256 MACed as HS256 with the JWKS key's PEM: caught where accepted, not on Bastion."""
    with running(target) as url:
        report = await run_audit(AuditRequest(url, max_requests=80, rate=40))
    assert report.complete, report.error
    assert ("jwt-algorithm-confusion" in {f.id for f in report.findings}) is found
    assert ("jwt-confusion", "ran") in {(c.id, c.status) for c in report.checks}


def test_help_lists_every_spec_option() -> None:
    """``bastion audit --help`` names each option SPEC gives the command."""
    from typer.testing import CliRunner

    from bastion.cli import app

    result = CliRunner().invoke(app, ["audit", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--user", "--password", "--token", "--passive", "--intrusive", "--format", "--out",
        "--fail-on", "--max-requests", "--rate", "--i-have-permission",
    ):  # fmt: skip
        assert option in result.output, option


def test_passive_and_intrusive_exclude_each_other() -> None:
    """Both at once is a usage error, before anything is sent."""
    from typer.testing import CliRunner

    from bastion.cli import app

    result = CliRunner().invoke(app, ["audit", "http://127.0.0.1:9", "--passive", "--intrusive"])
    assert result.exit_code == 2
