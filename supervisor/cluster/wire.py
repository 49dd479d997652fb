"""Market events <-> Redis stream entries (pure).

One entry per leader write: ``e`` the leader's epoch, ``n`` its node, ``t`` the wall time the
leader received the newest event in it (for the reader's lag), ``d`` the events as one JSON
array. Decimals travel as strings, so a price is exactly what the exchange sent.

Decisions:

* **One entry per socket read, tickers conflated**: the leader's writer takes every event
  read since its last write, keeps only the newest ticker per symbol (a reader would skip the
  others anyway) and every trade in order. Redis' cost is per entry, not per byte, at these
  sizes, and batching is what makes one leader carry 16 readers.
* **States travel too**: a ``down`` told to a stream on the leader (its connection failed,
  the exchange refused the stream, the circuit opened) is an item of its own, in order with
  the data, so a reader tells its subscribers the same reason at once instead of going
  ``stale`` later. A state item ends the conflation of its stream's tickers: a ticker before
  it and one after it both travel, so the reader ends in the leader's order. REST-polled
  tickers (``source="rest"``) travel like the others; the reader publishes them as
  ``fallback``.
* Short positional arrays rather than objects: the payload is written once and read by every
  node, and the field names would be most of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson

from actors.messages import STREAM_KINDS, FeedState, Stream, Ticker, Trade

__all__ = ["Batch", "Entry", "conflate", "decode_entry", "encode_entry"]

Entry = Mapping[bytes, bytes]
STATES = ("live", "stale", "down", "fallback")
Batch = list[Ticker | Trade | FeedState]


def conflate(events: Iterable[object]) -> Batch:
    """Market events and stream states only: the newest ticker per symbol between two states
    of its stream, trades and states in order."""
    out: Batch = []
    ticker_at: dict[str, int] = {}
    for event in events:
        cls = type(event)
        if cls is Ticker:
            assert isinstance(event, Ticker)
            index = ticker_at.get(event.symbol)
            if index is None:
                ticker_at[event.symbol] = len(out)
                out.append(event)
            else:
                out[index] = event
        elif cls is Trade:
            assert isinstance(event, Trade)
            out.append(event)
        elif cls is FeedState:
            assert isinstance(event, FeedState)
            if event.stream.kind == "ticker":
                ticker_at.pop(event.stream.symbol, None)
            out.append(event)
    return out


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _encode(event: Ticker | Trade | FeedState) -> list[Any]:
    if type(event) is FeedState:
        assert isinstance(event, FeedState)
        return ["s", event.stream.kind, event.stream.symbol, event.state, event.reason]
    if type(event) is Ticker:
        assert isinstance(event, Ticker)
        return [
            "k", event.symbol, str(event.bid), str(event.ask), _dec(event.last),
            _dec(event.bid_size), _dec(event.ask_size), event.exchange_ts, event.received_ts,
            event.sequence, event.source,
        ]  # fmt: skip
    assert isinstance(event, Trade)
    return [
        "t", event.symbol, str(event.price), str(event.size), event.side, event.trade_id,
        event.exchange_ts, event.received_ts, event.sequence,
    ]  # fmt: skip


def encode_entry(epoch: int, node: str, received_ts: float, events: Batch) -> dict[str, str]:
    return {
        "e": str(epoch),
        "n": node,
        "t": repr(received_ts),
        "d": orjson.dumps([_encode(e) for e in events]).decode(),
    }


def _opt(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def decode_entry(exchange: str, fields: Entry) -> tuple[int, str, float, Batch]:
    """(epoch, node, leader receipt time, events); ``ValueError``/``KeyError`` if malformed."""
    events: Batch = []
    for item in orjson.loads(fields[b"d"]):
        if item[0] == "k":
            _, symbol, bid, ask, last, bid_size, ask_size, ets, rts, seq, source = item
            ticker = Ticker(
                exchange, symbol, Decimal(bid), Decimal(ask), _opt(last), _opt(bid_size),
                _opt(ask_size), ets, rts, source, seq,
            )  # fmt: skip
            events.append(ticker)
        elif item[0] == "s":
            _, kind, symbol, state, reason = item
            if kind not in STREAM_KINDS or state not in STATES:
                raise ValueError(f"bad state item {item!r}")
            events.append(FeedState(exchange, Stream(kind, symbol), state, reason))
        else:
            _, symbol, price, size, side, trade_id, ets, rts, seq = item
            price_, size_ = Decimal(price), Decimal(size)
            events.append(Trade(exchange, symbol, price_, size_, side, trade_id, ets, rts, seq))
    return int(fields[b"e"]), fields[b"n"].decode(), float(fields[b"t"]), events
