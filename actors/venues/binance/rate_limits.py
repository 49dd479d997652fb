"""Binance Spot rate limits as a pure state: until when requests and new orders must wait.

Feed ``RateLimitState.observe`` every REST response (status and headers) and ``observe_ws``
every WebSocket API answer with the local time it arrived; ask
``orders_allowed``/``requests_allowed`` before sending. Times are local seconds on
one clock the caller chooses (monotonic is best: nothing here compares them with the venue).

Decisions:

* **What the venue counts.** Request weight (``X-MBX-USED-WEIGHT-<n><unit>`` on every
  response) is counted **per IP**, not per API key: every process and bot behind one address
  shares it. Orders (``X-MBX-ORDER-COUNT-<n><unit>``, on successful order responses only) are
  counted **per account**. So one state belongs to one IP and one account; the limits
  themselves come from ``exchangeInfo``'s ``rateLimits`` (``parse_rate_limits``), never
  hard-coded.
* **429** means a limit was hit and **418** that the IP is banned for continuing after 429s
  (2 minutes up to 3 days). Both carry ``Retry-After`` in seconds, and everything waits that
  long (a 418 without it waits ``DEFAULT_BAN_S``, the shortest ban). A 429 **without**
  ``Retry-After`` is the order-count limit (per the venue: "you will receive a 429 error
  without the Retry-After header"): new orders wait one full interval of the order limit that
  is exhausted (by the last counts seen), or of the shortest order limit when none is known
  to be, or ``DEFAULT_ORDER_BLOCK_S``; other requests go on.
* **Before the venue says no.** When a header shows a counter at its limit, the matching
  requests wait one full interval from now. The venue's windows may end sooner (their
  alignment is not documented), so this can wait longer than needed, never shorter: a refused
  order is harmless, but ignoring 429s leads to an IP ban.
* **The WebSocket API counts on the same meters.** Its answers carry ``rateLimits``
  (``[{"rateLimitType", "interval", "intervalNum", "limit", "count"}]``: the same per-IP weight
  and per-account order counters as REST's headers, with the limit beside each count), and a
  429/418 answer's ``error.data`` says ``retryAfter`` (epoch ms) next to ``serverTime``: both
  feed the same state as REST answers, so one hold covers both transports.
* A block only ever extends (``max``): a later, shorter ``Retry-After`` never shortens a ban.
* **A hold outlives its client.** ``hold`` installs a block known from elsewhere (the same
  account's previous REST client, a hold saved before a daemon restart), so what the venue
  said is obeyed by whoever sends next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from actors.errors import DecodeError
from actors.exchanges.parsing import FOREIGN_ERRORS, decode_failure, expect_dict, expect_list

__all__ = [
    "DEFAULT_BAN_S",
    "DEFAULT_ORDER_BLOCK_S",
    "RateLimitRule",
    "RateLimitState",
    "interval_seconds",
    "parse_rate_limits",
    "parse_retry_after",
]

DEFAULT_BAN_S = 120.0
DEFAULT_ORDER_BLOCK_S = 10.0
_UNIT_SECONDS = {"S": 1, "M": 60, "H": 3600, "D": 86400}
_INTERVAL_UNITS = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}
_WEIGHT_HEADER = "x-mbx-used-weight-"
_ORDER_HEADER = "x-mbx-order-count-"


def interval_seconds(key: str) -> int:
    """``"10S"`` -> 10, ``"1M"`` -> 60, ``"1D"`` -> 86400; ValueError otherwise."""
    number, unit = key[:-1], key[-1:].upper()
    if not number.isdigit() or unit not in _UNIT_SECONDS or int(number) <= 0:
        raise ValueError(f"not a rate-limit interval: {key!r}")
    return int(number) * _UNIT_SECONDS[unit]


@attrs.frozen(slots=True)
class RateLimitRule:
    limit_type: str  # REQUEST_WEIGHT, ORDERS, RAW_REQUESTS
    interval: str  # the header suffix: "1M", "10S", "1D"
    limit: int

    @property
    def seconds(self) -> int:
        return interval_seconds(self.interval)


def parse_rate_limits(exchange_info: Mapping[str, Any]) -> tuple[RateLimitRule, ...]:
    """The ``rateLimits`` of an ``exchangeInfo`` body."""
    try:
        rules = []
        for item in expect_list(exchange_info["rateLimits"], "rateLimits"):
            r = expect_dict(item, "rateLimit")
            unit = _INTERVAL_UNITS[r["interval"]]
            number, limit = r["intervalNum"], r["limit"]
            if type(number) is not int or type(limit) is not int or number <= 0 or limit <= 0:
                raise DecodeError(f"rateLimit: bad intervalNum or limit in {r!r:.120}")
            rules.append(RateLimitRule(str(r["rateLimitType"]), f"{number}{unit}", limit))
        return tuple(rules)
    except DecodeError:
        raise
    except FOREIGN_ERRORS as exc:
        raise decode_failure("binance rateLimits", exc) from None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the venue sends whole seconds); None when absent or bad."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _counters(headers: Mapping[str, str], prefix: str) -> dict[str, int]:
    found = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(prefix):
            interval = lower[len(prefix) :].upper()
            text = value.strip()
            if text.isdigit():
                try:
                    interval_seconds(interval)
                except ValueError:
                    continue
                found[interval] = int(text)
    return found


@attrs.define
class RateLimitState:
    rules: tuple[RateLimitRule, ...] = ()
    requests_blocked_until: float = -math.inf  # every request (weight limit, ban)
    orders_blocked_until: float = -math.inf  # new orders (order count), on top of the above
    reason: str = ""
    used_weight: dict[str, int] = attrs.Factory(dict)
    order_count: dict[str, int] = attrs.Factory(dict)

    def _rules(self, limit_type: str) -> list[RateLimitRule]:
        return [r for r in self.rules if r.limit_type == limit_type]

    def _block_requests(self, until: float, reason: str) -> None:
        if until > self.requests_blocked_until:
            self.requests_blocked_until = until
            self.reason = reason

    def _block_orders(self, until: float, reason: str) -> None:
        if until > self.orders_blocked_until:
            self.orders_blocked_until = until
            self.reason = reason

    def observe(self, now: float, status: int, headers: Mapping[str, str]) -> None:
        """One response (any endpoint), received at local time ``now``."""
        weights = _counters(headers, _WEIGHT_HEADER)
        orders = _counters(headers, _ORDER_HEADER)
        self._counted(now, weights, orders)
        if status in (418, 429):
            self._refused(now, status, parse_retry_after(_header(headers, "retry-after")))

    def observe_ws(self, now: float, answer: Mapping[str, Any]) -> None:
        """One WebSocket API answer (``{"id", "status", ..., "rateLimits"}``), received at
        local time ``now``. Malformed items are skipped: limits are advice here, and REST
        answers keep the state honest."""
        weights: dict[str, int] = {}
        orders: dict[str, int] = {}
        items = answer.get("rateLimits")
        for item in items if isinstance(items, list) else ():
            counted = _ws_counter(item)
            if counted is None:
                continue
            limit_type, interval, limit, count = counted
            if limit_type == "REQUEST_WEIGHT":
                weights[interval] = count
                if count >= limit:
                    reason = f"weight {count}/{limit} per {interval}"
                    self._block_requests(now + interval_seconds(interval), reason)
            elif limit_type == "ORDERS":
                orders[interval] = count
                if count >= limit:
                    reason = f"orders {count}/{limit} per {interval}"
                    self._block_orders(now + interval_seconds(interval), reason)
        self._counted(now, weights, orders)
        status = answer.get("status")
        if status in (418, 429):
            self._refused(now, int(status), _ws_retry_after(answer.get("error")))

    def _counted(self, now: float, weights: dict[str, int], orders: dict[str, int]) -> None:
        self.used_weight.update(weights)
        self.order_count.update(orders)
        # Only counters this response carries: a count remembered from before is stale.
        for rule in self._rules("REQUEST_WEIGHT"):
            used = weights.get(rule.interval)
            if used is not None and used >= rule.limit:
                reason = f"weight {used}/{rule.limit} per {rule.interval}"
                self._block_requests(now + rule.seconds, reason)
        for rule in self._rules("ORDERS"):
            count = orders.get(rule.interval)
            if count is not None and count >= rule.limit:
                reason = f"orders {count}/{rule.limit} per {rule.interval}"
                self._block_orders(now + rule.seconds, reason)

    def _refused(self, now: float, status: int, retry_after: float | None) -> None:
        if status == 418:
            wait = DEFAULT_BAN_S if retry_after is None else retry_after
            self._block_requests(now + wait, f"IP banned (418) for {wait:g} s")
        elif retry_after is not None:
            self._block_requests(now + retry_after, f"rate limited (429) for {retry_after:g} s")
        else:
            wait = self._order_limit_wait()
            self._block_orders(now + wait, f"order rate limited (429) for {wait:g} s")

    def _order_limit_wait(self) -> float:
        order_rules = self._rules("ORDERS")
        exhausted = [
            r.seconds for r in order_rules if self.order_count.get(r.interval, 0) >= r.limit
        ]
        if exhausted:
            return float(max(exhausted))
        if order_rules:
            return float(min(r.seconds for r in order_rules))
        return DEFAULT_ORDER_BLOCK_S

    def hold(self, *, requests_until: float, orders_until: float, reason: str) -> None:
        """Hold requests and new orders until the given local times (only ever extends)."""
        self._block_requests(requests_until, reason)
        self._block_orders(orders_until, reason)

    def requests_allowed(self, now: float) -> bool:
        return now >= self.requests_blocked_until

    def orders_allowed(self, now: float) -> bool:
        return now >= self.requests_blocked_until and now >= self.orders_blocked_until

    def order_wait_s(self, now: float) -> float:
        """How long until a new order may be sent (0: now)."""
        return max(0.0, self.requests_blocked_until - now, self.orders_blocked_until - now)

    def request_wait_s(self, now: float) -> float:
        return max(0.0, self.requests_blocked_until - now)


def _ws_counter(item: object) -> tuple[str, str, int, int] | None:
    """(type, interval key such as ``"1M"``, limit, count) of a ``rateLimits`` item."""
    if not isinstance(item, dict):
        return None
    unit = _INTERVAL_UNITS.get(item.get("interval"))  # type: ignore[arg-type]
    number, limit, count = item.get("intervalNum"), item.get("limit"), item.get("count")
    if unit is None or type(number) is not int or number <= 0:
        return None
    if type(limit) is not int or type(count) is not int or limit <= 0:
        return None
    return str(item.get("rateLimitType")), f"{number}{unit}", limit, count


def _ws_retry_after(error: object) -> float | None:
    """Seconds from a WebSocket API refusal's ``data`` (``retryAfter`` minus ``serverTime``,
    both venue ms, so no clock of ours is involved)."""
    data = error.get("data") if isinstance(error, dict) else None
    if not isinstance(data, dict):
        return None
    retry_at, server_ms = data.get("retryAfter"), data.get("serverTime")
    if type(retry_at) is not int or type(server_ms) is not int:
        return None
    return max(0.0, (retry_at - server_ms) / 1000)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, item in headers.items():
        if key.lower() == name:
            return item
    return None
