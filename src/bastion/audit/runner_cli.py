"""What ``bastion audit`` does once its options are parsed: run, show, exit."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bastion.audit.context import Options
from bastion.audit.discovery import RouteOverrides
from bastion.audit.findings import Report, Severity
from bastion.audit.report import render
from bastion.audit.runner import AuditRequest, run_audit
from bastion.audit.scope import ScopeError

#: Exit status for a refused invocation (the target is out of scope).
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3


@dataclass(frozen=True)
class Invocation:
    """The parsed command line."""

    url: str
    user: str | None
    password: str | None
    token: str | None
    passive: bool
    intrusive: bool
    fmt: str
    out: Path | None
    fail_on: str
    max_requests: int
    rate: float
    timeout: float
    permitted: bool
    routes: tuple[str | None, bool | None, str | None, str | None, str | None, str | None]
    timing_samples: int
    refresh_grace: float


def _request(inv: Invocation) -> AuditRequest:
    token, token_json, register, refresh, logout, me = inv.routes
    return AuditRequest(
        url=inv.url,
        user=inv.user,
        password=inv.password,
        token=inv.token,
        options=Options(
            passive=inv.passive,
            intrusive=inv.intrusive,
            timing_samples=inv.timing_samples,
            refresh_grace=inv.refresh_grace,
        ),
        routes=RouteOverrides(token, token_json, register, refresh, logout, me),
        max_requests=inv.max_requests,
        rate=inv.rate,
        timeout=inv.timeout,
        permitted=inv.permitted,
    )


def execute(
    inv: Invocation,
    *,
    run: Callable[[Coroutine[Any, Any, Report]], Report],
    stderr: TextIO,
) -> int:
    """Run the audit, write the report, and return the exit status.

    Never lets a traceback out: a failure of the audit itself is reported in
    one line and exit status 3, like a target that could not be audited.
    """
    console = Console(file=stderr, stderr=True, soft_wrap=True)
    request = _request(inv)
    columns = (
        TextColumn("[bold]audit[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("discovery", total=None)

            def progress(title: str, index: int, total: int) -> None:
                bar.update(task, description=title, completed=index, total=total)

            report = run(run_audit(request, progress=progress))
    except ScopeError as exc:
        console.print(f"bastion audit: refused: {exc}", markup=False, highlight=False)
        return EXIT_USAGE
    except Exception as exc:  # the promise: a message, never a traceback
        console.print(
            f"bastion audit: the audit failed: {type(exc).__name__}: {exc}",
            markup=False,
            highlight=False,
        )
        return EXIT_INCOMPLETE
    text = render(report, inv.fmt, color=inv.out is None and console.is_terminal)
    if inv.out is not None:
        inv.out.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    if report.error:
        console.print(
            f"bastion audit: could not complete: {report.error}", markup=False, highlight=False
        )
    return report.exit_code(Severity(inv.fail_on))
