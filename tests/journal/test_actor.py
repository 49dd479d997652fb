"""The journal actor on both backends: round trips, group commit, flush on stop; and what only
PostgreSQL has (a lost connection, the daemon's config)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest
import trio

from actors.errors import JournalError
from actors.journal import Journal, JournalConfig
from actors.journal.postgres import PostgresJournalStore
from actors.journal.store import SCHEMA_VERSION
from supervisor.build import build_tree
from supervisor.cli import main
from supervisor.config import Config
from supervisor.config_loader import ConfigError, parse_config
from tests.bots.helpers import T0, D
from tests.journal.conftest import store_for
from tests.journal.test_store import fill_of, intent


@asynccontextmanager
async def running(config: JournalConfig, password: str | None = None) -> AsyncIterator[Journal]:
    journal = Journal(config, password=password)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        try:
            yield journal
        finally:
            nursery.cancel_scope.cancel(reason="test done with journal")


async def test_round_trips_and_counts(journal_config, thread_clock):
    with trio.fail_after(10):
        async with running(journal_config) as journal:
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
            assert stats.schema_version >= 1
            assert stats.writes == 4  # load_bot (registers), intent, fill, state
            assert stats.errors == 1
            assert stats.last_write_latency_s is not None
            record = await journal.load_bot("b1", initial_quote=D(100), now_ts=T0)
            assert len(record.fills) == 1
            assert record.state["hwm:b1-1"] == "55"
        assert not journal.statistics().running


async def test_concurrent_writers_share_commits(journal_config):
    """Real time (a slow disk must not let an autojump clock race to the deadline)."""

    async def writer(journal: Journal, bot: str) -> None:
        await journal.load_bot(bot, initial_quote=D(100), now_ts=T0)
        for seq in range(1, 21):
            await journal.record_intent(intent(seq, bot=bot))

    with trio.fail_after(20):
        async with running(journal_config) as journal:
            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(writer, journal, f"w{i}")
            stats = journal.statistics()
            assert stats.writes == 10 * 21
            assert stats.commits < stats.writes  # group commit batched concurrent writers
    store = store_for(journal_config)
    store.open()
    try:
        assert sum(len(store.orders(f"w{i}")) for i in range(10)) == 200
    finally:
        store.close()


async def test_queued_writes_are_committed_when_the_journal_stops(journal_config, thread_clock):
    with trio.fail_after(10):
        async with running(journal_config) as journal:
            await journal.load_bot("b1", initial_quote=D(1), now_ts=T0)
            for i in range(50):
                journal.save_state_nowait("b1", f"k{i}", str(i), now_ts=T0)
            # leaving the block cancels the journal with the writes still queued
    store = store_for(journal_config)
    store.open()
    try:
        assert store.state("b1") == {f"k{i}": str(i) for i in range(50)}
    finally:
        store.close()


# --- PostgreSQL only ----------------------------------------------------------------------


def test_a_lost_connection_fails_one_batch_then_reconnects(pg_url):
    store = PostgresJournalStore(pg_url, fsync=False)
    store.open()
    try:
        store.register_bot("b1", D(1), T0)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store.db.info.backend_pid,))
        lost = r"journal postgresql \S+: cannot begin a transaction"
        with pytest.raises(JournalError, match=lost):
            store.record_intent(intent(1))
        store.record_intent(intent(2))  # a new connection
        assert [o.intent.seq for o in store.orders("b1")] == [2]
    finally:
        store.close()


def test_a_newer_schema_is_refused(pg_url):
    store = PostgresJournalStore(pg_url)
    store.open()
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE journal_schema SET version = version + 1")
    with pytest.raises(JournalError, match="newer than this program"):
        PostgresJournalStore(pg_url).open()


def test_an_unreachable_server_is_a_clear_error():
    with pytest.raises(JournalError, match=r"cannot open journal postgresql 127.0.0.1:1/test"):
        PostgresJournalStore("postgresql://postgres@127.0.0.1:1/test").open()


def test_config_takes_a_url_never_a_password():
    config = parse_config('[journal]\nurl = "postgresql://bcf@db.example:5432/journal"\n')
    assert config.journal.url == "postgresql://bcf@db.example:5432/journal"
    assert config.journal.where == "postgresql db.example:5432/journal"
    with pytest.raises(ConfigError) as error:
        parse_config('[journal]\nurl = "postgresql://bcf:hunter2@db/j"\npassword_env = "x"\n')
    assert "hunter2" not in str(error.value.problems)
    assert list(error.value.problems) == [
        "journal.url: must not contain a password: name the variable holding it in"
        " password_env (value not shown)",
        "journal.password_env: must be the NAME of an environment variable (UPPER_CASE"
        " letters, digits, '_'), not a secret (value not shown)",
    ]
    with pytest.raises(ConfigError, match=r"journal.url: must be a URL starting with postgres"):
        parse_config('[journal]\nurl = "mysql://db/j"\n')


async def test_the_daemon_journal_uses_postgres_with_the_password_from_the_environment(
    pg_url, monkeypatch, thread_clock
):
    """build_tree resolves ``password_env`` (trust auth accepts any password, so this shows the
    path, and that a missing variable is a config error naming it)."""
    config = Config(journal=JournalConfig(url=pg_url, password_env="BCF_TEST_JOURNAL_PW"))
    monkeypatch.delenv("BCF_TEST_JOURNAL_PW", raising=False)
    with pytest.raises(ConfigError, match="BCF_TEST_JOURNAL_PW"):
        build_tree(config)
    monkeypatch.setenv("BCF_TEST_JOURNAL_PW", "not-needed-with-trust")
    journal = build_tree(config).journal
    assert journal.password == "not-needed-with-trust"
    assert "not-needed" not in repr(journal)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            await journal.load_bot("b1", initial_quote=D(7), now_ts=T0)
            nursery.cancel_scope.cancel()
    store = PostgresJournalStore(pg_url)
    store.open()
    try:
        assert store.schema_version() == 1
        assert store.load_bot("b1", D(1), T0).initial_quote == D(7)
    finally:
        store.close()
    assert SCHEMA_VERSION == 4  # SQLite's; PostgreSQL's version 1 is SQLite's version 4


def test_report_says_it_reads_sqlite_only(tmp_path, capsys):
    config = tmp_path / "bot.toml"
    config.write_text('[journal]\nurl = "postgresql://bcf@db.example:5432/journal"\n')
    assert main(["report", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"{config}: journal.url: report reads SQLite journals only; this journal is in"
        " postgresql db.example:5432/journal (query it with psql)\n"
    )
