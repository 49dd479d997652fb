"""Fan-out buffers: what one stream publishes, and each subscriber's view of it.

Why this shape:

* **Publishing is O(1) whatever the number of subscribers.** A stream owns one shared buffer, a
  ``TickerSlot`` (the newest ticker) or a ``TradeRing`` (the last ``TRADE_RING_SIZE`` trades),
  and every subscriber's ``Mailbox`` is only a cursor into it (tokio's ``broadcast`` design,
  tractor's ``Lagged``). The connection reader calls ``publish`` synchronously: no task hop, no
  per-subscriber loop, no await, so a subscriber that never reads cannot slow the reader or any
  other subscriber. With 1000 subscribers on one stream, a ticker costs the same as with one.
* **Tickers are conflated.** A mailbox always takes the newest ticker; how many it skipped is
  the distance between the stream's ticker count and the count it last took.
* **Trades go through a bounded ring** of ``TRADE_RING_SIZE`` (1024) entries shared by all
  subscribers of the stream: half a second of backlog at 2,000 trades/s. A subscriber
  whose cursor fell behind the ring's oldest entry first receives ``Lagged(stream, dropped)``
  and then the oldest trade still held; its ``dropped`` count grows by the same number.
* **Feed states are latest-wins and ordered with the data.** A ``FeedState`` notice remembers
  how many data items had been published when it was posted (its mark); a mailbox delivers
  the data published before the mark first (where conflation has not already replaced it), then
  the notice, then newer data. Only the newest state is kept.
* **A new subscriber first gets the stream's current state and newest ticker** (replay of one
  item each, like a behaviour subject): a bot on a quiet market (Kraken's v1 ticker only moves on
  trades) should not wait minutes for its first price. Tickers carry ``received_ts``, so the bot
  can judge its age. Trades are never replayed.
* **Wakeups cost nothing unless someone waits.** A consumer that finds nothing parks its task
  on the shared buffer's waiter list; ``publish`` reschedules the parked tasks (if any) and
  clears the list. A woken consumer takes the newest data when it actually runs, so conflation
  also covers the time it spent in the run queue.
* **Many consumers take turns** (``WakeQueue``, used by the bots' ``Waker``): at most
  ``WAKE_QUEUE_WIDTH`` woken bots per scheduler round, the others in the order they were woken,
  so a thousand bots on a busy feed do not turn every round into a thousand steps that
  everything else in the loop waits behind.
* **A subscriber may be a function instead of a task** (``Handler``): ``publish`` and
  ``post_state`` call it, in the publisher's task, before they wake anyone. It gets every item
  in publish order, tickers not conflated and trades never lagged, with no task switch between
  the socket and its code: one scheduler round less than a mailbox, which is most of what the
  plane adds to a message's latency (``tests/bench/market_data.py --only latency``). The price
  is the reader's: a handler runs on the path of every other subscriber of the connection, so
  it must be quick and must not block (hand heavier work to a task). A handler that raises is
  detached at once and its exception goes to ``on_error`` (the pool hands it to the task that
  subscribed); the publisher never sees it.
* Nothing here is unbounded: one slot, one ring, one state per stream; a mailbox is a handful of
  integers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeAlias

import attrs
import outcome
import trio
from trio.lowlevel import (
    Abort,
    RunVar,
    Task,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from actors.messages import FeedState, Lagged, Stream, Ticker, Trade

__all__ = [
    "TRADE_RING_SIZE",
    "Handler",
    "Mailbox",
    "MailboxItem",
    "MailboxStatistics",
    "TickerSlot",
    "TradeRing",
    "WakeQueue",
    "WakeQueueStatistics",
    "Waker",
    "shared_wake_queue",
]

TRADE_RING_SIZE = 1024
# Woken bots let into one scheduler round (``WakeQueue``). Eight bot steps are a few hundred
# microseconds: the reader, the journal and a spawn get a step that often. Measured with 1,000
# bots at 2,000 msg/s (tests/bench/bots.py), 8, 16 and 32 cost the same CPU per bot step
# within the machine's noise, and fewer steps per round make every hop of a spawn shorter.
WAKE_QUEUE_WIDTH = 8

MailboxItem: TypeAlias = Ticker | Trade | FeedState | Lagged


@attrs.frozen(slots=True)
class MailboxStatistics:
    """One subscriber: ``skipped`` tickers conflated away, ``dropped`` trades lost to overflow
    (including what is already lost but not yet reported by a ``Lagged``), ``delivered`` items
    received, ``pending`` items it could receive right now without waiting."""

    stream: Stream
    skipped: int
    dropped: int
    delivered: int
    pending: int


class _Feed:
    """The shared part of one stream's fan-out: the state notice, waiters, and the end."""

    __slots__ = (
        "_handlers",
        "_waiters",
        "closed",
        "count",
        "state",
        "state_mark",
        "state_version",
        "stream",
    )

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.count = 0  # data items ever published
        self.state: FeedState | None = None
        self.state_version = 0
        self.state_mark = 0  # ``count`` when the current state was posted
        self.closed = False
        self._waiters: list[Task | Waker] = []
        # A tuple, replaced on every change: a handler detached while handlers are being
        # called (its own failure) does not disturb the iteration.
        self._handlers: tuple[Handler, ...] = ()

    def post_state(self, state: FeedState) -> None:
        self.state = state
        self.state_version += 1
        self.state_mark = self.count
        for handler in self._handlers:
            handler.deliver(state)
        self._wake()

    def open_handler(
        self, fn: Callable[[MailboxItem], object], on_error: Callable[[Exception], None]
    ) -> Handler:
        """Attach ``fn``; call ``Handler.replay`` to give it the current state and newest
        ticker, as a new mailbox would get them."""
        handler = Handler(self, fn, on_error)
        if not self.closed:
            self._handlers = (*self._handlers, handler)
        return handler

    def _detach(self, handler: Handler) -> None:
        self._handlers = tuple(h for h in self._handlers if h is not handler)

    def close(self) -> None:
        """The producer is gone: mailboxes drain what they can still read, then EndOfChannel;
        handlers are no longer called."""
        self.closed = True
        self._handlers = ()
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for waiter in waiters:
                if isinstance(waiter, Waker):
                    waiter._woken_by(self)
                else:
                    reschedule(waiter)

    def _park(self, waiter: Task | Waker) -> None:
        self._waiters.append(waiter)

    def _unpark(self, waiter: Task | Waker) -> bool:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return False
        return True


class TickerSlot(_Feed):
    """The newest ticker of one stream, shared by all its subscribers."""

    __slots__ = ("latest",)

    def __init__(self, stream: Stream) -> None:
        super().__init__(stream)
        self.latest: Ticker | None = None

    def publish(self, ticker: Ticker) -> None:
        self.latest = ticker
        self.count += 1
        if self._handlers:
            for handler in self._handlers:
                handler.deliver(ticker)
        if self._waiters:
            self._wake()

    def open_mailbox(self) -> Mailbox:
        return _TickerMailbox(self)


class TradeRing(_Feed):
    """The last ``size`` trades of one stream, shared by all its subscribers."""

    __slots__ = ("_ring", "size")

    def __init__(self, stream: Stream, size: int = TRADE_RING_SIZE) -> None:
        if size < 1:
            raise ValueError(f"trade ring size must be >= 1, got {size}")
        super().__init__(stream)
        self.size = size
        self._ring: list[Trade | None] = [None] * size

    def publish(self, trade: Trade) -> None:
        count = self.count
        self._ring[count % self.size] = trade
        self.count = count + 1
        if self._handlers:
            for handler in self._handlers:
                handler.deliver(trade)
        if self._waiters:
            self._wake()

    def get(self, index: int) -> Trade:
        trade = self._ring[index % self.size]
        assert trade is not None
        return trade

    def open_mailbox(self) -> Mailbox:
        return _TradeMailbox(self)


class Handler:
    """A subscriber that is a function (see the module docstring): ``fn(item)`` is called with
    every ticker or trade published and every state posted on its stream, in the publisher's
    task, until ``close``.

    Counted like a mailbox (``statistics``: nothing is ever skipped, dropped or pending), so a
    stream's subscriber count and reference count include it."""

    __slots__ = ("_delivered", "_feed", "_fn", "_on_error", "closed")

    def __init__(
        self,
        feed: _Feed,
        fn: Callable[[MailboxItem], object],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._feed = feed
        self._fn = fn
        self._on_error = on_error
        self._delivered = 0
        self.closed = False

    @property
    def stream(self) -> Stream:
        return self._feed.stream

    def deliver(self, item: MailboxItem) -> None:
        try:
            self._fn(item)
        except Exception as exc:
            self.close()  # never called again, even by the rest of this publish
            self._on_error(exc)
        else:
            self._delivered += 1

    def replay(self) -> None:
        """What a new mailbox gets first: the stream's current state and its newest ticker,
        in the order they were published."""
        feed = self._feed
        latest = feed.latest if isinstance(feed, TickerSlot) else None
        state = feed.state
        if latest is not None and state is not None and feed.state_mark == feed.count:
            self.deliver(latest)  # the state came after the ticker
            latest = None
        if state is not None and not self.closed:
            self.deliver(state)
        if latest is not None and not self.closed:
            self.deliver(latest)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._feed._detach(self)

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            stream=self._feed.stream, skipped=0, dropped=0, delivered=self._delivered, pending=0
        )


class Mailbox(trio.abc.ReceiveChannel[MailboxItem]):
    """One subscriber's receive end: a cursor into its stream's shared buffer.

    Behaves like a trio memory channel's receive end: ``receive`` checkpoints, raises
    ``EndOfChannel`` once the stream ended and everything readable was read,
    ``ClosedResourceError`` after ``aclose``, and ``BusyResourceError`` if two tasks wait on it
    at once. ``async for event in mailbox`` works (trio's ``ReceiveChannel``).
    """

    def __init__(self, feed: _Feed, position: int) -> None:
        self._feed = feed
        self._position = position
        # Replay the current state (if any) to a new subscriber.
        self._state_seen = feed.state_version - 1 if feed.state is not None else feed.state_version
        self._skipped = 0
        self._dropped = 0
        self._delivered = 0
        self._closed = False
        self._task: Task | None = None

    @property
    def stream(self) -> Stream:
        return self._feed.stream

    def _take(self) -> MailboxItem | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _pending(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def receive_nowait(self) -> MailboxItem:
        if self._closed:
            raise trio.ClosedResourceError
        item = self._take()
        if item is None:
            if self._feed.closed:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        return item

    async def receive(self) -> MailboxItem:
        await checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError
        item = self._take()
        if item is not None:
            await cancel_shielded_checkpoint()
            return item
        feed = self._feed
        if feed.closed:
            await cancel_shielded_checkpoint()
            raise trio.EndOfChannel
        if self._task is not None:
            raise trio.BusyResourceError("another task is already receiving from this mailbox")
        task = current_task()

        def abort(_: object) -> Abort:
            self._task = None
            feed._unpark(task)
            return Abort.SUCCEEDED

        while True:
            self._task = task
            feed._park(task)
            await wait_task_rescheduled(abort)
            self._task = None
            # Woken by publish, post_state or close: take what is newest now. (Nothing there if
            # a ``receive_nowait`` elsewhere took it first: wait again.)
            item = self._take()
            if item is not None:
                return item
            if self._closed:
                raise trio.ClosedResourceError
            if feed.closed:
                raise trio.EndOfChannel

    def close(self) -> None:
        """Sync, so the owner of the receive end can use ``with mailbox:``."""
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is not None and self._feed._unpark(task):
            self._task = None
            reschedule(task, outcome.Error(trio.ClosedResourceError()))

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def aclose(self) -> None:
        self.close()
        await checkpoint()

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            stream=self._feed.stream,
            skipped=self._skipped + self._pending_skips(),
            dropped=self._dropped + self._pending_drops(),
            delivered=self._delivered,
            pending=self._pending(),
        )

    def _pending_skips(self) -> int:
        return 0

    def _pending_drops(self) -> int:
        return 0

    def _state_pending(self) -> bool:
        return self._feed.state_version > self._state_seen

    def _take_state(self) -> FeedState:
        feed = self._feed
        self._state_seen = feed.state_version
        self._delivered += 1
        assert feed.state is not None
        return feed.state


class _TickerMailbox(Mailbox):
    _feed: TickerSlot

    def __init__(self, feed: TickerSlot) -> None:
        # Replay the newest ticker (if any) to a new subscriber.
        super().__init__(feed, feed.count - 1 if feed.latest is not None else feed.count)

    def _take(self) -> MailboxItem | None:
        feed = self._feed
        position = self._position
        count = feed.count
        if feed.state_version > self._state_seen and (
            position >= feed.state_mark or count > feed.state_mark
        ):
            # Either everything before the notice was delivered, or the ticker that preceded
            # it was already replaced by a newer one: the notice goes first.
            return self._take_state()
        if position < count:
            self._skipped += count - position - 1
            self._position = count
            self._delivered += 1
            return feed.latest
        return None

    def _pending(self) -> int:
        return int(self._position < self._feed.count) + int(self._state_pending())

    def _pending_skips(self) -> int:
        return max(0, self._feed.count - self._position - 1)


class _TradeMailbox(Mailbox):
    _feed: TradeRing

    def __init__(self, feed: TradeRing) -> None:
        super().__init__(feed, feed.count)  # trades are never replayed

    def _take(self) -> MailboxItem | None:
        feed = self._feed
        position = self._position
        count = feed.count
        if feed.state_version > self._state_seen and position >= feed.state_mark:
            return self._take_state()
        oldest = count - feed.size
        if position < oldest:
            # Trades were overwritten before this subscriber read them. (A notice posted
            # among them follows the Lagged, on the next call.)
            dropped = oldest - position
            self._dropped += dropped
            self._position = oldest
            self._delivered += 1
            return Lagged(feed.stream, dropped)
        if position < count:
            self._position = position + 1
            self._delivered += 1
            return feed.get(position)
        return None

    def _pending(self) -> int:
        feed = self._feed
        behind = feed.count - max(self._position, feed.count - feed.size)
        return behind + int(self._position < feed.count - feed.size) + int(self._state_pending())

    def _pending_drops(self) -> int:
        return max(0, self._feed.count - self._feed.size - self._position)


class WakeQueue:
    """Turns for many wakers: at most ``width`` of them are rescheduled and not yet running at
    any moment; the others wait in the order they were woken.

    Why: Trio runs, in each scheduler round, every task that became runnable during the last
    one. With 1,000 bots on 10 symbols and a busy feed, every bot is woken in every round, so a
    round is 1,000 bot steps (tens of milliseconds), and whatever takes several hops waits one
    such round per hop: spawning a bot (supervisor, journal load through its worker thread and
    back, subscription, started) took over 100 ms per bot, 118 s for 1,000. With turns, a round
    holds at most ``width`` bot steps, so the rest of the loop (socket reader, journal,
    supervisors) gets a step every fraction of a millisecond whatever the number of bots. The
    bots do the same work as before, in the order they were woken: none starves, and a bot's
    wait is bounded by one step of each bot ahead of it. A woken bot still takes the newest
    ticker when it runs, so conflation covers its time in the queue too, and the reader, now
    served every few bot steps rather than once per 1,000, publishes fresher tickers.

    A turn passes on when the woken task resumes, not when it parks again: a bot that then waits
    for its journal or its venue holds no turn, so such waits never hold up other bots. There
    is no task of its own: the task that resumes lets the next waker in.
    """

    __slots__ = ("_free", "_queue", "width")

    def __init__(self, width: int = WAKE_QUEUE_WIDTH) -> None:
        if width < 1:
            raise ValueError(f"wake queue width must be >= 1, got {width}")
        self.width = width
        self._free = width
        self._queue: OrderedDict[Waker, None] = OrderedDict()

    def statistics(self) -> WakeQueueStatistics:
        return WakeQueueStatistics(
            width=self.width, let_in=self.width - self._free, queued=len(self._queue)
        )

    def _admit(self, waker: Waker) -> None:
        if self._free:
            self._free -= 1
            waker._reschedule()
        else:
            self._queue[waker] = None

    def _resumed(self) -> None:
        """A task let in is running: its turn goes to the next in line."""
        if self._queue:
            waker, _ = self._queue.popitem(last=False)
            waker._reschedule()
        else:
            self._free += 1

    def _forget(self, waker: Waker) -> None:
        del self._queue[waker]


@attrs.frozen(slots=True)
class WakeQueueStatistics:
    width: int
    let_in: int  # rescheduled, not yet running
    queued: int  # woken, waiting for a turn


_SHARED_WAKE_QUEUE: RunVar[WakeQueue] = RunVar("wake_queue")


def shared_wake_queue() -> WakeQueue:
    """The queue every bot of this Trio run takes turns in, created on first use: turns only
    bound a scheduler round if every busy task in the loop takes them from the same queue."""
    try:
        return _SHARED_WAKE_QUEUE.get()
    except LookupError:
        queue = WakeQueue(WAKE_QUEUE_WIDTH)
        _SHARED_WAKE_QUEUE.set(queue)
        return queue


class Waker:
    """Parks one task on several mailboxes at once; the first publish, state notice or end on
    any of their feeds, or a ``wake()`` from anyone, reschedules it, through its ``WakeQueue``
    if it has one (then it may wait for a turn).

    Why: a bot reads its ticker and trade mailboxes and its command inbox from one task, so it
    takes the newest ticker itself when it is free, instead of through a forwarder task and a
    queue that would rebuild the backlog the mailbox conflated away. The waker sits in each
    feed's waiter list like a parked task, so publishing stays O(parked waiters) and costs
    nothing when nobody waits. ``wake`` is idempotent (a second publish before the task runs
    finds it already woken: rescheduling a task twice is an error) and takes the waker off every
    other feed at once, so no list keeps a stale entry.

    No wakeup is lost as long as the owner checks its sources and calls ``wait`` without a
    checkpoint in between (Trio runs both atomically); ``wait`` also returns at once when a
    mailbox has something pending. Another task that feeds the owner by other means (a command
    channel) calls ``wake`` after it has sent.
    """

    __slots__ = ("_feeds", "_queue", "_queued", "_task")

    def __init__(self, queue: WakeQueue | None = None) -> None:
        self._task: Task | None = None  # parked, or woken and waiting for a turn
        self._feeds: tuple[_Feed, ...] = ()
        self._queue = queue
        self._queued = False

    def wake(self) -> None:
        self._woken_by(None)

    def _woken_by(self, source: _Feed | None) -> None:
        if self._task is None or self._queued:
            return
        for feed in self._feeds:
            if feed is not source:  # the feed that wakes us has already emptied its list
                feed._unpark(self)
        self._feeds = ()
        queue = self._queue
        if queue is None:
            self._reschedule()
        else:
            self._queued = True
            queue._admit(self)

    def _reschedule(self) -> None:
        task = self._task
        assert task is not None
        self._task = None
        self._queued = False
        reschedule(task)

    def _abort(self, _: object) -> Abort:
        if self._queued:
            assert self._queue is not None
            self._queue._forget(self)
            self._queued = False
        for feed in self._feeds:
            feed._unpark(self)
        self._feeds = ()
        self._task = None
        return Abort.SUCCEEDED

    async def wait(self, mailboxes: Sequence[Mailbox]) -> None:
        """Return once any of ``mailboxes`` may have something to take (or has ended), or
        ``wake()`` was called. Only the owner task waits; a second waiter is
        ``BusyResourceError``."""
        await checkpoint_if_cancelled()
        if self._task is not None:
            raise trio.BusyResourceError("another task is already waiting on this waker")
        for mailbox in mailboxes:
            if mailbox._closed or mailbox._feed.closed or mailbox._pending():
                await cancel_shielded_checkpoint()
                return
        self._task = current_task()
        self._feeds = feeds = tuple(mailbox._feed for mailbox in mailboxes)
        for feed in feeds:
            feed._park(self)
        await wait_task_rescheduled(self._abort)
        if self._queue is not None:
            self._queue._resumed()
