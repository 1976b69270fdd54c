"""The limiters themselves, on a manual clock: windows and budgets end when the clock says so."""

from __future__ import annotations

from realtime.ratelimit import MemoryRateLimiter, TokenBucket
from tests.clocks import ManualClock


async def test_a_window_counts_until_it_ends() -> None:
    clock = ManualClock(1000.0)
    limiter = MemoryRateLimiter(3, 60, clock=clock)
    for n in (1, 2, 3):
        assert await limiter.hit("k") == n
    assert await limiter.blocked("k") and not await limiter.blocked("autre")
    clock.advance(45)
    assert await limiter.blocked("k") and await limiter.retry_after("k") == 15
    clock.advance(14.5)
    assert await limiter.retry_after("k") == 1  # never « retry in 0 s » while blocked
    clock.advance(0.5)  # the window is over: a fresh count
    assert not await limiter.blocked("k") and await limiter.count("k") == 0
    assert await limiter.hit("k") == 1


async def test_reset_forgets_a_key() -> None:
    limiter = MemoryRateLimiter(2, 60, clock=ManualClock(0.0))
    await limiter.hit("k")
    await limiter.hit("k")
    await limiter.reset("k")
    assert not await limiter.blocked("k")


def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    clock = ManualClock(0.0)
    bucket = TokenBucket(rate=5, burst=20, clock=clock)
    assert sum(bucket.take() for _ in range(100)) == 20  # one instant: the burst, no more
    clock.advance(1)
    assert sum(bucket.take() for _ in range(100)) == 5
    clock.advance(3600)  # a long pause refills up to the burst only
    assert sum(bucket.take() for _ in range(100)) == 20
