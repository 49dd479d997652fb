"""``ReplayFeed``: recorded events through the market-data plane's own seam, one at a time.

A bot takes ``subscribe(exchange, kind, symbol)``, an async context manager yielding a
``Mailbox`` (``actors.bots.bot.Subscribe``). Live, the market-data plane provides it; here a
``ReplayReader`` does, with mailboxes on the plane's own ``TickerSlot`` and ``TradeRing``, so
the ``Bot`` and everything under it (core, strategy, risk, paper executor, journal) run
unchanged: a backtest runs exactly the code that trades.

Decisions:

* **One event, then wait until every bot is done with it.** ``run`` moves the clock to the
  event's ``received_ts`` (``ReplayClock``), publishes it, and awaits
  ``wait_processed`` of each consumer subscribed to its stream before the next one. A consumer
  parked on its mailboxes takes exactly one input per event it subscribes to (plus, when it
  subscribes, the stream's state notice and newest ticker), so the count it must reach is
  known here without asking it. No sleep, no idle detection: nothing depends on how fast the
  machine, the scheduler or the journal's thread is.
* **The conflation rule.** Replayed, a bot sees *every* recorded ticker of its stream, in
  order. Live, a bot busy with one ticker (waiting for its journal, or its turn among many
  bots) takes only the newest when it is free (``actors.market_data.mailbox``): it may skip
  some. A live run and its replay therefore make the same decisions when the live bot skipped
  no ticker (``Mailbox.statistics().skipped == 0``); when it skipped some, the replay is the
  run a bot fast enough for that market would have made. Trades are never conflated, live or
  replayed, but their order against tickers can differ: live, a bot woken by one socket read
  that held a ticker and trades handles the ticker first, then the trades; replayed, every
  event comes in ``received_ts`` order (the reader's). A strategy on both streams can
  therefore decide differently on the same data when a trade and a ticker arrive together.
* **A stream is live from the start.** Each stream posts ``FeedState(..., "live")`` when first
  subscribed, as a live stream does on its first data: the recording holds data, not outages.
* **Streams nobody subscribed to are read and skipped**, not published; ``observe`` (the
  backtest's price sampler) still sees them.
* **Speed.** ``speed=0`` (the default) replays as fast as the bots go; ``speed=X`` waits in
  real time so that event ``i`` is published no earlier than ``(ts_i - ts_0) / X`` seconds
  after the first. The times the bots read are the recorded ones either way (see
  ``ReplayClock``), so the speed changes nothing but the duration.
* Reading the events (the caller's iterator: files) happens in the Trio thread: a replay is a
  batch job with one pipeline, and a worker-thread hop per event would cost more than it saves.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import attrs
import trio

from actors.errors import FeedError
from actors.market_data.mailbox import TRADE_RING_SIZE, Mailbox, TickerSlot, TradeRing
from actors.messages import FeedState, Stream, Ticker, Trade
from actors.replay.clock import ReplayClock

__all__ = ["Consumer", "ReplayFeed", "ReplayReader", "ReplayStatistics"]

StreamKey = tuple[str, str, str]  # (exchange, kind, symbol)
# Events skipped (no subscriber) between two checkpoints, so a long skip still lets
# cancellation (Ctrl-C) in.
CHECKPOINT_EVERY = 1024


class Consumer(Protocol):
    """What the replay waits on: ``actors.bots.Bot`` is one."""

    async def wait_processed(self, count: int) -> None: ...


@attrs.frozen(slots=True)
class ReplayStatistics:
    events: int  # read from the source
    published: int  # handed to at least one subscriber
    first_ts: float | None
    last_ts: float | None


@attrs.define(eq=False)
class ReplayReader:
    """One consumer's subscriptions. Give its ``subscribe`` to the consumer (a ``Bot``), then
    ``bind`` the consumer, before ``ReplayFeed.run``."""

    _feed: ReplayFeed
    consumer: Consumer | None = None
    expected: int = 0  # inputs the consumer must have handled once it is done

    def bind(self, consumer: Consumer) -> None:
        self.consumer = consumer

    def subscribe(
        self, exchange: str, kind: str, symbol: str
    ) -> AbstractAsyncContextManager[Mailbox]:
        return self._feed._subscribe(exchange, kind, symbol, self)


class ReplayFeed:
    def __init__(self, *, trade_ring_size: int = TRADE_RING_SIZE) -> None:
        self._trade_ring_size = trade_ring_size
        self._buffers: dict[StreamKey, TickerSlot | TradeRing] = {}
        self._readers: dict[StreamKey, list[ReplayReader]] = {}

    def reader(self, consumer: Consumer | None = None) -> ReplayReader:
        return ReplayReader(self, consumer)

    def streams(self) -> list[StreamKey]:
        """(exchange, kind, symbol) of every stream subscribed so far: what to read."""
        return list(self._buffers)

    def subscribe(
        self, exchange: str, kind: str, symbol: str
    ) -> AbstractAsyncContextManager[Mailbox]:
        """An observer the replay does not wait for (it may skip tickers, as live)."""
        return self._subscribe(exchange, kind, symbol, None)

    def _buffer(self, exchange: str, kind: str, symbol: str) -> TickerSlot | TradeRing:
        key = (exchange, kind, symbol)
        buffer = self._buffers.get(key)
        if buffer is None:
            if kind == "ticker":
                buffer = TickerSlot(Stream("ticker", symbol))
            elif kind == "trade":
                buffer = TradeRing(Stream("trade", symbol), self._trade_ring_size)
            else:
                raise FeedError(f"replay: unknown stream kind {kind!r} (ticker or trade)")
            buffer.post_state(FeedState(exchange, buffer.stream, "live", "replay"))
            self._buffers[key] = buffer
        return buffer

    @asynccontextmanager
    async def _subscribe(
        self, exchange: str, kind: str, symbol: str, reader: ReplayReader | None
    ) -> AsyncIterator[Mailbox]:
        buffer = self._buffer(exchange, kind, symbol)
        mailbox = buffer.open_mailbox()
        key = (exchange, kind, symbol)
        if reader is not None:
            # What the new mailbox holds at once: the state notice, and the newest ticker.
            reader.expected += 1 + int(isinstance(buffer, TickerSlot) and buffer.latest is not None)
            self._readers.setdefault(key, []).append(reader)
        try:
            yield mailbox
        finally:
            mailbox.close()
            if reader is not None:
                self._readers[key].remove(reader)

    async def run(
        self,
        events: Iterable[Ticker | Trade],
        *,
        speed: float = 0.0,
        observe: Callable[[Ticker | Trade], None] | None = None,
    ) -> ReplayStatistics:
        """Publish ``events`` (in ``received_ts`` order) one at a time; see the module
        docstring. Runs under ``trio.run(..., clock=ReplayClock(...))``."""
        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, ReplayClock):
            raise RuntimeError("a replay runs under trio.run(..., clock=ReplayClock(start))")
        if speed < 0 or speed != speed:
            raise ValueError(f"speed must be >= 0 (0: as fast as possible), got {speed!r}")
        await self._settle()
        count = published = 0
        first_ts: float | None = None
        last_ts: float | None = None
        real_start = 0.0
        buffers, readers = self._buffers, self._readers
        for event in events:
            count += 1
            ts = event.received_ts
            if first_ts is None:
                first_ts, real_start = ts, time.perf_counter()
            last_ts = ts
            if observe is not None:
                observe(event)
            kind = "ticker" if type(event) is Ticker else "trade"
            buffer = buffers.get((event.exchange, kind, event.symbol))
            if buffer is None:
                if count % CHECKPOINT_EVERY == 0:
                    await trio.lowlevel.checkpoint()
                continue
            if speed:
                await clock.pace_to(ts, real_start + (ts - first_ts) / speed)
            else:
                clock.advance_to(ts)
            buffer.publish(event)  # type: ignore[arg-type]
            published += 1
            for reader in readers.get((event.exchange, kind, event.symbol), ()):
                reader.expected += 1
                assert reader.consumer is not None
                await reader.consumer.wait_processed(reader.expected)
        await trio.lowlevel.checkpoint()
        return ReplayStatistics(count, published, first_ts, last_ts)

    async def _settle(self) -> None:
        """Every consumer has handled what its mailboxes held on subscribing."""
        for readers in self._readers.values():
            for reader in readers:
                if reader.consumer is None:
                    raise RuntimeError("a ReplayReader subscribed without a bound consumer")
                await reader.consumer.wait_processed(reader.expected)
