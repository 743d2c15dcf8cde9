"""``GET /users?q=&limit=``: literal, case-insensitive substring search.

The module's server holds a fixed population (created once per backend), so
each test knows exactly which usernames a term must return.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bastion.security.passwords import PasswordHasher
from bastion.storage.protocols import NewUser
from tests.conftest import GOOD_PASSWORD, RunningServer, bearer, login, make_admin

NAMED = ["a_b_c", "abxc", "ABC_upper", "xAbCx", "plain", "under_score", "Quiet_9"]
BULK = [f"bulk{i:02d}" for i in range(55)]


@dataclass(frozen=True)
class Population:
    """The module's users and two callers."""

    member: str
    admin: str


@pytest.fixture(scope="module")
async def population(shared_server: RunningServer) -> Population:
    """Create the module's users straight in the store (one hash for all of them)."""
    users = shared_server.bastion.container.users
    password_hash = PasswordHasher().hash(GOOD_PASSWORD)
    for name in NAMED + BULK:
        await users.create(
            NewUser(name, f"{name.lower()}@example.com", 30, password_hash, (), time.time())
        )
    await make_admin(shared_server, "searchadmin")
    async with httpx.AsyncClient(base_url=shared_server.base_url) as http:
        member = (await login(http, "plain"))["access_token"]
        admin = (await login(http, "searchadmin"))["access_token"]
    return Population(member=member, admin=admin)


async def search(client: httpx.AsyncClient, token: str, **params: Any) -> tuple[int, Any]:
    """``GET /users`` with ``params``; (status, JSON body)."""
    response = await client.get("/users", params=params, headers=bearer(token))
    assert response.status_code != 500, response.text
    return response.status_code, response.json()


def names(body: Any) -> set[str]:
    """The usernames of a search result."""
    return {user["username"] for user in body}


async def test_search_is_a_case_insensitive_substring_match(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    status, body = await search(shared_client, population.member, q="aBc")
    assert status == 200
    assert names(body) == {"ABC_upper", "xAbCx"}


async def test_search_matches_inside_the_name(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="nder_sc")
    assert names(body) == {"under_score"}


async def test_underscore_in_q_matches_only_an_underscore(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="_")
    assert names(body) == {"a_b_c", "ABC_upper", "under_score", "Quiet_9"}


async def test_underscore_between_letters_is_literal(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="b_c")
    assert names(body) == {"a_b_c"}


@pytest.mark.parametrize("q", ["%", "a%c", "%%", "\\", "a\\", "\\%", "\\_", "[a-z]", "*"])
async def test_wildcard_and_escape_characters_match_literally(
    shared_client: httpx.AsyncClient, population: Population, q: str
) -> None:
    # No username can contain these characters, so a literal match finds nobody.
    status, body = await search(shared_client, population.member, q=q)
    assert status == 200
    assert body == []


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "%' --",
        "' OR ''='",
        '" OR ""="',
        "'; DROP TABLE users; --",
        "a' UNION SELECT password_hash FROM users --",
        "\\' OR 1=1 --",
        "1; SELECT pg_sleep(0)",
    ],
)
async def test_sql_injection_strings_match_literally(
    shared_client: httpx.AsyncClient, population: Population, q: str
) -> None:
    status, body = await search(shared_client, population.member, q=q)
    assert status == 200
    assert body == []
    _, still_there = await search(shared_client, population.member, q="plain")
    assert names(still_there) == {"plain"}


@pytest.mark.parametrize(
    "q",
    [
        pytest.param("a\x00b", id="nul"),
        pytest.param("\u0430bc", id="cyrillic"),
        pytest.param("\U0001f600", id="emoji"),
        pytest.param("\n", id="newline"),
    ],
)
async def test_odd_characters_in_q_find_nobody(
    shared_client: httpx.AsyncClient, population: Population, q: str
) -> None:
    status, body = await search(shared_client, population.member, q=q)
    assert status == 200
    assert body == []


async def test_invalid_utf8_in_q_is_not_a_server_error(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    response = await shared_client.get("/users?q=%FF%FE", headers=bearer(population.member))
    assert response.status_code in {200, 422}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"q": ""}, id="empty"),
        pytest.param({}, id="missing"),
        pytest.param({"q": "x" * 101}, id="101-chars"),
    ],
)
async def test_bad_q_is_422(
    shared_client: httpx.AsyncClient, population: Population, params: dict[str, str]
) -> None:
    status, _ = await search(shared_client, population.member, **params)
    assert status == 422


async def test_q_of_100_characters_is_accepted(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    status, body = await search(shared_client, population.member, q="x" * 100)
    assert status == 200
    assert body == []


@pytest.mark.parametrize("limit", ["0", "51", "-1", "1.5", "ten", str(2**64)])
async def test_limit_outside_1_to_50_is_422(
    shared_client: httpx.AsyncClient, population: Population, limit: str
) -> None:
    status, _ = await search(shared_client, population.member, q="bulk", limit=limit)
    assert status == 422


async def test_limit_caps_the_results(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="bulk", limit=3)
    assert len(body) == 3
    assert names(body) <= set(BULK)


async def test_search_returns_at_most_50_by_default(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="bulk")
    assert len(body) == 50
    assert names(body) <= set(BULK)


async def test_limit_50_returns_50(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="u", limit=50)
    assert len(body) == 50


async def test_search_hides_other_users_email_from_a_member(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="a_b_c")
    assert len(body) == 1
    assert "email" not in body[0]
    assert "password" not in str(body)


async def test_search_shows_the_callers_own_email(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.member, q="plain")
    assert [user["email"] for user in body] == ["plain@example.com"]


async def test_search_shows_email_to_an_admin(
    shared_client: httpx.AsyncClient, population: Population
) -> None:
    _, body = await search(shared_client, population.admin, q="a_b_c")
    assert [user["email"] for user in body] == ["a_b_c@example.com"]


async def test_search_without_token_is_401(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/users", params={"q": "a"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
