"""SPEC "Validation" and "Passwords": what ``POST /users`` and logins accept and refuse.

Most tests share one server per backend (``shared_client``) and so use
usernames of their own (:func:`unique_name`); tests that need other settings
start their own server.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import bcrypt
import httpx
import pytest

from bastion.security.passwords import PasswordHasher
from bastion.storage.sql_users import SqlUserStore
from tests.conftest import GOOD_PASSWORD, RunningServer, ServerFactory, bearer, login, register

_names = itertools.count()


def unique_name(prefix: str = "user") -> str:
    """A username no other test in the module uses (``shared_client`` keeps state)."""
    return f"{prefix}{next(_names)}"


def new_user(username: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid registration body; keyword arguments override fields."""
    name = username or unique_name()
    return {
        "username": name,
        "email": f"{name}@example.com",
        "age": 30,
        "password": GOOD_PASSWORD,
        **fields,
    }


def error_types(response: httpx.Response) -> list[str]:
    """The machine-readable ``type`` of each entry of a 422 ``detail``."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    return [str(entry["type"]) for entry in detail]


def error_fields(response: httpx.Response) -> list[str]:
    """The last ``loc`` element (the field) of each entry of a 422 ``detail``."""
    assert response.status_code == 422, response.text
    return [str(entry["loc"][-1]) for entry in response.json()["detail"]]


async def password_grant(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """``POST /auth/token`` with the password grant, whatever the outcome."""
    return await client.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


# -- username ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("ab", id="too-short"),
        pytest.param("a" * 21, id="too-long"),
        pytest.param("", id="empty"),
        pytest.param("alice\n", id="trailing-newline"),
        pytest.param("\u0430lice", id="cyrillic-a"),
        pytest.param("\uff41lice", id="fullwidth-a"),
        pytest.param("alice\u0661", id="arabic-indic-digit"),
        pytest.param("al ice", id="inner-space"),
        pytest.param(" alice", id="leading-space"),
        pytest.param("alice-b", id="hyphen"),
        pytest.param("alice@x", id="at-sign"),
        pytest.param(12345, id="not-a-string"),
    ],
)
async def test_username_outside_the_pattern_is_422(
    shared_client: httpx.AsyncClient, username: object
) -> None:
    response = await shared_client.post("/users", json={**new_user(), "username": username})
    assert error_fields(response) == ["username"]


@pytest.mark.parametrize("length", [3, 20])
async def test_username_of_3_and_20_word_characters_is_accepted(
    shared_client: httpx.AsyncClient, length: int
) -> None:
    username = f"U_{next(_names)}".ljust(length, "9")[:length]
    response = await shared_client.post("/users", json=new_user(username))
    assert response.status_code == 201, response.text
    assert response.json()["username"] == username


async def test_username_keeps_its_case_as_registered(shared_client: httpx.AsyncClient) -> None:
    username = unique_name("MixedCase_")
    user = await register(shared_client, username)
    assert user["username"] == username


async def test_username_differing_only_in_case_is_409(shared_client: httpx.AsyncClient) -> None:
    username = unique_name("Alice")
    await register(shared_client, username)
    response = await shared_client.post(
        "/users", json=new_user(username.lower(), email=f"x{username}@example.com")
    )
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


@pytest.mark.parametrize("case", [str.lower, str.upper, str.swapcase])
async def test_login_accepts_the_username_in_any_case(
    shared_client: httpx.AsyncClient, case: Callable[[str], str]
) -> None:
    username = unique_name("Alice")
    user = await register(shared_client, username)
    tokens = await login(shared_client, case(username))
    me = await shared_client.get("/users/me", headers=bearer(tokens))
    assert me.json()["id"] == user["id"]


async def test_concurrent_registrations_of_one_username_give_exactly_one_201(
    shared_client: httpx.AsyncClient,
) -> None:
    name = unique_name("racer")
    variants = [name, name.upper(), name.capitalize(), name.swapcase().capitalize()]
    bodies = [
        new_user(variants[i % len(variants)], email=f"{name}.{i}@example.com") for i in range(24)
    ]
    responses = await asyncio.gather(*(shared_client.post("/users", json=body) for body in bodies))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 23, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"username_taken"}


# -- email ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("not-an-address", id="no-at"),
        pytest.param("@example.com", id="no-local-part"),
        pytest.param("someone@", id="no-domain"),
        pytest.param("some one@example.com", id="space"),
        pytest.param("someone@example..com", id="empty-label"),
        pytest.param("someone@example.com\n", id="trailing-newline"),
        pytest.param("", id="empty"),
        pytest.param(["a@example.com"], id="list"),
    ],
)
async def test_invalid_email_is_422(shared_client: httpx.AsyncClient, email: object) -> None:
    response = await shared_client.post("/users", json=new_user(email=email))
    assert error_fields(response) == ["email"]


def _long_email(length: int) -> str:
    # 64-character local part (the maximum), labels of at most 63 characters.
    local = "l" * 64
    tail = length - len(local) - 1 - (63 + 1 + 63 + 1) - len(".com")
    return f"{local}@{'a' * 63}.{'b' * 63}.{'c' * tail}.com"


async def test_email_over_254_characters_is_422(shared_client: httpx.AsyncClient) -> None:
    email = _long_email(255)
    assert len(email) == 255
    response = await shared_client.post("/users", json=new_user(email=email))
    assert error_fields(response) == ["email"]


async def test_email_of_254_characters_is_accepted(shared_client: httpx.AsyncClient) -> None:
    email = _long_email(254)
    assert len(email) == 254
    user = await register(shared_client, unique_name(), email=email)
    assert user["email"] == email


async def test_email_domain_is_lower_cased(shared_client: httpx.AsyncClient) -> None:
    name = unique_name("Bob")
    user = await register(shared_client, name, email=f"{name}.Smith@EXAMPLE.Org")
    assert user["email"] == f"{name}.Smith@example.org"


async def test_email_differing_only_in_case_is_409(shared_client: httpx.AsyncClient) -> None:
    name = unique_name("Bob")
    await register(shared_client, name, email=f"{name}@Example.com")
    response = await shared_client.post(
        "/users", json=new_user(email=f"{name.lower()}@example.COM")
    )
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


# -- age -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "age",
    [
        pytest.param(12, id="12"),
        pytest.param(121, id="121"),
        pytest.param(-1, id="negative"),
        pytest.param(10**30, id="huge"),
        pytest.param("13", id="string"),
        pytest.param(13.5, id="fraction"),
        pytest.param(13.0, id="float-13"),
        pytest.param(True, id="true"),
        pytest.param(None, id="null"),
    ],
)
async def test_age_that_is_not_a_strict_integer_in_13_to_120_is_422(
    shared_client: httpx.AsyncClient, age: object
) -> None:
    response = await shared_client.post("/users", json=new_user(age=age))
    assert error_fields(response) == ["age"]


@pytest.mark.parametrize("age", [13, 120])
async def test_age_13_and_120_are_accepted(shared_client: httpx.AsyncClient, age: int) -> None:
    response = await shared_client.post("/users", json=new_user(age=age))
    assert response.status_code == 201, response.text
    assert response.json()["age"] == age


# -- unknown and missing fields ------------------------------------------------------


async def test_registering_with_permissions_is_422_and_creates_nobody(
    shared_client: httpx.AsyncClient,
) -> None:
    body = new_user(permissions=["admin"])
    response = await shared_client.post("/users", json=body)
    assert error_types(response) == ["extra_forbidden"]
    assert error_fields(response) == ["permissions"]
    # The name is still free: the refused request created nothing.
    del body["permissions"]
    assert (await shared_client.post("/users", json=body)).status_code == 201


@pytest.mark.parametrize("field", ["is_admin", "id", "token_version", "password_hash"])
async def test_any_unknown_field_is_422(shared_client: httpx.AsyncClient, field: str) -> None:
    response = await shared_client.post("/users", json={**new_user(), field: 1})
    assert error_types(response) == ["extra_forbidden"]


@pytest.mark.parametrize("field", ["username", "email", "age", "password"])
async def test_missing_field_is_422(shared_client: httpx.AsyncClient, field: str) -> None:
    body = new_user()
    del body[field]
    response = await shared_client.post("/users", json=body)
    assert error_types(response) == ["missing"]
    assert error_fields(response) == [field]


# -- password rules ------------------------------------------------------------------


async def test_password_of_14_characters_is_refused_as_too_short(
    shared_client: httpx.AsyncClient,
) -> None:
    password = "Fourteen-chars"
    assert len(password) == 14
    response = await shared_client.post("/users", json=new_user(password=password))
    assert error_types(response) == ["password_too_short"]
    assert error_fields(response) == ["password"]
    assert response.json()["code"] == "password_too_short"


async def test_password_of_15_characters_is_accepted(shared_client: httpx.AsyncClient) -> None:
    password = "Fifteen-chars!!"
    assert len(password) == 15
    name = unique_name()
    await register(shared_client, name, password=password)
    await login(shared_client, name, password)


async def test_password_length_counts_code_points_not_bytes(
    shared_client: httpx.AsyncClient,
) -> None:
    password = "\U0001f510\U0001f511\U0001f30d\U0001f680\U0001f9ea" * 3  # 15 emoji, 60 bytes
    assert len(password) == 15
    name = unique_name()
    await register(shared_client, name, password=password)
    await login(shared_client, name, password)


async def test_password_of_14_emoji_is_too_short_despite_56_bytes(
    shared_client: httpx.AsyncClient,
) -> None:
    password = "\U0001f510" * 14
    assert len(password.encode()) == 56
    response = await shared_client.post("/users", json=new_user(password=password))
    assert error_types(response) == ["password_too_short"]


async def test_password_of_1024_characters_is_accepted(shared_client: httpx.AsyncClient) -> None:
    password = ("long-passphrase " * 64)[:1024]
    name = unique_name()
    await register(shared_client, name, password=password)
    await login(shared_client, name, password)


async def test_password_of_1025_characters_is_refused_as_too_long(
    shared_client: httpx.AsyncClient,
) -> None:
    password = ("long-passphrase " * 65)[:1025]
    response = await shared_client.post("/users", json=new_user(password=password))
    assert error_types(response) == ["password_too_long"]
    assert password not in response.text


async def test_password_is_not_trimmed(shared_client: httpx.AsyncClient) -> None:
    password = "  " + GOOD_PASSWORD + "  "
    name = unique_name()
    await register(shared_client, name, password=password)
    await login(shared_client, name, password)
    refused = await password_grant(shared_client, name, GOOD_PASSWORD)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_spaces_count_towards_the_minimum_length(shared_client: httpx.AsyncClient) -> None:
    password = "  eleven-char  "  # 15 with its spaces, 11 without
    assert len(password) == 15
    name = unique_name()
    await register(shared_client, name, password=password)
    await login(shared_client, name, password)


@pytest.mark.parametrize(
    ("registered", "typed"),
    [
        pytest.param(
            "\uff43\uff4f\uff52\uff52\uff45\uff43\uff54 horse battery",
            "correct horse battery",
            id="fullwidth-then-ascii",
        ),
        pytest.param(
            "correct horse battery",
            "\uff43\uff4f\uff52\uff52\uff45\uff43\uff54 horse battery",
            id="ascii-then-fullwidth",
        ),
        pytest.param(
            "cafe\u0301 au lait, s'il vous pla\u00eet",
            "caf\u00e9 au lait, s'il vous pla\u00eet",
            id="decomposed-then-composed",
        ),
        pytest.param(
            "\u2460\u2461\u2462 unicode passphrase",
            "123 unicode passphrase",
            id="circled-digits",
        ),
    ],
)
async def test_password_is_nfkc_normalised_before_hashing(
    shared_client: httpx.AsyncClient, registered: str, typed: str
) -> None:
    name = unique_name()
    await register(shared_client, name, password=registered)
    await login(shared_client, name, typed)


async def test_long_common_password_is_refused(shared_client: httpx.AsyncClient) -> None:
    password = "1qaz2wsx3edc4rfv"  # in the shipped list, 16 characters
    response = await shared_client.post("/users", json=new_user(password=password))
    assert error_types(response) == ["password_too_common"]
    assert response.json()["code"] == "password_too_common"


async def test_common_passwords_are_refused_with_min_length_8(
    start_server: ServerFactory,
) -> None:
    server = await start_server(password_min_length=8)
    fullwidth = "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13\uff14"
    # Entries of the shipped list, also in another case and in NFKC-equivalent form.
    for password in ["password1234", "iloveyou", "PassWord1234", fullwidth]:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            response = await http.post("/users", json=new_user(password=password))
        assert error_types(response) == ["password_too_common"], password
        assert password not in response.text


async def test_min_length_setting_lowers_the_minimum(start_server: ServerFactory) -> None:
    server = await start_server(password_min_length=8)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        short = await http.post("/users", json=new_user(password="Seven-7"))
        await register(http, "heidi", password="Eight-88")
    assert error_types(short) == ["password_too_short"]


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("my name is alice, hello", id="same-case"),
        pytest.param("xx ALICE correct horse", id="other-case"),
        pytest.param("xx \uff41\uff4c\uff49\uff43\uff45 correct horse", id="fullwidth"),
    ],
)
async def test_password_containing_the_username_is_refused(
    shared_client: httpx.AsyncClient, password: str
) -> None:
    response = await shared_client.post(
        "/users", json=new_user("alice", email="alice.c@example.com", password=password)
    )
    assert error_types(response) == ["password_contains_username"]
    assert password not in response.text


# -- a 422 never echoes a password ---------------------------------------------------

SECRET = "Echo-Canary-Secret-0042"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(new_user(password=SECRET, age="13"), id="bad-age"),
        pytest.param(new_user(password=SECRET, username="no spaces"), id="bad-username"),
        pytest.param(new_user(password=SECRET, email="nope"), id="bad-email"),
        pytest.param(new_user(password=SECRET, permissions=["admin"]), id="extra-field"),
        pytest.param(new_user(password=SECRET + "x" * 5000), id="over-schema-limit"),
        pytest.param(new_user(password=[SECRET]), id="password-list"),
        pytest.param(new_user(password={"value": SECRET}), id="password-object"),
        pytest.param(new_user(password=SECRET[:10]), id="too-short"),
        pytest.param(new_user("echo", password=SECRET + " echo"), id="contains-username"),
    ],
)
async def test_registration_422_never_echoes_the_password(
    shared_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await shared_client.post("/users", json=body)
    assert response.status_code == 422
    assert SECRET[:10] not in response.text


async def test_malformed_json_422_never_echoes_the_password(
    shared_client: httpx.AsyncClient,
) -> None:
    raw = '{"username": "zed", "password": "' + SECRET + '", "age": 3x}'
    response = await shared_client.post(
        "/users", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert SECRET not in response.text


async def test_password_change_422_never_echoes_either_password(
    shared_client: httpx.AsyncClient,
) -> None:
    name = unique_name()
    await register(shared_client, name)
    tokens = await login(shared_client, name)
    response = await shared_client.post(
        "/users/me/password",
        json={"current_password": GOOD_PASSWORD, "new_password": SECRET[:12]},
        headers=bearer(tokens),
    )
    assert error_types(response) == ["password_too_short"]
    assert error_fields(response) == ["new_password"]
    assert SECRET[:12] not in response.text
    assert GOOD_PASSWORD not in response.text


# -- hashing -------------------------------------------------------------------------


async def test_bcrypt_counts_every_byte_past_72(start_server: ServerFactory) -> None:
    server = await start_server(password_hasher="bcrypt")
    password = "b" * 72 + "-first-tail"
    twin = "b" * 72 + "-other-tail"
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await register(http, "judy", password=password)
        await login(http, "judy", password)
        refused = await password_grant(http, "judy", twin)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


async def test_bcrypt_setting_stores_cost_12_bcrypt_hashes(start_server: ServerFactory) -> None:
    server = await start_server(password_hasher="bcrypt")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        user = await register(http, "kate")
    stored = await server.bastion.container.users.get(user["id"])
    assert stored is not None
    assert "$2b$12$" in stored.password_hash


def _outdated_hash(kind: str) -> str:
    if kind == "plain-bcrypt":
        return bcrypt.hashpw(GOOD_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    if kind == "bastion-bcrypt":
        return PasswordHasher("bcrypt", bcrypt_rounds=4).hash(GOOD_PASSWORD)
    return PasswordHasher("argon2", argon2_memory_kib=8 * 1024, argon2_time_cost=1).hash(
        GOOD_PASSWORD
    )


async def plant_hash(users: SqlUserStore, user_id: int, password_hash: str) -> None:
    """Replace a user's hash behind the service's back (an imported account)."""
    stored = await users.get(user_id)
    assert stored is not None
    assert await users.upgrade_hash(user_id, stored.password_hash, password_hash)


@pytest.mark.parametrize("kind", ["plain-bcrypt", "bastion-bcrypt", "weak-argon2"])
async def test_outdated_hash_is_upgraded_at_next_login(
    shared_server: RunningServer, shared_client: httpx.AsyncClient, kind: str
) -> None:
    users = shared_server.bastion.container.users
    name = unique_name()
    user = await register(shared_client, name)
    await plant_hash(users, user["id"], _outdated_hash(kind))
    await login(shared_client, name)
    stored = await users.get(user["id"])
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PasswordHasher().needs_rehash(stored.password_hash) is False
    await login(shared_client, name)  # the new hash is of the same password


async def test_failed_login_leaves_an_outdated_hash_alone(
    shared_server: RunningServer, shared_client: httpx.AsyncClient
) -> None:
    users = shared_server.bastion.container.users
    name = unique_name()
    user = await register(shared_client, name)
    old = _outdated_hash("plain-bcrypt")
    await plant_hash(users, user["id"], old)
    refused = await password_grant(shared_client, name, GOOD_PASSWORD + "!")
    assert refused.status_code == 400
    stored = await users.get(user["id"])
    assert stored is not None
    assert stored.password_hash == old


# -- no user enumeration -------------------------------------------------------------

_VARYING_HEADERS = {"x-request-id", "date"}


async def test_unknown_user_and_wrong_password_get_identical_answers(
    shared_client: httpx.AsyncClient,
) -> None:
    name = unique_name()
    await register(shared_client, name)
    wrong = await password_grant(shared_client, name, GOOD_PASSWORD + "?")
    unknown = await password_grant(shared_client, unique_name("nobody"), GOOD_PASSWORD + "?")
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.content == unknown.content
    assert {k: v for k, v in wrong.headers.items() if k not in _VARYING_HEADERS} == {
        k: v for k, v in unknown.headers.items() if k not in _VARYING_HEADERS
    }
