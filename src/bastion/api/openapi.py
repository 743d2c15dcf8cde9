"""The OpenAPI document as a contract: every status an operation can answer.

FastAPI documents what a route declares; most of Bastion's answers come from
elsewhere (the middleware: 413, 429, 503; the route class: 415; the router:
405; the error map: 401, 403, 404). :func:`install_openapi` adds them to the
generated document in one pass, by what each route is, so a new route gets
them without listing them itself:

- every operation: 405 (another method on the path), 503 (a backend is down
  or the hashing pool is full), 429 unless it is a probe;
- bearer-protected operations: 401 with ``WWW-Authenticate`` (RFC 6750 §3),
  and 403 when a permission is required;
- path parameters: 404; parameters or a JSON body: 422;
- methods that carry a body: 400 (framing, RFC 9112 §6.3) and 413;
  a JSON body: 415;
- the token endpoint: its 400, 429 and 503 are RFC 6749 §5.2 error objects.

It also declares the OAuth 2.0 password flow (``tokenUrl``) next to the plain
bearer scheme, so the docs' Authorize dialog can log in or take a pasted
token, and flattens FastAPI's ``anyOf [T, null]`` on query parameters (a query
string cannot carry a JSON null).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

JsonObject = dict[str, Any]

BEARER = "HTTPBearer"
PASSWORD_FLOW = "OAuth2PasswordBearer"  # noqa: S105 - a scheme name
#: Paths without the per-client rate limit (SPEC: probes are exempt).
UNLIMITED_PATHS = ("/health", "/ready")
#: Paths that touch no backend, so never answer 503.
NO_BACKEND_PATHS = ("/health",)
BODY_METHODS = frozenset({"post", "put", "patch", "delete"})

_REF = "#/components/schemas/"

ERROR_SCHEMAS: dict[str, JsonObject] = {
    "Error": {
        "title": "Error",
        "type": "object",
        "description": "A refusal: a message and, for Bastion's own errors, a stable code.",
        "required": ["detail"],
        "properties": {
            "detail": {"type": "string", "description": "What went wrong, for people."},
            "code": {"type": "string", "description": "What went wrong, for programs."},
            "request_id": {"type": "string"},
        },
    },
    "ValidationErrorItem": {
        "title": "ValidationErrorItem",
        "type": "object",
        "required": ["type", "loc", "msg"],
        "properties": {
            "type": {
                "type": "string",
                "description": "Machine-readable reason, e.g. `password_too_short`.",
            },
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": "Where: `body`, `query` or `path`, then the field.",
            },
            "msg": {"type": "string"},
        },
    },
    "ValidationErrorBody": {
        "title": "ValidationErrorBody",
        "type": "object",
        "description": "422: the input breaks a rule. Submitted values are never echoed.",
        "required": ["detail"],
        "properties": {
            "detail": {"type": "array", "items": {"$ref": _REF + "ValidationErrorItem"}},
            "code": {"type": "string"},
        },
    },
    "OAuthError": {
        "title": "OAuthError",
        "type": "object",
        "description": "RFC 6749 §5.2 error response of the token endpoint.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "string",
                "enum": [
                    "invalid_request",
                    "invalid_grant",
                    "unsupported_grant_type",
                    "invalid_client",
                    "unauthorized_client",
                    "invalid_scope",
                    "temporarily_unavailable",
                    "slow_down",
                ],
            },
            "error_description": {"type": "string"},
            "code": {"type": "string"},
        },
    },
}

_RETRY_AFTER: JsonObject = {
    "description": "Seconds to wait before retrying (RFC 9110 §10.2.3).",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
_RATE_LIMIT_HEADERS: JsonObject = {
    "Retry-After": _RETRY_AFTER,
    "RateLimit-Policy": {
        "description": "IETF draft RateLimit header fields: the policy.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "IETF draft RateLimit header fields: this client's budget.",
        "schema": {"type": "string"},
    },
}

_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, invalid, expired or revoked access token",
    403: "The token lacks a permission this operation needs",
    404: "No such resource",
    405: "Method not allowed on this path; `Allow` lists the ones it has",
    409: "Conflict with existing data",
    413: "Request body over 64 KiB",
    415: "The body is not `application/json`",
    422: "The input breaks a validation rule",
    429: "Too many requests or failed logins; retry after `Retry-After`",
    503: "A backend (database, Redis, the password-hashing pool) is unavailable; retry after "
    "`Retry-After`",
}


@dataclass(frozen=True, slots=True)
class RouteTraits:
    """What the document needs to know about a route beyond its signature.

    Attributes:
        needs_token: Whether it demands a bearer token.
        needs_permission: Whether it demands a permission (403).
    """

    needs_token: bool
    needs_permission: bool


def _error(status: int, schema: str = "Error", headers: JsonObject | None = None) -> JsonObject:
    response: JsonObject = {
        "description": _DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": _REF + schema}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _standard_errors(
    path: str, method: str, operation: JsonObject, traits: RouteTraits
) -> dict[int, JsonObject]:
    errors: dict[int, JsonObject] = {
        405: _error(405, headers={"Allow": {"required": True, "schema": {"type": "string"}}})
    }
    if not path.endswith(NO_BACKEND_PATHS):
        errors[503] = _error(503, headers={"Retry-After": _RETRY_AFTER})
    if not path.endswith(UNLIMITED_PATHS):
        errors[429] = _error(429, headers=_RATE_LIMIT_HEADERS)
    if traits.needs_token:
        challenge = {"required": True, "schema": {"type": "string"}}
        errors[401] = _error(401, headers={"WWW-Authenticate": challenge})
    if traits.needs_permission:
        errors[403] = _error(403)
    parameters = operation.get("parameters", [])
    if any(parameter.get("in") == "path" for parameter in parameters):
        errors[404] = _error(404)
    body = operation.get("requestBody", {}).get("content", {})
    if parameters or "application/json" in body:
        errors[422] = _error(422, "ValidationErrorBody")
    if method in BODY_METHODS:
        errors[400] = _error(400)
        errors[413] = _error(413)
    if "application/json" in body:
        errors[415] = _error(415)
    return errors


def document_operation(
    path: str, method: str, operation: JsonObject, traits: RouteTraits, *, token_path: str
) -> None:
    """Complete one operation's responses and security in place."""
    responses: JsonObject = operation.setdefault("responses", {})
    for status, response in _standard_errors(path, method, operation, traits).items():
        declared = responses.get(str(status))
        if declared is None:
            responses[str(status)] = response
            continue
        # A route may declare a status with only a description; the body
        # schema and headers come from here, a 422 body is always Bastion's.
        declared.setdefault("description", response["description"])
        if status == 422 or "content" not in declared:
            declared["content"] = response["content"]
        if "headers" in response:
            declared.setdefault("headers", response["headers"])
    for code, answer in responses.items():
        if code.isdigit() and int(code) >= 400 and "content" not in answer:
            answer["content"] = _error(int(code))["content"]
    if path == token_path:
        for code in ("400", "429", "503"):
            if code in responses:
                responses[code]["content"] = _error(400, "OAuthError")["content"]
    if traits.needs_token:
        operation["security"] = [{PASSWORD_FLOW: []}, {BEARER: []}]
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query":
            parameter["schema"] = _without_null(parameter.get("schema", {}))


def _without_null(schema: JsonObject) -> JsonObject:
    """``anyOf [T, {"type": "null"}]`` as ``T``, keeping title and description."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) != 1:
        return schema
    flat = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**copy.deepcopy(kept[0]), **flat}


def security_schemes(token_url: str) -> JsonObject:
    """The two ways to authorize: the password grant, or a token pasted as is."""
    return {
        PASSWORD_FLOW: {
            "type": "oauth2",
            "description": "Log in with a username and password (RFC 6749 §4.3). The "
            "client id and secret are not used.",
            "flows": {"password": {"tokenUrl": token_url, "scopes": {}}},
        },
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /auth/token",
        },
    }


def install_openapi(
    app: FastAPI,
    *,
    traits_of: Callable[[APIRoute], RouteTraits],
    token_path: str,
    password_min_length: int,
) -> None:
    """Make ``app.openapi()`` return the completed document (built once, cached).

    Args:
        app: The application whose document is completed.
        traits_of: What a route needs (token, permission).
        token_path: The token endpoint's path, also the password flow's ``tokenUrl``.
        password_min_length: The configured minimum, shown on new-password fields.
    """
    generate = app.openapi

    def openapi() -> JsonObject:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(security_schemes(token_path))
        schemas = components.setdefault("schemas", {})
        schemas.update(copy.deepcopy(ERROR_SCHEMAS))
        for context in iter_route_contexts(app.routes):
            route = context.route
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            path = context.path_format or ""
            operations = schema.get("paths", {}).get(path, {})
            traits = traits_of(route)
            for method in context.methods or ():
                operation = operations.get(method.lower())
                if operation is not None:
                    document_operation(
                        path,
                        method.lower(),
                        operation,
                        traits,
                        token_path=token_path,
                    )
        _set_password_minimum(schemas, password_min_length)
        # FastAPI's own 422 schemas are replaced by ValidationErrorBody.
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


#: Fields whose value becomes a password, so the configured minimum applies.
NEW_PASSWORD_FIELDS = {"UserCreate": "password", "PasswordChange": "new_password"}


def _set_password_minimum(schemas: JsonObject, minimum: int) -> None:
    for model, field in NEW_PASSWORD_FIELDS.items():
        properties = schemas.get(model, {}).get("properties", {})
        if field in properties:
            properties[field]["minLength"] = minimum
