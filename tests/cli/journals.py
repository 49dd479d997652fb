"""Journals for the report's tests, written with the journal's own store (real SQLite)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Literal

import attrs

from actors.bots.positions import Book
from actors.journal.store import MIGRATIONS, FillRecord, JournalStore, OrderIntent, RefusalRecord

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
Trade = tuple[Literal["buy", "sell"], str, str, str]  # side, size, price, fee


def write_bot(
    store: JournalStore,
    bot_id: str,
    symbol: str,
    trades: list[Trade],
    quote: str = "10000",
    times: list[float] | None = None,
) -> None:
    """Journal ``trades`` as the bot would: each fill carries the PnL its booking realizes;
    the n-th at ``times[n - 1]`` (default: ``T0 + n``)."""
    store.register_bot(bot_id, Decimal(quote), T0)
    book = Book(quote=Decimal(quote))
    for seq, (side, size, price, fee) in enumerate(trades, start=1):
        client_id = f"{bot_id}-{seq}"
        store.record_intent(
            OrderIntent(
                client_id, bot_id, seq, symbol, side, "market", Decimal(size), None, "t", None, T0
            )
        )
        fill = FillRecord(
            client_id,
            bot_id,
            side,
            Decimal(price),
            Decimal(size),
            Decimal(fee),
            None,
            T0 + seq if times is None else times[seq - 1],
        )
        realized = book.apply_fill(fill)
        store.record_fill(attrs.evolve(fill, realized_pnl=realized))


def two_bots(path: Path) -> Path:
    store = JournalStore(path, fsync=False)
    store.open()
    try:
        write_bot(
            store,
            "btc-sma",
            "BTC/USDT",
            [("buy", "1", "100", "0.1"), ("sell", "1", "110", "0.11"), ("buy", "0.5", "105", "0")],
        )
        write_bot(store, "eth-rsi", "ETH/USDT", [("buy", "2", "50", "0"), ("sell", "2", "45", "0")])
        store.register_bot("idle", Decimal(500), T0)
        store.record_refusals(
            [
                RefusalRecord("btc-sma", "rate_limit", "signal:x", T0, T0 + 50, 5),
                RefusalRecord("btc-sma", "rate_limit", "signal:x", T0 + 60, T0 + 70, 2),
                RefusalRecord("btc-sma", "stale_price", "", T0, T0, 2),
                RefusalRecord("idle", "no_price", "", T0, T0, 1),
            ]
        )
    finally:
        store.close()
    return path


def version_2_journal(path: Path) -> Path:
    """A journal as the previous release left it: no realized PnL on fills, no refusals."""
    db = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:2]:
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version=2")
    db.execute("INSERT INTO bots VALUES ('old', '1000', ?)", (T0,))
    for seq, side, price in [(1, "buy", "100"), (2, "sell", "90")]:
        db.execute(
            """INSERT INTO orders (client_id, bot_id, seq, symbol, side, order_type, size, status,
                   created_ts, updated_ts)
               VALUES (?, 'old', ?, 'BTC/USD', ?, 'market', '1', 'filled', ?, ?)""",
            (f"old-{seq}", seq, side, T0, T0),
        )
        db.execute(
            """INSERT INTO fills (client_id, bot_id, side, price, size, fee, ts)
               VALUES (?, 'old', ?, ?, '1', '0', ?)""",
            (f"old-{seq}", side, price, T0 + seq),
        )
    db.close()
    return path
