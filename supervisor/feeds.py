"""The market-data plane in the supervision tree: one subtree per exchange, and its facade.

    feeds = build_feeds(config.exchanges, backoff=config.backoff,
                        circuit_breaker=config.circuit_breaker)
    # feeds.spec goes into the daemon's tree, feeds.observer among its observers, and
    async with feeds.market_data.subscribe("binance", "ticker", "BTC/USDT") as events:
        async for event in events:      # Ticker | Trade | FeedState | Lagged
            ...

or, standalone, ``async with open_market_data(...) as md:`` runs that tree by itself.

The tree (names are what ``/metrics`` and the alerts show)::

    feeds                       max_restarts=0: an exchange that gives up stops the plane
    └─ exchange:<name>          one per exchange, its own restart budget (restart_limits)
       ├─ streams:<name>        ExchangePool.run: subscription actors, REST fallback loop
       ├─ (cluster:<name>)      with [cluster] only: ExchangeMember.run (Redis side)
       └─ connections:<name>    ExchangePool.run_connections: backoff + circuit breaker

Decisions:

* **Supervision is data.** The pools only know how to run; which child restarts how, with
  which backoff and breaker (the exchange's override if it has one, the top-level settings
  otherwise), is the spec built here. ``build_feeds`` is pure, so the daemon can put the
  plane into its own tree and read it back as data.
* **Each exchange has its own restart budget**, as a nested supervisor: a network outage fails
  every exchange at once, and with one shared budget three exchanges each restarting twice
  would escalate and stop the daemon while every breaker is doing its job. An exchange that
  exceeds its budget escalates, and ``feeds`` (no budget of its own) passes that on at once:
  ``RestartIntensityError`` leaves ``open_market_data``, and the daemon exits 1.
* **Streams before connections.** Started in that order, stopped in reverse: at shutdown the
  sockets close first, then the subscriptions end (subscribers get ``EndOfChannel``); a failing
  socket restarts only the connections, never a subscriber's feed.
* **The observer** routes the connections' supervision events to their pool as plain values
  (``set_session_state``, ``set_breaker_state``): the pools never import the supervisor.
* ``open_market_data`` returns once every exchange's first attempt has settled (streaming,
  idle with nothing subscribed yet, or backing off): an exchange that is down at boot does not
  block the others, or the program.
* **A cluster adds one child.** With a ``[cluster]`` section, ``cluster:<name>`` (between
  the two) runs the node's ``ExchangeMember`` (``supervisor.cluster.member``: follow the feed
  through Redis, challenge for the lease, lead), and ``connections:<name>`` runs the pool's
  connections only while this node leads, with the same backoff and breaker; everything
  else, subscribers included, is the same. The cluster package (and coredis) is imported
  only then.
* **Handlers.** ``subscribe_handler`` is ``subscribe`` for a function instead of a task: the
  reader calls it with each item (``actors.market_data.mailbox.Handler``), which saves the
  task switch a mailbox costs, for consumers that only record, count or forward.
* ``subscribe`` checks its arguments before anything else: an unknown exchange, an unknown
  kind or a malformed symbol is a ``ValueError`` saying which, raised by ``subscribe()``
  itself rather than on entering the context.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import attrs

from actors.market_data.mailbox import Handler, Mailbox, MailboxItem
from actors.market_data.pool import ExchangePool, ExchangeStatistics, PoolTuning
from supervisor.config import ClusterConfig, ExchangeConfig
from supervisor.otp.backoff import BackoffPolicy
from supervisor.otp.breaker import BreakerPolicy
from supervisor.otp.events import (
    BreakerTransitioned,
    ChildStateChanged,
    Observer,
    SupervisionEvent,
)
from supervisor.otp.spec import ChildSpec, SupervisorSpec
from supervisor.otp.tree import open_supervisor_tree

if TYPE_CHECKING:
    from supervisor.cluster.member import ClusterExchangeStatistics, ExchangeMember

__all__ = [
    "FEEDS",
    "Feeds",
    "MarketData",
    "MarketDataStatistics",
    "build_feeds",
    "cluster_child",
    "connections_child",
    "exchange_supervisor",
    "open_market_data",
    "streams_child",
]

FEEDS = "feeds"


def exchange_supervisor(exchange: str) -> str:
    """Name of the exchange's subtree (a child of ``feeds``)."""
    return f"exchange:{exchange}"


def streams_child(exchange: str) -> str:
    return f"streams:{exchange}"


def cluster_child(exchange: str) -> str:
    """With ``[cluster]``: the node's Redis side of the exchange (``ExchangeMember.run``)."""
    return f"cluster:{exchange}"


def connections_child(exchange: str) -> str:
    """The child with the backoff and the breaker: its keeper's statistics are the exchange's
    restarts, failures and breaker state."""
    return f"connections:{exchange}"


@attrs.frozen
class MarketDataStatistics:
    exchanges: Mapping[str, ExchangeStatistics]


@attrs.define(eq=False)
class MarketData:
    """Handle on the plane's pools. ``build_feeds`` creates one; it serves while its spec
    runs."""

    _pools: Mapping[str, ExchangePool]
    _members: Mapping[str, ExchangeMember] = attrs.field(factory=dict)  # with [cluster] only

    def _pool(self, exchange: str) -> ExchangePool:
        pool = self._pools.get(exchange)
        if pool is None:
            known = ", ".join(sorted(self._pools)) or "none"
            raise ValueError(f"unknown exchange {exchange!r}; configured exchanges: {known}")
        return pool

    def subscribe(
        self, exchange: str, kind: str, symbol: str
    ) -> AbstractAsyncContextManager[Mailbox]:
        """``async with md.subscribe(exchange, kind, symbol) as events:``; ``events`` is a
        ``trio.abc.ReceiveChannel`` of ``Ticker``/``Trade``/``FeedState``/``Lagged``."""
        pool = self._pool(exchange)
        pool.validate(kind, symbol)
        return pool.subscribe(kind, symbol)

    def subscribe_handler(
        self, exchange: str, kind: str, symbol: str, handler: Callable[[MailboxItem], object]
    ) -> AbstractAsyncContextManager[Handler]:
        """``async with md.subscribe_handler(exchange, kind, symbol, fn):`` calls ``fn(item)``
        with every ``Ticker``/``Trade``/``FeedState`` of the stream as it is published, in the
        connection's reader task: no task switch, so the least latency the plane has, and no
        conflation; ``fn`` must be quick and must not block. If it raises, the block is
        cancelled and ``HandlerError`` leaves it (``ExchangePool.subscribe_handler``)."""
        pool = self._pool(exchange)
        pool.validate(kind, symbol)
        return pool.subscribe_handler(kind, symbol, handler)

    async def wait_streaming(self, exchange: str) -> None:
        """Block until ``exchange`` streams every wanted stream (for startup and tests)."""
        await self._pool(exchange).wait_streaming()

    @property
    def exchanges(self) -> tuple[str, ...]:
        return tuple(self._pools)

    def statistics(self) -> MarketDataStatistics:
        return MarketDataStatistics(
            exchanges={name: pool.statistics() for name, pool in self._pools.items()}
        )

    def cluster_statistics(self) -> Mapping[str, ClusterExchangeStatistics]:
        """Per exchange, this node's view of the cluster; empty without ``[cluster]``."""
        return {name: member.statistics() for name, member in self._members.items()}


@attrs.frozen
class _Router:
    """Routes each exchange's connections events to its pool."""

    pools: Mapping[tuple[str, str], ExchangePool]  # (supervisor, child) -> pool

    def __call__(self, event: SupervisionEvent) -> None:
        if isinstance(event, ChildStateChanged):
            pool = self.pools.get((event.supervisor, event.child))
            if pool is not None:
                pool.set_session_state(event.to_state)
        elif isinstance(event, BreakerTransitioned):
            pool = self.pools.get((event.supervisor, event.child))
            if pool is not None:
                pool.set_breaker_state(event.transition.to_state)


@attrs.frozen
class Feeds:
    spec: SupervisorSpec  # name "feeds"; one child per exchange
    market_data: MarketData  # subscribe/wait_streaming/statistics/exchanges
    observer: Observer  # routes supervision events to the right pool (session state, breaker)


def build_feeds(
    exchanges: Sequence[ExchangeConfig],
    *,
    backoff: BackoffPolicy,
    circuit_breaker: BreakerPolicy,
    restart_limits: tuple[int, float] = (5, 60.0),
    tuning: PoolTuning | None = None,
    cluster: ClusterConfig | None = None,
    redis_url: str | None = None,
) -> Feeds:
    """The plane as data: pools, their subtrees and the observer that connects them. Runs
    nothing. ``restart_limits`` is each exchange's own ``(max_restarts, period_s)``. With
    ``cluster`` (and the resolved ``redis_url``) each exchange's connections child is its
    cluster member."""
    names = [ex.name for ex in exchanges]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate exchange names: {', '.join(duplicates)}")
    tuning = tuning if tuning is not None else PoolTuning()
    max_restarts, period_s = restart_limits
    pools: dict[str, ExchangePool] = {}
    routes: dict[tuple[str, str], ExchangePool] = {}
    subtrees: list[SupervisorSpec] = []
    members: dict[str, ExchangeMember] = {}
    if cluster is not None:
        from supervisor.cluster.member import ExchangeMember

        if redis_url is None:
            raise ValueError("a cluster needs its redis_url")
    for ex in exchanges:
        pool = pools[ex.name] = ExchangePool(ex, tuning)
        run_connections = pool.run_connections
        supervisor = exchange_supervisor(ex.name)
        connections = connections_child(ex.name)
        routes[supervisor, connections] = pool
        ex_backoff = ex.backoff or backoff
        cluster_children: tuple[ChildSpec, ...] = ()
        if cluster is not None:
            assert redis_url is not None
            member = members[ex.name] = ExchangeMember(pool, cluster, redis_url)
            run_connections = member.run_connections
            cluster_children = (
                ChildSpec(
                    name=cluster_child(ex.name),
                    run=member.run,
                    restart="permanent",
                    backoff=ex_backoff,
                    shutdown_grace_s=tuning.shutdown_grace_s,
                ),
            )
        subtrees.append(
            SupervisorSpec(
                name=supervisor,
                max_restarts=max_restarts,
                period_s=period_s,
                children=(
                    ChildSpec(
                        name=streams_child(ex.name),
                        run=pool.run,
                        restart="permanent",
                        backoff=ex_backoff,
                        shutdown_grace_s=tuning.shutdown_grace_s,
                    ),
                    *cluster_children,
                    ChildSpec(
                        name=connections,
                        run=run_connections,
                        restart="permanent",
                        backoff=ex_backoff,
                        breaker=ex.circuit_breaker or circuit_breaker,
                        shutdown_grace_s=tuning.shutdown_grace_s,
                    ),
                ),
            )
        )
    spec = SupervisorSpec(name=FEEDS, children=tuple(subtrees), max_restarts=0)
    return Feeds(spec=spec, market_data=MarketData(pools, members), observer=_Router(routes))


@asynccontextmanager
async def open_market_data(
    exchanges: Sequence[ExchangeConfig],
    *,
    backoff: BackoffPolicy,
    circuit_breaker: BreakerPolicy,
    rng: random.Random | None = None,
    restart_limits: tuple[int, float] = (5, 60.0),
    observers: Sequence[Observer] = (),
    tuning: PoolTuning | None = None,
    cluster: ClusterConfig | None = None,
    redis_url: str | None = None,
) -> AsyncIterator[MarketData]:
    """Run the plane for the block's duration (the tree of ``build_feeds`` as the root);
    ``observers`` see every supervision event of it (metrics, alerts)."""
    feeds = build_feeds(
        exchanges,
        backoff=backoff,
        circuit_breaker=circuit_breaker,
        restart_limits=restart_limits,
        tuning=tuning,
        cluster=cluster,
        redis_url=redis_url,
    )
    async with open_supervisor_tree(feeds.spec, rng=rng, observers=(feeds.observer, *observers)):
        yield feeds.market_data
