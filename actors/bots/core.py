"""A bot's decisions: given its state and one event, the actions to take; no I/O, no Trio.

``BotCore.handle(event, now)`` updates the state and returns actions (``actions.py``) for the
shell (``bot.py``) to perform in order. Events are market data (``Ticker``, ``Trade``,
``FeedState``, ``Lagged``), the pause command, execution reports, and the completions of
journal writes. Everything time-dependent comes in ``now``, so tests drive the clock.

On an accepted ticker: the day rolls (lifting a daily-loss halt at UTC midnight), trailing
high-water marks move, the venue sees the price (and may fill resting orders), the position
monitor fires stop-loss, take-profit and trailing-stop exits, and the daily loss limit is
checked; then, unless paused, the strategy is asked, and a signal becomes an order plan, a risk
check, an intent, a send.

Decisions:

* **Journal before send, fill before book.** An intent is only sent (``Submit``) once
  ``IntentRecorded`` says it is durable, and a fill changes the book only on ``FillRecorded``;
  the orders count moves with the journal too, so the statistics never show what a crash could
  take back. Client order ids are ``<bot>-<seq>`` with ``seq`` continuing the journal's.
  The fill is journaled with the PnL it will realize (``Book.realized_by``, which changes
  nothing), so the journal says how the bot did without a replay.
* **An event may wait for the venue.** Later steps of a ticker depend on what earlier ones did
  (the daily-loss check and the strategy must see the exit that just filled), so after a venue
  call the core pauses (``suspended``) until the shell has handed it the call's reports and
  sent ``CONTINUE``. A paper venue reports during the call; a live one may answer later, and the
  ticker then goes on with the order still working.
* **Paused** bots still run the position monitor and fill resting orders (protection does not
  pause); only the strategy is not consulted.
* **Halted** (daily loss limit) bots refuse opening orders until the next UTC day; exits and
  strategy closes still go through. The halt is logged, sent as ``BotHalted`` and journaled.
* **Feed health.** A ticker-stream ``FeedState`` other than ``live`` makes the bot ``degraded``:
  no opening orders (the trade stream's state does not gate trading). Until the first notice
  the feed is taken as live: ticks arriving are the evidence. REST-fallback tickers may close
  positions only if ``close_on_fallback``. Stale prices (older than ``max_price_age_s``) trade
  nothing, exits included; the monitor tries again on the next tick.
* **Quarantined ticks** (price jump guard, ``risk.py``) trigger no exits, are not shown to the
  venue (so they fill no resting order) and feed no indicator; the strategy still sees them and
  any order it asks for is refused (``price_jump``). That includes the warm-up of every run: no
  price is trusted, and no stop-loss, take-profit or daily-loss check runs, until
  ``price_confirm_ticks`` ticks agree, because the first tick a restarted bot gets is the
  newest stored one, which may be a bad print.
* **A resting sell never blocks a protective exit**: if it holds the base the exit needs, it is
  cancelled first, but only when risk would let the exit through on this tick: an exit refused
  on a stale or REST-fallback price leaves the resting sell in place.
* **Trailing marks and the halt flag are saved without waiting** (``SaveState(wait=False)``): a
  crash may lose the newest mark, so the trailing stop restarts slightly looser, never tighter,
  and the halt is re-derived from today's realized PnL on the next tick anyway.
* **Reconciliation at start.** Intents the journal left without an outcome, and resting
  orders, are handed to the executor (``Reconcile``); what it reports is journaled like any
  other outcome (paper cancels unresolved intents and rests open orders again).
* **Refusals are journaled counted** (``RecordRefusals``): a bot may be refused on every tick
  (``rate_limit``, ``stale_price``), so the core counts refusals per reason and tag and hands
  them over once per ``REFUSAL_WINDOW_S`` (on the first event after the window), never more
  than one row per reason and tag per window; the shell writes them without waiting, and takes
  what is left (``take_refusals``) when it stops. A crash loses at most the current window.
* **Failures propagate.** A strategy that raises, or a fill the book cannot apply, raises out of
  ``handle``; the supervisor restarts the bot, which replays the journal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

import attrs

from actors.bots.actions import (
    Action,
    Cancel,
    Continue,
    CoreEvent,
    Emit,
    FillRecorded,
    IntentRecorded,
    Log,
    LogLevel,
    Reconcile,
    RecordFill,
    RecordIntent,
    RecordRefusals,
    RecordStatus,
    SaveState,
    SetPaused,
    ShowMarket,
    Submit,
)
from actors.bots.config import BotConfig
from actors.bots.context import PositionView, StrategyContext
from actors.bots.events import BotHalted, BotHaltLifted, ExitTriggered
from actors.bots.executor import (
    OrderCancelled,
    OrderFilled,
    OrderPlan,
    OrderRejected,
    OrderResting,
    OrderUnknown,
    Pricing,
)
from actors.bots.money import ZERO, next_utc_midnight_ts, pct, utc_day
from actors.bots.orders import WorkingOrder
from actors.bots.positions import ExitRules, check_exits, update_high_water
from actors.bots.risk import RejectReason, RiskView, check_order, daily_loss_breached
from actors.bots.state import HWM_KEY, BotState, restore_state
from actors.bots.strategy import Signal, Strategy, context_for
from actors.bots.views import available_base, balance_view, closable, position_view, risk_view
from actors.journal.store import BotRecord, FillRecord, OrderIntent, RefusalRecord
from actors.messages import FeedState, Lagged, Ticker, Trade

_DONE = object()  # what ``next`` returns for an event whose work has finished
REFUSAL_WINDOW_S = 60.0  # refusals are journaled counted, per reason and tag, once per window


class _Refusals:
    """Refusals of one reason and tag not yet journaled; plain slots, bumped on every refusal."""

    __slots__ = ("count", "first_ts", "last_ts")

    def __init__(self, ts: float) -> None:
        self.first_ts = self.last_ts = ts
        self.count = 1


class Now(NamedTuple):
    """A tuple rather than an attrs class: one is built for every event."""

    ts: float  # wall clock, epoch seconds: price age, the UTC day, journal times
    at: float  # trio.current_time(): the order-rate window


class BotCore:
    """One bot's state and decisions. Build it with ``restore``; then ``handle`` each event."""

    def __init__(
        self, config: BotConfig, strategy: Strategy, pricing: Pricing, state: BotState
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.pricing = pricing
        self.state = state
        risk = config.risk
        self.rules = ExitRules(
            stop_loss=pct(risk.stop_loss_pct),
            take_profit=pct(risk.take_profit_pct),
            trailing_stop=pct(risk.trailing_stop_pct),
        )
        self.ctx: StrategyContext = context_for(
            strategy,
            config.id,
            config.symbol,
            position_fn=self._position_view,
            balance_fn=lambda: balance_view(self.state, self.pricing.fee_rate),
        )
        self._on_trade = getattr(strategy, "on_trade", None)
        self._out: list[Action] = []
        self._work: Iterator[None] | None = None  # an event paused until the venue answered
        self._flat: tuple[Decimal, PositionView] | None = None  # (base, its flat view)
        self._refusals: dict[tuple[str, str], _Refusals] = {}  # (reason, tag): not journaled
        self._refusals_due = float("inf")  # when they are handed over
        self._now_ts = 0.0  # the event being handled's wall clock, for refusals

    def _position_view(self) -> PositionView:
        """``ctx.position``, which most strategies read on every tick. With no lot and no
        working order the view depends on the base balance alone (which only a fill changes),
        so it is built once per balance instead of once per tick."""
        s = self.state
        if s.book.lots or s.orders:
            return position_view(s)
        base = s.book.base
        if self._flat is None or self._flat[0] is not base:
            self._flat = (base, position_view(s))
        return self._flat[1]

    @classmethod
    def restore(
        cls,
        config: BotConfig,
        strategy: Strategy,
        pricing: Pricing,
        record: BotRecord,
        now: Now,
    ) -> tuple[BotCore, list[Action]]:
        """The core a run starts with, and its first actions: reconcile what the journal left
        open or unresolved, and say what was restored."""
        core = cls(config, strategy, pricing, restore_state(config, record))
        out = core._out
        for order in (*record.unresolved, *record.open_orders):
            out.append(Reconcile(order))
        core._roll_day(now.ts)
        s = core.state
        if record.initial_quote != config.paper.quote_balance:
            core._log(
                "WARNING",
                "journal starting balance differs from config; journal wins",
                journal_quote=str(record.initial_quote),
                config_quote=str(config.paper.quote_balance),
            )
        core._log(
            "INFO",
            "bot restored from journal",
            fresh=record.orders_count == 0 and not record.state,
            fills=len(record.fills),
            open_orders=len(record.open_orders),
            reconciled=len(record.unresolved),
            quote=str(s.book.quote),
            base=str(s.book.base),
            next_seq=s.next_seq,
            paused=s.paused,
            halted_day=s.halted_day,
        )
        return core, out

    @property
    def suspended(self) -> bool:
        """An event is waiting for the venue's answer: send ``CONTINUE`` after its reports."""
        return self._work is not None

    def handle(self, event: CoreEvent, now: Now) -> list[Action]:
        out: list[Action] = []
        self._out = out
        self._now_ts = now.ts
        if now.ts >= self._refusals_due:
            out.append(RecordRefusals(self.take_refusals()))
        match event:
            case Ticker():
                self._start(self._on_ticker(event, now))
            case Continue():
                self._resume()
            case OrderFilled():
                self._on_filled(event)
            case FillRecorded():
                self._on_fill_recorded(event.fill, event.final)
            case IntentRecorded():
                self._on_intent_recorded(event.intent)
            case OrderResting():
                self._on_resting(event, now)
            case OrderCancelled():
                self._on_cancelled(event, now)
            case OrderRejected():
                self._on_rejected(event, now)
            case OrderUnknown():
                self._on_unknown(event)
            case Trade():
                self._start(self._on_trade_event(event, now))
            case FeedState():
                self._on_feed_state(event)
            case Lagged():
                self.state.lagged += event.dropped
            case SetPaused():
                self._on_set_paused(event.paused, event.cancel_open)
            case _:
                raise TypeError(f"not a bot core event: {event!r}")
        return out

    def take_refusals(self) -> tuple[RefusalRecord, ...]:
        """The refusals counted since they were last handed over (the shell journals them; it
        takes the rest this way when the bot stops)."""
        bot_id = self.config.id
        taken = tuple(
            RefusalRecord(bot_id, reason, tag, r.first_ts, r.last_ts, r.count)
            for (reason, tag), r in self._refusals.items()
        )
        self._refusals = {}
        self._refusals_due = float("inf")
        return taken

    # --- suspension -----------------------------------------------------------------------------

    def _start(self, work: Iterator[None]) -> None:
        if self._work is not None:
            raise RuntimeError("a new event while the previous one waits for the venue")
        self._work = work
        self._resume()

    def _resume(self) -> None:
        work = self._work
        if work is None:
            return
        try:
            if next(work, _DONE) is _DONE:  # no StopIteration raised on every tick
                self._work = None
        except BaseException:
            self._work = None
            raise

    # --- market data ----------------------------------------------------------------------------

    def _on_ticker(self, tick: Ticker, now: Now) -> Iterator[None]:
        cfg, s = self.config, self.state
        if tick.exchange != cfg.exchange or tick.symbol != cfg.symbol:
            return
        if now.ts >= s.day_end_ts:
            self._roll_day(now.ts)
        jump = s.jump
        warming_up = jump.warming_up
        mid = tick.mid
        accepted = jump.assess(mid)
        s.tick_accepted = accepted
        s.last_seen = tick
        self.ctx.observe(tick, accepted=accepted, now_ts=now.ts, mid=mid)
        if accepted:
            if warming_up and s.quarantined:
                self._log("INFO", "price established", mid=str(mid), withheld=s.quarantined)
            s.last_tick = tick
            lots = s.book.lots
            if lots:
                moved = update_high_water(lots.values(), tick.bid)
                if self.rules.trailing_stop is not None:
                    for lot in moved:
                        self._out.append(SaveState(HWM_KEY + lot.position_id, str(lot.hwm)))
            self._out.append(ShowMarket(tick, now.ts))
            if s.orders.any_resting():
                yield  # the venue may fill resting orders on it: booked before the monitor looks
            if s.book.lots:
                yield from self._monitor(tick, now)
            self._check_daily_loss(tick, now.ts)
        else:
            s.quarantined += 1
            if warming_up:
                self._log("DEBUG", "tick withheld until the price is confirmed", mid=str(mid))
            elif s.quarantined == 1 or s.quarantined % 100 == 0:
                self._log(
                    "WARNING",
                    "tick quarantined by jump guard",
                    mid=str(tick.mid),
                    quarantined=s.quarantined,
                )
        if not s.paused:
            signal = self.strategy.on_tick(tick, self.ctx)
            if signal is not None:
                yield from self._act_on(signal, tick, now)
        s.ticks += 1

    def _on_trade_event(self, trade: Trade, now: Now) -> Iterator[None]:
        s = self.state
        if s.paused or self._on_trade is None or trade.symbol != self.config.symbol:
            return
        signal = self._on_trade(trade, self.ctx)
        if signal is None:
            return
        if s.last_seen is None:
            self._reject(RejectReason.NO_PRICE, "signal:" + signal.reason)
            return
        yield from self._act_on(signal, s.last_seen, now)

    def _on_feed_state(self, notice: FeedState) -> None:
        s = self.state
        if notice.stream.kind != "ticker":
            return
        if notice.state != s.feed_state:
            self._log(
                "INFO",
                "feed state changed",
                state=notice.state,
                previous=s.feed_state,
                reason=notice.reason,
            )
        s.feed_state = notice.state

    def _on_set_paused(self, paused: bool, cancel_open: bool) -> None:
        s = self.state
        s.paused = paused
        self._out.append(SaveState("paused", "1" if paused else None, wait=True))
        s.last_action = "paused" if paused else "resumed"
        if cancel_open:
            s.last_action = "halted by the operator"
            for order in s.orders.resting():
                order.cancel_reason = "halted by the operator"
                self._out.append(Cancel(order.intent))
        self._log("INFO", "bot paused" if paused else "bot resumed", cancel_open=cancel_open)

    # --- protection -----------------------------------------------------------------------------

    def _monitor(self, tick: Ticker, now: Now) -> Iterator[None]:
        book = self.state.book
        for trigger in check_exits(book.lots.values(), tick.bid, self.rules):
            lot = book.lots.get(trigger.position_id)
            if lot is None or lot.exit_client_id is not None:
                continue
            plan = self.pricing.plan_sell(
                lot.size, tick, tag=trigger.reason, position_id=lot.position_id, protective=True
            )
            if available_base(self.state) < lot.size and self._exit_allowed(plan, tick, now):
                yield from self._cancel_resting_sells(f"superseded by {trigger.reason}")
            self._log(
                "DEBUG",
                "exit triggered",
                reason=trigger.reason,
                position_id=lot.position_id,
                level=str(trigger.trigger_price),
                bid=str(tick.bid),
            )
            self._out.append(
                Emit(
                    ExitTriggered(
                        bot_id=self.config.id,
                        reason=trigger.reason,
                        position_id=lot.position_id,
                        trigger_price=trigger.trigger_price,
                        bid=tick.bid,
                        ts=now.ts,
                    )
                )
            )
            yield from self._place(plan, tick, now)

    def _exit_allowed(self, plan: OrderPlan | RejectReason, tick: Ticker, now: Now) -> bool:
        """Would risk pass this exit once the resting sells are cancelled? Only then are they
        cancelled: an exit refused on this price (stale, or REST fallback) must not cost the bot
        its resting orders."""
        if isinstance(plan, RejectReason):
            return False
        view = attrs.evolve(self._risk_view(tick, now), available_base=self.state.book.sellable)
        return check_order(plan.proposal(), view, self.config.risk) is None

    def _cancel_resting_sells(self, reason: str) -> Iterator[None]:
        sells = self.state.orders.resting_sells()
        for order in sells:
            order.cancel_reason = reason
            self._out.append(Cancel(order.intent))
        if sells:
            yield  # the base is free once the venue confirmed

    def _check_daily_loss(self, tick: Ticker, now_ts: float) -> None:
        s = self.state
        if s.halted_day is not None:
            return
        limit = self.config.risk.daily_loss_limit_quote
        realized = s.book.realized_on(s.day)
        unrealized = s.book.unrealized(tick.bid) if s.book.lots else ZERO
        if not daily_loss_breached(realized, unrealized, limit):
            return
        s.halted_day = s.day
        self._out.append(SaveState("halted_day", s.day))
        loss = -(realized + unrealized)
        resumes = (dt.date.fromisoformat(s.day) + dt.timedelta(days=1)).isoformat()
        s.last_action = "halted: daily loss limit"
        self._log(
            "WARNING",
            "bot halted: daily loss limit reached",
            loss_quote=str(loss),
            limit_quote=str(limit),
            day=s.day,
            resumes_day=resumes,
        )
        self._out.append(Emit(BotHalted(self.config.id, s.day, resumes, loss, limit, now_ts)))

    def _roll_day(self, now_ts: float) -> None:
        s = self.state
        if now_ts < s.day_end_ts:
            return
        s.day = utc_day(now_ts)
        s.day_end_ts = next_utc_midnight_ts(now_ts)
        if s.halted_day is not None and s.day > s.halted_day:
            self._log("INFO", "daily loss halt lifted", day=s.day, halted_day=s.halted_day)
            s.halted_day = None
            self._out.append(SaveState("halted_day", None))
            self._out.append(Emit(BotHaltLifted(self.config.id, s.day, now_ts)))

    # --- orders ---------------------------------------------------------------------------------

    def _act_on(self, signal: Signal, tick: Ticker, now: Now) -> Iterator[None]:
        tag = "signal:" + signal.reason if signal.reason else "signal"
        plan: OrderPlan | RejectReason
        if signal.side == "buy":
            plan = self.pricing.plan_buy(
                signal.quote or self.config.order_quote,
                tick,
                order_type=signal.order_type,
                limit_price=signal.price,
                tag=tag,
            )
        else:
            can_close = closable(self.state)
            if can_close <= 0:
                no_lots = not self.state.book.lots
                self._reject(
                    RejectReason.NO_POSITION if no_lots else RejectReason.INSUFFICIENT_BALANCE, tag
                )
                return
            plan = self.pricing.plan_sell(
                min(signal.size or can_close, can_close),
                tick,
                order_type=signal.order_type,
                limit_price=signal.price,
                tag=tag,
            )
        yield from self._place(plan, tick, now)

    def _place(self, plan: OrderPlan | RejectReason, tick: Ticker, now: Now) -> Iterator[None]:
        if isinstance(plan, RejectReason):
            self._reject(plan, "")
            return
        reason = check_order(plan.proposal(), self._risk_view(tick, now), self.config.risk)
        if reason is not None:
            self._reject(reason, plan.tag)
            return
        cfg, s = self.config, self.state
        s.rate.record(now.at)
        self._out.append(
            RecordIntent(
                OrderIntent(
                    client_id=f"{cfg.id}-{s.next_seq}",
                    bot_id=cfg.id,
                    seq=s.next_seq,
                    symbol=cfg.symbol,
                    side=plan.side,
                    order_type=plan.order_type,
                    size=plan.size,
                    price=plan.price,
                    tag=plan.tag,
                    position_id=plan.position_id,
                    created_ts=now.ts,
                )
            )
        )
        yield  # journaled, sent, and what the venue said at once is booked before going on

    def _on_intent_recorded(self, intent: OrderIntent) -> None:
        s = self.state
        s.next_seq = intent.seq + 1
        s.orders_count += 1
        s.orders.add(intent, "sent")
        if intent.position_id is not None:
            s.book.lots[intent.position_id].exit_client_id = intent.client_id
        self._out.append(Submit(intent))

    def _reject(self, reason: RejectReason, tag: str) -> None:
        s = self.state
        s.rejections[reason.value] += 1
        now_ts = self._now_ts
        pending = self._refusals.get((reason.value, tag))
        if pending is None:
            if not self._refusals:
                self._refusals_due = now_ts + REFUSAL_WINDOW_S
            self._refusals[reason.value, tag] = _Refusals(now_ts)
        else:
            pending.count += 1
            pending.last_ts = now_ts
        s.last_action = f"rejected {reason.value}" + (f" ({tag})" if tag else "")
        self._log("DEBUG", "order rejected", reason=reason.value, tag=tag)

    # --- execution reports ----------------------------------------------------------------------

    def _on_filled(self, report: OrderFilled) -> None:
        order = self.state.orders.get(report.client_id)
        if order is None:
            self._log("WARNING", "fill for an order that is not working", report=repr(report))
            return
        intent = order.intent
        fill = FillRecord(
            client_id=intent.client_id,
            bot_id=intent.bot_id,
            side=intent.side,
            price=report.price,
            size=report.size,
            fee=report.fee,
            position_id=intent.position_id if intent.side == "sell" else None,
            ts=report.ts,
            venue_fill_id=report.venue_fill_id,
        )
        # The book is not touched until the journal has the fill; the shell performs this
        # RecordFill and books it (FillRecorded) before any other event, so the book the
        # preview saw is the book the fill lands on.
        realized = self.state.book.realized_by(fill)
        self._out.append(RecordFill(attrs.evolve(fill, realized_pnl=realized), report.final))

    def _on_fill_recorded(self, fill: FillRecord, final: bool) -> None:
        s = self.state
        before = set(s.book.lots)
        realized = s.book.apply_fill(fill)
        order = s.orders.pop(fill.client_id) if final else s.orders.get(fill.client_id)
        tag = order.intent.tag if order is not None else ""
        if self.rules.trailing_stop is not None:
            for closed in before - set(s.book.lots):
                self._out.append(SaveState(HWM_KEY + closed, None))
        s.last_action = f"{fill.side} {fill.size} @ {fill.price} ({tag})"
        self._log(
            "INFO",
            "order filled",
            client_id=fill.client_id,
            side=fill.side,
            size=str(fill.size),
            price=str(fill.price),
            fee=str(fill.fee),
            realized=str(realized),
            tag=tag,
        )

    def _on_resting(self, report: OrderResting, now: Now) -> None:
        order = self.state.orders.get(report.client_id)
        if order is None:
            return
        order.status = "open"
        intent = order.intent
        self._out.append(RecordStatus(intent.client_id, "open", "resting", now.ts))
        self.state.last_action = (
            f"{intent.side} limit {intent.size} @ {intent.price} resting ({intent.tag})"
        )
        self._log(
            "INFO",
            "order resting",
            client_id=intent.client_id,
            side=intent.side,
            size=str(intent.size),
            price=str(intent.price),
            tag=intent.tag,
        )

    def _on_cancelled(self, report: OrderCancelled, now: Now) -> None:
        order = self._finish(report.client_id)
        if order is None:
            return
        reason = order.cancel_reason or report.reason
        self._out.append(RecordStatus(report.client_id, "cancelled", reason, now.ts))
        if order.status == "unknown":
            self._log(
                "WARNING",
                "unresolved order reconciled",
                client_id=report.client_id,
                outcome="cancelled",
            )
        else:
            self._log("INFO", "resting order cancelled", client_id=report.client_id, reason=reason)

    def _on_rejected(self, report: OrderRejected, now: Now) -> None:
        order = self._finish(report.client_id)
        if order is None:
            return
        self._out.append(RecordStatus(report.client_id, "rejected", report.reason, now.ts))
        self._reject(RejectReason.VENUE_REJECTED, order.intent.tag)
        self._log(
            "WARNING",
            "order rejected by the venue",
            client_id=report.client_id,
            reason=report.reason,
        )

    def _on_unknown(self, report: OrderUnknown) -> None:
        order = self.state.orders.get(report.client_id)
        if order is None:
            return
        order.status = "unknown"
        self._log(
            "WARNING", "order outcome unknown", client_id=report.client_id, reason=report.reason
        )

    def _finish(self, client_id: str) -> WorkingOrder | None:
        """Take an order that ended without a fill off the working set (and off its lot)."""
        order = self.state.orders.pop(client_id)
        if order is None:
            return None
        lot = self.state.book.lots.get(order.intent.position_id or "")
        if lot is not None and lot.exit_client_id == client_id:
            lot.exit_client_id = None
        return order

    # --- helpers --------------------------------------------------------------------------------

    def _risk_view(self, tick: Ticker, now: Now) -> RiskView:
        return risk_view(self.state, self.config, self.pricing.fee_rate, tick, now.ts, now.at)

    def _log(self, level: LogLevel, message: str, /, **fields: Any) -> None:
        self._out.append(Log(level, message, fields))
