"""What every exchange codec is: pure, per connection, wire frames in and normalized events out.

Codecs keep small per-connection state (request ids awaiting acks, last sequence numbers), so
each connection owns its codec (``codec_for`` returns a new one each time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from actors.messages import Event, Stream, Ticker

__all__ = ["Codec", "RestRequest"]


@attrs.frozen(slots=True)
class RestRequest:
    """An HTTP GET for the REST fallback: ``url`` is absolute."""

    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


class Codec(Protocol):
    protocol: str  # the registry name: "binance", "coinbase", ...
    exchange: str  # label put on every event
    default_url: str  # public production WebSocket URL
    default_rest_url: str  # public production REST base URL
    max_streams_per_connection: int | None  # Binance: 1024
    max_requests_per_second: float | None  # client->server message budget (Binance: 5)

    def __init__(self, exchange: str = ...) -> None: ...
    def native_symbol(self, symbol: str) -> str: ...
    def unified_symbol(self, native: str) -> str: ...
    def subscribe_messages(self, streams: Sequence[Stream]) -> list[str]: ...
    def unsubscribe_messages(self, streams: Sequence[Stream]) -> list[str]: ...
    def decode(self, frame: str | bytes, received_ts: float | None = None) -> list[Event]: ...
    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest: ...
    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker: ...
