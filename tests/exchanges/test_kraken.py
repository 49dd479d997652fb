import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.exchanges import RestRequest, codec_for
from actors.exchanges.kraken import KrakenCodec
from actors.exchanges.parsing import rfc3339_ts
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
    raises_decode,
    rfc3339,
)

BTC_TICKER = Stream("ticker", "BTC/USD")
DOGE_TICKER = Stream("ticker", "DOGE/USD")
BTC_TRADE = Stream("trade", "BTC/USD")

# Written as raw text: JSON numbers exactly as Kraken puts them on the wire.
TICKER = (
    '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":105944.2,'
    '"bid_qty":2.50000000,"ask":105944.3,"ask_qty":3.2,"last":105899.4,"volume":163.28,'
    '"vwap":105904.39,"low":104711.0,"high":106613.1,"change":250.0,"change_pct":0.24,'
    '"timestamp":"2026-01-05T12:00:00.123456Z"}]}'
)
TRADE = (
    '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell",'
    '"price":105944.2,"qty":0.00140000,"ord_type":"market","trade_id":83736162,'
    '"timestamp":"2026-01-05T12:00:01.5Z"}]}'
)


@pytest.fixture
def codec() -> KrakenCodec:
    codec = codec_for("kraken")
    codec.subscribe_messages([BTC_TICKER, DOGE_TICKER, BTC_TRADE])
    return codec


def test_contract_attributes():
    codec = codec_for("kraken")
    assert isinstance(codec, KrakenCodec)
    assert codec.default_url == "wss://ws.kraken.com/v2"
    assert codec.default_rest_url == "https://api.kraken.com"
    assert codec.max_streams_per_connection is None
    assert codec.max_requests_per_second == 5


def test_symbols_are_v2_names():
    codec = codec_for("kraken")
    assert codec.native_symbol("BTC/USD") == "BTC/USD"
    assert codec.native_symbol("DOGE/USD") == "DOGE/USD"
    assert codec.unified_symbol("BTC/USD") == "BTC/USD"
    assert codec.unified_symbol("XBT/USD") == "BTC/USD"  # tolerant of the v1 name on input
    assert codec.unified_symbol("XDG/USD") == "DOGE/USD"


def test_subscribe_and_unsubscribe_frames_are_exact():
    codec = codec_for("kraken")
    assert codec.subscribe_messages([BTC_TICKER, DOGE_TICKER, BTC_TRADE]) == [
        '{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD","DOGE/USD"],'
        '"event_trigger":"bbo","snapshot":true},"req_id":1}',
        '{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD"],'
        '"snapshot":false},"req_id":2}',
    ]
    assert codec.unsubscribe_messages([DOGE_TICKER]) == [
        '{"method":"unsubscribe","params":{"channel":"ticker","symbol":["DOGE/USD"],'
        '"event_trigger":"bbo"},"req_id":3}'
    ]
    assert codec.subscribe_messages([]) == []


def test_one_ack_per_symbol(codec):
    ack = {
        "method": "subscribe",
        "result": {
            "channel": "ticker",
            "event_trigger": "bbo",
            "snapshot": True,
            "symbol": "BTC/USD",
        },
        "success": True,
        "time_in": "2026-01-05T12:00:00.000000Z",
        "time_out": "2026-01-05T12:00:00.000100Z",
        "req_id": 1,
    }
    assert codec.decode(json.dumps(ack), 1.0) == [Subscribed("kraken", (BTC_TICKER,), 1)]
    ack["result"]["symbol"] = "DOGE/USD"
    assert codec.decode(json.dumps(ack), 1.0) == [Subscribed("kraken", (DOGE_TICKER,), 1)]
    assert 1 not in codec._pending  # every symbol of request 1 answered


def test_refusal_per_symbol_and_whole_request():
    codec = codec_for("kraken")
    nope = Stream("ticker", "NOPE/USD")
    codec.subscribe_messages([BTC_TICKER, nope])
    refusal = {
        "error": "Currency pair not supported NOPE/USD",
        "method": "subscribe",
        "success": False,
        "symbol": "NOPE/USD",
        "time_in": "..",
        "time_out": "..",
        "req_id": 1,
    }
    assert codec.decode(json.dumps(refusal), 1.0) == [
        SubscriptionError("kraken", "Currency pair not supported NOPE/USD", (nope,), 1)
    ]
    codec.subscribe_messages([BTC_TRADE])
    malformed = {"error": "Malformed request", "method": "subscribe", "success": False, "req_id": 2}
    assert codec.decode(json.dumps(malformed), 1.0) == [
        SubscriptionError("kraken", "Malformed request", (BTC_TRADE,), 2)
    ]
    anonymous = {"error": "Malformed request", "method": "subscribe", "success": False}
    assert codec.decode(json.dumps(anonymous), 1.0) == [
        SubscriptionError("kraken", "Malformed request", (), None)
    ]


def test_unsubscribe_ack(codec):
    codec.unsubscribe_messages([BTC_TRADE])
    ack = {
        "method": "unsubscribe",
        "result": {"channel": "trade", "symbol": "BTC/USD"},
        "success": True,
        "req_id": 3,
    }
    assert codec.decode(json.dumps(ack), 1.0) == [Unsubscribed("kraken", (BTC_TRADE,), 3)]


def test_status_with_u64_connection_id(codec):
    status = (
        '{"channel":"status","type":"update","data":[{"api_version":"v2",'
        '"connection_id":12393906104898154338,"system":"online","version":"2.0.10"}]}'
    )
    assert codec.decode(status, 1.0) == [SystemStatus("kraken", "online")]
    assert codec.decode(status.replace("online", "maintenance").encode(), 1.0) == [
        SystemStatus("kraken", "maintenance")
    ]


def test_heartbeat_and_pong(codec):
    assert codec.decode('{"channel":"heartbeat"}', 1.0) == [Heartbeat("kraken")]
    pong = '{"method":"pong","req_id":101,"time_in":"..","time_out":".."}'
    assert codec.decode(pong, 1.0) == [Heartbeat("kraken")]


def test_ticker_numbers_keep_their_digits(codec):
    [ticker] = codec.decode(TICKER, 5.0)
    assert ticker == Ticker(
        "kraken",
        "BTC/USD",
        Decimal("105944.2"),
        Decimal("105944.3"),
        Decimal("105899.4"),
        Decimal("2.50000000"),
        Decimal("3.2"),
        rfc3339_ts("2026-01-05T12:00:00.123456Z", "t"),
        5.0,
    )
    assert str(ticker.bid) == "105944.2"
    assert str(ticker.bid_size) == "2.50000000"


def test_ticker_accepts_strings_ints_and_no_timestamp(codec):
    frame = (
        '{"channel":"ticker","type":"update","data":[{"symbol":"DOGE/USD","bid":"0.16",'
        '"bid_qty":100,"ask":1,"ask_qty":"5","last":0.1601}]}'
    )
    [ticker] = codec.decode(frame, 1.0)
    assert (ticker.symbol, ticker.bid, ticker.ask, ticker.last, ticker.exchange_ts) == (
        "DOGE/USD",
        Decimal("0.16"),
        Decimal(1),
        Decimal("0.1601"),
        None,
    )


def test_trade_is_taker_side_and_snapshot_is_history(codec):
    [trade] = codec.decode(TRADE, 2.0)
    assert trade == Trade(
        "kraken",
        "BTC/USD",
        Decimal("105944.2"),
        Decimal("0.00140000"),
        "sell",
        "83736162",
        rfc3339_ts("2026-01-05T12:00:01.5Z", "t"),
        2.0,
        83736162,
    )
    assert codec.decode(TRADE.replace('"update"', '"snapshot"'), 2.0) == []


@pytest.mark.parametrize(
    "frame",
    [
        '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[],"asks":[]}]}',
        '{"channel":"ohlc","type":"update","data":[]}',
        '{"method":"add_order","success":true}',
    ],
)
def test_unused_frames(codec, frame):
    assert codec.decode(frame, 1.0) == []


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('"bid":105944.2', '"bid":NaN', "NaN"),
        ('"bid":105944.2', '"bid":Infinity', "Infinity"),
        ('"ask":105944.3', '"ask":-Infinity', "Infinity"),
        ('"ask":105944.3', '"ask":1e400', "outside"),
        ('"bid":105944.2', '"bid":0', "price must be > 0"),
        ('"bid":105944.2', '"bid":0.0', "price must be > 0"),
        ('"bid":105944.2', '"bid":-1.5', "price must be > 0"),
        ('"bid":105944.2', '"bid":"NaN"', "decimal string"),
        ('"bid":105944.2', '"bid":true', "expected a number"),
        ('"bid":105944.2', '"bid":null', "expected a number"),
        ('"bid":105944.2', '"bid":106000.0', "crossed book"),
        ('"last":105899.4', '"last":0', "price must be > 0"),
        ('"bid_qty":2.50000000', '"bid_qty":-2', "size must be >= 0"),
        ('"symbol":"BTC/USD"', '"symbol":"BTCUSD"', "BASE/QUOTE"),
        ('"timestamp":"2026-01-05T12:00:00.123456Z"', '"timestamp":12', "RFC 3339"),
        ('"bid":105944.2,', "", "missing field 'bid'"),
    ],
)
def test_invalid_tickers(codec, old, new, match):
    assert old in TICKER
    raises_decode(codec, TICKER.replace(old, new), match)


def test_invalid_frames(codec):
    raises_decode(codec, TRADE.replace('"side":"sell"', '"side":"s"'), "buy/sell")
    raises_decode(codec, TRADE.replace('"qty":0.00140000', '"qty":0'), "qty must be > 0")
    raises_decode(codec, "{", "invalid JSON")
    raises_decode(codec, b"\xff", "UTF-8|invalid JSON")
    raises_decode(codec, "[" * 100000, "nests too deeply|invalid JSON")
    raises_decode(codec, '{"x":' + "9" * 5000 + "}", "malformed")
    raises_decode(codec, "[]", "JSON object")
    raises_decode(codec, '{"foo":1}', "neither channel nor method")
    raises_decode(codec, '{"channel":"ticker","data":{}}', "JSON array")
    raises_decode(codec, '{"method":"subscribe","success":"yes"}', "boolean")


def test_rest_request_and_decode():
    codec = codec_for("kraken")
    assert codec.rest_ticker_request("BTC/USD") == RestRequest(
        "https://api.kraken.com/0/public/Ticker", (("pair", "XBTUSD"),)
    )
    assert codec.rest_ticker_request("DOGE/USD", "http://127.0.0.1:1/").params == (
        ("pair", "XDGUSD"),
    )
    body = (
        '{"error":[],"result":{"XXBTZUSD":{"a":["3537.50000","1","1.000"],'
        '"b":["3537.40000","2","2.000"],"c":["3537.50000","0.10000000"],'
        '"v":["1","2"],"p":["1","2"],"t":[1,2],"l":["1","2"],"h":["1","2"],'
        '"o":"3530.60000"}}}'
    )
    ticker = codec.decode_rest_ticker(body, "BTC/USD", 3.0)
    assert ticker == Ticker(
        "kraken",
        "BTC/USD",
        Decimal("3537.40000"),
        Decimal("3537.50000"),
        Decimal("3537.50000"),
        Decimal("2.000"),
        Decimal("1.000"),
        None,
        3.0,
        "rest",
    )
    with pytest.raises(ValueError, match="EQuery:Unknown asset pair"):
        codec.decode_rest_ticker('{"error":["EQuery:Unknown asset pair"],"result":{}}', "BTC/USD")
    with pytest.raises(ValueError, match="expected one pair"):
        codec.decode_rest_ticker('{"error":[],"result":{}}', "BTC/USD")
    with pytest.raises(ValueError, match="price must be > 0"):
        codec.decode_rest_ticker(body.replace('"3537.40000"', '"0"'), "BTC/USD")


# --- fuzzing ----------------------------------------------------------------------------------

_decimal_literals = st.decimals(min_value=0, max_value=10**7, places=4).map(str)
kraken_numbers = st.one_of(
    _decimal_literals,
    _decimal_literals,
    _decimal_literals,
    _decimal_literals,
    _decimal_literals,
    st.sampled_from(
        [
            "0",
            "0.0",
            "-1.5",
            "1e400",
            "-1e400",
            "1e-400",
            "NaN",
            "Infinity",
            "-Infinity",
            "true",
            "null",
            '"1.5"',
            '"NaN"',
            "1" * 40,
            "105944.2",
        ]
    ),
    st.integers(min_value=-10, max_value=2**70).map(str),
)
symbols = st.sampled_from(
    ['"BTC/USD"', '"BTC/USD"', '"DOGE/USD"', '"XBT/USD"', '"BTCUSD"', "5", "null"]
)


@st.composite
def raw_frames(draw):
    """Raw JSON text, so that NaN/Infinity/1e400 literals reach the Decimal-keeping parser."""
    channel = draw(st.sampled_from(["ticker", "trade"]))
    keys = ["bid", "bid_qty", "ask", "ask_qty", "last"] if channel == "ticker" else ["price", "qty"]
    parts = [f'"symbol":{draw(symbols)}']
    parts += [f'"{key}":{draw(kraken_numbers)}' for key in keys if draw(st.integers(0, 9)) > 0]
    if channel == "trade":
        side = draw(st.sampled_from(['"buy"', '"sell"', '"b"', "1"]))
        ident = draw(st.sampled_from(["1", '"x"', "null", "1.5"]))
        parts += [f'"side":{side}', f'"trade_id":{ident}']
    if draw(st.booleans()):
        parts.append(f'"timestamp":{json.dumps(draw(rfc3339))}')
    kind = draw(st.sampled_from(["snapshot", "update"]))
    return f'{{"channel":"{channel}","type":"{kind}","data":[{{{",".join(parts)}}}]}}'


shaped = st.one_of(
    optional_keys(
        {"channel": st.sampled_from(["ticker", "trade", "status", "heartbeat"])},
        {
            "type": field,
            "data": st.lists(
                any_json
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "symbol",
                            "bid",
                            "ask",
                            "last",
                            "price",
                            "qty",
                            "side",
                            "system",
                            "timestamp",
                        ]
                    ),
                    field,
                ),
                max_size=3,
            )
            | field,
        },
    ),
    optional_keys(
        {"method": st.sampled_from(["subscribe", "unsubscribe", "pong"]) | field},
        {
            "success": st.booleans() | field,
            "req_id": st.integers(0, 3) | field,
            "symbol": symbols.map(json.loads) | field,
            "error": field,
            "result": optional_keys(
                {"channel": st.sampled_from(["ticker", "trade"])},
                {"symbol": symbols.map(json.loads)},
            )
            | field,
        },
    ),
    any_json,
)


@given(
    frames=st.lists(
        st.binary(max_size=64) | as_frames(shaped) | raw_frames(), min_size=1, max_size=4
    )
)
@FUZZ
def test_fuzz_never_raises_anything_but_decode_error(frames):
    codec = codec_for("kraken")
    codec.subscribe_messages([BTC_TICKER, DOGE_TICKER, BTC_TRADE])
    for frame in frames:
        decode_checked(codec, frame)
