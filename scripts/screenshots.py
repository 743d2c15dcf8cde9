"""Screenshots of the main pages for the README (docs/screenshots/).

Runs Bastion in process on a throwaway data directory, seeds a day of
plausible security events, and photographs the pages with Debian's Chromium:

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import random
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM_FLAGS, chromium_path  # noqa: E402

from bastion import Settings, create_app  # noqa: E402
from bastion.storage.protocols import SecurityEvent  # noqa: E402

PASSWORD = "correct horse battery staple"
OUT = ROOT / "docs" / "screenshots"


async def seed(app: object) -> None:
    container = app.state.bastion.container  # type: ignore[attr-defined]
    users = container.user_service
    await users.register(
        username="root", email="root@example.com", age=40, password=PASSWORD, permissions=("admin",)
    )
    for name in ("alice", "bob", "carol", "dave", "erin", "mallory_test"):
        await users.register(username=name, email=f"{name}@example.com", age=30, password=PASSWORD)
    rng = random.Random(7)
    now = container.clock.now()
    events = []
    agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "curl/8.5.0", "python-requests/2.32"]
    for hour in range(24):
        at = now - (24 - hour) * 3600
        for _ in range(rng.randint(8, 30)):
            events.append(
                SecurityEvent(
                    at=at + rng.random() * 3600,
                    type="authn_login_success",
                    outcome="success",
                    user_id=rng.randint(2, 6),
                    username=rng.choice(["alice", "bob", "carol", "dave", "erin"]),
                    ip=f"192.0.2.{rng.randint(2, 60)}",
                    user_agent=agents[0],
                )
            )
        burst = 60 if hour in (14, 15) else rng.randint(0, 6)
        for _ in range(burst):
            events.append(
                SecurityEvent(
                    at=at + rng.random() * 3600,
                    type="authn_login_fail",
                    outcome="failure",
                    username=rng.choice(["admin", "root", "alice", "test"]),
                    ip="203.0.113.66",
                    user_agent=agents[2],
                )
            )
        if hour in (14, 15):
            for _ in range(12):
                events.append(
                    SecurityEvent(
                        at=at + rng.random() * 3600,
                        type="authn_login_lock",
                        outcome="failure",
                        username="admin",
                        ip="203.0.113.66",
                        user_agent=agents[2],
                    )
                )
            events.append(
                SecurityEvent(
                    at=at + 1800,
                    type="excess_rate_limit_exceeded",
                    outcome="failure",
                    ip="203.0.113.66",
                    user_agent=agents[1],
                    detail={"rule": "login"},
                )
            )
    events.sort(key=lambda event: event.at)
    await container.events._store.add_many(events)


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        app = create_app(Settings(_env_file=None, data_dir=Path(data)))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            await seed(app)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=chromium_path(), args=CHROMIUM_FLAGS
                )
                page = await browser.new_page(viewport={"width": 1200, "height": 820})
                await page.goto(f"{base}/account/login")
                await page.screenshot(path=OUT / "login.png")
                await page.get_by_label("Username").fill("root")
                await page.get_by_label("Password").fill(PASSWORD)
                await page.get_by_role("button", name="Sign in", exact=True).click()
                await page.wait_for_url(f"{base}/account")
                await page.screenshot(path=OUT / "account.png", full_page=True)
                # The TOTP enrolment: the QR code and the key, before confirming.
                mfa = page.locator("section[aria-labelledby=mfa]")
                await mfa.get_by_label("Current password").fill(PASSWORD)
                await mfa.get_by_role("button", name="Set up an authenticator app").click()
                await page.get_by_role("img", name="QR code of the key below").wait_for()
                await page.locator("section[aria-labelledby=mfa]").screenshot(
                    path=OUT / "account-totp.png"
                )
                await page.goto(f"{base}/account")
                await page.goto(f"{base}/admin")
                await page.screenshot(path=OUT / "admin-overview.png", full_page=True)
                await page.goto(f"{base}/admin/events?type=authn_login_fail")
                await page.screenshot(path=OUT / "admin-events.png")
                await page.goto(f"{base}/admin/users")
                await page.screenshot(path=OUT / "admin-users.png")
                await browser.close()
        finally:
            server.should_exit = True
            await task


if __name__ == "__main__":
    asyncio.run(main())
