"""``python run.py`` with no config (the embedded default) stops quietly on Ctrl-C and SIGTERM:
its local exchanges outlive the daemon's own feeds, so no connection is cut under a bot and
nothing is logged at WARNING or above. Run as a user runs it: human log format, no ``--log-json``,
in its own working directory (the journal goes to ``data/default/`` under it)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from tests.e2e.helpers import Record, log_is, open_daemon


def is_streaming(record: Record) -> bool:
    return record["message"] == "exchange state" and record["extra"].get("to_state") == "streaming"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_stops_the_embedded_default_with_exit_0_and_no_warning(
    tmp_path: Path, signum: signal.Signals
) -> None:
    with trio.fail_after(30):
        async with open_daemon("--http-port", "0", cwd=tmp_path, json_logs=False) as daemon:
            await daemon.wait_log(log_is("daemon running"))
            streaming = await daemon.wait_logs(is_streaming, 2)
            assert {r["extra"]["exchange"] for r in streaming} == {"binance", "kraken"}
            await daemon.wait_logs(log_is("bot started"), 3)
            code = await daemon.stop(signum)
    assert code == 0, daemon.tail()
    loud = [f"{r['level']['name']} {r['message']} {r['extra']}" for r in daemon.records]
    assert [
        line for r, line in zip(daemon.records, loud, strict=True) if r["level"]["no"] >= 30
    ] == []
    assert daemon.stray_stderr == []  # no traceback, no unformatted output
    assert daemon.logged(log_is("signal received: shutting down", signal=signum.name))
    assert daemon.logged(log_is("journal closed"))
    assert daemon.logged(log_is("daemon stopped"))
    assert_closed_cleanly(tmp_path / "data" / "default" / "journal.sqlite3")


def assert_closed_cleanly(journal: Path) -> None:
    assert journal.exists()
    assert not Path(f"{journal}-wal").exists()  # the WAL was checkpointed away on close
