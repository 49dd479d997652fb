import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.exchanges import codec_for
from actors.exchanges.coinbase import CoinbaseCodec
from actors.exchanges.parsing import rfc3339_ts
from actors.messages import (
    Heartbeat,
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
    decode_checked,
    field,
    optional_keys,
    plausible_text,
    raises_decode,
    rfc3339,
)

BTC_TICKER = Stream("ticker", "BTC/USD")
BTC_TRADE = Stream("trade", "BTC/USD")
ETH_TICKER = Stream("ticker", "ETH/USD")

TICKER = {
    "type": "ticker",
    "sequence": 37475248783,
    "product_id": "BTC-USD",
    "price": "43911.41",
    "open_24h": "43880.18",
    "volume_24h": "8203.51",
    "low_24h": "43584.35",
    "high_24h": "44231.17",
    "volume_30d": "389120.3",
    "best_bid": "43911.40",
    "best_bid_size": "0.10512",
    "best_ask": "43911.41",
    "best_ask_size": "0.00251",
    "side": "buy",
    "time": "2024-01-07T22:55:34.347040Z",
    "trade_id": 592171029,
    "last_size": "0.00100",
}
MATCH = {
    "type": "match",
    "trade_id": 592171029,
    "maker_order_id": "ac928c66-ca53",
    "taker_order_id": "132fb6ae-456b",
    "side": "sell",
    "size": "0.00100",
    "price": "43911.41",
    "product_id": "BTC-USD",
    "sequence": 37475248783,
    "time": "2024-01-07T22:55:34.347040Z",
}


def frame(data: dict) -> str:
    return json.dumps(data)


@pytest.fixture
def codec() -> CoinbaseCodec:
    codec = codec_for("coinbase")
    codec.subscribe_messages([BTC_TICKER, BTC_TRADE])
    return codec


def test_contract_attributes():
    codec = codec_for("coinbase")
    assert isinstance(codec, CoinbaseCodec)
    assert (codec.protocol, codec.exchange) == ("coinbase", "coinbase")
    assert codec.default_url == "wss://ws-feed.exchange.coinbase.com"
    assert codec.default_rest_url == "https://api.exchange.coinbase.com"
    assert codec.max_streams_per_connection is None
    assert codec.max_requests_per_second == 10


def test_symbol_mapping_both_ways():
    codec = codec_for("coinbase")
    assert codec.native_symbol("BTC/USD") == "BTC-USD"
    assert codec.unified_symbol("BTC-USD") == "BTC/USD"
    assert codec.unified_symbol("DOGE-USDT") == "DOGE/USDT"


def test_subscribe_frame_is_exact():
    codec = codec_for("coinbase")
    assert codec.subscribe_messages([BTC_TICKER, BTC_TRADE, ETH_TICKER, BTC_TICKER]) == [
        '{"type":"subscribe","channels":['
        '{"name":"ticker","product_ids":["BTC-USD","ETH-USD"]},'
        '{"name":"matches","product_ids":["BTC-USD"]},'
        '{"name":"heartbeat","product_ids":["BTC-USD","ETH-USD"]}]}'
    ]
    assert codec.subscribe_messages([]) == []


def test_unsubscribe_drops_heartbeat_only_for_idle_products():
    codec = codec_for("coinbase")
    codec.subscribe_messages([BTC_TICKER, BTC_TRADE])
    assert codec.unsubscribe_messages([BTC_TICKER]) == [
        '{"type":"unsubscribe","channels":[{"name":"ticker","product_ids":["BTC-USD"]}]}'
    ]
    assert codec.unsubscribe_messages([BTC_TRADE]) == [
        '{"type":"unsubscribe","channels":[{"name":"matches","product_ids":["BTC-USD"]},'
        '{"name":"heartbeat","product_ids":["BTC-USD"]}]}'
    ]


def test_cumulative_acks_in_request_order():
    codec = codec_for("coinbase")
    codec.subscribe_messages([BTC_TICKER])
    codec.subscribe_messages([ETH_TICKER, BTC_TRADE])
    codec.unsubscribe_messages([BTC_TICKER])
    first = {
        "type": "subscriptions",
        "channels": [
            {"name": "ticker", "product_ids": ["BTC-USD"], "account_ids": None},
            {"name": "heartbeat", "product_ids": ["BTC-USD"], "account_ids": None},
        ],
    }
    second = {
        "type": "subscriptions",
        "channels": [
            {"name": "ticker", "product_ids": ["BTC-USD", "ETH-USD"]},
            {"name": "matches", "product_ids": ["BTC-USD"]},
            {"name": "heartbeat", "product_ids": ["BTC-USD", "ETH-USD"]},
        ],
    }
    third = {
        "type": "subscriptions",
        "channels": [
            {"name": "ticker", "product_ids": ["ETH-USD"]},
            {"name": "matches", "product_ids": ["BTC-USD"]},
            {"name": "heartbeat", "product_ids": ["BTC-USD", "ETH-USD"]},
        ],
    }
    assert codec.decode(frame(first), 1.0) == [
        Subscribed("coinbase", (BTC_TICKER,), cumulative=True)
    ]
    assert codec.decode(frame(second), 1.0) == [
        Subscribed("coinbase", (BTC_TICKER, ETH_TICKER, BTC_TRADE), cumulative=True)
    ]
    assert codec.decode(frame(third), 1.0) == [
        Unsubscribed("coinbase", (BTC_TICKER,)),
        Subscribed("coinbase", (ETH_TICKER, BTC_TRADE), cumulative=True),
    ]


def test_one_bad_product_fails_the_whole_message():
    codec = codec_for("coinbase")
    foo = Stream("ticker", "FOO/USD")
    codec.subscribe_messages([BTC_TICKER, foo])
    error = {
        "type": "error",
        "message": "Failed to subscribe",
        "reason": "FOO-USD is not a valid product",
    }
    assert codec.decode(frame(error), 1.0) == [
        SubscriptionError(
            "coinbase", "Failed to subscribe: FOO-USD is not a valid product", (BTC_TICKER, foo)
        )
    ]
    no_channels = {
        "type": "error",
        "message": "Failed to subscribe",
        "reason": "No channels provided",
    }
    [late] = codec.decode(frame(no_channels), 1.0)
    assert isinstance(late, SubscriptionError)
    assert late.streams == ()


def test_disconnect_errors_ask_for_a_reconnect(codec):
    slow = {"type": "error", "message": "ErrSlowConsume"}
    assert codec.decode(frame(slow), 1.0) == [ReconnectRequested("coinbase", "ErrSlowConsume")]


def test_ticker(codec):
    [ticker] = codec.decode(frame(TICKER), 7.0)
    assert ticker == Ticker(
        "coinbase",
        "BTC/USD",
        Decimal("43911.40"),
        Decimal("43911.41"),
        Decimal("43911.41"),
        Decimal("0.10512"),
        Decimal("0.00251"),
        rfc3339_ts(TICKER["time"], "t"),
        7.0,
        "ws",
        37475248783,
    )
    assert ticker.exchange_ts == pytest.approx(1704668134.34704)


def test_ticker_time_with_nanoseconds(codec):
    [ticker] = codec.decode(frame({**TICKER, "time": "2024-01-07T22:55:34.347040123Z"}), 1.0)
    assert ticker.exchange_ts == pytest.approx(1704668134.347040, abs=1e-6)


def test_2021_ticker_without_sizes(codec):
    old = {k: v for k, v in TICKER.items() if k not in ("best_bid_size", "best_ask_size")}
    [ticker] = codec.decode(frame(old), 1.0)
    assert ticker.bid_size is None
    assert ticker.ask_size is None


def test_match_side_is_flipped_to_the_taker(codec):
    [trade] = codec.decode(frame(MATCH), 2.0)
    assert trade == Trade(
        "coinbase",
        "BTC/USD",
        Decimal("43911.41"),
        Decimal("0.00100"),
        "buy",
        "592171029",
        rfc3339_ts(MATCH["time"], "t"),
        2.0,
        37475248783,
    )
    [last] = codec.decode(
        frame({**MATCH, "type": "last_match", "side": "buy", "sequence": 37475248784}), 2.0
    )
    assert last.side == "sell"


def test_ticker_and_match_share_a_sequence_but_both_decode(codec):
    assert len(codec.decode(frame(TICKER), 1.0)) == 1
    assert len(codec.decode(frame(MATCH), 1.0)) == 1


def test_duplicates_and_out_of_order_are_dropped_per_product(codec):
    assert len(codec.decode(frame(TICKER), 1.0)) == 1
    assert codec.decode(frame(TICKER), 1.0) == []
    assert codec.decode(frame({**TICKER, "sequence": TICKER["sequence"] - 5}), 1.0) == []
    # Gaps are normal (shared per-product counter): a jump forward is just the next ticker.
    assert len(codec.decode(frame({**TICKER, "sequence": TICKER["sequence"] + 50}), 1.0)) == 1
    eth = {**TICKER, "product_id": "ETH-USD", "sequence": 3}
    assert len(codec.decode(frame(eth), 1.0)) == 1
    assert len(codec.decode(frame(MATCH), 1.0)) == 1
    assert codec.decode(frame(MATCH), 1.0) == []


def test_a_poisoned_sequence_does_not_silence_a_product(codec):
    base = TICKER["sequence"]
    for template in (TICKER, MATCH):

        def decode(sequence: int, template: dict = template) -> list:
            return codec.decode(frame({**template, "sequence": sequence}), 1.0)

        assert len(decode(base)) == 1
        assert len(decode(10**18)) == 1
        assert decode(base + 1) == []
        assert decode(base + 2) == []
        [rebased] = decode(base + 3)  # the third rising frame below the highest re-bases
        assert rebased.sequence == base + 3
        assert len(decode(base + 4)) == 1
        for _ in range(4):  # a repeated frame never re-bases
            assert decode(base + 4) == []


def test_resubscribing_forgets_the_sequence_of_that_channel_only(codec):
    codec.decode(frame({**TICKER, "sequence": 10**18}), 1.0)
    codec.decode(frame({**MATCH, "sequence": 10**18}), 1.0)
    codec.subscribe_messages([BTC_TICKER])
    assert len(codec.decode(frame(TICKER), 1.0)) == 1
    assert codec.decode(frame(MATCH), 1.0) == []


def test_a_malformed_frame_does_not_count_as_seen(codec):
    raises_decode(codec, frame({**TICKER, "sequence": 10**18, "best_bid": "0"}), "price")
    assert len(codec.decode(frame(TICKER), 1.0)) == 1


def test_heartbeat(codec):
    beat = {
        "type": "heartbeat",
        "sequence": 90,
        "last_trade_id": 20,
        "product_id": "BTC-USD",
        "time": "2014-11-07T08:19:28.464459Z",
    }
    assert codec.decode(frame(beat), 1.0) == [
        Heartbeat("coinbase", rfc3339_ts("2014-11-07T08:19:28.464459Z", "t"))
    ]


@pytest.mark.parametrize(
    "kind", ["l2update", "snapshot", "status", "ticker_batch", "received", "brand_new_type"]
)
def test_unknown_and_unused_types_are_ignored(codec, kind):
    assert codec.decode(frame({"type": kind, "product_id": "BTC-USD"}), 1.0) == []


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({**TICKER, "best_bid": "0"}, "price must be > 0"),
        ({**TICKER, "best_ask": "-1"}, "price must be > 0"),
        ({**TICKER, "price": "NaN"}, "decimal string"),
        ({**TICKER, "best_bid": "1e400"}, "outside"),
        ({**TICKER, "best_bid": 43911.4}, "decimal string"),
        ({**TICKER, "best_bid": "43911.42"}, "crossed book"),
        ({k: v for k, v in TICKER.items() if k != "best_ask"}, "missing field 'best_ask'"),
        ({**TICKER, "time": "yesterday"}, "RFC 3339"),
        ({**TICKER, "sequence": "12"}, "sequence must be an integer"),
        ({**TICKER, "product_id": "BTCUSD"}, "BASE-QUOTE"),
        ({**MATCH, "side": "up"}, "side must be buy/sell"),
        ({**MATCH, "size": "0"}, "trade size must be > 0"),
        ({"product_id": "BTC-USD"}, "missing field 'type'"),
        ({"type": 5}, "type must be a string"),
    ],
)
def test_invalid_frames(codec, data, match):
    raises_decode(codec, frame(data), match)


def test_invalid_json(codec):
    raises_decode(codec, "{", "invalid JSON")
    raises_decode(codec, "[]", "JSON object")


def test_rest_request_and_decode():
    codec = codec_for("coinbase")
    request = codec.rest_ticker_request("BTC/USD")
    assert request.url == "https://api.exchange.coinbase.com/products/BTC-USD/ticker"
    assert ("User-Agent", "botcriptofy/0.1") in request.headers
    assert codec.rest_ticker_request("BTC/USD", "http://127.0.0.1:9/").url == (
        "http://127.0.0.1:9/products/BTC-USD/ticker"
    )
    body = (
        '{"ask":"63212.98","bid":"63212.97","volume":"4916.9","trade_id":1040406588,'
        '"price":"63212.97","size":"0.0078","time":"2026-06-19T16:43:33.016274911Z",'
        '"rfq_volume":"31.6"}'
    )
    ticker = codec.decode_rest_ticker(body, "BTC/USD", 4.0)
    assert (ticker.bid, ticker.ask, ticker.last, ticker.source) == (
        Decimal("63212.97"),
        Decimal("63212.98"),
        Decimal("63212.97"),
        "rest",
    )
    assert ticker.exchange_ts == pytest.approx(1781887413.016275, abs=1e-6)
    with pytest.raises(ValueError, match="NotFound"):
        codec.decode_rest_ticker('{"message":"NotFound"}', "BTC/USD")
    with pytest.raises(ValueError, match="price must be > 0"):
        codec.decode_rest_ticker(body.replace('"bid":"63212.97"', '"bid":"0"'), "BTC/USD")


# --- fuzzing ----------------------------------------------------------------------------------

products = st.one_of(st.sampled_from(["BTC-USD", "ETH-USD"]), st.just("BTC-USD"), field)
_ints = st.integers(min_value=0, max_value=2**63)
sequences = st.one_of(_ints, _ints, _ints, field)
ticker_frames = st.fixed_dictionaries(
    {
        "type": st.just("ticker"),
        "product_id": products,
        "best_bid": field,
        "best_ask": field,
        "price": field,
        "sequence": sequences,
    },
    optional={"best_bid_size": field, "best_ask_size": field, "time": rfc3339},
)
match_frames = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["match", "last_match"]),
        "product_id": products,
        "price": field,
        "size": field,
        "side": st.sampled_from(["buy", "sell"]) | field,
        "sequence": sequences,
    },
    optional={"trade_id": st.integers() | field, "time": rfc3339},
)
# Every field plausible: reaches event construction with random values (crossed books included).
plausible_frames = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("ticker"),
            "product_id": st.just("BTC-USD"),
            "best_bid": plausible_text,
            "best_ask": plausible_text,
            "price": plausible_text,
            "sequence": _ints,
            "best_bid_size": plausible_text,
            "time": st.just("2024-01-07T22:55:34.347040Z"),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("match"),
            "product_id": st.just("BTC-USD"),
            "price": plausible_text,
            "size": plausible_text,
            "side": st.sampled_from(["buy", "sell"]),
            "sequence": _ints,
            "trade_id": _ints,
        }
    ),
)
control_frames = st.one_of(
    optional_keys(
        {"type": st.just("subscriptions")},
        {
            "channels": any_json
            | st.lists(
                optional_keys(
                    {"name": st.sampled_from(["ticker", "matches"]) | field},
                    {"product_ids": st.lists(products) | field},
                )
            )
        },
    ),
    optional_keys({"type": st.just("error")}, {"message": field, "reason": field}),
    optional_keys({"type": st.just("heartbeat")}, {"time": rfc3339, "sequence": field}),
)
shaped = st.one_of(ticker_frames, match_frames, plausible_frames, control_frames, any_json)


@given(frames=st.lists(st.binary(max_size=64) | as_frames(shaped), min_size=1, max_size=4))
@FUZZ
def test_fuzz_never_raises_anything_but_decode_error(frames):
    codec = codec_for("coinbase")
    codec.subscribe_messages([BTC_TICKER, BTC_TRADE])
    for data in frames:
        decode_checked(codec, data)
