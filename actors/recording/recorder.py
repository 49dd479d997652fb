"""The recorder actor: subscribes to streams like a bot does and writes what it gets to files.

Decisions:

* **It records what a subscriber gets**, through the same ``subscribe(exchange, kind, symbol)``
  seam as the bots (a ``Mailbox`` per stream). That is the recording's conflation rule, the
  mailbox's own: every trade is recorded unless the recorder fell more than the trade ring
  (1024) behind, which arrives as ``Lagged`` and is counted in ``lagged_trades``; tickers are
  conflated, a ticker replaced by a newer one before the recorder took it is not recorded
  and is counted in ``skipped_tickers``. The recorder drains each mailbox in one go every time
  it is woken, so it is rarely behind; a bot, which does more per ticker, usually sees the
  same tickers or fewer, so a replay of the recording gives it what it saw live or more.
* **The feed never waits on the disk.** Events are appended to an in-memory buffer
  (synchronously: nothing awaits between the mailbox and the buffer); every ``flush_s``, or
  earlier once a quarter of ``max_buffer_rows`` waits, the buffer is handed whole to the
  writer on a worker thread (``trio.to_thread.run_sync``, one flush at a time). Memory is
  bounded: at most ``max_buffer_rows`` wait while a flush (of at most as many) is in
  progress; beyond that, events are dropped and counted (``dropped_rows``) instead of
  growing without bound. Tickers are conflated anyway and trades would otherwise lag the ring:
  a disk that cannot keep up loses data either way; this way it is counted and the feed is
  untouched.
* **Contained.** A recorder that fails (a full disk) is restarted with backoff and given up on
  alone (``build_tree`` makes it a contained child): recording is never a reason to stop
  trading. Its subscriptions end with it, so a given-up recorder costs the feed nothing.
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
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio
from loguru import logger

from actors.messages import Lagged, Ticker, Trade
from actors.recording.config import RecordConfig
from actors.recording.format import RAW, Event, Partition, RawFrame, day_of
from actors.recording.writer import RecordWriter, WriterStatistics

__all__ = ["Recorder", "RecorderStatistics", "RecordingMailbox", "StreamKey"]

StreamKey = tuple[str, str, str]  # (exchange, kind, symbol)
EARLY_FLUSH_FRACTION = 4  # flush early once max_buffer_rows / 4 wait
STOP_GRACE_S = 10.0


class RecordingMailbox(Protocol):
    """What the recorder needs of a market-data mailbox (``actors.market_data.Mailbox``)."""

    async def receive(self) -> object: ...

    def receive_nowait(self) -> object: ...

    def statistics(self) -> Any: ...  # .skipped: tickers conflated away


RecordSubscribe = Callable[[str, str, str], AbstractAsyncContextManager[RecordingMailbox]]


@attrs.frozen
class RecorderStatistics:
    dir: str
    streams: int
    rows_received: int  # events taken from the mailboxes
    frames_received: int  # raw frames handed over by the connections (raw_frames)
    rows_written: int  # events handed to the OS
    frames_written: int  # raw frames handed to the OS
    parts_written: int  # Parquet files completed
    open_segments: int
    recovered_segments: int
    skipped_tickers: int  # conflated by the mailbox (the conflation rule)
    lagged_trades: int  # lost to the trade ring (Lagged)
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
    subscribe: RecordSubscribe
    streams: Sequence[StreamKey]
    clock: Callable[[], float] = time.time

    _writer: RecordWriter = attrs.field(init=False)
    _pending: dict[Partition, list[Event | RawFrame]] = attrs.field(factory=dict, init=False)
    _pending_rows: int = attrs.field(default=0, init=False)
    _wake_flusher: trio.Event = attrs.field(factory=trio.Event, init=False)
    _mailboxes: list[RecordingMailbox] = attrs.field(factory=list, init=False)
    _left_skipped: int = attrs.field(default=0, init=False)
    _received: int = attrs.field(default=0, init=False)
    _frames: int = attrs.field(default=0, init=False)
    _running: bool = attrs.field(default=False, init=False)
    _raw_days: dict[str, _Day] = attrs.field(factory=dict, init=False)
    _lagged: int = attrs.field(default=0, init=False)
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
        skipped = self._left_skipped + sum(m.statistics().skipped for m in self._mailboxes)
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
            skipped_tickers=skipped,
            lagged_trades=self._lagged,
            dropped_rows=self._dropped,
            buffered_rows=self._pending_rows,
            flushes=self._flushes,
            last_flush_ts=self._last_flush_ts,
            last_flush_s=self._last_flush_s,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Record until cancelled; ready once every stream is subscribed."""
        log = logger.bind(actor="recorder")
        self.root.mkdir(parents=True, exist_ok=True)
        await trio.to_thread.run_sync(self._writer.recover)
        try:
            async with trio.open_nursery() as nursery:
                for exchange, kind, symbol in self.streams:
                    await nursery.start(self._record_stream, exchange, kind, symbol)
                nursery.start_soon(self._flush_loop)
                self._running = True
                log.info("recording", dir=self.config.dir, streams=len(self.streams))
                task_status.started()
        finally:
            self._running = False
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + STOP_GRACE_S
                await self._flush()
                await trio.to_thread.run_sync(self._writer.close)
                log.info("recording stopped", **attrs.asdict(self.statistics()))

    async def _record_stream(
        self,
        exchange: str,
        kind: str,
        symbol: str,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        day = _Day(kind, exchange, symbol)
        async with self.subscribe(exchange, kind, symbol) as mailbox:
            self._mailboxes.append(mailbox)
            task_status.started()
            try:
                while True:
                    self._take(await mailbox.receive(), day)
                    while True:  # drain what is there: one wake-up per burst
                        try:
                            item = mailbox.receive_nowait()
                        except trio.WouldBlock:
                            break
                        self._take(item, day)
            except trio.EndOfChannel:
                logger.bind(actor="recorder").info(
                    "stream ended", exchange=exchange, kind=kind, symbol=symbol
                )
            finally:
                self._mailboxes.remove(mailbox)
                self._left_skipped += mailbox.statistics().skipped

    def _take(self, item: object, day: _Day) -> None:
        if isinstance(item, Ticker | Trade):
            self._received += 1
            if self._pending_rows >= self.config.max_buffer_rows:
                self._dropped += 1
                return
            key = day.of(item.received_ts)
            rows = self._pending.get(key)
            if rows is None:
                rows = self._pending[key] = []
            rows.append(item)
            self._pending_rows += 1
            if self._pending_rows * EARLY_FLUSH_FRACTION >= self.config.max_buffer_rows:
                self._wake_flusher.set()
        elif isinstance(item, Lagged):
            self._lagged += item.dropped

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
