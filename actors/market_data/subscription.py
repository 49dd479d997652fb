"""The subscription actor: one per (exchange, kind, symbol) stream that someone listens to.

It owns the stream's reference count, the linger before the wire unsubscribe, the stream's
staleness and which source feeds it (the WebSocket or the REST fallback). Its task (``run``)
lives in the exchange's streams service (``ExchangePool.run``).

Decisions:

* **State changes are synchronous, time is the task's.** Every field is written by a method of
  this class, called by the pool (acquire, release, source), the connection (publish, watch,
  down) or the REST poller (publish_rest). Trio runs each call atomically between checkpoints,
  so the reference count can never leak and ``async with pool.subscribe(...)`` never awaits.
  The task only handles what takes time: the linger and the stale timer.
* **Messages wake the task; the task reconciles.** Each change that moves one of the task's
  deadlines sends a control message (``Acquired``, ``Released``, ``Watched``,
  ``SourceChanged``) on a bounded channel, without waiting. The task then looks at the current
  state, never at the history of messages, so a message that finds the inbox full is dropped
  at no cost: a full inbox already holds a wake-up.
* **The data path has no hop.** The connection reader calls ``publish`` synchronously: one
  clock store, one flag test and the shared buffer's O(1) ``publish``. The task is not woken per
  message; its stale timer is keyed on ``last_data_at``: when it fires, the task looks at the
  clock and either tells ``stale`` or sleeps until the new ``last_data_at + stale_after_s``. A
  busy stream costs one wake-up per ``stale_after_s``.
* **Linger.** When the last subscriber leaves a stream that is on the wire, the task waits
  ``linger_s`` before retiring it (the connection then sends the unsubscribe): a bot that
  restarts and subscribes again within the linger costs no wire message and finds the newest
  ticker at once. A stream that never reached the wire is retired on the spot.
* **States told to subscribers** (``FeedState``): ``live`` before the first data after any
  other state, ``stale`` when a watched WebSocket stream was quiet for ``stale_after_s``,
  ``down`` when its connection is gone (backoff, circuit open) or the exchange refused it (the
  reason says which), ``fallback`` while REST polling serves tickers. A state is posted only
  when it changes, each post one O(1) write to the shared feed.
* **A stream that stops is repaired on its own.** When a WebSocket stream that brought data on
  its socket goes quiet for ``stale_after_s`` while the socket lives, the subscription tells
  ``stale`` and asks its connection (``on_quiet``) to resubscribe it: a server-side hiccup or
  a poisoned sequence number (the codec forgets a stream's sequence when it is subscribed
  again) then costs one resubscribe, not the whole connection. It asks again each
  ``stale_after_s`` the stream stays quiet; the connection counts the attempts and replaces
  itself when resubscribing does not help (``connection.py``). A stream that never brought
  data on its socket is only told ``stale``: Binance acks a symbol it does not list and then
  sends nothing, and resubscribing or reconnecting cannot change that.
* **Source.** ``ws`` normally; the pool switches ticker streams to ``rest`` while the circuit
  breaker is not closed (with ``fallback = "rest"``) and back to ``ws`` when it closes. A stream
  the WebSocket brings back during the half-open trial is fed by the WebSocket again at once
  (its first data switches it), so REST prices never contradict a live stream. Only a
  WebSocket-fed stream can go stale: REST has its own pace. A REST ticker another node polled
  and relayed (a cluster's reader, ``publish_rest(ticker, now)``) keeps the stale clock
  running instead: the relaying node may fall silent, and its silence must show.
* **Told states are heard** (``on_state``): the pool forwards a leader's ``down`` states to
  the other nodes of a cluster; outside a cluster nobody listens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypeAlias

import attrs
import trio
from loguru import logger

from actors.market_data.mailbox import Handler, Mailbox, MailboxItem, TickerSlot, TradeRing
from actors.messages import FeedState, Stream, Ticker, Trade

__all__ = [
    "INBOX_SIZE",
    "Acquired",
    "ControlMessage",
    "Released",
    "Source",
    "SourceChanged",
    "StreamStatistics",
    "Subscription",
    "SubscriptionState",
    "Watched",
]

SubscriptionState = Literal["live", "stale", "down", "fallback"]
Source = Literal["ws", "rest"]
INBOX_SIZE = 16


@attrs.frozen(slots=True)
class Acquired:
    """A subscriber came (back): no linger."""


@attrs.frozen(slots=True)
class Released:
    """The last subscriber left: the linger starts."""


@attrs.frozen(slots=True)
class Watched:
    """The stale clock starts again: the wire subscribe went out, or data came back after
    another state."""


@attrs.frozen(slots=True)
class SourceChanged:
    source: Source


ControlMessage: TypeAlias = Acquired | Released | Watched | SourceChanged


@attrs.frozen(slots=True)
class StreamStatistics:
    """One stream of one exchange, as ``/health`` and ``/metrics`` read it."""

    kind: str
    symbol: str
    subscribers: int
    state: SubscriptionState | None  # None until the stream first reports anything
    stale: bool
    live: bool
    source: Source
    lingering: bool  # no subscriber left; retired when the linger ends
    published: int  # events fanned out since this subscription began
    skipped: int  # tickers conflated away, over all its subscribers (incl. departed)
    dropped: int  # trades lost to overflow, over all its subscribers (incl. departed)
    connection: int  # index of the connection that carries it


def _never_retired(_sub: Subscription) -> None:
    pass


class Subscription:
    """One stream: who listens, what they were told, the shared feed, and the task that keeps
    the stream's time (linger, staleness)."""

    __slots__ = (
        "_delivered",
        "_idle_since",
        "_inbox",
        "_inbox_send",
        "_left_dropped",
        "_left_skipped",
        "_on_quiet",
        "_on_retire",
        "_on_state",
        "_quiet_told",
        "_requested",
        "_retired",
        "_watched",
        "connection",
        "exchange",
        "feed",
        "last_data_at",
        "linger_s",
        "live",
        "log",
        "mailboxes",
        "repairs",
        "source",
        "stale_after_s",
        "state",
        "stream",
    )

    def __init__(
        self,
        exchange: str,
        stream: Stream,
        *,
        connection: int = 0,
        stale_after_s: float = 10.0,
        linger_s: float = 0.0,
        trade_ring_size: int = 1024,
        source: Source = "ws",
        on_retire: Callable[[Subscription], None] = _never_retired,
        on_quiet: Callable[[Subscription], None] = _never_retired,
        on_state: Callable[[Subscription, SubscriptionState, str], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.stream = stream
        self.connection = connection
        self.stale_after_s = stale_after_s
        self.linger_s = linger_s
        self.feed: TickerSlot | TradeRing = (
            TickerSlot(stream) if stream.kind == "ticker" else TradeRing(stream, trade_ring_size)
        )
        self.mailboxes: list[Mailbox | Handler] = []  # every subscriber: the reference count
        self.state: SubscriptionState | None = None
        # ``live`` is the one flag the hot path tests: True while the last state told is live.
        self.live = False
        self.last_data_at = 0.0  # trio clock; (re)set when the wire subscribe is sent
        self.source: Source = source
        self.log = logger.bind(
            actor="subscription", exchange=exchange, kind=stream.kind, symbol=stream.symbol
        )
        self._on_retire = on_retire
        self._on_quiet = on_quiet
        self._on_state = on_state
        self._delivered = False  # data came on the current socket
        self._quiet_told = False  # the quiet since ``last_data_at`` was handled
        self.repairs = 0  # resubscribes since the stream last brought data (the connection's)
        self._left_skipped = 0
        self._left_dropped = 0
        self._requested = False  # a wire subscribe was sent at least once
        self._watched = False  # a socket asked for it and owes it data (the stale clock runs)
        self._idle_since: float | None = None  # trio clock of the last subscriber leaving
        self._retired = False
        self._inbox_send, self._inbox = trio.open_memory_channel[ControlMessage](INBOX_SIZE)

    # --- the task -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the stream's time until it is retired (returns) or cancelled. Safe to start
        again after a cancellation: everything it needs is in the fields."""
        while not self._retired:
            with trio.move_on_at(self._next_deadline()):
                try:
                    message = await self._inbox.receive()
                except trio.EndOfChannel:
                    return
                self.log.trace("control", message=message)
                continue
            now = trio.current_time()
            idle_since = self._idle_since
            if idle_since is not None and now >= idle_since + self.linger_s:
                self.log.debug("linger over")
                self.retire()
                return
            self.check_stale(now)

    def _next_deadline(self) -> float:
        deadline = math.inf
        idle_since = self._idle_since
        if idle_since is not None:
            deadline = idle_since + self.linger_s
        if self._stale_clock_runs():
            deadline = min(deadline, self.last_data_at + self.stale_after_s)
        return deadline

    def _post(self, message: ControlMessage) -> None:
        try:
            self._inbox_send.send_nowait(message)
        except (trio.WouldBlock, trio.ClosedResourceError):
            pass  # a wake-up is already queued, or the task is gone for good

    # --- reference counting (the pool, synchronously) -----------------------------------------

    @property
    def subscribers(self) -> int:
        return len(self.mailboxes)

    @property
    def retired(self) -> bool:
        return self._retired

    def acquire(self) -> Mailbox:
        mailbox = self.feed.open_mailbox()
        self._count_in(mailbox)
        return mailbox

    def acquire_handler(
        self, fn: Callable[[MailboxItem], object], on_error: Callable[[Exception], None]
    ) -> Handler:
        """A subscriber that is a function (``mailbox.Handler``); nothing replayed yet."""
        handler = self.feed.open_handler(fn, on_error)
        self._count_in(handler)
        return handler

    def _count_in(self, subscriber: Mailbox | Handler) -> None:
        self.mailboxes.append(subscriber)
        if self._idle_since is not None:
            self._idle_since = None
            self._post(Acquired())

    def release(self, mailbox: Mailbox | Handler) -> None:
        """Forget ``mailbox`` (its counts stay in the totals). The last one out starts the
        linger, or retires the stream at once if it never reached the wire."""
        mailbox.close()
        stats = mailbox.statistics()
        self._left_skipped += stats.skipped
        self._left_dropped += stats.dropped
        self.mailboxes.remove(mailbox)
        if self.mailboxes or self._retired:
            return
        if not self._requested or self.linger_s <= 0:
            self.retire()
            return
        self._idle_since = trio.current_time()
        self._post(Released())

    def retire(self) -> None:
        """Leave the exchange: the pool takes the stream off its shard (the connection
        unsubscribes), subscribers still reading get ``EndOfChannel``, the task returns."""
        if self._retired:
            return
        self._retired = True
        self._watched = False
        self._idle_since = None
        self._on_retire(self)
        self.feed.close()
        self._inbox_send.close()

    @property
    def closed(self) -> bool:
        return self.feed.closed

    # --- the WebSocket (the connection, synchronously) -----------------------------------------

    def publish(self, event: Ticker | Trade, now: float) -> bool:
        """WebSocket data, on the reader's hot path. Returns True when it made the stream live
        (the first data after another state), for the connection's own bookkeeping."""
        self.last_data_at = now
        if self.live:
            self.feed.publish(event)  # type: ignore[arg-type]
            return False
        self._delivered = True
        self._quiet_told = False
        self.repairs = 0
        if self.source != "ws":
            self.use_source("ws")  # the WebSocket is back for this stream
        self.tell("live")
        self.feed.publish(event)  # type: ignore[arg-type]
        self._post(Watched())
        return True

    def watch(self, now: float) -> None:
        """The wire subscribe went out on a socket: data is owed from now on."""
        self._requested = True
        self._watched = True
        self._quiet_told = False
        self.last_data_at = now
        self._post(Watched())

    def unconfirm(self) -> None:
        """A new socket carries the stream: its first data takes the slow path once, so the
        connection can count the stream as restored."""
        self.live = False
        self._delivered = False
        self.repairs = 0

    def down(self, reason: str) -> None:
        """Nothing feeds the stream from the WebSocket any more (connection gone, refused)."""
        self._watched = False
        self.tell("down", reason)

    def stale_due(self, now: float) -> bool:
        # The same sum as the timer's deadline: ``now - last >= stale`` can miss it by an ulp.
        return now >= self.last_data_at + self.stale_after_s

    def check_stale(self, now: float) -> bool:
        """Tell ``stale`` if a watched WebSocket stream has been quiet for ``stale_after_s``.
        The task calls it on its timer; the connection too, before it replaces a connection
        whose streams are all stale, so subscribers hear ``stale`` before ``down`` whichever
        task runs first at that instant."""
        if not self._stale_clock_runs() or not self.stale_due(now):
            return False
        self._quiet_told = True
        if self.tell("stale", f"no data for {self.stale_after_s} s"):
            self.log.warning("stream stale")
        if self._delivered:
            self._on_quiet(self)
        return True

    def _stale_clock_runs(self) -> bool:
        return self._watched and self.source == "ws" and not self._quiet_told

    # --- the REST fallback ----------------------------------------------------------------------

    def use_source(self, source: Source) -> None:
        """The pool's choice of source while the breaker is (not) closed."""
        if source == self.source:
            return
        self.source = source
        self.log.info("source", source=source)
        self._post(SourceChanged(source))

    @property
    def wants_rest(self) -> bool:
        return self.source == "rest" and not self.feed.closed

    def publish_rest(self, ticker: Ticker, now: float | None = None) -> None:
        """A REST-polled ticker: published under the ``fallback`` state, never ``live``.
        ``now`` is given for a ticker another node polled and relayed: the stale clock then
        runs on it as on WebSocket data."""
        if now is not None:
            self.last_data_at = now
            if not self._watched or self._quiet_told:
                self._requested = True
                self._watched = True
                self._quiet_told = False
                self._post(Watched())
        if self.state != "fallback":
            self.tell("fallback", "circuit open: REST polling")
        self.feed.publish(ticker)  # type: ignore[arg-type]

    # --- states ---------------------------------------------------------------------------------

    def tell(self, state: SubscriptionState, reason: str = "") -> bool:
        """Post ``state`` to every subscriber if it differs from the last one told."""
        self.live = state == "live"
        if state == self.state and (self.feed.state is None or self.feed.state.reason == reason):
            return False
        self.state = state
        self.feed.post_state(FeedState(self.exchange, self.stream, state, reason))
        if self._on_state is not None:
            self._on_state(self, state, reason)
        return True

    # --- statistics -----------------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """(skipped, dropped) over every subscriber this subscription ever had."""
        skipped, dropped = self._left_skipped, self._left_dropped
        for mailbox in self.mailboxes:
            stats = mailbox.statistics()
            skipped += stats.skipped
            dropped += stats.dropped
        return skipped, dropped

    def statistics(self) -> StreamStatistics:
        skipped, dropped = self.totals()
        return StreamStatistics(
            kind=self.stream.kind,
            symbol=self.stream.symbol,
            subscribers=len(self.mailboxes),
            state=self.state,
            stale=self.state == "stale",
            live=self.live,
            source=self.source,
            lingering=self._idle_since is not None,
            published=self.feed.count,
            skipped=skipped,
            dropped=dropped,
            connection=self.connection,
        )
