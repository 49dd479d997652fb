"""The daemon's supervision tree as data: ``build_tree(config)`` (pure: nothing runs, nothing is
opened; the actors are constructed, which only creates their inboxes).

The root's children, in start order; a shutdown stops them in reverse order, one at a time, so
each one outlives everything that depends on it:

* ``journal``: this process's one journal writer (SQLite, or PostgreSQL with ``[journal] url``,
  its password resolved here from ``password_env``). Up first, down last, so every bot's last
  write commits.
* ``alerts``: the webhook actor, up before anything can alert and down after ``daemon_stopped``.
* ``bot_events``: forwards the bots' events (halts, stop-loss hits) to ``alerts``.
* ``feeds``: ``supervisor.feeds.build_feeds``, one subtree per exchange. It outlives the bots:
  a bot is stopped while its feed still streams, and never sees its feed go first.
* ``recorder``: with ``[record]``, writes what the feeds deliver to Parquet
  (``actors.recording``). After the feeds and before the bots, so it stops before the feeds
  (its last flush holds everything they delivered); contained like a bot: a failing disk is
  never a reason to stop trading.
* ``account:NAME``: one per ``[[accounts]]`` entry (``supervisor.accounts``), ready only once
  the account is reconciled, so no live bot trades before; restarted with ``[backoff]``. On
  every node of a cluster that has the entry (its live bots may be placed there).
* ``bots``: the configured bots as ``transient`` children (restarted with ``[backoff]``
  after a crash, not after a clean stop); bots spawned later are added at the end. None on a
  ``[cluster]`` node whose roles leave out ``bots``; on a cluster node ``{node}`` in
  ``[journal] path`` is the node's name, so nodes on one machine can share a config file.

**Crash loops are contained at the level they belong to.** Each bot is a *contained* child
(``ChildSpec.restart_limit``) with a budget of its own, ``[supervisor] max_restarts`` per
``period_s``: a bot beyond it is given up on (state ``failed``, a ``crash_loop`` alert,
unhealthy in ``/health`` with its last error) and the other bots go on trading. A bot's bug
is its own strategy's (or its own config's) business, and one bot must not stop the others,
nor use up a budget they share. So the ``bots`` supervisor never gives up because of a bot;
its own budget only applies to children without a limit of their own (none today).
Infrastructure keeps OTP's escalation: the journal, the alerts, an account, or an exchange
beyond its own budget (``supervisor.feeds``) means every bot is blind or cannot record what
it does, and stopping is the safe answer. The root restarts nothing (``max_restarts=0``):
when one of its children fails, or a subtree gives up, the whole system stops and the
failure leaves ``open_supervisor`` as a ``RestartIntensityError`` whose ``__cause__`` is the
child's own error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

import attrs
import trio

from actors.bots import Bot, BotEvent, Subscribe
from actors.bots.executor import ExecutorFactory, make_executor
from actors.errors import ConfigError, JournalError
from actors.journal import Journal
from actors.journal.actor import CLOSE_GRACE_S
from actors.journal.base import FencedWriteError
from actors.market_data.pool import PoolTuning
from actors.recording.config import record_streams
from supervisor.accounts import Accounts, account_child_name
from supervisor.alerts import Alerts, forward_bot_events, supervision_alerts
from supervisor.config import BotConfig, Config
from supervisor.config_loader import resolve_secret
from supervisor.feeds import MarketData, build_feeds, connections_child
from supervisor.otp.backoff import BackoffPolicy
from supervisor.otp.events import Observer
from supervisor.otp.spec import DEFAULT_FAULTS, ChildSpec, RestartLimit, SupervisorSpec

if TYPE_CHECKING:
    from actors.recording.recorder import Recorder

__all__ = ["BOTS", "BotSlot", "Bots", "Tree", "bot_child_name", "build_tree"]

BOTS = "bots"  # the bots' supervisor, a child of the root
BOT_EVENTS_BUFFER = 256


def bot_child_name(bot_id: str) -> str:
    return f"bot:{bot_id}"


@attrs.define(eq=False)
class BotSlot:
    """One bot id's place in the ``bots`` subtree, across the restarts of its actor."""

    config: BotConfig
    bot: Bot | None = None  # the current run's actor (a restart builds a new one)
    ticks_before: int = 0  # ticks of earlier runs, so /metrics counters stay monotonic
    quarantined_before: int = 0
    rejections_before: dict[str, int] = attrs.field(factory=dict)
    # A cluster's bot (supervisor.cluster.bot_node): its lease epoch, written with every
    # journal write, and the instant its lease stops covering it (the run is cancelled then).
    owner_epoch: int = 0
    deadline: float = math.inf
    scope: trio.CancelScope | None = None


@attrs.define(eq=False)
class Bots:
    """The bots' slots, and the ``ChildSpec`` that runs each (a fresh ``Bot`` per attempt,
    replayed from the journal), contained within ``restart_limit`` (see the module docstring).
    Only the Trio thread touches it."""

    subscribe: Subscribe
    journal: Journal
    events: trio.MemorySendChannel[BotEvent]
    backoff: BackoffPolicy
    shutdown_grace_s: float
    restart_limit: RestartLimit
    executor_factory: ExecutorFactory = make_executor
    slots: dict[str, BotSlot] = attrs.field(factory=dict)

    def add(
        self, config: BotConfig, *, owner_epoch: int = 0, deadline: float = math.inf
    ) -> ChildSpec:
        """Reserve the slot for ``config.id`` (``ValueError`` if taken); returns its child.
        ``owner_epoch`` and ``deadline``: a cluster's bot (see ``BotSlot``)."""
        if config.id in self.slots:
            raise ValueError(f"a bot with id {config.id!r} is already running")
        slot = self.slots[config.id] = BotSlot(config, owner_epoch=owner_epoch, deadline=deadline)
        return ChildSpec(
            name=bot_child_name(config.id),
            run=partial(self._run, slot),
            restart="transient",
            backoff=self.backoff,
            shutdown_grace_s=self.shutdown_grace_s,
            restart_limit=self.restart_limit,
        )

    def remove(self, bot_id: str) -> None:
        del self.slots[bot_id]

    def set_deadline(self, bot_id: str, deadline: float) -> None:
        """Move a cluster bot's deadline (its lease was renewed, or lost: ``-inf``)."""
        slot = self.slots.get(bot_id)
        if slot is None:
            return
        slot.deadline = deadline
        if slot.scope is not None:
            slot.scope.deadline = deadline

    async def _run(
        self, slot: BotSlot, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if slot.bot is not None:  # a restart: keep the counters of the run that ended
            previous = slot.bot.statistics()
            slot.ticks_before += previous.ticks
            slot.quarantined_before += previous.quarantined_ticks
            for reason, count in previous.rejections.items():
                slot.rejections_before[reason] = slot.rejections_before.get(reason, 0) + count
        events = self.events.clone()
        slot.bot = Bot(
            slot.config,
            self.subscribe,
            self.journal,
            events=events,
            executor_factory=self.executor_factory,
            owner_epoch=slot.owner_epoch,
        )
        with events, trio.CancelScope(deadline=slot.deadline) as scope:
            slot.scope = scope
            try:
                await slot.bot.run(task_status=task_status)
            except* FencedWriteError:
                if not slot.owner_epoch:
                    raise
                # A newer owner took the bot over: this run is deposed, not crashed.
                slot.bot.log.warning("bot taken over by a newer owner", epoch=slot.owner_epoch)
                slot.deadline = -math.inf
            finally:
                slot.scope = None


@attrs.frozen
class Tree:
    """What ``build_tree`` returns: the root spec to run, the observers to run it with, and
    the handles the ``System`` needs."""

    root: SupervisorSpec
    observers: tuple[Observer, ...]
    journal: Journal
    alerts: Alerts
    market_data: MarketData
    bots: Bots
    accounts: Accounts
    recorder: Recorder | None = None  # with [record]


def _forward_frames(
    sink: list[Recorder], exchange: str, connection: int, frames: list[str | bytes], ts: float
) -> None:
    sink[0].take_frames(exchange, connection, frames, ts)


def build_tree(
    config: Config, *, observers: Sequence[Observer] = (), configured_bots: bool = True
) -> Tree:
    """The whole system as a supervision tree (see the module docstring).

    ``observers`` see every supervision event besides the feeds' own and the alerts'. With
    ``configured_bots=False`` the configured bots are left out of the ``bots`` subtree, for the
    caller to start later (the daemon binds HTTP first). ``ConfigError`` if a webhook's
    ``url_env`` or an account's key names an unset variable.
    """
    alerts = Alerts.from_config(config.alerts, config.secrets)
    cluster = config.cluster
    redis_url = None
    journal_config = config.journal
    if cluster is not None:
        # Nodes on one machine share a config file, not a journal file.
        path = journal_config.path.replace("{node}", cluster.node)
        journal_config = attrs.evolve(journal_config, path=path)
        redis_url = cluster.redis_url
        if redis_url is None:
            assert cluster.redis_url_env is not None
            redis_url = resolve_secret(cluster.redis_url_env, config.secrets)
        if "bots" not in cluster.roles:
            configured_bots = False  # a feed-only node runs no bots
        if cluster.bot_placement == "cluster":
            configured_bots = False  # placed by the cluster (supervisor.cluster.bot_node)
            # Live bots too: placed only on nodes with their [[accounts]] entry (the config
            # loader checks that each names one here), resolved by their new owner's start.
            if journal_config.url is None and "bots" in cluster.roles:
                raise ConfigError(
                    [
                        "journal.url: bots placed across a cluster need the shared PostgreSQL"
                        ' journal (or set cluster.bot_placement = "per_node")'
                    ]
                )
    # The recorder taps the connections' raw frames, but is built after the feeds it reads.
    raw_sink: list[Recorder] = []
    tuning = None
    if config.record is not None and config.record.raw_frames:
        tuning = PoolTuning(on_frames=partial(_forward_frames, raw_sink))
    feeds = build_feeds(
        config.exchanges,
        tuning=tuning,
        backoff=config.backoff,
        circuit_breaker=config.circuit_breaker,
        restart_limits=(config.supervisor.max_restarts, config.supervisor.period_s),
        cluster=cluster,
        redis_url=redis_url,
    )
    accounts = Accounts.build(config.accounts, config.bots, config.secrets)
    accounts.shared = cluster is not None and cluster.bot_placement == "cluster"
    journal_password = None  # [journal] url: PostgreSQL's password from env or secrets file
    if journal_config.password_env is not None:
        journal_password = resolve_secret(journal_config.password_env, config.secrets)
    journal = Journal(journal_config, password=journal_password)
    events_send, events_receive = trio.open_memory_channel[BotEvent](BOT_EVENTS_BUFFER)
    grace_s = config.supervisor.shutdown_grace_s
    bots = Bots(
        subscribe=feeds.market_data.subscribe,
        journal=journal,
        events=events_send,
        backoff=config.backoff,
        shutdown_grace_s=grace_s,
        restart_limit=RestartLimit(config.supervisor.max_restarts, config.supervisor.period_s),
        executor_factory=accounts.executors,
    )
    bot_children = [bots.add(bot) for bot in config.bots] if configured_bots else []
    recorder = None
    if config.record is not None:
        # Imported only when recording: it brings pyarrow (~0.1 s on every daemon start).
        from actors.recording.recorder import STOP_GRACE_S, Recorder

        streams = record_streams(config.record, ((b.exchange, b.symbol) for b in config.bots))
        recorder = Recorder(config.record, feeds.market_data.subscribe_handler, streams)
        raw_sink.append(recorder)
    recorder_children = (
        ()
        if recorder is None
        else (
            ChildSpec(
                "recorder",
                recorder.run,
                backoff=config.backoff,
                shutdown_grace_s=STOP_GRACE_S + grace_s,
                restart_limit=RestartLimit(
                    config.supervisor.max_restarts, config.supervisor.period_s
                ),
            ),
        )
    )
    # An exchange's breaker and staleness alerts are keyed by the exchange's name.
    alert_keys = {connections_child(ex.name): ex.name for ex in config.exchanges}
    root = SupervisorSpec(
        name="root",
        max_restarts=0,
        children=(
            ChildSpec(
                "journal",
                journal.run,
                # Cannot open (held by another daemon, unreadable): a reason to stop, not a bug.
                faults=(*DEFAULT_FAULTS, JournalError),
                shutdown_grace_s=2 * CLOSE_GRACE_S,  # it flushes, then closes, each bounded
            ),
            ChildSpec("alerts", alerts.run, shutdown_grace_s=alerts.shutdown_grace_s),
            ChildSpec(
                "bot_events",
                partial(forward_bot_events, events_receive, alerts),
                restart="transient",  # a clean end (no sender left) is not a failure
            ),
            feeds.spec,
            *recorder_children,
            *(
                ChildSpec(
                    account_child_name(name),
                    partial(accounts.run_account, name, journal, alerts),
                    backoff=config.backoff,
                    shutdown_grace_s=grace_s,
                )
                for name in accounts.accounts
            ),
            SupervisorSpec(
                name=BOTS,
                children=tuple(bot_children),
                max_restarts=config.supervisor.max_restarts,
                period_s=config.supervisor.period_s,
            ),
        ),
    )
    return Tree(
        root=root,
        observers=(feeds.observer, supervision_alerts(alerts, keys=alert_keys), *observers),
        journal=journal,
        alerts=alerts,
        market_data=feeds.market_data,
        bots=bots,
        accounts=accounts,
        recorder=recorder,
    )
