"""``python run.py`` with no config (the embedded default) stops quietly on Ctrl-C and SIGTERM:
its local exchanges outlive the daemon's own feeds, so no connection is cut under a bot and
nothing is logged at WARNING or above. Run as a user runs it: human log format, no ``--log-json``,
in its own working directory (the journal goes to ``data/default/`` under it).

And the default trades for a long time the way a demo should: in-process, on a virtual clock
(``tests/clocks.py``: it never jumps while the journal's thread works), the same local exchanges
and the same seeded paths, for several simulated minutes.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.config import HttpConfig
from supervisor.daemon import metrics_registry
from supervisor.embedded import open_embedded_default
from supervisor.system import open_supervisor
from tests.clocks import new_thread_clock
from tests.e2e.helpers import Record, log_is, open_daemon

SIMULATED_S = 180.0


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


async def test_log_level_warning_leaves_the_status_view_and_its_http_address(
    tmp_path: Path,
) -> None:
    """``--log-level WARNING`` is the clean status view the user guide suggests: no log line on
    stderr, and stdout still says where HTTP listens (a port ``--http-port 0`` picked is told
    nowhere else), at once and in every status block. Stopped (SIGTERM) once the first block
    (5 s in) is out, rather than after a ``--duration`` long enough for it on a loaded machine."""
    with trio.fail_after(30):
        async with open_daemon(
            "--log-level", "WARNING", "--http-port", "0", cwd=tmp_path, json_logs=False
        ) as daemon:
            await daemon.wait_stdout(lambda line: line.startswith("--- botcriptofy"))
            code = await daemon.stop(signal.SIGTERM)
    assert code == 0, daemon.stdout
    assert (daemon.records, daemon.stray_stderr) == ([], [])
    banner = re.fullmatch(
        r"botcriptofy: HTTP on (http://127\.0\.0\.1:(\d+)) \(/health, /metrics\);"
        r" status every 5s",
        daemon.stdout[0],
    )
    assert banner is not None, daemon.stdout
    assert int(banner[2]) > 0
    headers = [line for line in daemon.stdout if line.startswith("--- botcriptofy")]
    assert headers, daemon.stdout
    assert all(line.endswith(f"  {banner[1]} ---") for line in headers)
    assert {line.split()[0] for line in daemon.stdout[1:] if not line.startswith("---")} == {
        "binance",
        "kraken",
        "btc-sma",
        "eth-rsi",
        "kraken-sma",
    }


def assert_closed_cleanly(journal: Path) -> None:
    assert journal.exists()
    assert not Path(f"{journal}-wal").exists()  # the WAL was checkpointed away on close


@attrs.frozen
class DefaultRun:
    """What the embedded default left after ``SIMULATED_S`` on the virtual clock."""

    snapshots: dict[str, dict[str, Any]]  # System.bot_snapshots()
    metrics: str  # the daemon's /metrics exposition


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> DefaultRun:
    """The embedded default in-process for a few simulated minutes (one run for the tests that
    read it: it costs seconds of real time)."""
    journal = str(tmp_path_factory.mktemp("default") / "journal.sqlite3")

    async def run_default() -> DefaultRun:
        async with open_embedded_default(journal_path=journal) as config:
            config = attrs.evolve(config, http=HttpConfig(enabled=False))  # no port to bind
            async with open_supervisor(config) as system:
                await trio.sleep(SIMULATED_S)
                metrics = generate_latest(metrics_registry(system)).decode()
                return DefaultRun(system.bot_snapshots(), metrics)

    # Jumps as soon as the loop is idle: every peer but the journal's thread (which the clock
    # waits for) is a task of this loop on loopback sockets, so an idle loop waits on a timer.
    return trio.run(run_default, clock=new_thread_clock(autojump_threshold=0.0))


def test_the_default_bots_trade_for_minutes_without_hitting_their_rate_limit(
    default_run: DefaultRun,
) -> None:
    """Each bot trades, none is refused by ``max_orders_per_minute``: the default's strategies
    and limits fit the simulator's prices. (With 4 Hz ticks and averages of a few ticks, two
    of the three bots were rate-limited within a minute and then only showed refusals.)"""
    outcome = default_run.snapshots
    assert set(outcome) == {"btc-sma", "eth-rsi", "kraken-sma"}
    for bot_id, snap in outcome.items():
        assert snap["orders"] >= 2, (bot_id, snap)  # it trades: an entry and its exit at least
        assert "rate_limit" not in snap["rejections"], (bot_id, snap["rejections"])


def test_the_defaults_metrics_label_money_with_its_quote_and_time_decisions(
    default_run: DefaultRun,
) -> None:
    """The default mixes USDT and USD books: every bot series says which, the balance and
    equity gauges add up, every ticker's decision was timed, and the process is measured."""
    samples = {
        (sample.name, sample.labels["bot"]): sample
        for family in text_string_to_metric_families(default_run.metrics)
        for sample in family.samples
        if sample.name.startswith("botcriptofy_bot_")
        and "reason" not in sample.labels
        and "le" not in sample.labels
        and "state" not in sample.labels
    }
    labels = {bot: sample.labels for (name, bot), sample in samples.items()}
    assert labels == {
        "btc-sma": {"bot": "btc-sma", "exchange": "binance", "symbol": "BTC/USDT", "quote": "USDT"},
        "eth-rsi": {"bot": "eth-rsi", "exchange": "binance", "symbol": "ETH/USDT", "quote": "USDT"},
        "kraken-sma": {
            "bot": "kraken-sma",
            "exchange": "kraken",
            "symbol": "BTC/USD",
            "quote": "USD",
        },
    }
    for bot in labels:
        balance = samples[("botcriptofy_bot_quote_balance", bot)].value
        value = samples[("botcriptofy_bot_position_value", bot)].value
        assert samples[("botcriptofy_bot_equity", bot)].value == pytest.approx(balance + value)
        decided = samples[("botcriptofy_bot_decision_latency_seconds_count", bot)].value
        ticks = samples[("botcriptofy_bot_ticks_total", bot)].value
        assert 0 < decided <= ticks
    families = {family.name for family in text_string_to_metric_families(default_run.metrics)}
    assert {
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "python_info",
        "botcriptofy_trio_tasks",
    } <= families
