"""meao.auth.throttle: token buckets per key on a clock the test moves by hand."""

from __future__ import annotations

from meao.auth.throttle import FAILURE_COST, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_attempt_per_refill_and_retry_after_says_when() -> None:
    clock = Clock()
    throttle = Throttle(burst=3, rate=0.5, clock=clock)
    assert [throttle.take(["a"]) for _ in range(4)] == [0, 0, 0, 2]  # one token back takes 2 s
    clock.now += 1.0
    assert throttle.take(["a"]) == 1
    clock.now += 1.0
    assert throttle.take(["a"]) == 0
    assert throttle.take(["b"]) == 0, "other keys have their own bucket"


def test_an_attempt_takes_from_every_key_or_from_none() -> None:
    throttle = Throttle(burst=1, rate=0.001, clock=Clock())
    assert throttle.take(["client:x", "address:1"]) == 0
    assert throttle.take(["client:y", "address:1"]) > 0  # the address is spent …
    assert throttle.take(["client:y", "address:2"]) == 0, "… and client y lost nothing by being refused"


def test_a_failure_costs_more_and_never_below_empty() -> None:
    clock = Clock()
    throttle = Throttle(burst=10, rate=1.0, clock=clock)
    assert throttle.take(["a"]) == 0
    throttle.charge(["a"])
    assert [throttle.take(["a"]) for _ in range(int(10 - 1 - FAILURE_COST))] == [0] * 5
    assert throttle.take(["a"]) == 1
    throttle.charge(["a"], cost=100)
    assert throttle.take(["a"]) == 1, "an empty bucket is empty, not in debt"


def test_the_table_of_buckets_stays_bounded() -> None:
    throttle = Throttle(burst=2, rate=0.001, clock=Clock())
    throttle.MAX_KEYS = 100
    for i in range(1000):
        throttle.take([f"address:{i}"])
    assert len(throttle._levels) <= 100
    assert throttle.take(["address:999"]) == 0, "the most recent buckets are kept"
    assert throttle.take(["address:999"]) > 0
