import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.exchanges import RestRequest, codec_for
from actors.exchanges.coinbase_advanced import CoinbaseAdvancedCodec
from actors.exchanges.parsing import rfc3339_ts
from actors.messages import (
    Heartbeat,
    SequenceGap,
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
STAMP = "2026-08-09T21:05:48.229198328Z"

TICKER_ITEM = {
    "type": "ticker",
    "product_id": "BTC-USD",
    "price": "116800.01",
    "volume_24_h": "5123.4",
    "low_24_h": "115000",
    "high_24_h": "117000",
    "low_52_w": "49000",
    "high_52_w": "124000",
    "price_percent_chg_24_h": "0.52",
    "best_bid": "116800.00",
    "best_ask": "116800.01",
    "best_bid_quantity": "0.51",
    "best_ask_quantity": "0.02",
}
TRADE_ITEM = {
    "product_id": "BTC-USD",
    "trade_id": "1068572091",
    "price": "116800.01",
    "size": "0.0015",
    "time": "2026-08-09T21:05:48.1Z",
    "side": "SELL",
}


def envelope(channel: str, seq: int, events: list, timestamp: str = STAMP) -> str:
    return json.dumps(
        {
            "channel": channel,
            "client_id": "",
            "timestamp": timestamp,
            "sequence_num": seq,
            "events": events,
        }
    )


def tickers(seq: int, *items: dict, kind: str = "update") -> str:
    return envelope("ticker", seq, [{"type": kind, "tickers": list(items)}])


def trades(seq: int, *items: dict, kind: str = "update") -> str:
    return envelope("market_trades", seq, [{"type": kind, "trades": list(items)}])


@pytest.fixture
def codec() -> CoinbaseAdvancedCodec:
    codec = codec_for("coinbase_advanced")
    codec.subscribe_messages([BTC_TICKER, BTC_TRADE])
    return codec


def test_contract_attributes():
    codec = codec_for("coinbase_advanced")
    assert isinstance(codec, CoinbaseAdvancedCodec)
    assert codec.default_url == "wss://advanced-trade-ws.coinbase.com"
    assert codec.max_requests_per_second == 8
    assert codec.max_streams_per_connection is None


def test_one_channel_per_message_plus_heartbeats_once():
    codec = codec_for("coinbase_advanced")
    assert codec.subscribe_messages([BTC_TICKER, BTC_TRADE, ETH_TICKER]) == [
        '{"type":"subscribe","channel":"heartbeats"}',
        '{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"ticker"}',
        '{"type":"subscribe","product_ids":["BTC-USD"],"channel":"market_trades"}',
    ]
    assert codec.subscribe_messages([Stream("ticker", "SOL/USD")]) == [
        '{"type":"subscribe","product_ids":["SOL-USD"],"channel":"ticker"}'
    ]
    assert codec.unsubscribe_messages([ETH_TICKER]) == [
        '{"type":"unsubscribe","product_ids":["ETH-USD"],"channel":"ticker"}'
    ]
    assert codec.subscribe_messages([]) == []


def test_cumulative_subscriptions_resolve_requests_in_order():
    codec = codec_for("coinbase_advanced")
    codec.subscribe_messages([BTC_TICKER])  # heartbeats + ticker
    codec.unsubscribe_messages([BTC_TICKER])
    acks = [
        {"subscriptions": {"heartbeats": ["heartbeats"]}},
        {"subscriptions": {"ticker": ["BTC-USD"], "heartbeats": ["heartbeats"]}},
        {"subscriptions": {"heartbeats": ["heartbeats"]}},
    ]
    results = [codec.decode(envelope("subscriptions", n, [ack]), 1.0) for n, ack in enumerate(acks)]
    assert results == [
        [Subscribed("coinbase_advanced", (), cumulative=True)],
        [Subscribed("coinbase_advanced", (BTC_TICKER,), cumulative=True)],
        [
            Unsubscribed("coinbase_advanced", (BTC_TICKER,)),
            Subscribed("coinbase_advanced", (), cumulative=True),
        ],
    ]


def test_error_frame_fails_the_oldest_request():
    codec = codec_for("coinbase_advanced")
    codec.subscribe_messages([BTC_TICKER])
    codec.decode(envelope("subscriptions", 0, [{"subscriptions": {"heartbeats": ["heartbeats"]}}]))
    assert codec.decode('{"type":"error","message":"failure to subscribe"}', 1.0) == [
        SubscriptionError("coinbase_advanced", "failure to subscribe", (BTC_TICKER,))
    ]


def test_ticker_uses_envelope_time_and_quantities(codec):
    eth = {
        **TICKER_ITEM,
        "product_id": "ETH-USD",
        "best_bid": "3000.1",
        "best_ask": "3000.2",
        "price": "3000.2",
    }
    first, second = codec.decode(tickers(6, TICKER_ITEM, eth, kind="snapshot"), 9.0)
    assert first == Ticker(
        "coinbase_advanced",
        "BTC/USD",
        Decimal("116800.00"),
        Decimal("116800.01"),
        Decimal("116800.01"),
        Decimal("0.51"),
        Decimal("0.02"),
        rfc3339_ts(STAMP, "t"),
        9.0,
        "ws",
        6,
    )
    assert (second.symbol, second.bid) == ("ETH/USD", Decimal("3000.1"))


def test_market_trades_side_is_flipped_and_snapshot_is_history(codec):
    assert codec.decode(trades(1, TRADE_ITEM, TRADE_ITEM, kind="snapshot"), 1.0) == []
    bought, sold = codec.decode(trades(2, TRADE_ITEM, {**TRADE_ITEM, "side": "BUY"}), 3.0)
    assert bought == Trade(
        "coinbase_advanced",
        "BTC/USD",
        Decimal("116800.01"),
        Decimal("0.0015"),
        "buy",
        "1068572091",
        rfc3339_ts("2026-08-09T21:05:48.1Z", "t"),
        3.0,
        2,
    )
    assert sold.side == "sell"


def test_heartbeats_ignore_the_go_debug_time(codec):
    beat = [
        {
            "current_time": "2026-08-09 21:05:48.854840045 +0000 UTC m=+41691.26",
            "heartbeat_counter": 41691,
        }
    ]
    assert codec.decode(envelope("heartbeats", 0, beat), 1.0) == [
        Heartbeat("coinbase_advanced", rfc3339_ts(STAMP, "t"))
    ]
    beat[0]["heartbeat_counter"] = "41692"
    assert len(codec.decode(envelope("heartbeats", 1, beat), 1.0)) == 1


def test_sequence_gap_is_reported_before_the_frame_data(codec):
    assert len(codec.decode(tickers(0, TICKER_ITEM), 1.0)) == 1
    assert len(codec.decode(tickers(1, TICKER_ITEM), 1.0)) == 1
    gap, ticker = codec.decode(tickers(4, TICKER_ITEM), 1.0)
    assert gap == SequenceGap("coinbase_advanced", 2, 4)
    assert isinstance(ticker, Ticker)
    assert ticker.sequence == 4
    # A repeat or an older frame is a duplicate: dropped, not a gap.
    assert codec.decode(tickers(4, TICKER_ITEM), 1.0) == []
    assert codec.decode(tickers(3, TICKER_ITEM), 1.0) == []
    assert len(codec.decode(tickers(5, TICKER_ITEM), 1.0)) == 1


def test_a_gap_seen_on_a_malformed_frame_is_not_lost(codec):
    codec.decode(tickers(0, TICKER_ITEM), 1.0)
    raises_decode(codec, tickers(3, {**TICKER_ITEM, "best_bid": "0"}), "price must be > 0")
    gap, ticker = codec.decode(tickers(4, TICKER_ITEM), 1.0)
    assert gap == SequenceGap("coinbase_advanced", 1, 3)
    assert ticker.sequence == 4
    # The malformed frame itself was not a second gap.
    assert len(codec.decode(tickers(5, TICKER_ITEM), 1.0)) == 1


def test_an_absurd_first_sequence_num_does_not_mute_the_connection():
    codec = codec_for("coinbase_advanced")
    codec.subscribe_messages([BTC_TICKER])
    assert len(codec.decode(tickers(10**18, TICKER_ITEM), 1.0)) == 1  # nothing before it
    assert codec.decode(tickers(0, TICKER_ITEM), 1.0) == []
    assert codec.decode(tickers(1, TICKER_ITEM), 1.0) == []
    gap, ticker = codec.decode(tickers(2, TICKER_ITEM), 1.0)  # re-based, and reported
    assert gap == SequenceGap("coinbase_advanced", 10**18 + 1, 2)
    assert ticker.sequence == 2
    assert len(codec.decode(tickers(3, TICKER_ITEM), 1.0)) == 1


def test_an_absurd_sequence_num_later_on_is_a_gap(codec):
    codec.decode(tickers(0, TICKER_ITEM), 1.0)
    gap, _ = codec.decode(tickers(10**18, TICKER_ITEM), 1.0)
    assert gap == SequenceGap("coinbase_advanced", 1, 10**18)


def test_a_counter_that_went_back_is_rebased_and_reported(codec):
    for number in range(6):
        codec.decode(tickers(number, TICKER_ITEM), 1.0)
    assert codec.decode(tickers(0, TICKER_ITEM), 1.0) == []
    assert codec.decode(tickers(1, TICKER_ITEM), 1.0) == []
    gap, _ = codec.decode(envelope("heartbeats", 2, [{"heartbeat_counter": 2}]), 1.0)
    assert gap == SequenceGap("coinbase_advanced", 6, 2)
    assert len(codec.decode(tickers(3, TICKER_ITEM), 1.0)) == 1
    # A replayed frame never re-bases.
    for _ in range(5):
        assert codec.decode(tickers(1, TICKER_ITEM), 1.0) == []


def test_usdc_products_alias_usd():
    codec = codec_for("coinbase_advanced")
    codec.subscribe_messages([Stream("ticker", "BTC/USDC")])
    [ticker] = codec.decode(tickers(0, TICKER_ITEM), 1.0)
    assert ticker.symbol == "BTC/USDC"
    assert codec.unified_symbol("BTC-USDC") == "BTC/USDC"
    assert codec.native_symbol("BTC/USDC") == "BTC-USDC"


@pytest.mark.parametrize("channel", ["l2_data", "candles", "status", "ticker_batch", "user"])
def test_unused_channels_are_ignored_but_counted(codec, channel):
    assert codec.decode(envelope(channel, 0, [{"type": "snapshot"}]), 1.0) == []
    assert len(codec.decode(tickers(1, TICKER_ITEM), 1.0)) == 1  # no gap: 0 was counted


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (tickers(0, {**TICKER_ITEM, "best_bid": "0"}), "price must be > 0"),
        (tickers(0, {**TICKER_ITEM, "best_ask": "-2"}), "price must be > 0"),
        (tickers(0, {**TICKER_ITEM, "price": "Infinity"}), "decimal string"),
        (tickers(0, {**TICKER_ITEM, "best_bid": "116800.02"}), "crossed book"),
        (tickers(0, {**TICKER_ITEM, "best_bid": 1.5}), "decimal string"),
        (tickers(0, {k: v for k, v in TICKER_ITEM.items() if k != "best_ask"}), "best_ask"),
        (trades(0, {**TRADE_ITEM, "side": "MAKER"}), "BUY/SELL"),
        (trades(0, {**TRADE_ITEM, "size": "0"}), "trade size must be > 0"),
        (envelope("ticker", 0, [{"type": "update"}]), "missing field 'tickers'"),
        (envelope("ticker", -1, []), "sequence_num"),
        (envelope("ticker", 0, [], timestamp="not a time at all"), "RFC 3339"),
        (json.dumps({"channel": "ticker", "sequence_num": 0}), "missing field 'events'"),
        (json.dumps({"events": []}), "neither channel nor type error"),
        ("[]", "JSON object"),
        ("nope", "invalid JSON"),
    ],
)
def test_invalid_frames(codec, data, match):
    raises_decode(codec, data, match)


def test_rest_request_and_decode():
    codec = codec_for("coinbase_advanced")
    request = codec.rest_ticker_request("BTC/USD")
    assert request == RestRequest(
        "https://api.coinbase.com/api/v3/brokerage/market/products/BTC-USD/ticker",
        (("limit", "1"),),
        (("User-Agent", "botcriptofy/0.1"), ("Accept", "application/json")),
    )
    body = (
        '{"trades":[{"trade_id":"1","product_id":"BTC-USD","price":"100.5","size":"1",'
        '"time":"2026-08-09T21:05:48.229198328Z","side":"BUY"}],'
        '"best_bid":"100.4","best_ask":"100.6"}'
    )
    ticker = codec.decode_rest_ticker(body, "BTC/USD", 2.0)
    assert (ticker.bid, ticker.ask, ticker.last, ticker.exchange_ts, ticker.source) == (
        Decimal("100.4"),
        Decimal("100.6"),
        Decimal("100.5"),
        rfc3339_ts(STAMP, "t"),
        "rest",
    )
    exchange_style = '{"ask":"63212.98","bid":"63212.97","price":"63212.97"}'
    assert codec.decode_rest_ticker(exchange_style, "BTC/USD", 2.0).bid == Decimal("63212.97")
    with pytest.raises(ValueError, match=r"NOT_FOUND|not found"):
        codec.decode_rest_ticker('{"error":"NOT_FOUND","message":"not found"}', "BTC/USD")
    with pytest.raises(ValueError, match="price must be > 0"):
        codec.decode_rest_ticker(body.replace('"100.4"', '"0"'), "BTC/USD")


# --- fuzzing ----------------------------------------------------------------------------------

products = st.one_of(st.sampled_from(["BTC-USD", "ETH-USD"]), st.just("BTC-USD"), field)
ticker_items = st.fixed_dictionaries(
    {"product_id": products, "best_bid": field, "best_ask": field, "price": field},
    optional={"best_bid_quantity": field, "best_ask_quantity": field, "type": field},
)
trade_items = st.fixed_dictionaries(
    {
        "product_id": products,
        "price": field,
        "size": field,
        "side": st.sampled_from(["BUY", "SELL"]) | field,
    },
    optional={"trade_id": field, "time": rfc3339},
)


def envelopes(channel: st.SearchStrategy, events: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {"channel": channel, "events": events},
        optional={
            "sequence_num": st.integers(min_value=-2, max_value=8) | field,
            "timestamp": rfc3339,
            "client_id": field,
        },
    )


plausible_ticker = st.fixed_dictionaries(
    {
        "product_id": st.just("BTC-USD"),
        "best_bid": plausible_text,
        "best_ask": plausible_text,
        "price": plausible_text,
        "best_bid_quantity": plausible_text,
    }
)
plausible_trade = st.fixed_dictionaries(
    {
        "product_id": st.just("BTC-USD"),
        "price": plausible_text,
        "size": plausible_text,
        "side": st.sampled_from(["BUY", "SELL"]),
        "trade_id": st.just("7"),
    }
)
plausible_frames = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["ticker", "market_trades"]),
        "sequence_num": st.integers(min_value=0, max_value=3),
        "timestamp": st.just(STAMP),
        "events": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.just("update"),
                    "tickers": st.lists(plausible_ticker, max_size=2),
                    "trades": st.lists(plausible_trade, max_size=2),
                }
            ),
            min_size=1,
            max_size=2,
        ),
    }
)
shaped = st.one_of(
    plausible_frames,
    envelopes(
        st.just("ticker"),
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["snapshot", "update"]) | field,
                    "tickers": st.lists(ticker_items, max_size=3) | field,
                }
            ),
            max_size=2,
        )
        | field,
    ),
    envelopes(
        st.just("market_trades"),
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["snapshot", "update"]) | field,
                    "trades": st.lists(trade_items, max_size=3) | field,
                }
            ),
            max_size=2,
        )
        | field,
    ),
    envelopes(
        st.sampled_from(["subscriptions", "heartbeats", "l2_data"]) | field,
        st.lists(
            st.fixed_dictionaries(
                {
                    "subscriptions": st.dictionaries(
                        st.sampled_from(["ticker", "market_trades", "heartbeats"]),
                        st.lists(products, max_size=3) | field,
                    )
                }
            )
            | any_json,
            max_size=2,
        )
        | field,
    ),
    optional_keys({"type": st.just("error")}, {"message": field}),
    any_json,
)


@given(frames=st.lists(st.binary(max_size=64) | as_frames(shaped), min_size=1, max_size=5))
@FUZZ
def test_fuzz_never_raises_anything_but_decode_error(frames):
    codec = codec_for("coinbase_advanced")
    codec.subscribe_messages([BTC_TICKER, BTC_TRADE, Stream("ticker", "ETH/USDC")])
    for data in frames:
        decode_checked(codec, data)
