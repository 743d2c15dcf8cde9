"""Find the authentication routes from the target's OpenAPI document.

FastAPI (and most frameworks with an OpenAPI generator) publish the OAuth2
password flow's ``tokenUrl`` and every route's request schema, which is
enough to know how to log in, register, refresh, log out and ask "who am I".
Where a document is missing or says too little, the operator names the
routes (``--token-path`` and friends) and those win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

_LOGIN = re.compile(r"^(login|token|signin|sign-in|sign_in|authenticate|jwt)$", re.I)
_REGISTER = re.compile(r"^(register|signup|sign-up|sign_up|users|accounts)$", re.I)
_REFRESH = re.compile(r"refresh", re.I)
_LOGOUT = re.compile(r"^(logout|log-out|signout|sign-out|sign_out|revoke)$", re.I)
#: "Who am I" route names, best first.
_ME = ("me", "whoami", "profile", "user", "protected")
_USERNAME_FIELDS = ("username", "email", "login", "user", "name")


@dataclass(frozen=True)
class LoginRoute:
    """How to exchange a password for a token.

    Attributes:
        path: Route path.
        form: Form-encoded (OAuth2, RFC 6749 §4.3) rather than JSON.
        username_field: Field carrying the username or email.
        password_field: Field carrying the password.
        grant_type: Send ``grant_type=password`` (OAuth2 token endpoints).
        refresh_grant: The endpoint also takes ``grant_type=refresh_token``.
    """

    path: str
    form: bool = True
    username_field: str = "username"
    password_field: str = "password"  # noqa: S105 - a field name
    grant_type: bool = True
    refresh_grant: bool = False


@dataclass(frozen=True)
class RegisterRoute:
    """How to create an account: the JSON fields and which are required."""

    path: str
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RefreshRoute:
    """A refresh route of its own (JSON body) or the token endpoint's grant."""

    path: str
    field_name: str = "refresh_token"
    grant: bool = False
    form: bool = False


@dataclass(frozen=True)
class Routes:
    """The authentication routes of the target, as far as they are known."""

    login: LoginRoute | None = None
    register: RegisterRoute | None = None
    refresh: RefreshRoute | None = None
    logout: str | None = None
    me: str | None = None
    openapi: bool = False


def _last_segment(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    return parts[-1] if parts else ""


class _Doc:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        paths = doc.get("paths")
        self.paths: dict[str, Any] = paths if isinstance(paths, dict) else {}

    def resolve(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        if not isinstance(schema, dict) or depth > 8:
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node: Any = self.doc
            for part in ref[2:].split("/"):
                node = node.get(part) if isinstance(node, dict) else None
            return self.resolve(node, depth + 1)
        for combo in ("allOf", "anyOf", "oneOf"):
            if isinstance(schema.get(combo), list):
                merged: dict[str, Any] = {"properties": {}, "required": []}
                for part in schema[combo]:
                    sub = self.resolve(part, depth + 1)
                    merged["properties"].update(sub.get("properties", {}))
                    merged["required"] += sub.get("required", [])
                return merged
        return schema

    def operations(self, method: str) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for path, item in self.paths.items():
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                found.append((path, item[method]))
        return found

    def body(self, operation: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        content = (operation.get("requestBody") or {}).get("content") or {}
        for media in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if media in content:
                return "form", self.resolve(content[media].get("schema"))
        if "application/json" in content:
            return "json", self.resolve(content["application/json"].get("schema"))
        return None, {}

    def token_urls(self) -> list[str]:
        schemes = (self.doc.get("components") or {}).get("securitySchemes") or {}
        urls = []
        for scheme in schemes.values() if isinstance(schemes, dict) else []:
            flows = scheme.get("flows") if isinstance(scheme, dict) else None
            password = flows.get("password") if isinstance(flows, dict) else None
            if isinstance(password, dict) and isinstance(password.get("tokenUrl"), str):
                urls.append(password["tokenUrl"])
        return urls


def _relative(url: str, base_path: str) -> str:
    path = urlsplit(url).path or url
    if not path.startswith("/"):
        path = "/" + path
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path) :]
    return path


def _login_route(doc: _Doc, base_path: str) -> LoginRoute | None:
    candidates = [_relative(u, base_path) for u in doc.token_urls()]
    candidates += [p for p, _ in doc.operations("post") if _LOGIN.match(_last_segment(p))]
    for path in candidates:
        operation = (doc.paths.get(path) or {}).get("post")
        if not isinstance(operation, dict):
            continue
        encoding, schema = doc.body(operation)
        props = schema.get("properties") or {}
        user_field = next((f for f in _USERNAME_FIELDS if f in props), "username")
        return LoginRoute(
            path=path,
            form=encoding != "json",
            username_field=user_field,
            password_field="password",  # noqa: S106 - a field name
            grant_type=encoding != "json" and "grant_type" in props,
            refresh_grant="refresh_token" in props,
        )
    return None


def _register_route(doc: _Doc) -> RegisterRoute | None:
    for path, operation in doc.operations("post"):
        if not _REGISTER.match(_last_segment(path)) or "{" in path:
            continue
        encoding, schema = doc.body(operation)
        props = schema.get("properties") or {}
        if encoding == "json" and "password" in props:
            required = frozenset(r for r in schema.get("required", []) if isinstance(r, str))
            return RegisterRoute(path, {k: doc.resolve(v) for k, v in props.items()}, required)
    return None


def _refresh_route(doc: _Doc, login: LoginRoute | None) -> RefreshRoute | None:
    for path, operation in doc.operations("post"):
        if _REFRESH.search(_last_segment(path)):
            encoding, schema = doc.body(operation)
            props = schema.get("properties") or {}
            name = next((p for p in props if "refresh" in p.lower()), "refresh_token")
            return RefreshRoute(path, name, grant=False, form=encoding == "form")
    if login is not None and login.refresh_grant:
        return RefreshRoute(login.path, "refresh_token", grant=True, form=True)
    return None


def _logout_route(doc: _Doc) -> str | None:
    for method in ("post", "delete", "get"):
        for path, _ in doc.operations(method):
            if _LOGOUT.match(_last_segment(path)) and "{" not in path:
                return path
    return None


def _me_route(doc: _Doc) -> str | None:
    gets = [(p, op) for p, op in doc.operations("get") if "{" not in p]
    for name in _ME:
        for path, _ in gets:
            if _last_segment(path).lower() == name:
                return path
    for path, operation in gets:
        if operation.get("security"):
            return path
    return None


def routes_from_openapi(doc: Any, base_path: str = "") -> Routes:
    """The routes an OpenAPI 3 document describes (empty when it is not one)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        return Routes()
    parsed = _Doc(doc)
    login = _login_route(parsed, base_path)
    return Routes(
        login=login,
        register=_register_route(parsed),
        refresh=_refresh_route(parsed, login),
        logout=_logout_route(parsed),
        me=_me_route(parsed),
        openapi=True,
    )


@dataclass(frozen=True)
class RouteOverrides:
    """Routes named on the command line; each replaces what discovery found."""

    token: str | None = None
    token_json: bool | None = None
    register: str | None = None
    refresh: str | None = None
    logout: str | None = None
    me: str | None = None


def apply_overrides(routes: Routes, given: RouteOverrides) -> Routes:
    """``routes`` with the operator's choices taking precedence."""
    login = routes.login
    if given.token:
        form = not given.token_json if given.token_json is not None else True
        login = LoginRoute(given.token, form=form, grant_type=form)
    elif login is not None and given.token_json is not None:
        login = replace(login, form=not given.token_json, grant_type=not given.token_json)
    register = RegisterRoute(given.register) if given.register else routes.register
    refresh = RefreshRoute(given.refresh) if given.refresh else routes.refresh
    return Routes(
        login=login,
        register=register,
        refresh=refresh,
        logout=given.logout or routes.logout,
        me=given.me or routes.me,
        openapi=routes.openapi,
    )
