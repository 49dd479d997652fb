"""Rate limits of the local Binance venue (pure: times are passed in, venue milliseconds).

Decisions:

* Windows are fixed and aligned to the venue clock, as Binance counts them: the 1-minute
  weight window starts at every whole minute, the 10-second order window at :00, :10, ...,
  the day at 00:00 UTC. Request weight is per IP and every local client shares 127.0.0.1, so
  there is one weight counter per venue, shared by REST and the WebSocket API.
* Every request's weight is counted when it arrives, failed ones included. The request that
  takes the count over the limit is answered 429 ``-1003`` with ``Retry-After`` (seconds to the
  end of the window); the count keeps rising with what follows, as Binance's header shows.
* A client that sends again before that ``Retry-After`` has passed is not backing off: after
  ``violations_before_ban`` such requests (1 by default, the strictest reading of "failing to
  back off after receiving 429s") the IP is banned: 418 ``-1003`` "IP banned until <ms>" with
  ``Retry-After``, for 2 minutes, doubling with each later ban up to 3 days. Requests during a
  ban are answered 418 and counted nowhere.
* Orders: the ``ORDERS`` limits (per 10 s and per day) count accepted new orders; one over
  the limit is 429 ``-1015`` *without* ``Retry-After``, as documented.
"""

from __future__ import annotations

import math

import attrs

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
DAY_MS = 86_400_000
REQUEST_WEIGHT_LIMIT = 6000
ORDERS_PER_10S = 100
ORDERS_PER_DAY = 200_000
FIRST_BAN_MS = 120_000
LONGEST_BAN_MS = 3 * DAY_MS
RAW_REQUESTS_PER_5M = 61_000


@attrs.define(slots=True)
class Window:
    """A counter over fixed, clock-aligned windows of ``length_ms``."""

    length_ms: int
    start_ms: int = 0
    count: int = 0

    def current(self, now_ms: int) -> int:
        start = now_ms - now_ms % self.length_ms
        if start != self.start_ms:
            self.start_ms, self.count = start, 0
        return self.count

    def add(self, now_ms: int, amount: int) -> int:
        self.current(now_ms)
        self.count += amount
        return self.count

    def ends_ms(self, now_ms: int) -> int:
        return now_ms - now_ms % self.length_ms + self.length_ms


@attrs.frozen(slots=True)
class Refusal:
    status: int  # 429 or 418
    code: int
    msg: str
    retry_after_s: int | None
    retry_after_ms: int | None  # epoch ms the client may retry at (the WebSocket API's field)


@attrs.define(slots=True)
class RateLimits:
    weight_limit: int = REQUEST_WEIGHT_LIMIT
    orders_per_10s: int = ORDERS_PER_10S
    orders_per_day: int = ORDERS_PER_DAY
    violations_before_ban: int = 1
    weight: Window = attrs.field(factory=lambda: Window(MINUTE_MS))
    orders_10s: Window = attrs.field(factory=lambda: Window(TEN_SECONDS_MS))
    orders_1d: Window = attrs.field(factory=lambda: Window(DAY_MS))
    back_off_until_ms: int | None = None  # set by a 429: requests before it are violations
    violations: int = 0
    banned_until_ms: int | None = None
    bans: int = 0

    def admit(self, now_ms: int, weight: int) -> Refusal | None:
        """Count a request of ``weight``; the refusal to answer it with, if any."""
        if self.banned_until_ms is not None:
            if now_ms < self.banned_until_ms:
                return self._ban_refusal(now_ms)
            self.banned_until_ms = None
        if self.back_off_until_ms is not None:
            if now_ms < self.back_off_until_ms:
                self.violations += 1
                if self.violations >= self.violations_before_ban:
                    return self.ban(now_ms)
            else:
                self.back_off_until_ms, self.violations = None, 0
        used = self.weight.add(now_ms, weight)
        if used <= self.weight_limit:
            return None
        self.back_off_until_ms = self.weight.ends_ms(now_ms)
        return Refusal(
            429,
            -1003,
            f"Too much request weight used; current limit is {self.weight_limit} request weight"
            " per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the"
            " API.",
            math.ceil((self.back_off_until_ms - now_ms) / 1000),
            self.back_off_until_ms,
        )

    def ban(self, now_ms: int) -> Refusal:
        duration = min(FIRST_BAN_MS * 2**self.bans, LONGEST_BAN_MS)
        self.bans += 1
        self.banned_until_ms = now_ms + duration
        self.back_off_until_ms, self.violations = None, 0
        return self._ban_refusal(now_ms)

    def _ban_refusal(self, now_ms: int) -> Refusal:
        until = self.banned_until_ms
        assert until is not None
        return Refusal(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {until}. Please use WebSocket"
            " Streams for live updates to avoid bans.",
            math.ceil((until - now_ms) / 1000),
            until,
        )

    def lift(self) -> None:
        """Forget bans, back-off and the current weight (the knob ``lift_ban``)."""
        self.banned_until_ms = self.back_off_until_ms = None
        self.violations = self.bans = 0
        self.weight.count = 0

    def exhaust(self, now_ms: int) -> None:
        """Use the whole weight of the current window: the next request is a 429."""
        self.weight.current(now_ms)
        self.weight.count = max(self.weight.count, self.weight_limit)

    def used_weight(self, now_ms: int) -> int:
        return self.weight.current(now_ms)

    def admit_order(self, now_ms: int) -> Refusal | None:
        """Count one new order against the ORDERS limits."""
        for window, limit, unit in (
            (self.orders_10s, self.orders_per_10s, "10 SECOND"),
            (self.orders_1d, self.orders_per_day, "1 DAY"),
        ):
            if window.current(now_ms) >= limit:
                return Refusal(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {unit}.",
                    None,
                    None,
                )
        self.orders_10s.add(now_ms, 1)
        self.orders_1d.add(now_ms, 1)
        return None

    def order_counts(self, now_ms: int) -> tuple[int, int]:
        return self.orders_10s.current(now_ms), self.orders_1d.current(now_ms)

    def rate_limits_json(self) -> list[dict[str, object]]:
        """``exchangeInfo``'s ``rateLimits``."""
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.weight_limit,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self.orders_per_10s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": self.orders_per_day,
            },
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": RAW_REQUESTS_PER_5M,
            },
        ]
