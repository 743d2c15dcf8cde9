"""The OpenAPI document tells the truth, and the server keeps to it.

Issue 16: statuses answered by the middleware, the router and the error map
are documented with their bodies; request schemas carry the real rules; 405
answers list every allowed method; ``DELETE /users/me`` is a 405; non-UTF-8
JSON is malformed JSON (422); ``since``/``until`` are strict ISO 8601.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bastion import Settings, create_app
from bastion.api.schemas import PasswordChange, PermissionsUpdate, UserCreate
from bastion.services.events import EVENT_TYPES
from tests.conftest import RunningServer, bearer, login, make_admin

JSON = {"Content-Type": "application/json"}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
async def document() -> AsyncIterator[dict[str, Any]]:
    """The service's OpenAPI document (built without starting the service)."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(_env_file=None, data_dir=data_dir, password_min_length=12))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as http:
            response = await http.get("/openapi.json")
        assert response.status_code == 200
        yield response.json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) of every operation."""
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema."""
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


# -- the document --------------------------------------------------------------------


def test_every_error_status_is_documented_with_a_json_body(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert "$ref" in schema, (method, path, status)


def test_every_operation_documents_405_and_all_but_health_503(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert responses["405"]["headers"]["Allow"]["required"] is True, (method, path)
        assert ("503" in responses) is (path != "/health"), (method, path)
        assert ("429" in responses) is (path not in {"/health", "/ready"}), (method, path)


def test_503_and_429_promise_retry_after(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status in ("429", "503"):
            if status in operation["responses"]:
                headers = operation["responses"][status]["headers"]
                assert headers["Retry-After"]["required"] is True, (method, path, status)


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/users", {"400", "409", "413", "415", "422", "429", "503"}),
        ("get", "/users/me", {"401", "429", "503"}),
        ("post", "/users/me/password", {"400", "401", "413", "415", "422"}),
        ("get", "/users/{user_id}", {"401", "404", "422"}),
        ("put", "/users/{user_id}/permissions", {"401", "403", "404", "413", "415", "422"}),
        ("delete", "/users/{user_id}", {"401", "403", "404"}),
        ("get", "/events", {"401", "403", "422"}),
        ("post", "/auth/token", {"400", "413", "429", "503"}),
    ],
)
def test_the_statuses_each_route_can_answer_are_documented(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    assert statuses <= set(document["paths"][path][method]["responses"])


def test_token_endpoint_errors_are_rfc_6749_objects(document: dict[str, Any]) -> None:
    responses = document["paths"]["/auth/token"]["post"]["responses"]
    for status in ("400", "429", "503"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/OAuthError"), status
    assert "error" in schema_of(document, "OAuthError")["required"]


def test_validation_errors_have_one_documented_shape(document: dict[str, Any]) -> None:
    body = document["paths"]["/users"]["post"]["responses"]["422"]["content"]
    assert body["application/json"]["schema"]["$ref"].endswith("/ValidationErrorBody")
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_registration_schema_carries_the_real_rules(document: dict[str, Any]) -> None:
    properties = schema_of(document, "UserCreate")["properties"]
    assert properties["username"]["pattern"] == "^[A-Za-z0-9_]{3,20}$"
    assert properties["email"]["format"] == "email"
    assert properties["email"]["maxLength"] == 254
    assert (properties["age"]["minimum"], properties["age"]["maximum"]) == (13, 120)
    # The configured minimum (12 here) and the policy's maximum.
    assert (properties["password"]["minLength"], properties["password"]["maxLength"]) == (12, 1024)
    assert schema_of(document, "UserCreate")["additionalProperties"] is False


def test_new_password_carries_the_policy_lengths(document: dict[str, Any]) -> None:
    properties = schema_of(document, "PasswordChange")["properties"]
    assert properties["new_password"]["minLength"] == 12
    assert properties["new_password"]["maxLength"] == 1024
    assert "minLength" not in properties["current_password"]


def test_permission_schema_carries_name_rules_and_bounds(document: dict[str, Any]) -> None:
    permissions = schema_of(document, "PermissionsUpdate")["properties"]["permissions"]
    assert permissions["maxItems"] == 50
    assert permissions["items"]["maxLength"] == 64
    assert permissions["items"]["pattern"] == "^[A-Za-z0-9_.:-]{1,64}$"


def test_event_type_filter_lists_the_event_types(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/events"]["get"]["parameters"]}
    assert set(parameters["type"]["schema"]["enum"]) == set(EVENT_TYPES)
    assert parameters["since"]["schema"]["format"] == "date-time"
    # A query string cannot carry a JSON null: no `anyOf [.., null]`.
    assert all("anyOf" not in parameter["schema"] for parameter in parameters.values())


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("UserCreate", UserCreate),
        ("PasswordChange", PasswordChange),
        ("PermissionsUpdate", PermissionsUpdate),
    ],
)
def test_each_json_request_body_has_an_example_that_validates(
    document: dict[str, Any],
    name: str,
    model: type[UserCreate | PasswordChange | PermissionsUpdate],
) -> None:
    examples = schema_of(document, name)["examples"]
    assert examples
    for example in examples:
        model.model_validate(example)


def test_token_request_has_an_example(document: dict[str, Any]) -> None:
    content = document["paths"]["/auth/token"]["post"]["requestBody"]["content"]
    form = content["application/x-www-form-urlencoded"]
    assert form["example"]["grant_type"] == "password"


def test_authorize_offers_the_password_grant_and_a_pasted_token(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    security = document["paths"]["/users/me"]["get"]["security"]
    assert {"OAuth2PasswordBearer": []} in security
    assert {"HTTPBearer": []} in security


# -- the server keeps to it -----------------------------------------------------------


@pytest.fixture(scope="module")
async def admin_token(shared_server: RunningServer) -> str:
    """An admin's access token on the module's server."""
    admin = await make_admin(shared_server, "contractadmin")
    async with httpx.AsyncClient(base_url=shared_server.base_url) as http:
        return str((await login(http, admin["username"]))["access_token"])


async def test_options_on_users_allows_both_get_and_post(
    shared_client: httpx.AsyncClient,
) -> None:
    response = await shared_client.options("/users")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_405_lists_every_method_of_a_parameterised_path(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await shared_client.patch("/users/1", headers=bearer(admin_token))
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "POST"])
async def test_undeclared_methods_on_users_me_are_405(
    shared_client: httpx.AsyncClient, admin_token: str, method: str
) -> None:
    response = await shared_client.request(method, "/users/me", headers=bearer(admin_token))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "GET"


async def test_a_malformed_user_id_is_still_422(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await shared_client.delete("/users/abc", headers=bearer(admin_token))
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [b'{"username": "\xff\xfe"}', b"\xef\xbb\xbf\xff", '{"a": 1}'.encode("utf-16")],
    ids=["invalid-utf8", "bom-then-garbage", "utf-16"],
)
async def test_a_json_body_that_is_not_utf8_is_422_like_malformed_json(
    shared_client: httpx.AsyncClient, body: bytes
) -> None:
    response = await shared_client.post("/users", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_a_permissions_body_that_is_not_utf8_is_422(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await shared_client.put(
        "/users/1/permissions",
        content=b'{"permissions": ["\xc3"]}',
        headers={**JSON, **bearer(admin_token)},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "value", ["0.5", "1700000000", "2026-13-01", "2026-01-01T25:00:00Z", "yesterday", "2026-1-1"]
)
async def test_events_time_bounds_that_are_not_iso_8601_are_422(
    shared_client: httpx.AsyncClient, admin_token: str, value: str
) -> None:
    for name in ("since", "until"):
        response = await shared_client.get(
            "/events", params={name: value}, headers=bearer(admin_token)
        )
        assert response.status_code == 422, (name, value, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", name]


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-31T12:00:00Z",
        "2026-01-31t12:00:00z",
        "2026-01-31T12:00:00.123456789+02:00",
        "2026-01-31T12:00:00",
        "2026-01-31 12:00",
        "2026-01-31",
        "2016-12-31T23:59:60Z",
    ],
)
async def test_events_accept_iso_8601_time_bounds(
    shared_client: httpx.AsyncClient, admin_token: str, value: str
) -> None:
    response = await shared_client.get(
        "/events",
        params={"since": value, "until": "2100-01-01T00:00:00Z"},
        headers=bearer(admin_token),
    )
    assert response.status_code == 200, response.text


async def test_since_filters_by_the_instant_named(
    shared_client: httpx.AsyncClient, admin_token: str
) -> None:
    # Every event of this server is older than the year 2100 and newer than 2000.
    future = await shared_client.get(
        "/events", params={"since": "2100-01-01T00:00:00+01:00"}, headers=bearer(admin_token)
    )
    past = await shared_client.get(
        "/events", params={"since": "2000-01-01"}, headers=bearer(admin_token)
    )
    assert future.json()["events"] == []
    assert past.json()["events"]
