"""The journal actor: this process's one writer of its journal (orders, fills, bot state).

Callers never touch the database. They send commands to the journal's bounded inbox; each request
carries a one-slot reply channel and the caller awaits the answer, which is sent only after the
transaction holding its write has committed. That is what makes "intent before send" and "fill
before position change" true: when ``await journal.record_intent(...)`` returns, the intent is on
disk.

Decisions:

* **Two backends, one actor.** ``[journal] url`` unset: a SQLite file (``store.py``), guarded
  by a writer lock; set: PostgreSQL (``postgres.py``), shared by a cluster's nodes, each bot
  fenced by its owner's epoch (``base.py``). Both are blocking stores driven the same way.
* **Every write carries the writer's owner epoch** (keyword ``owner_epoch``, 0 by default: the
  single-process daemon). A write the store fences off answers ``FencedWriteError``.
* **One connection, one writer, one thread at a time.** Database calls run in
  ``trio.to_thread.run_sync`` under a ``CapacityLimiter(1)`` so the event loop never blocks on
  disk and the connection is never used by two threads at once.
* **Group commit.** The actor takes one command, then drains whatever else is already queued (up
  to ``MAX_BATCH``) and writes the lot in one transaction: with ``fsync`` on, N bots writing at
  once cost one fsync, not N. Replies go out after the commit.
* **A batch is never interrupted.** Thread calls are not abandoned on cancel (Trio's default)
  and the batch's thread call is shielded, so a transaction in progress commits and its replies
  go out; the actor's cancellation lands at its next ``receive``. A caller cancelled while
  waiting simply misses its reply ("caller gone"); its write is committed anyway, which is why
  bots reconcile unresolved intents at start.
* **Fire-and-forget state writes** (trailing high-water marks, halt flags) use
  ``save_state_nowait``: they must not block a tick, so the caller keeps its own pending copy
  and retries on ``trio.WouldBlock``. Counted refusals (``record_refusals_nowait``) go the
  same way: a refused order is no reason to wait for a disk.
* **The worker thread gets the GIL back promptly.** Every SQLite statement releases the GIL
  and takes it back (about ten times for a bot's load). A thread that wants the GIL waits the
  switch interval (5 ms by default) before it asks the holder to let go, and each time the
  Trio thread lets go by itself (its I/O poll, once per scheduler round) and takes it straight
  back, that wait starts over: with a busy loop, ten GIL round trips in the worker took 29 ms
  at the median and up to 350 ms. While a journal runs the interval is at most
  ``GIL_SWITCH_INTERVAL_S`` (3 ms median, 24 ms at most, same test), and the previous value
  comes back when the last journal stops. It costs nothing while no other thread waits for
  the GIL.
* **Stopping flushes.** When the actor is cancelled it commits what is already queued (shielded,
  within ``CLOSE_GRACE_S``), then closes the connection. A request it could not commit is
  answered with ``JournalError`` rather than a reply that never comes. The inbox stays open, so
  the same ``Journal`` can be run again by a supervisor restart; requests sent while it is down
  wait for that.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

import attrs
import outcome
import trio
from loguru import logger

from actors.errors import FieldValueError, JournalError
from actors.journal.base import StoreBase
from actors.journal.records import (
    WRITE_OPS,
    BotRecord,
    FillRecord,
    Op,
    OrderIntent,
    OrderRecord,
    RefusalRecord,
)
from actors.journal.store import JournalStore, WriterLock
from actors.schema import env_var_name

INBOX_SIZE = 256
MAX_BATCH = 512
CLOSE_GRACE_S = 5.0
GIL_SWITCH_INTERVAL_S = 0.0001


class _SwitchInterval:
    """``sys.setswitchinterval`` at most ``GIL_SWITCH_INTERVAL_S`` while any journal runs, in
    any Trio run of the process (see the module docstring)."""

    lock = threading.Lock()
    users = 0
    previous = 0.0

    @classmethod
    def shorten(cls) -> None:
        with cls.lock:
            if cls.users == 0:
                cls.previous = sys.getswitchinterval()
                sys.setswitchinterval(min(cls.previous, GIL_SWITCH_INTERVAL_S))
            cls.users += 1

    @classmethod
    def restore(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users == 0:
                sys.setswitchinterval(cls.previous)


def _postgres_url(_inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """A PostgreSQL URL without a password (the value is not echoed: it may hold one)."""
    if value is None:
        return
    if not value.startswith(("postgresql://", "postgres://")):
        raise FieldValueError("must be a URL starting with postgresql:// (value not shown)")
    from actors.journal.postgres import url_password

    try:
        has_password = url_password(value)
    except ValueError as exc:
        raise FieldValueError(f"{exc} (value not shown)") from None
    if has_password:
        raise FieldValueError(
            "must not contain a password: name the variable holding it in password_env"
            " (value not shown)"
        )


@attrs.frozen
class JournalConfig:
    path: str = "data/journal.sqlite3"
    fsync: bool = True  # PRAGMA synchronous=FULL: a fill survives power loss, not only kill -9
    # PostgreSQL instead of the SQLite file at ``path`` (no password here: see password_env)
    url: str | None = attrs.field(default=None, validator=_postgres_url)
    password_env: str | None = attrs.field(default=None, validator=env_var_name)

    @property
    def where(self) -> str:
        """The journal as logs and messages name it (never a password)."""
        if self.url is None:
            return self.path
        from actors.journal.postgres import describe_url

        return describe_url(self.url)


@attrs.frozen(slots=True)
class _Request:
    op: str
    args: tuple[Any, ...]
    reply: trio.MemorySendChannel[outcome.Outcome[Any]] | None  # None: fire-and-forget


@attrs.frozen(slots=True)
class JournalStatistics:
    running: bool
    schema_version: int
    writes: int  # write operations committed
    reads: int
    commits: int  # transactions (one per batch)
    errors: int  # operations answered with an error
    dropped_nowait_errors: int  # fire-and-forget writes that failed (logged)
    last_write_latency_s: float | None  # from batch start to commit, on the Trio clock
    max_write_latency_s: float | None
    last_batch_size: int
    queued: int


@attrs.define(eq=False)
class Journal:
    """The journal actor. Construct it, ``await nursery.start(journal.run)``, then hand it to bots.

    Requests may be sent before ``run`` starts; they wait in the inbox.
    """

    config: JournalConfig
    # PostgreSQL's password, resolved by the caller from ``config.password_env`` (None: libpq's
    # PGPASSWORD or ~/.pgpass, or no password)
    password: str | None = attrs.field(default=None, kw_only=True, repr=False)
    log: Any = attrs.field(init=False)
    _inbox_send: trio.MemorySendChannel[_Request] = attrs.field(init=False)
    _inbox: trio.MemoryReceiveChannel[_Request] = attrs.field(init=False)
    _limiter: trio.CapacityLimiter = attrs.field(init=False)
    _running: bool = attrs.field(default=False, init=False)
    _schema_version: int = attrs.field(default=0, init=False)
    _writes: int = attrs.field(default=0, init=False)
    _reads: int = attrs.field(default=0, init=False)
    _commits: int = attrs.field(default=0, init=False)
    _errors: int = attrs.field(default=0, init=False)
    _nowait_errors: int = attrs.field(default=0, init=False)
    _last_latency_s: float | None = attrs.field(default=None, init=False)
    _max_latency_s: float | None = attrs.field(default=None, init=False)
    _last_batch: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self.log = logger.bind(actor="journal", path=self.config.where)
        self._inbox_send, self._inbox = trio.open_memory_channel[_Request](INBOX_SIZE)
        self._limiter = trio.CapacityLimiter(1)

    # --- the actor ------------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[Journal] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._running:
            raise RuntimeError("this Journal is already running")
        store = self._make_store()
        lock = WriterLock(self.config.path)
        batch: list[_Request] = []
        _SwitchInterval.shorten()
        try:
            if self.config.url is None and self.config.path != ":memory:":
                await self._in_thread(lock.acquire)
            await self._in_thread(store.open)
            self._running = True
            self._schema_version = await self._in_thread(store.schema_version)
            self.log.info(
                "journal opened", schema_version=self._schema_version, fsync=self.config.fsync
            )
            task_status.started(self)
            while True:
                batch = [await self._inbox.receive()]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._inbox.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._run_batch(store, batch)
                batch = []
        finally:
            try:
                self._running = False
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_GRACE_S):
                    await self._drain_on_stop(store)
                self._fail_pending(batch)
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_GRACE_S):
                    await self._in_thread(store.close)
                    self.log.info("journal closed", writes=self._writes, commits=self._commits)
                lock.release()
            finally:
                _SwitchInterval.restore()

    def _make_store(self) -> StoreBase:
        if self.config.url is None:
            return JournalStore(self.config.path, fsync=self.config.fsync)
        from actors.journal.postgres import PostgresJournalStore

        return PostgresJournalStore(
            self.config.url, fsync=self.config.fsync, password=self.password
        )

    async def _drain_on_stop(self, store: StoreBase) -> None:
        """Commit what is already queued (fire-and-forget state writes included) before closing:
        a clean shutdown flushes the journal."""
        if store.db_open:
            pending = self._take_queued([])
            if pending:
                await self._run_batch(store, pending)

    async def _run_batch(self, store: StoreBase, batch: Sequence[_Request]) -> None:
        ops: list[Op] = [(request.op, request.args) for request in batch]
        started_at = trio.current_time()
        # Shielded: the thread finishes the transaction anyway (never abandoned), so let the
        # replies go out too; a cancellation lands at the next receive instead.
        with trio.CancelScope(shield=True):
            results = await self._in_thread(store.run_batch, ops)
        latency_s = trio.current_time() - started_at
        self._commits += 1
        self._last_batch = len(batch)
        writes = sum(1 for request in batch if request.op in WRITE_OPS)
        if writes:
            self._last_latency_s = latency_s
            self._max_latency_s = max(self._max_latency_s or 0.0, latency_s)
        for request, result in zip(batch, results, strict=True):
            if isinstance(result, outcome.Error):
                self._errors += 1
            elif request.op in WRITE_OPS:
                self._writes += 1
            else:
                self._reads += 1
            if request.reply is None:
                if isinstance(result, outcome.Error):
                    self._nowait_errors += 1
                    self.log.error("journal write failed", op=request.op, error=str(result.error))
                continue
            with request.reply:
                try:
                    request.reply.send_nowait(result)
                except (trio.BrokenResourceError, trio.WouldBlock):
                    pass  # caller gone (cancelled while waiting); its write is committed anyway

    def _take_queued(self, into: list[_Request]) -> list[_Request]:
        while True:
            try:
                into.append(self._inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return into

    def _fail_pending(self, batch: Sequence[_Request]) -> None:
        """Close every waiting caller's reply channel so it gets JournalError, not a hang."""
        for request in self._take_queued(list(batch)):
            if request.reply is not None:
                request.reply.close()

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    # --- requests -------------------------------------------------------------------------------

    async def _request(self, op: str, *args: Any) -> Any:
        reply_send, reply_receive = trio.open_memory_channel[outcome.Outcome[Any]](1)
        with reply_receive:
            try:
                await self._inbox_send.send(_Request(op, args, reply_send))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise JournalError("the journal is not running") from exc
            try:
                result = await reply_receive.receive()
            except trio.EndOfChannel:
                raise JournalError(f"the journal stopped before confirming {op}") from None
        return result.unwrap()

    # Every write takes the writer's ``owner_epoch`` (see the module docstring); a write the
    # store fences off raises ``FencedWriteError`` (a JournalError).

    async def load_bot(
        self, bot_id: str, *, initial_quote: Decimal, now_ts: float, owner_epoch: int = 0
    ) -> BotRecord:
        """Register the bot (first start fixes its starting balance), claim it at
        ``owner_epoch`` and read back its history."""
        return cast(
            BotRecord,
            await self._request("load_bot", bot_id, initial_quote, now_ts, owner_epoch),
        )

    async def claim(self, bot_id: str, *, owner_epoch: int) -> None:
        """Fence off every owner older than ``owner_epoch`` from the commit on."""
        await self._request("claim", bot_id, owner_epoch)

    async def owner_epoch(self, bot_id: str) -> int | None:
        """The highest epoch that wrote or claimed the bot (None: never written)."""
        return cast("int | None", await self._request("owner_epoch", bot_id))

    async def record_intent(self, intent: OrderIntent, *, owner_epoch: int = 0) -> None:
        """Durable before it returns; a duplicate client order id raises JournalError."""
        await self._request("record_intent", intent, owner_epoch)

    async def record_fill(
        self, fill: FillRecord, *, order_status: str = "filled", owner_epoch: int = 0
    ) -> None:
        await self._request("record_fill", fill, order_status, owner_epoch)

    async def record_status(
        self, client_id: str, status: str, *, reason: str, now_ts: float, owner_epoch: int = 0
    ) -> None:
        await self._request("record_status", client_id, status, reason, now_ts, owner_epoch)

    async def save_state(
        self, bot_id: str, key: str, value: str | None, *, now_ts: float, owner_epoch: int = 0
    ) -> None:
        """``value=None`` deletes the key."""
        await self._request("save_state", bot_id, key, value, now_ts, owner_epoch)

    def save_state_nowait(
        self, bot_id: str, key: str, value: str | None, *, now_ts: float, owner_epoch: int = 0
    ) -> None:
        """Queue a state write without waiting for it; raises ``trio.WouldBlock`` when the inbox
        is full (keep the value and retry later) and JournalError when the journal is gone."""
        self._send_nowait("save_state", (bot_id, key, value, now_ts, owner_epoch))

    def record_refusals_nowait(
        self, refusals: Sequence[RefusalRecord], *, owner_epoch: int = 0
    ) -> None:
        """Queue counted refusals without waiting, like ``save_state_nowait``: raises
        ``trio.WouldBlock`` when the inbox is full (keep them and retry later)."""
        self._send_nowait("record_refusals", (tuple(refusals), owner_epoch))

    def _send_nowait(self, op: str, args: tuple[Any, ...]) -> None:
        try:
            self._inbox_send.send_nowait(_Request(op, args, None))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise JournalError("the journal is not running") from exc

    async def record_refusals(
        self, refusals: Sequence[RefusalRecord], *, owner_epoch: int = 0
    ) -> None:
        await self._request("record_refusals", tuple(refusals), owner_epoch)

    async def refusals(self, bot_id: str) -> list[RefusalRecord]:
        return cast(list[RefusalRecord], await self._request("refusals", bot_id))

    async def orders(self, bot_id: str) -> list[OrderRecord]:
        return cast(list[OrderRecord], await self._request("orders", bot_id))

    async def load_state(self, bot_id: str) -> dict[str, str]:
        """The saved state of ``bot_id`` (or of any other owner of state rows, e.g. an
        account's ``account:NAME``)."""
        return cast(dict[str, str], await self._request("state", bot_id))

    async def fills(self, bot_id: str) -> list[FillRecord]:
        return cast(list[FillRecord], await self._request("fills", bot_id))

    async def flush(self) -> None:
        """Return once everything queued before this call is committed (the inbox is FIFO)."""
        await self._request("barrier")

    def statistics(self) -> JournalStatistics:
        return JournalStatistics(
            running=self._running,
            schema_version=self._schema_version,
            writes=self._writes,
            reads=self._reads,
            commits=self._commits,
            errors=self._errors,
            dropped_nowait_errors=self._nowait_errors,
            last_write_latency_s=self._last_latency_s,
            max_write_latency_s=self._max_latency_s,
            last_batch_size=self._last_batch,
            queued=self._inbox.statistics().current_buffer_used,
        )
