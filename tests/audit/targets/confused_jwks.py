"""An ES256 API whose verifier lets the token's ``alg`` pick how the key is used.

The classic algorithm-confusion bug (CVE-2016-10555 and kin): for ``HS256``
it MACs with the public key's PEM, the same bytes it publishes in its JWKS.
Everything else about it is sound enough for the audit to reach that check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import ECAlgorithm
from pydantic import BaseModel

KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
users: dict[str, str] = {}

app = FastAPI()
bearer = HTTPBearer()


class Credentials(BaseModel):
    username: str
    password: str


@app.post("/register", status_code=201)
async def register(body: Credentials) -> dict[str, str]:
    if body.username in users:
        raise HTTPException(status_code=409, detail="taken")
    users[body.username] = hashlib.sha256(body.password.encode()).hexdigest()
    return {"username": body.username}


@app.post("/login")
async def login(body: Credentials) -> dict[str, str]:
    digest = hashlib.sha256(body.password.encode()).hexdigest()
    if not hmac.compare_digest(users.get(body.username, ""), digest):
        raise HTTPException(status_code=401, detail="Invalid credentials")
    now = int(time.time())
    claims = {"sub": "1", "iat": now, "exp": now + 900}
    token = jwt.encode(claims, KEY, algorithm="ES256", headers={"kid": "k1"})
    return {"access_token": token, "token_type": "bearer"}


@app.get("/.well-known/jwks.json")
async def jwks() -> dict[str, Any]:
    jwk = json.loads(ECAlgorithm.to_jwk(KEY.public_key()))
    return {"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}


async def current_user(credentials: HTTPAuthorizationCredentials = Depends(bearer)) -> str:
    token = credentials.credentials
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") == "HS256":  # the bug: the token chooses
            signing_input, _, signature = token.rpartition(".")
            mac = hmac.new(PEM, signing_input.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(jwt.utils.base64url_encode(mac).decode(), signature):
                raise jwt.InvalidSignatureError("bad MAC")
            claims = json.loads(jwt.utils.base64url_decode(signing_input.split(".")[1]))
        else:
            claims = jwt.decode(token, KEY.public_key(), algorithms=["ES256"])
    except (jwt.PyJWTError, ValueError):
        raise HTTPException(status_code=401, detail="Invalid token") from None
    return str(claims["sub"])


@app.get("/me")
async def me(user: str = Depends(current_user)) -> dict[str, str]:
    return {"id": user}
