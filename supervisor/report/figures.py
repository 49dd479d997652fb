"""The report's figures: equity curves, drawdown, exposure, Sharpe and Sortino; pure.

How each figure is computed (the HTML report's footer says the same, from ``METHODS``):

* **Equity** of a bot is its quote balance plus its base balance marked at a price: the latest
  price sample at or before that time (a mid price, from recorded or replayed data), or, with
  no prices (a live or paper journal alone), the price of the bot's latest fill. Without
  prices the equity is therefore known at fills only and is held flat between them. A price
  sample and a fill at the same time: the price first. The curve runs from the first price
  sample or fill to the last; before its first fill a bot holds its initial quote. The total
  of a quote currency is the sum of its bots' equities (each held at its latest value).
* **Trades** are closing (sell) orders with at least one fill; the **win rate** is the share
  of them whose fills together realized more than zero. **Realized PnL** is net of fees;
  **fees** are all fees paid, in the quote currency.
* **Max drawdown** is the largest fall of the equity curve from its running peak (the peak
  starts at the initial quote), at every point of the curve: in the quote currency, and
  separately as a share of that peak (the two maxima can be at different times).
* **Exposure** is the share of the curve's time span during which the bot held an open
  position (for a total: at least one of its bots did); "n/a" when the span is zero.
* **Sharpe and Sortino** use the simple returns of the equity sampled on a fixed interval:
  the longest of 1 s, 5 s, 15 s, 1 min, 5 min, 15 min, 1 h, 4 h, 1 day that gives at least
  30 returns over the span (a shorter span: "n/a"). Risk-free rate 0; annualised with
  sqrt(periods per year), a year being 365 days (crypto trades every day). Sharpe = mean
  return / sample standard deviation (n - 1); Sortino = mean return / downside deviation,
  sqrt(sum(min(r, 0)^2) / n) over all n periods, target 0. "n/a" when the deviation is zero
  (flat equity; for Sortino: no losing period) or the equity reaches zero.

Decisions:

* **Decimal for money, float for ratios.** Equity, PnL, fees and drawdowns stay exact
  Decimals; only the ratios (returns, Sharpe, Sortino, exposure) are floats.
* **"n/a", never a made-up number**: a figure that cannot be computed is None here and "n/a"
  on screen.
* **The book is the bot's own** (``Book.apply_fill``), so the balances behind the curve are
  what the bot had.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import attrs

from actors.bots.money import ZERO
from actors.bots.positions import Book
from actors.journal.store import FillRecord
from supervisor.report.journal import BotSummary, JournalContents

__all__ = [
    "METHODS",
    "Curve",
    "Figures",
    "Group",
    "bot_curve",
    "compute",
    "drawdown",
    "exposure",
    "prices_by_bot",
    "ratios",
    "total_curve",
]

PriceSeries = Sequence[tuple[float, Decimal]]
INTERVALS_S: tuple[float, ...] = (1, 5, 15, 60, 300, 900, 3600, 14_400, 86_400)
MIN_RETURNS = 30
YEAR_S = 365 * 86_400

METHODS: tuple[tuple[str, str], ...] = (
    (
        "equity",
        "quote balance + base balance x price: the latest price sample at or before that time"
        " (mid price), or without prices the latest fill's price, so equity is known at fills"
        " only and held flat between them; a price and a fill at the same time: the price"
        " first. A total is the sum of its bots' equities, per quote currency.",
    ),
    ("trades", "closing (sell) orders with at least one fill"),
    ("realized PnL", "what the sales realized, net of all fees, in the quote currency"),
    ("fees", "all fees paid, in the quote currency"),
    ("win rate", "share of trades whose fills together realized more than zero"),
    (
        "max drawdown",
        "largest fall of the equity curve from its running peak (starting at the initial"
        " quote), over every point of the curve; in the quote currency, and separately as a"
        " share of that peak",
    ),
    (
        "exposure",
        "share of the curve's time span with an open position (total: any of its bots)",
    ),
    (
        "Sharpe",
        "simple returns of the equity sampled every interval (the longest of 1 s, 5 s, 15 s,"
        " 1 min, 5 min, 15 min, 1 h, 4 h, 1 d giving at least 30 returns; fewer: n/a);"
        " mean / sample standard deviation (n - 1) x sqrt(periods per year, 365 days);"
        " risk-free rate 0",
    ),
    (
        "Sortino",
        "the same returns; mean / downside deviation sqrt(sum(min(r, 0)^2) / n) over all n"
        " periods (target 0) x sqrt(periods per year)",
    ),
    (
        "n/a",
        "a figure that cannot be computed: too few returns, a zero deviation (for Sortino: no"
        " losing period), equity at zero, or a zero time span",
    ),
)


@attrs.frozen
class Curve:
    """A step function: the equity from each point's time until the next point's."""

    initial: Decimal
    points: tuple[tuple[float, Decimal], ...]  # (epoch s, equity), strictly increasing times
    held: tuple[tuple[float, float], ...]  # [start, end) intervals with an open position
    marked: bool  # True: marked to market on price samples; False: at fill prices only

    @property
    def start(self) -> float | None:
        return self.points[0][0] if self.points else None

    @property
    def end(self) -> float | None:
        return self.points[-1][0] if self.points else None

    def at(self, ts: float) -> Decimal:
        """The equity at ``ts`` (the initial quote before the first point)."""
        i = bisect.bisect_right(self.points, ts, key=lambda p: p[0])
        return self.initial if i == 0 else self.points[i - 1][1]


@attrs.frozen
class Figures:
    label: str  # a bot id, or "total" / "total USDT"
    quote: str | None
    trades: int
    wins: int
    realized: Decimal
    fees: Decimal
    start_equity: Decimal
    end_equity: Decimal
    max_drawdown: Decimal
    max_drawdown_pct: Decimal | None  # a share (0.05 is 5 %); None: the peak was never > 0
    exposure: float | None  # a share; None: zero time span
    interval_s: float | None  # of the returns; None: too short a span
    sharpe: float | None
    sortino: float | None
    marked: bool


@attrs.frozen
class Group:
    """The bots of one quote currency and their total (None: a single bot)."""

    quote: str | None
    total: Figures | None
    total_curve: Curve | None
    bots: tuple[tuple[BotSummary, Figures, Curve], ...]


# --- curves -------------------------------------------------------------------------------------


def bot_curve(
    initial: Decimal, fills: Sequence[FillRecord], prices: PriceSeries | None = None
) -> Curve:
    """The bot's equity after each event (fill or price sample), one point per distinct time."""
    book = Book(quote=initial)
    events: list[tuple[float, int, FillRecord | Decimal]] = [
        (ts, 0, price) for ts, price in prices or ()
    ]
    events += [(fill.ts, 1, fill) for fill in fills]  # a fill after a price at the same time
    events.sort(key=lambda e: (e[0], e[1]))
    points: list[tuple[float, Decimal]] = []
    held: list[tuple[float, float]] = []
    opened: float | None = None
    mark: Decimal | None = None
    priced = False  # a price sample has been seen: fills no longer set the mark
    for ts, _, event in events:
        if isinstance(event, Decimal):
            mark, priced = event, True
        else:
            book.apply_fill(event)
            if not priced:
                mark = event.price
            if opened is None and book.size > 0:
                opened = ts
            elif opened is not None and book.size == 0:
                held.append((opened, ts))
                opened = None
        equity = book.quote + (book.base * mark if mark is not None else ZERO)
        if points and points[-1][0] == ts:
            points[-1] = (ts, equity)
        else:
            points.append((ts, equity))
    if opened is not None and points:
        held.append((opened, points[-1][0]))
    return Curve(initial, tuple(points), tuple(held), marked=prices is not None)


def total_curve(curves: Sequence[Curve]) -> Curve:
    """The sum of the curves at every time any of them moves."""
    initial = sum((curve.initial for curve in curves), ZERO)
    # one sweep over every point in time order, adding each move: n log n for n points, where
    # looking each curve up at every time would be n x curves
    moves = sorted(
        (ts, index, equity) for index, curve in enumerate(curves) for ts, equity in curve.points
    )
    current = [curve.initial for curve in curves]
    total = initial
    points: list[tuple[float, Decimal]] = []
    for ts, index, equity in moves:
        total += equity - current[index]
        current[index] = equity
        if points and points[-1][0] == ts:
            points[-1] = (ts, total)
        else:
            points.append((ts, total))
    held = _union(interval for curve in curves for interval in curve.held)
    return Curve(initial, tuple(points), held, marked=all(curve.marked for curve in curves))


def _union(intervals: Iterable[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


# --- figures ------------------------------------------------------------------------------------


def drawdown(curve: Curve) -> tuple[Decimal, Decimal | None]:
    """The largest fall from the running peak: as an amount, and as a share of that peak."""
    peak = curve.initial
    amount = ZERO
    share: Decimal | None = None
    for _, equity in curve.points:
        peak = max(peak, equity)
        amount = max(amount, peak - equity)
        if peak > 0:
            share = max(share or ZERO, (peak - equity) / peak)
    if share is None and curve.initial > 0:
        share = ZERO
    return amount, share


def exposure(curve: Curve) -> float | None:
    if curve.start is None or curve.end is None or curve.end <= curve.start:
        return None
    return sum(end - start for start, end in curve.held) / (curve.end - curve.start)


def ratios(curve: Curve) -> tuple[float | None, float | None, float | None]:
    """``(interval_s, sharpe, sortino)``; see the module docstring."""
    if curve.start is None or curve.end is None:
        return None, None, None
    span = curve.end - curve.start
    interval = next((i for i in reversed(INTERVALS_S) if span // i >= MIN_RETURNS), None)
    if interval is None:
        return None, None, None
    n = int(span // interval)
    equity = [curve.at(curve.start + k * interval) for k in range(n + 1)]
    if any(e <= 0 for e in equity[:-1]):
        return interval, None, None
    returns = [float(equity[k] / equity[k - 1] - 1) for k in range(1, n + 1)]
    mean = math.fsum(returns) / n
    deviation = math.sqrt(math.fsum((r - mean) ** 2 for r in returns) / (n - 1))
    downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in returns) / n)
    annual = math.sqrt(YEAR_S / interval)
    sharpe = mean / deviation * annual if deviation > 0 else None
    sortino = mean / downside * annual if downside > 0 else None
    return interval, sharpe, sortino


def figures(
    label: str,
    quote: str | None,
    curve: Curve,
    *,
    trades: int,
    wins: int,
    realized: Decimal,
    fees: Decimal,
) -> Figures:
    amount, share = drawdown(curve)
    interval, sharpe, sortino = ratios(curve)
    return Figures(
        label=label,
        quote=quote,
        trades=trades,
        wins=wins,
        realized=realized,
        fees=fees,
        start_equity=curve.initial,
        end_equity=curve.points[-1][1] if curve.points else curve.initial,
        max_drawdown=amount,
        max_drawdown_pct=share,
        exposure=exposure(curve),
        interval_s=interval,
        sharpe=sharpe,
        sortino=sortino,
        marked=curve.marked,
    )


def compute(
    journal: JournalContents,
    summaries: Sequence[BotSummary],
    prices: Mapping[str, PriceSeries | None],
) -> list[Group]:
    """The figures of each bot and of each quote currency's total; ``prices`` per bot id (None
    or missing: equity at fills only). A total only where a currency has two bots or more."""
    by_quote: dict[str | None, list[tuple[BotSummary, Figures, Curve]]] = {}
    for s in summaries:
        curve = bot_curve(
            journal.initial_quote.get(s.bot_id, ZERO),
            journal.fills.get(s.bot_id, ()),
            prices.get(s.bot_id),
        )
        bot = figures(
            s.bot_id,
            s.quote,
            curve,
            trades=s.closes,
            wins=s.wins,
            realized=s.realized,
            fees=s.fees,
        )
        by_quote.setdefault(s.quote, []).append((s, bot, curve))
    groups = []
    currencies = sum(1 for quote in by_quote if quote is not None)
    for quote in sorted(by_quote, key=lambda q: (q is None, q or "")):
        bots = by_quote[quote]
        total = None
        summed = None
        if len(bots) > 1 and quote is not None:
            summed = total_curve([c for _, _, c in bots])
            total = figures(
                "total" if currencies == 1 else f"total {quote}",
                quote,
                summed,
                trades=sum(f.trades for _, f, _ in bots),
                wins=sum(f.wins for _, f, _ in bots),
                realized=sum((f.realized for _, f, _ in bots), ZERO),
                fees=sum((f.fees for _, f, _ in bots), ZERO),
            )
        groups.append(Group(quote, total, summed, tuple(bots)))
    return groups


def prices_by_bot(
    journal: JournalContents,
    prices: Mapping[tuple[str, str], PriceSeries] | None,
    exchanges: Mapping[str, str] | None = None,
) -> dict[str, PriceSeries | None]:
    """Each bot's price samples, sorted by time: those of its symbol, on its exchange when
    ``exchanges`` (bot id -> exchange) names it; None when there are none. A journal does not
    record exchanges, so a symbol priced on several exchanges needs ``exchanges``."""
    if prices is None:
        return {}
    found: dict[str, PriceSeries | None] = {}
    for bot, symbol in journal.symbols.items():
        keys = [key for key in prices if key[1] == symbol]
        exchange = (exchanges or {}).get(bot)
        if exchange is not None:
            keys = [key for key in keys if key[0] == exchange]
        if len(keys) > 1:
            raise ValueError(
                f"bot {bot!r}: {symbol} is priced on {', '.join(sorted(k[0] for k in keys))};"
                " say which exchange is the bot's (exchanges={bot id: exchange})"
            )
        found[bot] = sorted(prices[keys[0]], key=lambda sample: sample[0]) if keys else None
    return found
