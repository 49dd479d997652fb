from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import DecodeError
from actors.exchanges import parsing
from actors.exchanges.parsing import (
    check_book,
    decode_failure,
    ms_ts,
    number_price,
    number_size,
    price,
    rfc3339_ts,
    size,
    trade_id,
    trade_size,
    unix_str_ts,
)
from tests.exchanges.helpers import FUZZ, NUMBER_EDGE_CASES


def test_price_keeps_the_exchange_digits():
    assert str(price("25.35190000", "b")) == "25.35190000"
    assert price("0.00000001", "b") == Decimal("1E-8")
    # Large but finite and below the absurdity bound: kept digit for digit.
    assert str(price("12345678901234567890123456789.123", "b")) == (
        "12345678901234567890123456789.123"
    )
    assert price("1E+29", "b") == Decimal(10) ** 29


@pytest.mark.parametrize(
    "bad",
    [
        "0",
        "0.0",
        "-0",
        "-1",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1e400",
        "1e30",
        "1e-400",
        " 1",
        "1 ",
        "1_000",
        "١٢",
        "",
        ".",
        "1.2.3",
        "0x10",
        "1e",
        "9" * 65,
        1.5,
        1,
        None,
        True,
        [],
        {},
    ],
)
def test_price_refuses(bad):
    with pytest.raises(DecodeError, match="the_field"):
        price(bad, "the_field")


def test_sizes_allow_zero_but_not_negative():
    assert size("0.00000000", "B") == 0
    assert size("-0", "B") == 0
    assert size("31.21000000", "B") == Decimal("31.21")
    for bad in ("-1", "NaN", "1e400", "1.2.3", 3):
        with pytest.raises(DecodeError):
            size(bad, "B")
    with pytest.raises(DecodeError, match="trade size must be > 0"):
        trade_size("0", "q")
    assert trade_size("0.5", "q") == Decimal("0.5")


def test_number_price_accepts_json_numbers_and_strings():
    assert number_price(Decimal("105944.2"), "bid") == Decimal("105944.2")
    assert number_price(104711, "low") == Decimal(104711)
    assert number_price("105944.2", "bid") == Decimal("105944.2")
    assert number_size(0, "qty") == 0
    for bad in (
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("1E+400"),
        Decimal(0),
        True,
        1.5,
        None,
        10**40,
        -3,
        "NaN",
    ):
        with pytest.raises(DecodeError, match="bid"):
            number_price(bad, "bid")


@given(st.sampled_from(NUMBER_EDGE_CASES) | st.text(max_size=12) | st.decimals().map(str))
@FUZZ
def test_price_is_positive_finite_or_refused(text):
    try:
        value = price(text, "p")
    except DecodeError:
        return
    assert value.is_finite()
    assert value > 0
    assert float(value) not in (float("inf"), 0.0)


def test_rfc3339_microseconds_and_nanoseconds():
    expected = datetime(2024, 1, 7, 22, 55, 34, 347040, tzinfo=UTC).timestamp()
    assert rfc3339_ts("2024-01-07T22:55:34.347040Z", "t") == pytest.approx(expected, abs=1e-6)
    nine = rfc3339_ts("2026-06-19T16:43:33.016274911Z", "t")
    base = datetime(2026, 6, 19, 16, 43, 33, tzinfo=UTC).timestamp()
    assert nine - base == pytest.approx(0.016274911, abs=1e-6)
    assert rfc3339_ts("2024-01-07T22:55:34Z", "t") == pytest.approx(expected - 0.34704, abs=1e-6)
    assert rfc3339_ts("2024-01-07T23:55:34.347040+01:00", "t") == pytest.approx(expected, abs=1e-6)
    assert rfc3339_ts("2024-01-07T22:55:34.3Z", "t") == pytest.approx(expected - 0.04704, abs=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        "2026-08-09 21:05:48.854840045 +0000 UTC m=+41691.26",  # Advanced heartbeat current_time
        "2024-13-07T22:55:34Z",
        "2024-01-07T22:55:34.1234567890Z",
        "2024-01-07T22:55:99Z",
        "2024-01-07T22:55:34.5",
        "2024-01-07T22:55:34.Z",
        "2024-01-07T22:55:3x.5Z",
        "yesterday at noon, roughly",
        1704668134,
        None,
    ],
)
def test_rfc3339_refuses(bad):
    with pytest.raises(DecodeError, match="time"):
        rfc3339_ts(bad, "time")


def test_epoch_times():
    assert ms_ts(1672515782136, "T") == 1672515782.136
    assert unix_str_ts("1534614057.321597", "t") == pytest.approx(1534614057.321597)
    for bad in (True, -1, "1672515782136", 1.5, 10**20):
        with pytest.raises(DecodeError):
            ms_ts(bad, "T")
    for bad in ("1e9", "nan", " 1", "-1", "1.2.3", 1534614057.3, "99999999999999"):
        with pytest.raises(DecodeError):
            unix_str_ts(bad, "t")


def test_trade_ids():
    assert trade_id(592171029, "t") == "592171029"
    assert trade_id("1068572091", "t") == "1068572091"
    for bad in (None, 1.5, "", [1]):
        with pytest.raises(DecodeError):
            trade_id(bad, "t")


def test_crossed_book_is_refused_but_locked_is_allowed():
    check_book(Decimal(1), Decimal(1), "x")
    with pytest.raises(DecodeError, match="crossed book"):
        check_book(Decimal(2), Decimal(1), "x")


def test_decode_failure_names_the_problem():
    assert "missing field 'u'" in str(decode_failure("binance", KeyError("u")))
    assert "unexpected frame structure" in str(decode_failure("binance", TypeError("x")))
    with pytest.raises(orjson.JSONDecodeError) as info:
        orjson.loads(b"{")
    assert "invalid JSON" in str(decode_failure("binance", info.value))


def test_pending_requests_are_bounded():
    pending: dict[int, int] = {}
    for key in range(parsing.MAX_PENDING + 10):
        parsing.remember(pending, key, key)
    assert len(pending) == parsing.MAX_PENDING
    assert 0 not in pending
    assert parsing.MAX_PENDING + 9 in pending
