"""One exchange: reference-counted subscriptions, shards of streams, REST fallback switching,
the exchange's state and statistics.

Shape (the supervision is the daemon's, kept as data in ``supervisor/feeds.py``)::

    ExchangePool.run               streams service: the subscription actors' tasks and the
                                   REST fallback loop; ready at once
    ExchangePool.run_connections   every connection (shard) of the exchange in one nursery;
                                   the supervisor keeps it with backoff and a circuit breaker

Decisions:

* **Two services, so a failing socket never touches a subscriber.** Subscriptions, their feeds
  and their actors live in ``run``; sockets live in ``run_connections``. When a connection
  fails, only ``run_connections`` ends (with a ``FeedError``) and is started again after the
  backoff; subscribers are told ``down`` and keep their mailboxes. All connections of an
  exchange restart together: that is rare (clean reconnects such as Binance
  ``serverShutdown`` are handled inside each connection and cost no restart) and keeps "while
  the breaker is open no connection attempts" literally true.
* **Supervision arrives as plain values.** The pool does not know the supervisor: whoever
  supervises ``run_connections`` reports its state (``set_session_state``) and its breaker's
  (``set_breaker_state``), from which the pool derives the exchange state, tells subscribers
  ``down`` when the breaker opens, and switches ticker streams to the REST fallback while it
  is not closed.
* **Shards.** A new stream goes to the first connection with room under
  ``max_streams_per_connection`` (the codec's limit, e.g. Binance 1024, or a lower override);
  when all are full, a new shard and connection are added and started by the running
  ``run_connections``. Streams stay on their shard for their life, so a reconnect restores
  each shard's own set.
* **Reference counts are synchronous.** ``subscribe()`` is an async context manager whose
  enter and exit never await: the count goes up and down atomically, a cancelled subscriber
  cannot leak a reference. The subscription actor lingers before it leaves the shard
  (``subscription.py``); the connection learns of the change through a poke (``Shard``) and
  reconciles wanted streams against the wire (``connection.py``).
* **Ready** (for the supervisor) means every connection that has streams is streaming, or
  there is nothing to carry (idle). A half-open trial therefore has to connect *and* restore
  every subscription before it can count as a success.
* **A cluster seam, inert by default.** A node of a cluster that does not hold the
  exchange's wire connection feeds the same subscriptions from elsewhere (``streams()``,
  ``Subscription.publish``) and says so with ``set_remote``; the node that holds it forwards
  each socket read, each REST-polled ticker and each ``down`` told to a stream
  (``set_batch_hook``); ``on_wanted`` hears streams come and go, so the cluster can tell the
  leader what this node wants. None of it is set outside a cluster. While the pool is fed from
  elsewhere its own breaker does not touch its subscribers (no ``down``, no REST polling: the
  node that leads polls for the cluster), and its exchange state is the remote feed's.
* **State** of the exchange, derived, never stored twice: ``idle`` (no stream wanted),
  ``connecting``, ``streaming``, ``backoff``, ``circuit_open``, ``fallback`` (REST polling
  serves tickers; shown while the breaker is not closed unless the WebSocket streams again),
  ``stopped``. Each change is logged and kept in a bounded history in ``statistics()``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Literal

import attrs
import trio
from loguru import logger

from actors.errors import HandlerError, describe_error
from actors.exchanges import Codec, codec_for
from actors.market_data.config import FeedConfig
from actors.market_data.connection import (
    Connection,
    ConnectionStatistics,
    LatencyHistogram,
    LatencySnapshot,
    Shard,
)
from actors.market_data.mailbox import (
    TRADE_RING_SIZE,
    Handler,
    Mailbox,
    MailboxItem,
    MailboxStatistics,
)
from actors.market_data.rest_fallback import RestPoller, RestPollerStatistics
from actors.market_data.subscription import StreamStatistics, Subscription, SubscriptionState
from actors.market_data.transport import Connector, connector_for
from actors.messages import STREAM_KINDS, FeedState, Stream, Ticker

if TYPE_CHECKING:
    from loguru import Logger

__all__ = [
    "BreakerState",
    "ExchangePool",
    "ExchangeState",
    "ExchangeStatistics",
    "PoolTuning",
    "SessionState",
    "StateTransition",
]

ExchangeState = Literal[
    "idle", "connecting", "streaming", "backoff", "circuit_open", "fallback", "stopped"
]
# The supervisor's view of ``run_connections`` and of its circuit breaker, as plain strings.
SessionState = Literal["starting", "running", "backoff", "circuit_open", "stopped", "failed"]
BreakerState = Literal["closed", "open", "half_open"]
HISTORY_SIZE = 32


@attrs.frozen
class PoolTuning:
    """Knobs that are not user configuration: limits for tests, lifetimes, lingers.

    ``max_streams_per_connection`` lowers the codec's own limit (never raises it);
    ``trade_ring_size`` is the per-stream trade buffer shared by its subscribers;
    ``unsubscribe_linger_s`` is how long a stream stays on the wire after its last subscriber
    left; ``idle_linger_s`` how long a socket stays open after its last stream left;
    ``connector``, when set, replaces the configured ``transport`` (engine options, an
    in-memory transport for benchmarks). ``on_frames``, when set, is called with every socket
    read's raw frames as ``on_frames(exchange, connection index, frames, received_ts)`` (a
    recorder of raw frames); unset, it costs one test per read.
    """

    max_streams_per_connection: int | None = None
    trade_ring_size: int = TRADE_RING_SIZE
    max_lifetime_s: float = 23.5 * 3600.0
    min_session_s: float = 1.0
    unsubscribe_linger_s: float = 2.0
    idle_linger_s: float = 2.0
    rest_timeout_s: float = 5.0
    shutdown_grace_s: float = 5.0
    connector: Connector | None = None
    on_frames: Callable[[str, int, list[str | bytes], float], None] | None = None


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
    the freshest; both None while nothing is connected / nothing was received. ``restarts``
    counts runs of the connections after the first, ``reconnects`` adds the connections' own
    clean reconnects; ``last_error`` is the error that last ended the connections.
    """

    name: str
    protocol: str
    url: str
    transport: str
    state: ExchangeState
    session_state: SessionState
    breaker_state: BreakerState
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
    stream_repairs: int
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
    tuning: PoolTuning = attrs.field(factory=PoolTuning)

    _codec: Codec = attrs.field(init=False)
    _url: str = attrs.field(init=False)
    _capacity: int | None = attrs.field(init=False)
    _connector: Connector = attrs.field(init=False)
    _subs: dict[Stream, Subscription] = attrs.field(factory=dict, init=False)
    _shards: list[Shard] = attrs.field(factory=list, init=False)
    _connections: list[Connection] = attrs.field(factory=list, init=False)
    _session_state: SessionState = attrs.field(default="starting", init=False)
    _breaker_state: BreakerState = attrs.field(default="closed", init=False)
    _breaker_transitions: int = attrs.field(default=0, init=False)
    _runs: int = attrs.field(default=0, init=False)  # of run_connections
    _last_error: str | None = attrs.field(default=None, init=False)
    _state: ExchangeState = attrs.field(default="idle", init=False)
    _history: deque[StateTransition] = attrs.field(init=False)
    _streaming: trio.Event = attrs.field(factory=trio.Event, init=False)
    _session_changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _left_skipped: int = attrs.field(default=0, init=False)
    _left_dropped: int = attrs.field(default=0, init=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)  # run's, while it runs
    _poller: RestPoller | None = attrs.field(default=None, init=False)
    _fallback_wanted: trio.Event = attrs.field(factory=trio.Event, init=False)
    _fallback_scope: trio.CancelScope | None = attrs.field(default=None, init=False)
    # The cluster seam (see the module docstring); all None outside a cluster.
    on_wanted: Callable[[Subscription, bool], None] | None = attrs.field(default=None, init=False)
    _batch_hook: Callable[[list[object], float], None] | None = attrs.field(
        default=None, init=False
    )
    _remote: bool | None = attrs.field(default=None, init=False)  # fed from elsewhere: live?
    log: Logger = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        cfg = self.config
        self.log = logger.bind(actor="exchange_pool", exchange=cfg.name)
        self._codec = self._new_codec()
        self._url = cfg.url or self._codec.default_url
        own_limit = self._codec.max_streams_per_connection
        limits = [n for n in (own_limit, self.tuning.max_streams_per_connection) if n is not None]
        self._capacity = min(limits) if limits else None
        self._connector = self.tuning.connector or connector_for(cfg.transport)
        self._history = deque(maxlen=HISTORY_SIZE)
        if cfg.fallback == "rest":
            self._poller = RestPoller(
                exchange=cfg.name,
                codec=self._new_codec(),
                base_url=cfg.rest_url,
                interval_s=cfg.rest_poll_interval_s,
                targets=self._ticker_subscriptions,
                timeout_s=self.tuning.rest_timeout_s,
                on_published=self._rest_published,
            )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> ExchangeState:
        return self._state

    # --- the streams service ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The subscription actors and the REST fallback loop, until cancelled; ready at once.

        Stopped (cancelled), it retires every subscription: subscribers still reading get
        ``EndOfChannel``, and a later run starts from a clean slate. Crashed (a bug), it leaves
        them to the supervisor's restart, which starts the tasks of those that still exist."""
        crashed = False
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for sub in list(self._subs.values()):
                    nursery.start_soon(sub.run)
                if self._poller is not None:
                    nursery.start_soon(self._run_fallback, self._poller)
                task_status.started()
                await trio.sleep_forever()
        except Exception:
            crashed = True
            raise
        finally:
            self._nursery = None
            if not crashed:
                for sub in list(self._subs.values()):
                    sub.retire()

    async def _run_fallback(self, poller: RestPoller) -> None:
        while True:
            await self._fallback_wanted.wait()
            with trio.CancelScope() as scope:
                self._fallback_scope = scope
                try:
                    self._update_state()
                    await poller.run()
                finally:
                    self._fallback_scope = None
                    self._update_state()

    # --- the connections (kept by the supervisor) -----------------------------------------------

    async def run_connections(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Every connection of the exchange in one nursery, new shards included as they come.
        Ready once every wanted stream streams, or there is nothing to carry; raises a
        ``FeedError`` (in a group) when a socket fails."""
        self._runs += 1
        signalled = False
        try:
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
        except Exception as exc:
            self._last_error = describe_error(exc)
            raise

    def set_session_state(self, state: SessionState) -> None:
        """The supervisor's state of ``run_connections`` changed."""
        self._session_state = state
        self._update_state()

    def set_breaker_state(self, state: BreakerState) -> None:
        """The circuit breaker of ``run_connections`` moved: ``open`` tells every subscriber
        ``down`` and, with ``fallback = "rest"``, hands ticker streams to REST polling until it
        is ``closed`` again."""
        if state == self._breaker_state:
            return
        self._breaker_state = state
        self._breaker_transitions += 1
        if state == "open" and self._remote is None:
            for sub in list(self._subs.values()):
                sub.down("circuit open")
            self._start_fallback()
        elif state == "closed":
            self._stop_fallback("circuit closed")
        self._update_state()

    @property
    def breaker_state(self) -> BreakerState:
        return self._breaker_state

    def _start_fallback(self) -> None:
        if self._poller is not None:
            for sub in self._ticker_subscriptions():
                sub.use_source("rest")
            self._fallback_wanted.set()

    def _stop_fallback(self, reason: str) -> None:
        for sub in self._ticker_subscriptions():
            sub.use_source("ws")
        self._fallback_wanted = trio.Event()
        if self._fallback_scope is not None:
            self._fallback_scope.cancel(reason=reason)

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
        sub = self._subscription(stream)
        mailbox = sub.acquire()
        try:
            yield mailbox
        finally:
            sub.release(mailbox)

    @asynccontextmanager
    async def subscribe_handler(
        self, kind: str, symbol: str, handler: Callable[[MailboxItem], object]
    ) -> AsyncIterator[Handler]:
        """``async with pool.subscribe_handler("ticker", "BTC/USDT", fn):`` calls ``fn`` with
        every item of the stream, in the reader's task (see ``mailbox.Handler``), from the
        current state and newest ticker on. If ``fn`` raises, it is detached, the block is
        cancelled and ``HandlerError`` is raised from its exception when the block exits:
        the failure belongs to the task that subscribed, never to the reader."""
        stream = self.validate(kind, symbol)
        sub = self._subscription(stream)
        failures: list[Exception] = []
        with trio.CancelScope() as scope:

            def failed(exc: Exception) -> None:
                failures.append(exc)
                scope.cancel(reason="handler raised")

            entry = sub.acquire_handler(handler, failed)
            try:
                entry.replay()
                yield entry
            finally:
                sub.release(entry)
        if failures:
            exc = failures[0]
            raise HandlerError(
                f"{self.name} {kind} {symbol}: handler {handler!r} raised {exc!r}"
            ) from exc

    def _subscription(self, stream: Stream) -> Subscription:
        sub = self._subs.get(stream)
        if sub is not None:
            return sub
        shard = self._shard_with_room()
        circuit_open = self._breaker_state != "closed" and self._remote is None
        rest = circuit_open and self._poller is not None and stream.kind == "ticker"
        sub = Subscription(
            self.name,
            stream,
            connection=shard.index,
            stale_after_s=self.config.stale_after_s,
            linger_s=self.tuning.unsubscribe_linger_s,
            trade_ring_size=self.tuning.trade_ring_size,
            source="rest" if rest else "ws",
            on_retire=self._retired,
            on_quiet=self._quiet,
            on_state=self._told,
        )
        if circuit_open:
            sub.down("circuit open")
        self._subs[stream] = sub
        shard.add(sub)
        if self._nursery is not None:
            self._nursery.start_soon(sub.run)
        self.log.debug("stream wanted", kind=stream.kind, symbol=stream.symbol)
        self._update_state()
        if self.on_wanted is not None:
            self.on_wanted(sub, True)
        return sub

    # --- the cluster seam ------------------------------------------------------------------------

    def streams(self) -> Mapping[Stream, Subscription]:
        """The streams wanted here, for a feed that does not come from this pool's sockets."""
        return self._subs

    def set_batch_hook(self, hook: Callable[[list[object], float], None] | None) -> None:
        """Hand every socket read's events to ``hook`` (a cluster leader), from the next
        session of each connection on; and each REST-polled ticker and each ``down`` told
        to a stream (as a ``FeedState``), at once."""
        self._batch_hook = hook
        for connection in self._connections:
            connection.on_batch = hook

    def set_remote(self, streaming: bool | None) -> None:
        """None: this pool's sockets feed it (the default). True/False: another node's feed
        does, and is (not) flowing; the exchange state follows that instead of the sockets.
        Fed from elsewhere, the pool does not poll REST; back to its own sockets while its
        breaker is not closed, it polls again (the node leads in fallback)."""
        was_local = self._remote is None
        self._remote = streaming
        if self._breaker_state != "closed":
            if streaming is None and not was_local:
                self._start_fallback()
            elif streaming is not None and was_local:
                self._stop_fallback("fed from elsewhere")
        self._update_state()

    def _rest_published(self, ticker: Ticker) -> None:
        hook = self._batch_hook
        if hook is not None:
            hook([ticker], ticker.received_ts)

    def _told(self, sub: Subscription, state: SubscriptionState, reason: str) -> None:
        hook = self._batch_hook
        if hook is not None and state == "down":
            hook([FeedState(self.name, sub.stream, state, reason)], time.time())

    def _quiet(self, sub: Subscription) -> None:
        self._connections[sub.connection].repair(sub)

    def _retired(self, sub: Subscription) -> None:
        """The subscription leaves (linger over, or the service stopped): off its shard, its
        totals kept."""
        skipped, dropped = sub.totals()
        self._left_skipped += skipped
        self._left_dropped += dropped
        if self._subs.get(sub.stream) is sub:
            del self._subs[sub.stream]
        self._shards[sub.connection].remove(sub)
        self.log.debug("stream released", kind=sub.stream.kind, symbol=sub.stream.symbol)
        self._update_state()
        if self.on_wanted is not None:
            self.on_wanted(sub, False)

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
                connector=self._connector,
                max_lifetime_s=self.tuning.max_lifetime_s,
                min_session_s=self.tuning.min_session_s,
                idle_linger_s=self.tuning.idle_linger_s,
                on_change=self._update_state,
                on_batch=self._batch_hook,
                on_frames=(
                    None
                    if self.tuning.on_frames is None
                    else partial(self.tuning.on_frames, self.name, shard.index)
                ),
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

    # --- state ----------------------------------------------------------------------------------

    def _base_state(self) -> ExchangeState:
        session = self._session_state
        if session in ("stopped", "failed"):
            return "stopped"
        if self._remote is not None:  # a follower in backoff is fed all the same
            if not self._subs:
                return "idle"
            return "streaming" if self._remote else "connecting"
        if session == "backoff":
            return "backoff"
        if session == "circuit_open":
            return "circuit_open"
        active = [c for c in self._connections if c.shard.streams or c.state != "idle"]
        if not active:
            return "idle"
        if all(c.state == "streaming" for c in active):
            return "streaming"
        return "connecting"

    def _update_state(self) -> None:
        base = self._base_state()
        polling = self._fallback_scope is not None and base not in ("streaming", "stopped")
        state: ExchangeState = "fallback" if polling else base
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
        restarts = max(0, self._runs - 1)
        latency = (
            _merge_latency([c.latency for c in conns]) if conns else LatencyHistogram().snapshot()
        )
        return ExchangeStatistics(
            name=self.name,
            protocol=self.config.protocol_name,
            url=self._url,
            transport=self.config.transport,
            state=self._state,
            session_state=self._session_state,
            breaker_state=self._breaker_state,
            breaker_transitions=self._breaker_transitions,
            messages_received=sum(c.messages_received for c in conns),
            bytes_received=sum(c.bytes_received for c in conns),
            decode_errors=sum(c.decode_errors for c in conns),
            reconnects=sum(c.reconnects for c in conns) + restarts,
            restarts=restarts,
            connects=sum(c.connects for c in conns),
            connect_attempts=sum(c.connect_attempts for c in conns),
            subscribe_requests=sum(c.subscribe_requests for c in conns),
            unsubscribe_requests=sum(c.unsubscribe_requests for c in conns),
            subscription_errors=sum(c.subscription_errors for c in conns),
            stale_replacements=sum(c.stale_replacements for c in conns),
            stream_repairs=sum(c.stream_repairs for c in conns),
            skipped=self._left_skipped + sum(s.skipped for s in streams),
            dropped=self._left_dropped + sum(s.dropped for s in streams),
            connection_uptime_s=max(uptimes) if uptimes else None,
            last_message_age_s=min(ages) if ages else None,
            last_error=self._last_error,
            latency=latency,
            streams=streams,
            subscribers=subscribers,
            connections=conns,
            fallback=None if self._poller is None else self._poller.statistics(),
            transitions=tuple(self._history),
        )
