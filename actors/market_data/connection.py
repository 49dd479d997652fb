"""The connection actor: one WebSocket to one exchange, carrying one shard of its streams.

Tasks per open socket: the **reader** (this actor's main body) and the **control** task.

* Reader: ``frames of one socket read -> codec.decode_batch -> route by (kind, symbol) ->
  Subscription.publish`` with no await between receiving the frames and the subscribers'
  shared buffers (``mailbox.py``): routing is two dict lookups (tickers and trades by symbol),
  publishing is O(1) whatever the number of subscribers. Control events (acks, refusals,
  reconnect requests) take the slow branch. The codec gets the whole read at once because
  ticker subscribers read only the newest ticker of a stream: one overwritten within the same
  read is skipped undecoded where the codec can tell (Binance), and counted
  (``tickers_conflated``); trades and control events are all decoded and routed in order.
* Subscribers before the next read: after a batch that published data, a reader keeping up
  with its socket (a batch under ``SUBSCRIBERS_FIRST_BELOW``) yields for two scheduler
  rounds before it reads again. A woken subscriber runs only once the reader yields, and
  going back to a drained socket is where it would: an attempt to read that finds nothing
  (Trio tries the read before it waits), then the wait's registration, tens of µs, all of it
  between the publish and the subscriber (``tests/bench/market_data.py --only latency``).
  One round is not enough: Trio runs a round's tasks in either order, so the reader would
  often go first. A reader behind its socket (full reads) goes straight back to it instead:
  its next read does not wait, and subscribers not yet run when it publishes again find
  both publishes in one wake-up (the fan-out rate, ``--only fanout``, needs that).
* Watchdog: not a task but a deadline on the reader, for the connection as a whole. The
  reader's receive loop runs inside ``move_on_at(next check)`` (a subscribe sent by the control
  task pulls that deadline in to the new streams' stale limit); only when it passes does the
  reader decide whether the connection is dead: no frame at all for ``stale_after_s``, every
  watched stream quiet for ``stale_after_s``, or subscriptions not restored within
  ``stale_after_s`` -> ``StaleFeedError``, which the supervisor answers with a backoff restart.
  Telling one quiet stream ``stale`` is its subscription actor's job (``subscription.py``),
  and so is asking for its repair (``repair``): the control task resubscribes it (unsubscribe,
  then subscribe), at most ``MAX_STREAM_REPAIRS`` times while it stays quiet; one more quiet
  period after that and the connection is replaced (``StaleFeedError``), since a stream that
  resubscribing cannot bring back points at the socket or the server behind it.
  Between checks a batch of frames costs one ``current_time()`` and one ``time()`` call and a
  few attribute stores; there is no per-second polling.
* Control: reconciles the streams the shard *wants* (changed synchronously by subscribers
  entering and leaving, then a poke) with what the socket has *asked for*, and sends the
  difference in batches through a ``RequestBudget``. Reconciling state instead of queueing
  commands means the command path cannot grow without bound and a subscriber that enters and
  leaves before the next send costs no wire message at all.

Decisions:

* **Budget.** ``max_requests_per_second`` counts everything the exchange receives; Binance
  counts its WebSocket pongs too (it pings every 20 s). We keep one message per
  second for those and send at most ``floor(limit) - 1`` frames in any sliding window of
  ``1.1`` s; the extra 0.1 s absorbs network jitter at the window's edge. Binance: 4 frames per
  1.1 s, every stream of a batch in one SUBSCRIBE. Unsubscribes go first (they free capacity).
* **Streaming** (healthy) is reported only once every stream wanted when the socket opened has
  been confirmed by the exchange (ack, first data, or an explicit refusal), so "streaming"
  after a reconnect means every live subscription was restored. If that takes longer than
  ``stale_after_s`` the connection is replaced (``StaleFeedError``).
* **Clean reconnects** (``ReconnectRequested``, e.g. Binance ``serverShutdown``; a
  ``SequenceGap``; our own ``max_lifetime_s`` ahead of Binance's 24 h cut) close the socket and
  open a new one at once, without the supervisor: they are not failures and must not count
  toward the breaker. A request to reconnect within ``min_session_s`` of connecting is a
  ``ProtocolError`` instead, so a server that keeps asking is paced by the backoff.
* **Idle.** A connection with no wanted stream holds no socket (Kraken closes sockets without
  subscriptions, Coinbase closes a socket that has not subscribed within 5 s). After the last
  stream leaves (its subscription's own linger is over), the unsubscribe is sent and the socket
  lingers ``idle_linger_s`` for a new stream, then closes.
* **A bad frame is not a bad connection**: ``DecodeError`` is counted and logged at most once
  per ``DECODE_LOG_INTERVAL_S`` (with how many were suppressed); the connection goes on. The
  count is of frames decoded: a superseded ticker frame is never validated, so a malformed
  one is counted in ``tickers_conflated``, not in ``decode_errors``.
* On any abnormal end (error, or cancelled because a sibling connection failed) every stream
  of the shard is told ``down`` before the exception leaves.
* ``bytes_received`` counts characters of text frames (bytes of binary ones): every exchange
  here sends ASCII JSON, where the two are equal, and encoding each frame to count it would
  cost more than the count is worth.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import attrs
import trio
from loguru import logger
from trio.lowlevel import cancel_shielded_checkpoint

from actors.errors import (
    ConnectionLostError,
    DecodeError,
    FeedError,
    ProtocolError,
    StaleFeedError,
    describe_error,
)
from actors.exchanges import Codec
from actors.market_data.subscription import Subscription
from actors.market_data.transport import Connector, Transport, WsprotoConnector
from actors.messages import (
    ReconnectRequested,
    SequenceGap,
    Stream,
    Subscribed,
    SubscriptionError,
    SystemStatus,
    Ticker,
    Trade,
    Unsubscribed,
)

__all__ = [
    "DECODE_LOG_INTERVAL_S",
    "LATENCY_BUCKETS_S",
    "Connection",
    "ConnectionState",
    "ConnectionStatistics",
    "LatencyHistogram",
    "LatencySnapshot",
    "LogThrottle",
    "RequestBudget",
    "Shard",
]

DECODE_LOG_INTERVAL_S = 10.0
MAX_STREAM_REPAIRS = 2  # resubscribes of a quiet stream before its connection is replaced
# A batch smaller than this (characters) is a reader keeping up with its socket: its
# subscribers run before the next read. A quarter of the 64 KiB read buffer.
SUBSCRIBERS_FIRST_BELOW = 16 * 1024
# Exchange timestamp -> receipt. Fixed buckets (Prometheus style upper bounds, seconds).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

ConnectionState = Literal["idle", "connecting", "streaming", "down"]

# Wire state of one stream on the current socket.
_SUBSCRIBING = "subscribing"
_SUBSCRIBED = "subscribed"
_REFUSED = "refused"
_UNSUBSCRIBING = "unsubscribing"
_CARRIED = (_SUBSCRIBING, _SUBSCRIBED)  # asked for on this socket, data owed


# --- pure helpers ------------------------------------------------------------------------------


class RequestBudget:
    """At most ``limit`` sends in any window of ``window_s`` (a sliding window, pure).

    ``per_second=None`` means unlimited. ``reserve`` messages per second are left for frames we
    do not schedule ourselves (pongs).
    """

    def __init__(
        self, per_second: float | None, *, reserve: int = 1, window_s: float = 1.1
    ) -> None:
        self.window_s = window_s
        self.limit: int | None = (
            None if per_second is None else max(1, math.floor(per_second) - reserve)
        )
        self._sent: deque[float] = deque(maxlen=self.limit or 1)

    def next_send_at(self, now: float) -> float:
        if self.limit is None or len(self._sent) < self.limit:
            return now
        return max(now, self._sent[0] + self.window_s)

    def record(self, now: float) -> None:
        if self.limit is not None:
            self._sent.append(now)


class LogThrottle:
    """At most one log record per ``interval_s`` for a recurring problem (pure: takes ``now``);
    ``due`` returns how many were suppressed since the last one, or None to stay quiet."""

    __slots__ = ("_next_at", "_suppressed", "interval_s")

    def __init__(self, interval_s: float = DECODE_LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._next_at: float | None = None
        self._suppressed = 0

    def due(self, now: float) -> int | None:
        if self._next_at is not None and now < self._next_at:
            self._suppressed += 1
            return None
        suppressed, self._suppressed = self._suppressed, 0
        self._next_at = now + self.interval_s
        return suppressed


@attrs.frozen
class LatencySnapshot:
    """``bucket_counts`` are per bucket (not cumulative), one more than ``bucket_bounds_s``:
    the last counts values above the highest bound. Negative values (clock skew) land in the
    first bucket and are summed as they are."""

    bucket_bounds_s: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    sum_s: float
    count: int


class LatencyHistogram:
    """Fixed buckets, counts and sum: one bisect and two adds per observation."""

    __slots__ = ("bounds", "counts", "sum_s")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum_s = 0.0

    def observe(self, value_s: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value_s)] += 1
        self.sum_s += value_s

    def snapshot(self) -> LatencySnapshot:
        return LatencySnapshot(self.bounds, tuple(self.counts), self.sum_s, sum(self.counts))


# --- the shard: what the pool wants this connection to carry -------------------------------------


class Shard:
    """The streams one connection should carry, changed synchronously by the pool.

    ``tickers``/``trades`` map a unified symbol to its subscription: the reader's routing
    tables. ``poke()`` wakes the connection's control task; it is an Event replaced on each
    ``arm()``, so a poke between two reconciliations is never lost and never queued twice.
    """

    __slots__ = ("_changed", "capacity", "index", "streams", "tickers", "trades")

    def __init__(self, index: int, capacity: int | None) -> None:
        self.index = index
        self.capacity = capacity
        self.streams: dict[Stream, Subscription] = {}
        self.tickers: dict[str, Subscription] = {}
        self.trades: dict[str, Subscription] = {}
        self._changed = trio.Event()

    @property
    def full(self) -> bool:
        return self.capacity is not None and len(self.streams) >= self.capacity

    def add(self, sub: Subscription) -> None:
        self.streams[sub.stream] = sub
        (self.tickers if sub.stream.kind == "ticker" else self.trades)[sub.stream.symbol] = sub
        self._changed.set()

    def remove(self, sub: Subscription) -> None:
        del self.streams[sub.stream]
        del (self.tickers if sub.stream.kind == "ticker" else self.trades)[sub.stream.symbol]
        self._changed.set()

    def arm(self) -> trio.Event:
        self._changed = trio.Event()
        return self._changed

    def poke(self) -> None:
        """Wake the control task without a change of membership (a stream to repair)."""
        self._changed.set()


# --- statistics --------------------------------------------------------------------------------


@attrs.frozen
class ConnectionStatistics:
    """One connection (shard) of one exchange; ``*_at`` are trio-clock instants."""

    index: int
    state: ConnectionState
    streams: int
    connect_attempts: int
    connects: int
    reconnects: int
    messages_received: int
    bytes_received: int
    decode_errors: int
    tickers_conflated: int  # ticker frames superseded within one read: skipped, never validated
    subscribe_requests: int
    unsubscribe_requests: int
    subscription_errors: int
    sequence_gaps: int
    stale_replacements: int
    stream_repairs: int  # resubscribes of streams that went quiet on a live socket
    connection_uptime_s: float | None
    last_message_age_s: float | None
    last_close_code: int | None
    last_close_reason: str | None
    latency: LatencySnapshot


# --- the actor -----------------------------------------------------------------------------------


@attrs.define(eq=False)
class Connection:
    """One WebSocket for one shard. ``run`` returns only when cancelled and raises a
    ``FeedError`` when a socket fails; the supervisor runs the exchange's connections again
    after its backoff (``ExchangePool.run_connections``). The object, and its counters,
    outlive each run."""

    exchange: str
    url: str
    shard: Shard
    codec_factory: Callable[[], Codec]
    stale_after_s: float
    connector: Connector = attrs.field(factory=WsprotoConnector)
    max_lifetime_s: float = 23.5 * 3600.0  # Binance cuts at 24 h; leave on our own terms
    min_session_s: float = 1.0
    idle_linger_s: float = 2.0
    on_change: Callable[[], None] = lambda: None  # state changed (the pool re-derives its own)
    # Called with each socket read's decoded events and its wall receipt time, after they were
    # published (a cluster leader forwards them); None, the default, costs one test per read.
    on_batch: Callable[[list[Any], float], None] | None = None
    # Called with each socket read's raw frames and its wall receipt time, before decoding
    # (``[record] raw_frames``); None, the default, costs one test per read.
    on_frames: Callable[[list[str | bytes], float], None] | None = None

    state: ConnectionState = attrs.field(default="idle", init=False)
    connect_attempts: int = attrs.field(default=0, init=False)
    connects: int = attrs.field(default=0, init=False)
    reconnects: int = attrs.field(default=0, init=False)
    messages_received: int = attrs.field(default=0, init=False)
    bytes_received: int = attrs.field(default=0, init=False)
    decode_errors: int = attrs.field(default=0, init=False)
    tickers_conflated: int = attrs.field(default=0, init=False)
    subscribe_requests: int = attrs.field(default=0, init=False)
    unsubscribe_requests: int = attrs.field(default=0, init=False)
    subscription_errors: int = attrs.field(default=0, init=False)
    sequence_gaps: int = attrs.field(default=0, init=False)
    stale_replacements: int = attrs.field(default=0, init=False)
    stream_repairs: int = attrs.field(default=0, init=False)
    last_close_code: int | None = attrs.field(default=None, init=False)
    last_close_reason: str | None = attrs.field(default=None, init=False)
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram, init=False)

    # Per-socket state, reset by each session.
    _codec: Codec | None = attrs.field(default=None, init=False)
    _transport: Transport | None = attrs.field(default=None, init=False)
    _budget: RequestBudget | None = attrs.field(default=None, init=False)
    _wire: dict[Stream, str] = attrs.field(factory=dict, init=False)
    _restoring: set[Stream] | None = attrs.field(default=None, init=False)
    _repairing: set[Stream] = attrs.field(factory=set, init=False)
    _unrepairable: str | None = attrs.field(default=None, init=False)  # replace the socket
    _connected_at: float | None = attrs.field(default=None, init=False)
    _last_frame_at: float | None = attrs.field(default=None, init=False)
    _session_scope: trio.CancelScope | None = attrs.field(default=None, init=False)
    _watch_scope: trio.CancelScope | None = attrs.field(default=None, init=False)  # reader's
    _end_reason: str | None = attrs.field(default=None, init=False)
    _decode_log: LogThrottle = attrs.field(factory=LogThrottle, init=False)
    log: Any = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.log = logger.bind(
            actor="connection", exchange=self.exchange, connection=self.shard.index
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Carry the shard's streams until cancelled; raises a ``FeedError`` when a socket
        fails (the supervisor decides what happens next)."""
        while True:
            if not self.shard.streams:
                self._set_state("idle")
                while not self.shard.streams:
                    await self.shard.arm().wait()
            reason = await self._session()
            if reason != "idle":
                self.reconnects += 1
                self.log.info("reconnecting", reason=reason)

    async def _session(self) -> str:
        """One socket, from connect to its end. Returns why it ended cleanly."""
        self._set_state("connecting")
        self.connect_attempts += 1
        codec = self.codec_factory()
        self._codec = codec
        self._budget = RequestBudget(codec.max_requests_per_second)
        self._wire = {}
        self._end_reason = None
        self._repairing = set()
        self._unrepairable = None
        try:
            async with self.connector.connect(self.url) as transport:
                now = trio.current_time()
                self.connects += 1
                self._transport = transport
                self._connected_at = now
                self._last_frame_at = now
                self._restoring = set(self.shard.streams)
                for sub in self.shard.streams.values():
                    sub.unconfirm()
                self.log.info("connected", url=self.url, streams=len(self._restoring))
                with trio.CancelScope() as session_scope:
                    self._session_scope = session_scope
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._control)
                        self._end_reason = await self._read_until_end()
                        session_scope.cancel(reason="session ended")
                reason = self._end_reason or "ended"
            # Leaving the connector's context closes the socket (1000).
            self.log.info("disconnected", reason=reason)
            return reason
        except FeedError as exc:  # raised by connect: the handshake was refused or failed
            if isinstance(exc, ConnectionLostError):
                self.last_close_code, self.last_close_reason = exc.code, exc.reason
            self._down(f"connection failed: {exc}")
            raise
        except BaseException as exc:  # a group from the session nursery, or Cancelled
            self._down(f"connection ended: {describe_error(exc)}")
            raise
        finally:
            self._transport = None
            self._connected_at = None
            self._restoring = None
            self._session_scope = None
            self._watch_scope = None
            self._wire = {}

    async def _read_until_end(self) -> str:
        """The reader, with its own failures accounted for before they join the nursery's
        group (so no group has to be unwrapped to learn what happened)."""
        try:
            return await self._read()
        except ConnectionLostError as exc:
            self.last_close_code, self.last_close_reason = exc.code, exc.reason
            if not self.shard.streams:
                # Nothing is wanted any more: the exchange closing an empty socket is not news.
                self.log.info("idle connection closed by peer", code=exc.code)
                return "idle"
            self.log.warning("connection lost", code=exc.code, reason=exc.reason)
            raise
        except StaleFeedError as exc:
            self.stale_replacements += 1
            self.log.warning("connection stale, replacing it", error=str(exc))
            if self._transport is not None:
                # We declared the socket dead: it will not answer a close frame, and waiting
                # disconnect_timeout_s for one would only delay the replacement (the close on
                # leaving the connector's context is then immediate; see ``Transport.abort``).
                self._transport.abort()
            raise

    def _down(self, reason: str) -> None:
        for sub in self.shard.streams.values():
            sub.down(reason)
        self._set_state("down")

    def _set_state(self, state: ConnectionState) -> None:
        if state != self.state:
            self.state = state
            self.on_change()

    def _end_session(self, reason: str) -> None:
        self._end_reason = reason
        if self._session_scope is not None:
            self._session_scope.cancel(reason=reason)

    def _check_restored(self) -> None:
        restoring = self._restoring
        if restoring is not None and not restoring:
            self._restoring = None
            self._set_state("streaming")
            self.log.info("streaming", streams=len(self.shard.streams))

    # --- reader ---------------------------------------------------------------------------------

    async def _read(self) -> str:
        transport = self._transport
        codec = self._codec
        assert transport is not None
        assert codec is not None
        receive_batch = transport.receive_batch
        decode_batch = codec.decode_batch
        tickers = self.shard.tickers
        trades = self.shard.trades
        observe = self.latency.observe
        # The run's clock itself: ``trio.current_time`` reaches it through two more calls.
        clock = trio.lowlevel.current_clock().current_time
        wall = time.time
        on_batch = self.on_batch
        on_frames = self.on_frames
        self._check_restored()  # nothing to restore: streaming at once
        while True:
            with trio.move_on_at(self._next_check_at()) as self._watch_scope:
                while True:
                    frames = await receive_batch()
                    # One clock reading per batch: its frames arrived together.
                    now = clock()
                    received_ts = wall()
                    self._last_frame_at = now
                    self.messages_received += len(frames)
                    size = sum(map(len, frames))
                    self.bytes_received += size
                    if on_frames is not None:
                        on_frames(frames, received_ts)
                    events, failures, conflated = decode_batch(frames, received_ts)
                    if failures:
                        for frame, exc in failures:
                            self._decode_failed(frame, exc, now)
                    if conflated:
                        self.tickers_conflated += conflated
                    published = False
                    for event in events:
                        if type(event) is Ticker:
                            sub = tickers.get(event.symbol)
                        elif type(event) is Trade:
                            sub = trades.get(event.symbol)
                        else:
                            end = self._on_control(event)
                            if end is not None:
                                return end
                            continue
                        if sub is not None:
                            published = True
                            if sub.publish(event, now):
                                self._went_live(sub)
                        exchange_ts = event.exchange_ts
                        if exchange_ts is not None:
                            observe(received_ts - exchange_ts)
                    if on_batch is not None and published:
                        on_batch(events, received_ts)
                    if published and size < SUBSCRIBERS_FIRST_BELOW:
                        # Subscribers first: two scheduler rounds, so every task this batch
                        # woke has run (whatever order Trio gives a round) before the reader
                        # goes back to the socket (see the module docstring).
                        await cancel_shielded_checkpoint()
                        await cancel_shielded_checkpoint()
            end = self._watchdog(clock())
            if end is not None:
                return end

    def _went_live(self, sub: Subscription) -> None:
        """The first data of a stream on this socket, or after it was told another state."""
        stream = sub.stream
        if self._wire.get(stream) == _SUBSCRIBING:
            self._wire[stream] = _SUBSCRIBED  # data is as good as an ack
        if self._restoring is not None:
            self._restoring.discard(stream)
            self._check_restored()

    def _on_control(self, event: object) -> str | None:
        wire = self._wire
        restoring = self._restoring
        cls = type(event)
        if cls is Subscribed:
            assert isinstance(event, Subscribed)
            for stream in event.streams:
                if wire.get(stream) == _SUBSCRIBING:
                    wire[stream] = _SUBSCRIBED
                if restoring is not None:
                    restoring.discard(stream)
        elif cls is Unsubscribed:
            assert isinstance(event, Unsubscribed)
            for stream in event.streams:
                if wire.get(stream) == _UNSUBSCRIBING:
                    del wire[stream]
        elif cls is SubscriptionError:
            assert isinstance(event, SubscriptionError)
            self._refused(event)
        elif cls is ReconnectRequested:
            assert isinstance(event, ReconnectRequested)
            return self._clean_reconnect(f"exchange asked to reconnect: {event.reason}")
        elif cls is SequenceGap:
            assert isinstance(event, SequenceGap)
            self.sequence_gaps += 1
            self.log.warning("sequence gap", expected=event.expected, received=event.received)
            return self._clean_reconnect("sequence gap")
        elif cls is SystemStatus:
            assert isinstance(event, SystemStatus)
            if event.status != "online":
                self.log.warning("exchange system status", status=event.status)
        # Heartbeat and anything else: liveness only, already counted.
        self._check_restored()
        return None

    def _refused(self, event: SubscriptionError) -> None:
        self.subscription_errors += 1
        self.log.warning(
            "subscription refused",
            error=event.message[:200],
            streams=len(event.streams),
            request_id=event.request_id,
        )
        wire = self._wire
        for stream in event.streams:
            state = wire.get(stream)
            if state == _UNSUBSCRIBING:
                del wire[stream]
            elif state is not None:
                wire[stream] = _REFUSED
                if self._restoring is not None:
                    self._restoring.discard(stream)
                sub = self.shard.streams.get(stream)
                if sub is not None:
                    sub.down(f"refused by the exchange: {event.message[:200]}")

    def _clean_reconnect(self, reason: str) -> str:
        assert self._connected_at is not None
        if trio.current_time() - self._connected_at < self.min_session_s:
            raise ProtocolError(f"{reason} within {self.min_session_s} s of connecting")
        return reason

    def _decode_failed(self, frame: str | bytes, exc: DecodeError, now: float) -> None:
        self.decode_errors += 1
        suppressed = self._decode_log.due(now)
        if suppressed is not None:
            self.log.warning(
                "frame rejected", error=str(exc)[:300], frame=frame[:200], suppressed=suppressed
            )

    # --- watchdog (deadline on the reader, not a task) -----------------------------------------

    def _watched(self) -> list[Subscription]:
        """Streams this socket carries and expects data on (not refused, not leaving)."""
        wire = self._wire
        return [sub for stream, sub in self.shard.streams.items() if wire.get(stream) in _CARRIED]

    def _next_check_at(self) -> float:
        assert self._connected_at is not None
        assert self._last_frame_at is not None
        stale = self.stale_after_s
        deadline = self._connected_at + self.max_lifetime_s
        if self._restoring:
            deadline = min(deadline, self._connected_at + stale)
        watched = self._watched()
        if watched:
            # Every stream can be stale at the earliest when the freshest one is.
            freshest = max(sub.last_data_at for sub in watched)
            deadline = min(deadline, self._last_frame_at + stale, freshest + stale)
        return deadline

    def _watchdog(self, now: float) -> str | None:
        """A socket that carries streams but brought no frame at all for ``stale_after_s``, or
        whose every stream is stale, is dead. A socket with nothing to carry (lingering after
        the last unsubscribe, or every stream refused) is not expected to bring anything."""
        assert self._connected_at is not None
        assert self._last_frame_at is not None
        stale = self.stale_after_s
        if self._unrepairable is not None:
            raise StaleFeedError(self._unrepairable)
        watched = self._watched()
        quiet_s = now - self._last_frame_at
        silent = now >= self._last_frame_at + stale  # the deadline's own sum, to the ulp
        if watched and (silent or all(sub.stale_due(now) for sub in watched)):
            for sub in watched:
                sub.check_stale(now)  # told before the ``down`` that follows
            if silent:
                raise StaleFeedError(f"no frame at all for {quiet_s:.3f} s (stale_after_s={stale})")
            raise StaleFeedError(f"all {len(watched)} streams stale (stale_after_s={stale})")
        if self._restoring and now >= self._connected_at + stale:
            raise StaleFeedError(
                f"{len(self._restoring)} subscriptions not confirmed within {stale} s"
            )
        if now >= self._connected_at + self.max_lifetime_s:
            return "connection lifetime reached"
        return None

    # --- repairs of single streams ---------------------------------------------------------------

    def repair(self, sub: Subscription) -> None:
        """``sub`` brought data on this socket and has been quiet for ``stale_after_s``
        (its subscription actor says so, synchronously): resubscribe it, or, when that has
        not helped ``MAX_STREAM_REPAIRS`` times, replace the connection."""
        stream = sub.stream
        if self._wire.get(stream) not in _CARRIED:
            return  # not carried by the current socket (leaving, refused, or no socket)
        if sub.repairs >= MAX_STREAM_REPAIRS:
            self._unrepairable = (
                f"stream {stream.kind}:{stream.symbol} still quiet after"
                f" {sub.repairs} resubscribes (stale_after_s={self.stale_after_s})"
            )
            watch = self._watch_scope
            if watch is not None:
                watch.deadline = -math.inf  # the reader's watchdog runs now and raises
            return
        self._repairing.add(stream)
        self.shard.poke()

    def _take_repairs(self) -> list[Stream]:
        wire, wanted = self._wire, self.shard.streams
        repairing = [s for s in self._repairing if s in wanted and wire.get(s) in _CARRIED]
        self._repairing.clear()
        return repairing

    # --- control: reconcile wanted streams with the wire ----------------------------------------

    async def _control(self) -> None:
        """Sends (un)subscribes. A failed send raises like a failed read (the nursery then
        cancels the reader, so one failure is reported once), unless nothing is wanted any
        more, which ends the session as idle."""
        shard = self.shard
        try:
            while True:
                changed = shard.arm()
                await self._sync_wire()
                if not shard.streams:
                    with trio.move_on_after(self.idle_linger_s):
                        await changed.wait()
                    if not shard.streams:
                        self._end_session("idle")
                        return
                    continue
                await changed.wait()
        except ConnectionLostError as exc:
            self.last_close_code, self.last_close_reason = exc.code, exc.reason
            if not shard.streams:
                self._end_session("idle")
                return
            self.log.warning("connection lost while sending", code=exc.code, reason=exc.reason)
            raise

    async def _sync_wire(self) -> None:
        codec, transport, budget = self._codec, self._transport, self._budget
        assert codec is not None
        assert transport is not None
        assert budget is not None
        wire = self._wire
        wanted = self.shard.streams
        while True:
            await trio.sleep_until(budget.next_send_at(trio.current_time()))
            for stream in [s for s, st in wire.items() if st == _REFUSED and s not in wanted]:
                del wire[stream]
            leaving = [s for s, st in wire.items() if st in _CARRIED and s not in wanted]
            if leaving:
                for stream in leaving:
                    wire[stream] = _UNSUBSCRIBING
                    if self._restoring is not None:
                        self._restoring.discard(stream)
                frames = codec.unsubscribe_messages(leaving)
                self.log.info("unsubscribing", streams=len(leaving), frames=len(frames))
                await self._send_all(transport, budget, frames)
                self.unsubscribe_requests += len(frames)
                self._check_restored()
                continue
            repairing = self._take_repairs()
            if repairing:  # unsubscribed now; subscribed again below with the joiners
                for stream in repairing:
                    wire[stream] = _UNSUBSCRIBING
                    wanted[stream].repairs += 1
                frames = codec.unsubscribe_messages(repairing)
                self.log.warning(
                    "resubscribing quiet streams",
                    streams=[f"{s.kind}:{s.symbol}" for s in repairing],
                    attempt=max(wanted[s].repairs for s in repairing),
                )
                await self._send_all(transport, budget, frames)
                self.unsubscribe_requests += len(frames)
                self.stream_repairs += len(repairing)
                continue
            joining = [s for s in wanted if wire.get(s) in (None, _UNSUBSCRIBING)]
            if not joining:
                return
            now = trio.current_time()
            for stream in joining:
                wire[stream] = _SUBSCRIBING
                wanted[stream].watch(now)  # the stale clock starts with the request
            watch = self._watch_scope
            if watch is not None:  # its deadline may predate these streams (nothing watched)
                watch.deadline = min(watch.deadline, now + self.stale_after_s)
            frames = codec.subscribe_messages(joining)
            self.log.info("subscribing", streams=len(joining), frames=len(frames))
            await self._send_all(transport, budget, frames)
            self.subscribe_requests += len(frames)

    async def _send_all(
        self, transport: Transport, budget: RequestBudget, frames: list[str]
    ) -> None:
        for frame in frames:
            await trio.sleep_until(budget.next_send_at(trio.current_time()))
            budget.record(trio.current_time())
            await transport.send(frame)

    # --- statistics ------------------------------------------------------------------------------

    def statistics(self) -> ConnectionStatistics:
        now = trio.current_time()
        return ConnectionStatistics(
            index=self.shard.index,
            state=self.state,
            streams=len(self.shard.streams),
            connect_attempts=self.connect_attempts,
            connects=self.connects,
            reconnects=self.reconnects,
            messages_received=self.messages_received,
            bytes_received=self.bytes_received,
            decode_errors=self.decode_errors,
            tickers_conflated=self.tickers_conflated,
            subscribe_requests=self.subscribe_requests,
            unsubscribe_requests=self.unsubscribe_requests,
            subscription_errors=self.subscription_errors,
            sequence_gaps=self.sequence_gaps,
            stale_replacements=self.stale_replacements,
            stream_repairs=self.stream_repairs,
            connection_uptime_s=None if self._connected_at is None else now - self._connected_at,
            last_message_age_s=None if self._last_frame_at is None else now - self._last_frame_at,
            last_close_code=self.last_close_code,
            last_close_reason=self.last_close_reason,
            latency=self.latency.snapshot(),
        )
