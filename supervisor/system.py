"""``open_supervisor(config)``: the whole system as one async context manager.

The daemon is a thin wrapper over this; a user's own Trio program uses it the same way:

    async with open_supervisor(config) as sup:
        await sup.spawn_bot({"id": "mine", "exchange": "binance", "symbol": "BTC/USDT"})
        async with sup.subscribe("binance", "ticker", "BTC/USDT") as events:
            async for event in events: ...

It builds the tree (``supervisor.build.build_tree``) and runs it with ``open_supervisor_tree``,
which starts the journal, alerts, feeds and bots in that order and stops them in reverse order
when the block ends, however it ends (an outside cancellation included): bots first, while
their feeds still stream, the journal last, once every write has committed.

A bot's crash restarts it with backoff (a fresh ``Bot`` replayed from the journal); a crash loop
beyond ``[supervisor] max_restarts`` within ``period_s`` stops the system: the error leaves
``open_supervisor`` as ``RestartIntensityError`` in an ExceptionGroup, and the daemon exits 1.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors.bots import Bot
from actors.errors import BotCriptoFyError, ConfigError
from actors.exchanges.symbols import split_unified
from actors.journal import Journal
from actors.journal.store import FillRecord, OrderRecord
from actors.market_data.mailbox import Handler, Mailbox, MailboxItem
from supervisor.alerts import Alert, Alerts
from supervisor.build import BOTS, Bots, Tree, bot_child_name, build_tree
from supervisor.config import BotConfig, Config
from supervisor.config_loader import parse_bot_spec, resolve_secret, spawn_refusals
from supervisor.feeds import FEEDS, MarketData, connections_child, exchange_supervisor
from supervisor.otp.events import Observer
from supervisor.otp.keeper import ChildStatistics
from supervisor.otp.spec import ChildSpec, RestartLimit
from supervisor.otp.tree import Supervisor, open_supervisor_tree
from supervisor.read_api import BotView

if TYPE_CHECKING:
    from supervisor.cluster.bot_node import ClusterBots

__all__ = ["System", "open_supervisor"]


@attrs.define(eq=False)
class System:
    """Handle on a running system. Only ``open_supervisor`` creates one.

    ``tree`` is what runs (the specs and the actors' handles), ``root`` the running root
    supervisor: ``root.subtree("bots")`` and ``root.subtree("feeds")`` reach the subtrees."""

    config: Config
    tree: Tree
    root: Supervisor
    _pending: tuple[BotConfig, ...] = ()  # configured bots left for ``start``
    _started_at: float = attrs.field(factory=trio.current_time)
    started: bool = False
    # With [cluster] bot_placement = "cluster": the cluster places the bots (``start`` runs
    # it); commands and reads for bots running on other nodes go through it.
    cluster_bots: ClusterBots | None = None

    @property
    def journal(self) -> Journal:
        return self.tree.journal

    @property
    def alerts(self) -> Alerts:
        return self.tree.alerts

    @property
    def market_data(self) -> MarketData:
        return self.tree.market_data

    @property
    def _bots(self) -> Bots:
        return self.tree.bots

    @property
    def _bots_tree(self) -> Supervisor:
        return self.root.subtree(BOTS)

    async def start(self) -> None:
        """Spawn the configured bots not started yet and announce the start (once)."""
        if self.started:
            return
        self.started = True
        if self.cluster_bots is None:
            # At once: a bot's start waits for its recovery (an order in doubt can take the
            # venue's deadline to resolve), which must not hold back the other bots. Bots are
            # independent children of the bots subtree (listed in config order, stopped in any).
            configs = [self._checked(bot) for bot in self._pending]
            children = [(c.id, self._bots.add(c)) for c in configs]
            await _start_all([partial(self._start_bot_child, *pair) for pair in children])
        else:
            for bot in self._pending:
                await self.spawn_bot(bot)
        self._pending = ()
        if self.cluster_bots is not None:
            sup = self.config.supervisor
            await self.root.start_child(
                ChildSpec(
                    "cluster_bots",
                    self.cluster_bots.run,
                    backoff=self.config.backoff,
                    shutdown_grace_s=2 * sup.shutdown_grace_s,
                    restart_limit=RestartLimit(sup.max_restarts, sup.period_s),
                )
            )
        self.alerts.emit(
            Alert(
                "daemon_started",
                "daemon",
                "info",
                "daemon started",
                {"exchanges": list(self.market_data.exchanges), "bots": list(self.bot_ids)},
            )
        )

    # --- embedded API -----------------------------------------------------------------------

    def subscribe(
        self, exchange: str, kind: str, symbol: str
    ) -> AbstractAsyncContextManager[Mailbox]:
        """``async with sup.subscribe("binance", "ticker", "BTC/USDT") as events:``"""
        return self.market_data.subscribe(exchange, kind, symbol)

    def subscribe_handler(
        self, exchange: str, kind: str, symbol: str, handler: Callable[[MailboxItem], object]
    ) -> AbstractAsyncContextManager[Handler]:
        """``async with sup.subscribe_handler("binance", "ticker", "BTC/USDT", fn):``: ``fn``
        is called by the reader with every item (``MarketData.subscribe_handler``)."""
        return self.market_data.subscribe_handler(exchange, kind, symbol, handler)

    async def spawn_bot(self, spec: BotConfig | Mapping[str, Any]) -> str:
        """Start a bot from its config (or a ``[[bots]]``-shaped mapping); returns its id once
        it has replayed its journal and subscribed. ``ConfigError`` for a bad or duplicate spec.

        A mapping (the control API's body) may name a built-in strategy or a plugin module the
        config allows (``config_loader.allowed_plugins``), nothing else: it is refused before
        any import. A ``BotConfig`` comes from the caller's own code, which is trusted."""
        config = self._checked(spec)
        if self.cluster_bots is not None:
            await self.cluster_bots.add(config)  # the scheduler places it
            return config.id
        return await self._spawn_local(config)

    def _checked(self, spec: BotConfig | Mapping[str, Any]) -> BotConfig:
        """``spawn_bot``'s checks: the config to start, or ``ConfigError``."""
        if isinstance(spec, BotConfig):
            config = spec
            declared = config in self.config.bots  # ``start`` spawns the configured ones
            refused = spawn_refusals(
                config.id, config.mode, running=self.bot_ids, declared=declared
            )
            if refused:
                raise ConfigError(refused)
        else:
            config = parse_bot_spec(spec, config=self.config, running=self.bot_ids)
        if config.exchange not in self.market_data.exchanges:
            raise ConfigError([f"bot.exchange: unknown exchange {config.exchange!r}"])
        return config

    async def _spawn_local(
        self, config: BotConfig, *, owner_epoch: int = 0, deadline: float = math.inf
    ) -> str:
        child = self._bots.add(config, owner_epoch=owner_epoch, deadline=deadline)
        return await self._start_bot_child(config.id, child)

    async def _start_bot_child(self, bot_id: str, child: ChildSpec) -> str:
        try:
            await self._bots_tree.start_child(child)
        except BaseException:
            self._bots.remove(bot_id)
            raise
        return bot_id

    async def stop_bot(self, bot_id: str) -> None:
        """Stop a bot (its state stays in the journal; spawning it again resumes it). In a
        cluster, wherever it runs: it leaves the cluster."""
        if self.cluster_bots is not None:
            await self.cluster_bots.command(bot_id, "stop")
            return
        await self._stop_local(bot_id)

    async def _stop_local(self, bot_id: str) -> None:
        if bot_id not in self._bots.slots:
            raise KeyError(bot_id)
        await self._bots_tree.stop_child(bot_child_name(bot_id))
        self._bots.remove(bot_id)

    async def pause_bot(self, bot_id: str) -> None:
        if self.cluster_bots is not None:
            await self.cluster_bots.command(bot_id, "pause")
            return
        await self._running_bot(bot_id).pause()

    async def resume_bot(self, bot_id: str) -> None:
        if self.cluster_bots is not None:
            await self.cluster_bots.command(bot_id, "resume")
            return
        await self._running_bot(bot_id).resume()

    # --- the node's side of a cluster's bots (supervisor.cluster.bot_node.BotHost) ----------

    async def run_owned_bot(self, config: BotConfig, *, owner_epoch: int, deadline: float) -> None:
        if config.mode == "live" and config.account not in self.tree.accounts.accounts:
            # (the scheduler places live bots only where their account is: a config mismatch)
            raise BotCriptoFyError(
                f"bot {config.id!r}: account {config.account!r} is not configured on this node"
            )
        await self._spawn_local(config, owner_epoch=owner_epoch, deadline=deadline)

    async def stop_owned_bot(self, bot_id: str) -> None:
        await self._stop_local(bot_id)

    def set_bot_deadline(self, bot_id: str, deadline: float) -> None:
        self._bots.set_deadline(bot_id, deadline)

    async def command_owned_bot(self, bot_id: str, action: str) -> None:
        bot = self._running_bot(bot_id)
        if action == "pause":
            await bot.pause()
        elif action == "resume":
            await bot.resume()
        elif action == "halt":
            await bot.halt()
        else:
            raise ValueError(f"unknown command {action!r}")

    def owned_bots_health(self) -> dict[str, Any]:
        return self._local_bot_health()

    async def account_command(self, action: str, reason: str) -> dict[str, Any]:
        """Another node's halt or resume-trading, for this node's accounts. The sender swept
        the venue for orders no account tracks; here each account cancels its own."""
        accounts = self.tree.accounts
        if action == "halt":
            return await accounts.halt(reason, self.journal, now_ts=time.time(), sweep=False)
        if action == "resume_trading":
            return {"resumed": await accounts.resume_trading(self.journal, now_ts=time.time())}
        raise ValueError(f"unknown accounts command {action!r}")

    async def halt(self, reason: str = "halted by the operator") -> dict[str, Any]:
        """Stop trading everywhere: first every live account refuses new orders (until
        ``resume_trading``, across restarts) and cancels every open order of ours on the
        venue; then every bot is paused with its resting (paper) orders cancelled. In a
        cluster, every node's accounts too (``ClusterBots.broadcast``; ``nodes`` in the answer
        says what each answered), and every bot wherever it runs."""
        cancels = await self.tree.accounts.halt(reason, self.journal, now_ts=time.time())
        nodes: Mapping[str, Any] | None = None
        if self.cluster_bots is not None:  # every node's accounts, then every node's bots
            nodes = await self.cluster_bots.broadcast("halt", reason)
        halted: list[str] = []
        for bot_id, slot in list(self._bots.slots.items()):
            bot = slot.bot
            if bot is None or bot.statistics().state not in ("running", "paused"):
                continue
            try:
                await bot.halt()
            except BotCriptoFyError:
                continue  # it stopped meanwhile: nothing of it can trade
            halted.append(bot_id)
        if self.cluster_bots is not None:  # and every bot the other nodes run
            halted += await self._halt_elsewhere(self.cluster_bots)
        self.alerts.emit(
            Alert(
                "bot_halted",
                "daemon",
                "critical",
                f"trading halted: {reason}",
                {"bots": halted, "cancels": cancels},
            )
        )
        out: dict[str, Any] = {
            "action": "halted",
            "reason": reason,
            "bots": halted,
            "accounts": cancels,
        }
        if nodes is not None:
            out["nodes"] = _node_answers(nodes)
        return out

    async def _halt_elsewhere(self, cluster: ClusterBots) -> list[str]:
        """Halt every cluster bot another node runs (each through its owner, at once); the
        ids of those halted. A bot between owners is not reached: its journaled state is
        what it resumes with, so halt again once it runs."""
        halted: list[str] = []

        async def halt_one(bot_id: str) -> None:
            try:
                await cluster.command(bot_id, "halt")
            except (BotCriptoFyError, KeyError):
                return
            halted.append(bot_id)

        async with trio.open_nursery() as nursery:
            for bot_id in sorted(cluster.view.assigned):
                if bot_id not in self._bots.slots:
                    nursery.start_soon(halt_one, bot_id)
        return sorted(halted)

    async def resume_trading(self) -> dict[str, Any]:
        """Lift the accounts' halt; bots stay paused until each is resumed."""
        accounts = await self.tree.accounts.resume_trading(self.journal, now_ts=time.time())
        out: dict[str, Any] = {"action": "trading resumed", "accounts": accounts}
        if self.cluster_bots is not None:  # and on every other node
            out["nodes"] = _node_answers(await self.cluster_bots.broadcast("resume_trading"))
        return out

    def bot(self, bot_id: str) -> Bot:
        """The bot's current actor, for ``statistics()`` and ``wait_processed``."""
        return self._running_bot(bot_id)

    @property
    def bot_ids(self) -> tuple[str, ...]:
        return tuple(self._bots.slots)

    def _running_bot(self, bot_id: str) -> Bot:
        slot = self._bots.slots.get(bot_id)
        if slot is None or slot.bot is None:
            raise KeyError(bot_id)
        for child in self._bots_tree.children():
            if child.name == bot_child_name(bot_id) and child.state == "failed":
                # Given up on (a crash loop): no run will take the command. A bot restarting
                # with backoff does take it, from its next run.
                raise BotCriptoFyError(
                    f"bot {bot_id!r} was given up on after repeated crashes"
                    f" ({child.last_error}); stop and spawn it again, or restart the daemon"
                )
        return slot.bot

    # --- read API (supervisor.read_api: GET /bots...) ---------------------------------------

    def bot_views(self) -> dict[str, BotView]:
        """Every bot with its config, its ``/health`` entry and, only while its actor runs, its
        statistics (a restarting bot's last actor holds numbers the journal may have outgrown)."""
        children = {c.name: c for c in self._bots_tree.children()}
        health = self.health()["bots"]
        views = {}
        for bot_id, slot in self._bots.slots.items():
            child = children.get(bot_child_name(bot_id))
            running = slot.bot is not None and child is not None and child.state == "running"
            stats = slot.bot.statistics() if running and slot.bot is not None else None
            views[bot_id] = BotView(slot.config, health[bot_id], stats)
        if self.cluster_bots is not None:  # the bots other nodes run, as last reported
            for bot_id, config in self.cluster_bots.view.configs.items():
                if bot_id not in views:
                    views[bot_id] = BotView(config, health[bot_id], None)
        return views

    async def bot_orders(self, bot_id: str) -> list[OrderRecord]:
        """The bot's journaled orders, oldest first; ``KeyError`` for a bot not run here (so
        the read API answers 404 for an id ``GET /bots`` does not list)."""
        self._known_bot(bot_id)
        return await self.journal.orders(bot_id)

    async def bot_fills(self, bot_id: str) -> list[FillRecord]:
        """The bot's journaled fills, oldest first; ``KeyError`` as ``bot_orders``."""
        self._known_bot(bot_id)
        return await self.journal.fills(bot_id)

    def _known_bot(self, bot_id: str) -> None:
        """``KeyError`` unless the bot runs here or (a cluster's, in the shared journal)
        anywhere in the cluster."""
        if bot_id in self._bots.slots:
            return
        if self.cluster_bots is not None and bot_id in self.cluster_bots.view.configs:
            return
        raise KeyError(bot_id)

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
                "stream_repairs": ex.stream_repairs,
                "messages": ex.messages_received,
                "decode_errors": ex.decode_errors,
                "streams": {
                    f"{s.kind}:{s.symbol}": "stale" if s.stale else (s.state or "pending")
                    for s in ex.streams
                },
            }
        for name, view in self.market_data.cluster_statistics().items():
            lag_mean = view.lag_sum_s / view.lag_count if view.lag_count else None
            cluster: dict[str, Any] = {
                "node": view.node,
                "role": view.role,
                "leader": view.leader,
                "epoch": view.epoch,
                "redis_up": view.redis_up,
                "redis_rtt_s": view.redis_rtt_s,
                "lag_mean_s": lag_mean,
                "takeovers": view.takeovers,
                "stale_epoch_dropped": view.stale_epoch_dropped,
                "last_error": view.last_error,
            }
            exchanges[name]["cluster"] = cluster
            if not view.redis_up:  # its streams are down: its bots see nothing
                exchanges[name]["healthy"] = False
        bots = self._local_bot_health()
        out: dict[str, Any] = {"exchanges": exchanges, "bots": bots}
        if self.cluster_bots is not None:
            out["cluster_bots"] = self._cluster_bots_health(bots)
        accounts = self.tree.accounts.health()
        if accounts:
            out["accounts"] = accounts
        out["uptime_s"] = round(self.uptime_s, 3)
        return out

    def _cluster_bots_health(self, bots: dict[str, Any]) -> dict[str, Any]:
        """Adds every cluster bot to ``bots`` (where it runs, its epoch); returns the node's
        view of the cluster's placement."""
        cluster = self.cluster_bots
        assert cluster is not None
        view = cluster.view
        for bot_id, entry in bots.items():
            held = cluster.held.get(bot_id)
            entry.update(node=cluster.node, epoch=held.acquired.epoch if held else None)
        for bot_id in view.configs:
            if bot_id in bots:
                continue
            reported = view.status.get(bot_id)
            assigned = view.assigned.get(bot_id)
            entry = dict(reported) if reported else {"healthy": False, "state": "unassigned"}
            if reported is None or reported.get("node") != assigned:
                entry.update(healthy=False, state="moving" if assigned else "unassigned")
            entry["assigned"] = assigned
            bots[bot_id] = entry
        return {
            "node": cluster.node,
            "redis_up": cluster.redis_up,
            "scheduler": view.scheduler,
            "nodes": sorted(n for n, info in view.nodes.items() if "bots" in info.get("roles", ())),
            "running_here": sorted(b for b, h in cluster.held.items() if h.started),
            "takeovers": cluster.takeovers,
        }

    def _local_bot_health(self) -> dict[str, Any]:
        bots = {}
        children = {c.name: c for c in self._bots_tree.children()}
        for bot_id, slot in self._bots.slots.items():
            child = children.get(bot_child_name(bot_id))
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
                    price=s.price_status,
                    quarantined_ticks=s.quarantined_ticks,
                    position=s.position_size,
                    quote_balance=s.quote_balance,
                    realized_pnl=s.realized_pnl,
                    unrealized_pnl=s.unrealized_pnl,
                    last_action=s.last_action,
                    orders=s.orders,
                )
            blocked = self.tree.accounts.executors.blocked.get(bot_id)
            if blocked is not None:
                entry.update(healthy=False, blocked=blocked)
            bots[bot_id] = entry
        return bots

    def bot_snapshots(self) -> dict[str, dict[str, Any]]:
        """Per-bot counters for ``/metrics`` (monotonic across restarts of a bot, except the
        decision latency: a restart's new actor starts its histogram again, which Prometheus
        reads as a counter reset). Money is in the quote currency, named in ``quote``, since one
        daemon may trade USDT and USD books side by side. The position's value is at the bid
        (what selling it would fetch), unknown until the bot has a price."""
        out = {}
        for bot_id, slot in self._bots.slots.items():
            if slot.bot is None:
                continue
            s = slot.bot.statistics()
            rejections = dict(slot.rejections_before)
            for reason, count in s.rejections.items():
                rejections[reason] = rejections.get(reason, 0) + count
            value = None if s.last_price is None else s.base_balance * s.last_price
            if value is None and s.base_balance == 0:
                value = s.base_balance  # nothing held: worth 0 at any price
            out[bot_id] = {
                "exchange": slot.config.exchange,
                "symbol": slot.config.symbol,
                "quote": split_unified(slot.config.symbol)[1],
                "ticks": slot.ticks_before + s.ticks,
                "quarantined_ticks": slot.quarantined_before + s.quarantined_ticks,
                "orders": s.orders,
                "fills": s.fills,
                "rejections": rejections,
                "position": s.position_size,
                "realized_pnl": s.realized_pnl,
                "unrealized_pnl": s.unrealized_pnl,
                "quote_balance": s.quote_balance,
                "position_value": value,
                "equity": None if value is None else s.quote_balance + value,
                "decision_latency": s.decision_latency,
                "state": s.state,
            }
        return out

    def account_snapshots(self) -> dict[str, dict[str, Any]]:
        return {
            name: {**account.statistics(), "halted": account.halted is not None}
            for name, account in self.tree.accounts.accounts.items()
        }

    def child_snapshots(self) -> dict[str, ChildStatistics]:
        """Supervised children for ``/metrics``: every bot, and each exchange's connections
        (the child with its backoff and breaker) as ``exchange:<name>``."""
        children = {c.name: c for c in self._bots_tree.children()}
        feeds = self.root.subtree(FEEDS)
        for name in self.market_data.exchanges:
            wanted = connections_child(name)
            for child in feeds.subtree(exchange_supervisor(name)).children():
                if child.name == wanted:
                    children[f"exchange:{name}"] = child
        return children


def _node_answers(sent: Mapping[str, Any]) -> dict[str, Any]:
    """What each other node answered an accounts command (``None``: not reached in time)."""
    if "error" in sent:
        return {"error": sent["error"]}
    out: dict[str, Any] = {
        node: answer.get("accounts") if answer.get("ok") else {"error": answer.get("error")}
        for node, answer in sent["reached"].items()
    }
    out.update(dict.fromkeys(sent["unreached"]))
    return out


async def _start_all(starts: Sequence[Callable[[], Awaitable[object]]]) -> None:
    """Run every start concurrently; once all have settled, the first error is raised as
    itself (not in a group), as a serial start would have raised it."""
    errors: list[Exception] = []

    async def one(start: Callable[[], Awaitable[object]]) -> None:
        try:
            await start()
        except Exception as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for start in starts:
            nursery.start_soon(one, start)
    if errors:
        raise errors[0]


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
    "daemon started" alert goes out. ``rng`` seeds every backoff's jitter; ``observers`` see
    every supervision event. Either way the configured bots start concurrently
    (``System.start``): one bot's recovery never holds back the others."""
    tree = build_tree(config, observers=observers, configured_bots=False)
    async with open_supervisor_tree(tree.root, rng=rng, observers=tree.observers) as root:
        # A [cluster] node without the "bots" role runs none (build_tree leaves them out too).
        runs_bots = config.cluster is None or "bots" in config.cluster.roles
        pending = config.bots if runs_bots else ()
        system = System(config, tree, root, pending=pending)
        cluster = config.cluster
        if cluster is not None and cluster.bot_placement == "cluster":
            from supervisor.cluster.bot_node import ClusterBots

            redis_url = cluster.redis_url
            if redis_url is None:
                assert cluster.redis_url_env is not None
                redis_url = resolve_secret(cluster.redis_url_env, config.secrets)
            system.cluster_bots = ClusterBots(
                system,
                cluster,
                redis_url,
                config.bots,
                accounts=tuple(account.name for account in config.accounts),
            )
            system._pending = ()
        if start:
            await system.start()
        try:
            yield system
        finally:
            if system.started:  # queued now, delivered when the alerts actor stops (after this)
                system.alerts.emit(Alert("daemon_stopped", "daemon", "info", "daemon stopped", {}))
