"""SARIF 2.1.0 (OASIS), so code-scanning dashboards can show the findings.

Levels: critical and high are ``error``, medium ``warning``, low and info
``note``; ``security-severity`` (0-10) carries the finer grade GitHub uses.
"""

from __future__ import annotations

import json
from typing import Any

from bastion.audit.findings import Report, Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def as_sarif(report: Report) -> dict[str, Any]:
    """The report as a SARIF log with one run."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in report.sorted_findings():
        rules.setdefault(
            finding.id,
            {
                "id": finding.id,
                "name": finding.id.replace("-", " ").title().replace(" ", ""),
                "shortDescription": {"text": finding.title},
                "help": {"text": finding.remedy},
                "properties": {
                    "security-severity": _SCORE[finding.severity],
                    "tags": ["security", *finding.cwe, *(f"ASVS-{a}" for a in finding.asvs)],
                },
            },
        )
        results.append(
            {
                "ruleId": finding.id,
                "level": _LEVEL[finding.severity],
                "message": {"text": f"{finding.title}\n\n{finding.evidence}"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": report.target}}}],
                "properties": {"severity": finding.severity.value},
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "bastion-audit",
                "informationUri": "https://pypi.org/project/bastion/",
                "rules": list(rules.values()),
            }
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": report.complete,
                "toolExecutionNotifications": (
                    [] if report.complete else [{"message": {"text": report.error}}]
                ),
                "properties": {"requests": report.requests, "seconds": report.seconds},
            }
        ],
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render_sarif(report: Report) -> str:
    """The SARIF log as JSON text."""
    return json.dumps(as_sarif(report), indent=2) + "\n"
