"""Binance public dumps (synthetic fixtures in the published format) into the record format."""

from __future__ import annotations

import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from actors.messages import Ticker, Trade
from actors.recording.binance_dump import DumpError, import_dump
from actors.recording.reader import read_events, recorded_streams
from supervisor.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
TRADES_MS = FIXTURES / "BTCUSDT-trades-2024-12-31.zip"
TRADES_US = FIXTURES / "BTCUSDT-trades-2025-01-01.zip"
AGG = FIXTURES / "ETHUSDT-aggTrades-2025-01-01.zip"
BOOK = FIXTURES / "BTCUSDT-bookTicker-2024-12-31.zip"


def first_row(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        (name,) = archive.namelist()
        lines = archive.read(name).decode().splitlines()
    return (lines[1] if lines[0].startswith("update_id") else lines[0]).split(",")


def test_spot_trades_in_milliseconds_and_microseconds(tmp_path: Path) -> None:
    ms = import_dump(TRADES_MS, tmp_path)
    us = import_dump(TRADES_US, tmp_path)
    assert (ms.rows, ms.days, us.rows, us.days) == (300, ("2024-12-31",), 300, ("2025-01-01",))
    trades = list(read_events(tmp_path))
    assert len(trades) == 600
    assert all(isinstance(t, Trade) for t in trades)
    first = trades[0]
    row = first_row(TRADES_MS)
    assert isinstance(first, Trade)
    assert (first.exchange, first.symbol) == ("binance", "BTC/USDT")
    assert first.price == Decimal(row[1])
    assert str(first.size) == row[2]
    assert first.trade_id == row[0]
    assert first.sequence == int(row[0])
    assert first.side == ("sell" if row[5] == "True" else "buy")  # buyer maker: taker sold
    assert first.received_ts == first.exchange_ts == int(row[4]) / 1000
    row = first_row(TRADES_US)
    second_day = next(t for t in trades if t.received_ts >= 1_735_689_600)
    assert second_day.received_ts == int(row[4]) / 1_000_000  # microseconds from 2025
    assert [t.received_ts for t in trades] == sorted(t.received_ts for t in trades)
    assert {t.side for t in trades} == {"buy", "sell"}


def test_agg_trades_and_book_tickers(tmp_path: Path) -> None:
    import_dump(AGG, tmp_path)
    import_dump(BOOK, tmp_path, exchange="sim")
    assert recorded_streams(tmp_path) == [
        ("binance", "trade", "ETH/USDT"),
        ("sim", "ticker", "BTC/USDT"),
    ]
    agg = list(read_events(tmp_path, exchange="binance"))
    row = first_row(AGG)
    assert isinstance(agg[0], Trade)
    assert (agg[0].trade_id, str(agg[0].price), agg[0].received_ts) == (
        row[0],
        row[1],
        int(row[5]) / 1_000_000,
    )
    book = list(read_events(tmp_path, kinds=("ticker",)))
    row = first_row(BOOK)
    tick = book[0]
    assert isinstance(tick, Ticker)
    assert len(book) == 300
    assert (str(tick.bid), str(tick.bid_size), str(tick.ask), str(tick.ask_size)) == (
        row[1],
        row[2],
        row[3],
        row[4],
    )
    assert (tick.sequence, tick.exchange_ts, tick.received_ts, tick.last) == (
        int(row[0]),
        int(row[5]) / 1000,
        int(row[6]) / 1000,
        None,
    )


def write_dump(path: Path, lines: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.name.replace(".zip", ".csv"), "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("7,abc,1.0,1.0,1735603200000,True,True", ":2: "),
        ("7,65000.0,1.0,1.0,1735603200000,maybe,True", ":2: isBuyerMaker must be true or false"),
        ("7,65000.0,1.0,1735603200000", ":2: expected 6 or 7 columns for trades, got 4"),
        ("7,65000.0,1.0,1.0,soon,True,True", ":2: "),
    ],
)
def test_a_bad_row_names_file_and_line_and_writes_nothing(
    tmp_path: Path, line: str, message: str
) -> None:
    good = "6,65000.0,1.0,65000.0,1735603200000,True,True"
    dump = write_dump(tmp_path / "BTCUSDT-trades-2024-12-31.zip", [good, line])
    with pytest.raises(DumpError) as error:
        import_dump(dump, tmp_path / "rec")
    assert str(error.value).startswith(f"{dump}{message}")
    assert list(read_events(tmp_path / "rec")) == []


def test_names_and_repeats_are_checked(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="not a Binance dump name"):
        import_dump(tmp_path / "trades.zip", tmp_path)
    import_dump(TRADES_MS, tmp_path)
    with pytest.raises(DumpError, match="already holds data"):
        import_dump(TRADES_MS, tmp_path)
    assert len(list(read_events(tmp_path))) == 300


def test_the_command_prints_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import-binance", str(TRADES_MS), str(BOOK), "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{TRADES_MS}: 300 trade rows of binance BTC/USDT (2024-12-31) -> {tmp_path}",
        f"{BOOK}: 300 ticker rows of binance BTC/USDT (2024-12-31) -> {tmp_path}",
    ]
    assert main(["import-binance", str(TRADES_MS), "--data", str(tmp_path)]) == 2
    assert "already holds data" in capsys.readouterr().err
