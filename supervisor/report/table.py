"""The report as text: ``format_report`` (the journal's counts and sums, per bot and in total)
and ``format_figures`` (drawdown, exposure, Sharpe, Sortino); pure, so the table is tested
without a terminal or a database.

Decisions:

* **Money is never summed across quote currencies.** Amounts carry their currency; with bots
  in several quotes the total line shows the counts and one line per currency follows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal

from actors.bots.money import ZERO
from actors.journal.store import SCHEMA_VERSION
from supervisor.report.figures import Figures, Group
from supervisor.report.journal import BotSummary, JournalContents

__all__ = ["format_figures", "format_report"]


# --- the table ----------------------------------------------------------------------------------

_COLUMNS = ("bot", "symbol", "fills", "realized PnL", "fees", "position", "win rate", "refusals")
_LEFT = {"bot", "symbol"}


def format_report(
    journal: JournalContents,
    summaries: Sequence[BotSummary],
    groups: Sequence[Group] | None = None,
) -> str:
    """The counts and sums, then (given ``groups``) the figures, then the refusals."""
    fill_count = sum(s.fills for s in summaries)
    lines = [
        f"journal {journal.path}  schema {journal.schema_version}  bots {len(summaries)}"
        f"  fills {fill_count}"
    ]
    if journal.schema_version > SCHEMA_VERSION:
        lines.append(
            f"(written by a newer version: schema {journal.schema_version}, this program knows"
            f" {SCHEMA_VERSION}; showing what it knows)"
        )
    rows = [_bot_row(s) for s in summaries]
    rows += _total_rows(summaries)
    lines += _table(_COLUMNS, rows)
    if groups is not None and any(f.marked for g in groups for _, f, _ in g.bots):
        lines.append("realized PnL is net of fees; positions in base currency (marked below)")
    else:
        lines.append(
            "realized PnL is net of fees; open positions are at cost (no prices in a journal)"
        )
    if groups is not None:
        lines += ["", *format_figures(groups).splitlines()]
    lines += _refusal_lines(summaries)
    return "\n".join(lines) + "\n"


def _bot_row(s: BotSummary) -> list[str]:
    return [
        s.bot_id,
        s.symbol or "-",
        str(s.fills),
        _money(s.realized, s.quote, signed=True),
        _money(s.fees, s.quote),
        f"{s.position.normalize():f}" + (f" {s.base}" if s.base else ""),  # as held: exact
        _win_rate(s.wins, s.closes),
        "-" if s.refusals is None else str(sum(s.refusals.values())),
    ]


def _total_rows(summaries: Sequence[BotSummary]) -> list[list[str]]:
    if len(summaries) < 2:
        return []
    quotes = sorted({s.quote for s in summaries if s.quote is not None and s.fills})
    single = quotes[0] if len(quotes) == 1 else None
    rows = [_group_row("total", summaries, single, money=len(quotes) <= 1)]
    if len(quotes) > 1:
        for quote in quotes:
            group = [s for s in summaries if s.quote == quote]
            rows.append(_group_row(f"  in {quote}", group, quote, money=True))
    return rows


def _group_row(
    label: str, group: Sequence[BotSummary], quote: str | None, *, money: bool
) -> list[str]:
    known = [s.refusals for s in group if s.refusals is not None]
    return [
        label,
        "",
        str(sum(s.fills for s in group)),
        _money(sum((s.realized for s in group), ZERO), quote, signed=True) if money else "-",
        _money(sum((s.fees for s in group), ZERO), quote) if money else "-",
        "",
        _win_rate(sum(s.wins for s in group), sum(s.closes for s in group)),
        str(sum(sum(r.values()) for r in known)) if known else "-",
    ]


def _refusal_lines(summaries: Sequence[BotSummary]) -> list[str]:
    if all(s.refusals is None for s in summaries):
        return ["refusals: not journaled (a journal from before schema 3)"]
    rows = [
        [s.bot_id, reason, str(count)]
        for s in summaries
        for reason, count in sorted((s.refusals or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if not rows:
        return ["refusals: none"]
    if len({row[0] for row in rows}) > 1:
        totals: Counter[str] = Counter()
        for s in summaries:
            totals.update(s.refusals or {})
        rows += [["total", reason, str(count)] for reason, count in totals.most_common()]
    return ["", "refusals by reason", *_table(("bot", "reason", "count"), rows)]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(header), *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    left = {i for i, name in enumerate(header) if name in _LEFT or name == "reason"}
    return [
        "  ".join(
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def _amount(value: Decimal) -> str:
    """Two decimals as money usually has; below 1, four significant digits (at most 8
    decimals), so a small amount (a BTC-quoted PnL) never reads as zero."""
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    places = min(8, 3 - value.adjusted())
    text = f"{value:.{places}f}".rstrip("0")
    return text if len(text.partition(".")[2]) >= 2 else f"{value:.2f}"


def _money(value: Decimal, quote: str | None, *, signed: bool = False) -> str:
    text = _amount(value)
    if signed and value >= 0:
        text = "+" + text
    return f"{text} {quote}" if quote else text


def _win_rate(wins: int, closes: int) -> str:
    return f"{wins / closes:.0%} ({wins}/{closes})" if closes else "-"


# --- the figures --------------------------------------------------------------------------------

_FIGURE_COLUMNS = (
    "bot",
    "trades",
    "win rate",
    "max drawdown",
    "max DD %",
    "exposure",
    "Sharpe",
    "Sortino",
    "returns every",
)


def format_figures(groups: Sequence[Group]) -> str:
    """Drawdown, exposure, Sharpe and Sortino per bot and per quote currency's total."""
    rows = []
    for group in groups:
        rows += [_figure_row(f) for _, f, _ in group.bots]
        if group.total is not None:
            rows.append(_figure_row(group.total))
    figures = [f for g in groups for _, f, _ in g.bots]
    if all(f.marked for f in figures):
        how = "equity marked to market on the price samples"
    elif not any(f.marked for f in figures):
        how = "equity at fill prices only (no prices: known at fills, flat between them)"
    else:
        how = "equity marked to market where prices were given, else at fill prices only"
    lines = [*_table(_FIGURE_COLUMNS, rows), how]
    lines.append("Sharpe, Sortino: risk-free 0, annualised over 365 days; n/a: not computable")
    return "\n".join(lines) + "\n"


def _figure_row(f: Figures) -> list[str]:
    return [
        f.label,
        str(f.trades),
        _win_rate(f.wins, f.trades),
        _money(f.max_drawdown, f.quote),
        _percent(f.max_drawdown_pct),
        _percent(f.exposure),
        _ratio(f.sharpe),
        _ratio(f.sortino),
        _interval(f.interval_s),
    ]


def _percent(share: Decimal | float | None) -> str:
    """Two decimals; below 0.01 %, two significant digits, so a small share never reads 0."""
    if share is None:
        return "n/a"
    percent = float(share) * 100
    return f"{percent:.2g}%" if 0 < abs(percent) < 0.01 else f"{percent:.2f}%"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _interval(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g} {unit}"
    return f"{seconds:g} s"
