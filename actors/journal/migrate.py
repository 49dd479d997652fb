"""Move a SQLite journal into PostgreSQL: every table copied, then counted and checksummed.

``botcriptofy journal migrate --from FILE --to URL`` calls ``sqlite_to_postgres``.

Decisions:

* **The source is brought to the current schema first** (opened as the daemon would, under its
  writer lock), so a daemon still writing it is refused, and the copy is one column list per
  table for both sides (``TABLES``).
* **Only into an empty journal**: the target's tables are locked (EXCLUSIVE: readers yes,
  writers no) and must hold no row, so a migration can never merge two histories or run twice.
* **Verified before it commits**: per table, the row count and a SHA-256 over each row's
  values as read back from PostgreSQL must equal the source's; otherwise the transaction rolls
  back and the target stays empty. The checksum hashes each row's ``repr`` (exact for text,
  integers and floats) and combines the row digests in sorted order, so neither side's
  collation or scan order matters.
* **Ids are kept** (``fill_id``, ``refusal_id``) and the identity sequences moved past them, so
  fills keep their order and new rows follow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from actors.errors import JournalError
from actors.journal.postgres import PostgresJournalStore
from actors.journal.store import JournalStore, WriterLock

# (table, columns, identity column or None); the same names in both backends
TABLES: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("bots", ("bot_id", "initial_quote", "created_ts"), None),
    (
        "orders",
        (
            "client_id",
            "bot_id",
            "seq",
            "symbol",
            "side",
            "order_type",
            "size",
            "price",
            "tag",
            "position_id",
            "status",
            "status_reason",
            "created_ts",
            "updated_ts",
            "owner_epoch",
            "updated_epoch",
        ),
        None,
    ),
    (
        "fills",
        (
            "fill_id",
            "client_id",
            "bot_id",
            "side",
            "price",
            "size",
            "fee",
            "position_id",
            "ts",
            "venue_fill_id",
            "realized_pnl",
            "owner_epoch",
        ),
        "fill_id",
    ),
    ("bot_state", ("bot_id", "key", "value", "updated_ts", "owner_epoch"), None),
    (
        "refusals",
        ("refusal_id", "bot_id", "reason", "tag", "first_ts", "last_ts", "count", "owner_epoch"),
        "refusal_id",
    ),
    ("owner_epochs", ("bot_id", "epoch"), None),
)


@attrs.frozen
class MigrationReport:
    rows: dict[str, int]  # per table, as copied and as counted in the target
    checksum: str  # hex SHA-256 over every table, equal on both sides

    def lines(self) -> list[str]:
        counts = "  ".join(f"{table} {count}" for table, count in self.rows.items())
        return [f"copied {counts}", f"checksum {self.checksum} (source and target agree)"]


def table_digest(rows: Iterable[Sequence[Any]]) -> str:
    """Order-independent SHA-256 of a table's rows (see the module docstring)."""
    rows_digests = sorted(hashlib.sha256(repr(tuple(row)).encode()).digest() for row in rows)
    return hashlib.sha256(b"".join(rows_digests)).hexdigest()


def combined_digest(digests: dict[str, str]) -> str:
    return hashlib.sha256(
        "\n".join(f"{table}:{digest}" for table, digest in digests.items()).encode()
    ).hexdigest()


def read_sqlite(store: JournalStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, in one read transaction."""
    db = store.db
    db.execute("BEGIN")
    try:
        return {
            table: [tuple(row) for row in db.execute(f"SELECT {', '.join(cols)} FROM {table}")]
            for table, cols, _identity in TABLES
        }
    finally:
        db.execute("COMMIT")


def sqlite_to_postgres(
    source: str | Path, target_url: str, *, password: str | None = None
) -> MigrationReport:
    """Copy the SQLite journal ``source`` into the empty PostgreSQL journal at ``target_url``
    (created if missing). ``JournalError`` (nothing written) when the source is in use, missing
    or not a journal, the target is not empty, or the copy does not verify."""
    source = Path(source)
    if not source.is_file():
        raise JournalError(f"{source}: no such journal file")
    lock = WriterLock(source)
    lock.acquire()
    try:
        sqlite = JournalStore(source)
        sqlite.open()
        try:
            rows = read_sqlite(sqlite)
        finally:
            sqlite.close()
    finally:
        lock.release()
    expected = {table: table_digest(table_rows) for table, table_rows in rows.items()}

    target = PostgresJournalStore(target_url, password=password)
    target.open()
    try:
        return _copy(target, rows, expected)
    finally:
        target.close()


def _copy(
    target: PostgresJournalStore,
    rows: dict[str, list[tuple[Any, ...]]],
    expected: dict[str, str],
) -> MigrationReport:
    import psycopg

    db = target.db
    names = [table for table, _cols, _identity in TABLES]
    try:
        with db.transaction():
            db.execute(f"LOCK TABLE {', '.join(names)} IN EXCLUSIVE MODE")
            present = {
                table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in names
            }
            if any(present.values()):
                held = ", ".join(f"{table} {n}" for table, n in present.items() if n)
                raise JournalError(
                    f"journal {target.label} is not empty ({held} rows): migrate only into an"
                    " empty journal"
                )
            with db.cursor() as cursor:
                for table, cols, identity in TABLES:
                    with cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows[table]:
                            copy.write_row(row)
                    if identity is not None and rows[table]:
                        cursor.execute(
                            f"""SELECT setval(pg_get_serial_sequence('{table}', '{identity}'),
                                              (SELECT max({identity}) FROM {table}))"""
                        )
                    copied = [
                        tuple(row)
                        for row in cursor.execute(f"SELECT {', '.join(cols)} FROM {table}")
                    ]
                    if len(copied) != len(rows[table]):
                        raise JournalError(
                            f"journal migration: {table} has {len(copied)} rows in"
                            f" {target.label}, {len(rows[table])} in the source; rolled back"
                        )
                    if table_digest(copied) != expected[table]:
                        raise JournalError(
                            f"journal migration: {table} differs between the source and"
                            f" {target.label} (checksum); rolled back"
                        )
    except psycopg.Error as exc:
        raise JournalError(f"journal migration into {target.label} failed: {exc}") from exc
    return MigrationReport(
        rows={table: len(table_rows) for table, table_rows in rows.items()},
        checksum=combined_digest(expected),
    )
