"""The record format on real files: exact round trip, order, filters, segments and crashes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from actors.messages import Ticker, Trade
from actors.recording.format import Partition, day_of
from actors.recording.reader import read_events, recorded_streams
from actors.recording.writer import RecordWriter, write_events
from tests.recording.helpers import DAY, ticker, trade

DECIMAL_FIELDS = ("bid", "ask", "last", "bid_size", "ask_size", "price", "size")


def texts(event: Ticker | Trade) -> tuple[str, ...]:
    """Every field as text: a Decimal's text keeps its exponent (``1.10`` is not ``1.1``)."""
    return tuple(repr(getattr(event, f)) for f in event.__slots__ if not f.startswith("__"))


def by_time(events: list[Ticker | Trade]) -> list[Ticker | Trade]:
    return sorted(events, key=lambda e: e.received_ts)


def files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.rglob(pattern))


def test_round_trip_is_exact_in_value_and_text(tmp_path: Path) -> None:
    events = [ticker(i) for i in range(40)] + [trade(i, symbol="ETH/USDT") for i in range(40)]
    write_events(tmp_path, events)
    back = list(read_events(tmp_path))
    assert back == by_time(events)
    assert [texts(e) for e in back] == [texts(e) for e in by_time(events)]
    assert recorded_streams(tmp_path) == [
        ("binance", "ticker", "BTC/USDT"),
        ("binance", "trade", "ETH/USDT"),
    ]
    assert files(tmp_path, "_seg-*") == []  # a clean close leaves Parquet only


def test_analysts_read_the_partitions_as_columns(tmp_path: Path) -> None:
    write_events(tmp_path, [trade(i) for i in range(10)])
    table = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 10
    row = table.slice(3, 1).to_pylist()[0]
    assert row["kind"] == "trade"
    assert row["exchange"] == "binance"
    assert row["symbol"] == "BTC-USDT"
    assert str(row["date"]) == day_of(DAY)
    assert row["price"] == "60003.00"
    assert row["received_ts"] == DAY + 3.25


def test_ties_keep_recording_order_and_a_fixed_stream_order(tmp_path: Path) -> None:
    same = DAY + 5
    eth = [trade(i, symbol="ETH/USDT") for i in range(3)]
    btc = [trade(i) for i in range(3)]
    tick = [ticker(i) for i in range(3)]
    # every event at one time; within a stream the recording order must survive
    events = [attrs_evolve(e, received_ts=same) for e in (*eth, *btc, *tick)]
    write_events(tmp_path, events)
    back = list(read_events(tmp_path))
    kinds_symbols = [(type(e).__name__, e.symbol) for e in back]
    assert (
        kinds_symbols
        == [("Ticker", "BTC/USDT")] * 3 + [("Trade", "BTC/USDT")] * 3 + [("Trade", "ETH/USDT")] * 3
    )
    assert [e.trade_id for e in back if isinstance(e, Trade) and e.symbol == "ETH/USDT"] == [
        e.trade_id for e in eth
    ]
    assert back == list(read_events(tmp_path))  # the same every time


def attrs_evolve(event: Ticker | Trade, **changes: float) -> Ticker | Trade:
    import attrs

    return attrs.evolve(event, **changes)


def test_filters_by_time_stream_kind_and_day(tmp_path: Path) -> None:
    # three UTC days, a trade and a ticker every 6 hours
    events: list[Ticker | Trade] = []
    for i in range(12):
        ts = DAY + i * 6 * 3600
        events += [ticker(0, ts=ts), trade(0, ts=ts, symbol="ETH/USDT")]
    write_events(tmp_path, events)
    assert len({p.parent.name for p in files(tmp_path, "*.parquet")}) >= 3  # day partitions

    start, end = DAY + 6 * 3600, DAY + 30 * 3600
    got = list(read_events(tmp_path, start=start, end=end))
    assert got == [e for e in by_time(events) if start <= e.received_ts < end]
    assert got[0].received_ts == start  # inclusive
    assert all(e.received_ts < end for e in got)  # exclusive

    tickers = list(read_events(tmp_path, kinds=("ticker",)))
    assert tickers
    assert all(isinstance(e, Ticker) for e in tickers)
    eth = list(read_events(tmp_path, symbols=["ETH/USDT"]))
    assert len(eth) == 12
    assert all(e.symbol == "ETH/USDT" for e in eth)
    assert list(read_events(tmp_path, exchange="kraken")) == []
    assert list(read_events(tmp_path / "nothing")) == []


def test_flushed_segments_are_readable_and_compacted_at_the_next_start(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path, clock=lambda: DAY)
    key = Partition("ticker", "binance", "BTC/USDT", day_of(DAY))
    first, second = [ticker(i) for i in range(5)], [ticker(i) for i in range(5, 9)]
    writer.write({key: first})
    writer.write({key: second})
    writer.abandon()  # what a crash leaves: an open segment, no Parquet
    [segment] = files(tmp_path, "_seg-*.arrows")
    assert files(tmp_path, "*.parquet") == []
    assert list(read_events(tmp_path)) == first + second

    # a torn last batch (the crash hit mid-write) costs that batch only
    torn = tmp_path / "torn"
    shutil.copytree(tmp_path, torn, ignore=shutil.ignore_patterns("torn"))
    [torn_segment] = files(torn, "_seg-*.arrows")
    os.truncate(torn_segment, torn_segment.stat().st_size - 20)
    assert list(read_events(torn)) == first

    recovered = RecordWriter(tmp_path, clock=lambda: DAY)
    assert recovered.recover() >= 1
    assert not segment.exists()
    assert files(tmp_path, "_seg-*") == files(tmp_path, "_tmp-*") == []
    assert list(read_events(tmp_path, exchange="binance")) == first + second


def test_a_segment_already_compacted_is_neither_read_twice_nor_recompacted(
    tmp_path: Path,
) -> None:
    writer = RecordWriter(tmp_path, clock=lambda: DAY)
    key = Partition("trade", "binance", "BTC/USDT", day_of(DAY))
    writer.write({key: [trade(i) for i in range(4)]})
    [segment] = files(tmp_path, "_seg-*.arrows")
    kept = segment.read_bytes()
    writer.close()
    segment.write_bytes(kept)  # crashed after the rename, before the delete
    assert len(list(read_events(tmp_path))) == 4
    assert RecordWriter(tmp_path, clock=lambda: DAY).recover() == 1
    assert not segment.exists()
    assert len(list(read_events(tmp_path))) == 4


def test_segments_rotate_by_age_and_at_the_end_of_the_day(tmp_path: Path) -> None:
    now = [DAY]
    writer = RecordWriter(tmp_path, rotate_s=60.0, clock=lambda: now[0])
    key = Partition("trade", "binance", "BTC/USDT", day_of(DAY))
    writer.write({key: [trade(0)]})
    now[0] += 30
    writer.write({key: [trade(1)]})
    assert len(files(tmp_path, "*.parquet")) == 0
    now[0] += 31
    writer.write({key: [trade(2)]})  # the segment is 61 s old: compacted after this write
    assert len(files(tmp_path, "*.parquet")) == 1
    assert writer.statistics().open_segments == 0
    writer.write({key: [trade(3)]})
    now[0] += 86400  # the next day: yesterday's segment is done whatever its age
    writer.rotate()
    assert len(files(tmp_path, "*.parquet")) == 2
    assert [pq.read_metadata(p).num_rows for p in files(tmp_path, "*.parquet")] == [3, 1]
    assert [e.trade_id for e in read_events(tmp_path)] == [trade(i).trade_id for i in range(4)]


CRASHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from actors.recording.format import Partition, day_of
    from actors.recording.writer import RecordWriter
    from tests.recording.helpers import DAY, trade

    writer = RecordWriter(Path(sys.argv[1]), clock=lambda: DAY)
    key = Partition("trade", "binance", "BTC/USDT", day_of(DAY))
    i = 0
    while True:
        writer.write({key: [trade(j) for j in range(i, i + 50)]})
        i += 50
        print(i, flush=True)  # rows flushed so far
        time.sleep(0.01)
    """
)


def test_sigkill_mid_recording_loses_at_most_the_unflushed_rows(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None
    flushed = [int(proc.stdout.readline()) for _ in range(5)]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    got = list(read_events(tmp_path))
    assert len(got) >= flushed[-1]
    assert len(got) % 50 == 0  # whole flushes only: a torn batch is not read
    assert got == [trade(i) for i in range(len(got))]


@pytest.mark.parametrize("kind", ["ticker", "trade"])
def test_read_events_merges_a_month_without_loading_it(tmp_path: Path, kind: str) -> None:
    # 30 days x 2 symbols: the merge holds one batch per stream, so it starts at once
    events = []
    for day in range(30):
        for symbol in ("BTC/USDT", "ETH/USDT"):
            make = ticker if kind == "ticker" else trade
            events += [make(i, symbol=symbol, ts=DAY + day * 86400) for i in range(3)]
    write_events(tmp_path, events)
    reader = read_events(tmp_path)
    assert next(reader) == by_time(events)[0]
    assert len(list(reader)) == len(events) - 1
