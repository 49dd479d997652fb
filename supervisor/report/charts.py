"""The report's charts as one PNG: per quote currency its total equity, per bot its equity and
its price with entries (buys) and exits (sells) marked.

Decisions:

* **matplotlib's object API, no pyplot.** A ``Figure`` is drawn by its own Agg canvas, so no
  global backend is chosen, no figure is registered anywhere, and a daemon or a test that
  also uses matplotlib is left as it was.
* **One image for both files**: the HTML embeds the PNG it writes beside it (base64), so the
  page is readable offline and shows exactly the picture in ``report.png``.
* **At most ``MAX_CHARTED_BOTS`` bots are drawn** (the first, in the table's order): a
  parameter grid's journal can hold hundreds; the table still has them all, and the image
  says how many were left out.
* **A bot with neither fills nor prices gets no chart** (there is nothing to draw).
* **Times are UTC**, from epoch seconds as ``datetime64[ms]``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from decimal import Decimal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from actors.journal.store import FillRecord
from supervisor.report.figures import Curve, Group, PriceSeries

__all__ = ["MAX_CHARTED_BOTS", "render_png"]

MAX_CHARTED_BOTS = 12
ROW_HEIGHT_IN = 2.6
WIDTH_IN = 12.0
DPI = 100
BUY, SELL, EQUITY, PRICE = "#1a9850", "#d73027", "#2c7bb6", "#555555"


def render_png(
    groups: Sequence[Group],
    fills: Mapping[str, Sequence[FillRecord]],
    prices: Mapping[str, PriceSeries | None],
    title: str,
) -> bytes:
    """The PNG's bytes; ``prices`` per bot id (None: the price line is drawn from fills)."""
    totals = [g for g in groups if g.total_curve is not None and g.total_curve.points]
    bots = [(s, curve) for g in groups for s, _, curve in g.bots if curve.points]
    shown = bots[:MAX_CHARTED_BOTS]
    rows = max(1, len(totals) + len(shown))
    figure = Figure(figsize=(WIDTH_IN, 0.6 + ROW_HEIGHT_IN * rows), dpi=DPI, layout="constrained")
    grid = figure.add_gridspec(rows, 2)
    row = 0
    for group in totals:
        assert group.total_curve is not None
        axes = figure.add_subplot(grid[row, :])
        _equity(axes, group.total_curve, f"total equity ({group.quote})")
        row += 1
    for summary, curve in shown:
        quote = f" ({summary.quote})" if summary.quote else ""
        _equity(figure.add_subplot(grid[row, 0]), curve, f"{summary.bot_id}: equity{quote}")
        _price(
            figure.add_subplot(grid[row, 1]),
            fills.get(summary.bot_id, ()),
            prices.get(summary.bot_id),
            curve.held,
            f"{summary.bot_id}: {summary.symbol or 'no symbol'}",
        )
        row += 1
    if row == 0:
        figure.text(0.5, 0.5, "no fills and no prices: nothing to draw", ha="center")
    heading = title or "BotCriptoFy report"
    if len(bots) > len(shown):
        heading += f" (charts of the first {len(shown)} of {len(bots)} bots)"
    figure.suptitle(heading)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _times(ts: Sequence[float]) -> np.ndarray:
    return (np.asarray(ts, dtype=np.float64) * 1000).astype("datetime64[ms]")


def _dates(axes: Axes) -> None:
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib.dates is untyped
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.grid(True, alpha=0.3)
    axes.ticklabel_format(axis="y", useOffset=False, style="plain")


def _equity(axes: Axes, curve: Curve, title: str) -> None:
    axes.set_title(title, loc="left", fontsize=10)
    times = _times([ts for ts, _ in curve.points])
    values = [float(equity) for _, equity in curve.points]
    axes.plot(times, values, drawstyle="steps-post", color=EQUITY, linewidth=1.2)
    if not curve.marked:
        axes.plot(times, values, "o", color=EQUITY, markersize=3)  # known at fills only
    _dates(axes)


def _price(
    axes: Axes,
    fills: Sequence[FillRecord],
    prices: PriceSeries | None,
    held: Sequence[tuple[float, float]],
    title: str,
) -> None:
    suffix = "" if prices is not None else " (fill prices)"
    axes.set_title(title + suffix, loc="left", fontsize=10)
    line: Sequence[tuple[float, Decimal]] = (
        prices if prices is not None else [(f.ts, f.price) for f in fills]
    )
    if line:
        axes.plot(
            _times([ts for ts, _ in line]),
            [float(p) for _, p in line],
            color=PRICE,
            linewidth=0.9,
            drawstyle="steps-post",
        )
    for start, end in held:  # in a position: shaded
        begin, until = _times([start, end])
        axes.axvspan(begin, until, color=BUY, alpha=0.08, linewidth=0)
    for side, marker, color in (("buy", "^", BUY), ("sell", "v", SELL)):
        marks = [f for f in fills if f.side == side]
        if marks:
            axes.scatter(
                _times([f.ts for f in marks]),
                [float(f.price) for f in marks],
                marker=marker,
                color=color,
                s=40,
                zorder=3,
                label="entry (buy)" if side == "buy" else "exit (sell)",
            )
    if fills:
        axes.legend(loc="upper left", fontsize=8)  # "best" scans every point: slow
    _dates(axes)
