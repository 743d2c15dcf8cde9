"""The gate a password check passes: throttles or a known device's budget.

Before a password is verified, the attempt is reserved: against the budget
of a live device token of the account if one came with it (OWASP device
cookies), otherwise against the account's and the client's throttles. A
refusal is an ``authn_login_lock`` event and :class:`Throttled`. A right
password gives the reservation back; a completed login also resets the
account's throttle and answers with a device token.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bastion.errors import Throttled
from bastion.services.devices import KnownDevices
from bastion.services.events import EventRecorder
from bastion.services.throttle import LoginThrottle
from bastion.storage.protocols import StoredUser, ThrottleKeys
from bastion.types import Clock, RequestContext

#: Longest typed username put in an event.
MAX_EVENT_NAME = 64


#: Looks the account up (``None``: nobody by that name).
Lookup = Callable[[], Awaitable[StoredUser | None]]
#: Locks remembered as already recorded (least recently used forgotten first).
MAX_ANNOUNCED_LOCKS = 10_000


class AnnouncedLocks:
    """Which locks already have their ``authn_login_lock`` event.

    One event per lock and instance, not one per refused attempt: a flood
    of a locked account is refused thousands of times a second, and an event
    (with its account lookup) for each would make the refusals as dear as
    the logins they refuse and fill the events table with copies. Refusals
    are still counted one by one in the login metrics.
    """

    def __init__(self, limit: int = MAX_ANNOUNCED_LOCKS) -> None:
        self._until: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._limit = limit

    def first(self, keys: ThrottleKeys, until: float, now: float) -> bool:
        """Whether this refusal is the first of a lock lasting until ``until``."""
        key = (keys.account, keys.client)
        if self._until.get(key, -math.inf) > now:
            self._until.move_to_end(key)
            return False
        self._until[key] = until
        self._until.move_to_end(key)
        if len(self._until) > self._limit:
            self._until.popitem(last=False)
        return True


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """One password check in progress, and what it reserved.

    Attributes:
        keys: The throttle keys of the account and client.
        device: The digest of the live device token whose budget the attempt
            counts against, or ``None``: then it counts against ``keys``.
    """

    keys: ThrottleKeys
    device: str | None = None


class LoginGate:
    """Reserves, gives back and completes password checks.

    Args:
        throttle: The account, pair and client throttles.
        devices: Known-device tokens.
        events: Security event recorder.
        clock: Time source.
    """

    def __init__(
        self, throttle: LoginThrottle, devices: KnownDevices, events: EventRecorder, clock: Clock
    ) -> None:
        self._throttle = throttle
        self._devices = devices
        self._events = events
        self._clock = clock
        self._locks = AnnouncedLocks()

    async def reserve(
        self,
        username: str,
        stored: StoredUser | None,
        *,
        device_token: str | None = None,
        context: RequestContext | None = None,
        purpose: str = "login",
    ) -> LoginAttempt:
        """Reserve a check of ``username``'s password (``stored``: the account,
        if it exists).

        Raises:
            Throttled: the account or the client is held back.
        """
        keys = self._throttle.keys(username, context.ip if context else None)
        device = await self._devices.reserve(device_token, stored.user.id if stored else None)
        if device is not None:
            # A live token of this account: its own budget, not the account's
            # or the client's throttle.
            return LoginAttempt(keys, device)

        async def known() -> StoredUser | None:
            return stored

        return await self._reserve_keys(keys, username, known, context, purpose)

    async def reserve_before_lookup(
        self,
        username: str,
        lookup: Lookup,
        *,
        context: RequestContext | None = None,
        purpose: str = "login",
    ) -> LoginAttempt:
        """:meth:`reserve` for an attempt without a device token, made before
        the account is looked up: a held-back attempt then costs no query
        (``lookup`` runs only for the lock event's ``user_id``).

        Raises:
            Throttled: the account or the client is held back.
        """
        keys = self._throttle.keys(username, context.ip if context else None)
        return await self._reserve_keys(keys, username, lookup, context, purpose)

    async def _reserve_keys(
        self,
        keys: ThrottleKeys,
        username: str,
        lookup: Lookup,
        context: RequestContext | None,
        purpose: str,
    ) -> LoginAttempt:
        now = self._clock.now()
        wait = await self._throttle.reserve(keys, now)
        if wait > 0:
            if self._locks.first(keys, now + wait, now):
                stored = await lookup()
                await self._events.record(
                    "authn_login_lock",
                    outcome="failure",
                    context=context,
                    user_id=stored.user.id if stored else None,
                    username=stored.user.username if stored else username[:MAX_EVENT_NAME],
                    retry_after=round(wait, 1),
                    purpose=purpose,
                )
            raise Throttled("too many failed logins, retry later", retry_after=math.ceil(wait))
        return LoginAttempt(keys)

    async def give_back(self, attempt: LoginAttempt, user_id: int) -> None:
        """The password was right but the login is not complete: not a failure,
        and nothing is reset."""
        if attempt.device is not None:
            await self._devices.refund(attempt.device, user_id)
        else:
            await self._throttle.refund(attempt.keys, self._clock.now())

    async def complete(self, attempt: LoginAttempt, device_token: str | None, user_id: int) -> str:
        """A completed login: reset what it was held by; the device token to answer.

        A login let through by a device token resets only that token's
        budget, not the account's throttle: the owner signing in on their
        phone must not hand the attacker hammering the account ten fresh tries.
        """
        if attempt.device is None:
            await self._throttle.success(attempt.keys, self._clock.now())
        return await self._devices.complete(device_token, attempt.device, user_id)
