"""Leases: the timing rules (pure) and the three scripts against a real
Redis (acquire with a fencing epoch, renew and release only by the holder, expiry)."""

from __future__ import annotations

import random

import pytest
import trio

from supervisor.cluster.lease import Lease, LeaseTiming
from supervisor.cluster.redis import RedisClient


def test_timing_rules() -> None:
    timing = LeaseTiming(3.0)
    assert timing.renew_every_s == 1.0
    # the holder stops a margin before its key can expire (ttl counted from the renew's send)
    assert timing.valid_until(10.0) == pytest.approx(12.7)
    assert LeaseTiming(3.0, margin_s=0.5).valid_until(10.0) == 12.5
    rng = random.Random(3)
    retries = [timing.retry_in(rng) for _ in range(200)]
    assert 0.75 <= min(retries) < 1.0 < 2.0 < max(retries) <= 2.25  # ttl/2 +- 50 %
    assert timing.wait_out(previous_released=False) == 3.0
    assert timing.wait_out(previous_released=True) == 0.0


async def test_acquire_renew_release_and_expiry(redis: RedisClient, key_prefix: str) -> None:
    key = f"{key_prefix}:lease:x"
    timing = LeaseTiming(0.3)
    a, b = Lease(redis, key, "a", timing), Lease(redis, key, "b", timing)
    first = await a.acquire()
    assert first is not None
    assert (first.epoch, first.token, first.previous_released) == (1, "a:1", True)
    assert await b.acquire() is None
    assert await a.renew(first.token)
    assert not await b.renew("b:1")  # only the holder renews
    assert not await b.release(first.__class__(1, "b:1", False))
    assert await a.holder() == "a:1"
    assert await a.release(first)
    second = await b.acquire()
    assert second is not None
    assert (second.epoch, second.previous_released) == (2, True)  # given up: no wait
    assert not await a.renew(first.token)
    await trio.sleep(0.35)  # real Redis expiry (PX): b never renewed
    third = await a.acquire()
    assert third is not None
    assert (third.epoch, third.token, third.previous_released) == (3, "a:3", False)
    assert await redis.pttl(key) > 0
