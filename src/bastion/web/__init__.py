"""The web pages: account self-service and the admin console (SPEC, "Web pages").

A sibling of :mod:`bastion.api`: page routes, Jinja2 templates, static files
and the browser-session/CSRF layer. It calls services, never storage. The API
package mounts it (``Bastion.install``) and hands it the one error map and the
request context through :class:`PageHooks`, so this package never imports
``bastion.api`` (the import-linter contracts in ``pyproject.toml`` say so).
"""

from __future__ import annotations

from bastion.web.mount import PageHooks, mount_pages, page_prefixes

__all__ = ["PageHooks", "mount_pages", "page_prefixes"]
