"""The journal's records: what callers write and read back, the same for every backend.

Decisions:

* **Decimals travel as Decimals** and are stored as their exact text by every backend (see
  ``store.py`` and ``postgres.py``), so a value reads back with the digits it was written with.
* **The owner epoch is not part of a record**: it is the writer's, passed beside the record
  (``owner_epoch=``), so the same fill or intent means the same thing whoever wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs

TERMINAL_STATUSES: frozenset[str] = frozenset({"filled", "cancelled", "rejected"})
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

Op = tuple[str, tuple[Any, ...]]
WRITE_OPS = frozenset(
    {
        "record_intent",
        "record_fill",
        "record_status",
        "save_state",
        "load_bot",
        "record_refusals",
        "claim",
    }
)


@attrs.frozen(slots=True)
class OrderIntent:
    """An order as decided, journaled before it is sent. ``position_id`` names the lot an exit
    closes (None: a buy, or a strategy sell that closes lots oldest first)."""

    client_id: str
    bot_id: str
    seq: int
    symbol: str
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit"]
    size: Decimal
    price: Decimal | None
    tag: str
    position_id: str | None
    created_ts: float

    def __attrs_post_init__(self) -> None:
        if not CLIENT_ID_RE.match(self.client_id):
            raise ValueError(
                f"client order id must match [A-Za-z0-9_-]{{1,36}}, got {self.client_id!r}"
            )


@attrs.frozen(slots=True)
class OrderRecord:
    intent: OrderIntent
    status: str
    status_reason: str
    filled_size: Decimal


@attrs.frozen(slots=True)
class FillRecord:
    client_id: str
    bot_id: str
    side: Literal["buy", "sell"]
    price: Decimal
    size: Decimal
    fee: Decimal  # in the quote currency
    position_id: str | None  # buy: None (the lot is named by client_id); sell: the lot closed
    ts: float
    venue_fill_id: str | None = None  # live: "<native symbol>:<trade id>"; paper: None
    # What booking this fill realized (zero for a buy); None: journaled before migration 3, or
    # a fill the book could not apply
    realized_pnl: Decimal | None = None


@attrs.frozen(slots=True)
class RefusalRecord:
    """``count`` orders of one bot that risk refused for ``reason`` (and the venue's
    ``venue_rejected``), all tagged ``tag``, between ``first_ts`` and ``last_ts``. A bot can be
    refused on every tick (``rate_limit``, ``stale_price``), so it writes one of these per
    reason and tag per window instead of one row per refusal."""

    bot_id: str
    reason: str
    tag: str
    first_ts: float
    last_ts: float
    count: int


@attrs.frozen(slots=True)
class BotRecord:
    """Everything a bot needs to rebuild itself, read in one transaction."""

    bot_id: str
    initial_quote: Decimal
    fills: tuple[FillRecord, ...]
    open_orders: tuple[OrderRecord, ...]  # status "open": resting at the venue
    unresolved: tuple[OrderRecord, ...]  # status "intent": journaled, outcome unknown
    state: Mapping[str, str]
    next_seq: int
    orders_count: int
