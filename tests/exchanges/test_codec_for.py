import pytest

from actors.exchanges import PROTOCOLS, codec_for
from actors.messages import Stream

EXPECTED = {
    "binance": ("BinanceCodec", "wss://stream.binance.com:9443/stream", 1024, 5),
    "coinbase": ("CoinbaseCodec", "wss://ws-feed.exchange.coinbase.com", None, 10),
    "coinbase_advanced": ("CoinbaseAdvancedCodec", "wss://advanced-trade-ws.coinbase.com", None, 8),
    "kraken": ("KrakenCodec", "wss://ws.kraken.com/v2", None, 5),
    "kraken_v1": ("KrakenV1Codec", "wss://ws.kraken.com", None, 5),
}


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
