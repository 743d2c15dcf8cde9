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


def set_cookie(response: Response, name: str, value: str) -> None:
    """Set a ``__Host-`` cookie: HttpOnly, Secure, SameSite=Strict, Path=/.

    No ``Max-Age``: the cookie ends with the browser; the server ends the
    session earlier (idle and absolute limits).
    """
    response.set_cookie(name, value, path="/", secure=True, httponly=True, samesite="strict")


def clear_cookie(response: Response, name: str) -> None:
    """Remove a cookie (the same attributes, or a ``__Host-`` delete is refused)."""
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")
