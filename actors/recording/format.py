"""The record format, defined once: the Arrow schemas of the two event kinds, the conversion of
``Ticker``/``Trade`` to columns and back, and the layout of files under the record directory.

Layout (Hive-style partitions, which pyarrow.dataset, pandas, DuckDB and Polars read as
columns)::

    DIR/kind=ticker/exchange=binance/symbol=BTC-USDT/date=2026-12-01/part-<id>.parquet
    DIR/kind=ticker/exchange=binance/symbol=BTC-USDT/date=2026-12-01/_seg-<id>.arrows
    DIR/kind=raw/exchange=binance/date=2026-12-01/part-<id>.parquet     (raw_frames = true)

Decisions:

* **Prices and sizes are strings** (the ``str`` of the ``Decimal`` the codec parsed from the
  exchange's own text). Exact, and exact *in representation*: ``Decimal("65000.10")`` comes
  back as ``Decimal("65000.10")``, not ``65000.100000000000000000``, so a replay books the very
  text a live run booked and the journals of the two compare byte for byte. ``decimal128``
  with one fixed scale would be numeric for analysts, but it rewrites every value's scale and
  must refuse (or round) values finer than its scale; a cast is one call for an analyst
  (``price::DECIMAL(38,18)`` in DuckDB, ``pd.to_numeric`` or ``pl.col("price").cast``).
* **Times are float64 epoch seconds**, the messages' own type, so they round-trip exactly.
* **exchange, symbol and date live in the path only** (Hive partitions): a reader of the
  dataset gets them as columns, and a file never disagrees with its directory. The symbol's
  ``/`` is written ``-`` (unified symbols are alphanumeric ``BASE/QUOTE``, so this is
  reversible); the date is the UTC day of ``received_ts``.
* **A file's id sorts in time order** (microseconds since the epoch when the segment was opened,
  then a random suffix), so listing a partition in name order is its recording order.
  ``part-<id>.parquet`` is the compacted form of ``_seg-<id>.arrows``: the shared id makes
  compaction idempotent after a crash (a segment whose part exists is already compacted). The
  leading ``_`` makes Hive readers (pyarrow, DuckDB globs of ``*.parquet``) skip in-progress
  segments, which ``actors.recording.reader`` reads itself.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pyarrow as pa

from actors.messages import Ticker, Trade

__all__ = [
    "KINDS",
    "PART_PREFIX",
    "RAW",
    "SCHEMAS",
    "SEGMENT_PREFIX",
    "Event",
    "Kind",
    "Partition",
    "RawFrame",
    "batch_to_events",
    "day_of",
    "event_kind",
    "new_file_id",
    "partition_dir",
    "rows_to_batch",
]

Kind = Literal["ticker", "trade"]
KINDS: tuple[Kind, ...] = ("ticker", "trade")
Event = Ticker | Trade
PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
SEGMENT_PREFIX = "_seg-"
SEGMENT_SUFFIX = ".arrows"

_TICKER_FIELDS: list[pa.Field[Any]] = [
    pa.field("received_ts", pa.float64()),
    pa.field("exchange_ts", pa.float64()),
    pa.field("bid", pa.string()),
    pa.field("ask", pa.string()),
    pa.field("last", pa.string()),
    pa.field("bid_size", pa.string()),
    pa.field("ask_size", pa.string()),
    pa.field("source", pa.string()),
    pa.field("sequence", pa.int64()),
]
_TRADE_FIELDS: list[pa.Field[Any]] = [
    pa.field("received_ts", pa.float64()),
    pa.field("exchange_ts", pa.float64()),
    pa.field("price", pa.string()),
    pa.field("size", pa.string()),
    pa.field("side", pa.string()),
    pa.field("trade_id", pa.string()),
    pa.field("sequence", pa.int64()),
]
_RAW_FIELDS: list[pa.Field[Any]] = [
    pa.field("received_ts", pa.float64()),
    pa.field("connection", pa.int32()),
    pa.field("text", pa.string()),  # a text frame, else null
    pa.field("data", pa.binary()),  # a binary frame, else null
]
TICKER_SCHEMA = pa.schema(_TICKER_FIELDS)
TRADE_SCHEMA = pa.schema(_TRADE_FIELDS)
RAW_SCHEMA = pa.schema(_RAW_FIELDS)
RAW = "raw"  # the kind of raw frames: one stream per exchange, no symbol
SCHEMAS: dict[str, pa.Schema] = {"ticker": TICKER_SCHEMA, "trade": TRADE_SCHEMA, RAW: RAW_SCHEMA}


class RawFrame(NamedTuple):
    """One frame as a connection of the exchange received it."""

    received_ts: float
    connection: int  # the connection (shard) index within its exchange
    frame: str | bytes


class Partition(tuple[str, str, str, str]):
    """(kind, exchange, symbol, date): one directory of files."""

    __slots__ = ()

    def __new__(cls, kind: str, exchange: str, symbol: str, date: str) -> Partition:
        return super().__new__(cls, (kind, exchange, symbol, date))

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def exchange(self) -> str:
        return self[1]

    @property
    def symbol(self) -> str:
        return self[2]

    @property
    def date(self) -> str:
        return self[3]


def event_kind(event: Event) -> Kind:
    return "ticker" if isinstance(event, Ticker) else "trade"


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def symbol_dir(symbol: str) -> str:
    return symbol.replace("/", "-")


def symbol_from_dir(name: str) -> str:
    return name.replace("-", "/")


def stream_dir(root: Path, kind: str, exchange: str, symbol: str) -> Path:
    return root / f"kind={kind}" / f"exchange={exchange}" / f"symbol={symbol_dir(symbol)}"


def raw_dir(root: Path, exchange: str) -> Path:
    return root / f"kind={RAW}" / f"exchange={exchange}"


def partition_dir(root: Path, partition: Partition) -> Path:
    kind, exchange, symbol, date = partition
    if kind == RAW:
        return raw_dir(root, exchange) / f"date={date}"
    return stream_dir(root, kind, exchange, symbol) / f"date={date}"


def new_file_id() -> str:
    return f"{time.time_ns() // 1000:017d}-{os.urandom(4).hex()}"


def part_name(file_id: str) -> str:
    return f"{PART_PREFIX}{file_id}{PART_SUFFIX}"


def segment_name(file_id: str) -> str:
    return f"{SEGMENT_PREFIX}{file_id}{SEGMENT_SUFFIX}"


def file_id_of(name: str) -> str | None:
    """The id of a part or segment file name, None for any other file."""
    for prefix, suffix in ((PART_PREFIX, PART_SUFFIX), (SEGMENT_PREFIX, SEGMENT_SUFFIX)):
        if name.startswith(prefix) and name.endswith(suffix):
            return name[len(prefix) : -len(suffix)]
    return None


def _key_value(name: str, key: str) -> str | None:
    prefix = f"{key}="
    return name[len(prefix) :] if name.startswith(prefix) else None


def list_streams(root: Path) -> Iterator[tuple[str, str, str, Path]]:
    """(kind, exchange, unified symbol, directory) of every stream directory under ``root``."""
    if not root.is_dir():
        return
    for kind_dir in sorted(root.iterdir()):
        kind = _key_value(kind_dir.name, "kind")
        if kind not in KINDS or not kind_dir.is_dir():
            continue
        for exchange_dir in sorted(kind_dir.iterdir()):
            exchange = _key_value(exchange_dir.name, "exchange")
            if exchange is None or not exchange_dir.is_dir():
                continue
            for sym_dir in sorted(exchange_dir.iterdir()):
                symbol = _key_value(sym_dir.name, "symbol")
                if symbol is None or not sym_dir.is_dir():
                    continue
                yield kind, exchange, symbol_from_dir(symbol), sym_dir


def list_dates(stream: Path) -> list[tuple[str, Path]]:
    dates = []
    for day_dir in stream.iterdir():
        date = _key_value(day_dir.name, "date")
        if date is not None and day_dir.is_dir():
            dates.append((date, day_dir))
    return sorted(dates)


# --- events <-> columns ---------------------------------------------------------------------


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def rows_to_batch(kind: str, events: Sequence[Any]) -> pa.RecordBatch:
    """Columns of one partition's events (all of ``kind``; ``RawFrame``s for raw)."""
    if kind == RAW:
        frames: Sequence[RawFrame] = events
        columns: list[list[Any]] = [
            [f.received_ts for f in frames],
            [f.connection for f in frames],
            [f.frame if type(f.frame) is str else None for f in frames],
            [None if type(f.frame) is str else f.frame for f in frames],
        ]
    elif kind == "ticker":
        tickers: Sequence[Any] = events
        columns = [
            [t.received_ts for t in tickers],
            [t.exchange_ts for t in tickers],
            [str(t.bid) for t in tickers],
            [str(t.ask) for t in tickers],
            [_text(t.last) for t in tickers],
            [_text(t.bid_size) for t in tickers],
            [_text(t.ask_size) for t in tickers],
            [t.source for t in tickers],
            [t.sequence for t in tickers],
        ]
    else:
        trades: Sequence[Any] = events
        columns = [
            [t.received_ts for t in trades],
            [t.exchange_ts for t in trades],
            [str(t.price) for t in trades],
            [str(t.size) for t in trades],
            [t.side for t in trades],
            [t.trade_id for t in trades],
            [t.sequence for t in trades],
        ]
    schema = SCHEMAS[kind]
    return pa.RecordBatch.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def batch_to_events(
    kind: str, exchange: str, symbol: str, batch: pa.RecordBatch | pa.Table
) -> list[Event]:
    """The events of one batch read back; Decimals equal in value and text to those written."""
    cols = batch.to_pydict()
    n = batch.num_rows
    received = cols["received_ts"]
    exchange_ts = cols["exchange_ts"]
    seq = cols["sequence"]
    if kind == "ticker":
        bid, ask, last = cols["bid"], cols["ask"], cols["last"]
        bid_size, ask_size, source = cols["bid_size"], cols["ask_size"], cols["source"]
        return [
            Ticker(
                exchange,
                symbol,
                Decimal(bid[i]),
                Decimal(ask[i]),
                _dec(last[i]),
                _dec(bid_size[i]),
                _dec(ask_size[i]),
                exchange_ts[i],
                received[i],
                source[i],
                seq[i],
            )
            for i in range(n)
        ]
    price, size, side, trade_id = cols["price"], cols["size"], cols["side"], cols["trade_id"]
    return [
        Trade(
            exchange,
            symbol,
            Decimal(price[i]),
            Decimal(size[i]),
            side[i],
            trade_id[i],
            exchange_ts[i],
            received[i],
            seq[i],
        )
        for i in range(n)
    ]
