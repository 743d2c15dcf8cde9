"""Serve Bastion for a benchmark: ``create_app(Settings(...))`` under uvicorn on 127.0.0.1.

Settings come from the ``BASTION_*`` variables ``bench.run`` sets (data
directory, raised rate limits, database and Redis URLs); no ``.env`` file is
read. uvicorn runs as ``bastion serve`` runs it: uvloop + httptools with
``TCP_NODELAY`` (``bastion.serving``), no ``Server`` header, no proxy header
rewriting, warnings only.

Usage: ``python -m bench.serve_bastion PORT``
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn

from bastion import Settings, create_app
from bastion.serving import freeze_heap_after_startup, server_stack


def silence_observability(app: Any) -> None:
    """W7's "off" side: no access line, no metrics; everything else unchanged."""
    from bastion.api.middleware import context
    from bastion.api.middleware.edge import EdgeMiddleware

    def no_line(**_fields: object) -> None:
        return None

    context.log_request = no_line  # type: ignore[assignment]
    for middleware in app.user_middleware:
        if middleware.cls is EdgeMiddleware:
            middleware.kwargs["observe"] = None


def main(argv: list[str]) -> int:
    """Build the app from the environment's settings and serve it until SIGTERM."""
    port = int(argv[0])
    app = create_app(Settings(_env_file=None))
    freeze_heap_after_startup(app)  # as `bastion serve` does
    if os.environ.get("BENCH_OBSERVABILITY") == "off":
        silence_observability(app)
    # As `bastion serve` runs: uvloop + httptools with TCP_NODELAY.
    stack = server_stack()
    uvicorn.run(
        app,
        loop=stack.loop,
        http=stack.http,
        host="127.0.0.1",
        port=port,
        server_header=False,
        proxy_headers=False,
        forwarded_allow_ips="",
        log_level="warning",
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
