"""Evidence text: requests and responses as an HTTP transcript, secrets redacted."""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.audit.client import Exchange

#: Enough of a body to show the point without flooding a report.
_BODY_LIMIT = 600
_SHOWN_HEADERS = (
    "content-type",
    "www-authenticate",
    "retry-after",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "x-xss-protection",
    "cache-control",
    "server",
)


@dataclass
class Redactor:
    """Replaces the credentials the audit was given (and tokens issued for them)."""

    secrets: set[str] = field(default_factory=set)

    def add(self, value: str | None) -> None:
        """Redact ``value`` from now on (ignored when empty or very short)."""
        if value and len(value) >= 4:
            self.secrets.add(value)

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text


def _clip(text: str) -> str:
    return text if len(text) <= _BODY_LIMIT else text[:_BODY_LIMIT] + f"... ({len(text)} chars)"


def transcript(exchange: Exchange, redact: Redactor, *, headers: tuple[str, ...] = ()) -> str:
    """``exchange`` as a short HTTP transcript with the given response headers."""
    lines = [f"> {exchange.method} {exchange.path}"]
    lines += [f"> {k}: {v}" for k, v in exchange.request_headers.items()]
    if exchange.request_body:
        lines.append(f"> {_clip(exchange.request_body)}")
    lines.append(f"< HTTP {exchange.status} ({exchange.seconds * 1000:.0f} ms)")
    for name in (*_SHOWN_HEADERS, *headers):
        value = exchange.header(name)
        if value is not None and f"< {name}: {value}" not in lines:
            lines.append(f"< {name}: {value}")
    if exchange.body:
        lines.append(f"< {_clip(exchange.body)}")
    return redact("\n".join(lines))


def transcripts(exchanges: list[Exchange], redact: Redactor) -> str:
    """Several exchanges, separated by blank lines."""
    return "\n\n".join(transcript(e, redact) for e in exchanges)
