"""A journal as the report reads it: ``read_journal`` (the only I/O: SQLite, read-only) and
``summarize`` (pure: the counts and sums per bot).

Decisions:

* **Read-only, no lock, no migration.** The report opens the file with ``mode=ro`` and never
  takes the writer's lock, so it can run beside the daemon that is writing the journal (WAL
  readers do not block the writer) and can never upgrade a journal an older daemon still uses.
  Any schema version is read: migrations only add, so every table and column it knows is there.
* **The book is replayed with the bot's own code** (``Book.apply_fill``): the open position
  and, for fills journaled before ``fills.realized_pnl`` existed, their realized PnL are what
  the bot itself would rebuild, not a second implementation of the same arithmetic.
* **Win rate counts closing orders**: a sell order is a win when its fills together realized
  more than zero (partial fills of one order are one trade, not several).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import attrs

from actors.bots.money import ZERO
from actors.bots.positions import Book
from actors.errors import BookError, JournalError
from actors.journal.store import FillRecord

__all__ = ["BotSummary", "JournalContents", "read_journal", "summarize"]


@attrs.frozen
class JournalContents:
    """What the report needs of a journal, as read."""

    path: str
    schema_version: int
    initial_quote: Mapping[str, Decimal]  # per bot
    symbols: Mapping[str, str]  # per bot: the symbol of its latest order
    fills: Mapping[str, tuple[FillRecord, ...]]  # per bot, in journal order
    refusals: Mapping[str, Mapping[str, int]] | None  # per bot, per reason; None: not journaled


@attrs.frozen
class BotSummary:
    bot_id: str
    symbol: str | None
    fills: int
    realized: Decimal
    fees: Decimal
    position: Decimal  # base currency held
    wins: int
    closes: int  # closing (sell) orders with at least one fill
    refusals: Mapping[str, int] | None

    @property
    def base(self) -> str | None:
        return self.symbol.partition("/")[0] if self.symbol else None

    @property
    def quote(self) -> str | None:
        return self.symbol.partition("/")[2] if self.symbol else None


# --- reading ------------------------------------------------------------------------------------


def read_journal(path: str | Path) -> JournalContents:
    """Read a journal without writing it; ``JournalError`` (one line, naming the file) when it
    is missing or not a BotCriptoFy journal."""
    file = Path(path)
    if not file.exists():
        raise JournalError(f"{path}: no such file")
    if not file.is_file():
        raise JournalError(f"{path}: not a file")
    try:
        db = sqlite3.connect(f"{file.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot open: {exc}") from exc
    try:
        return _read(db, str(path))
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: not a BotCriptoFy journal ({exc})") from exc
    finally:
        db.close()


def _read(db: sqlite3.Connection, path: str) -> JournalContents:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version < 1 or not {"bots", "orders", "fills"} <= tables:
        raise JournalError(f"{path}: not a BotCriptoFy journal (no journal schema)")
    initial = {
        bot: Decimal(quote) for bot, quote in db.execute("SELECT bot_id, initial_quote FROM bots")
    }
    symbols = dict(
        db.execute(
            """SELECT bot_id, symbol FROM orders o
               WHERE seq = (SELECT max(seq) FROM orders WHERE bot_id = o.bot_id)"""
        ).fetchall()
    )
    has_realized = version >= 3
    rows = db.execute(
        f"""SELECT client_id, bot_id, side, price, size, fee, position_id, ts,
                   {"realized_pnl" if has_realized else "NULL"}
            FROM fills ORDER BY fill_id"""
    )
    fills: dict[str, list[FillRecord]] = defaultdict(list)
    for r in rows:
        fills[r[1]].append(
            FillRecord(
                client_id=r[0],
                bot_id=r[1],
                side=r[2],
                price=Decimal(r[3]),
                size=Decimal(r[4]),
                fee=Decimal(r[5]),
                position_id=r[6],
                ts=r[7],
                realized_pnl=None if r[8] is None else Decimal(r[8]),
            )
        )
    refusals: dict[str, dict[str, int]] | None = None
    if "refusals" in tables:
        refusals = defaultdict(dict)
        for bot, reason, count in db.execute(
            "SELECT bot_id, reason, sum(count) FROM refusals GROUP BY bot_id, reason"
        ):
            refusals[bot][reason] = int(count)
    return JournalContents(
        path=path,
        schema_version=version,
        initial_quote=initial,
        symbols=symbols,
        fills={bot: tuple(bot_fills) for bot, bot_fills in fills.items()},
        refusals=None if refusals is None else dict(refusals),
    )


# --- the numbers --------------------------------------------------------------------------------


def summarize(journal: JournalContents) -> list[BotSummary]:
    """One summary per bot the journal knows, in bot id order."""
    bots = sorted({*journal.initial_quote, *journal.fills})
    return [_summarize_bot(journal, bot) for bot in bots]


def _summarize_bot(journal: JournalContents, bot_id: str) -> BotSummary:
    book = Book(quote=journal.initial_quote.get(bot_id, ZERO))
    realized_by_close: dict[str, Decimal] = {}
    realized = ZERO
    fills = journal.fills.get(bot_id, ())
    for fill in fills:
        try:
            booked = book.apply_fill(fill)
        except BookError as exc:
            raise JournalError(f"{journal.path}: bot {bot_id!r}: {exc}") from exc
        pnl = booked if fill.realized_pnl is None else fill.realized_pnl
        realized += pnl
        if fill.side == "sell":
            realized_by_close[fill.client_id] = realized_by_close.get(fill.client_id, ZERO) + pnl
    refusals = None
    if journal.refusals is not None:
        refusals = dict(journal.refusals.get(bot_id, {}))
    return BotSummary(
        bot_id=bot_id,
        symbol=journal.symbols.get(bot_id),
        fills=len(fills),
        realized=realized,
        fees=book.fees_quote,
        position=book.base,
        wins=sum(1 for pnl in realized_by_close.values() if pnl > 0),
        closes=len(realized_by_close),
        refusals=refusals,
    )
