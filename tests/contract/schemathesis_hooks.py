"""Schemathesis hooks of the contract run (loaded through ``SCHEMATHESIS_HOOKS``).

Three jobs:

- authenticate as the run's admin and keep it alive, so that every
  operation is exercised with a working token to the end: requests that would
  end the admin's session, delete it or strip its permission are pointed
  elsewhere (:class:`AdminBearer`, :func:`before_call`);
- count every answer by status, for the summary the test prints;
- drop the named false positives below, each one a rule that a JSON Schema
  cannot state. Every other failure fails the run.

Settings come from the environment, set by ``test_schemathesis.py``.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from typing import Any

import httpx
import schemathesis

BASE_URL = os.environ.get("BASTION_ST_BASE_URL", "")
ADMIN = os.environ.get("BASTION_ST_ADMIN", "")
ADMIN_PASSWORD = os.environ.get("BASTION_ST_ADMIN_PASSWORD", "")
ADMIN_ID = int(os.environ.get("BASTION_ST_ADMIN_ID", "0") or 0)
STATS_PATH = os.environ.get("BASTION_ST_STATS", "")
#: An id no user has: admin-ending requests are sent there instead (404).
ELSEWHERE = 2**62

#: Validation codes of rules no schema can express: a password "not among
#: 30,000 common ones" and "not containing the username" (another field).
POLICY_ONLY_CODES = frozenset({"password_too_common", "password_contains_username"})

#: Codes of 400 answers that depend on the account's state or secrets, never
#: on the shape of the request (see false positive 5).
STATE_CODES = frozenset(
    {
        "wrong_password",
        "invalid_code",
        "invalid_token",
        "invalid_grant",
        "invalid_credential",
        "totp_not_pending",
        "totp_not_enabled",
        "mfa_not_enabled",
    }
)

_lock = threading.Lock()
_statuses: Counter[str] = Counter()
_by_operation: dict[str, Counter[str]] = {}


def _fresh_admin_token() -> str:
    """A new session of the admin, logged in from another loopback address.

    127.0.0.2 is a different client to Bastion's limiter and throttle, so the
    run's own failed logins from 127.0.0.1 never hold this one back.
    """
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=BASE_URL, transport=transport, timeout=30) as http:
        response = http.post(
            "/auth/token",
            data={"grant_type": "password", "username": ADMIN, "password": ADMIN_PASSWORD},
        )
    response.raise_for_status()
    return str(response.json()["access_token"])


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Point requests that would end the run's admin somewhere harmless."""
    method = case.method.upper()
    parameters = case.path_parameters or {}
    if (
        method in {"DELETE", "PUT"}
        and str(parameters.get("user_id")) == str(ADMIN_ID)
        and case.path in {"/users/{user_id}", "/users/{user_id}/permissions"}
    ):
        # Deleting or demoting the admin would turn every later request into
        # a 401; the same request on a user that does not exist still tests
        # the route (authorization, validation, 404).
        case.path_parameters = {**parameters, "user_id": ELSEWHERE}


@schemathesis.auth()
class AdminBearer:
    """The admin's access token on every request (renewed every 5 minutes).

    ``POST /auth/logout`` gets a session of its own: logout must really end
    the session it is called with, and the run's must survive it.
    """

    def get(self, case: Any, context: Any) -> str:
        """Log the admin in."""
        return _fresh_admin_token()

    def set(self, case: Any, data: str, context: Any) -> None:
        """Put the token on the case."""
        logout = case.method.upper() == "POST" and case.path == "/auth/logout"
        token = _fresh_admin_token() if logout else data
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Count answers by status and operation; rewrite the stats file."""
    status = str(response.status_code)
    label = f"{case.method.upper()} {case.path}"
    if os.environ.get("CONTRACT_LOG"):
        with open(os.environ["CONTRACT_LOG"], "a", encoding="utf-8") as log:
            auth = (response.request.headers.get("Authorization") or "")[-12:]
            log.write(f"{label} {case.path_parameters} {status} {auth} {response.request.url}\n")
    with _lock:
        _statuses[status] += 1
        _by_operation.setdefault(label, Counter())[status] += 1
        if STATS_PATH:
            snapshot = {
                "statuses": dict(sorted(_statuses.items())),
                "operations": {
                    op: dict(sorted(c.items())) for op, c in sorted(_by_operation.items())
                },
            }
            with open(STATS_PATH, "w", encoding="utf-8") as stats:
                json.dump(snapshot, stats)


def _validation_items(response: Any) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return []
    return [item for item in detail if isinstance(item, dict)]


def _answer_code(response: Any) -> str | None:
    """Bastion's ``code`` (or the RFC 6749 ``error``) of a JSON answer."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code") or body.get("error")
    return code if isinstance(code, str) else None


def _integral_floats(value: Any) -> bool:
    """Whether a JSON body holds a number like ``36.0`` where an integer goes."""
    if isinstance(value, dict):
        return any(_integral_floats(item) for item in value.values())
    if isinstance(value, list):
        return any(_integral_floats(item) for item in value)
    return isinstance(value, float) and value.is_integer()


def _explained(item: dict[str, Any], case: Any) -> bool:
    """Whether one 422 reason is a rule the document cannot state."""
    kind, where = item.get("type"), (item.get("loc") or [None])[-1]
    if kind in POLICY_ONLY_CODES:
        # 1. The password policy: not among 30,000 common passwords, not
        #    containing the username (another field).
        return True
    if kind == "int_type" and _integral_floats(case.body):
        # 2. JSON Schema counts 36.0 as an integer; SPEC wants a strict
        #    integer age (13.5, true and 13.0 alike are 422).
        return True
    if where in ("email", "new_email") and kind == "value_error":
        # 3. format "email" admits addresses email-validator refuses
        #    (special-use domains such as .test or .local, quoted local
        #    parts): SPEC demands a "valid address (email-validator)".
        return True
    # 4. The events cursor is opaque: only a value this API returned is one.
    return kind == "invalid_cursor"


def is_false_positive(code: str, case: Any, response: Any) -> bool:
    """The named false positives of ``positive_data_acceptance`` (ST202)."""
    if code != "ST202":  # "Schema-valid request rejected"
        return False
    if response.status_code == 400 and _answer_code(response) in STATE_CODES:
        # 5. A well-formed body that the account's state refuses: the wrong
        #    current password, a code or one-time token that is not the one
        #    issued, a passkey or enrolment the server never began. The
        #    schema cannot know the caller's secrets or what was issued.
        return True
    items = _validation_items(response)
    return response.status_code == 422 and bool(items) and all(_explained(i, case) for i in items)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the named false positives."""
    return not is_false_positive(str(getattr(failure, "code", "")), case, response)
