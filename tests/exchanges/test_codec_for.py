from decimal import Decimal

import pytest

from actors.errors import DecodeError
from actors.exchanges import CODECS, PROTOCOLS, codec_class, codec_for
from actors.messages import Stream

EXPECTED = {
    "binance": ("BinanceCodec", "wss://stream.binance.com:9443/stream", 1024, 5),
    "coinbase": ("CoinbaseCodec", "wss://ws-feed.exchange.coinbase.com", None, 10),
    "coinbase_advanced": ("CoinbaseAdvancedCodec", "wss://advanced-trade-ws.coinbase.com", None, 8),
    "kraken": ("KrakenCodec", "wss://ws.kraken.com/v2", None, 5),
    "kraken_v1": ("KrakenV1Codec", "wss://ws.kraken.com", None, 5),
}


def test_the_registry_names_each_codec_by_its_protocol():
    assert tuple(CODECS) == PROTOCOLS == tuple(EXPECTED)
    assert all(cls.protocol == name for name, cls in CODECS.items())
    with pytest.raises(ValueError, match="unknown exchange protocol 'nope'"):
        codec_for("nope")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol_has_a_codec(protocol):
    codec = codec_for(protocol)
    name, url, max_streams, max_rate = EXPECTED[protocol]
    assert type(codec).__name__ == name
    assert (codec.protocol, codec.exchange, codec.default_url) == (protocol, protocol, url)
    assert codec.default_rest_url.startswith("https://")
    assert codec.max_streams_per_connection == max_streams
    assert codec.max_requests_per_second == max_rate
    assert codec_for(protocol, exchange="label").exchange == "label"
    assert codec_class(protocol).default_url == url  # the defaults, without an instance


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_codecs_are_per_connection(protocol):
    first, second = codec_for(protocol), codec_for(protocol)
    assert first is not second
    stream = Stream("ticker", "BTC/USDT")
    # Same fresh state -> same first frames (request ids start over on each connection).
    assert first.subscribe_messages([stream]) == second.subscribe_messages([stream])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_symbols_round_trip(protocol):
    codec = codec_for(protocol)
    for symbol in ("BTC/USDT", "ETH/BTC", "DOGE/USD"):
        assert codec.unified_symbol(codec.native_symbol(symbol)) == symbol


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_unified_symbols_are_refused_when_subscribing(protocol):
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        codec_for(protocol).subscribe_messages([Stream("ticker", "btcusdt")])


REST_BODIES = {
    "binance": (
        '{"symbol":"BTCUSDT","bidPrice":"100.1","bidQty":"1","askPrice":"100.2","askQty":"2"}'
    ),
    "coinbase": '{"ask":"100.2","bid":"100.1","price":"100.15","size":"0.1","trade_id":1}',
    "coinbase_advanced": '{"trades":[],"best_bid":"100.1","best_ask":"100.2"}',
    "kraken": (
        '{"error":[],"result":{"XXBTZUSDT":{"a":["100.2","1","1.0"],'
        '"b":["100.1","1","1.0"],"c":["100.15","0.1"],"o":"99"}}}'
    ),
}
REST_BODIES["kraken_v1"] = REST_BODIES["kraken"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rest_fallback_in_the_contract_form(protocol):
    """The codec contract: ``rest_ticker_request(symbol)`` then ``decode_rest_ticker(body)``."""
    codec = codec_for(protocol)
    symbol = "BTC/USDT"
    request = codec.rest_ticker_request(symbol)
    assert request.url.startswith(codec.default_rest_url)
    ticker = codec.decode_rest_ticker(REST_BODIES[protocol])
    assert (ticker.symbol, ticker.bid, ticker.ask, ticker.source) == (
        symbol,
        Decimal("100.1"),
        Decimal("100.2"),
        "rest",
    )


@pytest.mark.parametrize("protocol", ["coinbase", "coinbase_advanced", "kraken", "kraken_v1"])
def test_a_body_that_does_not_name_its_symbol_needs_one(protocol):
    with pytest.raises(DecodeError, match="does not name its symbol"):
        codec_for(protocol).decode_rest_ticker(REST_BODIES[protocol])


def test_a_binance_body_names_its_symbol():
    ticker = codec_for("binance").decode_rest_ticker(REST_BODIES["binance"])
    assert ticker.symbol == "BTC/USDT"
