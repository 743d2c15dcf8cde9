"""The headers of every 429: ``Retry-After`` and the IETF RateLimit fields.

One builder for the rate limiter and the login throttle, so a client reads
both the same way (SPEC: every 429 carries them). Both the structured-field
form of draft-ietf-httpapi-ratelimit-headers (``RateLimit-Policy`` and
``RateLimit``) and the older, widely parsed ``RateLimit-Limit`` /
``-Remaining`` / ``-Reset`` trio are sent.
"""

from __future__ import annotations

import math

Headers = list[tuple[bytes, bytes]]

#: The policy name of the login throttle in the RateLimit fields.
THROTTLE_POLICY = "login-throttle"


def rate_limit_headers(
    policy: str, quota: int, window: float, remaining: int, reset_after: float
) -> Headers:
    """The fields for ``policy`` (``quota`` per ``window`` s), ``remaining``
    left, the next slot in ``reset_after`` seconds (at least 1)."""
    reset = max(1, math.ceil(reset_after))
    window_s = max(1, math.ceil(window))
    return [
        (b"retry-after", str(reset).encode()),
        (b"ratelimit-policy", f'"{policy}";q={quota};w={window_s}'.encode()),
        (b"ratelimit", f'"{policy}";r={remaining};t={reset}'.encode()),
        (b"ratelimit-limit", str(quota).encode()),
        (b"ratelimit-remaining", str(remaining).encode()),
        (b"ratelimit-reset", str(reset).encode()),
    ]


def throttle_headers(retry_after: int) -> Headers:
    """The fields of a login throttle's 429.

    The throttle admits the next attempt once the delay is over, so it is
    expressed as a policy of one attempt per delay, none remaining: a client
    that honours either ``Retry-After`` or ``RateLimit`` retries at the right time.
    """
    return rate_limit_headers(THROTTLE_POLICY, 1, retry_after, 0, retry_after)


def as_text(headers: Headers) -> dict[str, str]:
    """The same headers for a Starlette ``Response(headers=...)``."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
