"""The real PostgreSQL the tests use, and a fresh schema per test.

The server is at ``BCF_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``,
trust authentication); ``.ci/run`` makes sure one answers there, starting one if needed. Tests
never share state: each gets its own schema (``CREATE SCHEMA``, the URL's ``search_path``,
``DROP SCHEMA ... CASCADE`` afterwards). An unreachable server fails the tests that need it,
loudly, with how to start one: it never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

HOW_TO_START = """\
Start one, e.g. (Debian: apt-get install postgresql):
    initdb -D /tmp/bcf-pg -U postgres --auth=trust
    pg_ctl -D /tmp/bcf-pg -o "-p 5432 -k /tmp" -l /tmp/bcf-pg.log start
    createdb -h 127.0.0.1 -U postgres test
or run .ci/run (it starts one on a free port when none answers), or point
BCF_TEST_POSTGRES_URL at a server where this user may create schemas."""


def server_url() -> str:
    return os.environ.get("BCF_TEST_POSTGRES_URL") or DEFAULT_URL


def require_server() -> str:
    """The server's URL, or a failed test saying how to start one."""
    url = server_url()
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        problem = str(exc).strip()
    else:
        return url
    pytest.fail(
        f"PostgreSQL for the tests is not reachable at BCF_TEST_POSTGRES_URL={url}: {problem}\n"
        f"{HOW_TO_START}",
        pytrace=False,
    )


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (libpq ``options``)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new empty schema for one test; yields the URL that uses it, drops it afterwards."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(f'DROP SCHEMA "{schema}" CASCADE')
