"""The recorder actor: a handler on each recorded stream, writing what the plane publishes.

Decisions:

* **It records every ticker and trade the plane published** on its streams while it ran. Each
  stream is a handler (``subscribe_handler(exchange, kind, symbol, fn)``, the seam of
  ``MarketData.subscribe_handler``): the connection's reader calls it with each item as it is
  published, in publish order, so nothing is conflated or lagged on the way to the recording,
  and no task is woken per message (the wake-ups were most of what a mailbox recorder cost,
  ``tests/bench/recording.py``). That is the recording's
  conflation rule: only what the plane itself never published is missing, Binance tickers
  superseded within one socket read (``tickers_conflated``, skipped by the codec before
  anything sees them). On entering, a handler also gets the stream's newest ticker, as a new
  mailbox does. A bot gets the same tickers or fewer (its mailbox conflates while it is
  busy), so a replay of the recording gives it what it saw live or more. Feed-state notices
  are not recorded.
* **The feed never waits on the disk.** The handler only appends the event to an in-memory
  buffer and counts it; it never awaits and never blocks the reader. Every ``flush_s``, or
  earlier once a quarter of ``max_buffer_rows`` waits (the handler sets an event the flush
  task waits on), the recorder's own task hands the buffer whole to the writer on a worker
  thread (``trio.to_thread.run_sync``, one flush at a time). Memory is bounded: at most
  ``max_buffer_rows`` wait while a flush (of at most as many) is in progress; beyond that,
  events are dropped and counted (``dropped_rows``) instead of growing without bound. A disk
  that cannot keep up loses data either way; this way it is counted and the feed is untouched.
* **Contained.** A recorder that fails (a full disk, or a bug in its handler, which detaches
  it and fails its task with ``HandlerError``) is restarted with backoff and given up on alone
  (``build_tree`` makes it a contained child): recording is never a reason to stop trading.
  Its handlers are detached when its task ends, so a given-up recorder costs the feed nothing.
* **Raw frames** (``raw_frames = true``) arrive through ``take_frames``, which the daemon hands
  to every connection as its frames hook (``PoolTuning.on_frames``): synchronous, into the same
  bounded buffer, written by the same flushes (``actors.recording.raw``). Frames received while
  the recorder is not running are not recorded.
* **Stopping flushes and compacts** (shielded, within the child's grace): a clean stop leaves
  only Parquet parts. A start first compacts what a crashed run left (``RecordWriter.recover``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path

import attrs
import trio
from loguru import logger

from actors.messages import Ticker, Trade
from actors.recording.config import RecordConfig
from actors.recording.format import RAW, Event, Partition, RawFrame, day_of
from actors.recording.writer import RecordWriter, WriterStatistics

__all__ = ["RecordHandler", "RecordSubscribe", "Recorder", "RecorderStatistics", "StreamKey"]

StreamKey = tuple[str, str, str]  # (exchange, kind, symbol)
EARLY_FLUSH_FRACTION = 4  # flush early once max_buffer_rows / 4 wait
STOP_GRACE_S = 10.0
_DATA = (Ticker, Trade)  # what is recorded of what a handler gets (not FeedState)

RecordHandler = Callable[[object], None]
# ``MarketData.subscribe_handler``'s shape: (exchange, kind, symbol, fn) -> ``async with`` that
# calls ``fn`` with every item of the stream while it is open.
RecordSubscribe = Callable[[str, str, str, RecordHandler], AbstractAsyncContextManager[object]]


@attrs.frozen
class RecorderStatistics:
    dir: str
    streams: int
    rows_received: int  # tickers and trades its handlers were given (kept or dropped)
    frames_received: int  # raw frames handed over by the connections (raw_frames)
    rows_written: int  # events handed to the OS
    frames_written: int  # raw frames handed to the OS
    parts_written: int  # Parquet files completed
    open_segments: int
    recovered_segments: int
    dropped_rows: int  # buffer full while the writer was behind
    buffered_rows: int
    flushes: int
    last_flush_ts: float | None  # wall clock of the last completed flush
    last_flush_s: float | None  # how long it took


class _Day:
    """One stream's partition for a time: built once per UTC day rather than once per event."""

    __slots__ = ("end", "exchange", "key", "kind", "start", "symbol")

    def __init__(self, kind: str, exchange: str, symbol: str) -> None:
        self.kind, self.exchange, self.symbol = kind, exchange, symbol
        self.start = math.inf
        self.end = -math.inf
        self.key = Partition(kind, exchange, symbol, "")

    def of(self, ts: float) -> Partition:
        if self.start <= ts < self.end:
            return self.key
        self.key = Partition(self.kind, self.exchange, self.symbol, day_of(ts))
        self.start = (ts // 86400) * 86400
        self.end = self.start + 86400
        return self.key


@attrs.define(eq=False)
class Recorder:
    config: RecordConfig
    subscribe_handler: RecordSubscribe
    streams: Sequence[StreamKey]
    clock: Callable[[], float] = time.time

    _writer: RecordWriter = attrs.field(init=False)
    _pending: dict[Partition, list[Event | RawFrame]] = attrs.field(factory=dict, init=False)
    _pending_rows: int = attrs.field(default=0, init=False)
    _wake_flusher: trio.Event = attrs.field(factory=trio.Event, init=False)
    _received: int = attrs.field(default=0, init=False)
    _frames: int = attrs.field(default=0, init=False)
    _running: bool = attrs.field(default=False, init=False)
    _raw_days: dict[str, _Day] = attrs.field(factory=dict, init=False)
    _dropped: int = attrs.field(default=0, init=False)
    _flushes: int = attrs.field(default=0, init=False)
    _last_flush_ts: float | None = attrs.field(default=None, init=False)
    _last_flush_s: float | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self._writer = RecordWriter(
            Path(self.config.dir), rotate_s=self.config.rotate_s, clock=self.clock
        )

    @property
    def root(self) -> Path:
        return Path(self.config.dir)

    def statistics(self) -> RecorderStatistics:
        w: WriterStatistics = self._writer.statistics()
        return RecorderStatistics(
            dir=self.config.dir,
            streams=len(self.streams),
            rows_received=self._received,
            frames_received=self._frames,
            rows_written=w.rows_written,
            frames_written=w.frames_written,
            parts_written=w.parts_written,
            open_segments=w.open_segments,
            recovered_segments=w.recovered_segments,
            dropped_rows=self._dropped,
            buffered_rows=self._pending_rows,
            flushes=self._flushes,
            last_flush_ts=self._last_flush_ts,
            last_flush_s=self._last_flush_s,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record until cancelled; ready once a handler is on every stream. A handler that
        raises ends the run with ``HandlerError`` (after the final flush)."""
        log = logger.bind(actor="recorder")
        self.root.mkdir(parents=True, exist_ok=True)
        await trio.to_thread.run_sync(self._writer.recover)
        try:
            async with AsyncExitStack() as handlers:
                for exchange, kind, symbol in self.streams:
                    handler = self._handler(exchange, kind, symbol)
                    await handlers.enter_async_context(
                        self.subscribe_handler(exchange, kind, symbol, handler)
                    )
                self._running = True
                log.info("recording", dir=self.config.dir, streams=len(self.streams))
                task_status.started()
                await self._flush_loop()
        finally:
            self._running = False
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + STOP_GRACE_S
                await self._flush()
                await trio.to_thread.run_sync(self._writer.close)
                log.info("recording stopped", **attrs.asdict(self.statistics()))

    def _handler(self, exchange: str, kind: str, symbol: str) -> RecordHandler:
        """The function the reader calls with each item of one stream: append, count, maybe
        signal the flusher. Synchronous and short: it runs on the path of every subscriber
        of the connection."""
        day = _Day(kind, exchange, symbol)
        limit = self.config.max_buffer_rows

        def record(item: object) -> None:
            if not isinstance(item, _DATA):
                return  # a FeedState: the recording holds data, not outages
            self._received += 1
            if self._pending_rows >= limit:
                self._dropped += 1
                return
            key = day.of(item.received_ts)
            rows = self._pending.get(key)
            if rows is None:
                rows = self._pending[key] = []
            rows.append(item)
            self._pending_rows += 1
            if self._pending_rows * EARLY_FLUSH_FRACTION >= limit:
                self._wake_flusher.set()

        return record

    def take_frames(
        self, exchange: str, connection: int, frames: list[str | bytes], received_ts: float
    ) -> None:
        """A connection's socket read (see the module docstring); never blocks."""
        if not self._running:
            return
        day = self._raw_days.get(exchange)
        if day is None:
            day = self._raw_days[exchange] = _Day(RAW, exchange, "")
        key = day.of(received_ts)
        rows = self._pending.get(key)
        if rows is None:
            rows = self._pending[key] = []
        for frame in frames:
            self._frames += 1
            if self._pending_rows >= self.config.max_buffer_rows:
                self._dropped += 1
                continue
            rows.append(RawFrame(received_ts, connection, frame))
            self._pending_rows += 1
        if self._pending_rows * EARLY_FLUSH_FRACTION >= self.config.max_buffer_rows:
            self._wake_flusher.set()

    async def _flush_loop(self) -> None:
        while True:
            with trio.move_on_after(self.config.flush_s):
                await self._wake_flusher.wait()
            self._wake_flusher = trio.Event()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending, self._pending_rows = self._pending, {}, 0
        started = time.perf_counter()
        await trio.to_thread.run_sync(self._writer.write, batch)
        self._flushes += 1
        self._last_flush_ts = self.clock()
        self._last_flush_s = time.perf_counter() - started
