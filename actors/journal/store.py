"""The journal's SQLite store: schema, migrations, and synchronous reads and writes.

This module is plain blocking code with no Trio in it. The journal actor (``actor.py``)
owns the one connection and calls it from a worker thread, one batch at a time; tests and the
crash test's subprocess can also call it directly.

Decisions:

* **Decimals are TEXT.** ``str(Decimal)`` round-trips exactly; REAL would not.
* **Versioned schema** with ``PRAGMA user_version`` and an append-only ``MIGRATIONS`` list: a
  database at version *n* gets migrations *n+1..* in one transaction each. A database newer
  than this code is refused (``JournalError``) instead of being written with an old schema.
* **WAL** journal mode (readers never block the writer; a commit is one append) and
  ``synchronous=FULL`` when ``fsync`` is on (a commit survives power loss), else ``NORMAL`` (a
  commit survives a killed process, kill -9, but maybe not a power cut).
* **Group commit.** ``run_batch`` runs many operations in one transaction, each inside its own
  SAVEPOINT so one failing operation (a duplicate client order id) is rolled back alone and
  reported to its own caller, while the others commit together with one fsync.
* **Client order ids are the orders table's primary key**, so an id can never be journaled, and
  therefore never be sent, twice.
* **A fill is only accepted for an order that is not terminal**, and it moves the order's status
  in the same transaction, so replaying fills can never count a fill for a cancelled order.
* **A fill carries the PnL it realized**, so "how did the bot do" is a SQL sum and not a replay
  of the book; the book still recomputes it on replay, so the column can never drift what a
  restarted bot holds. The schema is described in docs/architecture.md ("The journal").
* **Refusals are counted, not listed**: ``RefusalRecord`` (one row per bot, reason and tag per
  window) keeps a bot refused on every tick from writing on every tick.
"""

from __future__ import annotations

import fcntl
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal, cast

import attrs
import outcome

from actors.errors import JournalError

TERMINAL_STATUSES: frozenset[str] = frozenset({"filled", "cancelled", "rejected"})
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: orders, fills, per-bot state
    (
        """CREATE TABLE bots (
            bot_id TEXT PRIMARY KEY,
            initial_quote TEXT NOT NULL,
            created_ts REAL NOT NULL
        ) STRICT""",
        """CREATE TABLE orders (
            client_id TEXT PRIMARY KEY,
            bot_id TEXT NOT NULL REFERENCES bots(bot_id),
            seq INTEGER NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            order_type TEXT NOT NULL CHECK (order_type IN ('market', 'limit')),
            size TEXT NOT NULL,
            price TEXT,
            tag TEXT NOT NULL DEFAULT '',
            position_id TEXT,
            status TEXT NOT NULL
                CHECK (status IN ('intent', 'open', 'filled', 'cancelled', 'rejected')),
            status_reason TEXT NOT NULL DEFAULT '',
            created_ts REAL NOT NULL,
            updated_ts REAL NOT NULL,
            UNIQUE (bot_id, seq)
        ) STRICT""",
        "CREATE INDEX orders_by_bot_status ON orders (bot_id, status)",
        """CREATE TABLE fills (
            fill_id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id TEXT NOT NULL REFERENCES orders(client_id),
            bot_id TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            price TEXT NOT NULL,
            size TEXT NOT NULL,
            fee TEXT NOT NULL,
            position_id TEXT,
            ts REAL NOT NULL
        ) STRICT""",
        "CREATE INDEX fills_by_bot ON fills (bot_id, fill_id)",
        """CREATE TABLE bot_state (
            bot_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_ts REAL NOT NULL,
            PRIMARY KEY (bot_id, key)
        ) STRICT""",
    ),
    # 2: a live venue's fill id (symbol:trade id), unique, so a fill reported twice (order
    # response, user stream, trade list) can never be booked twice
    (
        "ALTER TABLE fills ADD COLUMN venue_fill_id TEXT",
        """CREATE UNIQUE INDEX fills_by_venue_id ON fills (venue_fill_id)
           WHERE venue_fill_id IS NOT NULL""",
    ),
    # 3: the PnL each fill realized, as the book computed it when the fill was journaled (NULL
    # for fills journaled before this migration), and the orders risk refused, counted per
    # (bot, reason, tag) over a window rather than one row each (see ``RefusalRecord``)
    (
        "ALTER TABLE fills ADD COLUMN realized_pnl TEXT",
        """CREATE TABLE refusals (
            refusal_id INTEGER PRIMARY KEY AUTOINCREMENT,
            bot_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            tag TEXT NOT NULL DEFAULT '',
            first_ts REAL NOT NULL,
            last_ts REAL NOT NULL,
            count INTEGER NOT NULL CHECK (count > 0)
        ) STRICT""",
        "CREATE INDEX refusals_by_bot ON refusals (bot_id, refusal_id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


# --- records ------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OrderIntent:
    """An order as decided, journaled before it is sent. ``position_id`` names the lot an exit
    closes (None: a buy, or a strategy sell that closes lots oldest first)."""

    client_id: str
    bot_id: str
    seq: int
    symbol: str
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit"]
    size: Decimal
    price: Decimal | None
    tag: str
    position_id: str | None
    created_ts: float

    def __attrs_post_init__(self) -> None:
        if not CLIENT_ID_RE.match(self.client_id):
            raise ValueError(
                f"client order id must match [A-Za-z0-9_-]{{1,36}}, got {self.client_id!r}"
            )


@attrs.frozen(slots=True)
class OrderRecord:
    intent: OrderIntent
    status: str
    status_reason: str
    filled_size: Decimal


@attrs.frozen(slots=True)
class FillRecord:
    client_id: str
    bot_id: str
    side: Literal["buy", "sell"]
    price: Decimal
    size: Decimal
    fee: Decimal  # in the quote currency
    position_id: str | None  # buy: None (the lot is named by client_id); sell: the lot closed
    ts: float
    venue_fill_id: str | None = None  # live: "<native symbol>:<trade id>"; paper: None
    # What booking this fill realized (zero for a buy); None: journaled before migration 3, or
    # a fill the book could not apply
    realized_pnl: Decimal | None = None


@attrs.frozen(slots=True)
class RefusalRecord:
    """``count`` orders of one bot that risk refused for ``reason`` (and the venue's
    ``venue_rejected``), all tagged ``tag``, between ``first_ts`` and ``last_ts``. A bot can be
    refused on every tick (``rate_limit``, ``stale_price``), so it writes one of these per
    reason and tag per window instead of one row per refusal."""

    bot_id: str
    reason: str
    tag: str
    first_ts: float
    last_ts: float
    count: int


@attrs.frozen(slots=True)
class BotRecord:
    """Everything a bot needs to rebuild itself, read in one transaction."""

    bot_id: str
    initial_quote: Decimal
    fills: tuple[FillRecord, ...]
    open_orders: tuple[OrderRecord, ...]  # status "open": resting at the venue
    unresolved: tuple[OrderRecord, ...]  # status "intent": journaled, outcome unknown
    state: Mapping[str, str]
    next_seq: int
    orders_count: int


# --- the store ------------------------------------------------------------------------------------


Op = tuple[str, tuple[Any, ...]]
WRITE_OPS = frozenset(
    {"record_intent", "record_fill", "record_status", "save_state", "load_bot", "record_refusals"}
)


class WriterLock:
    """An exclusive ``flock`` on ``<journal>.lock``, held by the one journal writer.

    Two daemons writing one journal would each replay it, then both place "the next" order: the
    second writer is refused at start instead. The OS drops the lock when the process dies, so a
    kill -9 never leaves a stale lock behind. Readers (tests, tools) take no lock.
    """

    def __init__(self, journal_path: str | Path):
        self.path = Path(f"{journal_path}.lock")
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "ab")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise JournalError(
                f"journal {str(self.path)[:-5]!r} is in use by another process"
            ) from None
        except BaseException:
            file.close()
            raise
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


class JournalStore:
    """One SQLite connection. Not thread-safe by itself: exactly one caller at a time (the
    journal actor serializes its thread calls), which is why ``check_same_thread`` is off."""

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self._db: sqlite3.Connection | None = None

    # lifecycle

    def open(self) -> None:
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open journal {str(self.path)!r}: {exc}") from exc
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal" and str(self.path) != ":memory:":
                raise JournalError(f"journal {str(self.path)!r}: WAL mode refused (got {mode!r})")
            db.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            self._db = db
            self._migrate()
        except sqlite3.Error as exc:
            db.close()
            self._db = None
            raise JournalError(f"cannot open journal {str(self.path)!r}: {exc}") from exc
        except BaseException:
            db.close()
            self._db = None
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError("journal store is not open")
        return self._db

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {str(self.path)!r} has schema version {version}, newer than this "
                f"program's {SCHEMA_VERSION}; refusing to write it"
            )
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={number}")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    # batches

    def run_batch(self, ops: Sequence[Op]) -> list[outcome.Outcome[Any]]:
        """Run operations in one transaction; each op's result or error goes to its own outcome.

        If the COMMIT itself fails (disk full, I/O error) nothing was written and every
        operation's outcome is that error.
        """
        db = self.db
        results: list[outcome.Outcome[Any]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = JournalError(f"journal: cannot begin a transaction: {exc}")
            return [outcome.Error(error) for _ in ops]
        try:
            for name, args in ops:
                fn: Callable[..., Any] = getattr(self, "_op_" + name)
                db.execute("SAVEPOINT op")
                try:
                    value = fn(*args)
                except (sqlite3.Error, JournalError, ValueError) as exc:
                    db.execute("ROLLBACK TO op")
                    db.execute("RELEASE op")
                    results.append(outcome.Error(_journal_error(name, exc)))
                else:
                    db.execute("RELEASE op")
                    results.append(outcome.Value(value))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            error = JournalError(f"journal: commit failed: {exc}")
            return [outcome.Error(error) for _ in ops]
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return results

    def _one(self, name: str, *args: Any) -> Any:
        return self.run_batch([(name, args)])[0].unwrap()

    # public sync API (one transaction each)

    def register_bot(self, bot_id: str, initial_quote: Decimal, now_ts: float) -> Decimal:
        return cast(Decimal, self._one("register_bot", bot_id, initial_quote, now_ts))

    def record_intent(self, intent: OrderIntent) -> None:
        self._one("record_intent", intent)

    def record_fill(self, fill: FillRecord, order_status: str = "filled") -> None:
        self._one("record_fill", fill, order_status)

    def record_status(self, client_id: str, status: str, reason: str, now_ts: float) -> None:
        self._one("record_status", client_id, status, reason, now_ts)

    def save_state(self, bot_id: str, key: str, value: str | None, now_ts: float) -> None:
        self._one("save_state", bot_id, key, value, now_ts)

    def load_bot(self, bot_id: str, initial_quote: Decimal, now_ts: float) -> BotRecord:
        return cast(BotRecord, self._one("load_bot", bot_id, initial_quote, now_ts))

    def record_refusals(self, refusals: Sequence[RefusalRecord]) -> None:
        self._one("record_refusals", tuple(refusals))

    def refusals(self, bot_id: str) -> list[RefusalRecord]:
        return cast(list[RefusalRecord], self._one("refusals", bot_id))

    def orders(self, bot_id: str) -> list[OrderRecord]:
        return cast(list[OrderRecord], self._one("orders", bot_id))

    def fills(self, bot_id: str) -> list[FillRecord]:
        return cast(list[FillRecord], self._one("fills", bot_id))

    def state(self, bot_id: str) -> dict[str, str]:
        return cast(dict[str, str], self._one("state", bot_id))

    # operations (run inside run_batch's transaction)

    def _op_barrier(self) -> None:
        """Nothing: answering it proves everything queued before it has committed."""

    def _op_register_bot(self, bot_id: str, initial_quote: Decimal, now_ts: float) -> Decimal:
        """The first start fixes the bot's starting balance; later starts read it back, so the
        balance stays derived from the journal even if the config's quote_balance changes."""
        self.db.execute(
            "INSERT OR IGNORE INTO bots (bot_id, initial_quote, created_ts) VALUES (?, ?, ?)",
            (bot_id, str(initial_quote), now_ts),
        )
        row = self.db.execute(
            "SELECT initial_quote FROM bots WHERE bot_id = ?", (bot_id,)
        ).fetchone()
        return Decimal(row[0])

    def _op_record_intent(self, intent: OrderIntent) -> None:
        try:
            self.db.execute(
                """INSERT INTO orders (client_id, bot_id, seq, symbol, side, order_type, size,
                    price, tag, position_id, status, created_ts, updated_ts)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?)""",
                (
                    intent.client_id,
                    intent.bot_id,
                    intent.seq,
                    intent.symbol,
                    intent.side,
                    intent.order_type,
                    str(intent.size),
                    None if intent.price is None else str(intent.price),
                    intent.tag,
                    intent.position_id,
                    intent.created_ts,
                    intent.created_ts,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise JournalError(
                f"order intent {intent.client_id!r} refused (duplicate client order id or "
                f"sequence, or unknown bot): {exc}"
            ) from exc

    def _op_record_fill(self, fill: FillRecord, order_status: str) -> None:
        row = self.db.execute(
            "SELECT status, size, side FROM orders WHERE client_id = ?", (fill.client_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"fill for unknown order {fill.client_id!r}")
        status, size, side = row
        if status in TERMINAL_STATUSES:
            raise JournalError(f"fill for order {fill.client_id!r} which is already {status}")
        if side != fill.side:
            raise JournalError(
                f"fill side {fill.side!r} differs from order {fill.client_id!r} side {side!r}"
            )
        filled = self._filled_size(fill.client_id) + fill.size
        if filled > Decimal(size):
            raise JournalError(f"fills for order {fill.client_id!r} exceed its size {size}")
        self.db.execute(
            """INSERT INTO fills (client_id, bot_id, side, price, size, fee, position_id, ts,
                  venue_fill_id, realized_pnl)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                fill.client_id,
                fill.bot_id,
                fill.side,
                str(fill.price),
                str(fill.size),
                str(fill.fee),
                fill.position_id,
                fill.ts,
                fill.venue_fill_id,
                None if fill.realized_pnl is None else str(fill.realized_pnl),
            ),
        )
        self._set_status(fill.client_id, order_status, "", fill.ts)

    def _op_record_status(self, client_id: str, status: str, reason: str, now_ts: float) -> None:
        row = self.db.execute(
            "SELECT status FROM orders WHERE client_id = ?", (client_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"status for unknown order {client_id!r}")
        if row[0] in TERMINAL_STATUSES:
            raise JournalError(f"order {client_id!r} is already {row[0]}; cannot become {status}")
        self._set_status(client_id, status, reason, now_ts)

    def _set_status(self, client_id: str, status: str, reason: str, now_ts: float) -> None:
        self.db.execute(
            "UPDATE orders SET status = ?, status_reason = ?, updated_ts = ? WHERE client_id = ?",
            (status, reason, now_ts, client_id),
        )

    def _op_record_refusals(self, refusals: tuple[RefusalRecord, ...]) -> None:
        self.db.executemany(
            """INSERT INTO refusals (bot_id, reason, tag, first_ts, last_ts, count)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [(r.bot_id, r.reason, r.tag, r.first_ts, r.last_ts, r.count) for r in refusals],
        )

    def _op_refusals(self, bot_id: str) -> list[RefusalRecord]:
        rows = self.db.execute(
            """SELECT bot_id, reason, tag, first_ts, last_ts, count FROM refusals
               WHERE bot_id = ? ORDER BY refusal_id""",
            (bot_id,),
        ).fetchall()
        return [RefusalRecord(*row) for row in rows]

    def _op_save_state(self, bot_id: str, key: str, value: str | None, now_ts: float) -> None:
        if value is None:
            self.db.execute("DELETE FROM bot_state WHERE bot_id = ? AND key = ?", (bot_id, key))
        else:
            self.db.execute(
                """INSERT INTO bot_state (bot_id, key, value, updated_ts) VALUES (?, ?, ?, ?)
                   ON CONFLICT (bot_id, key) DO UPDATE SET value = excluded.value,
                   updated_ts = excluded.updated_ts""",
                (bot_id, key, value, now_ts),
            )

    def _op_load_bot(self, bot_id: str, initial_quote: Decimal, now_ts: float) -> BotRecord:
        stored_quote = self._op_register_bot(bot_id, initial_quote, now_ts)
        orders = self._op_orders(bot_id)
        state = self._op_state(bot_id)
        max_seq = max((o.intent.seq for o in orders), default=0)
        return BotRecord(
            bot_id=bot_id,
            initial_quote=stored_quote,
            fills=tuple(self._op_fills(bot_id)),
            open_orders=tuple(o for o in orders if o.status == "open"),
            unresolved=tuple(o for o in orders if o.status == "intent"),
            state=state,
            next_seq=max_seq + 1,
            orders_count=len(orders),
        )

    def _op_state(self, bot_id: str) -> dict[str, str]:
        rows = self.db.execute("SELECT key, value FROM bot_state WHERE bot_id = ?", (bot_id,))
        return dict(rows.fetchall())

    def _op_orders(self, bot_id: str) -> list[OrderRecord]:
        rows = self.db.execute(
            """SELECT o.client_id, o.bot_id, o.seq, o.symbol, o.side, o.order_type, o.size, o.price,
                      o.tag, o.position_id, o.created_ts, o.status, o.status_reason,
                      (SELECT group_concat(f.size, ' ') FROM fills f
                       WHERE f.client_id = o.client_id)
               FROM orders o WHERE o.bot_id = ? ORDER BY o.seq""",
            (bot_id,),
        ).fetchall()
        return [
            OrderRecord(
                intent=OrderIntent(
                    client_id=r[0],
                    bot_id=r[1],
                    seq=r[2],
                    symbol=r[3],
                    side=r[4],
                    order_type=r[5],
                    size=Decimal(r[6]),
                    price=None if r[7] is None else Decimal(r[7]),
                    tag=r[8],
                    position_id=r[9],
                    created_ts=r[10],
                ),
                status=r[11],
                status_reason=r[12],
                filled_size=sum((Decimal(s) for s in (r[13] or "").split()), Decimal(0)),
            )
            for r in rows
        ]

    def _op_fills(self, bot_id: str) -> list[FillRecord]:
        rows = self.db.execute(
            """SELECT client_id, bot_id, side, price, size, fee, position_id, ts, venue_fill_id,
                      realized_pnl
               FROM fills WHERE bot_id = ? ORDER BY fill_id""",
            (bot_id,),
        ).fetchall()
        return [
            FillRecord(
                client_id=r[0],
                bot_id=r[1],
                side=r[2],
                price=Decimal(r[3]),
                size=Decimal(r[4]),
                fee=Decimal(r[5]),
                position_id=r[6],
                ts=r[7],
                venue_fill_id=r[8],
                realized_pnl=None if r[9] is None else Decimal(r[9]),
            )
            for r in rows
        ]

    def _filled_size(self, client_id: str) -> Decimal:
        rows = self.db.execute(
            "SELECT size FROM fills WHERE client_id = ?", (client_id,)
        ).fetchall()
        return sum((Decimal(r[0]) for r in rows), Decimal(0))


def _journal_error(op: str, exc: Exception) -> JournalError:
    if isinstance(exc, JournalError):
        return exc
    error = JournalError(f"journal {op} failed: {exc}")
    error.__cause__ = exc
    return error
