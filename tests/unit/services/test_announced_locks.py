"""AnnouncedLocks: one lock event per lock, in bounded memory."""

from __future__ import annotations

from bastion.services.login_gate import AnnouncedLocks
from bastion.storage.protocols import ThrottleKeys

KEYS = ThrottleKeys("alice", "198.51.100.1", True)


def test_the_first_refusal_of_a_lock_is_announced_and_the_rest_are_not() -> None:
    locks = AnnouncedLocks()
    assert locks.first(KEYS, until=110.0, now=100.0)
    assert not locks.first(KEYS, until=110.0, now=101.0)
    assert not locks.first(KEYS, until=112.0, now=109.0)


def test_a_new_lock_after_the_last_one_ended_is_announced_again() -> None:
    locks = AnnouncedLocks()
    assert locks.first(KEYS, until=110.0, now=100.0)
    assert locks.first(KEYS, until=130.0, now=110.5)


def test_another_client_of_the_account_is_its_own_lock() -> None:
    locks = AnnouncedLocks()
    assert locks.first(KEYS, until=110.0, now=100.0)
    assert locks.first(ThrottleKeys("alice", "198.51.100.2", True), until=110.0, now=100.0)


def test_memory_is_bounded() -> None:
    locks = AnnouncedLocks(limit=3)
    for n in range(10):
        locks.first(ThrottleKeys(f"user{n}", "198.51.100.1", True), until=200.0, now=100.0)
    # The oldest were forgotten (announced again), the newest are remembered.
    assert locks.first(ThrottleKeys("user0", "198.51.100.1", True), until=200.0, now=101.0)
    assert not locks.first(ThrottleKeys("user9", "198.51.100.1", True), until=200.0, now=101.0)
