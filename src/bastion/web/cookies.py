"""The pages' cookies: ``__Host-`` prefixed, HttpOnly, Secure, SameSite=Strict."""

from __future__ import annotations

from starlette.responses import Response

#: The signed-in browser. ``__Host-``: Secure, no Domain, Path=/, so neither a
#: sibling subdomain nor a plain-HTTP page can set or overwrite it (RFC 6265bis
#: §4.1.3.2).
SESSION_COOKIE = "__Host-bastion-session"
#: A random value for visitors not signed in, to which the anonymous forms'
#: CSRF tokens are bound (login CSRF, OWASP CSRF Cheat Sheet).
ANON_COOKIE = "__Host-bastion-anon"
#: The known-device token of the last sign-in in this browser (OWASP "device
#: cookies"): sent back as ``device_token``, so an attacker hammering the
#: account does not lock its owner out of a browser the owner has used.
DEVICE_COOKIE = "__Host-bastion-device"
#: How long a browser keeps its device token: 400 days, the most Chromium
#: honours (RFC 6265bis §5.6.2 caps Max-Age there).
DEVICE_COOKIE_MAX_AGE = 400 * 86400


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    """Set a ``__Host-`` cookie: HttpOnly, Secure, SameSite=Strict, Path=/.

    Without ``max_age`` the cookie ends with the browser; the server ends
    the session earlier (idle and absolute limits).
    """
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict"
    )


def clear_cookie(response: Response, name: str) -> None:
    """Remove a cookie (the same attributes, or a ``__Host-`` delete is refused)."""
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")
