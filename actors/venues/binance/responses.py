"""What a Binance Spot order response means: accepted, refused, or unknown (pure).

``classify_new_order`` turns the answer to ``POST /api/v3/order`` (HTTP status and body) into
one of three outcomes, and ``classify_no_response`` does the same when no answer came:

* ``Accepted``: the venue has the order (2xx). Its status (``NEW``, ``PARTIALLY_FILLED``,
  ``FILLED``, ``EXPIRED``...) and, for a FULL response, its fills with trade ids.
* ``Refused``: **proven** that nothing is on the venue: the request was turned away before the
  matching engine, or the engine rejected it. The intent can be closed as rejected.
* ``Unknown``: anything else. The order may or may not exist; the executor must never send
  it again, keeps its reservations and resolves it by looking it up (``resolution.py``), from
  the user data stream, or at the next start.

Decisions (codes and texts are the venue's error-code and REST API documents'):

* **Refused is an allow-list.** Only answers the venue documents as "not processed" refuse;
  every other code, status or body shape is Unknown. Mistaking a live order for a refused one
  double-trades (the bot plans again); mistaking a refused one for unknown only delays the
  answer until a lookup says "does not exist". So doubt always goes to Unknown.
* **Refused codes**, each with HTTP 4xx:
  ``-1013`` INVALID_MESSAGE ("The request is rejected by the API. (i.e. The request didn't
  reach the Matching Engine.)", the filter failures); the ``-11xx`` range ("Request issues":
  illegal characters, missing or unknown parameters, ``-1111`` too much precision, ``-1121``
  bad symbol, ``-1131`` bad recvWindow...); ``-1014`` unsupported order combination and
  ``-1020`` unsupported operation (validation); ``-1002`` unauthorized, ``-1022`` invalid
  signature, ``-2014`` bad API key format and ``-2015`` "Invalid API-key, IP, or permissions
  for action" (authentication happens before anything else); ``-1021`` timestamp outside
  ``recvWindow`` or ahead of the server (checked on arrival and again just before the engine,
  so a ``-1021`` request never reached it); ``-1003`` too many requests and ``-1015`` too many
  orders (rate limits are checked before processing); ``-2010`` NEW_ORDER_REJECTED ("an error
  has been returned by the matching engine": insufficient balance, market closed, LIMIT_MAKER
  that would take...), **except** ``"Duplicate order sent."``.
* **HTTP 429 and 418** (rate limit, IP ban) and **403** (the WAF) refuse whatever the body:
  the request was stopped in front of the API. Feed the same response to ``RateLimitState``.
* **"Duplicate order sent."** (``-2010``) means an order with this client id is open on the
  venue right now. Our ids are one per intent and never re-sent, so that order is ours from an
  earlier attempt (or a replay): Unknown (``duplicate_id``), to be looked up, never refused.
* **Unknown**: every 5xx ("execution status is UNKNOWN and could have been a success",
  including 503 "Unknown error, please check your request or try again later"; the venue's
  other 503 texts are not trusted to mean failure either), ``-1006`` UNEXPECTED_RESP
  ("Execution status unknown"), ``-1007`` TIMEOUT ("Send status unknown; execution status
  unknown", after the API's 10 s wait for the engine), ``-1000``, ``-1001``, ``-1008``,
  ``-1016``, any unlisted code, a 4xx without a readable error body (a proxy's page), and a
  2xx whose body cannot be read or names another client id.
* **No response**: if the request certainly never left (DNS failure, connection refused,
  connect timeout: nothing was written to the socket), it is Refused (``not_sent``); once a
  byte may have been written (write error, read timeout, connection reset, TLS or protocol
  error mid-request), it is Unknown (``no_response``). The I/O client knows which and says so.
* ``classify_cancel`` and ``classify_query`` apply the same rules to ``DELETE`` and ``GET
  /api/v3/order``: ``-2011`` "Unknown order sent." is a cancel refused because the order is not
  open (filled, cancelled, expired, or never there: look it up); ``-2013`` "Order does not
  exist." and ``-2026`` "Order was canceled or expired with no executed qty over 90 days ago
  and has been archived." are distinct query answers; any other failed query is inconclusive.
* The functions take the body as bytes or text (REST) or an already decoded object, so a
  WebSocket API client can pass a response frame's ``status`` with its ``result`` or
  ``error`` object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, TypeVar

import attrs
import orjson

from actors.errors import DecodeError
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    expect_dict,
    expect_int,
    expect_list,
    expect_str,
    size,
)
from actors.venues.fills import VenueFill

__all__ = [
    "TERMINAL_STATUSES",
    "WORKING_STATUSES",
    "Accepted",
    "CancelRefused",
    "Cancelled",
    "OrderArchived",
    "OrderNotFound",
    "OrderSnapshot",
    "QueryFailed",
    "RefusalKind",
    "Refused",
    "Unknown",
    "UnknownKind",
    "VenueErrorBody",
    "classify_cancel",
    "classify_new_order",
    "classify_no_response",
    "classify_query",
    "venue_error",
]

# Order statuses (the venue's ENUM definitions).
WORKING_STATUSES = frozenset({"NEW", "PENDING_NEW", "PARTIALLY_FILLED", "PENDING_CANCEL"})
TERMINAL_STATUSES = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})

# Error codes.
INVALID_MESSAGE = -1013
UNAUTHORIZED = -1002
TOO_MANY_REQUESTS = -1003
UNEXPECTED_RESP = -1006
TIMEOUT = -1007
UNKNOWN_ORDER_COMPOSITION = -1014
TOO_MANY_ORDERS = -1015
UNSUPPORTED_OPERATION = -1020
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
ORDER_ARCHIVED = -2026

DUPLICATE_ORDER_MSG = "Duplicate order sent."
UNKNOWN_ORDER_MSG = "Unknown order sent."


class RefusalKind(StrEnum):
    """Why nothing is on the venue. Values shared with the bots' ``RejectReason`` where the
    meaning is the same (``min_notional``, ``insufficient_balance``, ``rate_limit``,
    ``venue_rejected``)."""

    NOT_SENT = "not_sent"
    FILTER = "filter"  # -1013 other than the notional filters
    MIN_NOTIONAL = "min_notional"  # -1013 "Filter failure: NOTIONAL" / "MIN_NOTIONAL"
    PARAMETER = "parameter"  # -11xx, -1014, -1020
    TIMESTAMP = "timestamp"  # -1021: resync the server clock
    AUTH = "auth"  # -1002, -1022, -2014, -2015
    RATE_LIMIT = "rate_limit"  # 429, 418, -1003, -1015
    WAF = "waf"  # 403
    INSUFFICIENT_BALANCE = "insufficient_balance"  # -2010
    MARKET_CLOSED = "market_closed"  # -2010
    VENUE_REJECTED = "venue_rejected"  # -2010 other messages; -2011 other than "Unknown order"
    NOT_OPEN = "not_open"  # cancel: -2011 "Unknown order sent."


class UnknownKind(StrEnum):
    NO_RESPONSE = "no_response"  # sent (maybe), then timeout or connection lost
    SERVER_ERROR = "server_error"  # 5xx
    VENUE_TIMEOUT = "venue_timeout"  # -1007
    UNEXPECTED_RESPONSE = "unexpected_response"  # -1006
    DUPLICATE_ID = "duplicate_id"  # -2010 "Duplicate order sent.": that id is open there
    UNRECOGNISED = "unrecognised"  # any answer not proven to mean "nothing happened"
    MALFORMED_SUCCESS = "malformed_success"  # a 2xx we cannot read


@attrs.frozen(slots=True)
class VenueErrorBody:
    code: int
    msg: str


@attrs.frozen(slots=True)
class Refused:
    kind: RefusalKind
    http_status: int | None
    code: int | None
    message: str

    def __str__(self) -> str:
        return _describe(self.kind, self.http_status, self.code, self.message)


@attrs.frozen(slots=True)
class Unknown:
    kind: UnknownKind
    http_status: int | None
    code: int | None
    message: str

    def __str__(self) -> str:
        return _describe(self.kind, self.http_status, self.code, self.message)


def _describe(kind: str, status: int | None, code: int | None, message: str) -> str:
    parts = [kind]
    if status is not None:
        parts.append(f"HTTP {status}")
    if code is not None:
        parts.append(str(code))
    if message:
        parts.append(message)
    return " ".join(parts)


@attrs.frozen(slots=True)
class Accepted:
    """The venue has the order. ``status`` is None for an ACK response (look it up or wait
    for the user data stream); ``fills`` is empty unless the response type was FULL."""

    symbol: str
    order_id: int
    client_order_id: str
    transact_time_ms: int
    status: str | None
    side: Literal["buy", "sell"] | None
    orig_qty: Decimal | None
    executed_qty: Decimal | None
    cumulative_quote_qty: Decimal | None
    fills: tuple[VenueFill, ...]
    expiry_reason: str | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def working(self) -> bool:
        """Still able to fill. An unrecognised status counts as working: the order keeps its
        reservations until a recognised one arrives."""
        return not self.terminal


NewOrderOutcome = Accepted | Refused | Unknown
_Ok = TypeVar("_Ok")
_No = TypeVar("_No")


# --- body parsing -------------------------------------------------------------------------------


def _decode(body: object) -> object:
    """The JSON value of a body; None when it is not JSON."""
    if isinstance(body, bytes | bytearray | memoryview | str):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    return body


def venue_error(body: object) -> VenueErrorBody | None:
    """The venue's ``{"code": -1121, "msg": "Invalid symbol."}``, if that is what ``body`` is."""
    data = _decode(body)
    if not isinstance(data, Mapping):
        return None
    code, msg = data.get("code"), data.get("msg")
    if type(code) is not int or not isinstance(msg, str):
        return None
    return VenueErrorBody(code, msg)


def _unreadable(exc: Exception) -> str:
    what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
    return f"unreadable response: {what}"[:200]


def _opt_size(data: Mapping[str, Any], field: str) -> Decimal | None:
    value = data.get(field)
    return None if value is None else size(value, field)


def _side(value: object) -> Literal["buy", "sell"]:
    if value == "BUY":
        return "buy"
    if value == "SELL":
        return "sell"
    raise DecodeError(f"side: expected BUY or SELL, got {value!r:.60}")


def _opt_side(value: object) -> Literal["buy", "sell"] | None:
    return None if value is None else _side(value)


def _fill(
    item: object, *, symbol: str, order_id: int, client_order_id: str, side: str, time_ms: int
) -> VenueFill:
    f = expect_dict(item, "fill")
    asset = f.get("commissionAsset")
    return VenueFill(
        symbol=symbol,
        trade_id=str(expect_int(f["tradeId"], "tradeId")),
        order_id=str(order_id),
        client_order_id=client_order_id,
        side=_side(side),
        price=size(f["price"], "fill price"),
        quantity=size(f["qty"], "fill qty"),
        commission=size(f["commission"], "commission"),
        commission_asset=None if asset is None else expect_str(asset, "commissionAsset"),
        time_ms=time_ms,
        maker=None,
        source="response",
    )


def _accepted(data: object, client_order_id: str) -> Accepted:
    d = expect_dict(data, "order response")
    symbol = expect_str(d["symbol"], "symbol")
    order_id = expect_int(d["orderId"], "orderId")
    answered_id = expect_str(d["clientOrderId"], "clientOrderId")
    if answered_id != client_order_id:
        raise DecodeError(f"response is for client id {answered_id!r}, not {client_order_id!r}")
    time_ms = expect_int(d["transactTime"], "transactTime")
    status = d.get("status")
    side = d.get("side")
    fills = tuple(
        _fill(
            item,
            symbol=symbol,
            order_id=order_id,
            client_order_id=client_order_id,
            side=expect_str(side, "side"),
            time_ms=time_ms,
        )
        for item in expect_list(d.get("fills", []), "fills")
    )
    expiry = d.get("expiryReason")
    return Accepted(
        symbol=symbol,
        order_id=order_id,
        client_order_id=client_order_id,
        transact_time_ms=time_ms,
        status=None if status is None else expect_str(status, "status"),
        side=_opt_side(side),
        orig_qty=_opt_size(d, "origQty"),
        executed_qty=_opt_size(d, "executedQty"),
        cumulative_quote_qty=_opt_size(d, "cummulativeQuoteQty"),
        fills=fills,
        expiry_reason=None if expiry is None else expect_str(expiry, "expiryReason"),
    )


# --- classification -----------------------------------------------------------------------------

_AUTH_CODES = frozenset({UNAUTHORIZED, INVALID_SIGNATURE, BAD_API_KEY_FMT, REJECTED_MBX_KEY})
_RATE_CODES = frozenset({TOO_MANY_REQUESTS, TOO_MANY_ORDERS})
_PARAMETER_CODES = frozenset({UNKNOWN_ORDER_COMPOSITION, UNSUPPORTED_OPERATION})
_NOTIONAL_FAILURES = ("Filter failure: NOTIONAL", "Filter failure: MIN_NOTIONAL")


def _common_refusal(code: int, msg: str) -> RefusalKind | None:
    """The refusals every signed order endpoint shares (request rejected before processing)."""
    if code in _AUTH_CODES:
        return RefusalKind.AUTH
    if code == INVALID_TIMESTAMP:
        return RefusalKind.TIMESTAMP
    if code in _RATE_CODES:
        return RefusalKind.RATE_LIMIT
    if -1199 <= code <= -1100 or code in _PARAMETER_CODES:
        return RefusalKind.PARAMETER
    if code == INVALID_MESSAGE:
        if msg.strip() in _NOTIONAL_FAILURES:
            return RefusalKind.MIN_NOTIONAL
        return RefusalKind.FILTER
    return None


def _new_order_refusal(code: int, msg: str) -> RefusalKind | None:
    kind = _common_refusal(code, msg)
    if kind is not None or code != NEW_ORDER_REJECTED:
        return kind
    text = msg.strip()
    if text == "Account has insufficient balance for requested action.":
        return RefusalKind.INSUFFICIENT_BALANCE
    if text == "Market is closed.":
        return RefusalKind.MARKET_CLOSED
    return RefusalKind.VENUE_REJECTED


def _gateway_refusal(status: int) -> RefusalKind | None:
    if status in (429, 418):
        return RefusalKind.RATE_LIMIT
    if status == 403:
        return RefusalKind.WAF
    return None


def _classify(
    status: int,
    body: object,
    success: Callable[[object], _Ok],
    refused: Callable[[RefusalKind, int | None, int | None, str], _No],
    by_code: Callable[[int, str, int, str], Unknown | RefusalKind | None],
) -> _Ok | _No | Unknown:
    """What every trading endpoint shares: 5xx and unreadable success are unknown, the
    gateway's 403/418/429 refuse, anything but a 4xx with a venue error is unknown; the
    endpoint's own ``by_code(code, msg, status, raw_msg)`` decides the rest (a
    ``RefusalKind`` refuses, None is unknown)."""
    error = venue_error(body)
    code = None if error is None else error.code
    msg = "" if error is None else error.msg
    if status >= 500:
        return Unknown(UnknownKind.SERVER_ERROR, status, code, msg)
    gateway = _gateway_refusal(status)
    if gateway is not None:
        return refused(gateway, status, code, msg)
    if 200 <= status < 300:
        try:
            return success(_decode(body))
        except FOREIGN_ERRORS as exc:  # DecodeError is a ValueError
            return Unknown(UnknownKind.MALFORMED_SUCCESS, status, None, _unreadable(exc))
    if not 400 <= status < 500 or error is None:
        return Unknown(UnknownKind.UNRECOGNISED, status, code, msg)
    decided = by_code(error.code, msg.strip(), status, msg)
    if decided is None:
        return Unknown(UnknownKind.UNRECOGNISED, status, code, msg)
    if isinstance(decided, Unknown):
        return decided
    return refused(decided, status, code, msg)


def _new_order_by_code(code: int, text: str, status: int, msg: str) -> Unknown | RefusalKind | None:
    if code == UNEXPECTED_RESP:
        return Unknown(UnknownKind.UNEXPECTED_RESPONSE, status, code, msg)
    if code == TIMEOUT:
        return Unknown(UnknownKind.VENUE_TIMEOUT, status, code, msg)
    if code == NEW_ORDER_REJECTED and text == DUPLICATE_ORDER_MSG:
        return Unknown(UnknownKind.DUPLICATE_ID, status, code, msg)
    return _new_order_refusal(code, msg)


def classify_new_order(status: int, body: object, *, client_order_id: str) -> NewOrderOutcome:
    """The outcome of ``POST /api/v3/order`` sent with ``newClientOrderId=client_order_id``."""
    return _classify(
        status, body, lambda data: _accepted(data, client_order_id), Refused, _new_order_by_code
    )


def classify_no_response(*, request_sent: bool, detail: str) -> Refused | Unknown:
    """No answer. ``request_sent`` False only when no byte of the request can have left."""
    if request_sent:
        return Unknown(UnknownKind.NO_RESPONSE, None, None, detail)
    return Refused(RefusalKind.NOT_SENT, None, None, detail)


# --- cancel -------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Cancelled:
    """The venue cancelled the order; ``executed_qty`` of it had filled before."""

    symbol: str
    order_id: int
    client_order_id: str  # the order's own id (``origClientOrderId``)
    status: str
    executed_qty: Decimal
    cumulative_quote_qty: Decimal | None


@attrs.frozen(slots=True)
class CancelRefused:
    """Nothing was cancelled. ``not_open``: the order is not open (look it up)."""

    kind: RefusalKind
    http_status: int | None
    code: int | None
    message: str


def _cancelled(data: object, client_order_id: str) -> Cancelled:
    d = expect_dict(data, "cancel response")
    answered = expect_str(d["origClientOrderId"], "origClientOrderId")
    if answered != client_order_id:
        raise DecodeError(f"cancel response is for {answered!r}, not {client_order_id!r}")
    return Cancelled(
        symbol=expect_str(d["symbol"], "symbol"),
        order_id=expect_int(d["orderId"], "orderId"),
        client_order_id=answered,
        status=expect_str(d["status"], "status"),
        executed_qty=size(d["executedQty"], "executedQty"),
        cumulative_quote_qty=_opt_size(d, "cummulativeQuoteQty"),
    )


def _cancel_by_code(code: int, text: str, status: int, msg: str) -> RefusalKind | None:
    if code == CANCEL_REJECTED:
        return RefusalKind.NOT_OPEN if text == UNKNOWN_ORDER_MSG else RefusalKind.VENUE_REJECTED
    return _common_refusal(code, msg)


def classify_cancel(
    status: int, body: object, *, client_order_id: str
) -> Cancelled | CancelRefused | Unknown:
    """The outcome of ``DELETE /api/v3/order`` by ``origClientOrderId``."""
    return _classify(
        status, body, lambda data: _cancelled(data, client_order_id), CancelRefused, _cancel_by_code
    )


# --- query --------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OrderSnapshot:
    """``GET /api/v3/order``: the order as the venue has it now."""

    symbol: str
    order_id: int
    client_order_id: str
    side: Literal["buy", "sell"]
    order_type: str
    status: str
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cumulative_quote_qty: Decimal | None
    time_ms: int | None
    update_time_ms: int | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@attrs.frozen(slots=True)
class OrderNotFound:
    """``-2013`` "Order does not exist.": only trusted as "never placed" through
    ``UnknownOrderResolution`` (the venue's reads lag its writes)."""

    message: str


@attrs.frozen(slots=True)
class OrderArchived:
    """``-2026``: the order existed, was cancelled or expired with nothing executed, long ago."""

    message: str


@attrs.frozen(slots=True)
class QueryFailed:
    """The lookup itself failed: it says nothing about the order."""

    http_status: int | None
    code: int | None
    message: str


QueryOutcome = OrderSnapshot | OrderNotFound | OrderArchived | QueryFailed


def _snapshot(data: object, client_order_id: str) -> OrderSnapshot:
    d = expect_dict(data, "order")
    answered = expect_str(d["clientOrderId"], "clientOrderId")
    if answered != client_order_id:
        raise DecodeError(f"order is {answered!r}, not {client_order_id!r}")
    time_ms, update_ms = d.get("time"), d.get("updateTime")
    return OrderSnapshot(
        symbol=expect_str(d["symbol"], "symbol"),
        order_id=expect_int(d["orderId"], "orderId"),
        client_order_id=answered,
        side=_side(d["side"]),
        order_type=expect_str(d["type"], "type"),
        status=expect_str(d["status"], "status"),
        price=size(d["price"], "price"),
        orig_qty=size(d["origQty"], "origQty"),
        executed_qty=size(d["executedQty"], "executedQty"),
        cumulative_quote_qty=_opt_size(d, "cummulativeQuoteQty"),
        time_ms=None if time_ms is None else expect_int(time_ms, "time"),
        update_time_ms=None if update_ms is None else expect_int(update_ms, "updateTime"),
    )


def classify_query(status: int, body: object, *, client_order_id: str) -> QueryOutcome:
    """The answer to ``GET /api/v3/order`` by ``origClientOrderId``."""
    error = venue_error(body)
    if 200 <= status < 300:
        try:
            return _snapshot(_decode(body), client_order_id)
        except FOREIGN_ERRORS as exc:
            return QueryFailed(status, None, _unreadable(exc))
    if error is not None and 400 <= status < 500:
        if error.code == NO_SUCH_ORDER:
            return OrderNotFound(error.msg)
        if error.code == ORDER_ARCHIVED:
            return OrderArchived(error.msg)
    return QueryFailed(
        status, None if error is None else error.code, "" if error is None else error.msg
    )
