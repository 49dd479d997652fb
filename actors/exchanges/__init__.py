"""Pure exchange protocol codecs (no I/O): wire frames in, normalized events out.

``codec_for(protocol, exchange=None)`` returns a *new* codec instance: codecs keep small
per-connection state (request ids awaiting acks, last sequence numbers), so each connection owns
its codec. ``exchange`` labels the events (defaults to the protocol name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from actors.errors import DecodeError
from actors.messages import Event, Stream, Ticker

__all__ = ["PROTOCOLS", "Codec", "DecodeError", "RestRequest", "codec_for"]


@attrs.frozen(slots=True)
class RestRequest:
    """An HTTP GET for the REST fallback: ``url`` is absolute."""

    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


class Codec(Protocol):
    protocol: str  # "binance", "coinbase", "coinbase_advanced", "kraken", "kraken_v1"
    exchange: str  # label put on every event
    default_url: str  # public production WebSocket URL
    default_rest_url: str  # public production REST base URL
    max_streams_per_connection: int | None  # Binance: 1024
    max_requests_per_second: float | None  # client->server message budget (Binance: 5)

    def native_symbol(self, symbol: str) -> str: ...
    def unified_symbol(self, native: str) -> str: ...
    def subscribe_messages(self, streams: Sequence[Stream]) -> list[str]: ...
    def unsubscribe_messages(self, streams: Sequence[Stream]) -> list[str]: ...
    def decode(self, frame: str | bytes, received_ts: float | None = None) -> list[Event]: ...
    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest: ...
    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker: ...


PROTOCOLS: tuple[str, ...] = ("binance", "coinbase", "coinbase_advanced", "kraken", "kraken_v1")


def codec_for(protocol: str, exchange: str | None = None) -> Codec:
    if protocol == "binance":
        from actors.exchanges.binance import BinanceCodec as cls
    elif protocol == "coinbase":
        from actors.exchanges.coinbase import CoinbaseCodec as cls
    elif protocol == "coinbase_advanced":
        from actors.exchanges.coinbase_advanced import CoinbaseAdvancedCodec as cls
    elif protocol == "kraken":
        from actors.exchanges.kraken import KrakenCodec as cls
    elif protocol == "kraken_v1":
        from actors.exchanges.kraken_v1 import KrakenV1Codec as cls
    else:
        raise ValueError(f"unknown exchange protocol {protocol!r}; expected one of {PROTOCOLS}")
    return cls(exchange=exchange or protocol)
