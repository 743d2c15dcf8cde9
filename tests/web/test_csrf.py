"""Forged posts are refused: the CSRF token and the Origin check each stop one."""

from __future__ import annotations

import pytest

from bastion.web.guard import same_origin
from tests.conftest import GOOD_PASSWORD, RunningServer, register
from tests.web.conftest import PageClient, csrf_of


async def signed_in(pages: PageClient) -> str:
    await register(pages.http, "alice")
    await pages.sign_in("alice")
    return csrf_of((await pages.get("/account")).text)


async def still_signed_in(pages: PageClient) -> bool:
    return (await pages.get("/account")).status_code == 200


async def test_a_post_without_the_token_is_refused(
    server: RunningServer, pages: PageClient
) -> None:
    await signed_in(pages)
    response = await pages.post("/account/logout", {})
    assert response.status_code == 403
    assert await still_signed_in(pages)


async def test_a_wrong_token_is_refused(server: RunningServer, pages: PageClient) -> None:
    await signed_in(pages)
    response = await pages.post("/account/logout", {"csrf": "0" * 64})
    assert response.status_code == 403
    assert await still_signed_in(pages)


async def test_the_token_of_another_session_is_refused(
    server: RunningServer, pages: PageClient
) -> None:
    token = await signed_in(pages)
    await pages.sign_in("alice")  # a new session: a new token
    response = await pages.post("/account/logout", {"csrf": token})
    assert response.status_code == 403


async def test_an_anonymous_form_needs_its_cookie_bound_token(
    server: RunningServer, pages: PageClient
) -> None:
    await register(pages.http, "alice")
    page = await pages.get("/account/login")
    token = csrf_of(page.text)
    pages.cookies.clear()  # the attacker's browser has no cookie of the victim
    response = await pages.post(
        "/account/login", {"username": "alice", "password": GOOD_PASSWORD, "csrf": token}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_a_foreign_origin_is_refused_even_with_the_right_token(
    server: RunningServer, pages: PageClient, headers: dict[str, str]
) -> None:
    token = await signed_in(pages)
    response = await pages.post(
        "/account/logout", {"csrf": token}, headers=headers, same_origin=False
    )
    assert response.status_code == 403
    assert await still_signed_in(pages)


async def test_origin_null_with_same_origin_fetch_metadata_is_accepted(
    server: RunningServer, pages: PageClient
) -> None:
    # Chromium's same-origin form post under Referrer-Policy: no-referrer.
    token = await signed_in(pages)
    response = await pages.post(
        "/account/logout",
        {"csrf": token},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        same_origin=False,
    )
    assert response.status_code == 303
    assert not await still_signed_in(pages)


def test_origin_rules() -> None:
    host = {"host": "bastion.test:8000"}
    assert same_origin({**host, "origin": "http://bastion.test:8000"})
    assert same_origin({**host, "origin": "https://BASTION.test:8000"})
    assert not same_origin({**host, "origin": "http://bastion.test:8001"})
    assert not same_origin({**host, "origin": "http://bastion.test:8000.evil"})
    assert not same_origin({**host, "origin": "ftp://bastion.test:8000"})
    assert not same_origin({"origin": "http://bastion.test:8000"})
    assert same_origin(host)
    assert same_origin({**host, "sec-fetch-site": "same-origin"})
    assert not same_origin({**host, "sec-fetch-site": "none"})
