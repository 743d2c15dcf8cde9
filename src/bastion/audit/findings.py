"""What an audit reports: findings with severity, evidence, remedy and references."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """Finding severities, most severe first (the order ``--fail-on`` compares)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical up to 4 for info."""
        return list(Severity).index(self)

    def at_least(self, threshold: Severity) -> bool:
        """Whether this severity is ``threshold`` or more severe."""
        return self.rank <= threshold.rank


@dataclass(frozen=True)
class Finding:
    """One weakness found, with what proves it and how to fix it.

    Attributes:
        id: Stable rule id (``jwt-alg-none``); SARIF's ``ruleId``.
        title: One line saying what is wrong.
        severity: How bad it is.
        evidence: The requests and responses that show it, credentials redacted.
        remedy: What to change.
        asvs: OWASP ASVS 4.0.3 requirement ids.
        cwe: CWE ids (``CWE-347``).
    """

    id: str
    title: str
    severity: Severity
    evidence: str
    remedy: str
    asvs: tuple[str, ...]
    cwe: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of the finding."""
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "evidence": self.evidence,
            "remedy": self.remedy,
            "asvs": list(self.asvs),
            "cwe": list(self.cwe),
        }


@dataclass
class CheckOutcome:
    """How one check went: ``ran``, ``skipped`` (with why) or ``inconclusive``."""

    id: str
    status: str
    note: str = ""


@dataclass
class Report:
    """Everything an audit produced."""

    target: str
    findings: list[Finding] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def complete(self) -> bool:
        """False when the audit stopped early (exit status 3)."""
        return self.error is None

    def sorted_findings(self) -> list[Finding]:
        """Findings, most severe first, then by id."""
        return sorted(self.findings, key=lambda f: (f.severity.rank, f.id))

    def exit_code(self, fail_on: Severity) -> int:
        """0 nothing at or above ``fail_on``, 1 something, 3 incomplete (SPEC)."""
        if not self.complete:
            return 3
        return 1 if any(f.severity.at_least(fail_on) for f in self.findings) else 0
