"""The journal's SQLite backend: schema, migrations, and the connection.

This module is plain blocking code with no Trio in it. The journal actor (``actor.py``)
owns the one connection and calls it from a worker thread, one batch at a time; tests and the
crash test's subprocess can also call it directly. The operations and their guarantees (group
commit, fencing, the write rules) are ``base.StoreBase``'s, shared with PostgreSQL.

Decisions:

* **Decimals are TEXT.** ``str(Decimal)`` round-trips exactly; REAL would not.
* **Versioned schema** with ``PRAGMA user_version`` and an append-only ``MIGRATIONS`` list: a
  database at version *n* gets migrations *n+1..* in one transaction each. A database newer
  than this code is refused (``JournalError``) instead of being written with an old schema.
* **WAL** journal mode (readers never block the writer; a commit is one append) and
  ``synchronous=FULL`` when ``fsync`` is on (a commit survives power loss), else ``NORMAL`` (a
  commit survives a killed process, kill -9, but maybe not a power cut).
* **Group commit** (``StoreBase.run_batch``): one ``BEGIN IMMEDIATE`` transaction per batch, a
  SAVEPOINT per operation, one fsync per batch.
* **Client order ids are the orders table's primary key**, so an id can never be journaled, and
  therefore never be sent, twice.
* **A fill is only accepted for an order that is not terminal**, and it moves the order's status
  in the same transaction, so replaying fills can never count a fill for a cancelled order.
* **A fill carries the PnL it realized**, so "how did the bot do" is a SQL sum and not a replay
  of the book; the book still recomputes it on replay, so the column can never drift what a
  restarted bot holds. The schema is described in docs/architecture.md ("The journal").
* **Refusals are counted, not listed**: ``RefusalRecord`` (one row per bot, reason and tag per
  window) keeps a bot refused on every tick from writing on every tick.
* **Owner epochs** (migration 4; see ``base.py``): rows written before it have epoch 0, the
  single-process daemon's epoch, so an upgraded journal keeps working unchanged.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from actors.errors import JournalError
from actors.journal.base import Cursor, FencedWriteError, StoreBase
from actors.journal.records import (
    CLIENT_ID_RE,
    TERMINAL_STATUSES,
    WRITE_OPS,
    BotRecord,
    FillRecord,
    Op,
    OrderIntent,
    OrderRecord,
    RefusalRecord,
)

__all__ = [
    "CLIENT_ID_RE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TERMINAL_STATUSES",
    "WRITE_OPS",
    "BotRecord",
    "FencedWriteError",
    "FillRecord",
    "JournalStore",
    "Op",
    "OrderIntent",
    "OrderRecord",
    "RefusalRecord",
    "WriterLock",
]

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
    # 4: owner fencing (see base.py): the highest epoch that wrote or claimed each bot, and the
    # epoch of every write, so the journal shows that two owners never wrote one bot at once
    (
        """CREATE TABLE owner_epochs (
            bot_id TEXT PRIMARY KEY,
            epoch INTEGER NOT NULL CHECK (epoch >= 0)
        ) STRICT""",
        "ALTER TABLE orders ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE orders ADD COLUMN updated_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE fills ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE bot_state ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE refusals ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


# --- the store ---------------------------------------------------------------------------------


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


class JournalStore(StoreBase):
    """One SQLite connection. Not thread-safe by itself: exactly one caller at a time (the
    journal actor serializes its thread calls), which is why ``check_same_thread`` is off."""

    db_errors = (sqlite3.Error,)
    integrity_errors = (sqlite3.IntegrityError,)
    concat_sizes = "group_concat(f.size, ' ')"
    lock_clause = ""  # BEGIN IMMEDIATE: the one writer already holds the whole database

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
    def label(self) -> str:
        return repr(str(self.path))

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

    # the driver's part of StoreBase

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.db.execute(sql, params)

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    def _statements(self, *sql: str) -> None:
        for statement in sql:
            # BEGIN IMMEDIATE: take the write lock now, not at the first write
            self.db.execute("BEGIN IMMEDIATE" if statement == "BEGIN" else statement)

    def _in_transaction(self) -> bool:
        return self.db.in_transaction
