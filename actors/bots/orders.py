"""The bot's working orders: journaled, sent, and not yet final; pure.

An order is *working* from the moment its intent is journaled and sent until the venue reports
it filled, cancelled or rejected. While working it holds what it may still take: a buy reserves
quote (its size at its limit price, plus the fee), a sell commits base. ``status`` says what the
venue last told: ``sent`` (no answer yet), ``open`` (resting in the book) or ``unknown`` (the
answer was lost, or the journal left the intent unresolved at a restart).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import attrs

from actors.bots.money import ZERO
from actors.journal.store import OrderIntent

WorkingStatus = Literal["sent", "open", "unknown"]


@attrs.define(slots=True)
class WorkingOrder:
    intent: OrderIntent
    status: WorkingStatus
    cancel_reason: str | None = None  # set when the bot asked the venue to cancel it, and why


@attrs.define
class WorkingOrders:
    _by_id: dict[str, WorkingOrder] = attrs.field(factory=dict, alias="_by_id")

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, client_id: str) -> WorkingOrder | None:
        return self._by_id.get(client_id)

    def add(self, intent: OrderIntent, status: WorkingStatus) -> None:
        self._by_id[intent.client_id] = WorkingOrder(intent, status)

    def pop(self, client_id: str) -> WorkingOrder | None:
        return self._by_id.pop(client_id, None)

    def any_resting(self) -> bool:
        return bool(self._by_id) and any(o.status == "open" for o in self._by_id.values())

    def resting(self) -> list[WorkingOrder]:
        return [o for o in self._by_id.values() if o.status == "open"]

    def resting_sells(self) -> list[WorkingOrder]:
        return [o for o in self._by_id.values() if o.status == "open" and o.intent.side == "sell"]

    def buys(self) -> int:
        return sum(1 for o in self._by_id.values() if o.intent.side == "buy")

    def buy_quote(self) -> Decimal:
        """What the working buys would cost at their limit prices (market buys count zero)."""
        return sum(
            (
                o.intent.size * (o.intent.price or ZERO)
                for o in self._by_id.values()
                if o.intent.side == "buy"
            ),
            ZERO,
        )

    def position_terms(self) -> tuple[int, Decimal]:
        """``(buys(), sell_base(unnamed_only=True))`` in one pass (the position view's)."""
        buys, sells = 0, ZERO
        for o in self._by_id.values():
            if o.intent.side == "buy":
                buys += 1
            elif not o.intent.position_id:
                sells += o.intent.size
        return buys, sells

    def sell_base(self, *, unnamed_only: bool = False) -> Decimal:
        """Base committed to working sells; ``unnamed_only``: only those closing no named lot
        (a strategy's sells, as opposed to the monitor's exits)."""
        return sum(
            (
                o.intent.size
                for o in self._by_id.values()
                if o.intent.side == "sell" and not (unnamed_only and o.intent.position_id)
            ),
            ZERO,
        )
