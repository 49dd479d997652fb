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
* ``decode_batch`` (the reader's entry point, one call per socket read) decodes only the
  bookTicker frames someone will read. Subscribers of a ticker stream read its newest ticker
  only (``mailbox.py``), so of a stream's frames in one batch only the last one that
  ``decode`` would publish is decoded; the ones before it are skipped, counted as
  ``conflated``, and never validated (a malformed superseded frame is not a decode error).
  Telling a frame's stream costs no JSON parse: a combined frame always begins
  ``{"stream":"<name>","data":`` and a bookTicker payload ``{"u":<id>,`` (Binance's and the
  simulator's compact JSON), so one anchored regular-expression match (C code, about the cost
  of a ``startswith`` and a ``find``) and one dict lookup name the stream and read its ``u``.
  Anything else (another shape, another key order, spaces, an unknown stream, a control frame)
  takes ``decode``, unchanged. The price is that look-ahead on every frame, so it is done only
  for reads of ``look_ahead_from`` (8) frames or more, a socket behind its feed, where there is
  something to skip. A smaller read, a socket keeping up, is decoded frame by frame: there
  few frames are superseded, and the look-ahead's own code, run once per read and cold at a
  few thousand messages a second, cost more than the decoding it saved (a read of two frames
  took about twice as long with it, on the path to the subscribers: ``tests/bench/market_data.py
  --only latency``); warm, one frame per stream per read is still where the batch costs more
  than it saves (``tests/bench/decode.py``).
* The skip must leave subscribers reading exactly what frame-by-frame decoding would have
  left them, sequence filter included, and it does when the stream's ``u``s rise through the
  batch (what one TCP connection delivers): then the newest frame that decodes is above every
  frame before it, and it is published if it is above the filter's highest, which is checked
  *before* decoding it so the filter sees nothing out of order. The newest frames that fail
  to decode are counted and the one before them is tried. Any other case (a ``u`` not rising
  or unreadable, or at or below the filter's highest: a duplicate, a replay, a re-base) is
  decoded frame by frame, in order: rare, and correct by construction. (The ``u`` read from
  the text is the one the frame decodes to unless the frame repeats a key, which no exchange
  does; such a frame can at worst be published out of order, never crash the batch.)
* Trades are never skipped: their frames decode where they stand. Any frame that is not data
  of a subscribed stream first settles the tickers pending before it, so control events
  (acks, errors, serverShutdown) keep their order relative to the data around them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import attrs
import orjson

from actors.errors import DecodeError
from actors.exchanges.codec import DecodedBatch, RestRequest
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    JsonObject,
    SymbolTable,
    book_quote,
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
# A compact combined frame: its stream name, and the ``u`` that opens a bookTicker payload
# (``[0-9]``, not ``\d``: a frame that decodes has ASCII digits there).
_COMBINED = r'\{"stream":"([^"]*)"(?:,"data":\{"u":([0-9]+),)?'
_COMBINED_TEXT = re.compile(_COMBINED)
_COMBINED_BYTES = re.compile(_COMBINED.encode())
_NO_ID = -1  # below every valid ``u`` read from a frame: "unreadable"
_BOOK_KEYS = ("b", "a", "B", "A")  # bookTicker bid, ask, bid size, ask size
_new_tuple = tuple.__new__


@attrs.frozen(slots=True)
class _Route:
    """A subscribed stream, flattened for the per-frame path."""

    stream: Stream
    kind: str
    symbol: str  # unified
    native: str  # what the frame's ``s`` must be


class _Lane:
    """A subscribed stream as ``decode_batch`` sees it; for a ticker stream, its frames of the
    batch being decoded, as the matches of ``_COMBINED`` that named the stream (each holds its
    frame and its ``u`` digits). One per stream, reused batch after batch."""

    __slots__ = ("conflate", "pending", "symbol")

    def __init__(self, conflate: bool, symbol: str) -> None:
        self.conflate = conflate  # ticker: frames wait for the end of the batch
        self.symbol = symbol  # unified: the sequence filter's key
        self.pending: list[re.Match[str] | re.Match[bytes]] = []


def _update_id(found: re.Match[str] | re.Match[bytes]) -> int:
    """The ``u`` a compact bookTicker frame opens with (``found`` named its stream), read
    without parsing the frame; ``_NO_ID`` if it is not there in exactly that shape. For a frame
    that decodes, it is the ``u`` the frame decodes to."""
    digits = found[2]
    if digits is None:
        return _NO_ID
    try:
        return int(digits)
    except ValueError:  # more digits than int() converts: not a u that decodes either
        return _NO_ID


class BinanceCodec:
    protocol = "binance"
    default_url = "wss://stream.binance.com:9443/stream"
    default_rest_url = "https://api.binance.com"
    max_streams_per_connection: int | None = 1024
    # Incoming-message limit per connection, counting pings/pongs and requests.
    max_requests_per_second: float | None = 5.0
    # Reads of fewer frames are decoded frame by frame, without the look-ahead (see the module
    # docstring); tests lower it to exercise the look-ahead on small batches.
    look_ahead_from = 8

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
        # "btcusdt@bookTicker" and b"btcusdt@bookTicker" -> its lane, for every stream we asked
        # for (decode_batch); the ticker lanes holding frames of the batch being decoded
        self._lanes: dict[str | bytes, _Lane] = {}
        self._touched: list[_Lane] = []

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
        if name not in self._lanes:
            lane = _Lane(stream.kind == "ticker", stream.symbol)
            self._lanes[name] = self._lanes[name.encode()] = lane
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

    def decode_batch(
        self, frames: Sequence[str | bytes], received_ts: float | None = None
    ) -> DecodedBatch:
        """Every frame of one socket read; of each ticker stream, only the frame subscribers
        will read is decoded (see the module docstring for why that is exact)."""
        ts = time.time() if received_ts is None else received_ts
        decode = self.decode
        events: list[Event] = []
        failures: list[tuple[str | bytes, DecodeError]] = []
        if len(frames) < self.look_ahead_from:  # a socket keeping up: frame by frame
            if len(frames) == 1:  # its usual read
                try:
                    events = decode(frames[0], ts)
                except DecodeError as exc:
                    failures.append((frames[0], exc))
            else:
                for frame in frames:
                    try:
                        events += decode(frame, ts)
                    except DecodeError as exc:
                        failures.append((frame, exc))
            # The tuple built in C: the NamedTuple's own ``__new__`` is one more Python call
            # on the path to the subscribers (see ``parsing.book_quote`` for why that counts).
            return _new_tuple(DecodedBatch, (events, failures, 0))
        lanes = self._lanes
        touched = self._touched
        match_text, match_bytes = _COMBINED_TEXT.match, _COMBINED_BYTES.match
        conflated = 0
        try:
            for frame in frames:
                found: re.Match[str] | re.Match[bytes] | None
                if isinstance(frame, str):
                    found = match_text(frame)
                else:
                    found = match_bytes(frame)
                lane = None
                if found is not None:
                    lane = lanes.get(found[1])
                    if lane is not None and lane.conflate:
                        pending = lane.pending
                        if not pending:
                            touched.append(lane)
                        pending.append(found)
                        continue
                if lane is None and touched:
                    # Not data of ours: a control frame keeps its place after the data before it.
                    conflated += self._settle(ts, events, failures)
                try:
                    events += decode(frame, ts)
                except DecodeError as exc:
                    failures.append((frame, exc))
            if touched:
                conflated += self._settle(ts, events, failures)
        finally:
            if touched:  # only if decoding raised something unexpected: start clean next time
                for lane in touched:
                    lane.pending.clear()
                touched.clear()
        return DecodedBatch(events, failures, conflated)

    def _settle(
        self, ts: float, events: list[Event], failures: list[tuple[str | bytes, DecodeError]]
    ) -> int:
        """Decode what is to be published of every pending ticker stream; returns how many
        frames were skipped."""
        skipped = 0
        touched = self._touched
        for lane in touched:
            pending = lane.pending
            if len(pending) == 1:  # nothing to skip: the frame-by-frame path, inline
                frame = pending[0].string
                try:
                    events += self.decode(frame, ts)
                except DecodeError as exc:
                    failures.append((frame, exc))
            else:
                skipped += self._settle_lane(pending, lane.symbol, ts, events, failures)
            pending.clear()
        touched.clear()
        return skipped

    def _settle_lane(
        self,
        pending: list[re.Match[str] | re.Match[bytes]],
        symbol: str,
        ts: float,
        events: list[Event],
        failures: list[tuple[str | bytes, DecodeError]],
    ) -> int:
        decode = self.decode
        todo = len(pending)  # frames to decode in order, from the first
        if self._rising(pending):
            seq = self._book_seq
            index = todo - 1
            while index >= 0:
                found = pending[index]
                highest = seq.highest(symbol)
                if highest is not None and _update_id(found) <= highest:
                    break  # so is every frame before it: the filter decides, frame by frame
                frame = found.string
                try:
                    decoded = decode(frame, ts)
                except DecodeError as exc:
                    failures.append((frame, exc))
                    index -= 1
                    continue
                if decoded:
                    events += decoded
                    return index  # the frames before it: superseded, never decoded
                index -= 1  # dropped after all (its ``u`` read differently): the one before
            todo = index + 1
        for index in range(todo):
            frame = pending[index].string
            try:
                events += decode(frame, ts)
            except DecodeError as exc:
                failures.append((frame, exc))
        return 0

    @staticmethod
    def _rising(pending: list[re.Match[str] | re.Match[bytes]]) -> bool:
        """Whether every frame has a readable ``u`` above the one before it. Compared as text
        (longer is larger, then lexicographically), which costs no ``int()`` per frame and is
        the numeric order for every frame that decodes: JSON integers have no leading zeros.
        (A frame that does not decode does not move the sequence filter, so its order does
        not matter.)"""
        previous: str | bytes | None = None
        for found in pending:
            digits = found[2]
            if digits is None:
                return False
            if previous is not None:
                if type(digits) is not type(previous):
                    return False  # text and binary frames of one stream: no shortcut
                if len(digits) == len(previous):
                    if digits <= previous:  # type: ignore[operator]  # one type: checked above
                        return False
                elif len(digits) < len(previous):
                    return False
            previous = digits
        return True

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
        bid, ask, bid_size, ask_size = book_quote(
            data["b"], data["a"], data["B"], data["A"], "binance bookTicker", _BOOK_KEYS
        )
        ticker = Ticker(
            self.exchange, symbol, bid, ask, None, bid_size, ask_size, None, ts, "ws", update_id
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
