"""Binance Spot public market data codec, pure.

Decisions:

* We connect to the combined endpoint ``/stream`` with no stream list and subscribe live, so every
  data frame is ``{"stream": name, "data": payload}`` and is routed by ``stream`` through one dict
  lookup (bookTicker payloads have no ``e`` to route by). Raw ``/ws`` payloads are still
  understood, recognised by their keys, so the codec also works against a raw endpoint or a fake
  server that sends them.
* ``ticker`` -> ``<sym>@bookTicker`` (real-time best bid/ask, no last, no exchange time);
  ``trade`` -> ``<sym>@trade``. A ``24hrTicker`` payload, if one arrives, also becomes a Ticker
  (with last), since it is a documented ticker frame; depth, kline, aggTrade... become ``[]``.
* All streams of one call go into one SUBSCRIBE (at most 1024 per frame, the per-connection stream
  cap) with a positive, incrementing integer id (the server allows 5 messages/s and older servers
  refuse string ids). The codec remembers id -> streams so that ``{"result":null,"id":n}`` resolves
  to ``Subscribed``/``Unsubscribed`` with streams, and ``{"error":{...},"id":n}`` to a
  ``SubscriptionError`` naming them.
* A frame's own symbol (``data.s``) must be the one its ``stream`` name carries: a mismatch, or
  an ``s`` that is not a string, is a ``DecodeError`` naming both, never a tick for the stream's
  symbol. For subscribed streams the route stores the expected native symbol, so the check is
  one string comparison; the names of other streams are compared after lower-casing ``s``
  (all-market ``!...`` names carry no symbol).
* bookTicker ``u`` goes up per symbol; duplicates and out-of-order frames are dropped by a
  ``SequenceFilter`` keyed by symbol (accept above the highest, drop at or below it, re-base
  after three rising frames below it, so a poisoned ``u`` cannot silence the symbol).
  ``subscribe_messages`` forgets the ``u`` of every ticker stream it (re)subscribes. The
  number is recorded only once the frame has decoded: a malformed frame changes nothing.
* The all-market ticker arrays (``!ticker@arr``, ``!miniTicker@arr``, ``!ticker_<w>@arr``;
  combined, or raw as a top-level JSON array) are valid frames and decode to ``[]``: we never
  subscribe to them, and turning their 1 s snapshots into Tickers would interleave stale
  prices with real-time bookTicker data. Every item must be a payload of the stream's event
  type; any other array is a ``DecodeError``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs
import orjson

from actors.errors import DecodeError
from actors.exchanges.codec import RestRequest
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    JsonObject,
    SymbolTable,
    check_book,
    decode_failure,
    dumps,
    expect_dict,
    ms_ts,
    price,
    remember,
    show,
    size,
    trade_id,
    trade_size,
    unique,
)
from actors.exchanges.sequence import SequenceFilter
from actors.exchanges.symbols import binance_native, binance_unified
from actors.messages import (
    Event,
    ReconnectRequested,
    Stream,
    Subscribed,
    SubscriptionError,
    Ticker,
    Trade,
    Unsubscribed,
)

_SUFFIX = {"ticker": "bookTicker", "trade": "trade"}
_KIND = {"bookTicker": "ticker", "trade": "trade"}
_SHUTDOWN_STREAM = "!serverShutdown"
# All-market ticker array streams -> the event type of their items.
_ARRAYS = {
    "!ticker@arr": "24hrTicker",
    "!miniTicker@arr": "24hrMiniTicker",
    "!ticker_1h@arr": "1hTicker",
    "!ticker_4h@arr": "4hTicker",
    "!ticker_1d@arr": "1dTicker",
}
_ARRAY_EVENTS = tuple(_ARRAYS.values())


@attrs.frozen(slots=True)
class _Route:
    """A subscribed stream, flattened for the per-frame path."""

    stream: Stream
    kind: str
    symbol: str  # unified
    native: str  # what the frame's ``s`` must be


class BinanceCodec:
    protocol = "binance"
    default_url = "wss://stream.binance.com:9443/stream"
    default_rest_url = "https://api.binance.com"
    max_streams_per_connection: int | None = 1024
    # Incoming-message limit per connection, counting pings/pongs and requests.
    max_requests_per_second: float | None = 5.0

    def __init__(self, exchange: str = "binance") -> None:
        self.exchange = exchange
        # The symbol of the last rest_ticker_request: decode_rest_ticker(body) needs no symbol.
        self._rest_symbol: str | None = None
        self._next_id = 1
        # request id -> ("subscribe" | "unsubscribe", streams)
        self._pending: dict[int, tuple[str, tuple[Stream, ...]]] = {}
        # "btcusdt@bookTicker" -> its route, for every stream we asked for
        self._routes: dict[str, _Route] = {}
        # "BTCUSDT" -> "BTC/USDT" for subscribed symbols (splitting by quote is the fallback)
        self._symbols = SymbolTable("binance", binance_native, binance_unified, "symbol")
        # bookTicker update ids, per unified symbol
        self._book_seq: SequenceFilter[str] = SequenceFilter()

    # --- symbols ------------------------------------------------------------------------------

    def native_symbol(self, symbol: str) -> str:
        return self._symbols.native(symbol)

    def unified_symbol(self, native: str) -> str:
        return self._symbols.unified(native)

    def stream_name(self, stream: Stream) -> str:
        """``Stream("ticker", "BTC/USDT")`` -> ``"btcusdt@bookTicker"`` (and remember the route)."""
        suffix = _SUFFIX.get(stream.kind)
        if suffix is None:
            raise ValueError(f"binance: unsupported stream kind {stream.kind!r}")
        native = self._symbols.remember(stream.symbol)
        name = f"{native.lower()}@{suffix}"
        self._routes[name] = _Route(stream, stream.kind, stream.symbol, native)
        return name

    def _stream_from_name(self, name: object) -> Stream | None:
        if type(name) is not str:
            return None
        known = self._routes.get(name)
        if known is not None:
            return known.stream
        market, _, suffix = name.partition("@")
        kind = _KIND.get(suffix)
        if kind is None or not market:
            return None
        try:
            return Stream(kind, self.unified_symbol(market.upper()))  # type: ignore[arg-type]
        except ValueError:
            return None

    # --- client frames ------------------------------------------------------------------------

    def subscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        for stream in streams:
            if stream.kind == "ticker":
                self._book_seq.forget(stream.symbol)
        return self._requests("SUBSCRIBE", "subscribe", streams)

    def unsubscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        return self._requests("UNSUBSCRIBE", "unsubscribe", streams)

    def _requests(self, method: str, op: str, streams: Sequence[Stream]) -> list[str]:
        wanted = unique(streams)
        names = [self.stream_name(stream) for stream in wanted]
        frames = []
        step = self.max_streams_per_connection or len(names) or 1
        for start in range(0, len(names), step):
            request_id = self._next_id
            self._next_id += 1
            remember(self._pending, request_id, (op, tuple(wanted[start : start + step])))
            frames.append(
                dumps({"method": method, "params": names[start : start + step], "id": request_id})
            )
        return frames

    # --- server frames ------------------------------------------------------------------------

    def decode(self, frame: str | bytes, received_ts: float | None = None) -> list[Event]:
        ts = time.time() if received_ts is None else received_ts
        try:
            msg = orjson.loads(frame)
            if type(msg) is not dict:
                if type(msg) is list:
                    return self._ticker_array(msg, None)
                raise DecodeError(f"binance: expected a JSON object, got {type(msg).__name__}")
            name = msg.get("stream")
            if name is not None:
                data = msg["data"]
                route = self._routes.get(name) if type(name) is str else None
                if route is None:
                    return self._unrouted(name, data, ts)
                native = data["s"]
                if native != route.native:
                    raise DecodeError(
                        f"binance {name}: data.s is {show(native)}, not {route.native}"
                    )
                if route.kind == "ticker":
                    return self._book_ticker(data, route.symbol, ts)
                return self._trade(data, route.symbol, ts)
            if "id" in msg and ("result" in msg or "error" in msg):
                return self._reply(msg)
            if "code" in msg and "msg" in msg:
                return [self._error(msg, msg.get("id"))]
            return self._payload(msg, ts)
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure(self.protocol, exc) from exc

    def _unrouted(self, name: object, data: object, ts: float) -> list[Event]:
        """Combined data for a stream we did not ask for."""
        if type(name) is not str:
            raise DecodeError(f"binance: stream must be a string, got {show(name)}")
        if name == _SHUTDOWN_STREAM:
            return [ReconnectRequested(self.exchange, "serverShutdown")]
        if name in _ARRAYS:
            return self._ticker_array(data, name)
        # All-market "!..." names carry no symbol to check against.
        return self._payload(data, ts, None if name.startswith("!") else name)

    def _ticker_array(self, data: object, name: str | None) -> list[Event]:
        """``[{"e":"24hrTicker","E":ms,"s":"BNBBTC",..},..]`` on ``name`` (None: a raw frame);
        see the module docstring."""
        if type(data) is not list:
            raise DecodeError(f"binance {name}: expected a JSON array, got {type(data).__name__}")
        allowed = _ARRAY_EVENTS if name is None else (_ARRAYS[name],)
        for item in data:
            if type(item) is not dict or item.get("e") not in allowed:
                raise DecodeError(
                    f"binance {name or 'array'}: expected a JSON object or an array of "
                    f"{'/'.join(allowed)} payloads, got an item {show(item)}"
                )
        return []

    def _symbol(self, data: JsonObject, stream: str | None) -> str:
        """The unified symbol a payload names, checked against the name of its ``stream``."""
        native = data["s"]
        if stream is not None:
            market = stream.partition("@")[0]
            if type(native) is not str or native.lower() != market:
                raise DecodeError(f"binance {stream}: data.s is {show(native)}, not {market}")
        return self._symbols.decode(native)

    def _payload(self, data: object, ts: float, stream: str | None = None) -> list[Event]:
        """A bare payload: raw-stream frame (``stream`` None), or combined data for a stream we
        did not ask for."""
        data = expect_dict(data, "binance payload")
        event = data.get("e")
        if event is None:
            # bookTicker is the one payload without "e" that has u/s/b/a (depth partials have
            # lastUpdateId/bids/asks instead).
            if "u" in data and "s" in data and "b" in data and "a" in data:
                return self._book_ticker(data, self._symbol(data, stream), ts)
            return []
        if event == "trade":
            return self._trade(data, self._symbol(data, stream), ts)
        if event == "24hrTicker":
            return self._day_ticker(data, self._symbol(data, stream), ts)
        if event == "serverShutdown":
            return [ReconnectRequested(self.exchange, "serverShutdown")]
        return []

    def _book_ticker(self, data: JsonObject, symbol: str, ts: float) -> list[Event]:
        """``{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",
        "a":"25.36520000","A":"40.66000000"}`` (no ``e``, no time, no last)."""
        update_id = data["u"]
        if type(update_id) is not int:
            raise DecodeError(f"binance bookTicker: u must be an integer, got {show(update_id)}")
        bid = price(data["b"], "binance bookTicker b")
        ask = price(data["a"], "binance bookTicker a")
        check_book(bid, ask, "binance bookTicker")
        ticker = Ticker(
            self.exchange,
            symbol,
            bid,
            ask,
            None,
            size(data["B"], "binance bookTicker B"),
            size(data["A"], "binance bookTicker A"),
            None,
            ts,
            "ws",
            update_id,
        )
        if not self._book_seq.accept(symbol, update_id):
            return []
        return [ticker]

    def _trade(self, data: JsonObject, symbol: str, ts: float) -> list[Event]:
        """``{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100",
        "T":1672515782136,"m":true,"M":true}``; ``m`` (buyer is maker) true -> taker sold."""
        buyer_is_maker = data["m"]
        if type(buyer_is_maker) is not bool:
            raise DecodeError(f"binance trade: m must be a boolean, got {show(buyer_is_maker)}")
        raw_id = data["t"]
        if type(raw_id) is not int:
            raise DecodeError(f"binance trade: t must be an integer, got {show(raw_id)}")
        return [
            Trade(
                self.exchange,
                symbol,
                price(data["p"], "binance trade p"),
                trade_size(data["q"], "binance trade q"),
                "sell" if buyer_is_maker else "buy",
                trade_id(raw_id, "binance trade t"),
                ms_ts(data["T"], "binance trade T"),
                ts,
                raw_id,
            )
        ]

    def _day_ticker(self, data: JsonObject, symbol: str, ts: float) -> list[Event]:
        """``{"e":"24hrTicker","E":ms,"s":"BNBBTC","c":last,"b":bid,"B":bidQty,"a":ask,
        "A":askQty,...}`` (pushed every 1000 ms)."""
        bid = price(data["b"], "binance 24hrTicker b")
        ask = price(data["a"], "binance 24hrTicker a")
        check_book(bid, ask, "binance 24hrTicker")
        return [
            Ticker(
                self.exchange,
                symbol,
                bid,
                ask,
                price(data["c"], "binance 24hrTicker c"),
                size(data["B"], "binance 24hrTicker B"),
                size(data["A"], "binance 24hrTicker A"),
                ms_ts(data["E"], "binance 24hrTicker E"),
                ts,
            )
        ]

    def _reply(self, msg: JsonObject) -> list[Event]:
        """``{"result":null,"id":1}``, ``{"result":["btcusdt@bookTicker"],"id":3}``,
        ``{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}`` (id may be null)."""
        request_id = msg["id"]
        if request_id is not None and type(request_id) is not int:
            # We only send integer ids; anything else is not an answer to us.
            raise DecodeError(
                f"binance reply: id must be an integer or null, got {show(request_id)}"
            )
        error = msg.get("error")
        if error is not None:
            return [self._error(expect_dict(error, "binance reply error"), request_id)]
        result = msg["result"]
        pending = self._pending.pop(request_id, None) if request_id is not None else None
        if type(result) is list:
            # LIST_SUBSCRIPTIONS: everything this connection is subscribed to.
            streams = tuple(
                stream for stream in map(self._stream_from_name, result) if stream is not None
            )
            return [Subscribed(self.exchange, streams, request_id, cumulative=True)]
        if result is not None:
            return []  # GET_PROPERTY and friends: not a subscription matter
        if pending is None:
            return [Subscribed(self.exchange, (), request_id)]
        op, streams = pending
        if op == "unsubscribe":
            return [Unsubscribed(self.exchange, streams, request_id)]
        return [Subscribed(self.exchange, streams, request_id)]

    def _error(self, error: JsonObject, request_id: object) -> SubscriptionError:
        code, text = error.get("code"), error.get("msg")
        if type(text) is not str:
            raise DecodeError(f"binance error: msg must be a string, got {show(text)}")
        streams: tuple[Stream, ...] = ()
        if type(request_id) is int:
            pending = self._pending.pop(request_id, None)
            if pending is not None:
                streams = pending[1]
        else:
            request_id = None
        return SubscriptionError(self.exchange, f"code {code}: {text}", streams, request_id)

    # --- REST fallback ------------------------------------------------------------------------

    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest:
        self._rest_symbol = symbol
        base = (base_url or self.default_rest_url).rstrip("/")
        return RestRequest(
            url=f"{base}/api/v3/ticker/bookTicker",
            params=(("symbol", binance_native(symbol)),),
        )

    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker:
        """``{"symbol":"BTCUSDT","bidPrice":"..","bidQty":"..","askPrice":"..","askQty":".."}``;
        errors are ``{"code":-1121,"msg":"Invalid symbol."}``."""
        ts = time.time() if received_ts is None else received_ts
        symbol = symbol or self._rest_symbol  # checked against the body below
        try:
            data = expect_dict(orjson.loads(body), "binance REST bookTicker")
            if "code" in data and "bidPrice" not in data:
                raise DecodeError(
                    f"binance REST error {show(data.get('code'))}: {show(data.get('msg'), 200)}"
                )
            if symbol is None:  # the body names its symbol
                symbol = self._symbols.decode(data["symbol"])
            native = binance_native(symbol)
            if data["symbol"] != native:
                raise DecodeError(
                    f"binance REST bookTicker: asked for {native}, got {show(data['symbol'])}"
                )
            bid = price(data["bidPrice"], "binance REST bidPrice")
            ask = price(data["askPrice"], "binance REST askPrice")
            check_book(bid, ask, "binance REST bookTicker")
            return Ticker(
                self.exchange,
                symbol,
                bid,
                ask,
                None,
                size(data["bidQty"], "binance REST bidQty"),
                size(data["askQty"], "binance REST askQty"),
                None,
                ts,
                "rest",
            )
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure("binance REST", exc) from exc
