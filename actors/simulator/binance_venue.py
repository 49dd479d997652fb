"""``BinanceVenue``: a local Binance Spot trading venue over real sockets, for live-executor
tests and the embedded default. REST trading endpoints (``venue_rest.py``), the WebSocket API
user data stream (``venue_ws.py``), a matching engine against the seeded price model
(``venue_matching.py``), symbol filters (``venue_rules.py``), signatures (``venue_auth.py``)
and rate limits (``venue_limits.py``); fault knobs and observability here.

    async with open_binance_venue(("BTC/USDT",), seed=1) as venue:
        venue.rest_url, venue.ws_api_url, venue.api_key, venue.secret

    async with open_exchange_server("binance", seed=1) as server, open_binance_venue(
        market_server=server
    ) as venue:  # market data and trading on one price path

Decisions:

* A venue either owns its markets (``Market`` per symbol, seeded like the market-data
  simulator's, so the same seed gives the same prices) or is attached to a running
  ``ExchangeServer`` (``market_server=``) and trades on *its* ``Market`` objects and clock:
  then the prices a client streams from the server are the prices the venue matches against,
  with no change to the server. The venue and the server keep their own ports.
* Who moves the price: the market-data feeds pull steps as they always do; the venue steps
  every market ``rate_hz`` times a second when it runs alone, and when attached only a market
  that has not moved for ``2 / rate_hz``: resting orders fill even with no market-data
  client, and a feed at ``rate_hz / 2`` or faster moves the price alone, so its client sees
  every step. ``rate_hz=0`` leaves the price to the feeds and to ``step()``:
  the way to make a test's fills exact.
* The venue matches every step of the model, whoever pulled it, from ``Market.history``
  (the last 100 steps): after each step it takes itself, before every REST request, and, when
  attached, when the server reports activity (``ExchangeServer.wait_for``, an event, not a
  poll). Steps that fell out of the history before the venue saw them are counted in
  ``steps_missed`` and not matched.
* Clock: the venue clock is the model's (Trio-clock driven, anchored to the wall clock at
  start, so it runs on virtual time under ``autojump_clock``) plus ``skew_clock``'s offset.
  Every timestamp the venue sends and every ``timestamp`` check uses it.
* Faults on REST act on the next ``count`` requests to one endpoint (``"POST /api/v3/order"``
  by default) that get past the rate limiter: the request is executed (``execute=True``) or
  not, and then its answer is replaced - by no answer at all (the connection closed, FIN or
  RST), by an error status, or by a late answer.
* Observability for tests: ``orders()``, ``order()``, ``trades()``, ``balances()``,
  ``requests()`` (every REST and WebSocket API request with its answer's status and code),
  ``subscriptions()``, and ``wait_for(predicate)``, re-checked on every change, never polled.
* Not simulated: RSA keys, order types other than MARKET, LIMIT (GTC, IOC, FOK) and
  LIMIT_MAKER, order lists, cancel-replace and amend, trading over the WebSocket API
  (``order.place``...), ``session.logon`` and the logon-bound ``userDataStream.subscribe``,
  the removed listenKey endpoints, SBE. Requests for them get Binance's "unknown" answers.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio
from loguru import logger
from trio_websocket import ConnectionClosed, wrap_server_stream

from actors.exchanges.symbols import split_unified
from actors.simulator.http import HttpRequest, HttpResponse, NoResponse, serve_http
from actors.simulator.model import USD_PRICES, Market, Step
from actors.simulator.venue_auth import EXAMPLE_API_KEY, EXAMPLE_SECRET, ApiKey
from actors.simulator.venue_limits import RateLimits, Refusal
from actors.simulator.venue_matching import (
    Balance,
    Engine,
    Event,
    Fill,
    Order,
    Touch,
)
from actors.simulator.venue_rest import (
    NOT_FOUND,
    ROUTES,
    Call,
    Route,
    SignedWindow,
    VenueError,
    authenticate,
    check_window,
    parse_params,
)
from actors.simulator.venue_rules import QUANTUM, SymbolRules, fmt
from actors.simulator.venue_ws import WsApiSession, accept_or_refuse

if TYPE_CHECKING:
    from actors.simulator.server import ExchangeServer

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT")
DEFAULT_BALANCE_USD = 10_000.0
HANDSHAKE_TIMEOUT_S = 60.0
# Keep-alive connections are kept an hour: under autojump_clock a test that sleeps exactly the
# usual 60 s would otherwise race the server's close against its next request on the socket.
HTTP_IDLE_TIMEOUT_S = 3600.0
REQUEST_LOG_LENGTH = 10_000
ERROR_MESSAGES = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1006: "An unexpected response was received from the message bus. Execution status unknown.",
    -1007: "Timeout waiting for response from backend server. Send status unknown;"
    " execution status unknown.",
    -1008: "Server is currently overloaded with other requests. Please try again in a few minutes.",
}


@attrs.frozen(slots=True)
class VenueRequest:
    """One request the venue received and how it answered (``status`` None: no answer)."""

    transport: str  # "rest" | "ws"
    method: str  # HTTP method, or the WebSocket API method
    path: str  # REST path, or "/ws-api/v3"
    params: Mapping[str, object]
    status: int | None
    code: int | None  # Binance error code of the answer, if any
    received_at: float  # trio.current_time()
    connection_id: int | None = None  # WebSocket API connection
    fault: str | None = None  # the injected fault that shaped the answer


@attrs.frozen(slots=True)
class VenueOrder:
    """A snapshot of one order the venue holds (engine units: ``Decimal``)."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    status: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cumulative_quote: Decimal
    time_ms: int
    update_ms: int

    @classmethod
    def of(cls, order: Order) -> VenueOrder:
        return cls(
            symbol=order.symbol,
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            side=order.side,
            type=order.type,
            time_in_force=order.time_in_force,
            status=order.status,
            price=order.price,
            orig_qty=order.orig_qty,
            executed_qty=order.executed_qty,
            cumulative_quote=order.cumulative_quote,
            time_ms=order.time_ms,
            update_ms=order.update_ms,
        )


@attrs.frozen(slots=True)
class _Fault:
    kind: str  # "drop" | "error" | "delay"
    endpoint: str
    remaining: int
    execute: bool
    reset: bool = False
    status: int = 503
    code: int | None = None
    delay_s: float = 0.0


def default_balances(symbols: Iterable[str]) -> dict[str, Decimal]:
    """About 10,000 USD of every asset the symbols trade (8 decimals)."""
    balances: dict[str, Decimal] = {}
    for symbol in symbols:
        for asset in split_unified(symbol):
            usd = USD_PRICES.get(asset, 1.0)
            balances[asset] = Decimal(DEFAULT_BALANCE_USD / usd).quantize(QUANTUM, ROUND_HALF_UP)
    return balances


def _check_count(count: int) -> int:
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    return count


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class BinanceVenue:
    """Create with ``open_binance_venue`` / ``run_binance_venue``; ``run`` serves until
    cancelled."""

    symbols: tuple[str, ...] = attrs.field(default=(), converter=tuple[str, ...])
    seed: int = 0
    rate_hz: float = 10.0
    host: str = "127.0.0.1"
    rest_port: int = 0
    ws_port: int = 0
    market_server: ExchangeServer | None = None
    api_keys: dict[str, ApiKey] = attrs.field(factory=dict)
    initial_balances: Mapping[str, Decimal] | None = None

    markets: dict[str, Market] = attrs.field(init=False, factory=dict)
    rules: dict[str, SymbolRules] = attrs.field(init=False, factory=dict)  # by native symbol
    engine: Engine = attrs.field(init=False)
    limits: RateLimits = attrs.field(init=False, factory=RateLimits)
    uid: int = attrs.field(init=False, default=0)
    steps_missed: int = attrs.field(init=False, default=0)
    _market_of: dict[str, Market] = attrs.field(init=False, factory=dict)  # native -> market
    _native_of: dict[str, str] = attrs.field(init=False, factory=dict)  # unified -> native
    _processed: dict[str, int] = attrs.field(init=False, factory=dict)  # unified -> step index
    _moved_at: dict[str, float] = attrs.field(init=False, factory=dict)
    _started_at: float = attrs.field(init=False, default=0.0)
    _anchor_ts: float = attrs.field(init=False, default=0.0)
    _clock_offset_ms: int = attrs.field(init=False, default=0)
    _engine_latency_s: float = attrs.field(init=False, default=0.0)
    _query_lag_s: float = attrs.field(init=False, default=0.0)
    _created_at: dict[tuple[str, int], float] = attrs.field(init=False, factory=dict)
    _faults: list[_Fault] = attrs.field(init=False, factory=list)
    _requests: deque[VenueRequest] = attrs.field(
        init=False, factory=lambda: deque(maxlen=REQUEST_LOG_LENGTH)
    )
    _sessions: dict[int, WsApiSession] = attrs.field(init=False, factory=dict)
    _next_connection_id: int = attrs.field(init=False, default=1)
    _rest_port: int = attrs.field(init=False, default=0)
    _ws_port: int = attrs.field(init=False, default=0)
    _changed: trio.Event | None = attrs.field(init=False, default=None)
    log: Any = attrs.field(init=False, repr=False, default=logger)

    def __attrs_post_init__(self) -> None:
        if not math.isfinite(self.rate_hz) or self.rate_hz < 0:
            raise ValueError(f"rate_hz must be a finite number >= 0, got {self.rate_hz!r}")
        if self.market_server is not None:
            if self.symbols and set(self.symbols) != set(self.market_server.symbols):
                raise ValueError("an attached venue trades the server's symbols; pass none")
            self.symbols = self.market_server.symbols
        self.symbols = tuple(dict.fromkeys(self.symbols or DEFAULT_SYMBOLS))
        for symbol in self.symbols:
            split_unified(symbol)  # raises ValueError naming a malformed symbol
        if not self.api_keys:
            self.api_keys = {EXAMPLE_API_KEY: ApiKey.from_secret(EXAMPLE_API_KEY, EXAMPLE_SECRET)}
        self.uid = random.Random(f"{self.seed}/venue/uid").randrange(10**8, 10**9)
        self.log = logger.bind(actor="simulator", protocol="binance-venue")

    # --- addresses and credentials -------------------------------------------------------------
    @property
    def rest_url(self) -> str:
        return f"http://{self._url_host}:{self._rest_port}"

    @property
    def ws_api_url(self) -> str:
        return f"ws://{self._url_host}:{self._ws_port}/ws-api/v3"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def api_key(self) -> str:
        """The first registered key (the default: Binance's documented example key)."""
        return next(iter(self.api_keys))

    @property
    def secret(self) -> str:
        """The HMAC secret of ``api_key`` (ValueError for an Ed25519 key)."""
        secret = self.api_keys[self.api_key].secret
        if secret is None:
            raise ValueError("the first API key is not an HMAC key")
        return secret

    def add_api_key(self, key: ApiKey) -> None:
        self.api_keys[key.key] = key

    # --- clock ---------------------------------------------------------------------------------
    def now_ts(self) -> float:
        """The model's clock: wall-clock epoch seconds driven by the Trio clock."""
        if self.market_server is not None:
            return self.market_server.now_ts()
        return self._anchor_ts + (trio.current_time() - self._started_at)

    def server_time_ms(self) -> int:
        """The venue clock (``GET /api/v3/time``): the model's plus ``skew_clock``'s offset."""
        return int(self.now_ts() * 1000) + self._clock_offset_ms

    # --- lifecycle -----------------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[BinanceVenue] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._started_at = trio.current_time()
        self._anchor_ts = time.time()
        if self.market_server is not None:
            if not self.market_server.markets:
                raise RuntimeError("start the ExchangeServer before attaching a venue to it")
            self.markets = self.market_server.markets
        else:
            self.markets = {s: Market(s, self.seed, self._anchor_ts) for s in self.symbols}
        self.rules = {}
        for symbol, market in self.markets.items():
            rules = SymbolRules.for_market(market)
            self.rules[rules.symbol] = rules
            self._market_of[rules.symbol] = market
            self._native_of[symbol] = rules.symbol
            self._processed[symbol] = market.last.index
            self._moved_at[symbol] = trio.current_time()
        balances = self.initial_balances
        self.engine = Engine(
            self.rules,
            default_balances(self.markets) if balances is None else balances,
            seed=self.seed,
        )
        async with trio.open_nursery() as nursery:
            rest = await nursery.start(
                partial(
                    serve_http,
                    self._handle_rest,
                    self.host,
                    self.rest_port,
                    idle_timeout_s=HTTP_IDLE_TIMEOUT_S,
                )
            )
            ws = await nursery.start(
                partial(trio.serve_tcp, self._handle_ws_tcp, self.ws_port, host=self.host)
            )
            self._rest_port = rest[0].socket.getsockname()[1]
            self._ws_port = ws[0].socket.getsockname()[1]
            nursery.start_soon(self._drive)
            self.log.info("venue listening", rest_url=self.rest_url, ws_api_url=self.ws_api_url)
            task_status.started(self)

    async def _drive(self) -> None:
        """Keep every market moving at ``rate_hz`` at least, and match what others step."""
        server = self.market_server
        period = 1 / self.rate_hz if self.rate_hz > 0 else math.inf
        if server is not None:
            period *= 2  # a feed at the same rate never races the venue for a step
        while True:
            due = min(self._moved_at.values()) + period
            with trio.move_on_at(due):
                if server is not None:
                    await server.wait_for(lambda _server: self._has_new_steps())
                else:
                    await trio.sleep_forever()
            self.catch_up()
            now = trio.current_time()
            for symbol in self.markets:
                if self._moved_at[symbol] + period <= now:
                    self.step(symbol)

    def _has_new_steps(self) -> bool:
        return any(m.last.index > self._processed[s] for s, m in self.markets.items())

    # --- matching ------------------------------------------------------------------------------
    def catch_up(self) -> None:
        """Match the steps of the model the venue has not seen yet (module docstring)."""
        now_ms: int | None = None
        for symbol, market in self.markets.items():
            seen = self._processed[symbol]
            if market.last.index <= seen:
                continue
            steps = [step for step in market.history if step.index > seen]
            if steps[0].index > seen + 1:
                self.steps_missed += steps[0].index - seen - 1
            if now_ms is None:
                now_ms = self.server_time_ms()
            native = self._native_of[symbol]
            for step in steps:
                self.publish(self.engine.on_step(native, step, market, now_ms))
            self._processed[symbol] = market.last.index
            self._moved_at[symbol] = trio.current_time()

    def step(self, symbol: str, count: int = 1) -> Step:
        """Advance ``symbol``'s model ``count`` steps now and match them; the last step."""
        market = self.markets[symbol]
        for _ in range(_check_count(count)):
            market.step(self.now_ts())
            self.catch_up()
        return market.last

    def touch(self, native: str) -> Touch:
        market = self._market_of[native]
        return Touch.of(market, market.last)

    def avg_price(self, native: str) -> Decimal:
        """The reference price of MARKET orders' NOTIONAL check: the model's volume-weighted
        price over its recent history (Binance: ``avgPriceMins`` minutes)."""
        market = self._market_of[native]
        steps = list(market.history)
        lots = sum(s.size for s in steps)
        ticks = Decimal(sum(s.price * s.size for s in steps)) / Decimal(lots)
        return ticks.quantize(Decimal(1), ROUND_HALF_UP).scaleb(-market.spec.price_decimals)

    def book_ticker(self, native: str) -> dict[str, str]:
        touch = self.touch(native)
        return {
            "symbol": native,
            "bidPrice": fmt(touch.bid),
            "bidQty": fmt(touch.bid_size),
            "askPrice": fmt(touch.ask),
            "askQty": fmt(touch.ask_size),
        }

    async def reach_engine(self, window: SignedWindow | None) -> int:
        """The request travels to the engine (``set_engine_latency``), which checks its
        ``recvWindow`` again; the venue time it executes at."""
        if self._engine_latency_s > 0:
            await trio.sleep(self._engine_latency_s)
            self.catch_up()
        now_ms = self.server_time_ms()
        if window is not None:
            check_window(window, now_ms)
        return now_ms

    def order_placed(self, order: Order, events: list[Event]) -> None:
        self._created_at[(order.symbol, order.order_id)] = trio.current_time()
        self.publish(events)

    def visible(self, order: Order) -> bool:
        """Whether queries see ``order`` yet (``set_query_lag``)."""
        created = self._created_at.get((order.symbol, order.order_id), -math.inf)
        return trio.current_time() - created >= self._query_lag_s

    def publish(self, events: Iterable[Event]) -> None:
        """Push user-data events to every subscription (silenced ones lose them)."""
        pushed = False
        for event in events:
            pushed = True
            for session in list(self._sessions.values()):
                session.push(event)
        if pushed:
            self.changed()

    # --- REST ----------------------------------------------------------------------------------
    async def _handle_rest(self, request: HttpRequest) -> HttpResponse:
        received_at = trio.current_time()
        now_ms = self.server_time_ms()
        self.catch_up()
        endpoint = f"{request.method} {request.path}"
        route = ROUTES.get(endpoint)
        params: dict[str, str] = {}
        error: VenueError | None = None
        try:
            params = parse_params(request)
        except VenueError as exc:
            error = exc
        refusal = self.limits.admit(now_ms, route.weight(params) if route else 1)
        fault: _Fault | None = None
        if refusal is not None:
            response = self._refusal_response(refusal)
        elif route is None:
            response = HttpResponse.json(404, NOT_FOUND)
        else:
            run = partial(self._execute, route, request, params, error)
            fault = self._take_fault(endpoint)
            if fault is None:
                response = await run(now_ms)
            elif fault.execute:
                response = await self._faulty(
                    fault, request, params, received_at, await run(now_ms)
                )
            else:
                response = await self._faulty(fault, request, params, received_at, None, run)
        response = attrs.evolve(
            response,
            headers=(
                *response.headers,
                ("X-MBX-USED-WEIGHT-1M", str(self.limits.used_weight(self.server_time_ms()))),
            ),
        )
        self._record_rest(request, params, received_at, response, fault)
        return response

    async def _execute(
        self,
        route: Route,
        request: HttpRequest,
        params: Mapping[str, str],
        error: VenueError | None,
        now_ms: int,
    ) -> HttpResponse:
        """Check and run one request arriving at ``now_ms``; Binance's answer to it."""
        try:
            if error is not None:
                raise error
            route.check_params(params)
            window = authenticate(self.api_keys, request, params, now_ms) if route.signed else None
            return await route.handler(self, Call(request, params, now_ms, window))
        except VenueError as exc:
            return HttpResponse.json(exc.status, {"code": exc.code, "msg": exc.msg})

    async def _faulty(
        self,
        fault: _Fault,
        request: HttpRequest,
        params: Mapping[str, str],
        received_at: float,
        response: HttpResponse | None,
        run: Callable[[int], Awaitable[HttpResponse]] | None = None,
    ) -> HttpResponse:
        """Replace ``response`` as ``fault`` says; None: not executed yet (``run`` does it)."""
        self.log.info("fault applied", fault=fault.kind, endpoint=fault.endpoint)
        if fault.kind == "drop":
            self._record_rest(request, params, received_at, None, fault)
            raise NoResponse(reset=fault.reset)
        if fault.kind == "delay":
            await trio.sleep(fault.delay_s)
            if response is None:  # held back before the engine: it arrives late
                assert run is not None
                return await run(self.server_time_ms())
            return response
        if fault.code is None:
            return HttpResponse(
                fault.status,
                f"<html><body><h1>{fault.status}</h1></body></html>".encode(),
                (("content-type", "text/html"),),
            )
        msg = ERROR_MESSAGES.get(fault.code, ERROR_MESSAGES[-1000])
        return HttpResponse.json(fault.status, {"code": fault.code, "msg": msg})

    def _refusal_response(self, refusal: Refusal) -> HttpResponse:
        headers: tuple[tuple[str, str], ...] = ()
        if refusal.retry_after_s is not None:
            headers = (("Retry-After", str(refusal.retry_after_s)),)
        return HttpResponse.json(
            refusal.status, {"code": refusal.code, "msg": refusal.msg}, headers
        )

    def _take_fault(self, endpoint: str) -> _Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.endpoint == endpoint:
                if fault.remaining > 1:
                    self._faults[i] = attrs.evolve(fault, remaining=fault.remaining - 1)
                else:
                    del self._faults[i]
                return fault
        return None

    def _record_rest(
        self,
        request: HttpRequest,
        params: Mapping[str, str],
        received_at: float,
        response: HttpResponse | None,
        fault: _Fault | None,
    ) -> None:
        code = None
        if response is not None and response.status != 200:
            try:
                body = orjson.loads(response.body)
            except orjson.JSONDecodeError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("code"), int):
                code = body["code"]
        self._requests.append(
            VenueRequest(
                transport="rest",
                method=request.method,
                path=request.path,
                params=dict(params),
                status=None if response is None else response.status,
                code=code,
                received_at=received_at,
                fault=None if fault is None else fault.kind,
            )
        )
        self.changed()

    # --- WebSocket API -------------------------------------------------------------------------
    async def _handle_ws_tcp(self, tcp: trio.SocketStream) -> None:
        try:
            async with trio.open_nursery() as nursery:  # trio-websocket's reader task runs here
                try:
                    request = None
                    with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                        request = await wrap_server_stream(nursery, tcp)
                    if request is not None and await accept_or_refuse(self, request):
                        ws = await request.accept()
                        session = WsApiSession(
                            self, self._next_connection_id, ws, tcp, request.path
                        )
                        self._next_connection_id += 1
                        self._sessions[session.id] = session
                        self.changed()
                        try:
                            await session.run()
                        finally:
                            del self._sessions[session.id]
                            self.changed()
                finally:
                    nursery.cancel_scope.cancel()
        except* (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            self.log.debug("WebSocket API client vanished")
        finally:
            await tcp.aclose()

    def record_ws(
        self,
        connection_id: int,
        method: str,
        params: Mapping[str, object],
        status: int,
        code: int | None,
    ) -> None:
        self._requests.append(
            VenueRequest(
                transport="ws",
                method=method,
                path="/ws-api/v3",
                params=dict(params),
                status=status,
                code=code,
                received_at=trio.current_time(),
                connection_id=connection_id,
            )
        )
        self.changed()

    def weight_status(self) -> dict[str, object]:
        """The ``rateLimits`` item of a WebSocket API answer."""
        return {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": self.limits.weight_limit,
            "count": self.limits.used_weight(self.server_time_ms()),
        }

    def frame_sent(self) -> None:
        if self._changed is not None:
            self.changed()

    # --- fault injection: REST -------------------------------------------------------------------
    def drop_responses(
        self,
        count: int = 1,
        *,
        endpoint: str = "POST /api/v3/order",
        execute: bool = True,
        reset: bool = False,
    ) -> None:
        """The next ``count`` requests to ``endpoint`` are executed (or not) and then get no
        answer: the connection is closed (FIN; ``reset``: RST)."""
        self._add_fault(_Fault("drop", endpoint, _check_count(count), execute, reset=reset))

    def error_responses(
        self,
        count: int = 1,
        *,
        endpoint: str = "POST /api/v3/order",
        execute: bool = True,
        status: int = 503,
        code: int | None = -1007,
    ) -> None:
        """The next ``count`` requests to ``endpoint`` are executed (or not) and answered
        ``status`` with ``{"code": code, "msg": Binance's text}``; ``code=None`` sends an HTML
        body instead, like a gateway. Binance: the execution status of a 5xx or a ``-1007``
        is unknown."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be 400..599, got {status}")
        fault = _Fault("error", endpoint, _check_count(count), execute, status=status, code=code)
        self._add_fault(fault)

    def delay_responses(
        self,
        seconds: float,
        count: int = 1,
        *,
        endpoint: str = "POST /api/v3/order",
        execute: bool = True,
    ) -> None:
        """The next ``count`` requests to ``endpoint`` are answered ``seconds`` late: executed
        at once and answered late (``execute=True``: a client timeout that hides a success),
        or held back before the engine (``execute=False``: they may expire on the way)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        fault = _Fault("delay", endpoint, _check_count(count), execute, delay_s=seconds)
        self._add_fault(fault)

    def _add_fault(self, fault: _Fault) -> None:
        if fault.endpoint not in ROUTES:
            raise ValueError(f"unknown endpoint {fault.endpoint!r}; one of {sorted(ROUTES)}")
        self._faults.append(fault)
        self.log.info(
            "fault armed", fault=fault.kind, endpoint=fault.endpoint, count=fault.remaining
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def skew_clock(self, offset_ms: int) -> None:
        """Run the venue clock ``offset_ms`` ahead of the model's (negative: behind). Requests
        signed by a client clock that does not follow get ``-1021``."""
        self._clock_offset_ms = offset_ms
        self.changed()

    def set_engine_latency(self, seconds: float) -> None:
        """Time between the API accepting an order or cancel and the engine taking it; the
        engine re-checks ``recvWindow`` (``-1021`` if it passed meanwhile)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._engine_latency_s = seconds

    def set_query_lag(self, seconds: float) -> None:
        """Orders are ``-2013`` "Order does not exist." to ``GET /api/v3/order`` (and missing
        from ``allOrders``) for ``seconds`` after they were created, as Binance's read side
        can lag its engine. Open-order lists and cancels see them at once."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self._query_lag_s = seconds

    def set_request_weight_limit(self, limit: int, *, violations_before_ban: int = 1) -> None:
        """The per-minute request weight limit (``exchangeInfo`` shows it) and how many
        requests that ignore a 429's ``Retry-After`` earn a 418 ban."""
        if limit < 1 or violations_before_ban < 1:
            raise ValueError("limit and violations_before_ban must be >= 1")
        self.limits.weight_limit = limit
        self.limits.violations_before_ban = violations_before_ban

    def exhaust_request_weight(self) -> None:
        """Use up the current minute's weight: the next request is a 429 with
        ``Retry-After``; one more before that delay passes is a 418 ban."""
        self.limits.exhaust(self.server_time_ms())

    def lift_ban(self) -> None:
        """Forget the ban, the back-off and the weight used so far."""
        self.limits.lift()

    def set_order_limits(self, per_10s: int | None = None, per_day: int | None = None) -> None:
        if per_10s is not None:
            self.limits.orders_per_10s = per_10s
        if per_day is not None:
            self.limits.orders_per_day = per_day

    # --- fault injection: user data stream -------------------------------------------------
    def silence_user_streams(self) -> int:
        """The user-data subscriptions open now get no more events (lost, not queued) while
        their connections still answer requests and pings; a new subscription is served
        normally. The fault of a stream that goes quiet without closing."""
        silenced = 0
        for session in self._sessions.values():
            for subscription in session.subscriptions.values():
                subscription.silenced = True
                silenced += 1
        self.log.info("fault: user streams silenced", subscriptions=silenced)
        self.changed()
        return silenced

    def drop_ws_connections(self) -> int:
        """Reset every WebSocket API connection (no close frame: the client sees 1006)."""
        sessions = list(self._sessions.values())
        for session in sessions:
            session.drop()
        self.log.info("fault: WebSocket API connections dropped", connections=len(sessions))
        return len(sessions)

    def send_server_shutdown(self) -> int:
        """Send ``{"event": {"e": "serverShutdown", "E": ...}}`` on every WebSocket API
        connection (they stay open: Binance closes them later)."""
        frame = orjson.dumps({"event": {"e": "serverShutdown", "E": self.server_time_ms()}})
        for session in self._sessions.values():
            session.enqueue(frame.decode())
        return len(self._sessions)

    # --- account -------------------------------------------------------------------------------
    def set_balance(self, asset: str, free: Decimal | str | int) -> None:
        """Set ``asset``'s free balance (users see ``balanceUpdate`` and
        ``outboundAccountPosition``)."""
        self.publish(self.engine.set_balance(asset, Decimal(free), self.server_time_ms()))

    def set_commission(self, maker: Decimal | str, taker: Decimal | str) -> None:
        """Commission rates (fractions: ``"0.001"`` is 0.1 %), for the next fills."""
        self.engine.maker_rate, self.engine.taker_rate = Decimal(maker), Decimal(taker)

    # --- observability -------------------------------------------------------------------------
    def changed(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    async def wait_for(self, predicate: Callable[[BinanceVenue], bool]) -> None:
        """Return once ``predicate(self)`` holds; re-checked on every change (request, order
        change, event, subscription, frame sent), never polled. Bound it in tests."""
        while not predicate(self):
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()

    def orders(self, symbol: str | None = None) -> tuple[VenueOrder, ...]:
        """Every order the venue holds, oldest first (``symbol`` native, e.g. ``BTCUSDT``)."""
        return tuple(
            VenueOrder.of(o) for o in self.engine.orders if symbol is None or o.symbol == symbol
        )

    def order(self, client_order_id: str, symbol: str | None = None) -> VenueOrder | None:
        """The newest order carrying ``client_order_id``."""
        for order in reversed(self.orders(symbol)):
            if order.client_order_id == client_order_id:
                return order
        return None

    def trades(self, symbol: str | None = None) -> tuple[Fill, ...]:
        return tuple(t for t in self.engine.trades if symbol is None or t.symbol == symbol)

    def balances(self) -> dict[str, Balance]:
        return {a: Balance(b.free, b.locked) for a, b in self.engine.balances.items()}

    def requests(
        self, path: str | None = None, *, method: str | None = None
    ) -> tuple[VenueRequest, ...]:
        """Requests received, oldest first (the last ``REQUEST_LOG_LENGTH``)."""
        return tuple(
            r
            for r in self._requests
            if (path is None or r.path == path) and (method is None or r.method == method)
        )

    def subscriptions(self) -> int:
        """User-data subscriptions active now (silenced ones included)."""
        return sum(len(s.subscriptions) for s in self._sessions.values())

    def ws_connections(self) -> int:
        return len(self._sessions)


async def run_binance_venue(
    symbols: Sequence[str] | None = None,
    *,
    seed: int = 0,
    rate_hz: float = 10.0,
    host: str = "127.0.0.1",
    rest_port: int = 0,
    ws_port: int = 0,
    market_server: ExchangeServer | None = None,
    api_keys: Iterable[ApiKey] = (),
    balances: Mapping[str, Decimal | str | int] | None = None,
    task_status: trio.TaskStatus[BinanceVenue] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; for ``nursery.start``, which returns the ``BinanceVenue``."""
    venue = BinanceVenue(
        tuple(symbols or ()),
        seed=seed,
        rate_hz=rate_hz,
        host=host,
        rest_port=rest_port,
        ws_port=ws_port,
        market_server=market_server,
        api_keys={key.key: key for key in api_keys},
        initial_balances=None if balances is None else {a: Decimal(v) for a, v in balances.items()},
    )
    await venue.run(task_status=task_status)


@asynccontextmanager
async def open_binance_venue(
    symbols: Sequence[str] | None = None,
    *,
    seed: int = 0,
    rate_hz: float = 10.0,
    host: str = "127.0.0.1",
    market_server: ExchangeServer | None = None,
    api_keys: Iterable[ApiKey] = (),
    balances: Mapping[str, Decimal | str | int] | None = None,
) -> AsyncIterator[BinanceVenue]:
    """``async with open_binance_venue(("BTC/USDT",)) as venue:`` - listening on entry,
    stopped (all connections cut) on exit. See the module docstring."""
    async with trio.open_nursery() as nursery:
        venue = await nursery.start(
            partial(
                run_binance_venue,
                symbols,
                seed=seed,
                rate_hz=rate_hz,
                host=host,
                market_server=market_server,
                api_keys=api_keys,
                balances=balances,
            )
        )
        try:
            yield venue
        finally:
            nursery.cancel_scope.cancel(reason="binance venue closed")
