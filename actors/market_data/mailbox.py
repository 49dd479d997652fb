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
* Nothing here is unbounded: one slot, one ring, one state per stream; a mailbox is a handful of
  integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import attrs
import outcome
import trio
from trio.lowlevel import (
    Abort,
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
    "Mailbox",
    "MailboxItem",
    "MailboxStatistics",
    "TickerSlot",
    "TradeRing",
    "Waker",
]

TRADE_RING_SIZE = 1024

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

    __slots__ = ("_waiters", "closed", "count", "state", "state_mark", "state_version", "stream")

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.count = 0  # data items ever published
        self.state: FeedState | None = None
        self.state_version = 0
        self.state_mark = 0  # ``count`` when the current state was posted
        self.closed = False
        self._waiters: list[Task | Waker] = []

    def post_state(self, state: FeedState) -> None:
        self.state = state
        self.state_version += 1
        self.state_mark = self.count
        self._wake()

    def close(self) -> None:
        """The producer is gone: mailboxes drain what they can still read, then EndOfChannel."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for waiter in waiters:
                if isinstance(waiter, Waker):
                    waiter.wake()
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
        if self._waiters:
            self._wake()

    def get(self, index: int) -> Trade:
        trade = self._ring[index % self.size]
        assert trade is not None
        return trade

    def open_mailbox(self) -> Mailbox:
        return _TradeMailbox(self)


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


class Waker:
    """Parks one task on several mailboxes at once; the first publish, state notice or end on
    any of their feeds, or a ``wake()`` from anyone, reschedules it.

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

    __slots__ = ("_feeds", "_task")

    def __init__(self) -> None:
        self._task: Task | None = None
        self._feeds: tuple[_Feed, ...] = ()

    def wake(self) -> None:
        task = self._task
        if task is None:
            return
        self._task = None
        self._leave_feeds()
        reschedule(task)

    def _leave_feeds(self) -> None:
        for feed in self._feeds:
            feed._unpark(self)
        self._feeds = ()

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
        self._feeds = tuple(mailbox._feed for mailbox in mailboxes)
        for feed in self._feeds:
            feed._park(self)

        def abort(_: object) -> Abort:
            self._task = None
            self._leave_feeds()
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)
