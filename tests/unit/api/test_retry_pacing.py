"""RetryPacing: under a refusal flood, a login retried before its Retry-After waits."""

from __future__ import annotations

from bastion.api.middleware.pacing import Key, RetryPacing, retry_after_of

A = (("127.0.0.1", 50000), "198.51.100.1")
B = (("127.0.0.1", 50001), "198.51.100.2")
SAME_CONNECTION_OTHER_CLIENT = (("127.0.0.1", 50000), "198.51.100.9")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pacing(clock: Clock, jitter: float = 0.999) -> RetryPacing:
    return RetryPacing(flood_rate=10, max_hold=1.0, clock=clock, jitter=lambda: jitter)


def _refuse(pacing: RetryPacing, key: Key, times: int, retry_after: bytes = b"1") -> None:
    for _ in range(times):
        pacing.answered(key, 429, [(b"retry-after", retry_after)])


def test_without_a_flood_nobody_waits() -> None:
    clock = Clock()
    pacing = _pacing(clock)
    _refuse(pacing, A, 5)
    assert pacing.delay(A) == 0.0


def test_under_a_flood_a_refused_connection_waits_for_its_retry_after() -> None:
    clock = Clock()
    pacing = _pacing(clock)
    _refuse(pacing, A, 20)
    clock.now += 0.1
    assert 0.8 < pacing.delay(A) <= 0.9
    # Once waited, the next request is not held again until refused again.
    assert pacing.delay(A) == 0.0


def test_the_hold_is_capped_and_spread() -> None:
    clock = Clock()
    early = _pacing(clock, jitter=0.0)
    _refuse(early, A, 20, retry_after=b"30")
    assert early.delay(A) == 0.5
    late = _pacing(clock, jitter=0.999)
    _refuse(late, A, 20, retry_after=b"30")
    assert 0.99 < late.delay(A) <= 1.0


def test_others_are_not_held_even_on_the_same_proxy_connection() -> None:
    clock = Clock()
    pacing = _pacing(clock)
    _refuse(pacing, A, 20)
    assert pacing.delay(B) == 0.0
    assert pacing.delay(SAME_CONNECTION_OTHER_CLIENT) == 0.0


def test_a_success_is_not_a_refusal() -> None:
    clock = Clock()
    pacing = _pacing(clock)
    _refuse(pacing, B, 20)
    pacing.answered(A, 200, [])
    assert pacing.delay(A) == 0.0


def test_the_flood_ends_when_refusals_stop() -> None:
    clock = Clock()
    pacing = _pacing(clock)
    _refuse(pacing, A, 20)
    assert pacing.flooded(clock.now)
    clock.now += 2.5
    assert not pacing.flooded(clock.now)


def test_under_a_flood_retry_after_is_spread_but_never_past_60() -> None:
    clock = Clock()
    pacing = _pacing(clock, jitter=0.0)
    _refuse(pacing, B, 20)
    spread = pacing.answered(A, 503, [(b"retry-after", b"1"), (b"x", b"y")])
    assert spread == [(b"retry-after", b"2"), (b"x", b"y")]
    capped = pacing.answered(A, 429, [(b"retry-after", b"60")])
    assert capped == [(b"retry-after", b"60")]


def test_memory_is_bounded() -> None:
    clock = Clock()
    pacing = RetryPacing(flood_rate=10, max_connections=5, clock=clock)
    for port in range(100):
        pacing.answered((("127.0.0.1", port), "198.51.100.1"), 429, [])
    assert len(pacing._until) == 5


def test_retry_after_parsing() -> None:
    assert retry_after_of([(b"Retry-After", b"7")]) == 7.0
    assert retry_after_of([(b"retry-after", b"soon")]) == 1.0
    assert retry_after_of([]) == 1.0
