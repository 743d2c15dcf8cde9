"""The blog post's "Security Best Practices" code, assembled into one app, flaws kept.

This is /work/shared/seed's post as written: its ``UserInput`` model with V1
``@validator``s, ``PasswordManager`` (bcrypt, default cost 12, through
``loop.run_in_executor(None, ...)``), ``TokenManager`` (PyJWT HS256, 30 min),
the ``HTTPBearer`` ``get_current_user`` dependency, ``GET /protected``, the
``defaultdict``-of-``deque`` ``RateLimiter`` (100 requests / 60 s per IP) and
the security-headers middleware (``X-XSS-Protection: 1; mode=block``), both
registered with ``app.middleware("http")``.

The post shows no register or login endpoint; ``POST /register`` and
``POST /login`` below are the obvious glue (an in-memory dict of users) so
that logins can be flooded. Departures from the post, all benchmark plumbing:

- the secret is generated at start-up, never the post's literal placeholder;
- ``is_username_taken`` looks in the in-memory dict instead of the post's
  ``asyncio.sleep(0.1)`` simulation (the check-then-insert race is kept);
- the limiter's default budget is read from ``BENCH_BLOG_RATE_LIMIT`` (default
  100, the post's figure) so that throughput runs can raise it the way they
  raise Bastion's: the limiter still runs on every request;
- ``GET /health`` exists so W3 can sample it.

Flaws kept on purpose (they are what the benchmark compares against): the
limiter's memory grows with every client ever seen and its ``HTTPException``
raised inside middleware becomes a 500 without headers; the default executor
queues logins without bound; an unknown user is answered before any hashing
(timing enumeration); ``except jwt.JWTError`` names an exception PyJWT does not
have, so any invalid token other than an expired one raises ``AttributeError``
(a 500); naive ``datetime.utcnow`` times.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta

import bcrypt
import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBearer
from pydantic import BaseModel, EmailStr, validator

#: The post's budget is 100 requests per 60 s; benchmarks raise it.
BLOG_RATE_LIMIT = int(os.environ.get("BENCH_BLOG_RATE_LIMIT", "100"))

app = FastAPI()


# -- Input Validation with Pydantic -------------------------------------------------


class UserInput(BaseModel):
    username: str
    email: EmailStr
    age: int

    @validator("username")
    def validate_username(cls, v):
        if not re.match(r"^[a-zA-Z0-9_]{3,20}$", v):
            raise ValueError("Username must be 3-20 characters, alphanumeric only")
        return v

    @validator("age")
    def validate_age(cls, v):
        if not 13 <= v <= 120:
            raise ValueError("Age must be between 13 and 120")
        return v


class RegisterInput(UserInput):
    """Glue: the post's ``UserInput`` plus the password it hashes elsewhere."""

    password: str


class LoginInput(BaseModel):
    """Glue: credentials for ``POST /login``."""

    username: str
    password: str


# -- Password Hashing ------------------------------------------------------------------


class PasswordManager:
    async def hash_password(self, password: str) -> str:
        """Hash password asynchronously"""
        loop = asyncio.get_running_loop()
        salt = bcrypt.gensalt()

        def hash_sync():
            return bcrypt.hashpw(password.encode("utf-8"), salt)

        hashed = await loop.run_in_executor(None, hash_sync)
        return hashed.decode("utf-8")

    async def verify_password(self, password: str, hashed: str) -> bool:
        """Verify password asynchronously"""
        loop = asyncio.get_running_loop()

        def verify_sync():
            return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("utf-8"))

        return await loop.run_in_executor(None, verify_sync)


# -- JWT Token Management --------------------------------------------------------------


class TokenManager:
    def __init__(self, secret_key: str):
        self.secret_key = secret_key
        self.algorithm = "HS256"

    def create_token(self, user_id: str, permissions: list | None = None) -> str:
        """Create JWT access token"""
        expire = datetime.utcnow() + timedelta(minutes=30)  # allowed: the post's code, kept
        payload = {"sub": user_id, "exp": expire, "permissions": permissions or []}
        return jwt.encode(payload, self.secret_key, algorithm=self.algorithm)

    async def verify_token(self, token: str) -> dict:
        """Verify JWT token"""
        try:
            payload = jwt.decode(token, self.secret_key, algorithms=[self.algorithm])
            return payload  # noqa: RET504 - the post's code
        except jwt.ExpiredSignatureError:
            raise HTTPException(status_code=401, detail="Token expired")  # noqa: B904
        except jwt.JWTError:  # PyJWT has no JWTError: the post's bug, kept
            raise HTTPException(status_code=401, detail="Invalid token")  # noqa: B904


# -- Authentication Dependency ----------------------------------------------------------

security = HTTPBearer()
# The post hard-codes a placeholder secret here; a generated one costs the same.
token_manager = TokenManager(secrets.token_urlsafe(32))


async def get_current_user(credentials=Depends(security)):
    """Get authenticated user from token"""
    token = credentials.credentials
    payload = await token_manager.verify_token(token)
    user_id = payload.get("sub")
    if not user_id:
        raise HTTPException(status_code=401, detail="Invalid token")
    return {"user_id": user_id, "permissions": payload.get("permissions", [])}


@app.get("/protected")
async def protected_endpoint(current_user=Depends(get_current_user)):
    """Protected endpoint example"""
    return {"message": f"Hello user {current_user['user_id']}"}


# -- Rate Limiting --------------------------------------------------------------------


class RateLimiter:
    def __init__(self):
        self.clients = defaultdict(lambda: deque())

    async def is_allowed(self, client_id: str, max_requests: int = BLOG_RATE_LIMIT) -> bool:
        """Check if request is under rate limit"""
        now = time.time()
        client_requests = self.clients[client_id]
        # Remove old requests (older than 60 seconds)
        while client_requests and client_requests[0] < now - 60:
            client_requests.popleft()
        # Check limit
        if len(client_requests) < max_requests:
            client_requests.append(now)
            return True
        return False


rate_limiter = RateLimiter()


async def rate_limit_middleware(request, call_next):
    """Rate limiting middleware"""
    client_ip = request.client.host
    if not await rate_limiter.is_allowed(client_ip):
        raise HTTPException(status_code=429, detail="Rate limit exceeded")
    return await call_next(request)


app.middleware("http")(rate_limit_middleware)


# -- Security Headers -------------------------------------------------------------------


async def security_headers_middleware(request, call_next):
    """Add security headers to responses"""
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-XSS-Protection"] = "1; mode=block"
    return response


app.middleware("http")(security_headers_middleware)


# -- Glue so that registrations and logins can be driven ---------------------------------

password_manager = PasswordManager()
users: dict[str, dict] = {}


async def is_username_taken(username: str) -> bool:
    """Check if username exists in database"""
    return username.lower() in users


@app.post("/register")
async def create_user(user_data: RegisterInput):
    """Create user with async validation"""
    if await is_username_taken(user_data.username):
        raise HTTPException(status_code=400, detail="Username taken")
    hashed = await password_manager.hash_password(user_data.password)
    user_id = len(users) + 1
    users[user_data.username.lower()] = {"id": user_id, "hashed": hashed}
    return {"message": "User created successfully", "id": user_id}


@app.post("/login")
async def login(credentials: LoginInput):
    """Password login returning a bearer token."""
    user = users.get(credentials.username.lower())
    if user is None:
        raise HTTPException(status_code=401, detail="Invalid credentials")
    if not await password_manager.verify_password(credentials.password, user["hashed"]):
        raise HTTPException(status_code=401, detail="Invalid credentials")
    return {"access_token": token_manager.create_token(str(user["id"])), "token_type": "bearer"}


@app.get("/health")
async def health():
    """Liveness (benchmark addition; behind both middlewares like every route)."""
    return {"status": "ok"}
