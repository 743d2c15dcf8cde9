"""Audit the four reference targets once with the defaults and print Markdown.

Usage: ``.venv/bin/python -m bench.audit_targets [--out FILE]``. Each target
is started as a real server on 127.0.0.1 (see ``tests/audit/targets``), and
audited with ``--intrusive`` at the default budget (250) and rate (5/s), so
the figures are those a user would get.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from tests.audit.targets.launch import TARGETS, running

from bastion.audit import AuditRequest, Options, Report, run_audit

TITLES = {
    "blogpost": "The blog post's app, as written",
    "bare-pyjwt": "A bare FastAPI + HTTPBearer + PyJWT app",
    "fastapi-users": "fastapi-users, documented setup",
    "bastion": "Bastion (`bastion serve`, defaults)",
}


def markdown(name: str, report: Report) -> str:
    """One target's findings as a Markdown table with the audit's cost."""
    lines = [
        f"#### {TITLES[name]}",
        "",
        f"{report.requests} requests, {report.seconds:.1f} s"
        + ("" if report.complete else f" (incomplete: {report.error})"),
        "",
        "| severity | id | finding | ASVS | CWE |",
        "|---|---|---|---|---|",
    ]
    for f in report.sorted_findings():
        title = f.title.replace("|", "\\|")
        lines.append(
            f"| {f.severity.value} | `{f.id}` | {title} | {' '.join(f.asvs)} | {' '.join(f.cwe)} |"
        )
    if not report.findings:
        lines.append("| | | no findings | | |")
    notes = [c for c in report.checks if c.status == "inconclusive" or c.note]
    lines.append("")
    lines += [f"- {c.id} ({c.status}): {c.note.splitlines()[0]}" for c in notes]
    return "\n".join(lines) + "\n"


async def main() -> None:
    """Audit each target and print (or write) the Markdown."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    parts = []
    for name in TARGETS:
        with running(name) as url:
            report = await run_audit(AuditRequest(url, options=Options(intrusive=True)))
        parts.append(markdown(name, report))
        print(parts[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
