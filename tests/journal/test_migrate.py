"""SQLite -> PostgreSQL: every table copied, counted and checksummed; only into an empty
journal; and the migrated journal reads back what the file held."""

from __future__ import annotations

from pathlib import Path

import attrs
import psycopg
import pytest

from actors.errors import JournalError
from actors.journal.migrate import TABLES, sqlite_to_postgres, table_digest
from actors.journal.postgres import PostgresJournalStore
from actors.journal.store import JournalStore, RefusalRecord, WriterLock
from supervisor.cli import main
from tests.bots.helpers import T0, D
from tests.cli.journals import two_bots
from tests.journal.test_store import fill_of, intent


def a_journal(path: Path) -> Path:
    """Two bots with fills and refusals, one with an open order, state and a partial fill, one
    taken over at epoch 3: a row in every table."""
    two_bots(path)
    store = JournalStore(path, fsync=False)
    store.open()
    try:
        store.load_bot("b1", D("1000.10"), T0, owner_epoch=2)
        store.record_intent(intent(1, size="2", order_type="limit", price="99.5"), owner_epoch=2)
        part = attrs.evolve(fill_of(intent(1, size="1"), "99.5"), venue_fill_id="BTCUSDT:1")
        store.record_fill(part, "open", owner_epoch=2)
        store.claim("b1", 3)
        store.save_state("b1", "hwm:b1-1", "101.25", T0, owner_epoch=3)
        store.record_refusals(
            [RefusalRecord("b1", "stale_price", "x", T0, T0 + 1, 4)], owner_epoch=3
        )
    finally:
        store.close()
    return path


def everything(store) -> dict[str, list[tuple]]:
    return {
        table: sorted(
            (tuple(row) for row in store._execute(f"SELECT {', '.join(cols)} FROM {table}")),
            key=repr,
        )
        for table, cols, _identity in TABLES
    }


def test_every_row_is_copied_and_verified(tmp_path, pg_url):
    source = a_journal(tmp_path / "j.sqlite3")
    report = sqlite_to_postgres(source, pg_url)
    assert report.rows == {
        "bots": 4,
        "orders": 6,
        "fills": 6,
        "bot_state": 1,
        "refusals": 5,
        "owner_epochs": 4,
    }
    sqlite, pg = JournalStore(source), PostgresJournalStore(pg_url)
    sqlite.open()
    pg.open()
    try:
        assert everything(pg) == everything(sqlite)
        for bot in ("btc-sma", "eth-rsi", "idle", "b1"):
            assert pg.load_bot(bot, D(1), T0, owner_epoch=3) == sqlite.load_bot(
                bot, D(1), T0, owner_epoch=3
            )
        assert pg.owner_epoch("b1") == 3
        # new rows follow the copied ids, and the fence came along
        pg.record_fill(fill_of(intent(1, size="1"), "99.6"), owner_epoch=3)
        assert [f.price for f in pg.fills("b1")] == [D("99.5"), D("99.6")]
        (fill_id,) = pg._execute("SELECT max(fill_id) FROM fills").fetchone()
        assert fill_id == 7
        with pytest.raises(JournalError, match="owned at epoch 3"):
            pg.save_state("b1", "k", "v", T0, owner_epoch=2)
    finally:
        sqlite.close()
        pg.close()


def test_only_into_an_empty_journal(tmp_path, pg_url):
    source = a_journal(tmp_path / "j.sqlite3")
    target = PostgresJournalStore(pg_url)
    target.open()
    target.register_bot("other", D(1), T0)
    target.close()
    with pytest.raises(JournalError, match=r"is not empty \(bots 1, owner_epochs 1 rows\)"):
        sqlite_to_postgres(source, pg_url)
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)


def test_a_journal_in_use_or_missing_is_refused(tmp_path, pg_url):
    source = a_journal(tmp_path / "j.sqlite3")
    lock = WriterLock(source)
    lock.acquire()
    try:
        with pytest.raises(JournalError, match="is in use by another process"):
            sqlite_to_postgres(source, pg_url)
    finally:
        lock.release()
    with pytest.raises(JournalError, match="no such journal file"):
        sqlite_to_postgres(tmp_path / "missing.sqlite3", pg_url)
    with pytest.raises(JournalError, match="must not contain a password"):
        sqlite_to_postgres(source, "postgresql://u:secret@127.0.0.1/test")


def test_the_command(tmp_path, pg_url, capsys):
    source = a_journal(tmp_path / "j.sqlite3")
    command = ["journal", "migrate", "--from", str(source), "--to", pg_url]
    assert main(command) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "copied bots 4  orders 6  fills 6  bot_state 1  refusals 5  owner_epochs 4"
    assert lines[1].startswith("checksum ")
    assert main(command) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "is not empty" in err
    assert main([*command, "--password-env", "BCF_TEST_UNSET_VARIABLE"]) == 2
    assert "BCF_TEST_UNSET_VARIABLE" in capsys.readouterr().err


def test_a_copy_that_does_not_verify_is_rolled_back(tmp_path, pg_url):
    """A trigger in the target rewrites one price on its way in (``99.5 / 1``: the same
    number in other digits): the checksum sees it and nothing is kept."""
    source = a_journal(tmp_path / "j.sqlite3")
    schema = PostgresJournalStore(pg_url)
    schema.open()  # creates the tables the trigger needs
    schema.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute(
            """CREATE FUNCTION shorten() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN NEW.price := (NEW.price::numeric / 1)::text; RETURN NEW; END $$"""
        )
        db.execute(
            """CREATE TRIGGER shorten BEFORE INSERT ON fills FOR EACH ROW
               WHEN (NEW.price = '99.5') EXECUTE FUNCTION shorten()"""
        )
    with pytest.raises(JournalError, match=r"fills differs between the source and postgresql"):
        sqlite_to_postgres(source, pg_url)
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT count(*) FROM bots").fetchone() == (0,)


def test_the_checksum_sees_text_not_numbers_and_ignores_order():
    rows = [("a", "9.50", 1, 1.5, None), ("b", "1E+2", 2, 0.1, "x")]
    assert table_digest(rows) == table_digest(list(reversed(rows)))
    assert table_digest(rows) != table_digest([("a", "9.5", 1, 1.5, None), rows[1]])
    assert table_digest(rows) != table_digest([("a", "9.50", 1.0, 1.5, None), rows[1]])
    assert table_digest(rows) != table_digest(rows[:1])
