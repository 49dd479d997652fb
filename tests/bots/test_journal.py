"""The SQLite journal: schema, durability rules, replay, and the journal actor."""

from __future__ import annotations

import sqlite3

import attrs
import pytest
import trio

from actors.bots.positions import Book
from actors.errors import JournalError
from actors.journal import Journal
from actors.journal.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    FillRecord,
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
            assert s.schema_version() == SCHEMA_VERSION == 3
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


def test_a_fill_keeps_the_pnl_it_realized(store):
    store.register_bot("b1", D(1000), T0)
    buy, sell = intent(1, size="2"), intent(2, "sell", size="2")
    store.record_intent(buy)
    store.record_fill(attrs.evolve(fill_of(buy, "100"), realized_pnl=D(0)))
    store.record_intent(sell)
    store.record_fill(attrs.evolve(fill_of(sell, "104.75"), realized_pnl=D("9.50")))
    assert [(f.side, f.realized_pnl) for f in store.fills("b1")] == [
        ("buy", D(0)),
        ("sell", D("9.50")),  # the exact text: Decimals are TEXT
    ]
    assert [f.realized_pnl for f in store.load_bot("b1", D(1000), T0).fills] == [D(0), D("9.50")]


def test_refusals_are_rows_of_counts(store):
    rows = [
        RefusalRecord("b1", "rate_limit", "signal:golden_cross", T0, T0 + 59, 120),
        RefusalRecord("b1", "stale_price", "", T0 + 3, T0 + 3, 1),
        RefusalRecord("b2", "rate_limit", "", T0, T0, 2),
    ]
    store.record_refusals(rows)
    assert store.refusals("b1") == rows[:2]
    assert store.refusals("b2") == rows[2:]
    with pytest.raises(JournalError, match="CHECK"):  # a row counts at least one refusal
        store.record_refusals([RefusalRecord("b1", "rate_limit", "", T0, T0, 0)])


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
        assert store.schema_version() == 3
        (old,) = store.fills("b1")
        assert (old.price, old.realized_pnl) == (D(100), None)  # unknown, not zero
        store.record_refusals([RefusalRecord("b1", "no_price", "", T0, T0, 1)])
        assert len(store.refusals("b1")) == 1
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
