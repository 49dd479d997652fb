"""A synchronous stand-in for the bot's shell, to test ``BotCore`` with plain sync tests.

``CoreHarness`` drives a real ``BotCore`` with the real paper venue exactly as ``bot.py``
drives it (actions in order; completions and reports depth first; ``CONTINUE`` after a pause),
but performs journal actions by appending them to ``ledger``: no SQLite, no threads, no Trio.
Time is whatever the test sets (``clock`` for the wall clock, ``at`` for the order-rate clock).
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from actors.bots.actions import (
    CONTINUE,
    Action,
    Cancel,
    CoreEvent,
    Emit,
    FillRecorded,
    IntentRecorded,
    Log,
    Reconcile,
    RecordFill,
    RecordIntent,
    RecordStatus,
    SaveState,
    ShowMarket,
    Submit,
)
from actors.bots.config import BotConfig
from actors.bots.core import BotCore, Now
from actors.bots.events import BotEvent
from actors.bots.executor import ExecutionReport, PaperVenue, Pricing
from actors.bots.strategy import load_strategy
from actors.bots.views import BotStatistics, bot_statistics
from actors.journal.store import BotRecord
from tests.bots.helpers import WallClock


def fresh_record(config: BotConfig, **changes: Any) -> BotRecord:
    fields: dict[str, Any] = {
        "bot_id": config.id,
        "initial_quote": config.paper.quote_balance,
        "fills": (),
        "open_orders": (),
        "unresolved": (),
        "state": {},
        "next_seq": 1,
        "orders_count": 0,
    }
    fields.update(changes)
    return BotRecord(**fields)


class CoreHarness:
    def __init__(
        self,
        config: BotConfig,
        *,
        record: BotRecord | None = None,
        clock: WallClock | None = None,
        venue: PaperVenue | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or WallClock()
        self.at = 0.0
        pricing = Pricing(config.paper, config.market)
        self.venue = venue or PaperVenue(pricing, config.risk.max_price_age_s)
        self.ledger: list[Action] = []  # journal writes, in the order performed
        self.emitted: list[BotEvent] = []
        self.logs: list[Log] = []
        self._reports: deque[ExecutionReport] = deque()
        self.core, actions = BotCore.restore(
            config,
            load_strategy(config),
            pricing,
            record or fresh_record(config),
            self.now(),
        )
        self.perform_all(actions)

    def now(self) -> Now:
        return Now(self.clock.now, self.at)

    def send(self, *events: CoreEvent) -> None:
        for event in events:
            self.drive(event)

    def drive(self, event: CoreEvent) -> None:
        actions = self.core.handle(event, self.now())
        while True:
            self.perform_all(actions)
            if not self.core.suspended:
                return
            actions = self.core.handle(CONTINUE, self.now())

    def perform_all(self, actions: list[Action]) -> None:
        for action in actions:
            self.perform(action)

    def perform(self, action: Action) -> None:
        match action:
            case RecordIntent():
                self.ledger.append(action)
                self.follow(IntentRecorded(action.intent))
            case RecordFill():
                self.ledger.append(action)
                self.follow(FillRecorded(action.fill, action.final))
            case RecordStatus() | SaveState():
                self.ledger.append(action)
            case ShowMarket():
                self.venue_said(self.venue.observe(action.ticker, action.now_ts))
            case Submit():
                self.venue_said(self.venue.submit(action.intent, self.clock.now))
            case Cancel():
                self.venue_said(self.venue.cancel(action.intent))
            case Reconcile():
                self.venue_said(self.venue.reconcile(action.order))
            case Emit():
                self.emitted.append(action.event)
            case Log():
                self.logs.append(action)

    def follow(self, event: CoreEvent) -> None:
        self.perform_all(self.core.handle(event, self.now()))

    def venue_said(self, reports: list[ExecutionReport]) -> None:
        self._reports.extend(reports)
        while self._reports:
            self.follow(self._reports.popleft())

    # --- reading the results ------------------------------------------------------------------

    @property
    def stats(self) -> BotStatistics:
        return bot_statistics(
            self.config, self.core.state, lifecycle="running", events=0, events_dropped=0
        )

    def orders(self) -> list[tuple[str, str, str, str]]:
        """(client_id, side, tag, status) per intent journaled in this harness, with its last
        journaled status."""
        found: dict[str, list[str]] = {}
        for action in self.ledger:
            match action:
                case RecordIntent(intent=i):
                    found[i.client_id] = [i.client_id, i.side, i.tag, "intent"]
                case RecordStatus(client_id=cid, status=status) if cid in found:
                    found[cid][3] = status
                case RecordFill(fill=f, final=True) if f.client_id in found:
                    found[f.client_id][3] = "filled"
        return [(a, b, c, d) for a, b, c, d in found.values()]

    def fills(self) -> list[tuple[str, Decimal, Decimal]]:
        return [
            (a.fill.client_id, a.fill.price, a.fill.size)
            for a in self.ledger
            if isinstance(a, RecordFill)
        ]

    def state_writes(self) -> dict[str, str | None]:
        return {a.key: a.value for a in self.ledger if isinstance(a, SaveState)}
