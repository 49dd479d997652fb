import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.exchanges import RestRequest, codec_for
from actors.exchanges.kraken_v1 import KrakenV1Codec
from actors.messages import (
    Heartbeat,
    Stream,
    Subscribed,
    SubscriptionError,
    SystemStatus,
    Ticker,
    Trade,
    Unsubscribed,
)
from tests.exchanges.helpers import (
    FUZZ,
    any_json,
    as_frames,
    decode_checked,
    field,
    optional_keys,
    plausible_text,
    raises_decode,
)

BTC_TICKER = Stream("ticker", "BTC/USD")
DOGE_TICKER = Stream("ticker", "DOGE/USD")
BTC_TRADE = Stream("trade", "BTC/USD")
WAVES_TICKER = Stream("ticker", "WAVES/EUR")

TICKER = [
    1668,
    {
        "a": ["13.253900", 35, "35.72892241"],
        "b": ["13.232900", 185, "185.18432037"],
        "c": ["13.253900", "3.71672000"],
        "v": ["26560.85", "72035.05"],
        "p": ["13.529003", "13.734728"],
        "t": [640, 1353],
        "l": ["13.0218", "13.0218"],
        "h": ["13.9420", "14.2112"],
        "o": ["13.8040", "13.4283"],
    },
    "ticker",
    "WAVES/EUR",
]
SPREAD = [
    0,
    ["5698.40000", "5700.00000", "1542057299.545897", "1.01234567", "0.98765432"],
    "spread",
    "XBT/USD",
]
TRADES = [
    0,
    [
        ["5541.20000", "0.15850568", "1534614057.321597", "s", "l", ""],
        ["6060.00000", "0.02455000", "1534614057.324998", "b", "l", ""],
    ],
    "trade",
    "XBT/USD",
]


def frame(data: object) -> str:
    return json.dumps(data)


@pytest.fixture
def codec() -> KrakenV1Codec:
    codec = codec_for("kraken_v1")
    codec.subscribe_messages([BTC_TICKER, DOGE_TICKER, BTC_TRADE])
    return codec


def test_contract_attributes():
    codec = codec_for("kraken_v1")
    assert isinstance(codec, KrakenV1Codec)
    assert codec.default_url == "wss://ws.kraken.com"
    assert codec.default_rest_url == "https://api.kraken.com"
    assert codec.max_streams_per_connection is None


def test_v1_symbol_names():
    codec = codec_for("kraken_v1")
    assert codec.native_symbol("BTC/USD") == "XBT/USD"
    assert codec.native_symbol("DOGE/USD") == "XDG/USD"
    assert codec.native_symbol("ETH/BTC") == "ETH/XBT"
    assert codec.unified_symbol("XBT/USD") == "BTC/USD"
    assert codec.unified_symbol("XDG/USD") == "DOGE/USD"


def test_subscribe_and_unsubscribe_frames_are_exact():
    codec = codec_for("kraken_v1")
    assert codec.subscribe_messages([BTC_TICKER, DOGE_TICKER, BTC_TRADE]) == [
        '{"event":"subscribe","pair":["XBT/USD","XDG/USD"],"subscription":{"name":"spread"},'
        '"reqid":1}',
        '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"trade"},"reqid":2}',
    ]
    assert codec.unsubscribe_messages([BTC_TRADE]) == [
        '{"event":"unsubscribe","pair":["XBT/USD"],"subscription":{"name":"trade"},"reqid":3}'
    ]


def test_system_status_with_u64_connection_id(codec):
    status = (
        '{"connectionID":18239578009413566319,"event":"systemStatus","status":"online",'
        '"version":"1.8.3"}'
    )
    assert codec.decode(status, 1.0) == [SystemStatus("kraken_v1", "online")]


def test_heartbeat_and_pong(codec):
    assert codec.decode('{"event":"heartbeat"}', 1.0) == [Heartbeat("kraken_v1")]
    assert codec.decode('{"event":"pong","reqid":42}', 1.0) == [Heartbeat("kraken_v1")]


def test_subscription_status_per_pair(codec):
    status = {
        "channelID": 10001,
        "channelName": "spread",
        "event": "subscriptionStatus",
        "pair": "XBT/USD",
        "status": "subscribed",
        "subscription": {"name": "spread"},
        "reqid": 1,
    }
    assert codec.decode(frame(status), 1.0) == [Subscribed("kraken_v1", (BTC_TICKER,), 1)]
    status["pair"] = "XDG/USD"
    assert codec.decode(frame(status), 1.0) == [Subscribed("kraken_v1", (DOGE_TICKER,), 1)]
    assert 1 not in codec._pending
    codec.unsubscribe_messages([BTC_TRADE])
    gone = {
        "channelName": "trade",
        "event": "subscriptionStatus",
        "pair": "XBT/USD",
        "status": "unsubscribed",
        "subscription": {"name": "trade"},
        "reqid": 3,
    }
    assert codec.decode(frame(gone), 1.0) == [Unsubscribed("kraken_v1", (BTC_TRADE,), 3)]


def test_subscription_errors(codec):
    trade_error = {
        "errorMessage": "Currency pair not supported LSK/XBT",
        "event": "subscriptionStatus",
        "pair": "LSK/XBT",
        "status": "error",
        "subscription": {"name": "trade"},
    }
    assert codec.decode(frame(trade_error), 1.0) == [
        SubscriptionError(
            "kraken_v1", "Currency pair not supported LSK/XBT", (Stream("trade", "LSK/BTC"),)
        )
    ]
    bad_format = {
        "errorMessage": "Currency pair not in ISO 4217-A3 format XBT-USDT",
        "event": "subscriptionStatus",
        "pair": "XBT-USDT",
        "status": "error",
        "subscription": {"name": "spread"},
        "reqid": 9,
    }
    assert codec.decode(frame(bad_format), 1.0) == [
        SubscriptionError("kraken_v1", "Currency pair not in ISO 4217-A3 format XBT-USDT", (), 9)
    ]
    book_error = {**trade_error, "subscription": {"name": "book"}}
    [error] = codec.decode(frame(book_error), 1.0)
    assert error.streams == ()
    whole = '{"errorMessage":"Event(s) not found","event":"error","reqid":2}'
    assert codec.decode(whole, 1.0) == [
        SubscriptionError("kraken_v1", "Event(s) not found", (BTC_TRADE,), 2)
    ]


def test_acks_for_channels_we_never_use_are_ignored(codec):
    book = {
        "channelID": 1,
        "channelName": "book-25",
        "event": "subscriptionStatus",
        "pair": "XBT/USD",
        "status": "subscribed",
        "subscription": {"name": "book"},
    }
    assert codec.decode(frame(book), 1.0) == []


def status(channel_id: int, name: str, pair: str, state: str = "subscribed") -> str:
    return frame(
        {
            "channelID": channel_id,
            "channelName": name,
            "event": "subscriptionStatus",
            "pair": pair,
            "status": state,
            "subscription": {"name": name.partition("-")[0]},
        }
    )


def test_channel_id_must_match_the_stream_it_was_assigned(codec):
    codec.decode(status(42, "spread", "XBT/USD"), 1.0)
    assert len(codec.decode(frame([42, *SPREAD[1:]]), 1.0)) == 1
    raises_decode(
        codec, frame([42, SPREAD[1], "spread", "XDG/USD"]), "channelID 42 is spread XBT/USD"
    )
    raises_decode(codec, frame([42, *TRADES[1:]]), "'trade' 'XBT/USD'")
    raises_decode(codec, frame([42, SPREAD[1], "spread", 5]), "channelID 42.* 5")
    # Channel ids we were never told about are not checked.
    assert len(codec.decode(frame([43, SPREAD[1], "spread", "XDG/USD"]), 1.0)) == 1
    # Unsubscribed: the id is free again.
    codec.decode(status(42, "spread", "XBT/USD", "unsubscribed"), 1.0)
    assert len(codec.decode(frame([42, SPREAD[1], "spread", "XDG/USD"]), 1.0)) == 1
    # A new assignment replaces the old one.
    codec.decode(status(42, "trade", "XBT/USD"), 1.0)
    assert len(codec.decode(frame([42, *TRADES[1:]]), 1.0)) == 2


def test_channel_id_check_uses_the_channel_name_data_frames_carry(codec):
    codec.decode(status(7, "book-10", "XBT/USD"), 1.0)
    book = [7, {"as": [], "bs": []}, "book-10", "XBT/USD"]
    assert codec.decode(frame(book), 1.0) == []
    raises_decode(codec, frame([7, {"as": [], "bs": []}, "book-25", "XBT/USD"]), "book-10")


def test_ticker_size_is_index_two(codec):
    [ticker] = codec.decode(frame(TICKER), 4.0)
    assert ticker == Ticker(
        "kraken_v1",
        "WAVES/EUR",
        Decimal("13.232900"),
        Decimal("13.253900"),
        Decimal("13.253900"),
        Decimal("185.18432037"),
        Decimal("35.72892241"),
        None,
        4.0,
    )
    zero_lots = [1668, {**TICKER[1], "a": ["13.253900", 0, "0.5"]}, "ticker", "WAVES/EUR"]
    assert codec.decode(frame(zero_lots), 4.0)[0].ask_size == Decimal("0.5")


def test_spread_is_the_real_time_ticker(codec):
    [ticker] = codec.decode(frame(SPREAD), 3.0)
    assert ticker == Ticker(
        "kraken_v1",
        "BTC/USD",
        Decimal("5698.40000"),
        Decimal("5700.00000"),
        None,
        Decimal("1.01234567"),
        Decimal("0.98765432"),
        1542057299.545897,
        3.0,
    )
    old = [0, ["5698.4", "5700.0", "1542057299.545897"], "spread", "XDG/USD"]
    [short] = codec.decode(frame(old), 3.0)
    assert (short.symbol, short.bid_size) == ("DOGE/USD", None)


def test_trades_are_taker_side(codec):
    sold, bought = codec.decode(frame(TRADES), 2.0)
    assert sold == Trade(
        "kraken_v1",
        "BTC/USD",
        Decimal("5541.20000"),
        Decimal("0.15850568"),
        "sell",
        None,
        1534614057.321597,
        2.0,
    )
    assert (bought.side, bought.exchange_ts) == ("buy", 1534614057.324998)


def test_book_frames_are_ignored_including_the_five_element_form(codec):
    snapshot = [
        336,
        {"as": [["5541.3", "2.5", "1534614248.123678"]], "bs": []},
        "book-25",
        "XBT/USD",
    ]
    two_dicts = [
        1234,
        {"a": [["5541.30000", "2.50700000", "1534614248.456738"]]},
        {"b": [["5541.20000", "1.52900000", "1534614248.765567"]], "c": "974942666"},
        "book-25",
        "XBT/USD",
    ]
    ohlc = [
        42,
        [
            "1542057314.748456",
            "1542057360.435743",
            "3586.7",
            "3586.7",
            "3586.6",
            "3586.6",
            "3586.68894",
            "0.03373000",
            2,
        ],
        "ohlc-5",
        "XBT/USD",
    ]
    for data in (snapshot, two_dicts, ohlc):
        assert codec.decode(frame(data), 1.0) == []


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([0, ["0", "5700.0", "1542057299.5"], "spread", "XBT/USD"], "price must be > 0"),
        ([0, ["-1", "5700.0", "1542057299.5"], "spread", "XBT/USD"], "price must be > 0"),
        ([0, ["NaN", "5700.0", "1542057299.5"], "spread", "XBT/USD"], "decimal string"),
        ([0, ["5698.4", "1e400", "1542057299.5"], "spread", "XBT/USD"], "outside"),
        ([0, ["5701.0", "5700.0", "1542057299.5"], "spread", "XBT/USD"], "crossed book"),
        ([0, [5698.4, "5700.0", "1542057299.5"], "spread", "XBT/USD"], "decimal string"),
        ([0, ["5698.4", "5700.0", "soon"], "spread", "XBT/USD"], "seconds.micros"),
        ([0, ["5698.4"], "spread", "XBT/USD"], "unexpected frame structure"),
        ([0, [["5541.2", "0.1", "1534614057.3", "x", "l", ""]], "trade", "XBT/USD"], "b/s"),
        ([0, [["5541.2", "0", "1534614057.3", "s", "l", ""]], "trade", "XBT/USD"], "> 0"),
        ([0, {"a": ["1", 1, "1"]}, "ticker", "XBT/USD"], "missing field 'b'"),
        ([0, SPREAD[1], "spread", "XBTUSD"], "BASE/QUOTE"),
        ([0, "spread", "XBT/USD"], ">= 4 elements"),
        ({"event": "subscriptionStatus", "status": "maybe", "pair": "XBT/USD"}, "unknown"),
        ({"status": "online"}, "missing field 'event'"),
        ("just a string", "array or object"),
    ],
)
def test_invalid_frames(codec, data, match):
    raises_decode(codec, frame(data), match)


def test_invalid_json(codec):
    raises_decode(codec, "[1,", "invalid JSON")


def test_rest_uses_v1_asset_codes():
    codec = codec_for("kraken_v1")
    assert codec.rest_ticker_request("DOGE/USD") == RestRequest(
        "https://api.kraken.com/0/public/Ticker", (("pair", "XDGUSD"),)
    )
    body = (
        '{"error":[],"result":{"XDGUSD":{"a":["0.16","1","1.000"],"b":["0.15","2","2.000"],'
        '"c":["0.155","0.1"],"o":"0.15"}}}'
    )
    ticker = codec.decode_rest_ticker(body, "DOGE/USD", 1.0)
    assert (ticker.exchange, ticker.symbol, ticker.bid, ticker.source) == (
        "kraken_v1",
        "DOGE/USD",
        Decimal("0.15"),
        "rest",
    )


# --- fuzzing ----------------------------------------------------------------------------------

_pair_names = st.sampled_from(["XBT/USD", "XDG/USD", "XBT-USDT", "WAVES/EUR"])
pairs = st.one_of(_pair_names, _pair_names, _pair_names, field)
times = st.sampled_from(["1542057299.545897", "1e9", "nan"]) | field
shaped = st.one_of(
    st.tuples(
        st.integers(0, 2**64),
        st.lists(plausible_text | field, min_size=3, max_size=5),
        st.just("spread"),
        pairs,
    ).map(list),
    st.tuples(
        st.just(0), st.lists(plausible_text, min_size=3, max_size=5), st.just("spread"), _pair_names
    ).map(list),
    st.tuples(
        st.integers(0, 2**64),
        st.lists(
            st.tuples(
                plausible_text,
                plausible_text,
                times,
                st.sampled_from(["b", "s"]) | field,
                st.just("l"),
                st.just(""),
            ).map(list)
            | any_json,
            max_size=3,
        ),
        st.just("trade"),
        pairs,
    ).map(list),
    st.tuples(
        st.integers(),
        st.fixed_dictionaries(
            {
                "a": st.tuples(plausible_text, st.integers(), plausible_text).map(list) | field,
                "b": st.tuples(plausible_text, st.integers(), plausible_text).map(list) | field,
            },
            optional={"c": st.lists(field, max_size=2)},
        ),
        st.just("ticker"),
        pairs,
    ).map(list),
    st.lists(
        any_json | st.sampled_from(["spread", "trade", "ticker", "book-25"]), min_size=3, max_size=6
    ),
    optional_keys(
        {
            "event": st.sampled_from(["subscriptionStatus", "systemStatus", "error", "heartbeat"])
            | field
        },
        {
            "status": st.sampled_from(["subscribed", "unsubscribed", "error"]) | field,
            "pair": pairs,
            "reqid": st.integers(0, 3) | field,
            "errorMessage": field,
            "channelName": st.sampled_from(["spread", "trade"]) | field,
            "subscription": optional_keys({}, {"name": field}),
        },
    ),
    any_json,
)


@given(frames=st.lists(st.binary(max_size=64) | as_frames(shaped), min_size=1, max_size=4))
@FUZZ
def test_fuzz_never_raises_anything_but_decode_error(frames):
    codec = codec_for("kraken_v1")
    codec.subscribe_messages([BTC_TICKER, DOGE_TICKER, BTC_TRADE])
    for data in frames:
        decode_checked(codec, data)
