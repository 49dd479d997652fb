"""Leadership of one exchange's connection: a Redis key with a fencing epoch.

Decisions:

* **Acquire** (Lua, atomic): only when nobody holds the key, ``epoch = INCR <key>:epoch`` and
  ``SET <key> "<node>:<epoch>" PX ttl``. The value is the fencing token: every write the
  leader makes to the feed stream goes through a script that first compares it
  (``feed.FENCED_XADD``), so a deposed leader cannot write, whatever its clock believes.
* **Renew** every ``ttl/3`` (Lua: ``PEXPIRE`` only if the value is still ours). The holder
  counts its lease from the instant it *sent* the last successful renew, and stops acting
  once ``now - sent > ttl - margin``: Redis started the new ``ttl`` after that instant, so
  the holder always stops before the key can expire and anyone else can acquire it (clock
  rates, not offsets, matter: the margin absorbs drift and scheduling).
* **A challenger** tries every ``ttl/2`` with jitter (so two challengers rarely collide), and
  after winning waits out one ``ttl`` before opening the exchange connection, unless the
  previous holder released the lease itself (``<key>:released`` names the epoch it gave
  up). A paused old leader (GC, SIGSTOP) that wakes inside that window still believes in its
  lease for at most ``ttl - margin`` after its last renew; the wait covers it, so the
  exchange never sees two connections of the cluster for long, and Redis never accepts two
  writers at all.
* ``LeaseTiming`` is pure (times in, decisions out) so its rules are tested with the
  autojump clock; ``Lease`` is the Redis side, a thin shell over three scripts.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs
import trio

from supervisor.cluster.redis import REDIS_ERRORS, RedisClient, run_script

__all__ = ["ACQUIRE", "RELEASE", "RENEW", "Acquired", "Lease", "LeaseTiming", "keep_renewed"]

ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then return {0, current, 0} end
local epoch = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. epoch
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
local released = tonumber(redis.call('GET', KEYS[3]) or '0')
return {epoch, value, (released == epoch - 1) and 1 or 0}
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


@attrs.frozen
class LeaseTiming:
    """The lease's clock rules (pure). ``margin_s`` defaults to a tenth of the ttl."""

    ttl_s: float
    margin_s: float | None = None

    @property
    def margin(self) -> float:
        return self.ttl_s / 10 if self.margin_s is None else self.margin_s

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 3

    def valid_until(self, renew_sent_at: float) -> float:
        """The holder acts until this instant after a renew (or acquire) sent at
        ``renew_sent_at`` succeeded."""
        return renew_sent_at + self.ttl_s - self.margin

    def retry_in(self, rng: random.Random) -> float:
        """A challenger's next attempt: ``ttl/2`` with +-50 % jitter."""
        return self.ttl_s / 2 * rng.uniform(0.5, 1.5)

    def wait_out(self, previous_released: bool) -> float:
        """How long a new holder waits before opening the exchange connection."""
        return 0.0 if previous_released else self.ttl_s


@attrs.frozen
class Acquired:
    epoch: int
    token: str  # "<node>:<epoch>", the key's value and the fencing token
    previous_released: bool  # the holder before gave the lease up itself


@attrs.define(eq=False)
class Lease:
    """One exchange's lease for one node."""

    client: RedisClient
    key: str
    node: str
    timing: LeaseTiming

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.timing.ttl_s * 1000))

    async def acquire(self) -> Acquired | None:
        epoch, token, released = await run_script(
            self.client,
            ACQUIRE,
            keys=[self.key, f"{self.key}:epoch", f"{self.key}:released"],
            args=[self.node, self._ttl_ms],
        )
        if int(epoch) == 0:
            return None
        return Acquired(int(epoch), _text(token), bool(int(released)))

    async def renew(self, token: str) -> bool:
        result = await run_script(self.client, RENEW, keys=[self.key], args=[token, self._ttl_ms])
        return bool(int(result))

    async def release(self, held: Acquired) -> bool:
        result = await run_script(
            self.client,
            RELEASE,
            keys=[self.key, f"{self.key}:released"],
            args=[held.token, held.epoch],
        )
        return bool(int(result))

    async def holder(self) -> str | None:
        value = await self.client.get(self.key)
        return None if value is None else _text(value)


async def keep_renewed(
    lease: Lease,
    held: Acquired,
    *,
    sent_at: float,
    timeout_s: float,
    renewed: Callable[[float, float], None],
    failed: Callable[[BaseException], None] = lambda exc: None,
) -> None:
    """Renew ``held`` every ``renew_every_s`` from ``sent_at`` until Redis refuses (then
    return: the lease is someone else's). ``renewed(sent, rtt)`` gets each successful renew's
    send time (the holder may act until ``timing.valid_until(sent)``); a renew that fails
    (``failed(exc)``) is tried again after a third of the interval, and the holder's deadline
    stays where the last success put it."""
    timing = lease.timing
    next_at = sent_at + timing.renew_every_s
    while True:
        await trio.sleep_until(next_at)
        attempt_at = trio.current_time()
        try:
            with trio.fail_after(min(timeout_s, timing.renew_every_s)):
                still_mine = await lease.renew(held.token)
        except REDIS_ERRORS as exc:
            failed(exc)
            next_at = trio.current_time() + timing.renew_every_s / 3
            continue
        if not still_mine:
            return
        renewed(attempt_at, trio.current_time() - attempt_at)
        next_at = attempt_at + timing.renew_every_s


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
