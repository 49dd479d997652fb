"""The bot's book (balances, open positions, realized PnL) and the position monitor; pure.

Decisions:

* **Spot, long only.** A buy opens a *position* (a lot) named by the buy order's client id; a
  sell reduces lots. ``max_open_positions`` counts lots, so the default of 1 means "no adding to
  a position". A sell that names a lot (an exit placed by the monitor) reduces that lot; a sell
  that names none (a strategy's close) reduces lots oldest first.
* **Fees are paid in the quote currency** on both sides, so base sizes stay exact multiples of
  the lot size and a position can always be sold in full.
* **The book is a fold over fills.** ``apply_fill`` is the only way balances change, live and in
  ``Book.replay``, so a replayed journal gives exactly the book the running bot had.
* **PnL:** a lot's cost includes its buy fee; a sale realizes proceeds minus its fee minus the
  sold share of the cost. Realized PnL is also kept per UTC day (of the fill's time) for the daily
  loss limit. Unrealized PnL marks lots at the bid, which is what a sale would get.
* **Monitor:** stop-loss and take-profit are relative to the lot's entry price, the trailing stop
  to its high-water mark (highest bid seen since entry, restored from the journal). A lot with an
  exit in flight is skipped, so an exit is placed once. The trigger compares the bid; the exit is
  a market sell, so a gap through the stop fills at that tick's bid, not at the stop price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Literal

import attrs

from actors.bots.money import ZERO, utc_day
from actors.errors import BookError
from actors.journal.store import FillRecord

ExitReason = Literal["stop_loss", "take_profit", "trailing_stop"]


@attrs.define(slots=True)
class Lot:
    position_id: str
    size: Decimal
    entry_price: Decimal
    cost_quote: Decimal  # what the remaining size cost, buy fee included
    opened_ts: float
    hwm: Decimal  # highest bid since entry (trailing stop)
    exit_client_id: str | None = None  # an exit order in flight for this lot


@attrs.frozen(slots=True)
class ExitTrigger:
    position_id: str
    reason: ExitReason
    size: Decimal
    trigger_price: Decimal  # the level that was crossed (not the fill price)


@attrs.define
class Book:
    quote: Decimal
    base: Decimal = ZERO
    lots: dict[str, Lot] = attrs.Factory(dict)
    realized_pnl: Decimal = ZERO
    realized_by_day: dict[str, Decimal] = attrs.Factory(dict)
    fees_quote: Decimal = ZERO
    fills: int = 0
    # A lot a sell leaves smaller than this (the market's lot size) can never be sold: it is
    # dust. It leaves ``lots`` (so the bot is flat) but stays in ``base``, valued in
    # ``unrealized`` at its remaining cost. Only a live venue makes dust: a commission taken
    # in the base asset leaves a bought size that is not a multiple of the lot.
    dust_below: Decimal = ZERO
    dust_base: Decimal = ZERO
    dust_cost: Decimal = ZERO

    @classmethod
    def replay(
        cls,
        initial_quote: Decimal,
        fills: Iterable[FillRecord],
        hwm: Mapping[str, Decimal] | None = None,
        *,
        dust_below: Decimal = ZERO,
    ) -> Book:
        book = cls(quote=initial_quote, dust_below=dust_below)
        for fill in fills:
            book.apply_fill(fill)
        for position_id, mark in (hwm or {}).items():
            lot = book.lots.get(position_id)
            if lot is not None and mark > lot.hwm:
                lot.hwm = mark
        return book

    def apply_fill(self, fill: FillRecord) -> Decimal:
        """Book one fill; returns the PnL it realized (zero for a buy)."""
        if fill.size <= 0 or fill.price <= 0 or fill.fee < 0:
            raise BookError(f"invalid fill {fill!r}")
        notional = fill.price * fill.size
        self.fills += 1
        self.fees_quote += fill.fee
        if fill.side == "buy":
            self.quote -= notional + fill.fee
            self.base += fill.size
            position_id = fill.position_id or fill.client_id
            lot = self.lots.get(position_id)
            if lot is None:
                self.lots[position_id] = Lot(
                    position_id=position_id,
                    size=fill.size,
                    entry_price=fill.price,
                    cost_quote=notional + fill.fee,
                    opened_ts=fill.ts,
                    hwm=fill.price,
                )
            else:  # a second fill of the same (partially filled) buy order
                lot.cost_quote += notional + fill.fee
                lot.size += fill.size
                lot.entry_price = (lot.entry_price * (lot.size - fill.size) + notional) / lot.size
            return ZERO
        if fill.size > self.base:
            raise BookError(f"sell of {fill.size} exceeds the {self.base} held ({fill.client_id})")
        self.quote += notional - fill.fee
        self.base -= fill.size
        realized = self._reduce_lots(fill)
        self.realized_pnl += realized
        day = utc_day(fill.ts)
        self.realized_by_day[day] = self.realized_by_day.get(day, ZERO) + realized
        return realized

    def realized_by(self, fill: FillRecord) -> Decimal | None:
        """The PnL booking ``fill`` would realize, without booking it: a fill is journaled (with
        this figure) before it changes the book. None: the book could not apply it (booking it
        raises ``BookError``)."""
        if fill.side == "buy":
            return ZERO
        if fill.size > self.base or fill.size <= 0 or fill.price <= 0 or fill.fee < 0:
            return None
        try:
            return self._plan_reduce(fill)[1]
        except BookError:
            return None

    def _plan_reduce(self, fill: FillRecord) -> tuple[list[tuple[Lot, Decimal, Decimal]], Decimal]:
        """What a sell takes from which lot, ``(lot, size, cost)`` each, and the PnL it
        realizes; changes nothing, so ``realized_by`` and ``_reduce_lots`` share the arithmetic
        and cannot disagree."""
        if fill.position_id is not None:
            if fill.position_id not in self.lots:
                raise BookError(f"sell {fill.client_id} names unknown position {fill.position_id}")
            order = [self.lots[fill.position_id]]
        else:
            order = list(self.lots.values())
        remaining = fill.size
        realized = ZERO
        takes = []
        for lot in order:
            if remaining <= 0:
                break
            take = min(remaining, lot.size)
            if take == lot.size:
                cost = lot.cost_quote
            else:
                cost = lot.cost_quote * take / lot.size
            fee = fill.fee if take == fill.size else fill.fee * take / fill.size
            realized += fill.price * take - fee - cost
            takes.append((lot, take, cost))
            remaining -= take
        if remaining > 0:
            raise BookError(f"sell {fill.client_id} exceeds position {fill.position_id}")
        return takes, realized

    def _reduce_lots(self, fill: FillRecord) -> Decimal:
        takes, realized = self._plan_reduce(fill)
        for lot, take, cost in takes:
            lot.size -= take
            lot.cost_quote -= cost
            if lot.size == 0:
                del self.lots[lot.position_id]
            elif lot.size < self.dust_below and lot.exit_client_id in (None, fill.client_id):
                self.dust_base += lot.size
                self.dust_cost += lot.cost_quote
                del self.lots[lot.position_id]
            elif lot.exit_client_id == fill.client_id:
                lot.exit_client_id = None  # a partial exit: the monitor may exit the rest later
        return realized

    # views

    @property
    def size(self) -> Decimal:
        return sum((lot.size for lot in self.lots.values()), ZERO)

    def unrealized(self, bid: Decimal | None) -> Decimal:
        if bid is None:
            return ZERO
        lots = sum((bid * lot.size - lot.cost_quote for lot in self.lots.values()), ZERO)
        return lots + bid * self.dust_base - self.dust_cost if self.dust_base else lots

    @property
    def sellable(self) -> Decimal:
        """Base that orders may sell: all of it but the dust."""
        return self.base - self.dust_base

    def realized_on(self, day: str) -> Decimal:
        return self.realized_by_day.get(day, ZERO)

    def entry_price(self) -> Decimal | None:
        size = self.size
        if size == 0:
            return None
        return sum((lot.entry_price * lot.size for lot in self.lots.values()), ZERO) / size


@attrs.frozen
class ExitRules:
    """Exit thresholds as fractions (``0.05`` for 5 %); None turns a rule off."""

    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None


def update_high_water(lots: Iterable[Lot], bid: Decimal) -> list[Lot]:
    """Raise each lot's high-water mark to ``bid``; returns the lots whose mark moved."""
    moved = []
    for lot in lots:
        if bid > lot.hwm:
            lot.hwm = bid
            moved.append(lot)
    return moved


def check_exits(lots: Iterable[Lot], bid: Decimal, rules: ExitRules) -> list[ExitTrigger]:
    triggers = []
    for lot in lots:
        if lot.exit_client_id is not None:
            continue
        if rules.stop_loss is not None:
            level = lot.entry_price * (1 - rules.stop_loss)
            if bid <= level:
                triggers.append(ExitTrigger(lot.position_id, "stop_loss", lot.size, level))
                continue
        if rules.take_profit is not None:
            level = lot.entry_price * (1 + rules.take_profit)
            if bid >= level:
                triggers.append(ExitTrigger(lot.position_id, "take_profit", lot.size, level))
                continue
        if rules.trailing_stop is not None:
            level = lot.hwm * (1 - rules.trailing_stop)
            if bid <= level:
                triggers.append(ExitTrigger(lot.position_id, "trailing_stop", lot.size, level))
    return triggers
