"""Serve Bastion for a benchmark: ``create_app(Settings(...))`` under uvicorn on 127.0.0.1.

Settings come from the ``BASTION_*`` variables ``bench.run`` sets (data
directory, raised rate limits, database and Redis URLs); no ``.env`` file is
read. uvicorn runs as ``bastion serve`` runs it: no ``Server`` header, no proxy
header rewriting, warnings only.

Usage: ``python -m bench.serve_bastion PORT``
"""

from __future__ import annotations

import sys

import uvicorn

from bastion import Settings, create_app


def main(argv: list[str]) -> int:
    """Build the app from the environment's settings and serve it until SIGTERM."""
    port = int(argv[0])
    app = create_app(Settings(_env_file=None))
    uvicorn.run(
        app,
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
