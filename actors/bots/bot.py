"""The bot actor: one strategy trading one symbol on one exchange (DESIGN §1, §6).

On every tick: jump guard, then the position monitor (stop-loss, take-profit, trailing stop),
then the strategy, then risk, then the executor. The journal is the bot's memory: every run
starts by replaying it, so a restarted bot (after a crash, kill -9, or a supervisor restart) has
the same balances, positions, open orders, trailing marks and halt/pause flags, and never reuses
a client order id.

Decisions:

* **One task mutates the state.** Tickers, trades, feed-state notices and commands (pause,
  resume) all arrive in one small bounded inbox; forwarder tasks copy the subscriptions into it.
  Upstream conflates tickers, so a busy bot sees the newest price, not a backlog.
* **What waits on the journal.** The order path only: the intent is committed before the paper
  venue sees the order; the fill is committed before the book changes. Pause/resume also wait
  (they are commands, not ticks). High-water marks and the halt flag are queued without waiting
  (``save_state_nowait``), and kept pending by the bot when the journal's inbox is full; a crash
  may lose the newest mark, so the trailing stop restarts slightly looser, never tighter, and the
  halt is re-derived from today's realized PnL on the next tick anyway.
* **Reconciliation at start.** Intents with no outcome are handed to the executor; paper cancels
  them (see ``executor``). Resting limit orders are restored as resting.
* **Paused** bots still run the position monitor and fill resting orders (protection does not
  pause); only the strategy is not consulted.
* **Halted** (daily loss limit) bots refuse opening orders until the next UTC day; exits and
  strategy closes still go through. The halt is logged, sent as a ``BotHalted`` event and
  journaled.
* **Feed health.** A ticker-stream ``FeedState`` other than ``live`` makes the bot
  ``degraded``: no opening orders (the trade stream's state does not gate trading). Until the
  first notice the feed is taken as live: ticks arriving are the evidence. REST-fallback
  tickers (``source == "rest"``) may close positions only if ``close_on_fallback``. Stale
  prices (older than ``max_price_age_s`` by the wall clock) trade nothing, exits included; the
  monitor tries again on the next tick.
* **Quarantined ticks** (price jump guard) trigger no exits, fill no resting orders and feed no
  indicator; the strategy still sees them and any order it asks for is refused (``price_jump``).
* **A resting sell never blocks a protective exit**: if it holds the base the exit needs, it is
  cancelled (journaled) first, but only when risk would let the exit through on this tick: an
  exit refused on a stale or REST-fallback price leaves the resting sell in place.
* **Failures propagate.** A strategy that raises, a journal error or a feed subscription that
  ends make ``run`` raise; the supervisor restarts the bot, which then replays the journal.
* ``run`` may be called again after it returns (a supervisor restart); it may not run twice at
  once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

import attrs
import trio
from loguru import logger

from actors.bots.config import BotConfig
from actors.bots.context import BalanceView, PositionView, StrategyContext
from actors.bots.events import BotEvent, BotHalted, BotHaltLifted, ExitTriggered
from actors.bots.executor import OrderPlan, PaperExecutor, PaperFill, make_executor
from actors.bots.money import ZERO, next_utc_midnight_ts, pct, utc_day
from actors.bots.positions import Book, ExitRules, check_exits, update_high_water
from actors.bots.risk import (
    FeedStateName,
    JumpGuard,
    RateLimiter,
    RejectReason,
    RiskView,
    check_order,
    daily_loss_breached,
)
from actors.bots.strategy import Signal, Strategy, context_for, load_strategy
from actors.errors import BotCriptoFyError, FeedError
from actors.journal import Journal
from actors.journal.store import BotRecord, FillRecord, OrderIntent
from actors.messages import FeedState, Lagged, Ticker, Trade

Subscribe = Callable[[str, str, str], AbstractAsyncContextManager[trio.MemoryReceiveChannel[Any]]]
BotState = Literal["starting", "running", "paused", "halted", "degraded", "stopped"]

INBOX_SIZE = 8
STOP_FLUSH_GRACE_S = 2.0
HWM_KEY = "hwm:"


@attrs.frozen(slots=True)
class _SetPaused:
    paused: bool
    reply: trio.MemorySendChannel[None]


@attrs.frozen(slots=True)
class BotStatistics:
    bot_id: str
    state: BotState
    feed_state: str
    paused: bool
    halted_day: str | None  # the UTC day the daily loss limit halted the bot, if halted
    position_size: Decimal
    entry_price: Decimal | None
    open_positions: int
    open_orders: int
    quote_balance: Decimal
    base_balance: Decimal
    realized_pnl: Decimal
    realized_pnl_today: Decimal
    unrealized_pnl: Decimal
    fees_quote: Decimal
    last_price: Decimal | None  # the bid of the last accepted tick
    last_action: str
    orders: int  # intents journaled, all runs
    fills: int
    next_client_id: str
    rejections: Mapping[str, int]  # this run, by RejectReason value
    ticks: int  # this run
    events: int  # inbox items handled this run (see wait_processed)
    quarantined_ticks: int
    lagged_trades: int
    events_dropped: int


@attrs.define(eq=False)
class Bot:
    """The bot actor. ``subscribe(exchange, kind, symbol)`` is the market-data plane's
    subscription context manager (see ``Subscribe``); ``events`` optionally receives
    ``BotHalted``/``BotHaltLifted``; ``wall_clock`` is injectable for price-age and UTC-day
    tests."""

    config: BotConfig
    subscribe: Subscribe
    journal: Journal
    events: trio.MemorySendChannel[BotEvent] | None = None
    wall_clock: Callable[[], float] = time.time
    config_path: str | None = None  # "bots[3]": prefix of strategy config errors

    log: Any = attrs.field(init=False)
    _inbox_send: trio.MemorySendChannel[Any] = attrs.field(init=False)
    _inbox: trio.MemoryReceiveChannel[Any] = attrs.field(init=False)
    _running: bool = attrs.field(default=False, init=False)
    _lifecycle: Literal["starting", "running", "stopped"] = attrs.field(
        default="starting", init=False
    )
    _progress: trio.Event = attrs.field(factory=trio.Event, init=False)
    _rules: ExitRules = attrs.field(init=False)
    _rejections: Counter[str] = attrs.field(factory=Counter, init=False)
    _events_dropped: int = attrs.field(default=0, init=False)
    # per-run state, rebuilt from the journal by _restore
    _strategy: Any = attrs.field(default=None, init=False)
    _executor: PaperExecutor = attrs.field(default=None, init=False)
    _ctx: StrategyContext = attrs.field(default=None, init=False)
    _book: Book = attrs.field(default=None, init=False)
    _open_orders: dict[str, OrderIntent] = attrs.field(factory=dict, init=False)
    _next_seq: int = attrs.field(default=1, init=False)
    _orders: int = attrs.field(default=0, init=False)
    _paused: bool = attrs.field(default=False, init=False)
    _halted_day: str | None = attrs.field(default=None, init=False)
    _feed_state: FeedStateName = attrs.field(default="live", init=False)
    _jump: JumpGuard = attrs.field(default=None, init=False)
    _rate: RateLimiter = attrs.field(default=None, init=False)
    _last_tick: Ticker | None = attrs.field(default=None, init=False)  # last accepted
    _last_seen: Ticker | None = attrs.field(default=None, init=False)  # last received
    _tick_accepted: bool = attrs.field(default=False, init=False)
    _day: str = attrs.field(default="", init=False)
    _day_end_ts: float = attrs.field(default=0.0, init=False)
    _dirty: dict[str, str | None] = attrs.field(factory=dict, init=False)
    _ticks: int = attrs.field(default=0, init=False)
    _events: int = attrs.field(default=0, init=False)
    _quarantined: int = attrs.field(default=0, init=False)
    _lagged: int = attrs.field(default=0, init=False)
    _last_action: str = attrs.field(default="", init=False)

    def __attrs_post_init__(self) -> None:
        self.log = logger.bind(
            actor="bot",
            bot=self.config.id,
            exchange=self.config.exchange,
            symbol=self.config.symbol,
        )
        self._inbox_send, self._inbox = trio.open_memory_channel[Any](INBOX_SIZE)
        risk = self.config.risk
        self._rules = ExitRules(
            stop_loss=pct(risk.stop_loss_pct),
            take_profit=pct(risk.take_profit_pct),
            trailing_stop=pct(risk.trailing_stop_pct),
        )

    # --- commands -------------------------------------------------------------------------------

    async def pause(self) -> None:
        """Stop consulting the strategy (exits keep working); returns once journaled."""
        await self._command(True)

    async def resume(self) -> None:
        await self._command(False)

    async def _command(self, paused: bool) -> None:
        reply_send, reply_receive = trio.open_memory_channel[None](1)
        with reply_receive:
            await self._inbox_send.send(_SetPaused(paused, reply_send))
            try:
                await reply_receive.receive()
            except trio.EndOfChannel:
                raise BotCriptoFyError(
                    f"bot {self.config.id!r} stopped before applying the command"
                ) from None

    async def wait_processed(self, count: int) -> None:
        """Block until this run has handled at least ``count`` inbox items (tickers, trades,
        feed-state notices, commands): lets a caller know its event has been fully acted on."""
        while self._events < count:
            await self._progress.wait()

    # --- the actor ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._running:
            raise RuntimeError(f"bot {self.config.id!r} is already running")
        self._running = True
        self._lifecycle = "starting"
        self._strategy = None
        cfg = self.config
        try:
            strategy = load_strategy(cfg, self.config_path or f"bots[id={cfg.id}]")
            executor = make_executor(cfg)
            leftovers = self._drain_inbox()
            now_ts = self.wall_clock()
            record = await self.journal.load_bot(
                cfg.id, initial_quote=cfg.paper.quote_balance, now_ts=now_ts
            )
            self._reset(strategy, executor)
            await self._restore(record, now_ts)
            for command in leftovers:
                await self._on_command(command)
            on_start = getattr(strategy, "on_start", None)
            if on_start is not None:
                on_start(self._ctx)
            subscription = self.subscribe(cfg.exchange, "ticker", cfg.symbol)
            async with subscription as ticks, trio.open_nursery() as nursery:
                nursery.start_soon(self._forward, ticks, self._inbox_send.clone(), "ticker")
                if callable(getattr(strategy, "on_trade", None)):
                    await nursery.start(self._forward_trades, self._inbox_send.clone())
                self._lifecycle = "running"
                self.log.info("bot started", strategy=cfg.strategy, mode=cfg.mode)
                task_status.started()
                while True:
                    await self._handle(await self._inbox.receive())
        finally:
            self._lifecycle = "stopped"
            self._running = False
            try:
                await self._flush_state_on_stop()
            finally:
                on_stop = getattr(self._strategy, "on_stop", None)
                if on_stop is not None and self._ctx is not None:
                    on_stop(self._ctx)
                self.log.info("bot stopped", ticks=self._ticks, orders=self._orders)

    def _reset(self, strategy: Strategy, executor: PaperExecutor) -> None:
        risk = self.config.risk
        self._strategy = strategy
        self._executor = executor
        self._ctx = context_for(
            strategy,
            self.config.id,
            self.config.symbol,
            position_fn=self._position_view,
            balance_fn=self._balance_view,
        )
        self._jump = JumpGuard(max_move_pct=Decimal(str(risk.max_tick_move_pct)))
        self._rate = RateLimiter(max_orders=risk.max_orders_per_minute)
        self._open_orders = {}
        self._feed_state = "live"
        self._last_tick = self._last_seen = None
        self._tick_accepted = False
        self._day, self._day_end_ts = "", 0.0
        self._dirty = {}
        self._ticks = self._events = self._quarantined = self._lagged = self._events_dropped = 0
        self._rejections = Counter()
        self._last_action = "restored"

    async def _restore(self, record: BotRecord, now_ts: float) -> None:
        cfg = self.config
        for order in record.unresolved:
            decision = self._executor.reconcile(order)
            await self.journal.record_status(
                order.intent.client_id,
                decision,
                reason="reconciled at restart: journaled intent without a fill (paper: never sent)",
                now_ts=now_ts,
            )
            self.log.warning(
                "unresolved order reconciled", client_id=order.intent.client_id, outcome=decision
            )
        hwm = {
            k.removeprefix(HWM_KEY): Decimal(v)
            for k, v in record.state.items()
            if k.startswith(HWM_KEY)
        }
        self._book = Book.replay(record.initial_quote, record.fills, hwm)
        for order in record.open_orders:
            self._open_orders[order.intent.client_id] = order.intent
            lot = self._book.lots.get(order.intent.position_id or "")
            if lot is not None and order.intent.side == "sell":
                lot.exit_client_id = order.intent.client_id
        self._next_seq = record.next_seq
        self._orders = record.orders_count
        self._paused = record.state.get("paused") == "1"
        self._halted_day = record.state.get("halted_day")
        self._roll_day(now_ts)
        if record.initial_quote != cfg.paper.quote_balance:
            self.log.warning(
                "journal starting balance differs from config; journal wins",
                journal_quote=str(record.initial_quote),
                config_quote=str(cfg.paper.quote_balance),
            )
        fresh = record.orders_count == 0 and not record.state
        self._last_action = "started (new journal)" if fresh else "restored"
        self.log.info(
            "bot restored from journal",
            fresh=fresh,
            fills=len(record.fills),
            open_orders=len(record.open_orders),
            reconciled=len(record.unresolved),
            quote=str(self._book.quote),
            base=str(self._book.base),
            next_seq=self._next_seq,
            paused=self._paused,
            halted_day=self._halted_day,
        )

    def _drain_inbox(self) -> list[_SetPaused]:
        """Market data queued during a previous run is stale: drop it; keep commands."""
        commands = []
        while True:
            try:
                item = self._inbox.receive_nowait()
            except trio.WouldBlock:
                return commands
            if isinstance(item, _SetPaused):
                commands.append(item)

    async def _forward(
        self, events: trio.MemoryReceiveChannel[Any], inbox: trio.MemorySendChannel[Any], what: str
    ) -> None:
        with inbox:
            async for event in events:
                await inbox.send(event)
        raise FeedError(f"bot {self.config.id!r}: the {what} subscription ended")

    async def _forward_trades(
        self,
        inbox: trio.MemorySendChannel[Any],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with inbox:
            async with self.subscribe(self.config.exchange, "trade", self.config.symbol) as trades:
                task_status.started()
                async for event in trades:
                    await inbox.send(event)
        raise FeedError(f"bot {self.config.id!r}: the trade subscription ended")

    async def _handle(self, item: Any) -> None:
        if isinstance(item, Ticker):
            await self._on_ticker(item)
        elif isinstance(item, Trade):
            await self._on_trade(item)
        elif isinstance(item, FeedState) and item.stream.kind == "ticker":
            if item.state != self._feed_state:
                self.log.info(
                    "feed state changed",
                    state=item.state,
                    previous=self._feed_state,
                    reason=item.reason,
                )
            self._feed_state = item.state
        elif isinstance(item, Lagged):
            self._lagged += item.dropped
        elif isinstance(item, _SetPaused):
            await self._on_command(item)
        self._flush_state_nowait()
        self._events += 1
        self._progress.set()
        self._progress = trio.Event()

    async def _on_command(self, command: _SetPaused) -> None:
        with command.reply:
            self._paused = command.paused
            await self.journal.save_state(
                self.config.id, "paused", "1" if command.paused else None, now_ts=self.wall_clock()
            )
            self._last_action = "paused" if command.paused else "resumed"
            self.log.info("bot paused" if command.paused else "bot resumed")
            try:
                command.reply.send_nowait(None)
            except trio.BrokenResourceError:
                pass  # caller gone

    # --- ticks ----------------------------------------------------------------------------------

    async def _on_ticker(self, tick: Ticker) -> None:
        cfg = self.config
        if tick.exchange != cfg.exchange or tick.symbol != cfg.symbol:
            return
        now_ts = self.wall_clock()
        now_at = trio.current_time()
        self._roll_day(now_ts)
        accepted = self._jump.assess(tick.mid)
        self._tick_accepted = accepted
        self._last_seen = tick
        self._ctx.observe(tick, accepted=accepted, now_ts=now_ts)
        if accepted:
            self._last_tick = tick
            moved = update_high_water(self._book.lots.values(), tick.bid)
            if self._rules.trailing_stop is not None:
                for lot in moved:
                    self._dirty[HWM_KEY + lot.position_id] = str(lot.hwm)
            await self._fill_resting(tick, now_ts)
            await self._monitor(tick, now_ts, now_at)
            self._check_daily_loss(tick, now_ts)
        else:
            self._quarantined += 1
            if self._quarantined == 1 or self._quarantined % 100 == 0:
                self.log.warning(
                    "tick quarantined by jump guard",
                    mid=str(tick.mid),
                    quarantined=self._quarantined,
                )
        if not self._paused:
            signal = self._strategy.on_tick(tick, self._ctx)
            if signal is not None:
                await self._act_on(signal, tick, now_ts, now_at)
        self._ticks += 1

    async def _on_trade(self, trade: Trade) -> None:
        if self._paused or trade.symbol != self.config.symbol:
            return
        signal = self._strategy.on_trade(trade, self._ctx)
        if signal is None:
            return
        if self._last_seen is None:
            self._reject(RejectReason.NO_PRICE, "signal:" + signal.reason)
            return
        await self._act_on(signal, self._last_seen, self.wall_clock(), trio.current_time())

    async def _fill_resting(self, tick: Ticker, now_ts: float) -> None:
        """Paper limits fill when a tick crosses them, but never on a stale tick: a price older
        than ``max_price_age_s`` could book a fill the market no longer offers. REST-fallback
        ticks are real prices and do fill."""
        if now_ts - tick.received_ts > self.config.risk.max_price_age_s:
            return
        for intent in list(self._open_orders.values()):
            fill = self._executor.fill_resting(intent, tick)
            if fill is not None:
                await self._book_fill(intent, fill, now_ts)

    async def _monitor(self, tick: Ticker, now_ts: float, now_at: float) -> None:
        for trigger in check_exits(self._book.lots.values(), tick.bid, self._rules):
            lot = self._book.lots.get(trigger.position_id)
            if lot is None or lot.exit_client_id is not None:
                continue
            plan = self._executor.plan_sell(
                lot.size, tick, tag=trigger.reason, position_id=lot.position_id, protective=True
            )
            if self._available_base() < lot.size and self._exit_allowed(plan, tick, now_ts, now_at):
                await self._cancel_resting_sells(f"superseded by {trigger.reason}", now_ts)
            self.log.debug(
                "exit triggered",
                reason=trigger.reason,
                position_id=lot.position_id,
                level=str(trigger.trigger_price),
                bid=str(tick.bid),
            )
            self._emit(
                ExitTriggered(
                    bot_id=self.config.id,
                    reason=trigger.reason,
                    position_id=lot.position_id,
                    trigger_price=trigger.trigger_price,
                    bid=tick.bid,
                    ts=now_ts,
                )
            )
            await self._place(plan, tick, now_ts, now_at)

    def _exit_allowed(
        self, plan: OrderPlan | RejectReason, tick: Ticker, now_ts: float, now_at: float
    ) -> bool:
        """Would risk pass this exit once the resting sells are cancelled? Only then are they
        cancelled: an exit refused on this price (stale, or REST fallback) must not
        cost the bot its resting orders."""
        if isinstance(plan, RejectReason):
            return False
        view = attrs.evolve(self._risk_view(tick, now_ts, now_at), available_base=self._book.base)
        return check_order(plan.proposal(), view, self.config.risk) is None

    def _check_daily_loss(self, tick: Ticker, now_ts: float) -> None:
        if self._halted_day is not None:
            return
        limit = self.config.risk.daily_loss_limit_quote
        realized = self._book.realized_on(self._day)
        unrealized = self._book.unrealized(tick.bid)
        if not daily_loss_breached(realized, unrealized, limit):
            return
        self._halted_day = self._day
        self._dirty["halted_day"] = self._day
        loss = -(realized + unrealized)
        resumes = (dt.date.fromisoformat(self._day) + dt.timedelta(days=1)).isoformat()
        self._last_action = "halted: daily loss limit"
        self.log.warning(
            "bot halted: daily loss limit reached",
            loss_quote=str(loss),
            limit_quote=str(limit),
            day=self._day,
            resumes_day=resumes,
        )
        self._emit(BotHalted(self.config.id, self._day, resumes, loss, limit, now_ts))

    def _roll_day(self, now_ts: float) -> None:
        if now_ts < self._day_end_ts:
            return
        self._day = utc_day(now_ts)
        self._day_end_ts = next_utc_midnight_ts(now_ts)
        if self._halted_day is not None and self._day > self._halted_day:
            self.log.info("daily loss halt lifted", day=self._day, halted_day=self._halted_day)
            self._halted_day = None
            self._dirty["halted_day"] = None
            self._emit(BotHaltLifted(self.config.id, self._day, now_ts))

    # --- orders ---------------------------------------------------------------------------------

    async def _act_on(self, signal: Signal, tick: Ticker, now_ts: float, now_at: float) -> None:
        tag = "signal:" + signal.reason if signal.reason else "signal"
        if signal.side == "buy":
            plan = self._executor.plan_buy(
                signal.quote or self.config.order_quote,
                tick,
                order_type=signal.order_type,
                limit_price=signal.price,
                tag=tag,
            )
        else:
            closable = self._closable()
            if closable <= 0:
                self._reject(
                    RejectReason.NO_POSITION
                    if not self._book.lots
                    else RejectReason.INSUFFICIENT_BALANCE,
                    tag,
                )
                return
            plan = self._executor.plan_sell(
                min(signal.size or closable, closable),
                tick,
                order_type=signal.order_type,
                limit_price=signal.price,
                tag=tag,
            )
        await self._place(plan, tick, now_ts, now_at)

    async def _place(
        self, plan: OrderPlan | RejectReason, tick: Ticker, now_ts: float, now_at: float
    ) -> None:
        if isinstance(plan, RejectReason):
            self._reject(plan, "")
            return
        reason = check_order(
            plan.proposal(), self._risk_view(tick, now_ts, now_at), self.config.risk
        )
        if reason is not None:
            self._reject(reason, plan.tag)
            return
        cfg = self.config
        seq = self._next_seq
        intent = OrderIntent(
            client_id=f"{cfg.id}-{seq}",
            bot_id=cfg.id,
            seq=seq,
            symbol=cfg.symbol,
            side=plan.side,
            order_type=plan.order_type,
            size=plan.size,
            price=plan.price,
            tag=plan.tag,
            position_id=plan.position_id,
            created_ts=now_ts,
        )
        await self.journal.record_intent(intent)  # durable before the venue sees it
        self._next_seq = seq + 1
        self._orders += 1
        self._rate.record(now_at)
        if plan.position_id is not None:
            self._book.lots[plan.position_id].exit_client_id = intent.client_id
        fill = self._executor.execute(intent, tick)
        if fill is None:
            await self.journal.record_status(
                intent.client_id, "open", reason="resting", now_ts=now_ts
            )
            self._open_orders[intent.client_id] = intent
            self._last_action = (
                f"{intent.side} limit {intent.size} @ {intent.price} resting ({intent.tag})"
            )
            self.log.info(
                "order resting",
                client_id=intent.client_id,
                side=intent.side,
                size=str(intent.size),
                price=str(intent.price),
                tag=intent.tag,
            )
            return
        await self._book_fill(intent, fill, now_ts)

    async def _book_fill(self, intent: OrderIntent, fill: PaperFill, now_ts: float) -> None:
        record = FillRecord(
            client_id=intent.client_id,
            bot_id=intent.bot_id,
            side=intent.side,
            price=fill.price,
            size=fill.size,
            fee=fill.fee,
            position_id=intent.position_id if intent.side == "sell" else None,
            ts=now_ts,
        )
        await self.journal.record_fill(record)  # durable before the book changes
        before = set(self._book.lots)
        realized = self._book.apply_fill(record)
        self._open_orders.pop(intent.client_id, None)
        if self._rules.trailing_stop is not None:
            for closed in before - set(self._book.lots):
                self._dirty[HWM_KEY + closed] = None
        self._last_action = f"{intent.side} {fill.size} @ {fill.price} ({intent.tag})"
        self.log.info(
            "order filled",
            client_id=intent.client_id,
            side=intent.side,
            size=str(fill.size),
            price=str(fill.price),
            fee=str(fill.fee),
            realized=str(realized),
            tag=intent.tag,
        )

    async def _cancel_resting_sells(self, reason: str, now_ts: float) -> None:
        for intent in [o for o in self._open_orders.values() if o.side == "sell"]:
            await self.journal.record_status(
                intent.client_id, "cancelled", reason=reason, now_ts=now_ts
            )
            del self._open_orders[intent.client_id]
            lot = self._book.lots.get(intent.position_id or "")
            if lot is not None and lot.exit_client_id == intent.client_id:
                lot.exit_client_id = None
            self.log.info("resting order cancelled", client_id=intent.client_id, reason=reason)

    def _reject(self, reason: RejectReason, tag: str) -> None:
        self._rejections[reason.value] += 1
        self._last_action = f"rejected {reason.value}" + (f" ({tag})" if tag else "")
        self.log.debug("order rejected", reason=reason.value, tag=tag)

    # --- views ----------------------------------------------------------------------------------

    def _risk_view(self, tick: Ticker, now_ts: float, now_at: float) -> RiskView:
        book = self._book
        pending_buys = [o for o in self._open_orders.values() if o.side == "buy"]
        pending_quote = sum((o.size * (o.price or ZERO) for o in pending_buys), ZERO)
        return RiskView(
            halted=self._halted_day is not None,
            feed_state=self._feed_state,
            source=tick.source,
            close_on_fallback=self.config.close_on_fallback,
            price_age_s=now_ts - tick.received_ts,
            quarantined=not self._tick_accepted,
            rate_allows=self._rate.allows(now_at),
            open_positions=len(book.lots),
            pending_buys=len(pending_buys),
            position_quote=book.size * tick.bid + pending_quote,
            available_quote=book.quote - self._reserved_quote(),
            available_base=self._available_base(),
        )

    def _reserved_quote(self) -> Decimal:
        rate = 1 + self._executor.fee_rate
        return sum(
            (
                o.size * (o.price or ZERO) * rate
                for o in self._open_orders.values()
                if o.side == "buy"
            ),
            ZERO,
        )

    def _available_base(self) -> Decimal:
        committed = sum((o.size for o in self._open_orders.values() if o.side == "sell"), ZERO)
        return self._book.base - committed

    def _closable(self) -> Decimal:
        in_exit = sum(
            (lot.size for lot in self._book.lots.values() if lot.exit_client_id is not None), ZERO
        )
        resting = sum(
            (
                o.size
                for o in self._open_orders.values()
                if o.side == "sell" and o.position_id is None
            ),
            ZERO,
        )
        return self._book.base - in_exit - resting

    def _position_view(self) -> PositionView:
        book = self._book
        mark = self._last_tick.bid if self._last_tick is not None else None
        return PositionView(
            size=book.size,
            entry_price=book.entry_price(),
            open_positions=len(book.lots),
            pending_buys=sum(1 for o in self._open_orders.values() if o.side == "buy"),
            unrealized_pnl=book.unrealized(mark),
            closable_size=self._closable(),
        )

    def _balance_view(self) -> BalanceView:
        return BalanceView(
            quote=self._book.quote,
            base=self._book.base,
            available_quote=self._book.quote - self._reserved_quote(),
        )

    # --- state and events -----------------------------------------------------------------------

    def _flush_state_nowait(self) -> None:
        if not self._dirty:
            return
        now_ts = self.wall_clock()
        for key, value in list(self._dirty.items()):
            try:
                self.journal.save_state_nowait(self.config.id, key, value, now_ts=now_ts)
            except trio.WouldBlock:
                return  # journal busy: keep the rest pending, retry after the next event
            del self._dirty[key]

    async def _flush_state_on_stop(self) -> None:
        if not self._dirty:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(STOP_FLUSH_GRACE_S) as scope:
            now_ts = self.wall_clock()
            for key, value in list(self._dirty.items()):
                await self.journal.save_state(self.config.id, key, value, now_ts=now_ts)
                del self._dirty[key]
        if scope.cancelled_caught:
            self.log.warning("bot state not fully saved at stop", pending=len(self._dirty))

    def _emit(self, event: BotEvent) -> None:
        if self.events is None:
            return
        try:
            self.events.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._events_dropped += 1

    def statistics(self) -> BotStatistics:
        book = self._book or Book(quote=self.config.paper.quote_balance)
        mark = self._last_tick.bid if self._last_tick is not None else None
        state: BotState
        if self._lifecycle != "running":
            state = self._lifecycle
        elif self._halted_day is not None:
            state = "halted"
        elif self._paused:
            state = "paused"
        elif self._feed_state != "live":
            state = "degraded"
        else:
            state = "running"
        return BotStatistics(
            bot_id=self.config.id,
            state=state,
            feed_state=self._feed_state,
            paused=self._paused,
            halted_day=self._halted_day,
            position_size=book.size,
            entry_price=book.entry_price(),
            open_positions=len(book.lots),
            open_orders=len(self._open_orders),
            quote_balance=book.quote,
            base_balance=book.base,
            realized_pnl=book.realized_pnl,
            realized_pnl_today=book.realized_on(self._day) if self._day else ZERO,
            unrealized_pnl=book.unrealized(mark),
            fees_quote=book.fees_quote,
            last_price=mark,
            last_action=self._last_action,
            orders=self._orders,
            fills=book.fills,
            next_client_id=f"{self.config.id}-{self._next_seq}",
            rejections=MappingProxyType(dict(self._rejections)),
            ticks=self._ticks,
            events=self._events,
            quarantined_ticks=self._quarantined,
            lagged_trades=self._lagged,
            events_dropped=self._events_dropped,
        )
