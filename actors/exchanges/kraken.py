"""Kraken WS v2 public market data codec, pure; the default Kraken codec.

Decisions:

* ``ticker`` -> channel ``ticker`` with ``event_trigger: "bbo"`` (a frame on every best bid/offer
  change, not only on trades) and ``snapshot: true``; ``trade`` -> channel ``trade`` with
  ``snapshot: false``: the trade snapshot is the last 50 prints, history rather than live
  trading, and would flood a subscriber's bounded trade buffer. A trade snapshot that arrives
  anyway decodes to no trades. One request per channel carries every symbol; ``req_id`` is a
  positive, incrementing integer.
* Symbols are ``BTC/USD``/``DOGE/USD``; v2 rejects the v1 names ``XBT``/``XDG``.
* Numbers are JSON numbers on the wire: frames are parsed with the stdlib ``json`` and
  ``parse_float=Decimal`` so every digit is kept (orjson would go through binary floats).
  ``NaN``/``Infinity`` literals are refused. Decimal strings are accepted too (the docs show
  them in places). The u64 ``connection_id`` parses as a Python int.
* Acks come one per symbol; the codec resolves each to its stream and keeps a request's entry
  until every symbol has been answered. ``pong`` is liveness and decodes to ``Heartbeat``
  (as ``messages.Heartbeat`` documents); ``status`` becomes ``SystemStatus``.
* Ticker frames carry no sequence number, so nothing is dropped as out of order.
* Each data item names its symbol once (``data[].symbol``; the envelope names only the
  channel): there is no second copy to check it against.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from decimal import Decimal

from actors.errors import DecodeError
from actors.exchanges.codec import DecodedBatch, RestRequest, decode_each
from actors.exchanges.kraken_rest import (
    DEFAULT_REST_URL,
    decode_kraken_rest_ticker,
    kraken_rest_ticker_request,
)
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    JsonObject,
    SymbolTable,
    check_book,
    decode_failure,
    dumps,
    expect_dict,
    expect_list,
    expect_str,
    number_price,
    number_size,
    remember,
    rest_symbol,
    rfc3339_ts,
    show,
    trade_id,
)
from actors.exchanges.symbols import kraken_native, kraken_unified
from actors.messages import (
    Event,
    Heartbeat,
    Stream,
    Subscribed,
    SubscriptionError,
    SystemStatus,
    Ticker,
    Trade,
    Unsubscribed,
)

_KIND = {"ticker": "ticker", "trade": "trade"}
_SIDES = {"buy": "buy", "sell": "sell"}


def _refuse_constant(name: str) -> object:
    raise DecodeError(f"kraken: {name} is not a number an exchange sends")


def _loads(frame: str | bytes) -> object:
    return json.loads(frame, parse_float=Decimal, parse_constant=_refuse_constant)


class KrakenCodec:
    protocol = "kraken"
    default_url = "wss://ws.kraken.com/v2"
    default_rest_url = DEFAULT_REST_URL
    max_streams_per_connection: int | None = None
    # Kraken's WS request rate limit is dynamic and not published; 5/s keeps bursts modest. A
    # (re)subscribe needs at most two requests (one per channel) whatever the symbol count.
    max_requests_per_second: float | None = 5.0

    def __init__(self, exchange: str = "kraken") -> None:
        self.exchange = exchange
        # The symbol of the last rest_ticker_request: decode_rest_ticker(body) needs no symbol.
        self._rest_symbol: str | None = None
        self._next_req_id = 1
        # req_id -> (op, kind, {native symbol: stream} still awaiting its per-symbol ack)
        self._pending: dict[int, tuple[str, str, dict[str, Stream]]] = {}
        self._symbols = SymbolTable("kraken", kraken_native, kraken_unified, "symbol")

    # --- symbols ------------------------------------------------------------------------------

    def native_symbol(self, symbol: str) -> str:
        return self._symbols.native(symbol)

    def unified_symbol(self, native: str) -> str:
        return self._symbols.unified(native)

    # --- client frames ------------------------------------------------------------------------

    def subscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        """``{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD"],
        "event_trigger":"bbo","snapshot":true},"req_id":1}``"""
        return self._requests("subscribe", streams)

    def unsubscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        """Repeats the keying parameter ``event_trigger`` for ticker (Kraken keys acks by it)."""
        return self._requests("unsubscribe", streams)

    def _requests(self, op: str, streams: Sequence[Stream]) -> list[str]:
        by_kind = self._symbols.group_by_kind(streams, _KIND)
        frames = []
        for kind, members in by_kind.items():
            params: dict[str, object] = {"channel": kind, "symbol": list(members)}
            if kind == "ticker":
                params["event_trigger"] = "bbo"
            if op == "subscribe":
                params["snapshot"] = kind == "ticker"
            req_id = self._next_req_id
            self._next_req_id += 1
            remember(self._pending, req_id, (op, kind, dict(members)))
            frames.append(dumps({"method": op, "params": params, "req_id": req_id}))
        return frames

    # --- server frames ------------------------------------------------------------------------

    def decode_batch(
        self, frames: Sequence[str | bytes], received_ts: float | None = None
    ) -> DecodedBatch:
        """Frame by frame (``codec.decode_each``). A ticker frame names its symbols inside its
        ``data`` list (one frame may carry several), so its stream cannot be told without
        parsing it, which is most of what conflation would save."""
        return decode_each(self.decode, frames, received_ts)

    def decode(self, frame: str | bytes, received_ts: float | None = None) -> list[Event]:
        ts = time.time() if received_ts is None else received_ts
        try:
            msg = _loads(frame)
            if type(msg) is not dict:
                raise DecodeError(f"kraken: expected a JSON object, got {type(msg).__name__}")
            channel = msg.get("channel")
            if channel is not None:
                if channel == "ticker":
                    return self._tickers(msg, ts)
                if channel == "trade":
                    return self._trades(msg, ts)
                if channel == "heartbeat":
                    return [Heartbeat(self.exchange)]
                if channel == "status":
                    return self._status(msg)
                expect_str(channel, "kraken channel")
                return []  # book, ohlc, instrument...: not used
            if "method" in msg:
                return self._reply(msg)
            raise DecodeError("kraken: frame has neither channel nor method")
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure(self.protocol, exc) from exc

    @staticmethod
    def _data(msg: JsonObject, what: str) -> list[JsonObject]:
        return [expect_dict(item, what) for item in expect_list(msg["data"], f"{what} data")]

    def _tickers(self, msg: JsonObject, ts: float) -> list[Event]:
        """``{"channel":"ticker","type":"snapshot"|"update","data":[{"symbol":"BTC/USD",
        "bid":105944.2,"bid_qty":2.5,"ask":105944.3,"ask_qty":3.2,"last":105899.4,
        "volume":163.28,"vwap":105904.39,"low":104711.0,"high":106613.1,"change":250.0,
        "change_pct":0.24,"timestamp":"2026-..Z"}]}``"""
        out: list[Event] = []
        for item in self._data(msg, "kraken ticker"):
            bid = number_price(item["bid"], "kraken ticker bid")
            ask = number_price(item["ask"], "kraken ticker ask")
            check_book(bid, ask, "kraken ticker")
            last = item.get("last")
            bid_size = item.get("bid_qty")
            ask_size = item.get("ask_qty")
            when = item.get("timestamp")
            out.append(
                Ticker(
                    self.exchange,
                    self._symbols.decode(item["symbol"]),
                    bid,
                    ask,
                    None if last is None else number_price(last, "kraken ticker last"),
                    None if bid_size is None else number_size(bid_size, "kraken ticker bid_qty"),
                    None if ask_size is None else number_size(ask_size, "kraken ticker ask_qty"),
                    None if when is None else rfc3339_ts(when, "kraken ticker timestamp"),
                    ts,
                )
            )
        return out

    def _trades(self, msg: JsonObject, ts: float) -> list[Event]:
        """``{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",
        "price":105944.3,"qty":0.01,"ord_type":"market","trade_id":83736162,
        "timestamp":"2026-..Z"}]}``; ``side`` is the taker's."""
        data = self._data(msg, "kraken trade")
        if msg.get("type") == "snapshot":
            return []  # history, see module docstring
        out: list[Event] = []
        for item in data:
            side = _SIDES.get(item["side"])
            if side is None:
                raise DecodeError(f"kraken trade: side must be buy/sell, got {show(item['side'])}")
            quantity = number_size(item["qty"], "kraken trade qty")
            if not quantity:
                raise DecodeError("kraken trade: qty must be > 0")
            raw_id = item.get("trade_id")
            when = item.get("timestamp")
            out.append(
                Trade(
                    self.exchange,
                    self._symbols.decode(item["symbol"]),
                    number_price(item["price"], "kraken trade price"),
                    quantity,
                    side,  # type: ignore[arg-type]
                    None if raw_id is None else trade_id(raw_id, "kraken trade trade_id"),
                    None if when is None else rfc3339_ts(when, "kraken trade timestamp"),
                    ts,
                    raw_id if type(raw_id) is int else None,
                )
            )
        return out

    def _status(self, msg: JsonObject) -> list[Event]:
        """``{"channel":"status","type":"update","data":[{"api_version":"v2",
        "connection_id":12393906104898154338,"system":"online","version":"2.0.10"}]}``"""
        return [
            SystemStatus(self.exchange, expect_str(item["system"], "kraken status system"))
            for item in self._data(msg, "kraken status")
        ]

    def _reply(self, msg: JsonObject) -> list[Event]:
        """``{"method":"subscribe","result":{"channel":"ticker","event_trigger":"bbo",
        "snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"..","time_out":"..",
        "req_id":1}`` or ``{"error":"Currency pair not supported NOPE/USD",
        "method":"subscribe","success":false,"symbol":"NOPE/USD","req_id":1}``"""
        method = msg["method"]
        if method == "pong":
            return [Heartbeat(self.exchange)]
        if method != "subscribe" and method != "unsubscribe":
            expect_str(method, "kraken method")
            return []
        req_id = msg.get("req_id")
        if req_id is not None and type(req_id) is not int:
            raise DecodeError(f"kraken reply: req_id must be an integer, got {show(req_id)}")
        success = msg["success"]
        if type(success) is not bool:
            raise DecodeError(f"kraken reply: success must be a boolean, got {show(success)}")
        if success:
            return self._ack(method, msg, req_id)
        return [self._refusal(msg, req_id)]

    def _ack(self, method: str, msg: JsonObject, req_id: int | None) -> list[Event]:
        result = expect_dict(msg["result"], "kraken ack result")
        kind = _KIND.get(result["channel"])
        if kind is None:
            return []  # an ack for a channel we never ask for
        native = result.get("symbol")
        streams: tuple[Stream, ...] = ()
        if native is not None:
            streams = (Stream(kind, self._symbols.decode(native)),)  # type: ignore[arg-type]
        pending = self._pending.get(req_id) if req_id is not None else None
        if pending is not None:
            remaining = pending[2]
            if native is None:
                streams = tuple(remaining.values())
                remaining.clear()
            else:
                remaining.pop(native, None)
            if not remaining:
                del self._pending[req_id]  # type: ignore[arg-type]
        if method == "unsubscribe":
            return [Unsubscribed(self.exchange, streams, req_id)]
        return [Subscribed(self.exchange, streams, req_id)]

    def _refusal(self, msg: JsonObject, req_id: int | None) -> SubscriptionError:
        message = expect_str(msg["error"], "kraken error")
        native = msg.get("symbol")
        pending = self._pending.get(req_id) if req_id is not None else None
        streams: tuple[Stream, ...] = ()
        if pending is not None:
            remaining = pending[2]
            if native is None:
                streams = tuple(remaining.values())
                remaining.clear()
            else:
                stream = remaining.pop(expect_str(native, "kraken error symbol"), None)
                if stream is None:
                    stream = self._symbols.stream_or_none(pending[1], native)
                streams = () if stream is None else (stream,)
            if not remaining:
                del self._pending[req_id]  # type: ignore[arg-type]
        return SubscriptionError(self.exchange, message, streams, req_id)

    # --- REST fallback ------------------------------------------------------------------------

    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest:
        self._rest_symbol = symbol
        return kraken_rest_ticker_request(symbol, base_url or self.default_rest_url)

    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker:
        ts = time.time() if received_ts is None else received_ts
        symbol = rest_symbol(symbol or self._rest_symbol, "kraken")
        return decode_kraken_rest_ticker(self.exchange, symbol, body, ts)
