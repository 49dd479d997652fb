"""``open_supervisor(config)``: the whole system as one async context manager (DESIGN §8).

The daemon is a thin wrapper over this; a user's own Trio program uses it the same way:

    async with open_supervisor(config) as sup:
        await sup.spawn_bot({"id": "mine", "exchange": "binance", "symbol": "BTC/USDT"})
        async with sup.subscribe("binance", "ticker", "BTC/USDT") as events:
            async for event in events: ...

Nesting is shutdown order (STYLE §19): the journal and alerts enclose everything (closed last,
so every fill is flushed and the stop alert goes out), the market-data plane encloses the bots,
and the bots' supervisor is innermost, so bots stop first and no order is sent on a feed that
is going away.

Each bot runs as a ``transient`` child of the bots' supervisor: a crash restarts it with backoff
(a fresh ``Bot`` replayed from the journal), and a crash loop beyond ``[supervisor]
max_restarts`` within ``period_s`` escalates out of ``open_supervisor`` as
``RestartIntensityError`` (in an ExceptionGroup), which the daemon turns into exit code 1.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import attrs
import trio
from loguru import logger

from actors.bots import Bot, BotEvent, BotHalted, BotHaltLifted, ExitTriggered
from actors.errors import ConfigError
from actors.journal import Journal
from actors.market_data.mailbox import Mailbox
from supervisor.alerts import Alert, Alerts
from supervisor.config import BotConfig, Config
from supervisor.config_loader import parse_bot_spec
from supervisor.feeds import MarketData, open_market_data
from supervisor.otp.events import BreakerTransitioned, ChildCrashed, Escalated, Observer
from supervisor.otp.spec import ChildSpec, SupervisorSpec
from supervisor.otp.tree import Supervisor, open_supervisor_tree

__all__ = ["System", "open_supervisor"]

BOT_EVENTS_BUFFER = 256
log = logger.bind(actor="system")


def _bot_child(bot_id: str) -> str:
    return f"bot:{bot_id}"


@attrs.define(eq=False)
class _BotSlot:
    config: BotConfig
    bot: Bot | None = None  # the current run's actor (a restart builds a new one)
    ticks_before: int = 0  # ticks of earlier runs, so /metrics counters stay monotonic
    rejections_before: dict[str, int] = attrs.field(factory=dict)


@attrs.define(eq=False)
class System:
    """Handle on a running system. Only ``open_supervisor`` creates one."""

    config: Config
    market_data: MarketData
    journal: Journal
    alerts: Alerts
    _bots_tree: Supervisor
    _bot_events: trio.MemorySendChannel[BotEvent]
    _slots: dict[str, _BotSlot] = attrs.field(factory=dict)
    _started_at: float = attrs.field(factory=trio.current_time)

    started: bool = False

    async def start(self) -> None:
        """Spawn the configured bots and announce the start (once)."""
        if self.started:
            return
        self.started = True
        for bot in self.config.bots:
            await self.spawn_bot(bot)
        self.alerts.emit(
            Alert(
                "daemon_started",
                "daemon",
                "info",
                "daemon started",
                {"exchanges": list(self.market_data.exchanges), "bots": list(self.bot_ids)},
            )
        )

    # --- embedded API (DESIGN §8) -----------------------------------------------------------

    def subscribe(
        self, exchange: str, kind: str, symbol: str
    ) -> AbstractAsyncContextManager[Mailbox]:
        """``async with sup.subscribe("binance", "ticker", "BTC/USDT") as events:``"""
        return self.market_data.subscribe(exchange, kind, symbol)

    async def spawn_bot(self, spec: BotConfig | Mapping[str, Any]) -> str:
        """Start a bot from its config (or a ``[[bots]]``-shaped mapping); returns its id once
        it has replayed its journal and subscribed. ``ConfigError`` for a bad or duplicate spec."""
        config = (
            spec
            if isinstance(spec, BotConfig)
            else parse_bot_spec(spec, exchanges=self.config.exchanges)
        )
        if config.id in self._slots:
            raise ConfigError([f"bot.id: a bot with id {config.id!r} is already running"])
        if config.exchange not in self.market_data.exchanges:
            raise ConfigError([f"bot.exchange: unknown exchange {config.exchange!r}"])
        slot = _BotSlot(config)
        self._slots[config.id] = slot
        child = ChildSpec(
            name=_bot_child(config.id),
            run=self._bot_runner(slot),
            restart="transient",
            backoff=self.config.backoff,
            shutdown_grace_s=self.config.supervisor.shutdown_grace_s,
        )
        try:
            await self._bots_tree.start_child(child)
        except BaseException:
            del self._slots[config.id]
            raise
        return config.id

    async def stop_bot(self, bot_id: str) -> None:
        """Stop a bot (its state stays in the journal; spawning it again resumes it)."""
        if bot_id not in self._slots:
            raise KeyError(bot_id)
        await self._bots_tree.stop_child(_bot_child(bot_id))
        del self._slots[bot_id]

    async def pause_bot(self, bot_id: str) -> None:
        await self._running_bot(bot_id).pause()

    async def resume_bot(self, bot_id: str) -> None:
        await self._running_bot(bot_id).resume()

    def bot(self, bot_id: str) -> Bot:
        """The bot's current actor, for ``statistics()`` and ``wait_processed``."""
        return self._running_bot(bot_id)

    @property
    def bot_ids(self) -> tuple[str, ...]:
        return tuple(self._slots)

    def _running_bot(self, bot_id: str) -> Bot:
        slot = self._slots.get(bot_id)
        if slot is None or slot.bot is None:
            raise KeyError(bot_id)
        return slot.bot

    def _bot_runner(self, slot: _BotSlot) -> Any:
        async def run_bot(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            if slot.bot is not None:  # a restart: keep the counters of the run that ended
                previous = slot.bot.statistics()
                slot.ticks_before += previous.ticks
                for reason, count in previous.rejections.items():
                    slot.rejections_before[reason] = slot.rejections_before.get(reason, 0) + count
            bot = Bot(
                slot.config,
                self.market_data.subscribe,
                self.journal,
                events=self._bot_events.clone(),
            )
            slot.bot = bot
            with bot.events:  # type: ignore[union-attr]
                await bot.run(task_status=task_status)

        return run_bot

    # --- health and metrics ----------------------------------------------------------------

    @property
    def uptime_s(self) -> float:
        return trio.current_time() - self._started_at

    def health(self) -> dict[str, Any]:
        """The ``/health`` document: every exchange and bot with a ``healthy`` verdict.

        An exchange is healthy while it streams, or while it has nothing to stream (idle);
        a bot is healthy while running or paused (a halted or degraded bot is not).
        """
        exchanges = {}
        for name, ex in self.market_data.statistics().exchanges.items():
            exchanges[name] = {
                "healthy": ex.state in ("streaming", "idle"),
                "state": ex.state,
                "breaker": ex.breaker_state,
                "last_message_age_s": ex.last_message_age_s,
                "reconnects": ex.reconnects,
                "messages": ex.messages_received,
                "decode_errors": ex.decode_errors,
                "streams": {
                    f"{s.kind}:{s.symbol}": "stale" if s.stale else (s.state or "pending")
                    for s in ex.streams
                },
            }
        bots = {}
        children = {c.name: c for c in self._bots_tree.children()}
        for bot_id, slot in self._slots.items():
            child = children.get(_bot_child(bot_id))
            entry: dict[str, Any] = {
                "healthy": False,
                "state": child.state if child else "stopped",
                "restarts": child.restarts if child else 0,
                "last_error": child.last_error if child else None,
            }
            if slot.bot is not None and child is not None and child.state == "running":
                s = slot.bot.statistics()
                entry.update(
                    healthy=s.state in ("running", "paused"),
                    state=s.state,
                    feed=s.feed_state,
                    position=s.position_size,
                    quote_balance=s.quote_balance,
                    realized_pnl=s.realized_pnl,
                    unrealized_pnl=s.unrealized_pnl,
                    last_action=s.last_action,
                    orders=s.orders,
                )
            bots[bot_id] = entry
        return {"exchanges": exchanges, "bots": bots, "uptime_s": round(self.uptime_s, 3)}

    def bot_snapshots(self) -> dict[str, dict[str, Any]]:
        """Per-bot counters for ``/metrics`` (monotonic across restarts of a bot)."""
        out = {}
        for bot_id, slot in self._slots.items():
            if slot.bot is None:
                continue
            s = slot.bot.statistics()
            rejections = dict(slot.rejections_before)
            for reason, count in s.rejections.items():
                rejections[reason] = rejections.get(reason, 0) + count
            out[bot_id] = {
                "ticks": slot.ticks_before + s.ticks,
                "orders": s.orders,
                "fills": s.fills,
                "rejections": rejections,
                "position": s.position_size,
                "realized_pnl": s.realized_pnl,
                "unrealized_pnl": s.unrealized_pnl,
                "state": s.state,
            }
        return out

    def child_snapshots(self) -> dict[str, Any]:
        children = {c.name: c for c in self._bots_tree.children()}
        for name, ex in self.market_data.statistics().exchanges.items():
            children[f"exchange:{name}"] = ex.keeper
        return children


def _supervision_alerts(alerts: Alerts) -> Observer:
    """Supervision events that a human should hear about become alerts."""

    def observe(event: Any) -> None:
        if isinstance(event, BreakerTransitioned):
            to_state = event.transition.to_state
            if to_state == "open":
                alerts.emit(
                    Alert(
                        "breaker_opened",
                        event.child,
                        "critical",
                        "circuit breaker opened",
                        {"child": event.child, "from": event.transition.from_state},
                    )
                )
            elif to_state == "half_open":
                alerts.emit(
                    Alert(
                        "breaker_half_open",
                        event.child,
                        "info",
                        "circuit breaker half-open: one trial connection",
                        {"child": event.child},
                    )
                )
            elif to_state == "closed":
                alerts.emit(
                    Alert(
                        "breaker_closed",
                        event.child,
                        "info",
                        "circuit breaker closed",
                        {"child": event.child},
                    )
                )
        elif isinstance(event, Escalated):
            alerts.emit(
                Alert(
                    "crash_loop",
                    event.child,
                    "critical",
                    "restart intensity exceeded",
                    {
                        "child": event.child,
                        "restarts": event.restarts,
                        "max_restarts": event.max_restarts,
                        "period_s": event.period_s,
                    },
                )
            )
        elif isinstance(event, ChildCrashed) and "StaleFeedError" in event.error_types:
            alerts.emit(
                Alert(
                    "feed_stale",
                    event.child,
                    "warning",
                    "feed went stale: connection replaced",
                    {"child": event.child, "error": event.error},
                )
            )
        elif isinstance(event, ChildCrashed) and event.programming_error:
            log.error(
                "child crashed with a programming error", child=event.child, error=event.error
            )

    return observe


async def _forward_bot_events(events: trio.MemoryReceiveChannel[BotEvent], alerts: Alerts) -> None:
    async for event in events:
        if isinstance(event, BotHalted):
            alerts.emit(
                Alert(
                    "bot_halted",
                    event.bot_id,
                    "critical",
                    "daily loss limit reached: bot halted",
                    {
                        "bot": event.bot_id,
                        "loss_quote": str(event.loss_quote),
                        "limit_quote": str(event.limit_quote),
                        "resumes_day": event.resumes_day,
                    },
                )
            )
        elif isinstance(event, ExitTriggered):
            kind = "stop_loss_hit" if event.reason in ("stop_loss", "trailing_stop") else None
            if kind is not None:
                alerts.emit(
                    Alert(
                        kind,
                        f"{event.bot_id}:{event.position_id}",
                        "warning",
                        f"{event.reason} hit",
                        {
                            "bot": event.bot_id,
                            "reason": event.reason,
                            "trigger_price": str(event.trigger_price),
                            "bid": str(event.bid),
                        },
                    )
                )
        elif isinstance(event, BotHaltLifted):
            log.info("bot halt lifted", bot=event.bot_id, day=event.day)


async def _run_until_closed(
    run: Any,
    closing: list[trio.CancelScope],
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a service (journal, alerts, market data) that must outlive what is nested inside it.

    A cancellation from outside (SIGTERM cancels the daemon's root scope) would otherwise reach
    the services at the same moment as the bots, so the journal could close before the bots'
    last writes and the alerts actor could flush before ``daemon_stopped`` was emitted. The
    shield keeps it out; ``open_supervisor`` cancels ``closing`` once the body has stopped."""
    with trio.CancelScope(shield=True) as scope:
        closing.append(scope)
        await run(task_status=task_status)


@asynccontextmanager
async def open_supervisor(
    config: Config,
    *,
    rng: random.Random | None = None,
    observers: Sequence[Observer] = (),
    start: bool = True,
) -> AsyncIterator[System]:
    """Run journal, alerts, market data and the configured bots for the block's duration.

    With ``start=False`` the configured bots wait for ``await system.start()``: the daemon
    binds its HTTP port first, so a port clash stops it before any bot trades or any
    "daemon started" alert goes out."""
    rng = rng if rng is not None else random.Random()
    journal = Journal(config.journal)
    alerts = Alerts.from_config(config.alerts, config.secrets)
    supervision = (_supervision_alerts(alerts), *observers)
    services_closing: list[trio.CancelScope] = []  # journal, alerts: closed last
    feeds_closing: list[trio.CancelScope] = []  # market data: closed once the bots have stopped
    events_send, events_receive = trio.open_memory_channel[BotEvent](BOT_EVENTS_BUFFER)
    async with trio.open_nursery() as services:
        try:
            await services.start(_run_until_closed, journal.run, services_closing)
            await services.start(_run_until_closed, alerts.run, services_closing)
            services.start_soon(_forward_bot_events, events_receive, alerts)
            md = await services.start(
                _run_until_closed,
                partial(_run_market_data, config, rng=rng, observers=supervision),
                feeds_closing,
            )
            tree_spec = SupervisorSpec(
                children=(),
                max_restarts=config.supervisor.max_restarts,
                period_s=config.supervisor.period_s,
                name="bots",
            )
            async with open_supervisor_tree(tree_spec, rng=rng, observers=supervision) as tree:
                system = System(config, md, journal, alerts, tree, events_send)
                if start:
                    await system.start()
                try:
                    yield system
                finally:
                    if system.started:
                        alerts.emit(Alert("daemon_stopped", "daemon", "info", "daemon stopped", {}))
        finally:
            # The bots' tree has stopped (it is closed above): now the feeds, then the services.
            events_send.close()
            for scope in (*feeds_closing, *services_closing):
                scope.cancel(reason="system closed")
            services.cancel_scope.cancel(reason="system closed")


async def _run_market_data(
    config: Config,
    *,
    rng: random.Random,
    observers: Sequence[Observer],
    task_status: trio.TaskStatus[MarketData] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The market-data plane as a service, so that it outlives the bots at shutdown: a bot is
    stopped while its feed still runs, and never sees its feed vanish first."""
    async with open_market_data(
        config.exchanges,
        backoff=config.backoff,
        circuit_breaker=config.circuit_breaker,
        rng=rng,
        restart_limits=(config.supervisor.max_restarts, config.supervisor.period_s),
        observers=observers,
    ) as md:
        task_status.started(md)
        await trio.sleep_forever()
