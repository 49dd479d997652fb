"""One live order as the venue tells it, from every source, turned into one clean story (pure).

An order's news reaches us from the order response, the user data stream, lookups and the
trade list, in any order, each possibly more than once. ``TrackedOrder`` takes all of them and
emits what the bot must book, each thing exactly once and in an order the journal accepts:
fills first (each trade id once), then at most one ending.

Decisions:

* **Quantities are the venue's.** ``quantity`` is what was sent (after the venue's rounding,
  so possibly less than the journal's intent), and progress is counted in venue quantity,
  whatever the bot books (a commission paid in the base asset makes the booked size smaller).
* **A fill is final when it completes the order**: the fill that brings the booked venue
  quantity to ``quantity``. The journal marks the order filled with that fill, in one
  transaction, so a final order always has all its fills.
* **An ending waits for its fills.** A terminal status (``CANCELED``, ``EXPIRED``,
  ``REJECTED``...) with more executed than booked asks for the trade list (``NeedTrades``)
  and ends the order only once those fills are in: the journal refuses a fill for an order
  it already closed, so an ending booked early would lose the fills that came after it.
* **The venue's cumulative quantity only grows.** A lookup that lags behind the stream (the
  venue's reads trail its engine) never takes progress back.
* **Resting** is told once, for a limit order the venue holds and has not finished: the bot
  then knows it is on the book (and the journal shows it ``open``).
* **A new listener starts from the journal** (``rebase``): when the bot behind an order
  restarts while the order is still tracked, what was told to the stopped run and did not
  reach its journal is forgotten (fills the journal lacks, the resting notice), so it is told
  again to the new run, once; the trades the journal has are never told again.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

import attrs

from actors.venues.binance.responses import TERMINAL_STATUSES
from actors.venues.fills import VenueFill

__all__ = [
    "NEVER_PLACED",
    "REFUSED",
    "OrderEnded",
    "OrderInDoubt",
    "OrderRested",
    "TrackedOrder",
    "TradesNeeded",
    "VenueFillReport",
    "VenueReport",
]


@attrs.frozen(slots=True)
class VenueFillReport:
    fill: VenueFill
    final: bool


@attrs.frozen(slots=True)
class OrderRested:
    client_order_id: str


@attrs.frozen(slots=True)
class OrderEnded:
    """The order is over without (or after part of) a fill; ``status`` is the venue's
    (``CANCELED``, ``EXPIRED``, ``EXPIRED_IN_MATCH``, ``REJECTED``) or ``NEVER_PLACED``."""

    client_order_id: str
    status: str
    reason: str
    executed_qty: Decimal


@attrs.frozen(slots=True)
class OrderInDoubt:
    """The answer to the send was lost: the order may or may not be on the venue."""

    client_order_id: str
    reason: str


@attrs.frozen(slots=True)
class TradesNeeded:
    """The venue executed more of the order than the fills we hold: fetch its trades."""

    client_order_id: str
    symbol: str
    order_id: int


VenueReport = VenueFillReport | OrderRested | OrderEnded | OrderInDoubt
Out = list[VenueReport | TradesNeeded]

NEVER_PLACED = "NEVER_PLACED"  # resolution proved the request created nothing
REFUSED = "REFUSED"  # refused before the venue had it (the answer proves nothing is there)


@attrs.define
class TrackedOrder:
    client_order_id: str
    symbol: str  # native
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit"]
    quantity: Decimal  # as sent
    order_id: int | None = None
    booked_qty: Decimal = Decimal(0)
    venue_executed: Decimal = Decimal(0)
    status: str | None = None  # the venue's latest known status; None: not yet known
    reason: str = ""
    rested: bool = False
    ended: bool = False
    unknown: bool = False  # the send's outcome was lost; being resolved
    notional: Decimal = Decimal(0)  # what it can cost (for the account's working cap)
    trade_ids: set[str] = attrs.Factory(set)
    trade_qty: dict[str, Decimal] = attrs.Factory(dict)  # venue quantity by trade id
    # Trade ids the journal already booked (a restart): counted, never reported again.
    seeded: set[str] = attrs.Factory(set)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES or self.status in (NEVER_PLACED, REFUSED)

    @property
    def done(self) -> bool:
        """Nothing more will be reported: the order ended or filled completely."""
        return self.ended or self.booked_qty >= self.quantity

    def fills(self, fills: tuple[VenueFill, ...] | list[VenueFill]) -> Out:
        out: Out = []
        for fill in fills:
            if fill.trade_id in self.trade_ids or self.done:
                continue
            self.trade_ids.add(fill.trade_id)
            self.trade_qty[fill.trade_id] = fill.quantity
            self.booked_qty += fill.quantity
            self.venue_executed = max(self.venue_executed, self.booked_qty)
            if fill.trade_id in self.seeded:
                continue
            out.append(VenueFillReport(fill, final=self.booked_qty >= self.quantity))
        out += self._settle()
        return out

    def state(
        self, status: str, executed_qty: Decimal, *, order_id: int | None = None, reason: str = ""
    ) -> Out:
        """What a response, a stream event or a lookup says the order is now."""
        if order_id is not None:
            self.order_id = order_id
        self.unknown = False
        if not self.terminal:
            self.status = status
            if reason:
                self.reason = reason
        self.venue_executed = max(self.venue_executed, executed_qty)
        out: Out = []
        if (
            not self.rested
            and not self.done
            and not self.terminal
            and self.order_type == "limit"
            and status in ("NEW", "PARTIALLY_FILLED")
        ):
            self.rested = True
            out.append(OrderRested(self.client_order_id))
        out += self._settle()
        return out

    def never_placed(self, reason: str) -> Out:
        """Resolution proved the request created nothing."""
        if self.done or self.booked_qty > 0:
            return []
        self.status, self.reason, self.unknown = NEVER_PLACED, reason, False
        return self._settle()

    def refused(self, reason: str) -> Out:
        """The send was refused: nothing is on the venue."""
        self.status, self.reason, self.unknown = REFUSED, reason, False
        return self._settle()

    def rebase(self, booked_trade_ids: Iterable[str]) -> None:
        """A new listener that knows only the journal (``booked_trade_ids``): forget the fills
        told but not booked and the resting notice, so they are told again (a lookup, then the
        trade list); the booked ones count and are never told again. For an order not done."""
        booked = set(booked_trade_ids)
        for trade_id in self.trade_ids - booked - self.seeded:
            self.trade_ids.discard(trade_id)
            self.booked_qty -= self.trade_qty.pop(trade_id)
        self.seeded |= booked
        self.rested = False

    def missing_trades(self) -> TradesNeeded | None:
        if self.done or self.order_id is None or self.venue_executed <= self.booked_qty:
            return None
        return TradesNeeded(self.client_order_id, self.symbol, self.order_id)

    def _settle(self) -> Out:
        if self.done:
            return []
        if self.venue_executed > self.booked_qty:
            needed = self.missing_trades()
            return [needed] if needed is not None else []
        if not self.terminal:
            return []
        self.ended = True
        status = self.status or ""
        return [OrderEnded(self.client_order_id, status, self.reason, self.booked_qty)]
