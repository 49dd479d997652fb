"""``botcriptofy report``: how each bot did, read from its journal.

``read_journal`` is the only I/O (SQLite, read-only); ``summarize`` and ``format_report`` are
pure, so the numbers are tested without a terminal and the table without a database.

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
* **Money is never summed across quote currencies.** Amounts carry their currency; with bots
  in several quotes the total line shows the counts and one line per currency follows.
* **No mark to market**: the journal holds no prices, so open positions are shown in the
  base currency and their unrealized PnL is left to the daemon's status and ``/health``.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import attrs

from actors.bots.money import ZERO
from actors.bots.positions import Book
from actors.errors import BookError, JournalError
from actors.journal.store import SCHEMA_VERSION, FillRecord

__all__ = ["BotSummary", "JournalContents", "format_report", "read_journal", "summarize"]


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


# --- the table ----------------------------------------------------------------------------------

_COLUMNS = ("bot", "symbol", "fills", "realized PnL", "fees", "position", "win rate", "refusals")
_LEFT = {"bot", "symbol"}


def format_report(journal: JournalContents, summaries: Sequence[BotSummary]) -> str:
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
    lines.append("realized PnL is net of fees; open positions are at cost (no prices in a journal)")
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
