"""What every exchange codec is: pure, per connection, wire frames in and normalized events out.

Codecs keep small per-connection state (request ids awaiting acks, last sequence numbers), so
each connection owns its codec (``codec_for`` returns a new one each time).

Decisions:

* Two entry points for the same contract. ``decode(frame)`` is the reference: one frame, its
  events or a ``DecodeError`` (tests and the REST path use it). ``decode_batch(frames)`` is what
  the reader calls with every frame of one socket read, because only there can a codec see
  that a frame is already out of date: a ticker overwritten by a newer one of its stream in
  the same batch would be conflated by the subscribers' mailboxes anyway, so building it is
  wasted work. A codec may skip such frames (Binance does), and then its batch result is
  exactly what ``decode`` frame by frame would leave subscribers reading: every trade and
  control event, in order, and per ticker stream its last published ticker.
* Failures come back as values, one per frame actually decoded (``DecodedBatch.failures``):
  one bad frame must not cost the others of its batch, and the reader counts and logs them
  per frame as before. A skipped frame is never validated, so it is not counted.
* ``decode_each`` is the generic batch, frame by frame, for codecs that gain nothing from
  looking ahead (Coinbase, Kraken: see their modules).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import attrs

from actors.errors import DecodeError
from actors.messages import Event, Stream, Ticker

__all__ = ["Codec", "DecodedBatch", "RestRequest", "decode_each"]

Frame = str | bytes


@attrs.frozen(slots=True)
class RestRequest:
    """An HTTP GET for the REST fallback: ``url`` is absolute."""

    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


class DecodedBatch(NamedTuple):
    """What one batch of frames decoded to (a tuple: the reader unpacks it per socket read).

    ``events``: every event, frame order kept for everything but conflated tickers.
    ``failures``: ``(frame, error)`` per frame that was decoded and rejected.
    ``conflated``: ticker frames skipped because a newer frame of their stream in the same
    batch was published instead; they were never decoded, hence never validated.
    """

    events: list[Event]
    failures: list[tuple[Frame, DecodeError]]
    conflated: int


def decode_each(
    decode: Callable[[Frame, float | None], list[Event]],
    frames: Sequence[Frame],
    received_ts: float | None = None,
) -> DecodedBatch:
    """The generic ``decode_batch``: every frame through ``decode``, in order."""
    ts = time.time() if received_ts is None else received_ts
    events: list[Event] = []
    failures: list[tuple[Frame, DecodeError]] = []
    for frame in frames:
        try:
            events += decode(frame, ts)
        except DecodeError as exc:
            failures.append((frame, exc))
    return DecodedBatch(events, failures, 0)


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
    def decode_batch(
        self, frames: Sequence[str | bytes], received_ts: float | None = None
    ) -> DecodedBatch: ...
    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest: ...
    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker: ...
