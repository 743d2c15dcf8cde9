"""``bastion audit``: a black-box check of an HTTP API's authentication layer.

A client of any API, Bastion or not; it imports nothing of the service but
the pure :mod:`bastion.security` primitives (the common-password list).
Names are imported on first use so that ``bastion --help`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.audit.client import BudgetExhausted, PoliteClient, TargetError
    from bastion.audit.context import Options
    from bastion.audit.discovery import RouteOverrides
    from bastion.audit.findings import Finding, Report, Severity
    from bastion.audit.runner import AuditRequest, run_audit
    from bastion.audit.scope import ScopeError

__all__ = [
    "AuditRequest",
    "BudgetExhausted",
    "Finding",
    "Options",
    "PoliteClient",
    "Report",
    "RouteOverrides",
    "ScopeError",
    "Severity",
    "TargetError",
    "run_audit",
]

_WHERE = {
    "AuditRequest": "bastion.audit.runner",
    "run_audit": "bastion.audit.runner",
    "BudgetExhausted": "bastion.audit.client",
    "PoliteClient": "bastion.audit.client",
    "TargetError": "bastion.audit.client",
    "Options": "bastion.audit.context",
    "RouteOverrides": "bastion.audit.discovery",
    "Finding": "bastion.audit.findings",
    "Report": "bastion.audit.findings",
    "Severity": "bastion.audit.findings",
    "ScopeError": "bastion.audit.scope",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion.audit' has no attribute {name!r}")
    return getattr(import_module(module), name)
