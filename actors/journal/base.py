"""What every journal backend does the same way: group commit, the write rules, owner fencing.

``StoreBase`` holds the operations in SQL that SQLite and PostgreSQL both accept (``?``
placeholders; the PostgreSQL store rewrites them), so the guarantees are written once:
``store.py`` (SQLite) and ``postgres.py`` only open a connection, migrate their schema and say
how their driver spells a transaction and an error. Plain blocking code, no Trio: the journal
actor calls it from its worker thread.

Decisions:

* **Group commit with a savepoint per operation.** ``run_batch`` runs many operations in one
  transaction, each inside its own SAVEPOINT, so one failing operation (a duplicate client order
  id, a fenced write) is rolled back alone and reported to its own caller while the others
  commit together.
* **Owner fencing, in the write's own transaction.** Every write of a bot carries the writer's
  ``owner_epoch`` (0 for the single-process daemon; a lease's epoch in a cluster). The table
  ``owner_epochs`` keeps the highest epoch that wrote each bot (or claimed it: ``load_bot`` and
  ``claim``). A write with a lower epoch is refused with ``FencedWriteError`` naming the bot and
  both epochs; a higher one raises the mark. The check locks the bot's row (PostgreSQL: ``FOR
  UPDATE``; SQLite: the one ``BEGIN IMMEDIATE`` writer) until commit, so a new owner's claim
  waits for an old owner's transaction in progress and is never overtaken by it: once a claim at
  epoch *e* has committed, no write below *e* commits for that bot.
* **Each row keeps the epoch that wrote it** (``owner_epoch``; an order's last status change:
  ``updated_epoch``), so the journal itself proves that owners never interleaved: per bot, the
  epochs of its orders (by ``seq``) and fills (by ``fill_id``) never go down.
* **Rows are attributed to the order's bot**: a fill or a status change is fenced by the bot
  that journaled the order, not by what the caller claims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Protocol, cast

import outcome

from actors.errors import JournalError
from actors.journal.records import (
    TERMINAL_STATUSES,
    BotRecord,
    FillRecord,
    Op,
    OrderIntent,
    OrderRecord,
    RefusalRecord,
)


class FencedWriteError(JournalError):
    """A write by an owner whose epoch is older than the bot's current owner's: refused."""

    def __init__(self, bot_id: str, epoch: int, current: int):
        super().__init__(
            f"journal: write for bot {bot_id!r} at owner epoch {epoch} refused: the bot is "
            f"owned at epoch {current} (a newer owner has taken it over)"
        )
        self.bot_id = bot_id
        self.epoch = epoch
        self.current = current


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class StoreBase:
    """The operations, over one connection that the subclass opens. Not thread-safe by itself:
    exactly one caller at a time (the journal actor serializes its thread calls)."""

    # What the subclass's driver raises: any database error, and a broken constraint.
    db_errors: ClassVar[tuple[type[Exception], ...]]
    integrity_errors: ClassVar[tuple[type[Exception], ...]]
    # SQL that differs: the text aggregate of an order's fill sizes, and the row lock.
    concat_sizes: ClassVar[str]
    lock_clause: ClassVar[str]

    # --- the subclass's part ----------------------------------------------------------------

    @property
    def label(self) -> str:
        """How messages name this journal (a file, or a server and schema: never a password)."""
        raise NotImplementedError

    def open(self) -> None:
        """Connect and migrate the schema (``JournalError`` when it cannot)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def db_open(self) -> bool:
        raise NotImplementedError

    def schema_version(self) -> int:
        raise NotImplementedError

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _statements(self, *sql: str) -> None:
        """Run parameterless statements in order (a server: in one round trip)."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Before a batch: e.g. reconnect after a lost connection."""

    def _in_transaction(self) -> bool:
        raise NotImplementedError

    # --- batches ----------------------------------------------------------------------------

    def run_batch(self, ops: Sequence[Op]) -> list[outcome.Outcome[Any]]:
        """Run operations in one transaction; each op's result or error goes to its own outcome.

        If the COMMIT itself fails (disk full, I/O error, connection lost) nothing was written
        and every operation's outcome is that error. The transaction's own statements (BEGIN,
        SAVEPOINT, RELEASE, COMMIT) go out together with the next ones (``_statements``): to a
        server, one round trip between two operations instead of two.
        """
        if not ops:
            return []
        results: list[outcome.Outcome[Any]] = []
        op_errors: tuple[type[Exception], ...] = (*self.db_errors, JournalError, ValueError)
        try:
            self._prepare()
            self._statements("BEGIN", "SAVEPOINT op")
        except self.db_errors as exc:
            self._rollback_quietly()
            error = JournalError(f"journal {self.label}: cannot begin a transaction: {exc}")
            return [outcome.Error(error) for _ in ops]
        try:
            after: tuple[str, ...] = ()  # how the previous operation ends
            for name, args in ops:
                if after:
                    self._statements(*after, "SAVEPOINT op")
                fn: Callable[..., Any] = getattr(self, "_op_" + name)
                try:
                    value = fn(*args)
                except op_errors as exc:
                    after = ("ROLLBACK TO SAVEPOINT op", "RELEASE SAVEPOINT op")
                    results.append(outcome.Error(_journal_error(name, exc)))
                else:
                    after = ("RELEASE SAVEPOINT op",)
                    results.append(outcome.Value(value))
            self._statements(*after, "COMMIT")
        except self.db_errors as exc:
            self._rollback_quietly()
            error = JournalError(f"journal {self.label}: commit failed: {exc}")
            return [outcome.Error(error) for _ in ops]
        except BaseException:
            self._rollback_quietly()
            raise
        return results

    def _rollback_quietly(self) -> None:
        try:
            if self._in_transaction():
                self._execute("ROLLBACK")
        except self.db_errors:
            pass  # the connection is gone; the server dropped the transaction with it

    def _one(self, name: str, *args: Any) -> Any:
        return self.run_batch([(name, args)])[0].unwrap()

    # --- public sync API (one transaction each) ---------------------------------------------

    def register_bot(
        self, bot_id: str, initial_quote: Decimal, now_ts: float, *, owner_epoch: int = 0
    ) -> Decimal:
        return cast(Decimal, self._one("register_bot", bot_id, initial_quote, now_ts, owner_epoch))

    def record_intent(self, intent: OrderIntent, *, owner_epoch: int = 0) -> None:
        self._one("record_intent", intent, owner_epoch)

    def record_fill(
        self, fill: FillRecord, order_status: str = "filled", *, owner_epoch: int = 0
    ) -> None:
        self._one("record_fill", fill, order_status, owner_epoch)

    def record_status(
        self, client_id: str, status: str, reason: str, now_ts: float, *, owner_epoch: int = 0
    ) -> None:
        self._one("record_status", client_id, status, reason, now_ts, owner_epoch)

    def save_state(
        self, bot_id: str, key: str, value: str | None, now_ts: float, *, owner_epoch: int = 0
    ) -> None:
        self._one("save_state", bot_id, key, value, now_ts, owner_epoch)

    def load_bot(
        self, bot_id: str, initial_quote: Decimal, now_ts: float, *, owner_epoch: int = 0
    ) -> BotRecord:
        return cast(BotRecord, self._one("load_bot", bot_id, initial_quote, now_ts, owner_epoch))

    def claim(self, bot_id: str, owner_epoch: int) -> None:
        """Raise the bot's epoch to ``owner_epoch`` (refused if a newer owner holds it): from
        the commit on, writes of older owners are refused."""
        self._one("claim", bot_id, owner_epoch)

    def owner_epoch(self, bot_id: str) -> int | None:
        """The highest epoch that wrote or claimed ``bot_id`` (None: never written)."""
        return cast("int | None", self._one("owner_epoch", bot_id))

    def record_refusals(self, refusals: Sequence[RefusalRecord], *, owner_epoch: int = 0) -> None:
        self._one("record_refusals", tuple(refusals), owner_epoch)

    def refusals(self, bot_id: str) -> list[RefusalRecord]:
        return cast(list[RefusalRecord], self._one("refusals", bot_id))

    def orders(self, bot_id: str) -> list[OrderRecord]:
        return cast(list[OrderRecord], self._one("orders", bot_id))

    def fills(self, bot_id: str) -> list[FillRecord]:
        return cast(list[FillRecord], self._one("fills", bot_id))

    def state(self, bot_id: str) -> dict[str, str]:
        return cast(dict[str, str], self._one("state", bot_id))

    # --- fencing ----------------------------------------------------------------------------

    def _fence(self, bot_id: str, epoch: int) -> None:
        """Refuse ``epoch`` if a newer owner wrote or claimed ``bot_id``; else record it (it
        may be the new highest). Locks the bot's row until the transaction ends."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise JournalError(f"owner epoch must be an integer >= 0, got {epoch!r}")
        row = self._execute(
            f"SELECT epoch FROM owner_epochs WHERE bot_id = ?{self.lock_clause}", (bot_id,)
        ).fetchone()
        if row is not None:
            if epoch < row[0]:
                raise FencedWriteError(bot_id, epoch, row[0])
            if epoch == row[0]:
                return
        # Missing or older: an upsert that never lowers the mark, and says what it holds now
        # (another transaction may have inserted the row since the SELECT saw none).
        (current,) = self._execute(
            """INSERT INTO owner_epochs (bot_id, epoch) VALUES (?, ?)
               ON CONFLICT (bot_id) DO UPDATE SET epoch = CASE
                   WHEN excluded.epoch > owner_epochs.epoch THEN excluded.epoch
                   ELSE owner_epochs.epoch END
               RETURNING epoch""",
            (bot_id, epoch),
        ).fetchone()
        if epoch < current:
            raise FencedWriteError(bot_id, epoch, current)

    def _op_claim(self, bot_id: str, epoch: int) -> None:
        self._fence(bot_id, epoch)

    def _op_owner_epoch(self, bot_id: str) -> int | None:
        row = self._execute("SELECT epoch FROM owner_epochs WHERE bot_id = ?", (bot_id,)).fetchone()
        return None if row is None else int(row[0])

    # --- operations (run inside run_batch's transaction) ------------------------------------

    def _op_barrier(self) -> None:
        """Nothing: answering it proves everything queued before it has committed."""

    def _op_register_bot(
        self, bot_id: str, initial_quote: Decimal, now_ts: float, epoch: int = 0
    ) -> Decimal:
        """The first start fixes the bot's starting balance; later starts read it back, so the
        balance stays derived from the journal even if the config's quote_balance changes."""
        self._fence(bot_id, epoch)
        self._execute(
            """INSERT INTO bots (bot_id, initial_quote, created_ts) VALUES (?, ?, ?)
               ON CONFLICT (bot_id) DO NOTHING""",
            (bot_id, str(initial_quote), now_ts),
        )
        row = self._execute("SELECT initial_quote FROM bots WHERE bot_id = ?", (bot_id,)).fetchone()
        return Decimal(row[0])

    def _op_record_intent(self, intent: OrderIntent, epoch: int = 0) -> None:
        self._fence(intent.bot_id, epoch)
        try:
            self._execute(
                """INSERT INTO orders (client_id, bot_id, seq, symbol, side, order_type, size,
                    price, tag, position_id, status, created_ts, updated_ts, owner_epoch,
                    updated_epoch)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?, ?, ?)""",
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
                    epoch,
                    epoch,
                ),
            )
        except self.integrity_errors as exc:
            raise JournalError(
                f"order intent {intent.client_id!r} refused (duplicate client order id or "
                f"sequence, or unknown bot): {exc}"
            ) from exc

    def _op_record_fill(self, fill: FillRecord, order_status: str, epoch: int = 0) -> None:
        row = self._execute(
            f"""SELECT o.status, o.size, o.side, o.bot_id,
                       (SELECT {self.concat_sizes} FROM fills f WHERE f.client_id = o.client_id)
                FROM orders o WHERE o.client_id = ?""",
            (fill.client_id,),
        ).fetchone()
        if row is None:
            raise JournalError(f"fill for unknown order {fill.client_id!r}")
        status, size, side, bot_id, fill_sizes = row
        self._fence(bot_id, epoch)
        if status in TERMINAL_STATUSES:
            raise JournalError(f"fill for order {fill.client_id!r} which is already {status}")
        if side != fill.side:
            raise JournalError(
                f"fill side {fill.side!r} differs from order {fill.client_id!r} side {side!r}"
            )
        filled = _sum_sizes(fill_sizes) + fill.size
        if filled > Decimal(size):
            raise JournalError(f"fills for order {fill.client_id!r} exceed its size {size}")
        self._execute(
            """INSERT INTO fills (client_id, bot_id, side, price, size, fee, position_id, ts,
                  venue_fill_id, realized_pnl, owner_epoch)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                epoch,
            ),
        )
        self._set_status(fill.client_id, order_status, "", fill.ts, epoch)

    def _op_record_status(
        self, client_id: str, status: str, reason: str, now_ts: float, epoch: int = 0
    ) -> None:
        row = self._execute(
            "SELECT status, bot_id FROM orders WHERE client_id = ?", (client_id,)
        ).fetchone()
        if row is None:
            raise JournalError(f"status for unknown order {client_id!r}")
        self._fence(row[1], epoch)
        if row[0] in TERMINAL_STATUSES:
            raise JournalError(f"order {client_id!r} is already {row[0]}; cannot become {status}")
        self._set_status(client_id, status, reason, now_ts, epoch)

    def _set_status(
        self, client_id: str, status: str, reason: str, now_ts: float, epoch: int
    ) -> None:
        self._execute(
            """UPDATE orders SET status = ?, status_reason = ?, updated_ts = ?, updated_epoch = ?
               WHERE client_id = ?""",
            (status, reason, now_ts, epoch, client_id),
        )

    def _op_record_refusals(self, refusals: tuple[RefusalRecord, ...], epoch: int = 0) -> None:
        for bot_id in sorted({r.bot_id for r in refusals}):  # sorted: one lock order
            self._fence(bot_id, epoch)
        self._executemany(
            """INSERT INTO refusals (bot_id, reason, tag, first_ts, last_ts, count, owner_epoch)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [(r.bot_id, r.reason, r.tag, r.first_ts, r.last_ts, r.count, epoch) for r in refusals],
        )

    def _op_refusals(self, bot_id: str) -> list[RefusalRecord]:
        rows = self._execute(
            """SELECT bot_id, reason, tag, first_ts, last_ts, count FROM refusals
               WHERE bot_id = ? ORDER BY refusal_id""",
            (bot_id,),
        ).fetchall()
        return [RefusalRecord(*row) for row in rows]

    def _op_save_state(
        self, bot_id: str, key: str, value: str | None, now_ts: float, epoch: int = 0
    ) -> None:
        self._fence(bot_id, epoch)
        if value is None:
            self._execute("DELETE FROM bot_state WHERE bot_id = ? AND key = ?", (bot_id, key))
        else:
            self._execute(
                """INSERT INTO bot_state (bot_id, key, value, updated_ts, owner_epoch)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (bot_id, key) DO UPDATE SET value = excluded.value,
                   updated_ts = excluded.updated_ts, owner_epoch = excluded.owner_epoch""",
                (bot_id, key, value, now_ts, epoch),
            )

    def _op_load_bot(
        self, bot_id: str, initial_quote: Decimal, now_ts: float, epoch: int = 0
    ) -> BotRecord:
        """Registers the bot and claims it at ``epoch`` first: a new owner's load fences the old
        owner's later writes before it has read anything."""
        stored_quote = self._op_register_bot(bot_id, initial_quote, now_ts, epoch)
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
        rows = self._execute("SELECT key, value FROM bot_state WHERE bot_id = ?", (bot_id,))
        return {key: value for key, value in rows.fetchall()}

    def _op_orders(self, bot_id: str) -> list[OrderRecord]:
        rows = self._execute(
            f"""SELECT o.client_id, o.bot_id, o.seq, o.symbol, o.side, o.order_type, o.size,
                       o.price, o.tag, o.position_id, o.created_ts, o.status, o.status_reason,
                       (SELECT {self.concat_sizes} FROM fills f
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
                filled_size=_sum_sizes(r[13]),
            )
            for r in rows
        ]

    def _op_fills(self, bot_id: str) -> list[FillRecord]:
        rows = self._execute(
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


def _sum_sizes(sizes: str | None) -> Decimal:
    """The sum of an order's fill sizes, as the SQL text aggregate lists them."""
    return sum((Decimal(size) for size in (sizes or "").split()), Decimal(0))


def _journal_error(op: str, exc: Exception) -> JournalError:
    if isinstance(exc, JournalError):
        return exc
    error = JournalError(f"journal {op} failed: {exc}")
    error.__cause__ = exc
    return error
