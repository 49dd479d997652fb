"""The SQLite journal's own parts: its file, schema versions and writer lock (the rules both
backends share are tested on both in tests/journal/)."""

from __future__ import annotations

import sqlite3

import attrs
import pytest
import trio

from actors.errors import JournalError
from actors.journal import Journal
from actors.journal.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    JournalStore,
    OrderIntent,
    RefusalRecord,
)
from supervisor.config import JournalConfig
from tests.bots.helpers import T0, D, running_journal


def intent(
    seq: int, side: str = "buy", size: str = "1", order_type: str = "market", price=None, bot="b1"
):
    return OrderIntent(
        client_id=f"{bot}-{seq}",
        bot_id=bot,
        seq=seq,
        symbol="BTC/USDT",
        side=side,  # type: ignore[arg-type]
        order_type=order_type,  # type: ignore[arg-type]
        size=D(size),
        price=None if price is None else D(price),
        tag="test",
        position_id=None,
        created_ts=T0,
    )


def test_schema_version_wal_and_sync_mode(tmp_path):
    for fsync, expected in [(True, 2), (False, 1)]:  # FULL = 2, NORMAL = 1
        s = JournalStore(tmp_path / f"{fsync}.sqlite3", fsync=fsync)
        s.open()
        try:
            assert s.schema_version() == SCHEMA_VERSION == 4
            assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert s.db.execute("PRAGMA synchronous").fetchone()[0] == expected
        finally:
            s.close()
    again = JournalStore(tmp_path / "True.sqlite3")
    again.open()  # reopening migrates nothing and keeps the version
    assert again.schema_version() == SCHEMA_VERSION
    again.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer than this program"):
        JournalStore(path).open()


def test_client_id_format_is_enforced():
    with pytest.raises(ValueError, match="client order id"):
        intent(1, bot="x" * 30 + "-long")  # 30 + 5 + "-1" = 37 chars
    with pytest.raises(ValueError, match="client order id"):
        intent(1, bot="bad id")


def test_a_version_2_journal_is_migrated_and_its_fills_kept(tmp_path):
    path = tmp_path / "v2.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:2]:
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version=2")
    db.execute("INSERT INTO bots VALUES ('b1', '1000', ?)", (T0,))
    db.execute(
        """INSERT INTO orders (client_id, bot_id, seq, symbol, side, order_type, size, status,
               created_ts, updated_ts)
           VALUES ('b1-1', 'b1', 1, 'BTC/USDT', 'buy', 'market', '1', 'filled', ?, ?)""",
        (T0, T0),
    )
    db.execute(
        """INSERT INTO fills (client_id, bot_id, side, price, size, fee, ts)
           VALUES ('b1-1', 'b1', 'buy', '100', '1', '0.1', ?)""",
        (T0,),
    )
    db.close()
    store = JournalStore(path, fsync=False)
    store.open()
    try:
        assert store.schema_version() == SCHEMA_VERSION
        (old,) = store.fills("b1")
        assert (old.price, old.realized_pnl) == (D(100), None)  # unknown, not zero
        store.record_refusals([RefusalRecord("b1", "no_price", "", T0, T0, 1)])
        assert len(store.refusals("b1")) == 1
        # migration 4: the rows written before fencing count as the single daemon's epoch 0
        assert store.db.execute("SELECT owner_epoch FROM fills").fetchall() == [(0,)]
        assert store.owner_epoch("b1") == 0  # raised by the refusals just written
        store.save_state("b1", "k", "v", T0)
    finally:
        store.close()


async def test_refusals_are_written_without_waiting(tmp_path, thread_clock):
    row = RefusalRecord("b1", "rate_limit", "signal", T0, T0 + 1, 3)
    with trio.fail_after(10):
        async with running_journal(tmp_path / "j.sqlite3") as journal:
            journal.record_refusals_nowait([row])
            await journal.record_refusals([attrs.evolve(row, count=1)])
            assert await journal.refusals("b1") == [row, attrs.evolve(row, count=1)]
            assert journal.statistics().writes == 2


async def test_callers_get_an_error_not_a_hang_when_the_journal_stops(tmp_path, thread_clock):
    journal = Journal(JournalConfig(path=str(tmp_path / "j.sqlite3"), fsync=False))
    errors: list[JournalError] = []

    async def call() -> None:
        try:
            await journal.load_bot("b1", initial_quote=D(1), now_ts=T0)
        except JournalError as exc:
            errors.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()  # the request waits in the inbox
            with trio.CancelScope() as scope:
                scope.cancel(reason="journal stops before answering")
                await journal.run()
    assert [str(e) for e in errors] == ["the journal stopped before confirming load_bot"]
    assert not journal.statistics().running


async def test_a_second_writer_on_the_same_journal_is_refused(tmp_path, thread_clock):
    path = str(tmp_path / "j.sqlite3")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(Journal(JournalConfig(path=path, fsync=False)).run)
            with pytest.raises(JournalError, match="in use by another process"):
                await Journal(JournalConfig(path=path, fsync=False)).run()
            nursery.cancel_scope.cancel()
        # once the first writer has stopped, the journal can be opened again
        async with trio.open_nursery() as nursery:
            await nursery.start(Journal(JournalConfig(path=path, fsync=False)).run)
            nursery.cancel_scope.cancel()
