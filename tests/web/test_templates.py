"""The templates and static files themselves: no inline script or style
(the page CSP would block them), autoescaping on, and every template,
including those of features still to be mounted, renders."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources
from types import SimpleNamespace

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bastion.web.charts import nice_ceiling, stacked_bars
from bastion.web.site import format_time

ROOT = resources.files("bastion.web")
INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    re.compile(r"<style\b", re.I),
    re.compile(r"\sstyle\s*=", re.I),
    re.compile(r"\son[a-z]+\s*=", re.I),
    re.compile(r"javascript:", re.I),
    re.compile(r"https?://(?!www\.w3\.org/2000/svg)", re.I),
]


def template_names() -> list[str]:
    found = []
    for folder in ("", "account/", "admin/"):
        base = ROOT / "templates" / folder
        found += [f"{folder}{item.name}" for item in base.iterdir() if item.name.endswith(".html")]
    return sorted(found)


def test_no_template_or_asset_has_inline_script_style_or_a_foreign_url() -> None:
    sources = {name: (ROOT / "templates" / name).read_text() for name in template_names()}
    sources["static/favicon.svg"] = (ROOT / "static" / "favicon.svg").read_text()
    for name, source in sources.items():
        for pattern in INLINE:
            assert not pattern.search(source), (name, pattern.pattern)
    assert len(sources) >= 17


def test_every_template_renders_with_hostile_text_escaped() -> None:
    env = Environment(
        loader=PackageLoader("bastion.web", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )
    env.filters["when"] = format_time
    probe = "<script>x</script>"
    user = SimpleNamespace(
        id=1,
        username=probe,
        email=probe,
        age=30,
        permissions=(probe,),
        email_verified=False,
        created_at=datetime.now(UTC),
    )
    chart = stacked_bars(probe, [probe], ["00:00", "01:00"], [[1, 2]])
    event = SimpleNamespace(
        at=1.0e9,
        type=probe,
        outcome="failure",
        user_id=1,
        username=probe,
        ip=probe,
        user_agent=probe,
    )
    values = {
        "base": "",
        "static": "/static/bastion",
        "features": frozenset({"mfa", "sessions", "recovery"}),
        "csrf": "0" * 64,
        "viewer": SimpleNamespace(user=user, is_admin=True),
        "path": "/account",
        "user": user,
        "session": SimpleNamespace(created_at=1.0e9),
        "notice": probe,
        "error": probe,
        "errors": {"username": probe},
        "values": {"username": probe, "email": "", "age": ""},
        "min_length": 15,
        "next": "",
        "username": probe,
        "methods": ["otp", "recovery_code", "webauthn"],
        "mfa_token": probe,
        "mfa": SimpleNamespace(totp=False, passkeys=0, recovery_codes_left=0),
        "passkeys": [SimpleNamespace(id="k1", name=probe, created_at=1.0e9)],
        "enrolment": SimpleNamespace(secret=probe, qr="data:image/svg+xml;base64,PHN2Zy8+"),
        "mfa_error": probe,
        "locked_until": datetime.now(UTC),
        "recovery_codes": None,
        "sessions": [
            SimpleNamespace(
                id="s1",
                current=True,
                created_at=1.0e9,
                last_used_at=1.0e9,
                ip=probe,
                user_agent=probe,
            )
        ],
        "sent": False,
        "done": False,
        "status": 403,
        "message": probe,
        "chart": chart,
        "api_sessions": 1,
        "browser_sessions": 1,
        "since": 1.0e9,
        "q": probe,
        "users": [user],
        "next_after": probe,
        "paged": True,
        "events": [event],
        "types": [probe],
        "filters": {"type": "", "user": probe, "ip": "", "since": "", "until": ""},
        "next_query": {"user": probe},
    }
    for name in template_names():
        html = env.get_template(name).render(**values)
        assert "<script>x" not in html, name


def test_chart_scale_and_geometry() -> None:
    assert [nice_ceiling(n) for n in (0, 1, 3, 7, 10, 11, 260)] == [1, 1, 5, 10, 10, 20, 500]
    chart = stacked_bars("t", ["a", "b"], ["0", "1"], [[2, 0], [3, 1]])
    assert chart.totals == [2, 4]
    first, second, third = chart.bars
    # Stacked: b sits on a in the first bucket; the tallest stack fills the plot.
    assert first.series == 0
    assert second.series == 1
    assert abs(second.y + second.height - first.y) < 0.05
    assert third.series == 1
    assert chart.y_ticks[-1].text == "5"
