"""The OpenAPI document is the contract: Schemathesis (``--checks all``) finds
no 5xx and no disagreement between the document and the server.

A bounded run: fixed seed, a capped number of cases per operation, the whole
document, against a real server on SQLite holding an admin token. The hooks
(``schemathesis_hooks.py``) keep that admin alive, count statuses and drop
the named false positives; anything else fails the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory, login

SEED = 20261201
#: Cases per operation and phase (Schemathesis' --max-examples).
MAX_EXAMPLES = 10
#: The whole run must end well within the budget of the suite.
TIMEOUT = 300
ADMIN = "st_contract_admin"
ADMIN_PASSWORD = "an admin passphrase for the contract run"
REPO = Path(__file__).resolve().parents[2]


def summarize(report: dict[str, Any], stats: dict[str, Any]) -> str:
    """One paragraph: operations, cases, statuses seen, failures."""
    operations = report["operations"]
    cases = report["test_cases"]
    statuses = ", ".join(f"{code}: {count}" for code, count in stats["statuses"].items())
    failures = report["failures"] or "none"
    return (
        f"Schemathesis {report['schemathesis_version']}, seed {report['seed']}: "
        f"{operations['tested']} of {operations['total']} operations, "
        f"{cases['generated']} generated cases, {sum(stats['statuses'].values())} requests; "
        f"statuses seen {statuses}; failures: {failures}; "
        f"{report['running_time']:.0f} s"
    )


def save_summary(summary: str, stats: dict[str, Any]) -> None:
    """With ``CONTRACT_SUMMARY_PATH`` set, write the summary there (for the README)."""
    target = os.environ.get("CONTRACT_SUMMARY_PATH")
    if target:
        Path(target).write_text(summary + "\n\n" + json.dumps(stats, indent=1) + "\n")


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_schemathesis_finds_no_failure_in_the_whole_document(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    # EdDSA, so that /.well-known/jwks.json has keys to answer with.
    server = await start_server(jwt_algorithm="EdDSA")
    admin = await server.bastion.container.user_service.register(
        username=ADMIN,
        email="st-admin@example.com",
        age=40,
        password=ADMIN_PASSWORD,
        permissions=("admin",),
    )
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await login(http, ADMIN, ADMIN_PASSWORD)  # the hooks log in the same way
    report_path, stats_path = tmp_path / "report.json", tmp_path / "stats.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.contract.schemathesis_hooks",
        "BASTION_ST_BASE_URL": server.base_url,
        "BASTION_ST_ADMIN": ADMIN,
        "BASTION_ST_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "BASTION_ST_ADMIN_ID": str(admin.id),
        "BASTION_ST_STATS": str(stats_path),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks=all",
        f"--seed={SEED}",
        f"--max-examples={MAX_EXAMPLES}",
        "--workers=1",
        "--generation-database=none",
        "--no-color",
        "--report=json",
        f"--report-json-path={report_path}",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
    text = output.decode(errors="replace")
    report = json.loads(report_path.read_text())
    stats = json.loads(stats_path.read_text())
    summary = summarize(report, stats)
    print(summary)
    save_summary(summary, stats)
    server_errors = {code: n for code, n in stats["statuses"].items() if code.startswith("5")}
    # 503 is the documented answer to a down backend, which this run never has.
    assert not server_errors, summary
    assert report["failures"] == [], text[-30000:]
    assert report["errors"] == [], text[-30000:]
    assert report["operations"]["tested"] == report["operations"]["total"], summary
    assert process.returncode == 0, text[-30000:]
