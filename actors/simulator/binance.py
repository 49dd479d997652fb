"""Binance Spot public market-data WebSocket streams, server side.

Decisions (where the docs leave room):

* Paths: ``/ws`` and ``/ws/<s1>/<s2>..`` (raw), ``/stream`` and ``/stream?streams=a/b`` (combined);
  other paths are refused with 404, a malformed stream name in the URL with 400.
  ``timeUnit=MICROSECOND`` switches ``E``/``T`` to µs.
* Stream names are validated by shape (lowercase symbol + a known type). Well-formed names are
  accepted whatever the symbol (that is Binance: unknown symbols are acked and stay silent).
  Only ``@bookTicker`` (the "ticker" kind) and ``@trade`` (the "trade" kind) produce data; other
  well-formed types (``@depth``, ``@kline_1m``...) are accepted and silent.
* One malformed name fails the whole SUBSCRIBE with ``Invalid request: invalid stream`` (the
  live wording); going over 1024 streams fails it with ``Invalid request: too many streams``
  (wording not documented). Nothing is subscribed by a failed request.
* Request ids must be non-negative integers; anything else (string, null, bool, missing,
  negative) is answered like the old servers: code 2 ``request ID must be an unsigned integer``
  with ``"id":null``. Error texts follow the docs' error table.
* The 5 messages/s limit counts every client data message (JSON or not) in a sliding 1 s window;
  the 6th closes the connection with 1008 ``Too many requests`` (as reported from production).
  Ping/pong control frames are answered inside trio-websocket and cannot be counted here.
* A ping frame every 20 s; no pong within 60 s drops the connection (no close frame).
"""

from __future__ import annotations

import re
from collections import deque
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import orjson
import trio

from actors.exchanges.symbols import binance_native, binance_unified
from actors.messages import Stream
from actors.simulator.connection import Close, Connection, Drop
from actors.simulator.http import HttpRequest, HttpResponse
from actors.simulator.model import Market, Step
from actors.simulator.session import INVALID_JSON, ExchangeProtocol, Session, dumps

MAX_STREAMS = 1024
MAX_MESSAGES = 5
MESSAGE_WINDOW_S = 1.0
PING_INTERVAL_S = 20.0
PONG_TIMEOUT_S = 60.0
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
KLINE_INTERVALS = "1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M"
STREAM_RE = re.compile(
    r"^([a-z0-9]+)@(bookTicker|ticker|miniTicker|trade|aggTrade|avgPrice"
    r"|depth(?:5|10|20)?(?:@100ms|@1000ms)?"
    rf"|kline_(?:{KLINE_INTERVALS})|ticker_(?:1h|4h|1d))$"
)
MARKET_STREAM_RE = re.compile(r"^!(?:miniTicker|ticker_(?:1h|4h|1d))@arr$")
KIND_OF_TYPE = {"bookTicker": "ticker", "trade": "trade"}


def valid_stream(name: object) -> bool:
    return isinstance(name, str) and bool(STREAM_RE.match(name) or MARKET_STREAM_RE.match(name))


def json_error_position(raw: str) -> tuple[int, int]:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return exc.lineno, exc.colno
    return 1, 1


class _RequestError(Exception):
    def __init__(self, code: int, msg: str, request_id: int | None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.request_id = code, msg, request_id


class BinanceProtocol(ExchangeProtocol):
    name: ClassVar[str] = "binance"
    ws_path: ClassVar[str] = "/stream"
    default_symbols: ClassVar[tuple[str, ...]] = ("BTC/USDT", "ETH/USDT")

    def native(self, symbol: str) -> str:
        return binance_native(symbol)

    def url_streams(self, path: str) -> list[str] | None:
        """Streams named in a handshake path; None when the path is not a Binance endpoint."""
        parts = urlsplit(path)
        if parts.path == "/ws" or parts.path == "/ws/":
            return []
        if parts.path.startswith("/ws/"):
            return [s for s in parts.path[4:].split("/") if s]
        if parts.path in ("/stream", "/stream/"):
            query = parse_qs(parts.query).get("streams", [""])[0]
            return [s for s in query.split("/") if s]
        return None

    def handshake_status(self, path: str) -> int | None:
        streams = self.url_streams(path)
        if streams is None:
            return 404
        if len(streams) > MAX_STREAMS or not all(valid_stream(s) for s in streams):
            return 400
        return None

    def session(self, conn: Connection) -> Session:
        return BinanceSession(self, conn)

    def _book(self, market: Market) -> dict[str, str]:
        step = market.last
        return {
            "symbol": self.native(market.symbol),
            "bidPrice": market.price(step.bid, 8),
            "bidQty": market.size(step.bid_size, 8),
            "askPrice": market.price(step.ask, 8),
            "askQty": market.size(step.ask_size, 8),
        }

    def rest(self, request: HttpRequest) -> HttpResponse:
        if request.path != "/api/v3/ticker/bookTicker":
            return HttpResponse.json(404, {"code": -1000, "msg": "Not found."})
        invalid = HttpResponse.json(400, {"code": -1121, "msg": "Invalid symbol."})
        symbol = request.param("symbol")
        if symbol is not None:
            market = self.by_native.get(symbol)
            return invalid if market is None else HttpResponse.json(200, self._book(market))
        symbols = request.param("symbols")
        if symbols is not None:
            try:
                names = orjson.loads(symbols)
            except orjson.JSONDecodeError:
                names = None
            if not isinstance(names, list) or not all(n in self.by_native for n in names):
                return invalid
            return HttpResponse.json(200, [self._book(self.by_native[n]) for n in names])
        return HttpResponse.json(200, [self._book(m) for m in self.markets.values()])


class BinanceSession(Session):
    protocol: BinanceProtocol
    supports_mute = True

    def __init__(self, protocol: BinanceProtocol, conn: Connection) -> None:
        super().__init__(protocol, conn)
        parts = urlsplit(conn.path)
        query = parse_qs(parts.query)
        self.combined = parts.path.startswith("/stream")
        micro = query.get("timeUnit", [""])[0].upper() in ("MICROSECOND", "MICROSECONDS")
        self.time_scale = 1_000_000 if micro else 1_000
        self.streams: dict[str, None] = {}  # ordered set, names exactly as subscribed
        self._subs: dict[str, dict[str, str]] = {}  # unified symbol -> kind -> stream name
        self._received_at: deque[float] = deque(maxlen=MAX_MESSAGES)
        self._pings = 0

    async def on_open(self) -> None:
        self._subscribe(self.protocol.url_streams(self.conn.path) or [])
        assert self.nursery is not None
        self.nursery.start_soon(self._ping_loop)

    # --- streams -------------------------------------------------------------------------------
    def _subscribe(self, names: list[str]) -> None:
        for name in names:
            if name not in self.streams:
                self.streams[name] = None
                self._track(name, add=True)
        self.set_feeds(list(self._subs))

    def _unsubscribe(self, names: list[str]) -> None:
        for name in names:
            if name in self.streams:
                del self.streams[name]
                self._track(name, add=False)
        self.set_feeds(list(self._subs))

    def _track(self, name: str, *, add: bool) -> None:
        match = STREAM_RE.match(name)
        kind = KIND_OF_TYPE.get(match.group(2)) if match else None
        if match is None or kind is None:
            return
        market = self.protocol.by_native.get(match.group(1).upper())
        if market is not None:
            symbol = market.symbol
            if add:
                self._subs.setdefault(symbol, {})[kind] = name
            else:
                kinds = self._subs.get(symbol, {})
                kinds.pop(kind, None)
                if not kinds:
                    self._subs.pop(symbol, None)
        else:
            try:
                symbol = binance_unified(match.group(1))
            except ValueError:
                return
        (self.add_stream if add else self.remove_stream)(kind, symbol)

    # --- requests ------------------------------------------------------------------------------
    def on_received(self) -> None:
        now = trio.current_time()
        if len(self._received_at) == MAX_MESSAGES and now - self._received_at[0] < MESSAGE_WINDOW_S:
            self.conn.end(Close(1008, "Too many requests"))
        self._received_at.append(now)

    async def on_request(self, raw: str, message: object) -> None:
        try:
            reply = self._handle(raw, message)
        except _RequestError as exc:
            reply = {"error": {"code": exc.code, "msg": exc.msg}, "id": exc.request_id}
        await self.conn.send(dumps(reply))

    def _handle(self, raw: str, message: object) -> dict[str, object]:
        if message is INVALID_JSON:
            line, column = json_error_position(raw)
            raise _RequestError(
                3, f"Invalid JSON: expected value at line {line} column {column}", None
            )
        if not isinstance(message, dict):
            raise _RequestError(2, "Invalid request: expected a JSON object", None)
        if "method" not in message:
            raise _RequestError(
                2, f"Invalid request: missing field `method` at line 1 column {len(raw)}", None
            )
        method = message["method"]
        if method not in METHODS:
            variants = ", ".join(f"`{m}`" for m in METHODS)
            raise _RequestError(
                2,
                f"Invalid request: unknown variant `{method}`, expected one of {variants}"
                f" at line 1 column {len(raw)}",
                None,
            )
        request_id = message.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, int) or request_id < 0:
            raise _RequestError(2, "Invalid request: request ID must be an unsigned integer", None)
        params = message.get("params", [])
        if not isinstance(params, list):
            raise _RequestError(2, "Invalid request: params must be an array", request_id)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(valid_stream(p) for p in params):
                raise _RequestError(2, "Invalid request: invalid stream", request_id)
            if method == "SUBSCRIBE":
                new = {p: None for p in params if p not in self.streams}
                if len(self.streams) + len(new) > MAX_STREAMS:
                    raise _RequestError(2, "Invalid request: too many streams", request_id)
                self._subscribe(list(new))
            else:
                self._unsubscribe(params)
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(self.streams), "id": request_id}
        expected = 2 if method == "SET_PROPERTY" else 1
        if len(params) > expected:
            raise _RequestError(2, "Invalid request: too many parameters", request_id)
        if not params or not isinstance(params[0], str):
            raise _RequestError(2, "Invalid request: property name must be a string", request_id)
        if params[0] != "combined":
            raise _RequestError(0, "Unknown property", request_id)
        if method == "GET_PROPERTY":
            return {"result": self.combined, "id": request_id}
        if len(params) < 2 or not isinstance(params[1], bool):
            raise _RequestError(1, "Invalid value type: expected Boolean", request_id)
        self.combined = params[1]
        return {"result": None, "id": request_id}

    # --- data ----------------------------------------------------------------------------------
    def _wrap(self, name: str, payload: str) -> str:
        return f'{{"stream":"{name}","data":{payload}}}' if self.combined else payload

    def _book_frame(self, market: Market, step: Step) -> str | None:
        kinds = self._subs.get(market.symbol)
        name = kinds.get("ticker") if kinds else None
        if name is None or (self.muted and Stream("ticker", market.symbol) in self.muted):
            return None
        price, size = market.price, market.size
        return self._wrap(
            name,
            f'{{"u":{step.update_id},"s":"{self.protocol.native_of[market.symbol]}",'
            f'"b":"{price(step.bid, 8)}","B":"{size(step.bid_size, 8)}",'
            f'"a":"{price(step.ask, 8)}","A":"{size(step.ask_size, 8)}"}}',
        )

    def _trade_frame(self, market: Market, step: Step) -> str | None:
        kinds = self._subs.get(market.symbol)
        name = kinds.get("trade") if kinds else None
        if name is None or (self.muted and Stream("trade", market.symbol) in self.muted):
            return None
        t = int(step.ts * self.time_scale)
        maker = "true" if step.side == "sell" else "false"  # m: buyer is maker = taker sold
        return self._wrap(
            name,
            f'{{"e":"trade","E":{t},"s":"{self.protocol.native_of[market.symbol]}",'
            f'"t":{step.trade_id},"p":"{market.price(step.price, 8)}",'
            f'"q":"{market.size(step.size, 8)}","T":{t},"m":{maker},"M":true}}',
        )

    async def on_step(self, market: Market, step: Step) -> None:
        # the trade first, then the book it left behind
        await self.conn.send_built(self._trade_frame, market, step)
        await self.conn.send_built(self._book_frame, market, step)

    async def send_server_shutdown(self) -> None:
        payload = dumps({"e": "serverShutdown", "E": int(self.server.now_ts() * self.time_scale)})
        await self.conn.send(self._wrap("!serverShutdown", payload))

    async def _ping_loop(self) -> None:
        while True:
            await trio.sleep(PING_INTERVAL_S)
            await self.conn.gate()
            self._pings += 1
            with trio.move_on_after(PONG_TIMEOUT_S) as timer:
                await self.conn.ping(self._pings.to_bytes(8, "big"))
            if timer.cancelled_caught:
                self.conn.end(Drop())
                return
