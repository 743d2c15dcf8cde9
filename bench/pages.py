"""Page weight and server render time of the web pages.

    .venv/bin/python -m bench.pages [--requests 200]

For each page: the bytes a first visit downloads (HTML, plus the CSS and the
JavaScript modules that page loads: ``main.js`` and the feature modules it
imports for what is on the page), and the server's time per render, measured
in process through the ASGI app (no socket, so it is the app's own cost:
routing, middleware, session lookup, queries and the template), median and
95th percentile over ``--requests`` renders after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bastion import Settings, create_app
from bastion.services.browser_sessions import csrf_token_for

PASSWORD = "correct horse battery staple"
#: main.js loads each module when the page has an element that needs it.
FEATURES = {
    "data-confirm": "js/confirm.js",
    "data-copy": "js/copy.js",
    "data-fragment-token": "js/fragment.js",
    "data-passkey": "js/passkey.js",
}
PAGES = [
    "/account/login",
    "/account/register",
    "/account",
    "/admin",
    "/admin/users",
    "/admin/users/1",
    "/admin/events",
]


def assets_of(html: str) -> list[str]:
    """The static files a first visit of ``html`` fetches (favicon aside)."""
    found = re.findall(r'(?:href|src)="/static/bastion/([^"]+\.(?:css|js))"', html)
    if "js/main.js" in found:
        found += [
            module
            for marker, module in FEATURES.items()
            if f"{marker}=" in html or f" {marker}>" in html or f"{marker} " in html
        ]
    return list(dict.fromkeys(found))


async def measure(requests: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(
            _env_file=None,
            data_dir=Path(data),
            rate_limit="100000000/minute",
            login_rate_limit="100000000/minute",
        )
        app = create_app(settings)
        container = app.state.bastion.container
        async with app.router.lifespan_context(app):
            await container.user_service.register(
                username="root",
                email="root@example.com",
                age=40,
                password=PASSWORD,
                permissions=("admin",),
            )
            for n in range(40):
                await container.user_service.register(
                    username=f"user{n:02d}", email=f"u{n}@example.com", age=30, password=PASSWORD
                )
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as http:
                anon = "bench-anon-cookie-value"
                login = await http.post(
                    "/account/login",
                    data={"username": "root", "password": PASSWORD, "csrf": csrf_token_for(anon)},
                    headers={
                        "Cookie": f"__Host-bastion-anon={anon}",
                        "Origin": "http://bench.test",
                    },
                )
                assert login.status_code == 303, login.text
                session = re.search(r"__Host-bastion-session=([^;]+)", login.headers["set-cookie"])
                assert session is not None
                cookie = {"Cookie": f"__Host-bastion-session={session.group(1)}"}
                static = {}
                rows = []
                for path in PAGES:
                    headers = cookie if not path.startswith("/account/") else {}
                    first = await http.get(path, headers=headers)
                    assert first.status_code == 200, (path, first.status_code)
                    assets = assets_of(first.text)
                    for asset in assets:
                        if asset not in static:
                            static[asset] = len(
                                (await http.get(f"/static/bastion/{asset}")).content
                            )
                    for _ in range(20):
                        await http.get(path, headers=headers)
                    times = []
                    for _ in range(requests):
                        started = time.perf_counter()
                        await http.get(path, headers=headers)
                        times.append((time.perf_counter() - started) * 1000)
                    times.sort()
                    css = sum(static[a] for a in assets if a.endswith(".css"))
                    js = sum(static[a] for a in assets if a.endswith(".js"))
                    rows.append(
                        {
                            "page": path,
                            "html": len(first.content),
                            "css": css,
                            "js": js,
                            "total": len(first.content) + css + js,
                            "median_ms": statistics.median(times),
                            "p95_ms": times[int(len(times) * 0.95) - 1],
                        }
                    )
                return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.requests))
    heads = ("HTML", "CSS", "JS", "total B", "median ms", "p95 ms")
    widths = (7, 7, 7, 8, 10, 8)
    print(f"{'page':<20} " + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for row in rows:
        print(
            f"{row['page']:<20} {row['html']:>7} {row['css']:>7} {row['js']:>7} "
            f"{row['total']:>8} {row['median_ms']:>10.2f} {row['p95_ms']:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
