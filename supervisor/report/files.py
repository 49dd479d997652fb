"""``write_report``: a journal (and, from a backtest or a recording, the prices) in,
``report.html`` and ``report.png`` out, and the terminal table; the I/O around the pure parts.

Decisions:

* **matplotlib is imported only here, and only when files are written**, so ``botcriptofy
  report`` without ``--out`` (and the daemon, which never reports) stays quick.
* **Files are replaced whole**: each is written to a temporary name in the same directory and
  renamed over the old one, so a reader (a browser reloading the page) never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from supervisor.report.figures import Group, PriceSeries, compute, prices_by_bot
from supervisor.report.journal import BotSummary, JournalContents, read_journal, summarize
from supervisor.report.page import render_html
from supervisor.report.table import format_report

__all__ = ["Report", "ReportFiles", "build_report", "write_report"]


@attrs.frozen
class Report:
    """Everything computed, nothing written."""

    journal: JournalContents
    summaries: tuple[BotSummary, ...]
    groups: tuple[Group, ...]
    prices: Mapping[str, PriceSeries | None]  # per bot id
    table: str


@attrs.frozen
class ReportFiles:
    html: Path
    png: Path
    table: str  # what the terminal shows
    report: Report  # the figures behind them (no need to compute them again)


def build_report(
    journal: Path | str,
    *,
    prices: Mapping[tuple[str, str], PriceSeries] | None = None,
    exchanges: Mapping[str, str] | None = None,
) -> Report:
    """Read the journal and compute every figure; ``JournalError`` for a bad journal,
    ``ValueError`` when a bot's prices are ambiguous (see ``prices_by_bot``)."""
    contents = read_journal(journal)
    summaries = summarize(contents)
    bot_prices = prices_by_bot(contents, prices, exchanges)
    groups = compute(contents, summaries, bot_prices)
    table = format_report(contents, summaries, groups)
    return Report(contents, tuple(summaries), tuple(groups), bot_prices, table)


def write_report(
    journal: Path,
    out_dir: Path,
    *,
    prices: Mapping[tuple[str, str], PriceSeries] | None = None,
    title: str = "",
    exchanges: Mapping[str, str] | None = None,
) -> ReportFiles:
    """Write ``report.html`` and ``report.png`` into ``out_dir`` (created if missing).

    ``prices``: (exchange, symbol) -> chronological (epoch s, mid price) samples, to mark
    positions to market and draw the price; None: equity at fills only, price from fills.
    ``exchanges``: bot id -> exchange, needed only when a bot's symbol is priced on several.
    """
    from supervisor.report.charts import render_png

    report = build_report(journal, prices=prices, exchanges=exchanges)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)  # before drawing: a bad directory fails fast
    png = render_png(report.groups, report.journal.fills, report.prices, title)
    html = render_html(report.journal, report.groups, png, title=title, text=report.table)
    png_path = _replace(out / "report.png", png)
    html_path = _replace(out / "report.html", html.encode("utf-8"))
    return ReportFiles(html=html_path, png=png_path, table=report.table, report=report)


def _replace(path: Path, data: bytes) -> Path:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
