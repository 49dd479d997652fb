"""Reading a recording back as the messages the feed delivered: ``read_events``.

Decisions:

* **Streaming, bounded memory.** Each stream's files are read one after the other, one row
  group (Parquet) or record batch (segment) at a time, and the streams are merged lazily with
  ``heapq.merge``: memory is one batch per stream being merged, whatever the time span.
* **Order.** Events come in ``received_ts`` order. Within a stream, files follow their ids
  (time order) and rows their recording order; ties between streams go in a fixed order
  (sorted by kind, then exchange, then symbol), so two reads of the same data
  yield the same sequence. A stream's own rows are assumed in ``received_ts`` order, as the
  recorder writes them (one feed, one clock); an imported dump is in the exchange's order.
* **Leftover segments are read too**: a recording whose writer crashed is readable up to its
  last flush before anything compacts it; a segment whose part already exists (compacted,
  crashed before the delete) is skipped.
* ``start`` is inclusive, ``end`` exclusive, both on ``received_ts``; day partitions entirely
  outside them are not opened.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from actors.messages import Ticker, Trade
from actors.recording.format import (
    PART_PREFIX,
    SEGMENT_PREFIX,
    batch_to_events,
    day_of,
    file_id_of,
    list_dates,
    list_streams,
)
from actors.recording.writer import read_segment

__all__ = ["READ_BATCH_ROWS", "read_events", "recorded_streams"]

READ_BATCH_ROWS = 8192


def recorded_streams(root: Path) -> list[tuple[str, str, str]]:
    """(exchange, kind, symbol) of every stream recorded under ``root``, sorted."""
    found = {
        (exchange, kind, symbol)
        for kind, exchange, symbol, path in list_streams(Path(root))
        if any(_files(day) for _, day in list_dates(path))
    }
    return sorted(found)


def _files(day: Path) -> list[Path]:
    """A day's readable files in recording order: parts, and segments not yet compacted."""
    by_id: dict[str, Path] = {}
    for path in day.iterdir():
        file_id = file_id_of(path.name)
        if file_id is None:
            continue
        if path.name.startswith(PART_PREFIX) or file_id not in by_id:
            by_id[file_id] = path  # a part wins over its segment
    return [by_id[file_id] for file_id in sorted(by_id)]


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    if path.name.startswith(SEGMENT_PREFIX):
        yield from read_segment(path)
        return
    try:
        parquet = pq.ParquetFile(str(path))
    except FileNotFoundError:  # compacted away under us: its part is listed next time
        return
    with parquet:
        yield from parquet.iter_batches(batch_size=READ_BATCH_ROWS)


def _stream_events(
    kind: str,
    exchange: str,
    symbol: str,
    stream: Path,
    start: float | None,
    end: float | None,
) -> Iterator[Ticker | Trade]:
    first_day = None if start is None else day_of(start)
    last_day = None if end is None else day_of(end)
    for date, day in list_dates(stream):
        if (first_day is not None and date < first_day) or (
            last_day is not None and date > last_day
        ):
            continue
        for path in _files(day):
            for batch in _batches(path):
                if start is not None or end is not None:
                    ts = batch.column("received_ts")
                    mask = pc.is_valid(ts)
                    if start is not None:
                        mask = pc.and_(mask, pc.greater_equal(ts, pa.scalar(start)))
                    if end is not None:
                        mask = pc.and_(mask, pc.less(ts, pa.scalar(end)))
                    batch = batch.filter(mask)
                    if not batch.num_rows:
                        continue
                yield from batch_to_events(kind, exchange, symbol, batch)


def _received_ts(event: Ticker | Trade) -> float:
    return event.received_ts


def read_events(
    root: Path,
    *,
    exchange: str | None = None,
    symbols: Collection[str] | None = None,
    kinds: Collection[str] = ("ticker", "trade"),
    start: float | None = None,
    end: float | None = None,
) -> Iterator[Ticker | Trade]:
    """Every recorded event under ``root`` of the matching streams, merged in ``received_ts``
    order (see the module docstring); ``symbols`` are unified (``BTC/USDT``)."""
    wanted_symbols = None if symbols is None else set(symbols)
    streams = [
        _stream_events(kind, ex, symbol, path, start, end)
        for kind, ex, symbol, path in sorted(list_streams(Path(root)))
        if kind in kinds
        and (exchange is None or ex == exchange)
        and (wanted_symbols is None or symbol in wanted_symbols)
    ]
    if len(streams) == 1:
        return streams[0]
    if not streams:
        return iter(())
    return heapq.merge(*streams, key=_received_ts)
