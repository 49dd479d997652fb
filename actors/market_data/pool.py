"""One exchange's connection pool: subscriptions, shards of streams, supervision, fallback.

Shape:

    ExchangePool.run ── Keeper (backoff + circuit breaker from config) ── session
                     │                                   └─ Connection.run per shard
                     └─ fallback loop (only with fallback = "rest"): RestPoller while open

Decisions:

* **One keeper, one breaker, one backoff per exchange** (DESIGN §5: the breaker is per
  exchange). The keeper's child is the *session*, which runs every connection (shard) of the
  exchange in one nursery: when one connection fails, the exchange restarts as a whole. That
  is rare (clean reconnects such as Binance ``serverShutdown`` are handled inside each
  connection and cost no restart) and keeps "while the breaker is open no connection attempts"
  literally true.
* **Shards.** A new stream goes to the first connection with room under
  ``max_streams_per_connection`` (the codec's limit, e.g. Binance 1024, or a lower override);
  when all are full, a new shard and connection are added and started by the running session.
  Streams stay on their shard for their life, so a reconnect restores each shard's own set.
* **Reference counts are synchronous.** ``subscribe()`` is an async context manager whose
  enter and exit never await: the count goes up and down atomically, a cancelled subscriber
  cannot leak a reference, and the connection learns of the change through a poke
  (``Shard``), reconciling wanted streams against the wire (``connection.py``).
* **Ready (for the keeper)** means every connection that has streams is streaming, or there
  is nothing to carry (idle). A half-open trial therefore has to connect *and* restore every
  subscription before it can count as a success.
* **State** of the exchange, derived, never stored twice: ``idle`` (no stream wanted),
  ``connecting``, ``streaming``, ``backoff``, ``circuit_open``, ``fallback`` (REST polling
  serves tickers; shown while the breaker is not closed unless the WebSocket streams again),
  ``stopped``. Each change is logged and kept in a bounded history in ``statistics()``.
* When the breaker opens, every subscriber is told ``down`` ("circuit open"); with the REST
  fallback, ticker subscribers then get ``fallback`` and REST tickers until the breaker closes.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import attrs
import trio
from loguru import logger

from actors.exchanges import Codec, codec_for
from actors.market_data.config import FeedConfig
from actors.market_data.connection import (
    Connection,
    ConnectionStatistics,
    LatencyHistogram,
    LatencySnapshot,
    Shard,
)
from actors.market_data.mailbox import TRADE_RING_SIZE, Mailbox, MailboxStatistics
from actors.market_data.rest_fallback import RestPoller, RestPollerStatistics
from actors.market_data.subscription import StreamStatistics, Subscription
from actors.market_data.transport import Connector, WsprotoConnector
from actors.messages import STREAM_KINDS, Stream
from supervisor.otp.backoff import BackoffPolicy
from supervisor.otp.breaker import BreakerPolicy
from supervisor.otp.events import (
    BreakerTransitioned,
    ChildState,
    ChildStateChanged,
    Observer,
    SupervisionEvent,
)
from supervisor.otp.intensity import RestartIntensity
from supervisor.otp.keeper import ChildStatistics, Keeper
from supervisor.otp.spec import ChildSpec

__all__ = [
    "ExchangePool",
    "ExchangeState",
    "ExchangeStatistics",
    "PoolTuning",
    "StateTransition",
]

ExchangeState = Literal[
    "idle", "connecting", "streaming", "backoff", "circuit_open", "fallback", "stopped"
]
HISTORY_SIZE = 32


@attrs.frozen
class PoolTuning:
    """Knobs that are not user configuration: engine, limits for tests, lifetimes.

    ``max_streams_per_connection`` lowers the codec's own limit (never raises it);
    ``trade_ring_size`` is the per-stream trade buffer shared by its subscribers.
    """

    connector: Connector = attrs.field(factory=WsprotoConnector)
    max_streams_per_connection: int | None = None
    trade_ring_size: int = TRADE_RING_SIZE
    max_lifetime_s: float = 23.5 * 3600.0
    min_session_s: float = 1.0
    idle_linger_s: float = 2.0
    rest_timeout_s: float = 5.0
    shutdown_grace_s: float = 5.0


@attrs.frozen
class StateTransition:
    at: float  # trio clock
    from_state: ExchangeState
    to_state: ExchangeState


@attrs.frozen
class ExchangeStatistics:
    """One exchange, as ``/health`` and ``/metrics`` read it (see ``supervisor.metrics``).

    Counters are totals over every connection of the exchange and over its whole life,
    including subscriptions and subscribers that have left (``skipped``/``dropped``).
    ``connection_uptime_s`` is the longest-running open connection's, ``last_message_age_s``
    the freshest; both None while nothing is connected / nothing was received.
    """

    name: str
    protocol: str
    url: str
    state: ExchangeState
    breaker_state: str
    breaker_transitions: int
    messages_received: int
    bytes_received: int
    decode_errors: int
    reconnects: int
    restarts: int
    connects: int
    connect_attempts: int
    subscribe_requests: int
    unsubscribe_requests: int
    subscription_errors: int
    stale_replacements: int
    skipped: int
    dropped: int
    connection_uptime_s: float | None
    last_message_age_s: float | None
    last_error: str | None
    latency: LatencySnapshot
    streams: tuple[StreamStatistics, ...]
    subscribers: tuple[MailboxStatistics, ...]
    connections: tuple[ConnectionStatistics, ...]
    fallback: RestPollerStatistics | None
    keeper: ChildStatistics
    transitions: tuple[StateTransition, ...]


def _merge_latency(snapshots: Sequence[LatencySnapshot]) -> LatencySnapshot:
    first = snapshots[0]
    counts = [sum(column) for column in zip(*(s.bucket_counts for s in snapshots), strict=True)]
    return LatencySnapshot(
        first.bucket_bounds_s,
        tuple(counts),
        sum(s.sum_s for s in snapshots),
        sum(s.count for s in snapshots),
    )


@attrs.define(eq=False)
class ExchangePool:
    config: FeedConfig
    backoff: BackoffPolicy
    breaker: BreakerPolicy
    rng: random.Random = attrs.field(factory=random.Random)
    intensity: RestartIntensity = attrs.field(factory=RestartIntensity)
    observers: Sequence[Observer] = ()
    tuning: PoolTuning = attrs.field(factory=PoolTuning)

    _codec: Codec = attrs.field(init=False)
    _url: str = attrs.field(init=False)
    _capacity: int | None = attrs.field(init=False)
    _subs: dict[Stream, Subscription] = attrs.field(factory=dict, init=False)
    _shards: list[Shard] = attrs.field(factory=list, init=False)
    _connections: list[Connection] = attrs.field(factory=list, init=False)
    _keeper: Keeper = attrs.field(init=False)
    _keeper_state: ChildState = attrs.field(default="starting", init=False)
    _breaker_state: str = attrs.field(default="closed", init=False)
    _breaker_transitions: int = attrs.field(default=0, init=False)
    _state: ExchangeState = attrs.field(default="idle", init=False)
    _history: deque[StateTransition] = attrs.field(init=False)
    _streaming: trio.Event = attrs.field(factory=trio.Event, init=False)
    _session_changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _left_skipped: int = attrs.field(default=0, init=False)
    _left_dropped: int = attrs.field(default=0, init=False)
    _poller: RestPoller | None = attrs.field(default=None, init=False)
    _fallback_wanted: trio.Event = attrs.field(factory=trio.Event, init=False)
    _fallback_scope: trio.CancelScope | None = attrs.field(default=None, init=False)
    log: Any = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        cfg = self.config
        self.log = logger.bind(actor="exchange_pool", exchange=cfg.name)
        self._codec = codec_for(cfg.protocol_name, exchange=cfg.name)
        self._url = cfg.url or self._codec.default_url
        own_limit = self._codec.max_streams_per_connection
        limits = [n for n in (own_limit, self.tuning.max_streams_per_connection) if n is not None]
        self._capacity = min(limits) if limits else None
        self._history = deque(maxlen=HISTORY_SIZE)
        spec = ChildSpec(
            name=cfg.name,
            run=self._run_session,
            restart="permanent",
            backoff=self.backoff,
            breaker=self.breaker,
            shutdown_grace_s=self.tuning.shutdown_grace_s,
        )
        self._keeper = Keeper(
            spec,
            intensity=self.intensity,
            rng=self.rng,
            observers=(self._observe, *self.observers),
            supervisor="market_data",
        )
        if cfg.fallback == "rest":
            self._poller = RestPoller(
                exchange=cfg.name,
                codec=codec_for(cfg.protocol_name, exchange=cfg.name),
                base_url=cfg.rest_url,
                interval_s=cfg.rest_poll_interval_s,
                targets=self._ticker_subscriptions,
                timeout_s=self.tuning.rest_timeout_s,
            )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> ExchangeState:
        return self._state

    # --- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Ready once the keeper's first attempt settled (streaming, idle, or backing off)."""
        try:
            async with trio.open_nursery() as nursery:
                if self._poller is not None:
                    nursery.start_soon(self._run_fallback)
                await nursery.start(self._keeper.run)
                task_status.started()
        finally:
            for sub in list(self._subs.values()):
                sub.close()  # subscribers still reading get EndOfChannel

    async def _run_session(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The keeper's child: every connection of the exchange, in one nursery."""
        signalled = False
        async with trio.open_nursery() as nursery:
            running = 0
            while True:
                changed = self._session_changed = trio.Event()
                while running < len(self._connections):
                    nursery.start_soon(self._connections[running].run)
                    running += 1
                if not signalled and self._base_state() in ("idle", "streaming"):
                    signalled = True
                    task_status.started()
                await changed.wait()

    async def _run_fallback(self) -> None:
        poller = self._poller
        assert poller is not None
        while True:
            await self._fallback_wanted.wait()
            with trio.CancelScope() as scope:
                self._fallback_scope = scope
                self._update_state()
                await poller.run()
            self._fallback_scope = None
            self._update_state()

    # --- subscriptions --------------------------------------------------------------------------

    def validate(self, kind: str, symbol: str) -> Stream:
        if kind not in STREAM_KINDS:
            raise ValueError(f"unknown stream kind {kind!r}; expected one of {STREAM_KINDS}")
        self._codec.native_symbol(symbol)  # raises ValueError naming a malformed symbol
        return Stream(kind, symbol)  # type: ignore[arg-type]

    @asynccontextmanager
    async def subscribe(self, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
        """``async with pool.subscribe("ticker", "BTC/USDT") as events:``; see ``Mailbox``."""
        stream = self.validate(kind, symbol)
        sub, mailbox = self._acquire(stream)
        try:
            yield mailbox
        finally:
            self._release(sub, mailbox)

    def _acquire(self, stream: Stream) -> tuple[Subscription, Mailbox]:
        sub = self._subs.get(stream)
        if sub is None:
            shard = self._shard_with_room()
            sub = Subscription(
                self.name,
                stream,
                connection=shard.index,
                trade_ring_size=self.tuning.trade_ring_size,
            )
            if self._breaker_state != "closed":
                sub.tell("down", "circuit open")
            self._subs[stream] = sub
            shard.add(sub)
            self.log.debug("stream wanted", kind=stream.kind, symbol=stream.symbol)
            self._update_state()
        return sub, sub.add_subscriber()

    def _release(self, sub: Subscription, mailbox: Mailbox) -> None:
        if sub.remove_subscriber(mailbox) > 0:
            return
        skipped, dropped = sub.totals()
        self._left_skipped += skipped
        self._left_dropped += dropped
        del self._subs[sub.stream]
        self._shards[sub.connection].remove(sub)
        sub.close()
        self.log.debug("stream released", kind=sub.stream.kind, symbol=sub.stream.symbol)
        self._update_state()

    def _shard_with_room(self) -> Shard:
        for shard in self._shards:
            if not shard.full:
                return shard
        shard = Shard(len(self._shards), self._capacity)
        self._shards.append(shard)
        self._connections.append(
            Connection(
                exchange=self.name,
                url=self._url,
                shard=shard,
                codec_factory=self._new_codec,
                stale_after_s=self.config.stale_after_s,
                connector=self.tuning.connector,
                max_lifetime_s=self.tuning.max_lifetime_s,
                min_session_s=self.tuning.min_session_s,
                idle_linger_s=self.tuning.idle_linger_s,
                on_change=self._update_state,
            )
        )
        if shard.index > 0:
            self.log.info("adding a connection", connection=shard.index, capacity=self._capacity)
        self._session_changed.set()
        return shard

    def _new_codec(self) -> Codec:
        return codec_for(self.config.protocol_name, exchange=self.name)

    def _ticker_subscriptions(self) -> list[Subscription]:
        return [sub for sub in self._subs.values() if sub.stream.kind == "ticker"]

    # --- supervision events and state ------------------------------------------------------------

    def _observe(self, event: SupervisionEvent) -> None:
        if isinstance(event, ChildStateChanged):
            self._keeper_state = event.to_state
        elif isinstance(event, BreakerTransitioned):
            to_state = event.transition.to_state
            self._breaker_state = to_state
            self._breaker_transitions += 1
            if to_state == "open":
                for sub in self._subs.values():
                    sub.tell("down", "circuit open")
                if self._poller is not None:
                    self._fallback_wanted.set()
            elif to_state == "closed":
                self._fallback_wanted = trio.Event()
                if self._fallback_scope is not None:
                    self._fallback_scope.cancel(reason="circuit closed")
        self._update_state()

    def _base_state(self) -> ExchangeState:
        keeper = self._keeper_state
        if keeper == "backoff":
            return "backoff"
        if keeper == "circuit_open":
            return "circuit_open"
        if keeper in ("stopped", "failed"):
            return "stopped"
        active = [c for c in self._connections if c.shard.streams or c.state != "idle"]
        if not active:
            return "idle"
        if all(c.state == "streaming" for c in active):
            return "streaming"
        return "connecting"

    def _update_state(self) -> None:
        base = self._base_state()
        state: ExchangeState = (
            "fallback" if self._fallback_scope is not None and base != "streaming" else base
        )
        old = self._state
        if state != old:
            self._state = state
            now = trio.current_time()
            self._history.append(StateTransition(now, old, state))
            self.log.info("exchange state", from_state=old, to_state=state)
            if state == "streaming":
                self._streaming.set()
            elif old == "streaming":
                self._streaming = trio.Event()
        self._session_changed.set()

    async def wait_streaming(self) -> None:
        """Block until the exchange is streaming (every wanted stream restored). With nothing
        subscribed the exchange is idle, not streaming: subscribe first."""
        while self._state != "streaming":
            await self._streaming.wait()
        await trio.lowlevel.checkpoint()

    # --- statistics -----------------------------------------------------------------------------

    def statistics(self) -> ExchangeStatistics:
        conns = tuple(c.statistics() for c in self._connections)
        streams = tuple(sub.statistics() for sub in self._subs.values())
        subscribers = tuple(
            mailbox.statistics() for sub in self._subs.values() for mailbox in sub.mailboxes
        )
        uptimes = [c.connection_uptime_s for c in conns if c.connection_uptime_s is not None]
        ages = [c.last_message_age_s for c in conns if c.last_message_age_s is not None]
        keeper = self._keeper.statistics()
        latency = (
            _merge_latency([c.latency for c in conns]) if conns else LatencyHistogram().snapshot()
        )
        return ExchangeStatistics(
            name=self.name,
            protocol=self.config.protocol_name,
            url=self._url,
            state=self._state,
            breaker_state=self._breaker_state,
            breaker_transitions=self._breaker_transitions,
            messages_received=sum(c.messages_received for c in conns),
            bytes_received=sum(c.bytes_received for c in conns),
            decode_errors=sum(c.decode_errors for c in conns),
            reconnects=sum(c.reconnects for c in conns) + keeper.restarts,
            restarts=keeper.restarts,
            connects=sum(c.connects for c in conns),
            connect_attempts=sum(c.connect_attempts for c in conns),
            subscribe_requests=sum(c.subscribe_requests for c in conns),
            unsubscribe_requests=sum(c.unsubscribe_requests for c in conns),
            subscription_errors=sum(c.subscription_errors for c in conns),
            stale_replacements=sum(c.stale_replacements for c in conns),
            skipped=self._left_skipped + sum(s.skipped for s in streams),
            dropped=self._left_dropped + sum(s.dropped for s in streams),
            connection_uptime_s=max(uptimes) if uptimes else None,
            last_message_age_s=min(ages) if ages else None,
            last_error=keeper.last_error,
            latency=latency,
            streams=streams,
            subscribers=subscribers,
            connections=conns,
            fallback=None if self._poller is None else self._poller.statistics(),
            keeper=keeper,
            transitions=tuple(self._history),
        )
