"""The vocabulary between a bot's core (``core.py``, pure) and its shell (``bot.py``, I/O).

The core answers each event with a list of actions; the shell performs them in order, awaiting
each. Some actions have a completion the shell feeds back as an event (``RecordIntent`` ->
``IntentRecorded``, ``RecordFill`` -> ``FillRecorded``); the venue calls (``ShowMarket``,
``Submit``, ``Cancel``, ``Reconcile``) are followed by the execution reports they produced.
Completions and reports are handled at once, depth first, so their own actions (``Submit``
after ``IntentRecorded``) run before the rest of the list. When the core has paused in the
middle of an event to see what the venue did (``BotCore.suspended``), the shell sends
``CONTINUE`` once the list is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from actors.bots.events import BotEvent
from actors.bots.executor import ExecutionReport
from actors.journal.store import FillRecord, OrderIntent, OrderRecord, RefusalRecord
from actors.messages import FeedState, Lagged, Ticker, Trade

# --- events into the core (besides market data and execution reports) ---------------------------


@attrs.frozen(slots=True)
class SetPaused:
    """The pause/resume command: a paused bot runs its protection but asks no strategy.
    ``cancel_open`` (the operator's halt) also cancels every resting order."""

    paused: bool
    cancel_open: bool = False


@attrs.frozen(slots=True)
class IntentRecorded:
    intent: OrderIntent


@attrs.frozen(slots=True)
class FillRecorded:
    fill: FillRecord
    final: bool


@attrs.frozen(slots=True)
class Continue:
    pass


CONTINUE = Continue()

CoreEvent = (
    Ticker
    | Trade
    | FeedState
    | Lagged
    | SetPaused
    | IntentRecorded
    | FillRecorded
    | ExecutionReport
    | Continue
)


# --- actions out of the core ----------------------------------------------------------------------


@attrs.frozen(slots=True)
class RecordIntent:
    """Journal the intent (durable before the venue sees it); then ``IntentRecorded``."""

    intent: OrderIntent


@attrs.frozen(slots=True)
class RecordFill:
    """Journal the fill (durable before the book changes); then ``FillRecorded``."""

    fill: FillRecord
    final: bool  # the order's journal status becomes "filled", else stays "open"


@attrs.frozen(slots=True)
class RecordStatus:
    client_id: str
    status: Literal["open", "cancelled", "rejected"]
    reason: str
    ts: float


@attrs.frozen(slots=True)
class SaveState:
    """A journal state key (None deletes it). ``wait``: await the commit (commands); else
    queue it without blocking the tick, latest value wins."""

    key: str
    value: str | None
    wait: bool = False


@attrs.frozen(slots=True)
class RecordRefusals:
    """Journal counted refusals without blocking the tick (a refusal is no reason to wait)."""

    refusals: tuple[RefusalRecord, ...]


@attrs.frozen(slots=True)
class ShowMarket:
    """Show the venue a ticker the bot accepted."""

    ticker: Ticker
    now_ts: float


@attrs.frozen(slots=True)
class Submit:
    intent: OrderIntent


@attrs.frozen(slots=True)
class Cancel:
    intent: OrderIntent


@attrs.frozen(slots=True)
class Reconcile:
    order: OrderRecord


@attrs.frozen(slots=True)
class Emit:
    """Tell observers (alerts, /health), never blocking the bot."""

    event: BotEvent


LogLevel = Literal["DEBUG", "INFO", "WARNING"]


@attrs.frozen(slots=True)
class Log:
    level: LogLevel
    message: str
    fields: Mapping[str, Any] = attrs.field(factory=dict)


Action = (
    RecordIntent
    | RecordFill
    | RecordStatus
    | SaveState
    | RecordRefusals
    | ShowMarket
    | Submit
    | Cancel
    | Reconcile
    | Emit
    | Log
)
