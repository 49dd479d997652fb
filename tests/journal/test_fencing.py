"""Owner fencing: a bot's writes carry its owner's epoch; once a newer owner has written or
claimed the bot, an older owner's late write is refused, in its own transaction, on both
backends; and the epochs kept in every row prove that owners never interleaved."""

from __future__ import annotations

import threading

import psycopg
import pytest
import trio

from actors.errors import JournalError
from actors.journal import FencedWriteError, Journal, JournalConfig
from actors.journal.postgres import PostgresJournalStore
from actors.journal.store import RefusalRecord
from tests.bots.helpers import T0, D
from tests.journal.test_store import fill_of, intent

REFUSED = r"write for bot 'b1' at owner epoch {} refused: the bot is owned at epoch {}"


def epochs_in_write_order(store, bot_id: str) -> tuple[list[int], list[int]]:
    """The epochs of a bot's orders (by seq) and of its fills (in journal order)."""
    orders = store._execute(
        "SELECT owner_epoch FROM orders WHERE bot_id = ? ORDER BY seq", (bot_id,)
    ).fetchall()
    fills = store._execute(
        "SELECT owner_epoch FROM fills WHERE bot_id = ? ORDER BY fill_id", (bot_id,)
    ).fetchall()
    return [row[0] for row in orders], [row[0] for row in fills]


def test_the_single_daemon_writes_at_epoch_0(store):
    assert store.owner_epoch("b1") is None
    store.load_bot("b1", D(100), T0)
    store.record_intent(intent(1))
    assert store.owner_epoch("b1") == 0
    assert epochs_in_write_order(store, "b1") == ([0], [])


def test_every_kind_of_write_from_an_older_owner_is_refused(store):
    store.load_bot("b1", D(100), T0, owner_epoch=1)
    store.record_intent(intent(1), owner_epoch=1)
    store.load_bot("b2", D(100), T0)
    store.claim("b1", 3)
    late = [
        ("register_bot", ("b1", D(1), T0, 2)),
        ("load_bot", ("b1", D(1), T0, 2)),
        ("claim", ("b1", 2)),
        ("record_intent", (intent(2), 2)),
        ("record_fill", (fill_of(intent(1), "100"), "filled", 2)),
        ("record_status", ("b1-1", "cancelled", "late", T0, 2)),
        ("save_state", ("b1", "k", "v", T0, 2)),
        ("save_state", ("b1", "k", None, T0, 2)),
        ("record_refusals", ((RefusalRecord("b1", "rate_limit", "", T0, T0, 1),), 2)),
    ]
    results = store.run_batch([*late, ("record_intent", (intent(1, bot="b2"), 0))])
    assert len(results) == len(late) + 1
    for result in results[:-1]:
        with pytest.raises(FencedWriteError, match=REFUSED.format(2, 3)):
            result.unwrap()
    results[-1].unwrap()  # another bot's write in the same batch commits
    # nothing of the refused writes is in the journal
    assert [(o.intent.client_id, o.status) for o in store.orders("b1")] == [("b1-1", "intent")]
    assert store.fills("b1") == []
    assert store.state("b1") == {}
    assert store.refusals("b1") == []
    assert store.owner_epoch("b1") == 3
    # the owner at epoch 3 (or a later one) writes on
    store.record_fill(fill_of(intent(1), "100"), owner_epoch=3)
    store.save_state("b1", "k", "v", T0, owner_epoch=4)
    assert store.owner_epoch("b1") == 4
    with pytest.raises(FencedWriteError, match=REFUSED.format(3, 4)):
        store.save_state("b1", "k", "w", T0, owner_epoch=3)
    assert store.owner_epoch("b2") == 0  # one bot's fence is not another's


def test_an_epoch_must_be_a_non_negative_integer(store):
    for bad in (-1, True, 1.0, "2"):
        with pytest.raises(JournalError, match="owner epoch must be an integer >= 0"):
            store.claim("b1", bad)
    assert store.owner_epoch("b1") is None


def test_a_deposed_owners_late_writes_are_refused_and_the_journal_shows_it(open_store):
    """Two connections are two owners: the first trades at epoch 1, the second takes the bot
    over at epoch 2 (its load claims it) while the first still holds an open order."""
    old, new = open_store(), open_store()
    old.load_bot("b1", D(1000), T0, owner_epoch=1)
    for seq in (1, 2):
        old.record_intent(intent(seq), owner_epoch=1)
        old.record_fill(fill_of(intent(seq), "100"), owner_epoch=1)
    old.record_intent(intent(3), owner_epoch=1)

    record = new.load_bot("b1", D(1000), T0, owner_epoch=2)
    assert [o.intent.client_id for o in record.unresolved] == ["b1-3"]
    with pytest.raises(FencedWriteError, match=REFUSED.format(1, 2)):
        old.record_fill(fill_of(intent(3), "101"), owner_epoch=1)
    with pytest.raises(FencedWriteError, match=REFUSED.format(1, 2)):
        old.record_intent(intent(4), owner_epoch=1)
    new.record_status("b1-3", "cancelled", "not found at the venue", T0, owner_epoch=2)
    new.record_intent(intent(4), owner_epoch=2)
    new.record_fill(fill_of(intent(4), "99"), owner_epoch=2)

    orders, fills = epochs_in_write_order(new, "b1")
    assert (orders, fills) == ([1, 1, 1, 2], [1, 1, 2])
    assert orders == sorted(orders)
    assert fills == sorted(fills)
    (updated,) = new._execute(
        "SELECT updated_epoch FROM orders WHERE client_id = 'b1-3'"
    ).fetchone()
    assert updated == 2  # the cancel was the new owner's


def test_a_claim_waits_for_the_old_owners_transaction_in_flight(pg_url):
    """PostgreSQL, two nodes at once: the old owner's write has passed the fence but not
    committed; the new owner's claim waits on the bot's row and lands after it, so no write
    below the new epoch can commit once the claim has."""
    old = PostgresJournalStore(pg_url, fsync=False)
    new = PostgresJournalStore(pg_url, fsync=False)
    old.open()
    new.open()
    try:
        old.load_bot("b1", D(1000), T0, owner_epoch=1)
        old._statements("BEGIN")
        old._op_record_intent(intent(1), 1)  # fenced at epoch 1, row locked, not committed
        claimed = threading.Event()
        errors: list[BaseException] = []

        def claim() -> None:
            try:
                new.claim("b1", 2)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)
            claimed.set()

        thread = threading.Thread(target=claim)
        thread.start()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            for _ in range(500):  # until the server shows the claim waiting on the row lock
                waiting = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type"
                    " = 'Lock'",
                    (new.db.info.backend_pid,),
                ).fetchone()
                if waiting == (1,):
                    break
                claimed.wait(0.01)
            else:
                pytest.fail("the claim never waited for the old owner's transaction")
        assert not claimed.is_set()
        old._execute("COMMIT")
        thread.join(10)
        assert claimed.is_set()
        assert errors == []
        assert [o.intent.seq for o in new.orders("b1")] == [1]  # the write in flight counted
        with pytest.raises(FencedWriteError, match=REFUSED.format(1, 2)):
            old.record_intent(intent(2), owner_epoch=1)
    finally:
        old.close()
        new.close()


async def test_two_journal_actors_one_bot_the_deposed_one_is_refused(pg_url, thread_clock):
    """Two nodes' journal actors on one PostgreSQL journal: the bot's writer passes its lease
    epoch; the deposed owner's late writes answer FencedWriteError."""
    config = JournalConfig(url=pg_url, fsync=False)
    first, second = Journal(config), Journal(config)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run)
            await nursery.start(second.run)
            await first.load_bot("b1", initial_quote=D(100), now_ts=T0, owner_epoch=5)
            await first.record_intent(intent(1), owner_epoch=5)
            await second.load_bot("b1", initial_quote=D(100), now_ts=T0, owner_epoch=6)
            with pytest.raises(FencedWriteError, match=REFUSED.format(5, 6)):
                await first.record_fill(fill_of(intent(1), "100"), owner_epoch=5)
            first.save_state_nowait("b1", "k", "late", now_ts=T0, owner_epoch=5)
            await first.flush()
            assert first.statistics().dropped_nowait_errors == 1
            await second.record_fill(fill_of(intent(1), "100"), owner_epoch=6)
            assert await second.owner_epoch("b1") == 6
            assert await second.load_state("b1") == {}
            nursery.cancel_scope.cancel()
