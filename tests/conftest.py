from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest
from loguru import logger
from trio.testing import MockClock

from tests.clocks import new_thread_clock

_PYCACHE_PREFIX_ENV = "PYTHONPYCACHEPREFIX"


def pytest_configure(config: pytest.Config) -> None:
    """When bytecode writing is off (``PYTHONDONTWRITEBYTECODE``), every Python subprocess a
    test starts (``run.py``, the CLI: some sixty in a run) would compile the whole project again
    before doing anything, a quarter of a second of CPU each. Its subprocesses get a bytecode
    cache in a temporary directory instead (``PYTHONPYCACHEPREFIX``: nothing is written to the
    tree), removed at the end; what they run is the same code. This process is not affected."""
    if sys.dont_write_bytecode and _PYCACHE_PREFIX_ENV not in os.environ:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ[_PYCACHE_PREFIX_ENV] = tempfile.mkdtemp(prefix="botcriptofy-pycache-")
        config.add_cleanup(_remove_pycache_prefix)


def _remove_pycache_prefix() -> None:
    shutil.rmtree(os.environ.pop(_PYCACHE_PREFIX_ENV), ignore_errors=True)
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


@pytest.fixture
def thread_clock() -> MockClock:
    """The autojump clock for tests whose peer is a worker thread (see ``tests/clocks.py``)."""
    return new_thread_clock()


@pytest.fixture(autouse=True)
def _log_sinks_end_with_their_test() -> Iterator[None]:
    """A test that configures logging in-process (the CLI's ``main``: ``configure_logging``)
    leaves a sink on that test's captured stderr, which pytest closes after it. Every later
    log line then fails and loguru prints the failure with a traceback, synchronously, in the
    event loop of whatever test runs next: output noise, and enough of a stall to time out a
    test with 0.2 s Redis deadlines. So a test that changed the sinks gets the default back
    (stderr) when it ends. (loguru lists its sinks in no public attribute.)"""
    before = set(logger._core.handlers)  # type: ignore[attr-defined]
    yield
    if set(logger._core.handlers) != before:  # type: ignore[attr-defined]
        logger.remove()
        logger.add(sys.stderr)
