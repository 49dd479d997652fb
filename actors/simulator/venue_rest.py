"""The local Binance venue's REST API: routes, parameter checks, signed-request checks.

Decisions (where the docs leave room, or where the venue is stricter than "accept anything"):

* Parameters come from the query string and, for POST/PUT/DELETE, the form body; a name in
  both is taken from the query string (Binance's rule); a name twice in one part is ``-1101``;
  a name the endpoint does not read is ``-1104`` "Not all sent parameters were read", which
  is how Binance answers a misspelt optional parameter.
* Signed endpoints check, in this order: the ``X-MBX-APIKEY`` header (missing or malformed
  ``-2014``, unknown ``-2015``, both HTTP 401), ``timestamp`` (ms, or µs when it has 16
  digits) and ``recvWindow`` (default 5000, at most 60000, up to 3 decimals), the window
  against the venue clock at receipt (``-1021``: 1000 ms ahead, or older than
  ``recvWindow``), then the signature over the exact bytes received (``-1022``). Orders and
  cancels check the window again when they reach the engine, after the venue's engine
  latency (a fault knob), as Binance has done since 2025-06.
* HTTP statuses: 400 for every ``code`` answer but the ones above (401), 404 for an unknown
  path, 429/418 for rate limits. Each answer carries ``X-MBX-USED-WEIGHT-1M``; a successful
  new order also ``X-MBX-ORDER-COUNT-10S`` and ``X-MBX-ORDER-COUNT-1D``.
* Weights are Binance's: time/ping 1, exchangeInfo 20, bookTicker 2 (4 without a symbol),
  order POST/DELETE 1, order GET 4, openOrders 6 per symbol or 80, allOrders 20, account 20,
  myTrades 20 (5 with ``orderId``), DELETE openOrders 1.
* ``myTrades`` pages as Binance documents it: at most ``limit`` trades (default 500, at most
  1000), oldest first; from ``fromId`` on when given (trade id >= ``fromId``), else the most
  recent ones. So a client that reads one page of an order with more trades than ``limit``
  misses the oldest, as it would on Binance.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import attrs
import orjson

from actors.simulator.http import HttpRequest, HttpResponse
from actors.simulator.venue_auth import ApiKey, rest_payload
from actors.simulator.venue_matching import NewOrder, Order, Rejected
from actors.simulator.venue_rules import MAX_NUM_ORDERS, PRECISION, SymbolRules, decimals, fmt

if TYPE_CHECKING:
    from actors.simulator.binance_venue import BinanceVenue

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INTEGER_RE = re.compile(r"^-?[0-9]{1,20}$")
CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
API_KEY_RE = re.compile(r"^[A-Za-z0-9]{64}$")
RECV_WINDOW_RE = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,3})?$")
DEFAULT_RECV_WINDOW_MS = Decimal(5000)
MAX_RECV_WINDOW_MS = Decimal(60000)
SIGNED = frozenset({"timestamp", "recvWindow", "signature"})
UNSUPPORTED_TYPES = {
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
}
ORDER_PARAMS = frozenset(
    {
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "quoteOrderQty",
        "price",
        "newClientOrderId",
        "newOrderRespType",
        "selfTradePreventionMode",
    }
)
NOT_FOUND = {"code": -1000, "msg": "Not found."}


class VenueError(Exception):
    """An error answer: HTTP ``status`` with Binance's ``{"code", "msg"}`` body."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg

    @classmethod
    def rejected(cls, exc: Rejected) -> VenueError:
        return cls(400, exc.code, exc.msg)


def mandatory(name: str) -> VenueError:
    return VenueError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_required(name: str) -> VenueError:
    return VenueError(400, -1106, f"Parameter '{name}' sent when not required.")


def illegal(name: str, legal: str) -> VenueError:
    return VenueError(
        400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


@attrs.frozen(slots=True)
class SignedWindow:
    """What a signed request said about time, kept to re-check it at the engine."""

    timestamp_ms: Decimal
    recv_window_ms: Decimal


def check_window(window: SignedWindow, now_ms: int) -> None:
    if window.timestamp_ms >= now_ms + 1000:
        raise VenueError(
            400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now_ms - window.timestamp_ms > window.recv_window_ms:
        raise VenueError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def parse_window(params: Mapping[str, str]) -> SignedWindow:
    raw = params.get("timestamp")
    if not raw:
        raise mandatory("timestamp")
    if not raw.isdigit() or len(raw) > 20:
        raise illegal("timestamp", "^[0-9]{1,20}$")
    timestamp = Decimal(raw)
    if len(raw) >= 16:  # microseconds
        timestamp /= 1000
    raw_window = params.get("recvWindow")
    recv_window = DEFAULT_RECV_WINDOW_MS
    if raw_window is not None:
        if not RECV_WINDOW_RE.match(raw_window):
            raise illegal("recvWindow", r"^[0-9]{1,10}(\.[0-9]{1,3})?$")
        recv_window = Decimal(raw_window)
        if recv_window > MAX_RECV_WINDOW_MS:
            raise VenueError(400, -1131, "recvWindow must be less than 60000")
    return SignedWindow(timestamp, recv_window)


def api_key(api_keys: Mapping[str, ApiKey], header: str | None) -> ApiKey:
    """The registered key named by ``X-MBX-APIKEY`` (or the venue's answer to its absence)."""
    if not header:
        raise VenueError(401, -2014, "API-key format invalid.")
    key = api_keys.get(header)
    if key is None:
        if API_KEY_RE.match(header):
            raise VenueError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        raise VenueError(401, -2014, "API-key format invalid.")
    return key


def authenticate(
    api_keys: Mapping[str, ApiKey], request: HttpRequest, params: Mapping[str, str], now_ms: int
) -> SignedWindow:
    """Check a signed request in the venue's order (module docstring); its time window."""
    key = api_key(api_keys, request.header("x-mbx-apikey"))
    window = parse_window(params)
    check_window(window, now_ms)
    body = request.body.decode("utf-8", "replace") if request.method != "GET" else ""
    payload, signature = rest_payload(request.raw_query, body)
    if not signature:
        raise mandatory("signature")
    if not key.verify(payload, signature):
        raise VenueError(400, -1022, "Signature for this request is not valid.")
    return window


def _pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in pairs:
            raise VenueError(400, -1101, "Duplicate values for a parameter detected.")
        pairs[name] = value
    return pairs


def parse_params(request: HttpRequest) -> dict[str, str]:
    params = _pairs(request.raw_query)
    if request.method != "GET" and request.body:
        body = _pairs(request.body.decode("utf-8", "replace"))
        params = body | params  # the query string wins
    return params


# --- value parsing ---------------------------------------------------------------------------
def decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not DECIMAL_RE.match(raw):
        raise illegal(name, DECIMAL_RANGE)
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise illegal(name, DECIMAL_RANGE) from exc
    if decimals(value) > PRECISION:
        raise VenueError(400, -1111, f"Parameter '{name}' has too much precision.")
    return value


def int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not INTEGER_RE.match(raw):
        raise illegal(name, "^[0-9]{1,20}$")
    return int(raw)


def limit_param(params: Mapping[str, str], default: int = 500, maximum: int = 1000) -> int:
    limit = int_param(params, "limit")
    if limit is None:
        return default
    return max(1, min(limit, maximum))


def symbol_rules(venue: BinanceVenue, params: Mapping[str, str]) -> SymbolRules:
    symbol = params.get("symbol")
    if not symbol:
        raise mandatory("symbol")
    rules = venue.rules.get(symbol)
    if rules is None:
        raise VenueError(400, -1121, "Invalid symbol.")
    return rules


# --- routes ----------------------------------------------------------------------------------
Handler = Callable[["BinanceVenue", "Call"], Awaitable[HttpResponse]]


@attrs.frozen(slots=True)
class Call:
    request: HttpRequest
    params: Mapping[str, str]
    received_ms: int
    window: SignedWindow | None


@attrs.frozen(slots=True)
class Route:
    handler: Handler
    signed: bool
    params: frozenset[str]
    weight: Callable[[Mapping[str, str]], int]

    def check_params(self, params: Mapping[str, str]) -> None:
        known = self.params | SIGNED if self.signed else self.params
        unread = [name for name in params if name not in known]
        if unread:
            raise VenueError(
                400,
                -1104,
                f"Not all sent parameters were read; read '{len(params) - len(unread)}'"
                f" parameter(s) but was sent '{len(params)}'.",
            )


def ok(payload: object, headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse.json(200, payload, headers)


async def get_time(venue: BinanceVenue, call: Call) -> HttpResponse:
    return ok({"serverTime": venue.server_time_ms()})


async def get_ping(venue: BinanceVenue, call: Call) -> HttpResponse:
    return ok({})


async def get_exchange_info(venue: BinanceVenue, call: Call) -> HttpResponse:
    symbol, symbols = call.params.get("symbol"), call.params.get("symbols")
    if symbol is not None and symbols is not None:
        raise VenueError(400, -1128, "Combination of optional parameters invalid.")
    names: list[str] = list(venue.rules)
    if symbol is not None:
        names = [symbol]
    elif symbols is not None:
        try:
            parsed = orjson.loads(symbols)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(n, str) for n in parsed):
            raise illegal("symbols", '^\\["[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}\\]$')
        names = parsed
    if any(name not in venue.rules for name in names):
        raise VenueError(400, -1121, "Invalid symbol.")
    return ok(
        {
            "timezone": "UTC",
            "serverTime": venue.server_time_ms(),
            "rateLimits": venue.limits.rate_limits_json(),
            "exchangeFilters": [],
            "symbols": [venue.rules[name].exchange_info() for name in names],
        }
    )


async def get_book_ticker(venue: BinanceVenue, call: Call) -> HttpResponse:
    if "symbol" in call.params:
        return ok(venue.book_ticker(symbol_rules(venue, call.params).symbol))
    return ok([venue.book_ticker(name) for name in venue.rules])


def _new_order(venue: BinanceVenue, params: Mapping[str, str]) -> tuple[NewOrder, str]:
    """The order a POST describes, through the API's checks (no engine yet)."""
    rules = symbol_rules(venue, params)
    side = params.get("side")
    if not side:
        raise mandatory("side")
    if side not in ("BUY", "SELL"):
        raise VenueError(400, -1117, "Invalid side.")
    order_type = params.get("type")
    if not order_type:
        raise mandatory("type")
    if order_type in UNSUPPORTED_TYPES:
        raise VenueError(400, -2010, UNSUPPORTED_TYPES[order_type])
    if order_type not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
        raise VenueError(400, -1116, "Invalid orderType.")
    time_in_force = params.get("timeInForce") or None
    quantity = decimal_param(params, "quantity")
    quote_qty = decimal_param(params, "quoteOrderQty")
    price = decimal_param(params, "price")
    if order_type == "LIMIT":
        if time_in_force is None:
            raise mandatory("timeInForce")
        if time_in_force not in ("GTC", "IOC", "FOK"):
            raise VenueError(400, -1115, "Invalid timeInForce.")
    elif time_in_force is not None:
        raise not_required("timeInForce")
    if order_type == "MARKET":
        if price is not None:
            raise not_required("price")
        if quantity is None and quote_qty is None:
            raise VenueError(
                400,
                -1102,
                "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
            )
        if quantity is not None and quote_qty is not None:
            raise not_required("quoteOrderQty")
    else:
        if quantity is None:
            raise mandatory("quantity")
        if price is None:
            raise mandatory("price")
        if quote_qty is not None:
            raise not_required("quoteOrderQty")
    client_order_id = params.get("newClientOrderId")
    if client_order_id == "":
        raise VenueError(400, -1118, "New client order ID was empty.")
    if client_order_id is not None and not CLIENT_ID_RE.match(client_order_id):
        raise illegal("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$")
    response_type = params.get("newOrderRespType") or (
        "ACK" if order_type == "LIMIT_MAKER" else "FULL"
    )
    if response_type not in ("ACK", "RESULT", "FULL"):
        raise VenueError(400, -1130, "Data sent for parameter 'newOrderRespType' is not valid.")
    if params.get("selfTradePreventionMode", "NONE") != "NONE":
        raise VenueError(
            400, -1130, "Data sent for parameter 'selfTradePreventionMode' is not valid."
        )
    # filters, as the API checks them before the engine
    market = order_type == "MARKET"
    failure = None
    if price is not None:
        failure = rules.price_failure(price)
    if failure is None and quantity is not None:
        failure = rules.lot_failure(quantity, market=market)
    if failure is None:
        if quote_qty is not None:
            notional = quote_qty
        else:
            assert quantity is not None
            notional = quantity * (price if price is not None else venue.avg_price(rules.symbol))
        failure = rules.notional_failure(notional, market=market)
    if failure is None and not market:
        if len(venue.engine.open_orders(rules.symbol)) >= MAX_NUM_ORDERS:
            failure = "MAX_NUM_ORDERS"
    if failure is not None:
        raise VenueError(400, -1013, f"Filter failure: {failure}")
    new = NewOrder(
        symbol=rules.symbol,
        side=side,
        type=order_type,
        client_order_id=client_order_id or venue.engine.new_client_order_id(),
        time_in_force=time_in_force,
        quantity=quantity,
        quote_order_qty=quote_qty,
        price=price,
    )
    return new, response_type


async def post_order(venue: BinanceVenue, call: Call) -> HttpResponse:
    new, response_type = _new_order(venue, call.params)
    now_ms = await venue.reach_engine(call.window)
    refusal = venue.limits.admit_order(now_ms)
    if refusal is not None:
        raise VenueError(refusal.status, refusal.code, refusal.msg)
    try:
        order, fills, events = venue.engine.place(new, venue.touch(new.symbol), now_ms)
    except Rejected as exc:
        raise VenueError.rejected(exc) from None
    venue.order_placed(order, events)
    if response_type == "ACK":
        payload: dict[str, object] = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": now_ms,
        }
    else:
        payload = order.result_json(now_ms)
        if response_type == "FULL":
            payload["fills"] = [fill.fill_json() for fill in fills]
    count_10s, count_1d = venue.limits.order_counts(now_ms)
    return ok(
        payload,
        (("X-MBX-ORDER-COUNT-10S", str(count_10s)), ("X-MBX-ORDER-COUNT-1D", str(count_1d))),
    )


async def post_order_test(venue: BinanceVenue, call: Call) -> HttpResponse:
    _new_order(venue, call.params)
    return ok({})


def _order_ref(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    order_id = int_param(params, "orderId")
    client_order_id = params.get("origClientOrderId") or None
    if order_id is None and client_order_id is None:
        raise VenueError(
            400,
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    return order_id, client_order_id


async def get_order(venue: BinanceVenue, call: Call) -> HttpResponse:
    rules = symbol_rules(venue, call.params)
    order_id, client_order_id = _order_ref(call.params)
    order = venue.engine.find(rules.symbol, order_id=order_id, client_order_id=client_order_id)
    if order is None or not venue.visible(order):
        raise VenueError(400, -2013, "Order does not exist.")
    return ok(order.query_json())


def _cancel_json(order: Order, cancel_client_order_id: str, now_ms: int) -> dict[str, object]:
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_order_id,
        "transactTime": now_ms,
        "price": fmt(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.orig_quote_qty),
        "cummulativeQuoteQty": fmt(order.cumulative_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "selfTradePreventionMode": "NONE",
    }


def _cancel_client_id(venue: BinanceVenue, params: Mapping[str, str]) -> str:
    cancel_id = params.get("newClientOrderId") or None
    if cancel_id is not None and not CLIENT_ID_RE.match(cancel_id):
        raise illegal("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$")
    return cancel_id or venue.engine.new_client_order_id()


async def delete_order(venue: BinanceVenue, call: Call) -> HttpResponse:
    rules = symbol_rules(venue, call.params)
    order_id, client_order_id = _order_ref(call.params)
    cancel_id = _cancel_client_id(venue, call.params)
    now_ms = await venue.reach_engine(call.window)
    try:
        order, events = venue.engine.cancel(
            rules.symbol,
            order_id=order_id,
            client_order_id=client_order_id,
            cancel_client_order_id=cancel_id,
            now_ms=now_ms,
        )
    except Rejected as exc:
        raise VenueError.rejected(exc) from None
    venue.publish(events)
    return ok(_cancel_json(order, cancel_id, now_ms))


async def delete_open_orders(venue: BinanceVenue, call: Call) -> HttpResponse:
    rules = symbol_rules(venue, call.params)
    now_ms = await venue.reach_engine(call.window)
    orders = sorted(venue.engine.open_orders(rules.symbol), key=lambda o: o.order_id)
    if not orders:
        raise VenueError(400, -2011, "Unknown order sent.")
    answers = []
    for order in orders:
        cancel_id = venue.engine.new_client_order_id()
        _, events = venue.engine.cancel(
            rules.symbol,
            order_id=order.order_id,
            client_order_id=None,
            cancel_client_order_id=cancel_id,
            now_ms=now_ms,
        )
        venue.publish(events)
        answers.append(_cancel_json(order, cancel_id, now_ms))
    return ok(answers)


async def get_open_orders(venue: BinanceVenue, call: Call) -> HttpResponse:
    symbol = symbol_rules(venue, call.params).symbol if "symbol" in call.params else None
    orders = sorted(venue.engine.open_orders(symbol), key=lambda o: (o.time_ms, o.order_id))
    return ok([order.query_json() for order in orders])


def _time_range(params: Mapping[str, str]) -> tuple[int, int]:
    start = int_param(params, "startTime")
    end = int_param(params, "endTime")
    return (start if start is not None else 0), (end if end is not None else 2**63)


async def get_all_orders(venue: BinanceVenue, call: Call) -> HttpResponse:
    rules = symbol_rules(venue, call.params)
    from_id = int_param(call.params, "orderId")
    start, end = _time_range(call.params)
    orders = [
        o
        for o in venue.engine.orders
        if o.symbol == rules.symbol
        and (from_id is None or o.order_id >= from_id)
        and start <= o.time_ms <= end
        and venue.visible(o)
    ]
    orders.sort(key=lambda o: o.order_id)
    return ok([o.query_json() for o in orders[: limit_param(call.params)]])


async def get_account(venue: BinanceVenue, call: Call) -> HttpResponse:
    omit_zero = call.params.get("omitZeroBalances", "false")
    if omit_zero not in ("true", "false"):
        raise VenueError(400, -1130, "Data sent for parameter 'omitZeroBalances' is not valid.")
    engine = venue.engine
    maker_bps = int(engine.maker_rate * 10_000)
    taker_bps = int(engine.taker_rate * 10_000)
    balances = [
        {"asset": asset, "free": fmt(b.free), "locked": fmt(b.locked)}
        for asset, b in sorted(engine.balances.items())
        if omit_zero == "false" or b.free or b.locked
    ]
    return ok(
        {
            "makerCommission": maker_bps,
            "takerCommission": taker_bps,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt(engine.maker_rate),
                "taker": fmt(engine.taker_rate),
                "buyer": fmt(Decimal(0)),
                "seller": fmt(Decimal(0)),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": engine.update_ms,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": venue.uid,
        }
    )


async def get_my_trades(venue: BinanceVenue, call: Call) -> HttpResponse:
    rules = symbol_rules(venue, call.params)
    order_id = int_param(call.params, "orderId")
    from_id = int_param(call.params, "fromId")
    if from_id is not None and ("startTime" in call.params or "endTime" in call.params):
        raise VenueError(400, -1128, "Combination of optional parameters invalid.")
    start, end = _time_range(call.params)
    trades = [
        t
        for t in venue.engine.trades
        if t.symbol == rules.symbol
        and (order_id is None or t.order_id == order_id)
        and (from_id is None or t.trade_id >= from_id)
        and start <= t.time_ms <= end
    ]
    limit = limit_param(call.params)
    page = trades[:limit] if from_id is not None else trades[-limit:]
    return ok([t.trade_json() for t in page])


def _weight(value: int) -> Callable[[Mapping[str, str]], int]:
    return lambda _params: value


ROUTES: Mapping[str, Route] = {
    "GET /api/v3/time": Route(get_time, False, frozenset(), _weight(1)),
    "GET /api/v3/ping": Route(get_ping, False, frozenset(), _weight(1)),
    "GET /api/v3/exchangeInfo": Route(
        get_exchange_info, False, frozenset({"symbol", "symbols"}), _weight(20)
    ),
    "GET /api/v3/ticker/bookTicker": Route(
        get_book_ticker, False, frozenset({"symbol"}), lambda p: 2 if "symbol" in p else 4
    ),
    "POST /api/v3/order": Route(post_order, True, ORDER_PARAMS, _weight(1)),
    "POST /api/v3/order/test": Route(post_order_test, True, ORDER_PARAMS, _weight(1)),
    "GET /api/v3/order": Route(
        get_order, True, frozenset({"symbol", "orderId", "origClientOrderId"}), _weight(4)
    ),
    "DELETE /api/v3/order": Route(
        delete_order,
        True,
        frozenset(
            {"symbol", "orderId", "origClientOrderId", "newClientOrderId", "cancelRestrictions"}
        ),
        _weight(1),
    ),
    "DELETE /api/v3/openOrders": Route(delete_open_orders, True, frozenset({"symbol"}), _weight(1)),
    "GET /api/v3/openOrders": Route(
        get_open_orders, True, frozenset({"symbol"}), lambda p: 6 if "symbol" in p else 80
    ),
    "GET /api/v3/allOrders": Route(
        get_all_orders,
        True,
        frozenset({"symbol", "orderId", "startTime", "endTime", "limit"}),
        _weight(20),
    ),
    "GET /api/v3/account": Route(get_account, True, frozenset({"omitZeroBalances"}), _weight(20)),
    "GET /api/v3/myTrades": Route(
        get_my_trades,
        True,
        frozenset({"symbol", "orderId", "startTime", "endTime", "fromId", "limit"}),
        lambda p: 5 if "orderId" in p else 20,
    ),
}
