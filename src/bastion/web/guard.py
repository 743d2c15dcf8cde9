"""Cross-site request forgery defences of the pages (OWASP CSRF Cheat Sheet).

Two independent checks on every state-changing request, so that either alone
stops a forged post: the request must come from our own origin (``Origin``,
``Sec-Fetch-Site``), and the form must carry the synchronizer token of the
browser's session (:func:`bastion.services.browser_sessions.csrf_token_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a state-changing request comes from this site's own pages.

    - ``Sec-Fetch-Site`` (Fetch Metadata), when sent, must be ``same-origin``:
      a sibling subdomain (``same-site``) is refused too.
    - ``Origin``, when sent, must name the host the request was sent to. With
      ``Referrer-Policy: no-referrer`` Chromium sends ``Origin: null`` on
      same-origin form posts; ``null`` is believed only together with
      ``Sec-Fetch-Site: same-origin``, which a page cannot forge (it is a
      forbidden header name), since a sandboxed frame elsewhere sends
      ``null`` as well.
    - Neither header: not a browser (old browsers aside, every one since 2020
      sends ``Origin`` on a POST); the CSRF token still has to match.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return fetch_site == "same-origin"
    host = headers.get("host")
    if not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()
