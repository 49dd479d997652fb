"""The Binance Spot user data stream over the WebSocket API (pure: frames in, events out).

The user data stream now lives on the WebSocket API only: a connection sends
``userDataStream.subscribe.signature`` (``subscribe_request``: ``apiKey``, ``recvWindow``,
``timestamp`` and a signature over them sorted by name; any key type, no session logon) and
then receives the account's events wrapped as ``{"subscriptionId": n, "event": {...}}``.

Decisions:

* ``parse_user_stream_frame`` returns an ``ExecutionEvent`` for ``executionReport``, a
  ``StreamNotice`` for ``eventStreamTerminated`` and ``serverShutdown`` (both mean: this
  connection stops delivering, open a new one and reconcile what was missed), and None for
  everything else: balance events, order-list events, and request responses (frames with an
  ``id``), which the client routes itself. A bare event (no wrapper) is accepted too.
* **Whose order.** On a cancellation, ``c`` is the *cancel request's* client id and ``C`` the
  cancelled order's; ``client_order_id`` is therefore ``C`` when it is set, else ``c``: always
  the id we placed the order with.
* **Fills.** An ``executionReport`` with execution type ``TRADE`` carries one fill: ``l`` at
  ``L``, commission ``n`` in ``N``, trade id ``t`` (``-1`` on events that are not trades).
  ``ExecutionEvent.fill()`` makes it a ``VenueFill`` with the same key a FULL order response or
  ``myTrades`` gives the same trade, so ``FillDeduplicator`` books it once. ``z`` and ``Z``
  (cumulative quantity and quote) let a consumer check that no fill was missed.
* Malformed events raise ``DecodeError``: an event we cannot read may be a fill, so it is
  never silently dropped; the client counts it and reconciles.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs
import orjson

from actors.errors import DecodeError
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    decode_failure,
    expect_bool,
    expect_dict,
    expect_int,
    expect_str,
    size,
)
from actors.venues.binance.responses import TERMINAL_STATUSES
from actors.venues.binance.signing import DEFAULT_RECV_WINDOW_MS, Signer, sign_ws_params
from actors.venues.fills import VenueFill

__all__ = [
    "SUBSCRIBE_METHOD",
    "ExecutionEvent",
    "StreamNotice",
    "parse_user_stream_frame",
    "subscribe_request",
]

SUBSCRIBE_METHOD = "userDataStream.subscribe.signature"
_NOTICES = frozenset({"eventStreamTerminated", "serverShutdown"})


def subscribe_request(
    signer: Signer,
    *,
    request_id: str | int,
    timestamp_ms: int,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> dict[str, Any]:
    """The signed subscription request (it holds the API key: do not log it)."""
    params = sign_ws_params(
        signer,
        {"apiKey": signer.api_key(), "recvWindow": recv_window_ms, "timestamp": timestamp_ms},
    )
    return {"id": request_id, "method": SUBSCRIBE_METHOD, "params": params}


@attrs.frozen(slots=True)
class StreamNotice:
    event: str  # eventStreamTerminated | serverShutdown
    event_time_ms: int | None


@attrs.frozen(slots=True)
class ExecutionEvent:
    symbol: str
    client_order_id: str  # the id the order was placed with (``C`` on a cancel, else ``c``)
    order_id: int
    side: Literal["buy", "sell"]
    order_type: str
    execution_type: str  # NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED, TRADE_PREVENTION
    status: str  # the order's status after this event
    reject_reason: str
    order_qty: Decimal
    order_price: Decimal
    last_qty: Decimal
    last_price: Decimal
    cumulative_qty: Decimal
    cumulative_quote_qty: Decimal
    commission: Decimal
    commission_asset: str | None
    trade_id: int | None  # None when the event is not a trade (``t`` = -1)
    event_time_ms: int
    transaction_time_ms: int
    maker: bool
    expiry_reason: str | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def fill(self) -> VenueFill | None:
        """The trade this event reports, if it reports one."""
        if self.execution_type != "TRADE" or self.trade_id is None or self.last_qty <= 0:
            return None
        return VenueFill(
            symbol=self.symbol,
            trade_id=str(self.trade_id),
            order_id=str(self.order_id),
            client_order_id=self.client_order_id,
            side=self.side,
            price=self.last_price,
            quantity=self.last_qty,
            commission=self.commission,
            commission_asset=self.commission_asset,
            time_ms=self.transaction_time_ms,
            maker=self.maker,
            source="stream",
        )


def _execution_event(ev: Mapping[str, Any]) -> ExecutionEvent:
    side = ev["S"]
    if side not in ("BUY", "SELL"):
        raise DecodeError(f"executionReport S: expected BUY or SELL, got {side!r:.60}")
    original = ev.get("C")
    own = expect_str(ev["c"], "executionReport c")
    if original is not None and expect_str(original, "executionReport C"):
        own = original
    trade_id = expect_int(ev["t"], "executionReport t")
    asset = ev.get("N")
    expiry = ev.get("eR")
    return ExecutionEvent(
        symbol=expect_str(ev["s"], "executionReport s"),
        client_order_id=own,
        order_id=expect_int(ev["i"], "executionReport i"),
        side="buy" if side == "BUY" else "sell",
        order_type=expect_str(ev["o"], "executionReport o"),
        execution_type=expect_str(ev["x"], "executionReport x"),
        status=expect_str(ev["X"], "executionReport X"),
        reject_reason=expect_str(ev.get("r", "NONE"), "executionReport r"),
        order_qty=size(ev["q"], "executionReport q"),
        order_price=size(ev["p"], "executionReport p"),
        last_qty=size(ev["l"], "executionReport l"),
        last_price=size(ev["L"], "executionReport L"),
        cumulative_qty=size(ev["z"], "executionReport z"),
        cumulative_quote_qty=size(ev["Z"], "executionReport Z"),
        commission=size(ev["n"], "executionReport n"),
        commission_asset=None if asset is None else expect_str(asset, "executionReport N"),
        trade_id=None if trade_id < 0 else trade_id,
        event_time_ms=expect_int(ev["E"], "executionReport E"),
        transaction_time_ms=expect_int(ev["T"], "executionReport T"),
        maker=expect_bool(ev["m"], "executionReport m"),
        expiry_reason=None if expiry is None else expect_str(expiry, "executionReport eR"),
    )


def _parse(frame: object) -> ExecutionEvent | StreamNotice | None:
    data = orjson.loads(frame) if isinstance(frame, bytes | str) else frame
    d = expect_dict(data, "user data frame")
    if "event" in d:
        ev = expect_dict(d["event"], "user data event")
    elif "e" in d:
        ev = d
    else:
        return None
    kind = ev.get("e")
    if kind == "executionReport":
        return _execution_event(ev)
    if kind in _NOTICES:
        time_ms = ev.get("E")
        return StreamNotice(str(kind), time_ms if type(time_ms) is int else None)
    return None


def parse_user_stream_frame(
    frame: bytes | str | Mapping[str, Any],
) -> ExecutionEvent | StreamNotice | None:
    """One WebSocket API frame from a user data subscription; ``DecodeError`` if malformed."""
    try:
        return _parse(frame)
    except DecodeError:
        raise
    except FOREIGN_ERRORS as exc:
        raise decode_failure("binance user data", exc) from None
