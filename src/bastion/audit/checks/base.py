"""What a check is: an id, a title, the access it needs, and one coroutine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bastion.audit.context import AuditContext


class Skipped(Exception):
    """The check cannot run against this target (the message says why)."""


class Inconclusive(Exception):
    """The check ran but could not decide (the message gives the figures)."""


@dataclass(frozen=True)
class Check:
    """One concern of the audit.

    Attributes:
        id: Stable id (``jwt-alg-none``).
        title: What it looks at, for the progress display.
        run: The check; it records findings on the context, may return a note
            (figures worth showing), and may raise :class:`Skipped` or
            :class:`Inconclusive`.
        active: Needs a login or registration (not run with ``--passive``).
        intrusive: Risks locking an account out (run only with ``--intrusive``).
    """

    id: str
    title: str
    run: Callable[[AuditContext], Awaitable[str | None]]
    active: bool = False
    intrusive: bool = False
