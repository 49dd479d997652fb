"""The report as one HTML page that needs nothing else: styles inline, the chart embedded as a
base64 PNG, no script, no link to anything; pure (bytes in, text out).

Decisions:

* **No external reference at all** (a test checks there is no ``http://`` or ``https://`` in
  the page): the file can be mailed, archived or opened on a machine without network and
  reads the same.
* **The footer says how every figure is computed**, from ``figures.METHODS``, the same text
  the module docstring gives, so a reader never has to guess what "Sharpe" meant here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from supervisor.report.figures import METHODS, Figures, Group
from supervisor.report.journal import BotSummary, JournalContents
from supervisor.report.table import (
    _interval,
    _money,
    _percent,
    _ratio,
    _win_rate,
)

__all__ = ["render_html"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1240px;
       color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; text-align: right;
         white-space: nowrap; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
img { max-width: 100%; }
footer { margin-top: 2em; color: #444; font-size: 13px; }
dt { font-weight: 600; margin-top: 0.4em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
"""

_HEADER = (
    "bot",
    "symbol",
    "fills",
    "trades",
    "win rate",
    "realized PnL",
    "fees",
    "max drawdown",
    "max DD %",
    "exposure",
    "Sharpe",
    "Sortino",
    "returns every",
    "end equity",
    "position",
)
_LEFT = {"bot", "symbol"}


def render_html(
    journal: JournalContents,
    groups: Sequence[Group],
    png: bytes,
    *,
    title: str,
    text: str,
) -> str:
    """The page: the figures table, the charts, the terminal table, and how it was computed."""
    heading = escape(title or f"BotCriptoFy report: {journal.path}")
    figures = [f for g in groups for _, f, _ in g.bots]
    if figures and all(f.marked for f in figures):
        marking = "Equity is marked to market on the price samples given with the journal."
    elif any(f.marked for f in figures):
        marking = (
            "Equity is marked to market for the bots whose symbol had price samples; the"
            " others' equity is known at their fills only."
        )
    else:
        marking = (
            "No prices: a journal alone records fills, not the market, so equity is known at"
            " fills only (marked at the fill price) and held flat between them, and the price"
            " chart is drawn from the fill prices."
        )
    rows = []
    for group in groups:
        rows += [_row(f, s) for s, f, _ in group.bots]
        if group.total is not None:
            rows.append(_row(group.total, None))
    image = base64.b64encode(png).decode("ascii")
    methods = "\n".join(f"<dt>{escape(name)}</dt><dd>{escape(how)}</dd>" for name, how in METHODS)
    header = "".join(f'<th class="l">{h}</th>' if h in _LEFT else f"<th>{h}</th>" for h in _HEADER)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{heading}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{heading}</h1>
<p>Journal <code>{escape(journal.path)}</code> (schema {journal.schema_version}).
{escape(marking)} Amounts are in each bot's quote currency and never added across
currencies.</p>
<table>
<thead><tr>{header}</tr></thead>
<tbody>
{"".join(rows)}
</tbody>
</table>
<h2>Charts</h2>
<p>Equity per bot (and per quote currency in total); the price, shaded while in a position,
with entries (buys, green &#9650;) and exits (sells, red &#9660;).</p>
<img alt="equity curves and prices with entries and exits" src="data:image/png;base64,{image}">
<h2>Terminal table</h2>
<pre>{escape(text)}</pre>
<footer>
<h2>How each figure is computed</h2>
<dl>
{methods}
</dl>
</footer>
</body>
</html>
"""


def _row(f: Figures, s: BotSummary | None) -> str:
    cells = [
        f.label,
        (s.symbol or "-") if s else "",
        str(s.fills) if s else "",
        str(f.trades),
        _win_rate(f.wins, f.trades),
        _money(f.realized, f.quote, signed=True),
        _money(f.fees, f.quote),
        _money(f.max_drawdown, f.quote),
        _percent(f.max_drawdown_pct),
        _percent(f.exposure),
        _ratio(f.sharpe),
        _ratio(f.sortino),
        _interval(f.interval_s),
        _money(f.end_equity, f.quote),
        (f"{s.position.normalize():f}" + (f" {s.base}" if s.base else "")) if s else "",
    ]
    tds = "".join(
        f'<td class="l">{escape(c)}</td>' if h in _LEFT else f"<td>{escape(c)}</td>"
        for h, c in zip(_HEADER, cells, strict=True)
    )
    return f'<tr class="total">{tds}</tr>\n' if s is None else f"<tr>{tds}</tr>\n"
