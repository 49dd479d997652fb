"""Decimal money helpers: rounding to a market's steps and the UTC trading day.

Sizes round DOWN to the lot (never buy or sell more than asked for or held). Prices round in the
direction that is adverse to us (a buy fill price up, a sell fill price down; a buy limit down, a
sell limit up), so paper results never look better than the market would have allowed. The
arithmetic is ``(value / step).to_integral_value(ROUND_DOWN) * step`` rather than
``quantize(step)`` alone, because steps need not be powers of ten (``lot_size = 0.5``); the result
is then quantized to the step's exponent so equal amounts have equal text in the journal.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

ZERO = Decimal(0)
HUNDRED = Decimal(100)


def round_down(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(ROUND_FLOOR) * step).quantize(step, ROUND_DOWN)


def round_up(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(ROUND_CEILING) * step).quantize(step, ROUND_DOWN)


def pct(value: float | Decimal | None) -> Decimal | None:
    """A config percentage as an exact Decimal fraction (float 0.1 becomes Decimal('0.001'))."""
    if value is None:
        return None
    return Decimal(str(value)) / HUNDRED


def utc_day(ts: float) -> str:
    """The UTC calendar day of a wall-clock timestamp, as ``YYYY-MM-DD`` (sorts as it compares)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


def next_utc_midnight_ts(ts: float) -> float:
    day = dt.datetime.fromtimestamp(ts, dt.UTC).date()
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
