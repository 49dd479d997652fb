"""The SQLite journal: schema, durability rules, replay, and the journal actor."""

from __future__ import annotations

import sqlite3

import pytest
import trio

from actors.bots.positions import Book
from actors.errors import JournalError
from actors.journal import Journal
from actors.journal.store import SCHEMA_VERSION, FillRecord, JournalStore, OrderIntent
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


def fill_of(order: OrderIntent, price: str, fee: str = "0", ts: float = T0) -> FillRecord:
    return FillRecord(
        order.client_id, order.bot_id, order.side, D(price), order.size, D(fee), None, ts
    )


@pytest.fixture
def store(tmp_path):
    s = JournalStore(tmp_path / "j.sqlite3", fsync=False)
    s.open()
    try:
        yield s
    finally:
        s.close()


def test_schema_version_wal_and_sync_mode(tmp_path):
    for fsync, expected in [(True, 2), (False, 1)]:  # FULL = 2, NORMAL = 1
        s = JournalStore(tmp_path / f"{fsync}.sqlite3", fsync=fsync)
        s.open()
        try:
            assert s.schema_version() == SCHEMA_VERSION == 2
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


def test_client_order_ids_are_unique(store):
    store.register_bot("b1", D(1000), T0)
    store.record_intent(intent(1))
    with pytest.raises(JournalError, match="duplicate client order id"):
        store.record_intent(intent(1))
    with pytest.raises(sqlite3.IntegrityError):  # the constraint itself, below our checks
        store.db.execute(
            "INSERT INTO orders (client_id, bot_id, seq, symbol, side, order_type, size, status,"
            " created_ts, updated_ts) VALUES ('b1-1', 'b1', 99, 'X/Y', 'buy', 'market', '1',"
            " 'intent', 0, 0)"
        )
    assert [o.intent.client_id for o in store.orders("b1")] == ["b1-1"]


def test_client_id_format_is_enforced():
    with pytest.raises(ValueError, match="client order id"):
        intent(1, bot="x" * 30 + "-long")  # 30 + 5 + "-1" = 37 chars
    with pytest.raises(ValueError, match="client order id"):
        intent(1, bot="bad id")


def test_a_failing_operation_in_a_batch_does_not_lose_the_others(store):
    store.register_bot("b1", D(1000), T0)
    results = store.run_batch(
        [
            ("record_intent", (intent(1),)),
            ("record_intent", (intent(1),)),
            ("record_intent", (intent(2),)),
        ]
    )
    assert [type(r).__name__ for r in results] == ["Value", "Error", "Value"]
    assert [o.intent.seq for o in store.orders("b1")] == [1, 2]


def test_fills_only_for_live_orders_and_never_beyond_size(store):
    store.register_bot("b1", D(1000), T0)
    order = intent(1, size="2")
    store.record_intent(order)
    with pytest.raises(JournalError, match="exceed"):
        store.record_fill(FillRecord("b1-1", "b1", "buy", D(100), D(3), D(0), None, T0))
    store.record_fill(fill_of(order, "100"))
    with pytest.raises(JournalError, match="already filled"):
        store.record_fill(fill_of(order, "100"))
    with pytest.raises(JournalError, match="unknown order"):
        store.record_fill(FillRecord("b1-9", "b1", "buy", D(1), D(1), D(0), None, T0))
    store.record_intent(intent(2))
    store.record_status("b1-2", "cancelled", "test", T0)
    with pytest.raises(JournalError, match="already cancelled"):
        store.record_fill(fill_of(intent(2), "100"))


def test_load_bot_derives_state_and_replay_matches(store):
    assert store.register_bot("b1", D(1000), T0) == D(1000)
    assert store.register_bot("b1", D(5), T0) == D(1000)  # the first start fixes the balance
    live = Book(quote=D(1000))
    orders = [intent(1, "buy", "2"), intent(2, "sell", "1"), intent(3, "buy", "1")]
    prices = ["100.25", "101.5", "99.75"]
    for order, price in zip(orders, prices, strict=True):
        store.record_intent(order)
        f = fill_of(order, price, fee="0.1")
        store.record_fill(f)
        live.apply_fill(f)
    store.record_intent(intent(4, "buy", "1", "limit", "90"))
    store.record_status("b1-4", "open", "resting", T0)
    store.record_intent(intent(5, "sell", "1"))  # journaled, never filled
    store.save_state("b1", "hwm:b1-1", "120", T0)
    store.save_state("b1", "paused", "1", T0)
    store.save_state("b1", "paused", None, T0)

    record = store.load_bot("b1", D(1000), T0)
    assert [o.intent.client_id for o in record.open_orders] == ["b1-4"]
    assert [o.intent.client_id for o in record.unresolved] == ["b1-5"]
    assert record.next_seq == 6
    assert record.orders_count == 5
    assert dict(record.state) == {"hwm:b1-1": "120"}
    replayed = Book.replay(record.initial_quote, record.fills)
    assert replayed == live
    assert (replayed.quote, replayed.base) == (
        D("1000") - D("200.5") - D("0.1") + D("101.5") - D("0.1") - D("99.75") - D("0.1"),
        D(2),
    )


async def test_journal_actor_round_trips_and_counts(tmp_path, thread_clock):
    with trio.fail_after(10):
        async with running_journal(tmp_path / "j.sqlite3") as journal:
            record = await journal.load_bot("b1", initial_quote=D(100), now_ts=T0)
            assert record.next_seq == 1
            await journal.record_intent(intent(1))
            await journal.record_fill(fill_of(intent(1), "50"))
            with pytest.raises(JournalError, match="duplicate"):
                await journal.record_intent(intent(1))
            journal.save_state_nowait("b1", "hwm:b1-1", "55", now_ts=T0)
            await journal.flush()
            stats = journal.statistics()
            assert stats.running
            assert stats.schema_version == SCHEMA_VERSION
            assert stats.writes == 4  # load_bot (registers), intent, fill, state
            assert stats.errors == 1
            assert stats.last_write_latency_s is not None
            assert stats.last_write_latency_s >= 0
            record = await journal.load_bot("b1", initial_quote=D(100), now_ts=T0)
            assert len(record.fills) == 1
            assert record.state["hwm:b1-1"] == "55"
        assert not journal.statistics().running


async def test_concurrent_writers_share_commits(tmp_path):
    """fsync on: real time (a slow disk must not let an autojump clock race to the deadline)."""

    async def writer(journal: Journal, bot: str) -> None:
        await journal.load_bot(bot, initial_quote=D(100), now_ts=T0)
        for seq in range(1, 21):
            await journal.record_intent(intent(seq, bot=bot))

    with trio.fail_after(20):
        async with running_journal(tmp_path / "j.sqlite3", fsync=True) as journal:
            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(writer, journal, f"w{i}")
            stats = journal.statistics()
            assert stats.writes == 10 * 21
            assert stats.commits < stats.writes  # group commit batched concurrent writers
    store = JournalStore(tmp_path / "j.sqlite3")
    store.open()
    assert sum(len(store.orders(f"w{i}")) for i in range(10)) == 200
    store.close()


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


async def test_queued_writes_are_committed_when_the_journal_stops(tmp_path, thread_clock):
    path = tmp_path / "j.sqlite3"
    with trio.fail_after(10):
        async with running_journal(path) as journal:
            await journal.load_bot("b1", initial_quote=D(1), now_ts=T0)
            for i in range(50):
                journal.save_state_nowait("b1", f"k{i}", str(i), now_ts=T0)
            # leaving the block cancels the journal with the writes still queued
    store = JournalStore(path)
    store.open()
    state = store.load_bot("b1", D(1), T0).state
    store.close()
    assert state == {f"k{i}": str(i) for i in range(50)}


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
