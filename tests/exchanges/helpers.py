"""Shared checks and hypothesis strategies for the codec tests."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from actors.errors import DecodeError
from actors.messages import (
    Heartbeat,
    ReconnectRequested,
    SequenceGap,
    Subscribed,
    SubscriptionError,
    SystemStatus,
    Ticker,
    Trade,
    Unsubscribed,
)

EVENT_TYPES = (
    Ticker,
    Trade,
    Subscribed,
    Unsubscribed,
    SubscriptionError,
    Heartbeat,
    SystemStatus,
    ReconnectRequested,
    SequenceGap,
)

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _good_price(value: object) -> bool:
    return type(value) is Decimal and value.is_finite() and value > 0


def _good_size(value: object) -> bool:
    return value is None or (type(value) is Decimal and value.is_finite() and value >= 0)


def assert_sane(events: object) -> None:
    """What every decode result must satisfy, whatever the input."""
    assert type(events) is list
    for event in events:
        assert isinstance(event, EVENT_TYPES), event
        if isinstance(event, Ticker):
            assert _good_price(event.bid), event
            assert _good_price(event.ask), event
            assert event.bid <= event.ask, event
            assert event.last is None or _good_price(event.last), event
            assert _good_size(event.bid_size), event
            assert _good_size(event.ask_size), event
            assert event.source in ("ws", "rest")
            assert float(event.bid) != float("inf")
            assert float(event.ask) != float("inf")
        elif isinstance(event, Trade):
            assert _good_price(event.price), event
            assert type(event.size) is Decimal
            assert event.size.is_finite()
            assert event.size > 0
            assert event.side in ("buy", "sell"), event
            assert float(event.price) != float("inf")


def decode_checked(codec, frame) -> None:
    """Decode must return sane events or raise DecodeError; nothing else may escape."""
    try:
        events = codec.decode(frame, 1.0)
    except DecodeError as exc:
        message = str(exc)
    else:
        assert_sane(events)
        return
    assert message, "a DecodeError must say what was wrong"


def raises_decode(codec, frame, match: str | None = None):
    with pytest.raises(DecodeError, match=match) as info:
        codec.decode(frame, 1.0)
    return info


# --- strategies -------------------------------------------------------------------------------

NUMBER_EDGE_CASES = [
    "0",
    "0.0",
    "-0",
    "-1",
    "-0.0001",
    "1",
    "0.00000001",
    "25.35190000",
    "NaN",
    "nan",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e400",
    "-1e400",
    "1e-400",
    "1E+29",
    "9" * 80,
    "1_000",
    " 1",
    "1 ",
    "",
    ".",
    "1.2.3",
    "٣",
    "0x10",
    "1e",
    "+5",
    "123456789012345678901234.5",
]

number_text = st.one_of(
    st.sampled_from(NUMBER_EDGE_CASES),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.integers().map(str),
    st.text(max_size=8),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    number_text,
)

any_json = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=6), children, max_size=4),
    ),
    max_leaves=12,
)

# Plausible quotes, so fuzzed frames also reach the code that builds events.
plausible_text = st.decimals(min_value=0, max_value=10**7, places=6).map(str)

# A value for a field inside a protocol-shaped frame: usually number-ish text, sometimes junk.
field = st.one_of(plausible_text, plausible_text, plausible_text, number_text, scalars, any_json)

rfc3339 = st.one_of(
    st.sampled_from(
        [
            "2024-01-07T22:55:34.347040Z",
            "2026-06-19T16:43:33.016274911Z",
            "2026-08-09 21:05:48.854840045 +0000 UTC m=+41691.26",
            "2024-13-40T99:99:99Z",
            "2024-01-07T22:55:34.1234567890Z",
            "2024-01-07T22:55:34+05:30",
        ]
    ),
    st.text(max_size=30),
    scalars,
)


def as_frames(values: st.SearchStrategy) -> st.SearchStrategy:
    """JSON text (stdlib, so NaN/Infinity literals appear too) or its UTF-8 bytes."""
    text = values.map(lambda value: json.dumps(value, allow_nan=True))
    return st.one_of(text, text.map(str.encode))


def optional_keys(required: dict, optional: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries(required, optional=optional)
