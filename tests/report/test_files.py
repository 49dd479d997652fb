"""``write_report``: the HTML page (offline: no reference to anything outside it) and the PNG,
written from a real journal and a price series."""

from __future__ import annotations

import base64
import re
from decimal import Decimal
from html import escape
from pathlib import Path

import pytest
from PIL import Image

from actors.journal.store import JournalStore
from supervisor.report import ReportFiles, charts, write_report
from supervisor.report.charts import DPI, ROW_HEIGHT_IN, WIDTH_IN
from supervisor.report.figures import METHODS
from tests.cli.journals import T0
from tests.report.test_figures import PRICES, journal


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportFiles]:
    """One report of the hand-computed example, for the tests that only read it."""
    tmp_path = tmp_path_factory.mktemp("report")
    path = journal(tmp_path / "j.sqlite3")
    return tmp_path, write_report(path, tmp_path / "out", prices=PRICES, title="sma & dip")


def test_the_html_is_offline_and_embeds_the_png_it_writes_beside_it(
    written: tuple[Path, ReportFiles],
) -> None:
    tmp_path, files = written
    assert (files.html, files.png) == (tmp_path / "out/report.html", tmp_path / "out/report.png")
    page = files.html.read_text("utf-8")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE)
    assert not re.search(r"<(script|link|iframe)\b", page)  # nothing to load, nothing to run
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert images == ["data:image/png;base64," + base64.b64encode(files.png.read_bytes()).decode()]
    assert "<title>sma &amp; dip</title>" in page
    # the figures of the hand-computed example, in the table
    sma_row = re.search(r"<tr><td class=\"l\">sma</td>.*?</tr>", page)
    assert sma_row is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", sma_row.group())
    assert cells[3:13] == [
        "1",  # trades
        "100% (1/1)",
        "+8.00 USDT",
        "2.00 USDT",
        "6.00 USDT",  # max drawdown
        "0.60%",
        "70.00%",  # exposure
        "130.10",  # Sharpe
        "300.94",  # Sortino
        "15 s",
    ]
    assert "marked to market on the price samples" in page
    for name, how in METHODS:  # the footer says how every figure is computed
        assert f"<dt>{escape(name)}</dt><dd>{escape(how)}</dd>" in page
    assert escape(files.table) in page  # the terminal table too


def test_the_png_is_an_image_of_every_chart(written: tuple[Path, ReportFiles]) -> None:
    _, files = written
    with Image.open(files.png) as image:
        image.verify()  # a complete, uncorrupted PNG
    with Image.open(files.png) as image:
        # rows: the USDT total, then each bot (equity | price with entries and exits)
        assert image.format == "PNG"
        assert image.size == (WIDTH_IN * DPI, round((0.6 + 3 * ROW_HEIGHT_IN) * DPI))
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colors is not None
    assert len(colors) > 20  # drawn, not blank


def test_a_journal_with_many_bots_charts_the_first_and_one_without_fills_draws_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "MAX_CHARTED_BOTS", 1)
    files = write_report(journal(tmp_path / "j.sqlite3"), tmp_path / "a")
    with Image.open(files.png) as image:  # the USDT total and the first bot
        assert image.size == (WIDTH_IN * DPI, round((0.6 + 2 * ROW_HEIGHT_IN) * DPI))
    store = JournalStore(tmp_path / "empty.sqlite3", fsync=False)
    store.open()
    store.register_bot("idle", Decimal(100), T0)
    store.close()
    files = write_report(tmp_path / "empty.sqlite3", tmp_path / "b")
    with Image.open(files.png) as image:
        assert image.size == (WIDTH_IN * DPI, round((0.6 + ROW_HEIGHT_IN) * DPI))
    assert "idle" in files.html.read_text("utf-8")
