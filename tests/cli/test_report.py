"""``botcriptofy report``: per bot and in total, from a real journal (SQLite written by the
journal's own store), through the installed command; the numbers and the table also directly,
for cases a subprocess adds nothing to."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from actors.journal.store import FillRecord, JournalStore, WriterLock
from supervisor import cli
from supervisor.report import JournalContents, format_report, read_journal, summarize
from tests.cli.helpers import botcriptofy, run_py
from tests.cli.journals import T0, two_bots, version_2_journal, write_bot

TWO_BOTS = """\
journal j.sqlite3  schema 4  bots 3  fills 5
bot      symbol    fills  realized PnL       fees  position    win rate  refusals
btc-sma  BTC/USDT      3    +9.79 USDT  0.21 USDT   0.5 BTC  100% (1/1)         9
eth-rsi  ETH/USDT      2   -10.00 USDT  0.00 USDT     0 ETH    0% (0/1)         0
idle     -             0         +0.00       0.00         0           -         1
total                  5    -0.21 USDT  0.21 USDT             50% (1/2)        10
realized PnL is net of fees; open positions are at cost (no prices in a journal)

bot      trades    win rate  max drawdown  max DD %  exposure  Sharpe  Sortino  returns every
btc-sma       1  100% (1/1)     0.10 USDT    0.001%    50.00%     n/a      n/a            n/a
eth-rsi       1    0% (0/1)    10.00 USDT     0.10%   100.00%     n/a      n/a            n/a
total         2   50% (1/2)     0.21 USDT    0.001%    50.00%     n/a      n/a            n/a
idle          0           -          0.00     0.00%       n/a     n/a      n/a            n/a
equity at fill prices only (no prices: known at fills, flat between them)
Sharpe, Sortino: risk-free 0, annualised over 365 days; n/a: not computable

refusals by reason
bot      reason       count
btc-sma  rate_limit       7
btc-sma  stale_price      2
idle     no_price         1
total    rate_limit       7
total    stale_price      2
total    no_price         1
"""


def test_the_report_per_bot_and_in_total(tmp_path: Path) -> None:
    two_bots(tmp_path / "j.sqlite3")
    result = botcriptofy("report", "--journal", "j.sqlite3", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == TWO_BOTS
    result = run_py("report", "--journal", "j.sqlite3", cwd=tmp_path)  # a checkout, no install
    assert (result.returncode, result.stdout, result.stderr) == (0, TWO_BOTS, "")


def test_out_writes_the_html_and_the_png_and_prints_the_same_table(tmp_path: Path) -> None:
    two_bots(tmp_path / "j.sqlite3")
    result = botcriptofy("report", "--journal", "j.sqlite3", "--out", "rep", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == TWO_BOTS + "\nwrote rep/report.html and rep/report.png\n"
    page = (tmp_path / "rep/report.html").read_text("utf-8")
    assert "equity is known at fills only" in page  # a journal alone has no prices
    assert (tmp_path / "rep/report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_out_that_cannot_be_written_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_bots(tmp_path / "j.sqlite3")
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "rep"
    assert cli.main(["report", "--journal", str(tmp_path / "j.sqlite3"), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"--out {out}: cannot write the report: ")
    assert captured.err.count("\n") == 1


def test_the_report_reads_beside_the_running_writer_and_writes_nothing(tmp_path: Path) -> None:
    path = version_2_journal(tmp_path / "v2.sqlite3")
    lock = WriterLock(path)  # as a daemon holds it
    lock.acquire()
    try:
        result = botcriptofy("report", "--journal", path)
    finally:
        lock.release()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"journal {path}  schema 2  bots 1  fills 2"
    # realized PnL from a replay of the book: the fills of schema 2 do not carry it
    assert lines[2].split() == "old BTC/USD 2 -10.00 USD 0.00 USD 0 BTC 0% (0/1) -".split()
    assert lines[-1] == "refusals: not journaled (a journal from before schema 3)"
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2  # not migrated
    db.close()


def test_a_missing_or_foreign_file_is_exit_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database, at all\n" * 100)
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    expected = {
        "none.sqlite3": "none.sqlite3: no such file\n",
        "notes.txt": "notes.txt: not a BotCriptoFy journal (file is not a database)\n",
        "other.db": "other.db: not a BotCriptoFy journal (no journal schema)\n",
    }
    for name, message in expected.items():
        result = botcriptofy("report", "--journal", name, cwd=tmp_path)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


def test_money_is_never_summed_across_quote_currencies(tmp_path: Path) -> None:
    store = JournalStore(tmp_path / "j.sqlite3", fsync=False)
    store.open()
    try:
        write_bot(store, "usd", "BTC/USD", [("buy", "1", "100", "1"), ("sell", "1", "103", "1")])
        write_bot(store, "eur", "BTC/EUR", [("buy", "1", "90", "0"), ("sell", "1", "89", "0")])
        write_bot(
            store, "btc", "ETH/BTC", [("buy", "2", "0.05", "0"), ("sell", "2", "0.0501", "0")]
        )
    finally:
        store.close()
    journal = read_journal(tmp_path / "j.sqlite3")
    lines = format_report(journal, summarize(journal)).splitlines()
    assert [line.split()[:4] for line in lines[2:8]] == [
        ["btc", "ETH/BTC", "2", "+0.0002"],  # small amounts keep their digits
        ["eur", "BTC/EUR", "2", "-1.00"],
        ["usd", "BTC/USD", "2", "+1.00"],
        ["total", "6", "-", "-"],
        ["in", "BTC", "2", "+0.0002"],
        ["in", "EUR", "2", "-1.00"],
    ]
    assert lines[8].split()[:4] == ["in", "USD", "2", "+1.00"]


def test_the_stored_pnl_is_what_the_report_sums() -> None:
    """A fill's ``realized_pnl`` column is the figure; the replay only stands in for fills
    journaled before the column existed."""
    buy = FillRecord("b-1", "b", "buy", Decimal(100), Decimal(1), Decimal(0), None, T0)
    sell = FillRecord("b-2", "b", "sell", Decimal(110), Decimal(1), Decimal(0), None, T0)

    def realized(*fills: FillRecord) -> Decimal:
        journal = JournalContents(
            path="j",
            schema_version=3,
            initial_quote={"b": Decimal(1000)},
            symbols={"b": "BTC/USDT"},
            fills={"b": fills},
            refusals={},
        )
        return summarize(journal)[0].realized

    assert realized(buy, sell) == 10
    assert realized(buy, attrs.evolve(sell, realized_pnl=Decimal(7))) == 7
