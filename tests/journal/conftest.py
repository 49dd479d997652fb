"""Fixtures: a real PostgreSQL schema per test, and the journal store on either backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.journal import JournalConfig, StoreBase
from actors.journal.postgres import PostgresJournalStore
from actors.journal.store import JournalStore
from tests.postgres import fresh_schema, require_server

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    return require_server()


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A URL whose sessions use a fresh schema, dropped after the test."""
    with fresh_schema(postgres_server) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def journal_config(request: pytest.FixtureRequest, tmp_path: Path) -> JournalConfig:
    """One journal, SQLite or PostgreSQL: the config the Journal actor runs it from."""
    if request.param == "sqlite":
        return JournalConfig(path=str(tmp_path / "j.sqlite3"), fsync=False)
    return JournalConfig(url=request.getfixturevalue("pg_url"), fsync=False)


def store_for(config: JournalConfig) -> StoreBase:
    if config.url is None:
        return JournalStore(config.path, fsync=config.fsync)
    return PostgresJournalStore(config.url, fsync=config.fsync)


@pytest.fixture
def open_store(journal_config: JournalConfig) -> Iterator[Callable[[], StoreBase]]:
    """Opens connections to the test's journal (several: several writers); closes them after."""
    opened: list[StoreBase] = []

    def make() -> StoreBase:
        store = store_for(journal_config)
        store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], StoreBase]) -> StoreBase:
    return open_store()
