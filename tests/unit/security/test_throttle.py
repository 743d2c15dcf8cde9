"""The throttle arithmetic: consecutive-failure delays and the leaky bucket."""

from __future__ import annotations

from bastion.security.throttle import BucketRule, BucketState, FailureRule, FailureState


def test_delays_start_at_the_threshold_and_double_up_to_a_minute() -> None:
    rule = FailureRule(threshold=3)
    state = FailureState()
    delays = []
    now = 1000.0
    for _ in range(12):
        assert rule.wait(state, now) == 0
        rule.reserve(state, now)
        delays.append(rule.wait(state, now))
        now += 61
    assert delays[:2] == [0, 0]
    assert delays[2:9] == [1, 2, 4, 8, 16, 32, 60]
    assert max(delays) == 60


def test_a_refund_below_the_threshold_lifts_the_lock_it_set() -> None:
    rule = FailureRule(threshold=2)
    state = FailureState()
    rule.reserve(state, 0)
    rule.reserve(state, 0)
    assert rule.wait(state, 0) == 1
    rule.refund(state)
    assert (state.count, rule.wait(state, 0)) == (1, 0)


def test_a_quiet_key_starts_afresh() -> None:
    rule = FailureRule(threshold=2, forget_after=900)
    state = FailureState()
    rule.reserve(state, 0)
    rule.reserve(state, 901)
    assert state.count == 1


def test_the_bucket_holds_its_capacity_and_drains_one_per_period() -> None:
    rule = BucketRule(capacity=100, drain_seconds=60)
    state = BucketState(updated=0)
    for _ in range(100):
        assert rule.wait(state, 0) == 0
        rule.reserve(state, 0)
    assert rule.wait(state, 0) == 60
    assert rule.wait(state, 30) == 30
    assert rule.wait(state, 60) == 0


def test_a_refund_takes_one_out_of_the_bucket() -> None:
    rule = BucketRule(capacity=2, drain_seconds=60)
    state = BucketState(updated=0)
    rule.reserve(state, 0)
    rule.reserve(state, 0)
    assert rule.wait(state, 0) > 0
    rule.refund(state, 0)
    assert rule.wait(state, 0) == 0
