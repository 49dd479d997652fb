"""Rate limits: headers, 429/418 with Retry-After, and the order-count limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import DecodeError
from actors.venues.binance.rate_limits import (
    DEFAULT_BAN_S,
    DEFAULT_ORDER_BLOCK_S,
    RateLimitRule,
    RateLimitState,
    interval_seconds,
    parse_rate_limits,
    parse_retry_after,
)

EXCHANGE_INFO = {
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ]
}


def state() -> RateLimitState:
    return RateLimitState(rules=parse_rate_limits(EXCHANGE_INFO))


def test_parse_rate_limits():
    assert parse_rate_limits(EXCHANGE_INFO) == (
        RateLimitRule("REQUEST_WEIGHT", "1M", 6000),
        RateLimitRule("ORDERS", "10S", 100),
        RateLimitRule("ORDERS", "1D", 200000),
        RateLimitRule("RAW_REQUESTS", "5M", 61000),
    )
    assert [r.seconds for r in parse_rate_limits(EXCHANGE_INFO)] == [60, 10, 86400, 300]


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {
            "rateLimits": [
                {"rateLimitType": "ORDERS", "interval": "WEEK", "intervalNum": 1, "limit": 1}
            ]
        },
        {
            "rateLimits": [
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 0, "limit": 1}
            ]
        },
        {
            "rateLimits": [
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": "1"}
            ]
        },
        {"rateLimits": ["x"]},
    ],
)
def test_malformed_rate_limits(bad: dict[str, object]):
    with pytest.raises(DecodeError):
        parse_rate_limits(bad)


def test_intervals_and_retry_after():
    assert interval_seconds("10S") == 10
    assert interval_seconds("1m") == 60
    assert interval_seconds("2H") == 7200
    for bad in ("S", "0S", "1W", "x1M", ""):
        with pytest.raises(ValueError, match="not a rate-limit interval"):
            interval_seconds(bad)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 7 ") == 7
    assert parse_retry_after("-3") == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("inf") is None


def test_headers_are_read_case_insensitively():
    s = state()
    s.observe(
        0.0,
        200,
        {
            "X-MBX-USED-WEIGHT-1M": "12",
            "x-mbx-order-count-10s": "3",
            "X-MBX-ORDER-COUNT-1D": "40",
            "X-MBX-USED-WEIGHT-1W": "1",
            "X-MBX-USED-WEIGHT-5M": "lots",
            "Content-Type": "application/json",
        },
    )
    assert s.used_weight == {"1M": 12}
    assert s.order_count == {"10S": 3, "1D": 40}
    assert s.orders_allowed(0.0)
    assert s.requests_allowed(0.0)


def test_429_with_retry_after_blocks_every_request():
    s = state()
    s.observe(100.0, 429, {"Retry-After": "30"})
    assert not s.requests_allowed(129.9)
    assert not s.orders_allowed(129.9)
    assert s.request_wait_s(100.0) == 30
    assert s.order_wait_s(110.0) == 20
    assert s.requests_allowed(130.0)
    assert s.orders_allowed(130.0)
    assert "429" in s.reason


def test_418_is_a_ban_and_a_later_shorter_answer_never_shortens_it():
    s = state()
    s.observe(0.0, 418, {"retry-after": "600"})
    s.observe(1.0, 429, {"retry-after": "5"})
    assert not s.requests_allowed(599.0)
    assert s.requests_allowed(600.0)
    assert "418" in s.reason
    banned = state()
    banned.observe(0.0, 418, {})
    assert banned.request_wait_s(0.0) == DEFAULT_BAN_S


def test_429_without_retry_after_is_the_order_limit_and_blocks_orders_only():
    s = state()
    s.observe(0.0, 200, {"X-MBX-ORDER-COUNT-10S": "100", "X-MBX-ORDER-COUNT-1D": "500"})
    assert not s.orders_allowed(5.0)  # at the 10 s limit already: wait before the venue says so
    s.observe(5.0, 429, {})
    assert s.requests_allowed(5.0)  # lookups and cancels go on
    assert not s.orders_allowed(14.9)
    assert s.orders_allowed(15.0)
    # Nothing known to be exhausted: the shortest order interval.
    fresh = state()
    fresh.observe(0.0, 429, {})
    assert fresh.order_wait_s(0.0) == 10
    # The daily limit exhausted: a day.
    daily = state()
    daily.observe(0.0, 200, {"X-MBX-ORDER-COUNT-1D": "200000"})
    daily.observe(1.0, 429, {})
    assert daily.order_wait_s(1.0) == 86400
    # No rules known at all.
    bare = RateLimitState()
    bare.observe(0.0, 429, {})
    assert bare.order_wait_s(0.0) == DEFAULT_ORDER_BLOCK_S


def test_used_weight_at_the_limit_blocks_requests_for_a_window():
    s = state()
    s.observe(0.0, 200, {"X-MBX-USED-WEIGHT-1M": "5999"})
    assert s.requests_allowed(0.1)
    s.observe(1.0, 200, {"X-MBX-USED-WEIGHT-1M": "6000"})
    assert not s.requests_allowed(60.9)
    assert s.requests_allowed(61.0)
    assert "weight 6000/6000 per 1M" == s.reason


def test_a_remembered_count_does_not_block_again_once_its_block_ended():
    s = state()
    s.observe(0.0, 200, {"X-MBX-ORDER-COUNT-10S": "100"})
    assert s.orders_allowed(10.0)
    s.observe(11.0, 200, {"X-MBX-USED-WEIGHT-1M": "4"})  # a later response without order counts
    assert s.orders_allowed(11.0)


@given(
    events=st.lists(
        st.tuples(
            st.floats(0, 1000),
            st.sampled_from([200, 400, 418, 429, 500]),
            st.one_of(st.none(), st.integers(0, 10_000).map(str)),
        ),
        max_size=20,
    )
)
def test_blocks_only_ever_extend(events: list[tuple[float, int, str | None]]):
    s = state()
    last_requests, last_orders = s.requests_blocked_until, s.orders_blocked_until
    for now, status, retry in sorted(events, key=lambda e: e[0]):
        s.observe(now, status, {} if retry is None else {"Retry-After": retry})
        assert s.requests_blocked_until >= last_requests
        assert s.orders_blocked_until >= last_orders
        last_requests, last_orders = s.requests_blocked_until, s.orders_blocked_until
        if status in (418, 429) and retry is not None:
            assert not s.requests_allowed(now + int(retry) - 0.001) or int(retry) == 0


def weight(count: int, limit: int = 6000, **changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": limit,
        "count": count,
    }
    item.update(changes)
    return item


def test_websocket_api_rate_limits_count_on_the_same_meters():
    limits = RateLimitState()  # no exchangeInfo rules: the answer's own limit is used
    limits.observe_ws(0.0, {"id": 1, "status": 200, "rateLimits": [weight(70)]})
    assert limits.used_weight == {"1M": 70}
    assert limits.requests_allowed(0.0)
    orders = {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 5}
    limits.observe_ws(1.0, {"status": 200, "rateLimits": [weight(6000), {**orders, "count": 5}]})
    assert limits.request_wait_s(1.0) == 60
    assert limits.order_wait_s(1.0) == 60
    assert limits.order_count == {"10S": 5}


def test_websocket_api_refusals_hold_for_their_retry_after():
    limits = RateLimitState()
    data = {"serverTime": 1_000_000, "retryAfter": 1_030_000}
    limits.observe_ws(5.0, {"status": 429, "error": {"code": -1003, "data": data}})
    assert limits.request_wait_s(5.0) == 30
    banned = {"status": 418, "error": {"code": -1003, "msg": "IP banned"}}  # no data
    limits.observe_ws(5.0, banned)
    assert limits.request_wait_s(5.0) == DEFAULT_BAN_S
    assert "418" in limits.reason


@pytest.mark.parametrize(
    "item",
    [
        "not a dict",
        weight(10, interval="FORTNIGHT"),
        weight(10, intervalNum=0),
        weight(10, limit="6000"),
        weight(True),
        weight(10, limit=0),
    ],
)
def test_malformed_websocket_rate_limits_are_skipped(item: object):
    limits = RateLimitState()
    limits.observe_ws(0.0, {"status": 200, "rateLimits": [item, weight(6000)]})
    assert limits.used_weight == {"1M": 6000}  # the good item still counts
    limits.observe_ws(0.0, {"status": 200, "rateLimits": "nonsense"})
    assert limits.request_wait_s(0.0) == 60
