"""The JSON report: ``{"target", "findings", "requests", "seconds"}`` (SPEC), plus checks."""

from __future__ import annotations

import json
from typing import Any

from bastion.audit.findings import Report


def as_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data."""
    data: dict[str, Any] = {
        "target": report.target,
        "findings": [f.as_dict() for f in report.sorted_findings()],
        "requests": report.requests,
        "seconds": report.seconds,
        "checks": [{"id": c.id, "status": c.status, "note": c.note} for c in report.checks],
    }
    if report.error is not None:
        data["error"] = report.error
    return data


def render_json(report: Report) -> str:
    """The report as indented JSON text."""
    return json.dumps(as_dict(report), indent=2) + "\n"
