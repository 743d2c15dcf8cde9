"""A bare FastAPI + HTTPBearer + PyJWT app, as a team writes one from tutorials.

Its flaws are deliberate and each is one the audit must find:

1. the signing secret is the FastAPI docs' example ``SECRET_KEY``;
2. tokens live seven days, and ``verify_exp`` is off, so expired ones pass;
3. the token is also read from a ``?token=`` query parameter;
4. login says "User not found" for unknown users and "Incorrect password"
   otherwise, and hashes only for known users (body and timing enumeration);
5. failed logins are throttled per client address taken from
   ``X-Forwarded-For`` (trusted from anyone), so a spoofed header resets it;
6. logout answers 200 and revokes nothing;
7. refresh returns a new access token and keeps the same refresh token;
8. CORS reflects any origin with credentials;
9. ``debug=True``: a garbage token raises ``DecodeError`` (only expiry and
   signature errors are caught), and the traceback goes to the client;
10. no security headers at all; 422 bodies echo the submitted password
    (FastAPI's default); uvicorn's ``server`` banner.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import bcrypt
import jwt
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

# FastAPI docs, "OAuth2 with Password (and hashing), Bearer with JWT tokens".
SECRET_KEY = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"
ALGORITHM = "HS256"
MAX_FAILURES = 5

app = FastAPI(debug=True)
app.add_middleware(
    CORSMiddleware,
    allow_origin_regex=".*",
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)
bearer = HTTPBearer(auto_error=False)
users: dict[str, dict[str, Any]] = {}
refresh_tokens: dict[str, str] = {}
failures: dict[tuple[str, str], int] = {}


class Credentials(BaseModel):
    username: str
    password: str


class Refresh(BaseModel):
    refresh_token: str


def create_token(user_id: str) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + 7 * 24 * 3600}
    return jwt.encode(claims, SECRET_KEY, algorithm=ALGORITHM)


async def current_user(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    token: str | None = Query(default=None),
) -> str:
    raw = credentials.credentials if credentials else token
    if raw is None:
        raise HTTPException(status_code=401, detail="Not authenticated")
    try:
        payload = jwt.decode(raw, SECRET_KEY, algorithms=[ALGORITHM], options={"verify_exp": False})
    except (jwt.ExpiredSignatureError, jwt.InvalidSignatureError):
        raise HTTPException(status_code=401, detail="Invalid token") from None
    return str(payload["sub"])


@app.post("/register", status_code=201)
async def register(body: Credentials) -> dict[str, str]:
    if body.username in users:
        raise HTTPException(status_code=400, detail="Username already exists")
    hashed = bcrypt.hashpw(body.password.encode()[:72], bcrypt.gensalt(rounds=10))
    users[body.username] = {"id": str(len(users) + 1), "hash": hashed}
    return {"id": users[body.username]["id"]}


@app.post("/login")
async def login(body: Credentials, request: Request) -> dict[str, str]:
    client = request.headers.get("x-forwarded-for") or (
        request.client.host if request.client else ""
    )
    key = (client, body.username)
    if failures.get(key, 0) >= MAX_FAILURES:
        raise HTTPException(status_code=429, detail="Too many attempts")
    user = users.get(body.username)
    if user is None:
        failures[key] = failures.get(key, 0) + 1
        raise HTTPException(status_code=404, detail="User not found")
    if not bcrypt.checkpw(body.password.encode()[:72], user["hash"]):
        failures[key] = failures.get(key, 0) + 1
        raise HTTPException(status_code=401, detail="Incorrect password")
    failures.pop(key, None)
    refresh = secrets.token_urlsafe(32)
    refresh_tokens[refresh] = user["id"]
    return {
        "access_token": create_token(user["id"]),
        "token_type": "bearer",
        "refresh_token": refresh,
    }


@app.post("/refresh")
async def refresh(body: Refresh) -> dict[str, str]:
    user_id = refresh_tokens.get(body.refresh_token)
    if user_id is None:
        raise HTTPException(status_code=401, detail="Invalid refresh token")
    return {"access_token": create_token(user_id), "refresh_token": body.refresh_token}


@app.post("/logout")
async def logout(user_id: str = Depends(current_user)) -> dict[str, str]:
    return {"message": "logged out"}


@app.get("/me")
async def me(user_id: str = Depends(current_user)) -> dict[str, str]:
    return {"id": user_id}
