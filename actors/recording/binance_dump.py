"""Import of Binance's public data dumps (the daily or monthly zipped CSV files of ``trades``,
``aggTrades`` and ``bookTicker``) into the record format, so history downloaded once drives a
replay like a recording does.

Layouts (by file kind, a header line is detected and skipped, columns are taken by position):

* ``SYMBOL-trades-DATE.zip``: spot ``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch``
  (no header); USD-M futures ``id,price,qty,quote_qty,time,is_buyer_maker`` (header).
* ``SYMBOL-aggTrades-DATE.zip``: spot ``aggTradeId,price,qty,firstTradeId,lastTradeId,time,
  isBuyerMaker,isBestMatch``; futures the same without ``isBestMatch`` (header).
* ``SYMBOL-bookTicker-DATE.zip`` (published for futures):
  ``update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,
  event_time`` (header).

Decisions:

* **Time unit per value.** Spot files use milliseconds until 2024-12-31 and microseconds from
  2025-01-01 on; futures files milliseconds. A value of 10^14 or more is microseconds (as
  milliseconds it would be past the year 5000), so any file imports whatever its date.
* **received_ts is the exchange's time** (a dump has no receipt time): a trade's ``time``, a
  book ticker's ``event_time`` (when the exchange sent it; ``transaction_time`` is its
  ``exchange_ts``). A replay therefore runs without network latency; say so when comparing.
* **Values go through the live codec's own parsers** (``actors.exchanges.parsing``): the same
  checks and the same ``Decimal`` text as a live frame, and the symbol through the Binance
  codec's mapping (``BTCUSDT`` -> ``BTC/USDT``). ``isBuyerMaker`` true means the taker sold.
  A trade's ``sequence`` is its id, as the live codec sets it.
* **A bad row stops the import** with ``file:line: message``, and nothing of that file is
  written (it is parsed into a temporary directory first and moved in when whole). A target
  day that already holds data is refused rather than duplicated (importing ``trades`` and
  ``aggTrades`` of one day would count every trade twice).
* Streaming: rows are parsed and written in chunks (``CHUNK_ROWS``), so a 1 GB dump needs the
  memory of one chunk.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

from actors.errors import BotCriptoFyError
from actors.exchanges import codec_for
from actors.exchanges.parsing import check_book, price, size, trade_id, trade_size
from actors.messages import Ticker, Trade
from actors.recording.format import (
    Event,
    Partition,
    day_of,
    list_dates,
    partition_dir,
    stream_dir,
)
from actors.recording.writer import RecordWriter

__all__ = ["CHUNK_ROWS", "DumpError", "ImportResult", "import_dump", "import_dumps"]

CHUNK_ROWS = 65_536
MICROS_FROM = 10**14
_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<kind>trades|aggTrades|bookTicker)-"
    r"(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$"
)
_COLUMNS = {  # kind -> (accepted column counts, header's first field)
    "trades": ((6, 7), "id"),
    "aggTrades": ((7, 8), "agg_trade_id"),
    "bookTicker": ((7,), "update_id"),
}


class DumpError(BotCriptoFyError, ValueError):
    """A dump that cannot be imported; the message names the file (and line)."""


@attrs.frozen
class ImportResult:
    source: str
    kind: str  # "trade" or "ticker"
    exchange: str
    symbol: str
    rows: int
    days: tuple[str, ...]
    first_ts: float | None
    last_ts: float | None


def _seconds(text: str) -> float:
    value = int(text)
    if value <= 0:
        raise ValueError(f"time must be > 0, got {text!r}")
    return value / 1_000_000 if value >= MICROS_FROM else value / 1000


def _buyer_is_maker(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"isBuyerMaker must be true or false, got {text!r}")
    return lowered == "true"


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the CSV inside ``path`` (a zip of one CSV, or the CSV)."""
    if path.suffix == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise DumpError(f"{path}: not a zip file ({exc})") from None
        with archive:
            members = [m for m in archive.namelist() if m.endswith(".csv")]
            if len(members) != 1:
                raise DumpError(f"{path}: expected one CSV file inside, found {len(members)}")
            with archive.open(members[0]) as raw:
                member = io.TextIOWrapper(raw, encoding="ascii", newline="")
                yield from enumerate(csv.reader(member), start=1)
    else:
        with path.open(encoding="ascii", newline="") as text:
            yield from enumerate(csv.reader(text), start=1)


def _events(
    path: Path, kind: str, exchange: str, symbol: str
) -> Iterator[tuple[Ticker | Trade, int]]:
    counts, header_first = _COLUMNS[kind]
    for line, fields in _rows(path):
        if not fields:
            continue
        if line == 1 and fields[0].strip() == header_first:
            continue
        if len(fields) not in counts:
            expected = " or ".join(str(n) for n in counts)
            raise DumpError(
                f"{path}:{line}: expected {expected} columns for {kind}, got {len(fields)}"
            )
        try:
            if kind == "bookTicker":
                bid = price(fields[1], "best_bid_price")
                ask = price(fields[3], "best_ask_price")
                check_book(bid, ask, "bookTicker")
                received = _seconds(fields[6])
                event: Ticker | Trade = Ticker(
                    exchange,
                    symbol,
                    bid,
                    ask,
                    None,
                    size(fields[2], "best_bid_qty"),
                    size(fields[4], "best_ask_qty"),
                    _seconds(fields[5]),
                    received,
                    "ws",
                    int(fields[0]),
                )
            else:
                time_col, maker_col = (4, 5) if kind == "trades" else (5, 6)
                ts = _seconds(fields[time_col])
                raw_id = int(fields[0])
                event = Trade(
                    exchange,
                    symbol,
                    price(fields[1], "price"),
                    trade_size(fields[2], "qty"),
                    "sell" if _buyer_is_maker(fields[maker_col]) else "buy",
                    trade_id(raw_id, "id"),
                    ts,
                    ts,
                    raw_id,
                )
        except (ValueError, ArithmeticError) as exc:
            raise DumpError(f"{path}:{line}: {exc}") from None
        yield event, line


def parse_name(path: Path) -> tuple[str, str]:
    """(native symbol, dump kind) from a published file name, or ``DumpError``."""
    match = _NAME.match(path.name)
    if match is None:
        raise DumpError(
            f"{path}: not a Binance dump name like BTCUSDT-trades-2026-01-15.zip"
            " (trades, aggTrades or bookTicker, daily or monthly)"
        )
    return match["symbol"], match["kind"]


def import_dump(path: Path, root: Path, *, exchange: str = "binance") -> ImportResult:
    """Convert one dump file into the recording under ``root`` (see the module docstring)."""
    path = Path(path)
    native, kind = parse_name(path)
    if not path.is_file():
        raise DumpError(f"{path}: no such file")
    try:
        symbol = codec_for("binance", exchange=exchange).unified_symbol(native)
    except ValueError as exc:
        raise DumpError(f"{path}: {exc}") from None
    record_kind = "ticker" if kind == "bookTicker" else "trade"
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="_import-", dir=root))
    try:
        writer = RecordWriter(staging, auto_rotate=False)
        rows = 0
        first: float | None = None
        last: float | None = None
        chunk: dict[Partition, list[Event]] = {}
        pending = 0
        for event, _line in _events(path, kind, exchange, symbol):
            ts = event.received_ts
            first = ts if first is None else first
            last = ts
            key = Partition(record_kind, exchange, symbol, day_of(ts))
            chunk.setdefault(key, []).append(event)
            pending += 1
            if pending >= CHUNK_ROWS:
                writer.write(chunk)
                rows += pending
                chunk, pending = {}, 0
        writer.write(chunk)
        rows += pending
        writer.close()
        days = tuple(
            date for date, _ in list_dates(stream_dir(staging, record_kind, exchange, symbol))
        )
        _move_in(staging, root, [Partition(record_kind, exchange, symbol, d) for d in days], path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ImportResult(str(path), record_kind, exchange, symbol, rows, days, first, last)


def _move_in(staging: Path, root: Path, partitions: Sequence[Partition], source: Path) -> None:
    for partition in partitions:
        target = partition_dir(root, partition)
        if target.is_dir() and any(target.iterdir()):
            raise DumpError(
                f"{source}: {target} already holds data (imported before?); remove that"
                " directory to import it again"
            )
    for partition in partitions:
        target = partition_dir(root, partition)
        target.mkdir(parents=True, exist_ok=True)
        for file in partition_dir(staging, partition).iterdir():
            file.rename(target / file.name)


def import_dumps(
    paths: Sequence[Path], root: Path, *, exchange: str = "binance"
) -> list[ImportResult]:
    return [import_dump(Path(path), root, exchange=exchange) for path in paths]
