"""A bot whose strategy raises on every tick is restarted with backoff, then given up on alone:
it ends ``failed`` (alerted, unhealthy in ``/health`` with its last error) while the other bot
goes on trading and the daemon keeps running. Its traceback is logged once, then counted.

In process (``open_supervisor``, virtual time) and as the real daemon (``run.py``, real time).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from loguru import logger
from trio.testing import MockClock

from actors.errors import BotCriptoFyError
from actors.simulator import open_exchange_server
from supervisor.config import (
    BackoffPolicy,
    BotConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
    RiskConfig,
    SupervisorConfig,
)
from supervisor.http import health_report
from supervisor.otp.events import (
    ChildCrashed,
    ChildGaveUp,
    ChildStateChanged,
    Escalated,
    SupervisionEvent,
)
from supervisor.system import open_supervisor
from tests.e2e.helpers import (
    local_exchange,
    log_is,
    open_daemon,
    open_webhook_receiver,
    wait_health,
    write_config,
)

BUGGY = {"strategy": "tests.bots.strategies:Raising", "params": {"on_tick_number": 1}}
# Trades on every tick, as fast as its risk allows.
STEADY = {"strategy": "tests.bots.strategies:Churn", "risk": {"max_orders_per_minute": 600}}


@contextmanager
def captured_logs() -> Iterator[list[Any]]:
    records: list[Any] = []
    handler = logger.add(lambda message: records.append(message.record), level="DEBUG")
    try:
        yield records
    finally:
        logger.remove(handler)


async def test_a_bot_in_a_crash_loop_is_given_up_and_the_other_trades_on(
    tmp_path: Path, thread_clock: MockClock
) -> None:
    events: list[SupervisionEvent] = []
    given_up = trio.Event()

    def observe(event: SupervisionEvent) -> None:
        events.append(event)
        if isinstance(event, ChildGaveUp):
            given_up.set()

    backoff = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=8.0, reset_after_s=600.0)
    with captured_logs() as records, trio.fail_after(300):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=3, rate_hz=10.0) as server:
            config = Config(
                supervisor=SupervisorConfig(max_restarts=2, period_s=300.0),
                backoff=backoff,
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                bots=(
                    BotConfig(id="buggy", exchange="sim", symbol="BTC/USDT", **BUGGY),
                    BotConfig(
                        id="steady",
                        exchange="sim",
                        symbol="BTC/USDT",
                        strategy=STEADY["strategy"],
                        risk=RiskConfig(max_orders_per_minute=600),
                    ),
                ),
                journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
            )
            async with open_supervisor(config, rng=random.Random(7), observers=(observe,)) as sup:
                await given_up.wait()
                status, health = health_report(sup.health())
                assert (status, health["status"]) == (503, "degraded")
                buggy = health["bots"]["buggy"]
                assert (buggy["healthy"], buggy["state"], buggy["restarts"]) == (False, "failed", 2)
                assert buggy["last_error"] == "ZeroDivisionError: strategy bug"
                steady = health["bots"]["steady"]
                assert (steady["healthy"], steady["state"]) == (True, "running")
                # No run will take a command: it is refused (409 over HTTP), not left hanging.
                with pytest.raises(BotCriptoFyError, match="given up on after repeated crashes"):
                    await sup.pause_bot("buggy")

                # The other bot goes on trading, and everything else runs on.
                bot = sup.bot("steady")
                fills = bot.statistics().fills
                await bot.wait_processed(bot.statistics().events + 30)
                assert bot.statistics().fills > fills
                assert {c.name: c.state for c in sup.root.children()} == dict.fromkeys(
                    ("journal", "alerts", "bot_events", "feeds", "bots"), "running"
                )

    crashes = [e for e in events if isinstance(e, ChildCrashed) and e.child == "bot:buggy"]
    assert [c.error_types for c in crashes] == [("ZeroDivisionError",)] * 3
    assert all(c.programming_error for c in crashes)  # not mistaken for a flaky feed
    assert [c.occurrences for c in crashes] == [1, 2, 3]
    # Restarted after a backoff each time: full jitter, so each wait is drawn from
    # (0, ceiling], the ceiling doubling from initial_s (1 s, then 2 s).
    states = [e for e in events if isinstance(e, ChildStateChanged) and e.child == "bot:buggy"]
    waits = [
        b.at - a.at
        for a, b in itertools.pairwise(states)
        if (a.to_state, b.to_state) == ("backoff", "starting")
    ]
    assert len(waits) == 2
    assert all(0 < wait <= ceiling for wait, ceiling in zip(waits, (1.0, 2.0), strict=True))
    (gave_up,) = [e for e in events if isinstance(e, ChildGaveUp)]
    assert (gave_up.supervisor, gave_up.child, gave_up.restarts) == ("bots", "bot:buggy", 3)
    assert not [e for e in events if isinstance(e, Escalated)]  # nothing went up the tree
    assert not [e for e in events if isinstance(e, ChildCrashed) and e.child != "bot:buggy"]

    (alert,) = [
        r for r in records if r["message"] == "alert" and r["extra"]["kind"] == "crash_loop"
    ]
    assert (alert["extra"]["key"], alert["extra"]["fields"]["outcome"]) == ("bot:buggy", "given_up")
    # One traceback for one bug, then one line per crash with its count.
    logged = [r for r in records if r["message"] == "child crashed"]
    assert [(r["exception"] is not None, r["extra"]["occurrences"]) for r in logged] == [
        (True, 1),
        (False, 2),
        (False, 3),
    ]


async def test_the_daemon_runs_on_past_a_bot_in_a_crash_loop(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with (
            open_webhook_receiver() as (hook_url, inbox),
            open_exchange_server("binance", ("BTC/USDT",), seed=5, rate_hz=20.0) as server,
        ):
            config = write_config(
                tmp_path / "crashy.toml",
                {
                    "supervisor": {"max_restarts": 2, "period_s": 60.0},
                    "backoff": {"initial_s": 0.05, "max_s": 0.2},
                    "http": {"port": 0},
                    "alerts": {"webhooks": [{"url": hook_url, "format": "json"}]},
                    "journal": {"path": tmp_path / "journal.sqlite3"},
                    "exchanges": [local_exchange("sim", server)],
                    "bots": [
                        {"id": "buggy", "exchange": "sim", "symbol": "BTC/USDT", **BUGGY},
                        {"id": "steady", "exchange": "sim", "symbol": "BTC/USDT", **STEADY},
                    ],
                },
            )
            async with open_daemon("--config", str(config), cwd=tmp_path) as daemon:
                alert = await inbox.wait_for(lambda d: d.body["kind"] == "crash_loop")
                assert (alert.body["key"], alert.body["severity"]) == ("bot:buggy", "critical")
                assert alert.body["fields"]["outcome"] == "given_up"
                assert alert.body["fields"]["error"] == "ZeroDivisionError: strategy bug"
                url = await daemon.http_url()
                async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                    response = await client.get("/health")
                    assert response.status_code == 503
                    buggy = response.json()["bots"]["buggy"]
                    assert (buggy["healthy"], buggy["state"]) == (False, "failed")
                    assert buggy["last_error"] == "ZeroDivisionError: strategy bug"
                    orders = response.json()["bots"]["steady"]["orders"]
                    # The other bot keeps trading: more orders come.
                    steady = await wait_health(
                        client, lambda _, body: body["bots"]["steady"]["orders"] >= orders + 3
                    )
                    assert steady["bots"]["steady"]["healthy"]
                    assert steady["exchanges"]["sim"]["healthy"]
                assert await daemon.stop() == 0, daemon.tail()

    crashes = daemon.logged(log_is("child crashed", child="bot:buggy"))
    assert [r["extra"]["occurrences"] for r in crashes] == [1, 2, 3]
    # The traceback (and the alerts' own line) once, however often the bug comes back.
    assert [r["exception"] is not None for r in crashes] == [True, False, False]
    assert len(daemon.logged(log_is("child crashed with a programming error"))) == 1
    assert len(daemon.logged(log_is("crash loop: child given up", child="bot:buggy"))) == 1
    assert not daemon.logged(log_is("restart intensity exceeded: stopping the daemon"))
    assert inbox.kinds().count("crash_loop") == 1
    assert inbox.kinds()[-1] == "daemon_stopped"
