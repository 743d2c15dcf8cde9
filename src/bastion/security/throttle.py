"""Login throttling arithmetic: consecutive-failure delays and a leaky bucket.

Two rules, both pure (state in, state out), shared by the in-process and the
Redis stores (the Lua scripts of ``bastion.storage.throttle_redis`` mirror
them line for line):

- :class:`FailureRule`, per account and per account and client: after
  ``threshold`` consecutive failures, each further one locks the key for
  twice as long as the previous one, from one second up to ``max_delay``
  (60 s). Brute force slows to a crawl, but nobody, attacker included, can
  lock an account for good (OWASP Authentication Cheat Sheet, "Account
  Lockout"). A success resets the key.
- :class:`BucketRule`, per client across accounts (credential stuffing): a
  leaky bucket of ``capacity`` failures draining one every
  ``drain_seconds``. The ordinary typos of many people behind one NAT drain
  away long before the bucket fills; a script trying thousands of accounts
  fills it at once and is then held to one attempt per ``drain_seconds``.

Attempts are *reserved* before the password is verified and refunded when it
was right, so concurrent guesses cannot all pass a check made before any of
them failed (issue 17 #4): the reservation is the check.
"""

from __future__ import annotations

from dataclasses import dataclass

#: SPEC: throttling starts within 10 consecutive failures per account.
ACCOUNT_THRESHOLD = 10
#: One client failing on one account is throttled sooner.
PAIR_THRESHOLD = 5
#: SPEC: nobody is asked to wait more than 60 s at a time.
MAX_DELAY_SECONDS = 60.0
#: A key quiet for this long starts counting afresh.
FORGET_AFTER_SECONDS = 900.0
#: SPEC: the per-client bucket holds at least 100 failures ...
BUCKET_CAPACITY = 100
#: ... and drains at least one a minute.
BUCKET_DRAIN_SECONDS = 60.0


@dataclass(slots=True)
class FailureState:
    """Consecutive failures of one key."""

    count: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(frozen=True, slots=True)
class FailureRule:
    """Increasing delays after ``threshold`` consecutive failures.

    Args:
        threshold: Failures allowed before the first delay (at most 10 per SPEC).
        max_delay: Longest single delay in seconds.
        forget_after: Seconds without a failure after which a key starts afresh.
    """

    threshold: int
    max_delay: float = MAX_DELAY_SECONDS
    forget_after: float = FORGET_AFTER_SECONDS

    def wait(self, state: FailureState, now: float) -> float:
        """Seconds the key must still wait (0 when it may try)."""
        return max(0.0, state.locked_until - now)

    def reserve(self, state: FailureState, now: float) -> None:
        """Count an attempt as a failure up front (call only when ``wait`` is 0)."""
        if now - state.last_failure > self.forget_after:
            state.count = 0
        state.count += 1
        state.last_failure = now
        over = state.count - self.threshold
        if over >= 0:
            state.locked_until = now + min(self.max_delay, 2.0**over)

    def refund(self, state: FailureState) -> None:
        """Take back a reservation whose password was right but whose login
        did not complete (a second factor is due, an address unverified)."""
        state.count = max(0, state.count - 1)
        if state.count < self.threshold:
            state.locked_until = 0.0


@dataclass(slots=True)
class BucketState:
    """The level of one client's bucket at ``updated``."""

    level: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True, slots=True)
class BucketRule:
    """A leaky bucket of failures.

    Args:
        capacity: Failures the bucket holds before refusing.
        drain_seconds: Seconds for one failure to drain away.
    """

    capacity: int = BUCKET_CAPACITY
    drain_seconds: float = BUCKET_DRAIN_SECONDS

    def _drain(self, state: BucketState, now: float) -> None:
        elapsed = max(0.0, now - state.updated)
        state.level = max(0.0, state.level - elapsed / self.drain_seconds)
        state.updated = now

    def wait(self, state: BucketState, now: float) -> float:
        """Seconds until one more failure fits (0 when it does now); at most
        ``drain_seconds``."""
        self._drain(state, now)
        overflow = state.level + 1 - self.capacity
        return max(0.0, overflow * self.drain_seconds)

    def reserve(self, state: BucketState, now: float) -> None:
        """Pour one attempt in (call only when ``wait`` is 0)."""
        self._drain(state, now)
        state.level += 1

    def refund(self, state: BucketState, now: float) -> None:
        """Take one attempt out again: its password was right."""
        self._drain(state, now)
        state.level = max(0.0, state.level - 1)
