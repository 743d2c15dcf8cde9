"""Report formats: a terminal table, JSON and SARIF 2.1.0."""

from __future__ import annotations

from bastion.audit.findings import Report
from bastion.audit.report.json_report import render_json
from bastion.audit.report.sarif import render_sarif
from bastion.audit.report.table import render_table

FORMATS = ("table", "json", "sarif")


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    """``report`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "sarif":
        return render_sarif(report)
    return render_table(report, color=color)


__all__ = ["FORMATS", "render"]
