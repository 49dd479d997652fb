"""Binance Spot REST over httpx on Trio: signed requests sent as signed, every answer judged.

``BinanceRest`` is the I/O around the pure modules beside it: ``signing`` builds the bytes,
``responses`` says what an order answer means, ``rate_limits`` says when to hold back,
``filters`` reads ``exchangeInfo``. It adds sockets, a clock, and the line between "certainly
not sent" and "may have been sent".

    async with BinanceRest("https://testnet.binance.vision", signer) as rest:
        info = await rest.exchange_info(["BTCUSDT"])
        placed = await rest.place_order(prepared, client_order_id)

Decisions:

* **The local clock is ``trio.current_time()``**, for the ``ServerClock`` samples and for
  ``RateLimitState``. It is monotonic (a wall-clock step cannot move a timestamp or lift a
  ban), and under pytest-trio's ``autojump_clock`` the local venue's clock follows the Trio
  clock, so the tests are exact in virtual time. The server-time estimate is ``Trio time +
  offset``; the offset is re-measured (one ``GET /api/v3/time``, weight 1) before the first
  signed request, after a ``-1021``, and whenever the sample in use is older than
  ``ServerClock.max_sample_age_s``, so drift between the two clocks cannot pile up.
* **Sent byte for byte.** ``sign_request``'s query goes after the ``?`` and its body is the
  form content, both as built: httpx leaves an already percent-encoded query alone. Order
  parameters travel in the body (the documented ``POST`` form), lookups in the query.
* **One ``httpx.AsyncClient`` per ``async with``**: keep-alive connections to the venue, one
  connection pool. httpx's timeouts (``timeout_s`` for each of connect, write, read and pool
  wait) bound every request; there is no retry anywhere, not even of a connect failure.
* **No retries, ever, here.** An order is never sent twice (the venue's client ids only
  deduplicate *open* orders), and a lookup is the caller's to repeat: ``UnknownOrderResolution``
  counts lookups and must see each one. A ``-1021`` drops the clock estimate
  (``ServerClock.forget``) and returns the refusal; the *next* request syncs first. No storm.
* **Rate limits are obeyed locally.** Every answer, of any endpoint and any status, goes to
  ``limits.observe``. Before sending, a blocked request is not sent: ``place_order`` returns a
  ``Refused`` of kind ``rate_limit`` ("not sent: rate limited for N s"), every other call
  raises ``VenueRateLimited`` with ``wait_s``. Ignoring a 429's ``Retry-After`` is how an IP
  gets banned (418), and the ban holds every process on that address.
* **Sent or not.** A request certainly never left when httpx failed before writing to a
  socket: ``ConnectError`` and ``ConnectTimeout`` (DNS, refused, TLS handshake: all before
  the request's first byte), ``PoolTimeout`` (no connection to write on) and
  ``UnsupportedProtocol``. Every other transport error (write error or timeout, read error or
  timeout, connection closed or reset, protocol errors) may come after the venue got the
  request. ``place_order`` hands that bit to ``classify_no_response``: Refused ``not_sent``
  or Unknown ``no_response``.
* **Order endpoints answer, the rest raise.** ``place_order``, ``query_order`` and
  ``cancel_order`` return an outcome for everything the venue or the network did (including
  a failed clock sync before sending: nothing was sent); only our own rate limiter makes
  ``query_order``/``cancel_order`` raise (``VenueRateLimited``), since there is no answer to
  classify. The other endpoints raise ``VenueRequestError`` (endpoint, HTTP status, venue
  code and message) on any failure, an unreadable success body included.
* **Secrets stay out of text.** Exceptions and outcomes name the endpoint, status, code and
  the venue's message, never the URL, the headers or the parameters; any text that comes
  from outside (an httpx error, a venue message) is scrubbed of the API key and the
  signature before it is kept.
* ``myTrades`` does not carry client order ids: its fills get the ``client_order_id`` the
  caller passes (it knows whose ``order_id`` it asked for), else ``""``; the fill's key
  (symbol, trade id) is what deduplicates.
* **An order's trades are paged** (``order_trades``): one ``myTrades`` answer holds at most
  ``limit`` trades (1000 at most) and, without ``fromId``, the *most recent* ones, so an order
  filled in more trades is read with ``fromId`` from 0, then from the last id + 1, until a
  page comes back short.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote

import attrs
import httpx
import orjson
import trio
from loguru import logger

from actors.errors import DecodeError, ExecutionError
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    expect_bool,
    expect_dict,
    expect_int,
    expect_list,
    expect_str,
    size,
)
from actors.venues.binance.filters import PreparedOrder, SymbolRules, parse_exchange_info
from actors.venues.binance.rate_limits import RateLimitRule, RateLimitState, parse_rate_limits
from actors.venues.binance.responses import (
    INVALID_TIMESTAMP,
    Cancelled,
    CancelRefused,
    NewOrderOutcome,
    OrderSnapshot,
    QueryFailed,
    QueryOutcome,
    RefusalKind,
    Refused,
    Unknown,
    classify_cancel,
    classify_new_order,
    classify_no_response,
    classify_query,
    venue_error,
)
from actors.venues.binance.signing import (
    DEFAULT_RECV_WINDOW_MS,
    MAX_RECV_WINDOW_MS,
    Params,
    ServerClock,
    SignedRequest,
    Signer,
    encode_params,
    sign_request,
)
from actors.venues.fills import VenueFill

__all__ = [
    "MAX_TRADES_LIMIT",
    "AssetBalance",
    "BinanceRest",
    "CancelOutcome",
    "ExchangeInfo",
    "PlacedOrder",
    "QueryResult",
    "VenueRateLimited",
    "VenueRequestError",
]

ORDER_PATH = "/api/v3/order"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_TRADES_LIMIT = 1000
_REDACTED = "***"
_T = TypeVar("_T")

CancelOutcome = Cancelled | CancelRefused | Unknown

# httpx failures raised before any byte of the request can have been written.
_NOT_SENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


class VenueRequestError(ExecutionError):
    """A request got no usable answer. The message names the endpoint, the HTTP status, the
    venue's code and message (never the parameters, the API key or the signature)."""

    def __init__(
        self,
        endpoint: str,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(f"{endpoint}: {message}")
        self.endpoint = endpoint
        self.http_status = http_status
        self.code = code


class VenueRateLimited(VenueRequestError):
    """Not sent: the venue's rate limits (as last seen) hold requests back for ``wait_s``."""

    def __init__(self, endpoint: str, wait_s: float, reason: str) -> None:
        self.wait_s = wait_s
        self.reason = reason
        super().__init__(endpoint, f"not sent: {_rate_limited(wait_s, reason)}")


def _rate_limited(wait_s: float, reason: str) -> str:
    return f"rate limited for {wait_s:.1f} s ({reason})"


@attrs.frozen(slots=True)
class PlacedOrder:
    """A ``POST /api/v3/order``'s outcome and the time window it was signed with (what
    ``UnknownOrderResolution`` needs for an Unknown). ``timestamp_ms`` is 0 when nothing was
    signed (refused locally: rate limit, or the clock sync before it failed)."""

    outcome: NewOrderOutcome
    timestamp_ms: int
    recv_window_ms: int


@attrs.frozen(slots=True)
class QueryResult:
    """A lookup's answer and the earliest server time it can have been asked at (0 when it
    was not sent)."""

    outcome: QueryOutcome
    asked_at_ms: int


@attrs.frozen(slots=True)
class ExchangeInfo:
    rules: dict[str, SymbolRules]  # by native symbol
    rate_limits: tuple[RateLimitRule, ...]


@attrs.frozen(slots=True)
class AssetBalance:
    free: Decimal
    locked: Decimal


@attrs.frozen(slots=True)
class _Reply:
    status: int
    headers: httpx.Headers = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)


@attrs.frozen(slots=True)
class _NoReply:
    sent: bool  # False only when no byte of the request can have left
    detail: str


@attrs.frozen(slots=True)
class _Sent:
    """A signed request that went out (or may have) and what came back."""

    request: SignedRequest
    asked_at_ms: int  # ServerClock.earliest_server_ms of the local send time
    reply: _Reply | _NoReply
    hidden: tuple[str, ...]  # the texts to scrub from anything kept (key, signature)


def _scrub(text: str, hidden: Sequence[str]) -> str:
    for secret in hidden:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _scrub_outcome(outcome: _T, hidden: Sequence[str]) -> _T:
    """The outcome with its ``message`` (the venue's text) scrubbed, when it has one."""
    message = getattr(outcome, "message", None)
    if isinstance(message, str) and attrs.has(type(outcome)):
        scrubbed = _scrub(message, hidden)
        if scrubbed != message:
            return attrs.evolve(outcome, message=scrubbed)  # type: ignore[misc]
    return outcome


def _signature(request: SignedRequest) -> str:
    part = request.body or request.query
    return part.rpartition("&signature=")[2]


@attrs.define(eq=False)
class BinanceRest:
    """Use as ``async with BinanceRest(...) as rest:`` (module docstring)."""

    base_url: str  # e.g. "https://testnet.binance.vision" (no trailing /api)
    signer: Signer | None  # None: public endpoints only
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS
    timeout_s: float = 10.0
    clock: ServerClock = attrs.Factory(ServerClock)
    limits: RateLimitState = attrs.Factory(RateLimitState)
    _http: httpx.AsyncClient | None = attrs.field(default=None, init=False, repr=False)
    _sync_lock: trio.Lock = attrs.field(factory=trio.Lock, init=False, repr=False)
    log: Any = attrs.field(init=False, repr=False, default=None)

    def __attrs_post_init__(self) -> None:
        if type(self.recv_window_ms) is not int or not (
            0 < self.recv_window_ms <= MAX_RECV_WINDOW_MS
        ):
            raise ValueError(
                f"recv_window_ms must be whole milliseconds in 1..{MAX_RECV_WINDOW_MS}, "
                f"got {self.recv_window_ms!r}"
            )
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {self.timeout_s!r}")
        self.log = logger.bind(actor="binance_rest")

    async def __aenter__(self) -> BinanceRest:
        if self._http is not None:
            raise RuntimeError("BinanceRest is already open")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout_s),
            headers={"accept": "application/json"},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    # --- public endpoints ------------------------------------------------------------------------
    async def sync_time(self) -> None:
        """One ``GET /api/v3/time`` round trip into ``clock`` (it keeps the best sample)."""
        endpoint = "GET /api/v3/time"
        self._check_allowed(endpoint, trio.current_time(), order=False)
        sent_at = trio.current_time()
        reply = await self._exchange("GET", "/api/v3/time")
        received_at = trio.current_time()
        data = self._json(endpoint, reply)
        try:
            server_ms = expect_int(expect_dict(data, "time")["serverTime"], "serverTime")
            self.clock.observe(sent_at, received_at, server_ms)
        except FOREIGN_ERRORS as exc:
            raise VenueRequestError(endpoint, f"unreadable response: {exc}") from None

    async def exchange_info(self, symbols: Sequence[str] | None = None) -> ExchangeInfo:
        """The symbols' rules (all symbols when None) and the venue's rate limits, which are
        installed into ``limits`` at once."""
        endpoint = "GET /api/v3/exchangeInfo"
        query: list[tuple[str, str]] = []
        if symbols is not None:
            query.append(("symbols", orjson.dumps(list(symbols)).decode()))
        self._check_allowed(endpoint, trio.current_time(), order=False)
        reply = await self._exchange("GET", "/api/v3/exchangeInfo", encode_params(query))
        data = self._json(endpoint, reply)
        try:
            info = ExchangeInfo(
                rules=parse_exchange_info(expect_dict(data, "exchangeInfo")),
                rate_limits=parse_rate_limits(data),
            )
        except FOREIGN_ERRORS as exc:  # DecodeError is a ValueError
            raise VenueRequestError(endpoint, f"unreadable response: {exc}") from None
        self.limits.rules = info.rate_limits
        return info

    # --- orders -----------------------------------------------------------------------------------
    async def place_order(self, order: PreparedOrder, client_order_id: str) -> PlacedOrder:
        """``POST /api/v3/order`` with a FULL response, sent at most once."""
        endpoint = f"POST {ORDER_PATH}"
        params = order.request_params(client_order_id, response_type="FULL")
        try:
            sent = await self._signed("POST", ORDER_PATH, body=params, order=True)
        except VenueRateLimited as exc:
            refused = Refused(
                RefusalKind.RATE_LIMIT,
                None,
                None,
                f"not sent: {_rate_limited(exc.wait_s, exc.reason)}",
            )
            return PlacedOrder(refused, 0, self.recv_window_ms)
        except VenueRequestError as exc:  # the clock sync before it failed
            refused = Refused(RefusalKind.NOT_SENT, None, None, f"not sent: {exc}")
            return PlacedOrder(refused, 0, self.recv_window_ms)
        reply = sent.reply
        outcome: NewOrderOutcome
        if isinstance(reply, _NoReply):
            outcome = classify_no_response(
                request_sent=reply.sent, detail=f"{endpoint}: {reply.detail}"
            )
        else:
            answer = classify_new_order(reply.status, reply.body, client_order_id=client_order_id)
            outcome = _scrub_outcome(answer, sent.hidden)
        return PlacedOrder(outcome, sent.request.timestamp_ms, sent.request.recv_window_ms)

    async def query_order(self, symbol: str, client_order_id: str) -> QueryResult:
        """``GET /api/v3/order`` by ``origClientOrderId``: one lookup, never repeated here."""
        params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        try:
            sent = await self._signed("GET", ORDER_PATH, query=params)
        except VenueRateLimited:
            raise
        except VenueRequestError as exc:
            return QueryResult(QueryFailed(None, None, f"not sent: {exc}"), 0)
        reply = sent.reply
        if isinstance(reply, _NoReply):
            return QueryResult(QueryFailed(None, None, f"no response: {reply.detail}"), 0)
        outcome = classify_query(reply.status, reply.body, client_order_id=client_order_id)
        return QueryResult(_scrub_outcome(outcome, sent.hidden), sent.asked_at_ms)

    async def cancel_order(self, symbol: str, client_order_id: str) -> CancelOutcome:
        """``DELETE /api/v3/order`` by ``origClientOrderId``."""
        endpoint = f"DELETE {ORDER_PATH}"
        params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        try:
            sent = await self._signed("DELETE", ORDER_PATH, query=params)
        except VenueRateLimited:
            raise
        except VenueRequestError as exc:
            return CancelRefused(RefusalKind.NOT_SENT, None, None, f"not sent: {exc}")
        reply = sent.reply
        if isinstance(reply, _NoReply):
            lost = classify_no_response(
                request_sent=reply.sent, detail=f"{endpoint}: {reply.detail}"
            )
            if isinstance(lost, Refused):
                return CancelRefused(lost.kind, None, None, lost.message)
            return lost
        outcome = classify_cancel(reply.status, reply.body, client_order_id=client_order_id)
        return _scrub_outcome(outcome, sent.hidden)

    # --- account ----------------------------------------------------------------------------------
    async def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]:
        """``GET /api/v3/openOrders`` for one symbol (weight 6) or all of them (weight 80)."""
        endpoint = "GET /api/v3/openOrders"
        query = [] if symbol is None else [("symbol", symbol)]
        data = await self._signed_json("GET", "/api/v3/openOrders", query)
        try:
            return [_open_order(item) for item in expect_list(data, "openOrders")]
        except FOREIGN_ERRORS as exc:
            raise VenueRequestError(endpoint, f"unreadable response: {exc}") from None

    async def my_trades(
        self,
        symbol: str,
        *,
        order_id: str | int | None = None,
        from_id: str | int | None = None,
        limit: int = MAX_TRADES_LIMIT,
        client_order_id: str = "",
    ) -> list[VenueFill]:
        """``GET /api/v3/myTrades``, oldest first (``source="trades"``). The venue does not
        say which client id a trade's order had: ``client_order_id`` is stamped on every fill
        (pass it with ``order_id``)."""
        endpoint = "GET /api/v3/myTrades"
        if not 1 <= limit <= MAX_TRADES_LIMIT:
            raise ValueError(f"limit must be in 1..{MAX_TRADES_LIMIT}, got {limit}")
        query: list[tuple[str, str | int]] = [("symbol", symbol)]
        if order_id is not None:
            query.append(("orderId", order_id))
        if from_id is not None:
            query.append(("fromId", from_id))
        query.append(("limit", limit))
        data = await self._signed_json("GET", "/api/v3/myTrades", query)
        try:
            return [_trade(item, client_order_id) for item in expect_list(data, "myTrades")]
        except FOREIGN_ERRORS as exc:
            raise VenueRequestError(endpoint, f"unreadable response: {exc}") from None

    async def order_trades(
        self,
        symbol: str,
        order_id: str | int,
        *,
        client_order_id: str = "",
        page_size: int = MAX_TRADES_LIMIT,
    ) -> list[VenueFill]:
        """Every trade of one order, oldest first, read ``page_size`` at a time (module
        docstring); ``VenueRequestError`` when a page fails or the pages do not advance."""
        out: list[VenueFill] = []
        from_id = 0
        while True:
            page = await self.my_trades(
                symbol,
                order_id=order_id,
                from_id=from_id,
                limit=page_size,
                client_order_id=client_order_id,
            )
            out += page
            if len(page) < page_size:
                return out
            last = max(int(t.trade_id) for t in page)
            if last < from_id:
                raise VenueRequestError(
                    "GET /api/v3/myTrades", f"trade pages do not advance past id {from_id}"
                )
            from_id = last + 1

    async def account(self) -> dict[str, AssetBalance]:
        """``GET /api/v3/account``: every asset's free and locked balance."""
        endpoint = "GET /api/v3/account"
        data = await self._signed_json("GET", "/api/v3/account", [])
        try:
            balances = {}
            for item in expect_list(expect_dict(data, "account")["balances"], "balances"):
                b = expect_dict(item, "balance")
                asset = expect_str(b["asset"], "asset")
                balances[asset] = AssetBalance(
                    free=size(b["free"], f"{asset} free"),
                    locked=size(b["locked"], f"{asset} locked"),
                )
            return balances
        except FOREIGN_ERRORS as exc:
            raise VenueRequestError(endpoint, f"unreadable response: {exc}") from None

    # --- plumbing ---------------------------------------------------------------------------------
    def _check_allowed(self, endpoint: str, now: float, *, order: bool) -> None:
        allowed = self.limits.orders_allowed(now) if order else self.limits.requests_allowed(now)
        if not allowed:
            wait = self.limits.order_wait_s(now) if order else self.limits.request_wait_s(now)
            raise VenueRateLimited(endpoint, wait, self.limits.reason)

    def _clock_due(self, now: float) -> bool:
        best = self.clock.best
        return best is None or now - best.received_s > self.clock.max_sample_age_s

    async def _signed(
        self, method: str, path: str, *, query: Params = (), body: Params = (), order: bool = False
    ) -> _Sent:
        """Sign and send once: the clock synced first when due (one sync for concurrent
        callers), the limits checked before each request (the sync's own answer may have
        blocked what follows)."""
        endpoint = f"{method} {path}"
        signer = self.signer
        if signer is None:
            raise ExecutionError(f"{endpoint} is a signed endpoint: no API key configured")
        now = trio.current_time()
        self._check_allowed(endpoint, now, order=order)
        if self._clock_due(now):
            async with self._sync_lock:  # concurrent requests share one sync
                if self._clock_due(trio.current_time()):
                    await self.sync_time()
            now = trio.current_time()
            self._check_allowed(endpoint, now, order=order)
        request = sign_request(
            signer,
            query,
            body,
            timestamp_ms=self.clock.server_ms(now),
            recv_window_ms=self.recv_window_ms,
        )
        asked_at_ms = self.clock.earliest_server_ms(now)
        headers = dict(request.headers)
        if request.body:
            headers["content-type"] = FORM_CONTENT_TYPE
        signature = _signature(request)
        hidden = (signer.api_key(), signature, unquote(signature))
        reply = await self._exchange(method, path, request.query, request.body, headers, hidden)
        if isinstance(reply, _Reply):
            error = venue_error(reply.body)
            if error is not None and error.code == INVALID_TIMESTAMP:
                self.clock.forget()
                self.log.warning(
                    "timestamp refused (-1021): the server clock is re-synced before the next"
                    " request",
                    endpoint=endpoint,
                )
        return _Sent(request, asked_at_ms, reply, hidden)

    async def _signed_json(
        self, method: str, path: str, query: Sequence[tuple[str, str | int]]
    ) -> Any:
        sent = await self._signed(method, path, query=query)
        return self._json(f"{method} {path}", sent.reply, sent.hidden)

    async def _exchange(
        self,
        method: str,
        path: str,
        query: str = "",
        body: str = "",
        headers: Mapping[str, str] | None = None,
        hidden: Sequence[str] = (),
    ) -> _Reply | _NoReply:
        """One HTTP exchange; every answer is shown to ``limits`` as it arrives."""
        http = self._http
        if http is None:
            raise RuntimeError("BinanceRest is not open: use 'async with BinanceRest(...)'")
        url = f"{path}?{query}" if query else path
        try:
            response = await http.request(
                method, url, content=body.encode("ascii") if body else None, headers=headers
            )
        except _NOT_SENT_ERRORS as exc:
            return _NoReply(False, _scrub(f"not sent: {type(exc).__name__}: {exc}", hidden))
        except httpx.TransportError as exc:
            return _NoReply(True, _scrub(f"{type(exc).__name__}: {exc}", hidden))
        self.limits.observe(trio.current_time(), response.status_code, response.headers)
        return _Reply(response.status_code, response.headers, response.content)

    def _json(self, endpoint: str, reply: _Reply | _NoReply, hidden: Sequence[str] = ()) -> Any:
        """A successful answer's JSON, or ``VenueRequestError`` saying why there is none."""
        if isinstance(reply, _NoReply):
            raise VenueRequestError(endpoint, f"no response: {reply.detail}")
        status = reply.status
        if not 200 <= status < 300:
            error = venue_error(reply.body)
            if error is None:
                raise VenueRequestError(
                    endpoint, f"HTTP {status} (no venue error in the body)", http_status=status
                )
            raise VenueRequestError(
                endpoint,
                f"HTTP {status} {error.code} {_scrub(error.msg, hidden)}",
                http_status=status,
                code=error.code,
            )
        try:
            return orjson.loads(reply.body)
        except orjson.JSONDecodeError as exc:
            raise VenueRequestError(
                endpoint,
                f"unreadable response: HTTP {status}, not JSON ({exc})",
                http_status=status,
            ) from None


def _open_order(item: object) -> OrderSnapshot:
    client_order_id = expect_str(expect_dict(item, "open order")["clientOrderId"], "clientOrderId")
    outcome = classify_query(200, item, client_order_id=client_order_id)
    if not isinstance(outcome, OrderSnapshot):
        raise DecodeError(outcome.message)
    return outcome


def _trade(item: object, client_order_id: str) -> VenueFill:
    t = expect_dict(item, "trade")
    asset = t.get("commissionAsset")
    return VenueFill(
        symbol=expect_str(t["symbol"], "symbol"),
        trade_id=str(expect_int(t["id"], "id")),
        order_id=str(expect_int(t["orderId"], "orderId")),
        client_order_id=client_order_id,
        side="buy" if expect_bool(t["isBuyer"], "isBuyer") else "sell",
        price=size(t["price"], "price"),
        quantity=size(t["qty"], "qty"),
        commission=size(t["commission"], "commission"),
        commission_asset=None if asset is None else expect_str(asset, "commissionAsset"),
        time_ms=expect_int(t["time"], "time"),
        maker=expect_bool(t["isMaker"], "isMaker"),
        source="trades",
    )
