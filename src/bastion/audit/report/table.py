"""The terminal report: a rich table of findings, most severe first."""

from __future__ import annotations

import io
import shutil

from rich.console import Console
from rich.table import Table

from bastion.audit.findings import Report, Severity

STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def render_table(report: Report, *, color: bool = False, width: int | None = None) -> str:
    """The findings table, the checks that did not run, and the totals.

    Args:
        report: What the audit found.
        color: Render for a terminal (styles on, its width).
        width: Columns; default the terminal's when ``color``, else 120.
    """
    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns if color else 120
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=color, no_color=not color)
    table = Table(title=f"bastion audit {report.target}", show_lines=False)
    table.add_column("severity")
    table.add_column("id")
    table.add_column("finding")
    table.add_column("ASVS / CWE")
    for finding in report.sorted_findings():
        table.add_row(
            f"[{STYLE[finding.severity]}]{finding.severity.value}[/]",
            finding.id,
            finding.title,
            " ".join((*finding.asvs, *finding.cwe)),
        )
    console.print(table)
    for outcome in report.checks:
        if outcome.status != "ran":
            console.print(f"[dim]{outcome.status}: {outcome.id}: {outcome.note}[/]")
    console.print(
        f"{len(report.findings)} findings, {report.requests} requests, {report.seconds:.1f} s"
    )
    if report.error:
        console.print(f"[bold red]audit incomplete:[/] {report.error}")
    return out.getvalue()
