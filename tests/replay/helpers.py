"""Recorded data for replay tests, written with the recorder's own writer, and journal dumps.

``market(...)`` is a scripted price path (two sines: a slow trend and a fast wiggle), so moving
averages cross often and every built-in strategy trades; prices and sizes are exact Decimals
of two decimals, as an exchange sends them.
"""

from __future__ import annotations

import math
import sqlite3
from decimal import Decimal
from pathlib import Path

from actors.messages import Ticker, Trade
from actors.recording.writer import write_events

START_TS = 1764547200.0  # 2025-12-01T00:00:00Z


def market(
    n: int = 400,
    *,
    exchange: str = "binance",
    symbol: str = "BTC/USDT",
    start: float = START_TS,
    step_s: float = 1.0,
    trade_every: int = 3,
    base: float = 50000,
    swing: float = 400,
) -> list[Ticker | Trade]:
    events: list[Ticker | Trade] = []
    for i in range(n):
        mid = base + swing * math.sin(i / 25) + swing * 0.15 * math.sin(i / 3.1)
        bid, ask = Decimal(f"{mid - 0.5:.2f}"), Decimal(f"{mid + 0.5:.2f}")
        ts = start + i * step_s
        events.append(
            Ticker(exchange, symbol, bid, ask, bid, Decimal("1.5"), Decimal("2"), ts - 0.01, ts)
        )
        if trade_every and i % trade_every == 0:
            size = Decimal("2") if i % (4 * trade_every) == 0 else Decimal("0.01")
            side = "buy" if i % 2 == 0 else "sell"
            events.append(
                Trade(exchange, symbol, ask, size, side, str(i), ts + 0.1, ts + step_s / 2)
            )
    return events


def record(root: Path, events: list[Ticker | Trade]) -> Path:
    write_events(root, events)
    return root


# Every table a bot writes, as text rows in key order. The autoincrement ids of fills and
# refusals are left out: they number rows across bots, and bots woken by the same event write
# in the order the scheduler runs them (Trio randomizes it), while each bot's own rows keep
# their order (fills by bot, then fill id).
DUMP_QUERIES = {
    "bots": "SELECT * FROM bots ORDER BY bot_id",
    "orders": "SELECT * FROM orders ORDER BY client_id",
    "fills": "SELECT client_id, bot_id, side, price, size, fee, position_id, ts, venue_fill_id,"
    " realized_pnl FROM fills ORDER BY bot_id, fill_id",
    "bot_state": "SELECT * FROM bot_state ORDER BY bot_id, key",
    "refusals": "SELECT bot_id, reason, tag, first_ts, last_ts, count FROM refusals"
    " ORDER BY bot_id, refusal_id",
}


def dump_journal(path: Path) -> dict[str, list[str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: ["|".join(repr(value) for value in row) for row in db.execute(query)]
            for table, query in DUMP_QUERIES.items()
        }
    finally:
        db.close()
