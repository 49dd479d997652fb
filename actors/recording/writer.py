"""Files of a recording: append-only Arrow IPC segments, compacted into Parquet parts.

Synchronous and single-threaded by design: the recorder actor calls it from one worker thread at
a time (``trio.to_thread.run_sync``), so the feed never waits on a disk; the importer calls it
directly.

Decisions:

* **Crash rule: what was flushed survives.** A Parquet file is unreadable until its footer is
  written, so the file in progress is an Arrow IPC *stream* (``_seg-<id>.arrows``): each flush
  appends one record batch per partition and hands it to the OS (unbuffered writes). After a
  crash (SIGKILL, a power cut after the OS wrote it) the segment reads back up to its last
  complete batch; a torn last batch is ignored. So a crash loses at most what the recorder
  had not flushed yet: ``flush_s`` seconds of data, or less when the buffer filled first.
  Nothing is fsynced: a machine crash can also lose what the OS had not written.
* **Compaction.** A segment becomes ``part-<id>.parquet`` (zstd, row groups of at most
  ``ROW_GROUP_ROWS``) when it is ``rotate_s`` old, when its UTC day is over, at a clean stop,
  and for leftovers of a crashed run at the next start (``recover``). The part is written under
  a temporary name and renamed, then the segment is deleted; a crash in between leaves both,
  and since they share the id the next ``recover`` (and the reader) knows the segment is done.
  Compaction streams batch by batch, so its memory is one row group, whatever the segment's
  size.
* One recording directory has one writer at a time (as the journal has one writer); two
  recorders on one directory would each compact the other's open segments.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import attrs
import pyarrow as pa
import pyarrow.parquet as pq
from loguru import logger

from actors.recording.format import (
    RAW,
    SCHEMAS,
    SEGMENT_PREFIX,
    SEGMENT_SUFFIX,
    Event,
    Partition,
    RawFrame,
    day_of,
    event_kind,
    file_id_of,
    new_file_id,
    part_name,
    partition_dir,
    rows_to_batch,
    segment_name,
)

__all__ = [
    "ROW_GROUP_ROWS",
    "RecordWriter",
    "WriterStatistics",
    "compact",
    "read_segment",
    "write_events",
]

ROW_GROUP_ROWS = 65_536
TMP_PREFIX = "_tmp-"


def read_segment(path: Path) -> Iterator[pa.RecordBatch]:
    """The complete batches of a segment, in order; a torn tail (crash mid-write) ends it."""
    try:
        source = pa.OSFile(str(path), "rb")
    except FileNotFoundError:
        return
    with source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):  # empty, or torn inside the schema message
            return
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError):  # torn last batch
                return
            yield batch


def compact(segment: Path, part: Path) -> int:
    """Write ``segment``'s complete batches to ``part`` (atomically) and delete the segment.
    Returns the rows written (0: nothing readable, no part written)."""
    schema: pa.Schema | None = None
    rows = 0
    tmp = part.with_name(TMP_PREFIX + part.name)
    writer: pq.ParquetWriter | None = None
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    try:
        for batch in read_segment(segment):
            if writer is None:
                schema = batch.schema
                writer = pq.ParquetWriter(str(tmp), schema, compression="zstd")
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema), ROW_GROUP_ROWS)
                rows += pending_rows
                pending, pending_rows = [], 0
        if writer is not None:
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema), ROW_GROUP_ROWS)
                rows += pending_rows
            writer.close()
            writer = None
            os.replace(tmp, part)
    finally:
        if writer is not None:  # failed mid-way: leave the segment for the next try
            writer.close()
            tmp.unlink(missing_ok=True)
    segment.unlink(missing_ok=True)
    return rows


@attrs.frozen
class WriterStatistics:
    rows_written: int  # events handed to the OS (in segments)
    frames_written: int  # raw frames handed to the OS
    batches_written: int
    parts_written: int  # Parquet files completed
    open_segments: int
    recovered_segments: int  # leftovers of an earlier run compacted at start


@attrs.define(eq=False)
class _Segment:
    path: Path
    file_id: str
    opened_at: float
    file: pa.NativeFile
    stream: pa.RecordBatchStreamWriter


@attrs.define(eq=False)
class RecordWriter:
    """Appends events to the segments of their partitions; compacts them (see the module
    docstring). ``clock`` is wall-clock epoch seconds (rotation and day ends); with
    ``auto_rotate=False`` (an import, whose days are long over) segments are compacted only by
    ``close``."""

    root: Path
    rotate_s: float = 3600.0
    clock: Callable[[], float] = time.time
    auto_rotate: bool = True
    _open: dict[Partition, _Segment] = attrs.field(factory=dict, init=False)
    _rows: int = attrs.field(default=0, init=False)
    _frames: int = attrs.field(default=0, init=False)
    _batches: int = attrs.field(default=0, init=False)
    _parts: int = attrs.field(default=0, init=False)
    _recovered: int = attrs.field(default=0, init=False)

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(
            rows_written=self._rows,
            frames_written=self._frames,
            batches_written=self._batches,
            parts_written=self._parts,
            open_segments=len(self._open),
            recovered_segments=self._recovered,
        )

    def recover(self) -> int:
        """Compact every segment under ``root`` that this writer has not open (leftovers of a
        run that crashed); returns how many. Call before the first write."""
        if not self.root.is_dir():
            return 0
        mine = {seg.path for seg in self._open.values()}
        count = 0
        for tmp in self.root.rglob(f"{TMP_PREFIX}*"):
            tmp.unlink(missing_ok=True)
        for segment in sorted(self.root.rglob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")):
            if segment in mine:
                continue
            file_id = file_id_of(segment.name)
            assert file_id is not None
            part = segment.with_name(part_name(file_id))
            if part.exists():  # compacted, crashed before the delete
                segment.unlink()
            else:
                rows = compact(segment, part)
                self._parts += rows > 0
            count += 1
        self._recovered += count
        if count:
            logger.info("recording: compacted leftover segments", count=count, dir=str(self.root))
        return count

    def write(self, events: Mapping[Partition, Sequence[Event | RawFrame]]) -> None:
        """Append each partition's events (in order) to its segment, handed to the OS before
        this returns; then compact the segments that are due."""
        for partition, rows in events.items():
            if not rows:
                continue
            batch = rows_to_batch(partition.kind, rows)
            segment = self._open.get(partition) or self._open_segment(partition)
            segment.stream.write_batch(batch)
            segment.file.flush()
            if partition.kind == RAW:
                self._frames += len(rows)
            else:
                self._rows += len(rows)
            self._batches += 1
        if self.auto_rotate:
            self.rotate()

    def rotate(self) -> None:
        """Compact the segments ``rotate_s`` old, and those of a day that is over."""
        now = self.clock()
        today = day_of(now)
        for partition, segment in list(self._open.items()):
            if now - segment.opened_at >= self.rotate_s or partition.date < today:
                self._close(partition)

    def close(self) -> None:
        """Compact every open segment (a clean stop)."""
        for partition in list(self._open):
            self._close(partition)

    def _open_segment(self, partition: Partition) -> _Segment:
        directory = partition_dir(self.root, partition)
        directory.mkdir(parents=True, exist_ok=True)
        file_id = new_file_id()
        path = directory / segment_name(file_id)
        file = pa.OSFile(str(path), "wb")  # unbuffered: every batch reaches the OS
        stream = pa.ipc.new_stream(file, SCHEMAS[partition.kind])
        segment = self._open[partition] = _Segment(path, file_id, self.clock(), file, stream)
        return segment

    def _close(self, partition: Partition) -> None:
        segment = self._open.pop(partition)
        segment.stream.close()
        segment.file.close()
        rows = compact(segment.path, segment.path.with_name(part_name(segment.file_id)))
        self._parts += rows > 0

    def abandon(self) -> None:
        """Drop the open segments without compacting (tests: what a crash leaves)."""
        for segment in self._open.values():
            segment.file.close()
        self._open.clear()


def write_events(root: Path, events: Sequence[Event]) -> WriterStatistics:
    """Write ``events`` (any streams, in order) and compact them: a one-shot recording."""
    writer = RecordWriter(root)
    grouped: dict[Partition, list[Event]] = {}
    for event in events:
        key = Partition(event_kind(event), event.exchange, event.symbol, day_of(event.received_ts))
        grouped.setdefault(key, []).append(event)
    writer.write(grouped)
    writer.close()
    return writer.statistics()
