"""Known devices: OWASP's "Slow Down Online Guessing Attacks with Device Cookies".

Every completed password login hands the client a device token: an opaque
secret (256 bits), stored only as its digest and bound to the account. A
later password attempt carrying it for that account is judged by the token's
own failure budget instead of the account's and the client's throttles, so
an attacker hammering an account cannot lock its owner out of a device the
owner has used before. After :data:`DEVICE_FAILURE_BUDGET` failures the
token is void and counts as none. A malformed, foreign, unknown or void token
is simply no token: the attempt proceeds as without one, with the same
response, so a token never tells whether an account exists.
"""

from __future__ import annotations

from bastion.security.opaque import MAX_OPAQUE_TOKEN_LENGTH, digest_opaque_token, new_opaque_token
from bastion.storage.protocols import DeviceTokenStore
from bastion.types import Clock

#: SPEC: each device token has its own budget of at most 10 failures.
DEVICE_FAILURE_BUDGET = 10
#: Device tokens kept per account (the most recently used): a script logging
#: in over and over cannot grow the table.
DEVICES_PER_USER = 20
#: The id no user has (ids start at 1): unknown accounts are looked up for it,
#: so an attempt costs the same whether or not the account exists.
_NOBODY = 0


class KnownDevices:
    """Checks, counts and issues device tokens.

    Args:
        store: Token digests and their failure counts.
        clock: Time source.
    """

    def __init__(self, store: DeviceTokenStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def reserve(self, token: str | None, user_id: int | None) -> str | None:
        """Count an attempt against ``token``'s budget if it is a live token of
        ``user_id``; its digest then, else ``None`` (no token)."""
        if not token or len(token) > MAX_OPAQUE_TOKEN_LENGTH or not token.isascii():
            return None
        digest = digest_opaque_token(token)
        owner = _NOBODY if user_id is None else user_id
        now = self._clock.now()
        if await self._store.reserve(digest, owner, budget=DEVICE_FAILURE_BUDGET, now=now):
            return digest
        return None

    async def refund(self, digest: str, user_id: int) -> None:
        """The password was right but the login did not complete: not a failure."""
        await self._store.refund(digest, user_id)

    async def complete(self, token: str | None, digest: str | None, user_id: int) -> str:
        """The device token a completed login answers with: the one presented
        if it was live (its failures start afresh), else a new one."""
        now = self._clock.now()
        if token is not None and digest is not None:
            await self._store.succeed(digest, user_id, now=now)
            return token
        fresh = new_opaque_token()
        await self._store.issue(digest_opaque_token(fresh), user_id, now=now, keep=DEVICES_PER_USER)
        return fresh
