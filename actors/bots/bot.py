"""The bot actor: one strategy trading one symbol on one exchange.

This is the shell around ``BotCore`` (``core.py``, where every trading decision and its
reasons live): it reads the bot's inputs, hands them to the core, and performs the actions the
core returns: journal writes, executor calls, events for observers, log lines. Every run starts
by replaying the journal into a new core, so a restarted bot (crash, kill -9, supervisor
restart) continues where the journal says, and never reuses a client order id.

Decisions:

* **One task reads every input itself.** It parks on the ticker mailbox, the trade mailbox
  (only if the strategy has ``on_trade``) and the command inbox at once (``Waker``), and when it
  is free takes the newest ticker: the mailbox conflates, so while the bot awaits its journal
  (or, live, an exchange) newer tickers replace older ones instead of queueing. A tick is
  handed to the strategy with no await in between, so the strategy sees the newest price
  published (unless protection on that same tick had to wait for the journal first). Trades
  are not conflated: those waiting at the start of a round are handled in order. State notices
  come in order with the tickers.
* **Bots take turns.** Every bot of a Trio run wakes through the run's ``WakeQueue``
  (``shared_wake_queue``): a few woken bots per scheduler round, the others in the order they
  were woken. A thousand bots on a busy feed would otherwise make every round a thousand
  steps, and whatever needs several hops (a spawn, a journal reply, the socket reader) would
  wait a whole round per hop (see ``WakeQueue``).
* **A tick that trades nothing stays cheap** (1,000 bots share one core): after a round the bot
  parks at once unless a report or a command came meanwhile (no second pass to find nothing);
  the actions that never wait are performed without a coroutine each; the core builds the
  position view of a flat bot once per balance, not once per tick (``BotCore``).
* **Commands** (pause, resume) go through a small bounded inbox with a reply, answered once
  the new flag is journaled. Commands sent while a run is down wait for the next run.
* **What waits on the journal.** The order path (intent before send, fill before book) and
  commands. Trailing-stop marks and the halt flag are queued without waiting
  (``save_state_nowait``); when the journal's inbox is full they stay pending here (latest
  value wins) and are retried after the next event, and at stop within a short grace. Counted
  refusals (``RecordRefusals``) wait the same way; at stop, so do those the core has not
  handed over yet (``take_refusals``).
* **Execution reports** come from the executor through a sink: during the call for paper, any
  time for a live venue (the sink wakes the bot). Those that came during a call are handed to
  the core right after it, as part of the order; the others first thing in the next round.
* **An order in flight finishes its journaling before a stop.** From the intent's write to the
  journaled outcome (filled, resting, rejected, unknown), and for every fill or status write,
  the bot is shielded from cancellation for up to ``ORDER_OUTCOME_GRACE_S``: a clean shutdown
  (SIGTERM, a bot removed) cancels the bot, and a cancellation between "intent durable" and
  "outcome durable" would leave an order whose fate the next run has to reconcile with the
  venue. The journal stops after the bots (the supervision tree's order), so it is there to
  answer. Past the grace the stop goes on and the next run reconciles, as after a crash.
* **Failures propagate.** A strategy that raises, a journal error or a feed subscription that
  ends make ``run`` raise; the supervisor restarts the bot, which then replays the journal.
* ``run`` may be called again after it returns (a supervisor restart); it may not run twice at
  once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio
from loguru import logger

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
    RecordRefusals,
    RecordStatus,
    SaveState,
    SetPaused,
    ShowMarket,
    Submit,
)
from actors.bots.config import BotConfig
from actors.bots.core import BotCore, Now
from actors.bots.events import BotEvent
from actors.bots.executor import (
    ExecutionReport,
    Executor,
    ExecutorFactory,
    Pricing,
    make_executor,
)
from actors.bots.strategy import load_strategy
from actors.bots.views import BotLifecycle, BotStatistics, DecisionLatency, bot_statistics
from actors.errors import BotCriptoFyError, FeedError
from actors.journal import Journal
from actors.journal.store import RefusalRecord
from actors.market_data.mailbox import Mailbox, Waker, shared_wake_queue
from actors.messages import Ticker

__all__ = ["Bot", "BotStatistics", "Subscribe"]

Subscribe = Callable[[str, str, str], AbstractAsyncContextManager[Mailbox]]

COMMAND_INBOX_SIZE = 8
STOP_FLUSH_GRACE_S = 2.0
# How long a stop waits for an order being placed to reach its journaled outcome.
ORDER_OUTCOME_GRACE_S = 10.0


@attrs.frozen(slots=True)
class _Command:
    paused: bool
    reply: trio.MemorySendChannel[None]
    cancel_open: bool = False


@attrs.define(eq=False)
class Bot:
    """The bot actor. ``subscribe(exchange, kind, symbol)`` is the market-data plane's
    subscription context manager (see ``Subscribe``); ``events`` optionally receives
    ``BotHalted``/``BotHaltLifted``/``ExitTriggered``; ``wall_clock`` is injectable for
    price-age and UTC-day tests; ``executor_factory`` builds the executor each run (paper, or
    the live one a config asks for)."""

    config: BotConfig
    subscribe: Subscribe
    journal: Journal
    events: trio.MemorySendChannel[BotEvent] | None = None
    wall_clock: Callable[[], float] = time.time
    config_path: str | None = None  # "bots[3]": prefix of strategy config errors
    executor_factory: ExecutorFactory = make_executor  # where the orders go (see executor.py)
    # Every journal write carries it: 0 for one daemon, the bot's lease epoch in a cluster
    # (a newer owner's claim fences this run's writes off: ``FencedWriteError``).
    owner_epoch: int = 0

    log: Any = attrs.field(init=False)
    _commands_send: trio.MemorySendChannel[_Command] = attrs.field(init=False)
    _commands: trio.MemoryReceiveChannel[_Command] = attrs.field(init=False)
    _waker: Waker = attrs.field(factory=Waker, init=False)
    _reports: deque[ExecutionReport] = attrs.field(factory=deque, init=False)
    _core: BotCore | None = attrs.field(default=None, init=False)
    _executor: Executor | None = attrs.field(default=None, init=False)
    _pending_state: dict[str, str | None] = attrs.field(factory=dict, init=False)
    _pending_refusals: list[RefusalRecord] = attrs.field(factory=list, init=False)
    _running: bool = attrs.field(default=False, init=False)
    _lifecycle: BotLifecycle = attrs.field(default="starting", init=False)
    _events: int = attrs.field(default=0, init=False)
    _progress: trio.Event | None = attrs.field(default=None, init=False)
    _command_sent: bool = attrs.field(default=False, init=False)  # the inbox may hold one
    _clock: trio.abc.Clock = attrs.field(init=False)
    _events_dropped: int = attrs.field(default=0, init=False)
    _decision_latency: DecisionLatency = attrs.field(factory=DecisionLatency, init=False)

    def __attrs_post_init__(self) -> None:
        self.log = logger.bind(
            actor="bot",
            bot=self.config.id,
            exchange=self.config.exchange,
            symbol=self.config.symbol,
        )
        self._commands_send, self._commands = trio.open_memory_channel[_Command](COMMAND_INBOX_SIZE)

    # --- commands -------------------------------------------------------------------------------

    async def pause(self) -> None:
        """Stop consulting the strategy (exits keep working); returns once journaled."""
        await self._command(True)

    async def resume(self) -> None:
        await self._command(False)

    async def halt(self) -> None:
        """The operator's halt: pause, and cancel every resting order; returns once journaled
        and the cancels are sent."""
        await self._command(True, cancel_open=True)

    async def _command(self, paused: bool, *, cancel_open: bool = False) -> None:
        reply_send, reply_receive = trio.open_memory_channel[None](1)
        with reply_receive:
            await self._commands_send.send(_Command(paused, reply_send, cancel_open))
            self._command_sent = True
            self._waker.wake()
            try:
                await reply_receive.receive()
            except trio.EndOfChannel:
                raise BotCriptoFyError(
                    f"bot {self.config.id!r} stopped before applying the command"
                ) from None

    async def wait_processed(self, count: int) -> None:
        """Block until this run has handled at least ``count`` inputs (tickers, trades,
        feed-state notices, commands, and execution reports that came on their own rather than
        during an executor call): lets a caller know its event has been fully acted on."""
        while self._events < count:
            if self._progress is None:
                self._progress = trio.Event()
            await self._progress.wait()

    def statistics(self) -> BotStatistics:
        return bot_statistics(
            self.config,
            self._core.state if self._core is not None else None,
            lifecycle=self._lifecycle,
            events=self._events,
            events_dropped=self._events_dropped,
            decision_latency=self._decision_latency.snapshot(),
        )

    # --- the actor ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._running:
            raise RuntimeError(f"bot {self.config.id!r} is already running")
        self._running = True
        self._lifecycle = "starting"
        self._core = None
        self._events = self._events_dropped = 0
        self._reports.clear()
        self._pending_state.clear()
        self._waker = Waker(shared_wake_queue())
        self._clock = trio.lowlevel.current_clock()  # trio.current_time() without the lookup
        cfg = self.config
        try:
            strategy = load_strategy(cfg, self.config_path or f"bots[id={cfg.id}]")
            self._executor = self.executor_factory(cfg, self._on_report, wall_clock=self.wall_clock)
            now = self._now()
            record = await self.journal.load_bot(
                cfg.id,
                initial_quote=cfg.paper.quote_balance,
                now_ts=now.ts,
                owner_epoch=self.owner_epoch,
            )
            self._executor.restore(record)
            pricing = Pricing(cfg.paper, cfg.market)
            self._core, actions = BotCore.restore(cfg, strategy, pricing, record, now)
            await self._perform_all(actions)
            on_start = getattr(strategy, "on_start", None)
            if on_start is not None:
                on_start(self._core.ctx)
            async with AsyncExitStack() as stack:
                tickers = await stack.enter_async_context(
                    self.subscribe(cfg.exchange, "ticker", cfg.symbol)
                )
                mailboxes = [tickers]
                if callable(getattr(strategy, "on_trade", None)):
                    mailboxes.append(
                        await stack.enter_async_context(
                            self.subscribe(cfg.exchange, "trade", cfg.symbol)
                        )
                    )
                self._lifecycle = "running"
                self.log.info("bot started", strategy=cfg.strategy, mode=cfg.mode)
                task_status.started()
                self._command_sent = True  # look once: the inbox outlives runs
                while True:
                    await self._round(mailboxes)
                    # Reports and commands that came while the round awaited need another
                    # round; the mailboxes are the waker's own check. Without a checkpoint in
                    # between, so nothing is missed.
                    if not self._reports and not self._command_sent:
                        await self._waker.wait(mailboxes)
        finally:
            self._lifecycle = "stopped"
            self._running = False
            try:
                await self._flush_state_on_stop()
            finally:
                core = self._core
                on_stop = getattr(core.strategy, "on_stop", None) if core is not None else None
                if core is not None and on_stop is not None:
                    on_stop(core.ctx)
                stats = self.statistics()
                self.log.info("bot stopped", ticks=stats.ticks, orders=stats.orders)

    async def _round(self, mailboxes: list[Mailbox]) -> None:
        """One pass over every input."""
        worked = False
        while self._reports:  # a venue's answers that came on their own
            await self._follow(self._reports.popleft())
            self._processed()
            worked = True
        while self._command_sent:
            try:
                command = self._commands.receive_nowait()
            except trio.WouldBlock:
                self._command_sent = False
                break
            await self._on_command(command)
            worked = True
        tickers = mailboxes[0]
        while True:  # state notices in order, then the newest ticker (one per round)
            item = self._take(tickers)
            if item is None:
                break
            await self._drive(item)
            self._processed()
            worked = True
            if type(item) is Ticker:
                break
        if len(mailboxes) > 1:
            trades = mailboxes[1]
            for _ in range(trades.statistics().pending):  # those here now, in order
                item = self._take(trades)
                if item is None:
                    break
                await self._drive(item)
                self._processed()
                worked = True
        if worked:
            self._flush_state_nowait()

    def _take(self, mailbox: Mailbox) -> Any:
        try:
            return mailbox.receive_nowait()
        except trio.WouldBlock:
            return None
        except trio.EndOfChannel:
            raise FeedError(
                f"bot {self.config.id!r}: the {mailbox.stream.kind} subscription ended"
            ) from None

    async def _on_command(self, command: _Command) -> None:
        with command.reply:
            await self._drive(SetPaused(command.paused, command.cancel_open))
            try:
                command.reply.send_nowait(None)
            except trio.BrokenResourceError:
                pass  # caller gone
        self._processed()

    def _processed(self) -> None:
        self._events += 1
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    # --- performing the core's actions ----------------------------------------------------------

    def _now(self) -> Now:
        return Now(self.wall_clock(), self._clock.current_time())

    async def _drive(self, event: CoreEvent) -> None:
        """Hand one event to the core and perform what it asks, continuing it after each pause
        for the venue (see ``actions``)."""
        core = self._core
        assert core is not None
        actions = core.handle(event, self._now())
        if type(event) is Ticker:  # decided: what it does next is the actions' time
            self._decision_latency.observe(self.wall_clock() - event.received_ts)
        while True:
            await self._perform_all(actions)
            if not core.suspended:
                return
            actions = core.handle(CONTINUE, self._now())

    async def _perform_all(self, actions: list[Action]) -> None:
        for action in actions:
            if type(action) is ShowMarket:
                assert self._executor is not None
                self._executor.observe(action.ticker, action.now_ts)
                if self._reports:  # the venue filled resting orders on the price it was shown
                    await self._hand_reports()
            elif not self._perform_now(action):
                await self._perform(action)

    def _perform_now(self, action: Action) -> bool:
        """The actions that never wait, performed without a coroutine (a tick that trades
        nothing is only these and ``ShowMarket``). False: ``_perform`` it."""
        match action:
            case SaveState(key=key, value=value, wait=False):
                self._pending_state[key] = value
            case Log(level=level, message=message, fields=fields):
                self.log.log(level, message, **fields)
            case Emit(event=event):
                self._emit(event)
            case RecordRefusals(refusals=refusals):
                self._pending_refusals.extend(refusals)
            case _:
                return False
        return True

    async def _follow(self, event: CoreEvent) -> None:
        assert self._core is not None
        await self._perform_all(self._core.handle(event, self._now()))

    async def _perform(self, action: Action) -> None:
        journal, executor = self.journal, self._executor
        assert executor is not None
        match action:
            case RecordIntent(intent=intent):
                async with self._order_shield(intent.client_id):
                    # durable before the venue sees it
                    await journal.record_intent(intent, owner_epoch=self.owner_epoch)
                    await self._follow(IntentRecorded(intent))
            case Submit(intent=intent):
                await executor.submit(intent)
                await self._hand_reports()
            case RecordFill(fill=fill, final=final):
                async with self._order_shield(fill.client_id):
                    await journal.record_fill(
                        fill,
                        order_status="filled" if final else "open",
                        owner_epoch=self.owner_epoch,
                    )
                    await self._follow(FillRecorded(fill, final))  # durable before the book
            case RecordStatus(client_id=client_id, status=status, reason=reason, ts=ts):
                async with self._order_shield(client_id):
                    await journal.record_status(
                        client_id, status, reason=reason, now_ts=ts, owner_epoch=self.owner_epoch
                    )
            case SaveState(key=key, value=value):
                self._pending_state.pop(key, None)
                await journal.save_state(
                    self.config.id,
                    key,
                    value,
                    now_ts=self.wall_clock(),
                    owner_epoch=self.owner_epoch,
                )
            case Cancel(intent=intent):
                await executor.cancel(intent)
                await self._hand_reports()
            case Reconcile(order=order):
                await executor.reconcile(order)
                await self._hand_reports()

    @asynccontextmanager
    async def _order_shield(self, client_id: str) -> AsyncIterator[None]:
        """No cancellation inside (see the module docstring), for at most the grace. Cut by
        the grace, the bot ends: cancelled if it was being stopped, else with an error (the
        journal or venue hung), and the next run replays the journal and reconciles."""
        with trio.CancelScope(
            shield=True, deadline=trio.current_time() + ORDER_OUTCOME_GRACE_S
        ) as scope:
            yield
        if scope.cancelled_caught:
            self.log.error(
                "order journaling cut after its grace; the next run reconciles it",
                client_id=client_id,
                grace_s=ORDER_OUTCOME_GRACE_S,
            )
            await trio.lowlevel.checkpoint()  # being stopped: Cancelled, as for any stop
            raise BotCriptoFyError(
                f"bot {self.config.id!r}: journaling order {client_id!r} took longer than"
                f" {ORDER_OUTCOME_GRACE_S} s"
            )

    def _on_report(self, report: ExecutionReport) -> None:
        """The executor's sink: any time, from any task; never blocks."""
        self._reports.append(report)
        self._waker.wake()

    async def _hand_reports(self) -> None:
        while self._reports:
            await self._follow(self._reports.popleft())

    def _emit(self, event: BotEvent) -> None:
        if self.events is None:
            return
        try:
            self.events.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._events_dropped += 1

    # --- state saved without waiting ------------------------------------------------------------

    def _flush_state_nowait(self) -> None:
        if self._pending_refusals:
            try:
                self.journal.record_refusals_nowait(
                    self._pending_refusals, owner_epoch=self.owner_epoch
                )
                self._pending_refusals.clear()
            except trio.WouldBlock:
                pass  # journal busy: retry after the next event
        if not self._pending_state:
            return
        now_ts = self.wall_clock()
        for key, value in list(self._pending_state.items()):
            try:
                self.journal.save_state_nowait(
                    self.config.id, key, value, now_ts=now_ts, owner_epoch=self.owner_epoch
                )
            except trio.WouldBlock:
                return  # journal busy: keep the rest pending, retry after the next event
            del self._pending_state[key]

    async def _flush_state_on_stop(self) -> None:
        if self._core is not None:
            self._pending_refusals.extend(self._core.take_refusals())
        if not self._pending_state and not self._pending_refusals:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(STOP_FLUSH_GRACE_S) as scope:
            if self._pending_refusals:
                await self.journal.record_refusals(
                    self._pending_refusals, owner_epoch=self.owner_epoch
                )
                self._pending_refusals.clear()
            now_ts = self.wall_clock()
            for key, value in list(self._pending_state.items()):
                await self.journal.save_state(
                    self.config.id, key, value, now_ts=now_ts, owner_epoch=self.owner_epoch
                )
                del self._pending_state[key]
        if scope.cancelled_caught:
            self.log.warning("bot state not fully saved at stop", pending=len(self._pending_state))
