from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import DecodeError
from actors.exchanges import parsing
from actors.exchanges.parsing import (
    book_quote,
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


def _quote_by_parts(bid, ask, bid_size, ask_size):
    """What ``book_quote`` stands for: the five checks, one by one."""
    try:
        b = price(bid, "q b")
        a = price(ask, "q a")
        check_book(b, a, "q")
        return (b, a, size(bid_size, "q B"), size(ask_size, "q A"))
    except DecodeError as exc:
        return str(exc)


_QUOTE_TEXT = (
    st.sampled_from(NUMBER_EDGE_CASES)
    | st.sampled_from(["65000.01000000", "0.00000000", "1.", ".5", "0" * 30, "9" * 31, "1" * 30])
    | st.sampled_from(["0." + "0" * 27 + "1", "." + "0" * 28 + "1", "1" * 29 + ".5"])
    | st.text(alphabet="0123456789.eE+-", max_size=32)
    | st.decimals(allow_nan=False).map(str)
    | st.integers(0, 10**12).map(str)
    | st.integers()
)


@given(_QUOTE_TEXT, _QUOTE_TEXT, _QUOTE_TEXT, _QUOTE_TEXT)
@FUZZ
def test_book_quote_is_the_five_checks_in_one_call(bid, ask, bid_size, ask_size):
    """Its fast path (plain fixed-point text) gives what the five checks give, value for value
    and digit for digit; anything else gets their verdict and message."""
    expected = _quote_by_parts(bid, ask, bid_size, ask_size)
    try:
        got: object = book_quote(bid, ask, bid_size, ask_size, "q", ("b", "a", "B", "A"))
    except DecodeError as exc:
        got = str(exc)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert isinstance(got, tuple)
        assert [str(v) for v in got] == [str(v) for v in expected]


def test_book_quote_fast_path_values():
    assert book_quote(
        "65000.01000000", "65000.02000000", "1.5", "0.00000000", "q", ("b", "a", "B", "A")
    ) == (Decimal("65000.01"), Decimal("65000.02"), Decimal("1.5"), Decimal(0))
    assert str(book_quote("1", "1", "0.0", "2", "q", ("b", "a", "B", "A"))[2]) == "0"
    with pytest.raises(DecodeError, match="q: crossed book"):
        book_quote("2.0", "1.0", "1", "1", "q", ("b", "a", "B", "A"))
    with pytest.raises(DecodeError, match="q b: price must be > 0"):
        book_quote("0.000", "1.0", "1", "1", "q", ("b", "a", "B", "A"))


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
