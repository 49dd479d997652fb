import json
import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.exchanges import RestRequest, codec_for
from actors.exchanges.binance import BinanceCodec
from actors.messages import (
    ReconnectRequested,
    Stream,
    Subscribed,
    SubscriptionError,
    Ticker,
    Trade,
    Unsubscribed,
)
from tests.exchanges.helpers import (
    FUZZ,
    any_json,
    as_frames,
    assert_sane,
    decode_checked,
    field,
    optional_keys,
    plausible_text,
    raises_decode,
)

BTC_TICKER = Stream("ticker", "BTC/USDT")
ETH_TRADE = Stream("trade", "ETH/USDT")

BOOK = {
    "u": 400900217,
    "s": "BTCUSDT",
    "b": "25.35190000",
    "B": "31.21000000",
    "a": "25.36520000",
    "A": "40.66000000",
}


def combined(stream: str, data: object) -> str:
    return json.dumps({"stream": stream, "data": data})


@pytest.fixture
def codec() -> BinanceCodec:
    codec = codec_for("binance")
    codec.subscribe_messages([BTC_TICKER, ETH_TRADE])
    return codec


def test_contract_attributes():
    codec = codec_for("binance", exchange="binance-main")
    assert isinstance(codec, BinanceCodec)
    assert codec.exchange == "binance-main"
    assert codec.protocol == "binance"
    assert codec.default_url == "wss://stream.binance.com:9443/stream"
    assert codec.default_rest_url == "https://api.binance.com"
    assert codec.max_streams_per_connection == 1024
    assert codec.max_requests_per_second == 5


def test_symbol_mapping_both_ways():
    codec = codec_for("binance")
    assert codec.native_symbol("BTC/USDT") == "BTCUSDT"
    assert codec.unified_symbol("BTCUSDT") == "BTC/USDT"
    assert codec.unified_symbol("BTCFDUSD") == "BTC/FDUSD"
    codec.subscribe_messages([Stream("ticker", "1000SATS/USDT")])
    assert codec.unified_symbol("1000SATSUSDT") == "1000SATS/USDT"


def test_subscribe_batches_streams_in_one_request_with_integer_ids():
    codec = codec_for("binance")
    assert codec.subscribe_messages([BTC_TICKER, ETH_TRADE, BTC_TICKER]) == [
        '{"method":"SUBSCRIBE","params":["btcusdt@bookTicker","ethusdt@trade"],"id":1}'
    ]
    assert codec.unsubscribe_messages([BTC_TICKER]) == [
        '{"method":"UNSUBSCRIBE","params":["btcusdt@bookTicker"],"id":2}'
    ]
    assert codec.subscribe_messages([]) == []


def test_more_than_1024_streams_are_split_per_connection_cap():
    codec = codec_for("binance")
    streams = [Stream("ticker", f"C{i}/USDT") for i in range(1500)]
    frames = [json.loads(frame) for frame in codec.subscribe_messages(streams)]
    assert [len(frame["params"]) for frame in frames] == [1024, 476]
    assert [frame["id"] for frame in frames] == [1, 2]


def test_unsupported_kind_is_a_caller_error():
    with pytest.raises(ValueError, match="kind"):
        codec_for("binance").subscribe_messages([Stream("depth", "BTC/USDT")])  # type: ignore[arg-type]


def test_acks_resolve_to_streams():
    codec = codec_for("binance")
    codec.subscribe_messages([BTC_TICKER, ETH_TRADE])
    codec.unsubscribe_messages([ETH_TRADE])
    assert codec.decode('{"result":null,"id":1}', 1.0) == [
        Subscribed("binance", (BTC_TICKER, ETH_TRADE), 1)
    ]
    assert codec.decode('{"result":null,"id":2}', 1.0) == [Unsubscribed("binance", (ETH_TRADE,), 2)]
    # An id we never sent (or already resolved) still says "ok", just without streams.
    assert codec.decode('{"result":null,"id":1}', 1.0) == [Subscribed("binance", (), 1)]


def test_list_subscriptions_and_get_property(codec):
    events = codec.decode('{"result":["btcusdt@bookTicker","ethusdt@trade","x@depth"],"id":3}')
    assert events == [Subscribed("binance", (BTC_TICKER, ETH_TRADE), 3, cumulative=True)]
    assert codec.decode('{"result":true,"id":5}') == []


def test_nested_error_names_the_failed_streams(codec):
    [error] = codec.decode('{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}')
    assert error == SubscriptionError(
        "binance", "code 2: Invalid request: invalid stream", (BTC_TICKER, ETH_TRADE), 1
    )


def test_error_with_null_id_and_bare_error(codec):
    [error] = codec.decode('{"error":{"code":3,"msg":"Invalid JSON: expected value"},"id":null}')
    assert error == SubscriptionError("binance", "code 3: Invalid JSON: expected value", (), None)
    [bare] = codec.decode('{"code":0,"msg":"Unknown property","id":7}')
    assert bare == SubscriptionError("binance", "code 0: Unknown property", (), 7)


def test_error_shapes_that_break_the_protocol(codec):
    raises_decode(codec, '{"error":"nope","id":1}', "expected a JSON object")
    raises_decode(codec, '{"error":{"code":2,"msg":5},"id":1}', "msg must be a string")
    raises_decode(codec, '{"result":null,"id":"abc"}', "id must be an integer")


def test_combined_book_ticker(codec):
    [ticker] = codec.decode(combined("btcusdt@bookTicker", BOOK), 12.5)
    assert ticker == Ticker(
        "binance",
        "BTC/USDT",
        Decimal("25.35190000"),
        Decimal("25.36520000"),
        None,
        Decimal("31.21000000"),
        Decimal("40.66000000"),
        None,
        12.5,
        "ws",
        400900217,
    )
    assert str(ticker.bid) == "25.35190000"


def test_raw_book_ticker_is_recognised_by_its_keys():
    codec = codec_for("binance")
    frame = {"u": 1, "s": "BNBUSDT", "b": "25.3519", "B": "31.21", "a": "25.3652", "A": "40.66"}
    [ticker] = codec.decode(json.dumps(frame).encode(), 1.0)
    assert (ticker.symbol, ticker.bid, ticker.last, ticker.exchange_ts) == (
        "BNB/USDT",
        Decimal("25.3519"),
        None,
        None,
    )


def test_book_ticker_drops_stale_and_duplicate_update_ids(codec):
    first = combined("btcusdt@bookTicker", BOOK)
    assert len(codec.decode(first, 1.0)) == 1
    assert codec.decode(first, 1.0) == []
    assert codec.decode(combined("btcusdt@bookTicker", {**BOOK, "u": 400900216}), 1.0) == []
    [newer] = codec.decode(combined("btcusdt@bookTicker", {**BOOK, "u": 400900218}), 1.0)
    assert newer.sequence == 400900218
    # Per symbol: another symbol with a lower u is not stale.
    other = {**BOOK, "s": "ETHUSDT", "u": 5}
    assert len(codec.decode(combined("ethusdt@bookTicker", other), 1.0)) == 1


def test_a_poisoned_update_id_does_not_silence_the_symbol(codec):
    def book(u: int) -> list:
        return codec.decode(combined("btcusdt@bookTicker", {**BOOK, "u": u}), 1.0)

    assert len(book(100)) == 1
    assert len(book(10**18)) == 1  # absurd, but above the highest: nothing to tell it by
    assert book(101) == []
    assert book(102) == []
    [rebased] = book(103)  # the third rising frame below the highest re-bases
    assert rebased.sequence == 103
    assert len(book(104)) == 1
    assert book(103) == []  # and duplicates are dropped again


def test_a_repeated_frame_never_rebases(codec):
    codec.decode(combined("btcusdt@bookTicker", {**BOOK, "u": 10**18}), 1.0)
    for _ in range(5):
        assert codec.decode(combined("btcusdt@bookTicker", BOOK), 1.0) == []


def test_resubscribing_forgets_the_update_id(codec):
    codec.decode(combined("btcusdt@bookTicker", {**BOOK, "u": 10**18}), 1.0)
    assert codec.decode(combined("btcusdt@bookTicker", BOOK), 1.0) == []
    codec.subscribe_messages([BTC_TICKER])
    [ticker] = codec.decode(combined("btcusdt@bookTicker", BOOK), 1.0)
    assert ticker.sequence == BOOK["u"]


def test_a_malformed_frame_does_not_count_as_seen(codec):
    raises_decode(codec, combined("btcusdt@bookTicker", {**BOOK, "u": 10**18, "b": "0"}), "price")
    assert len(codec.decode(combined("btcusdt@bookTicker", BOOK), 1.0)) == 1


@pytest.mark.parametrize("symbol", ["ETHUSDT", 5, "btcusdt", None, ["BTCUSDT"]])
def test_book_ticker_symbol_must_match_its_stream(codec, symbol):
    info = raises_decode(codec, combined("btcusdt@bookTicker", {**BOOK, "s": symbol}))
    assert "btcusdt@bookTicker" in str(info.value)
    assert repr(symbol) in str(info.value)


def test_trade_symbol_must_match_its_stream(codec):
    trade = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 1, "m": True}
    raises_decode(codec, combined("ethusdt@trade", trade), "ethusdt@trade.*'BTCUSDT'")
    raises_decode(codec, combined("ethusdt@trade", {**trade, "s": 5}), "ethusdt@trade.*5")
    raises_decode(codec, combined("ethusdt@trade", {k: v for k, v in trade.items() if k != "s"}))


def test_symbol_of_streams_we_did_not_ask_for_must_match_too(codec):
    book = combined("xrpusdt@bookTicker", {**BOOK, "s": "ETHUSDT"})
    raises_decode(codec, book, "xrpusdt@bookTicker.*'ETHUSDT'")
    day = {"e": "24hrTicker", "E": 1, "s": "ETHBTC", "c": "2", "b": "1", "B": "1"}
    raises_decode(codec, combined("bnbbtc@ticker", {**day, "a": "3", "A": "1"}), "bnbbtc@ticker")
    trade = {"e": "trade", "E": 1, "s": 7, "t": 1, "p": "1", "q": "1", "T": 1, "m": True}
    raises_decode(codec, combined("xrpusdt@trade", trade), "xrpusdt@trade.*7")
    [xrp] = codec.decode(combined("xrpusdt@bookTicker", {**BOOK, "s": "XRPUSDT"}), 1.0)
    assert xrp.symbol == "XRP/USDT"


def test_raw_frames_name_their_symbol_once(codec):
    [ticker] = codec.decode(json.dumps({**BOOK, "s": "ETHUSDT"}), 1.0)
    assert ticker.symbol == "ETH/USDT"


DAY_ITEM = {
    "e": "24hrTicker",
    "E": 1672515782136,
    "s": "BNBBTC",
    "c": "0.0025",
    "b": "0.0024",
    "B": "10",
    "a": "0.0026",
    "A": "100",
}
MINI_ITEM = {
    "e": "24hrMiniTicker",
    "E": 1672515782136,
    "s": "BNBBTC",
    "c": "0.0025",
    "o": "0.0010",
    "h": "0.0025",
    "l": "0.0010",
    "v": "10000",
    "q": "18",
}


@pytest.mark.parametrize(
    "frame",
    [
        combined("!ticker@arr", [DAY_ITEM, {**DAY_ITEM, "s": "BTCUSDT"}]),
        combined("!miniTicker@arr", [MINI_ITEM, {**MINI_ITEM, "s": "ETHUSDT"}]),
        combined("!ticker_1h@arr", [{**DAY_ITEM, "e": "1hTicker"}]),
        json.dumps([DAY_ITEM, {**DAY_ITEM, "s": "BTCUSDT"}]),
        json.dumps([MINI_ITEM]),
        "[]",
    ],
)
def test_all_market_ticker_arrays_are_valid_and_decode_to_nothing(codec, frame):
    assert codec.decode(frame, 1.0) == []


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ("[1,2]", "JSON object"),
        ("[[]]", "JSON object"),
        (json.dumps([DAY_ITEM, {"e": "trade"}]), "'trade'"),
        (json.dumps([{**DAY_ITEM, "e": ["24hrTicker"]}]), "24hrTicker"),
        (json.dumps([BOOK]), "array"),
        (combined("!ticker@arr", [MINI_ITEM]), "!ticker@arr"),
        (combined("!miniTicker@arr", [DAY_ITEM, 3]), "!miniTicker@arr"),
        (combined("!ticker@arr", DAY_ITEM), "expected a JSON array"),
        (combined("!somethingElse@arr", [DAY_ITEM]), "JSON object"),
    ],
)
def test_arrays_that_are_not_ticker_arrays_are_decode_errors(codec, frame, match):
    raises_decode(codec, frame, match)


def test_trade_side_is_the_taker_side(codec):
    data = {
        "e": "trade",
        "E": 1672515782136,
        "s": "ETHUSDT",
        "t": 12345,
        "p": "1200.50",
        "q": "0.25",
        "T": 1672515782134,
        "m": True,
        "M": True,
    }
    [sold] = codec.decode(combined("ethusdt@trade", data), 2.0)
    assert sold == Trade(
        "binance",
        "ETH/USDT",
        Decimal("1200.50"),
        Decimal("0.25"),
        "sell",
        "12345",
        1672515782.134,
        2.0,
        12345,
    )
    [bought] = codec.decode(combined("ethusdt@trade", {**data, "m": False}), 2.0)
    assert bought.side == "buy"


def test_2019_trade_with_order_ids_and_raw_trade(codec):
    data = {
        "e": "trade",
        "E": 1,
        "s": "ETHUSDT",
        "t": 1,
        "p": "1.0",
        "q": "2.0",
        "b": 88,
        "a": 50,
        "T": 1000,
        "m": False,
        "M": True,
    }
    [trade] = codec.decode(json.dumps(data), 1.0)
    assert (trade.symbol, trade.side, trade.exchange_ts) == ("ETH/USDT", "buy", 1.0)


def test_server_shutdown_raw_and_combined(codec):
    expected = [ReconnectRequested("binance", "serverShutdown")]
    assert codec.decode('{"e":"serverShutdown","E":1750000000000}') == expected
    shutdown = '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1750000000000}}'
    assert codec.decode(shutdown) == expected


def test_day_ticker_has_a_last_price(codec):
    data = {
        "e": "24hrTicker",
        "E": 1672515782136,
        "s": "BNBBTC",
        "p": "0.0015",
        "P": "250.00",
        "w": "0.0018",
        "x": "0.0009",
        "c": "0.0025",
        "Q": "10",
        "b": "0.0024",
        "B": "10",
        "a": "0.0026",
        "A": "100",
        "o": "0.0010",
        "h": "0.0025",
        "l": "0.0010",
        "v": "10000",
        "q": "18",
        "O": 0,
        "C": 86400000,
        "F": 0,
        "L": 18150,
        "n": 18151,
    }
    [ticker] = codec.decode(combined("bnbbtc@ticker", data), 1.0)
    assert (ticker.symbol, ticker.last, ticker.exchange_ts) == (
        "BNB/BTC",
        Decimal("0.0025"),
        1672515782.136,
    )


@pytest.mark.parametrize(
    "frame",
    [
        combined(
            "btcusdt@depth@100ms",
            {
                "e": "depthUpdate",
                "E": 1,
                "s": "BTCUSDT",
                "U": 1,
                "u": 2,
                "b": [["1", "2"]],
                "a": [],
            },
        ),
        combined("btcusdt@depth20", {"lastUpdateId": 160, "bids": [["1", "2"]], "asks": []}),
        combined("btcusdt@kline_1m", {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {}}),
        combined("btcusdt@aggTrade", {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 1}),
        '{"e":"24hrMiniTicker","E":1,"s":"BTCUSDT","c":"1"}',
        '{"lastUpdateId":160,"bids":[],"asks":[]}',
    ],
)
def test_frames_we_do_not_use_decode_to_nothing(codec, frame):
    assert codec.decode(frame, 1.0) == []


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({**BOOK, "b": "0"}, "price must be > 0"),
        ({**BOOK, "a": "0.00000000"}, "price must be > 0"),
        ({**BOOK, "b": "-25.1"}, "price must be > 0"),
        ({**BOOK, "b": "NaN"}, "decimal string"),
        ({**BOOK, "a": "Infinity"}, "decimal string"),
        ({**BOOK, "a": "1e400"}, "outside"),
        ({**BOOK, "b": 25.3519}, "decimal string"),
        ({**BOOK, "B": "-1"}, "size must be >= 0"),
        ({**BOOK, "b": "30", "a": "29"}, "crossed book"),
        ({k: v for k, v in BOOK.items() if k != "a"}, "missing field 'a'"),
        ({**BOOK, "u": "400900217"}, "u must be an integer"),
    ],
)
def test_invalid_book_tickers(codec, data, match):
    raises_decode(codec, combined("btcusdt@bookTicker", data), match)


def test_invalid_frames(codec):
    raises_decode(codec, "not json", "invalid JSON")
    raises_decode(codec, b"\xff\xfe", "invalid JSON")
    raises_decode(codec, "[1,2]", "JSON object")
    raises_decode(codec, '{"stream":"btcusdt@bookTicker"}', "missing field 'data'")
    raises_decode(codec, '{"stream":"btcusdt@bookTicker","data":[1]}', "unexpected frame")
    trade = {"e": "trade", "E": 1, "s": "ETHUSDT", "t": 1, "p": "1", "q": "0", "T": 1, "m": True}
    raises_decode(codec, combined("ethusdt@trade", trade), "trade size must be > 0")
    raises_decode(codec, combined("ethusdt@trade", {**trade, "q": "1", "m": "yes"}), "boolean")
    raises_decode(codec, json.dumps({**trade, "q": "1", "s": "ZZ"}), "cannot split")


def test_deeply_nested_values_are_decode_errors(codec):
    deep = "[" * 1000 + "]" * 1000
    raises_decode(codec, '{"stream":"btcusdt@bookTicker","data":{"u":1,"b":' + deep + "}}")
    raises_decode(codec, "[" * 5000, "invalid JSON")


def test_received_ts_defaults_to_now(codec):
    before = time.time()
    [ticker] = codec.decode(combined("btcusdt@bookTicker", BOOK))
    assert before <= ticker.received_ts <= time.time()


def test_rest_request_and_decode():
    codec = codec_for("binance")
    assert codec.rest_ticker_request("BTC/USDT") == RestRequest(
        "https://api.binance.com/api/v3/ticker/bookTicker", (("symbol", "BTCUSDT"),)
    )
    request = codec.rest_ticker_request("BTC/USDT", "http://127.0.0.1:8080/")
    assert request.url == "http://127.0.0.1:8080/api/v3/ticker/bookTicker"
    body = (
        b'{"symbol":"BTCUSDT","bidPrice":"4.00000000","bidQty":"431.00000000",'
        b'"askPrice":"4.00000200","askQty":"9.00000000"}'
    )
    ticker = codec.decode_rest_ticker(body, "BTC/USDT", 3.0)
    assert ticker == Ticker(
        "binance",
        "BTC/USDT",
        Decimal("4.00000000"),
        Decimal("4.00000200"),
        None,
        Decimal("431"),
        Decimal("9"),
        None,
        3.0,
        "rest",
    )
    with pytest.raises(ValueError, match="Invalid symbol"):
        codec.decode_rest_ticker('{"code":-1121,"msg":"Invalid symbol."}', "BTC/USDT")
    with pytest.raises(ValueError, match="asked for BTCUSDT"):
        codec.decode_rest_ticker(body.replace(b"BTCUSDT", b"ETHUSDT"), "BTC/USDT")
    with pytest.raises(ValueError, match="JSON object"):
        codec.decode_rest_ticker(b"[" + body + b"]", "BTC/USDT")
    with pytest.raises(ValueError, match="price must be > 0"):
        codec.decode_rest_ticker(body.replace(b'"4.00000000"', b'"0"'), "BTC/USDT")


# --- fuzzing ----------------------------------------------------------------------------------

book_data = st.one_of(
    st.fixed_dictionaries(
        {
            "u": st.integers(min_value=0, max_value=2**63),
            "s": st.just("BTCUSDT"),
            "b": plausible_text,
            "B": plausible_text,
            "a": plausible_text,
            "A": plausible_text,
        }
    ),
    st.fixed_dictionaries(
        {
            "u": st.integers(min_value=0, max_value=2**64),
            "s": st.just("BTCUSDT"),
            "b": field,
            "B": field,
            "a": field,
            "A": field,
        }
    ),
    optional_keys(
        {"u": st.integers(min_value=0, max_value=2**64) | field, "s": st.just("BTCUSDT") | field},
        {"b": field, "B": field, "a": field, "A": field, "e": field},
    ),
)
trade_data = st.one_of(
    st.fixed_dictionaries(
        {
            "e": st.just("trade"),
            "E": st.integers(0, 2**40),
            "s": st.just("ETHUSDT"),
            "t": st.integers(0, 2**40),
            "p": plausible_text,
            "q": plausible_text,
            "T": st.integers(0, 2**40),
            "m": st.booleans(),
        }
    ),
    st.fixed_dictionaries(
        {
            "e": st.just("trade"),
            "E": st.integers(),
            "s": st.just("ETHUSDT"),
            "t": st.integers(),
            "p": field,
            "q": field,
            "T": st.integers(),
            "m": st.booleans(),
        }
    ),
    optional_keys(
        {"e": st.just("trade"), "s": st.sampled_from(["ETHUSDT", "BTCUSDT"]) | field},
        {
            "t": st.integers() | field,
            "p": field,
            "q": field,
            "T": st.integers() | field,
            "m": st.booleans() | field,
        },
    ),
)
shaped = st.one_of(
    st.fixed_dictionaries({"stream": st.just("btcusdt@bookTicker"), "data": book_data | any_json}),
    st.fixed_dictionaries({"stream": st.just("ethusdt@trade"), "data": trade_data | any_json}),
    st.fixed_dictionaries({"stream": field, "data": book_data | trade_data | any_json}),
    book_data,
    trade_data,
    optional_keys(
        {"id": field},
        {"result": field, "error": field | st.fixed_dictionaries({"code": field, "msg": field})},
    ),
    any_json,
)


@given(frames=st.lists(st.binary(max_size=64) | as_frames(shaped), min_size=1, max_size=4))
@FUZZ
def test_fuzz_never_raises_anything_but_decode_error(frames):
    codec = codec_for("binance")
    codec.subscribe_messages([BTC_TICKER, ETH_TRADE])
    for frame in frames:
        decode_checked(codec, frame)
    assert_sane([])
