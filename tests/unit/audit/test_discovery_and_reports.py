"""Route discovery from real OpenAPI documents; the report formats."""

from __future__ import annotations

import json
from pathlib import Path

from bastion.api.app import create_app
from bastion.audit.discovery import RouteOverrides, apply_overrides, routes_from_openapi
from bastion.audit.findings import Finding, Report, Severity
from bastion.audit.report import render
from bastion.config import Settings


def test_bastion_openapi_gives_every_route(tmp_path: Path) -> None:
    """Bastion's own document: token (form, refresh grant), register, logout, me."""
    doc = create_app(Settings(data_dir=tmp_path)).openapi()
    routes = routes_from_openapi(doc)
    assert routes.login is not None
    assert routes.login.path == "/auth/token"
    assert routes.login.form
    assert routes.login.grant_type
    assert routes.refresh is not None
    assert routes.refresh.grant
    assert routes.register is not None
    assert routes.register.path == "/users"
    assert {"username", "email", "age", "password"} <= set(routes.register.properties)
    assert routes.logout == "/auth/logout"
    assert routes.me == "/users/me"


def test_options_replace_what_discovery_found() -> None:
    """Named routes win; a document without paths discovers nothing."""
    routes = apply_overrides(
        routes_from_openapi({"openapi": "3.1.0"}),
        RouteOverrides(token="/login", token_json=True, me="/whoami", logout="/bye"),
    )
    assert routes.login is not None
    assert (routes.login.path, routes.login.form) == ("/login", False)
    assert (routes.me, routes.logout, routes.register) == ("/whoami", "/bye", None)


def _report() -> Report:
    finding = Finding(
        "jwt-alg-none",
        "Unsigned tokens accepted",
        Severity.CRITICAL,
        "> GET /me",
        "Pin algs.",
        ("V3.5.3",),
        ("CWE-347",),
    )
    low = Finding("header-csp", "No CSP", Severity.LOW, "-", "Add one.", ("V14.4.3",), ())
    return Report("http://127.0.0.1:1", [low, finding], requests=7, seconds=1.5)


def test_exit_codes_follow_fail_on() -> None:
    """1 at or above --fail-on, 0 below it, 3 when incomplete."""
    report = _report()
    assert report.exit_code(Severity.HIGH) == 1
    only_low = Report("x", [report.findings[0]])
    assert only_low.exit_code(Severity.HIGH) == 0
    assert only_low.exit_code(Severity.LOW) == 1
    only_low.error = "timed out"
    assert only_low.exit_code(Severity.LOW) == 3


def test_json_sarif_and_table() -> None:
    """JSON has SPEC's keys, most severe first; SARIF 2.1.0 levels; the table lists both."""
    report = _report()
    data = json.loads(render(report, "json"))
    assert [f["id"] for f in data["findings"]] == ["jwt-alg-none", "header-csp"]
    assert (data["target"], data["requests"], data["seconds"]) == ("http://127.0.0.1:1", 7, 1.5)
    sarif = json.loads(render(report, "sarif"))
    assert sarif["version"] == "2.1.0"
    levels = {r["ruleId"]: r["level"] for r in sarif["runs"][0]["results"]}
    assert levels == {"jwt-alg-none": "error", "header-csp": "note"}
    table = render(report, "table")
    assert "critical" in table
    assert "header-csp" in table
    assert "7 requests" in table
