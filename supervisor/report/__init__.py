"""``botcriptofy report`` and the backtest's report: how each bot did, from its journal.

* ``journal``: ``read_journal`` (the only read: SQLite, read-only) and ``summarize`` (counts
  and sums per bot);
* ``figures``: equity curves, drawdown, exposure, Sharpe and Sortino (pure; its docstring says
  exactly how each is computed);
* ``table``: the terminal text; ``page``: the HTML page; ``charts``: the PNG (matplotlib,
  imported only to write files);
* ``files``: ``write_report``, which writes ``report.html`` and ``report.png``.

Decisions:

* **Pure computation apart from rendering and I/O**, so the figures are tested against a
  hand-computed example without drawing anything, and the table without a database.
* **Money is never summed across quote currencies.** Amounts carry their currency; totals are
  per quote currency.
* **Marked to market only when prices are given** (a backtest, or a recording of the same
  period): a journal holds fills, not the market, so alone it gives equity at fills only, and
  the report says so.
"""

from supervisor.report.files import Report, ReportFiles, build_report, write_report
from supervisor.report.journal import BotSummary, JournalContents, read_journal, summarize
from supervisor.report.table import format_figures, format_report

__all__ = [
    "BotSummary",
    "JournalContents",
    "Report",
    "ReportFiles",
    "build_report",
    "format_figures",
    "format_report",
    "read_journal",
    "summarize",
    "write_report",
]
