"""Access tokens: JWTs profiled after RFC 9068 and verified per RFC 8725.

Verification trusts nothing in the token before the signature checks out: the
key is chosen by ``kid`` from our own ring, never taken from the header
(``jwk``, ``jku``, ``x5u``, ``x5c``), and the algorithm must be the one that
key is bound to, which defeats ``alg: none`` and algorithm confusion
(CVE-2015-9235, CVE-2022-29217).
"""

from __future__ import annotations

import secrets
from typing import Any

import jwt

from bastion.errors import InvalidToken
from bastion.security.keys import KeyRing
from bastion.types import Clock, Principal

#: RFC 9068 §2.1: the media type of access tokens, which tells them apart from
#: ID tokens and other JWTs signed by the same keys.
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Our tokens are far smaller; anything larger is refused unparsed.
MAX_TOKEN_BYTES = 8 * 1024
#: Clock skew tolerated between instances (RFC 8725 §3.10 asks for "small").
LEEWAY_SECONDS = 5
REQUIRED_CLAIMS = ("sub", "exp", "iat", "jti", "iss", "aud", "sid")
#: Largest user id a database column holds (signed 64-bit).
_MAX_USER_ID = 2**63 - 1
#: Bound of the time claims (the year 9999): beyond it a value is not a time.
_MAX_TIME = 253_402_300_799
#: Verified tokens remembered per instance (about 1 KiB each).
VERIFIED_CACHE_SIZE = 10_000
#: Header parameters that would carry key material or point at it.
_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c"})


class AccessTokenCodec:
    """Issues and verifies access tokens with a :class:`KeyRing`.

    Args:
        ring: Keys; the newest signs. Replace ``ring`` to rotate.
        issuer: ``iss`` to put in and demand.
        audience: ``aud`` to put in and demand (one audience per purpose).
        ttl: Lifetime in seconds.
        clock: Time source.
    """

    def __init__(
        self, ring: KeyRing, *, issuer: str, audience: str, ttl: int, clock: Clock
    ) -> None:
        self._ring = ring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._clock = clock
        # Tokens already verified, by their exact text: a repeat costs a dict
        # lookup and the expiry check instead of parsing and an HMAC/signature
        # check. Cleared whenever the key ring changes, bounded in size.
        self._verified: dict[str, tuple[Principal, int]] = {}

    @property
    def ring(self) -> KeyRing:
        """The keys; assigning a new ring rotates and forgets verified tokens."""
        return self._ring

    @ring.setter
    def ring(self, ring: KeyRing) -> None:
        self._ring = ring
        self._verified = {}

    def issue(
        self,
        *,
        user_id: int,
        session_id: str,
        permissions: tuple[str, ...],
        version: int,
        amr: tuple[str, ...] = (),
    ) -> str:
        """Sign a new access token.

        Args:
            user_id: Becomes ``sub`` (as a string, RFC 7519 §4.1.2).
            session_id: Becomes ``sid``.
            permissions: Becomes ``permissions``.
            version: The user's token version (``ver``), bumped to revoke
                every earlier token of the user at once.
            amr: Authentication methods of the session (RFC 8176 §2), when known.
        """
        key = self.ring.signing_key
        now = int(self._clock.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": str(user_id),
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(12),
            "sid": session_id,
            "ver": version,
            "permissions": list(permissions),
        }
        if amr:
            claims["amr"] = list(amr)
        headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
        return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)

    def verify(self, token: str) -> tuple[Principal, int]:
        """Verify ``token`` and return its principal and token version.

        Raises:
            InvalidToken: for every failure, with no detail an attacker could use.
        """
        cached = self._verified.get(token)
        if cached is not None:
            if cached[0].expires_at > self._clock.now() - LEEWAY_SECONDS:
                return cached
            del self._verified[token]
            raise InvalidToken()
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        kid = header.get("kid")
        typ = header.get("typ")
        if not isinstance(kid, str) or not isinstance(typ, str):
            raise InvalidToken()
        if typ.lower() not in _ACCEPTED_TYPES or "crit" in header or _KEY_HEADERS & header.keys():
            raise InvalidToken()
        key = self.ring.find(kid)
        if key is None or header.get("alg") != key.algorithm:
            raise InvalidToken()
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                # Time claims are checked below against the injected clock.
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_sub": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken() from exc
        verified = _principal(claims, now=self._clock.now())
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            # Oldest first: dicts keep insertion order.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = verified
        return verified


def _principal(claims: dict[str, Any], *, now: float) -> tuple[Principal, int]:
    sub, sid, jti = claims["sub"], claims["sid"], claims["jti"]
    permissions = claims.get("permissions", [])
    version = claims.get("ver", 0)
    iat, exp = claims["iat"], claims["exp"]
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 19):
        raise InvalidToken()
    # 19 digits still exceed a signed 64-bit id, which the database cannot look up.
    if int(sub) > _MAX_USER_ID:
        raise InvalidToken()
    if not (isinstance(sid, str) and isinstance(jti, str) and isinstance(version, int)):
        raise InvalidToken()
    if not (isinstance(permissions, list) and all(isinstance(p, str) for p in permissions)):
        raise InvalidToken()
    amr = claims.get("amr", [])
    if not (isinstance(amr, list) and all(isinstance(a, str) for a in amr)):
        raise InvalidToken()
    nbf = claims.get("nbf", iat)
    for value in (iat, exp, nbf):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidToken()
        # json.loads accepts Infinity, NaN and integers of any size: an exp of
        # Infinity never expires, NaN fails every comparison (so passes every
        # "too late" check), and float() of a huge integer raises.
        if not -_MAX_TIME <= value <= _MAX_TIME:
            raise InvalidToken()
    # RFC 7519 §4.1.4-6 with a small leeway for clock skew between instances.
    if exp <= now - LEEWAY_SECONDS or iat > now + LEEWAY_SECONDS or nbf > now + LEEWAY_SECONDS:
        raise InvalidToken()
    principal = Principal(
        user_id=int(sub),
        session_id=sid,
        token_id=jti,
        permissions=frozenset(permissions),
        issued_at=float(iat),
        expires_at=float(exp),
        amr=frozenset(amr),
    )
    return principal, version
