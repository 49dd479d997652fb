"""The daemon end to end: ``run.py`` as a subprocess, real sockets on 127.0.0.1, real time.
Local exchange servers and the webhook receiver run in the test's own Trio loop; the daemon
connects to them over loopback. Each test is bounded by ``trio.fail_after`` and its daemon is
killed on the way out whatever happens (``open_daemon``).
"""

from __future__ import annotations

import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from actors.journal.store import WriterLock
from actors.simulator import open_exchange_server
from tests.e2e.helpers import (
    local_exchange,
    log_is,
    open_daemon,
    open_webhook_receiver,
    read_journal,
    read_only,
    wait_health,
    write_config,
)

MESSAGES = "botcriptofy_exchange_messages_received"
TOKEN = "e2e-control-token-7f3a"
TOKEN_ENV = "E2E_BOTCRIPTOFY_TOKEN"


def message_counts(text: str) -> dict[str, float]:
    """Per-exchange frames received, from a Prometheus exposition."""
    for family in text_string_to_metric_families(text):
        if family.name == MESSAGES:
            return {s.labels["exchange"]: s.value for s in family.samples}
    raise AssertionError(f"{MESSAGES} missing from /metrics")


def all_streaming(status: int, body: dict[str, Any]) -> bool:
    exchanges = body.get("exchanges") or {}
    return (
        status == 200
        and bool(exchanges)
        and all(ex["state"] == "streaming" for ex in exchanges.values())
    )


async def test_embedded_default_serves_health_and_metrics_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    with trio.fail_after(25):
        async with open_daemon("--http-port", "0", cwd=tmp_path) as daemon:
            url = await daemon.http_url()
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                health = await wait_health(client, all_streaming)
                assert health["status"] == "ok"
                assert set(health["exchanges"]) == {"binance", "kraken"}
                assert set(health["bots"]) == {"btc-sma", "eth-rsi", "kraken-sma"}
                assert all(bot["healthy"] for bot in health["bots"].values())

                response = await client.get("/metrics")
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/plain")
                first = message_counts(response.text)
                assert set(first) == {"binance", "kraken"}
                # Supervised children, read from the tree: each exchange's connections keeper
                # and each bot, all running.
                running = {
                    s.labels["child"]
                    for family in text_string_to_metric_families(response.text)
                    if family.name == "botcriptofy_child_state"
                    for s in family.samples
                    if s.labels["state"] == "running" and s.value == 1
                }
                assert running == {
                    "exchange:binance",
                    "exchange:kraken",
                    "bot:btc-sma",
                    "bot:eth-rsi",
                    "bot:kraken-sma",
                }
                # Both feeds keep streaming (4 events/s per stream): the counters must grow.
                while True:
                    await trio.sleep(0.3)
                    later = message_counts((await client.get("/metrics")).text)
                    assert all(later[name] >= first[name] for name in first)
                    if all(later[name] > first[name] for name in first):
                        break
            code = await daemon.stop(signal.SIGTERM)
        assert code == 0, daemon.tail()
        assert daemon.logged(log_is("signal received: shutting down", signal="SIGTERM"))
        assert daemon.logged(log_is("journal closed"))
        assert daemon.logged(log_is("daemon stopped"))
        stopped = {
            r["extra"]["bot"]: r["extra"]["orders"] for r in daemon.logged(log_is("bot stopped"))
        }
        assert set(stopped) == {"btc-sma", "eth-rsi", "kraken-sma"}
    check_default_journal(tmp_path / "data" / "default" / "journal.sqlite3", stopped)


def check_default_journal(journal: Path, orders_counted: dict[str, int]) -> None:
    """Intact, unique client ids, and every order the bots counted is on disk (flushed)."""
    assert journal.exists()
    assert not Path(f"{journal}-wal").exists()  # closed cleanly: the WAL was checkpointed away
    with read_only(journal) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total, unique = db.execute(
            "SELECT count(*), count(DISTINCT client_id) FROM orders"
        ).fetchone()
        assert total == unique
        per_bot = dict(db.execute("SELECT bot_id, count(*) FROM orders GROUP BY bot_id"))
        bots = {row[0] for row in db.execute("SELECT bot_id FROM bots")}
    assert bots == set(orders_counted)
    assert {bot: per_bot.get(bot, 0) for bot in bots} == orders_counted


async def test_bad_config_exits_2_with_the_problems_and_starts_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "journal" / "bad.sqlite3"
    with trio.fail_after(15):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=3, rate_hz=10.0) as server:
            config = write_config(
                tmp_path / "bad.toml",
                {
                    "http": {"port": 70000},
                    "journal": {"path": journal},
                    "exchanges": [local_exchange("sim", server)],
                    "bots": [
                        {
                            "id": "b1",
                            "exchange": "sim",
                            "symbol": "BTC/USDT",
                            "risk": {"stop_loss_pct": -1.0},
                        }
                    ],
                },
            )
            async with open_daemon("--config", str(config), cwd=tmp_path) as daemon:
                code = await daemon.wait_exit()
            assert server.statistics().connections_accepted == 0
    assert code == 2
    assert sorted(daemon.stray_stderr) == [
        "bots[0].risk.stop_loss_pct: must be > 0 and < 100, got -1.0",
        "http.port: must be a TCP port in 0..65535 (0 picks a free one), got 70000",
    ]
    assert daemon.records == []  # not one log line: logging was never even configured
    assert daemon.stdout == []
    assert not journal.parent.exists()
    assert not (tmp_path / "data").exists()


def spawn_spec(bot_id: str) -> dict[str, Any]:
    """A threshold bot whose buy_below is far above the market: it buys on its first tick."""
    return {
        "id": bot_id,
        "exchange": "sim",
        "symbol": "BTC/USDT",
        "strategy": "threshold",
        "params": {"buy_below": "10000000"},
        "order_quote": "100",
    }


async def test_control_endpoints_need_the_token_and_drive_bots(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with trio.fail_after(25):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=4, rate_hz=20.0) as server:
            config = write_config(
                tmp_path / "control.toml",
                {
                    "http": {"token_env": TOKEN_ENV},
                    "journal": {"path": journal},
                    "exchanges": [local_exchange("sim", server)],
                    # buy_below far under the market: this bot never trades
                    "bots": [
                        {
                            "id": "watcher",
                            "exchange": "sim",
                            "symbol": "BTC/USDT",
                            "strategy": "threshold",
                            "params": {"buy_below": "1"},
                        }
                    ],
                },
            )
            async with open_daemon(
                "--config", str(config), "--http-port", "0", cwd=tmp_path, env={TOKEN_ENV: TOKEN}
            ) as daemon:
                url = await daemon.http_url()
                auth = {"Authorization": f"Bearer {TOKEN}"}
                async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                    before = (await client.get("/health")).json()
                    assert set(before["bots"]) == {"watcher"}

                    refused = [
                        await client.post("/bots", json=spawn_spec("buyer")),
                        await client.post(
                            "/bots",
                            json=spawn_spec("buyer"),
                            headers={"Authorization": "Bearer wrong-token"},
                        ),
                        await client.post(
                            "/bots", json=spawn_spec("buyer"), headers={"Authorization": TOKEN}
                        ),  # no scheme
                        await client.post("/bots/watcher/pause"),
                        await client.delete(
                            "/bots/watcher", headers={"Authorization": "Bearer " + TOKEN[:-1]}
                        ),
                    ]
                    assert [r.status_code for r in refused] == [401] * len(refused)
                    assert all(r.headers["www-authenticate"] == "Bearer" for r in refused)
                    after = (await client.get("/health")).json()
                    assert set(after["bots"]) == {"watcher"}
                    assert after["bots"]["watcher"]["state"] == "running"  # not paused
                    assert not daemon.logged(log_is("bot started", bot="buyer"))

                    bad = await client.post(
                        "/bots", json={**spawn_spec("bad one"), "mode": "x"}, headers=auth
                    )
                    assert bad.status_code == 400
                    assert any(p.startswith("bot.id: ") for p in bad.json()["problems"])
                    assert any(p.startswith("bot.mode: ") for p in bad.json()["problems"])
                    duplicate = await client.post("/bots", json=spawn_spec("watcher"), headers=auth)
                    assert duplicate.status_code == 400

                    spawned = await client.post("/bots", json=spawn_spec("buyer"), headers=auth)
                    assert spawned.status_code == 201, spawned.text
                    assert spawned.json() == {"bot": "buyer", "action": "spawned"}
                    filled = await daemon.wait_log(log_is("order filled", bot="buyer"))
                    assert filled["extra"]["side"] == "buy"
                    buyer = (await client.get("/health")).json()["bots"]["buyer"]
                    assert buyer["state"] == "running"
                    assert buyer["healthy"] is True
                    assert buyer["orders"] == 1
                    # it traded only once three agreeing ticks had established the price
                    assert buyer["price"] == "trusted"
                    assert buyer["quarantined_ticks"] >= 2
                    metrics = (await client.get("/metrics")).text
                    assert (
                        "botcriptofy_bot_quarantined_ticks_total"
                        '{bot="buyer",exchange="sim",quote="USDT",symbol="BTC/USDT"}'
                    ) in metrics
                    assert Decimal(buyer["position"]) == Decimal(filled["extra"]["size"]) > 0
                    assert Decimal(buyer["quote_balance"]) < Decimal("10000")

                    paused = await client.post("/bots/buyer/pause", headers=auth)
                    assert paused.status_code == 200
                    assert paused.json()["action"] == "paused"
                    health = (await client.get("/health")).json()
                    assert health["bots"]["buyer"]["state"] == "paused"
                    assert health["bots"]["watcher"]["state"] == "running"
                    resumed = await client.post("/bots/buyer/resume", headers=auth)
                    assert resumed.status_code == 200
                    assert resumed.json()["action"] == "resumed"
                    health = (await client.get("/health")).json()
                    assert health["bots"]["buyer"]["state"] == "running"

                    stopped = await client.delete("/bots/buyer", headers=auth)
                    assert stopped.status_code == 200
                    assert stopped.json()["action"] == "stopped"
                    assert set((await client.get("/health")).json()["bots"]) == {"watcher"}
                    assert (await client.delete("/bots/buyer", headers=auth)).status_code == 404
                assert await daemon.stop() == 0, daemon.tail()
        assert TOKEN not in "\n".join(str(r) for r in daemon.records)

    view = read_journal(journal)  # the daemon is gone: the file itself is read
    (order,) = view.orders["buyer"]
    assert (order.intent.side, order.status) == ("buy", "filled")
    assert view.orders["watcher"] == []


async def test_breaker_opening_sends_one_alert_to_the_webhook(tmp_path: Path) -> None:
    with trio.fail_after(25):
        async with (
            open_webhook_receiver() as (hook_url, inbox),
            open_exchange_server("binance", ("BTC/USDT",), seed=5, rate_hz=20.0) as server,
        ):
            server.refuse_handshakes(503)
            config = write_config(
                tmp_path / "alerts.toml",
                {
                    "supervisor": {"max_restarts": 100},
                    "backoff": {"initial_s": 0.05, "max_s": 0.1, "reset_after_s": 0.3},
                    "circuit_breaker": {"failure_threshold": 2, "reset_timeout_s": 0.3},
                    "alerts": {
                        "webhooks": [{"url": hook_url, "format": "json"}],
                        "min_interval_s": 60.0,
                    },
                    "journal": {"path": tmp_path / "journal.sqlite3"},
                    "exchanges": [local_exchange("sim", server)],
                    "bots": [{"id": "b1", "exchange": "sim", "symbol": "BTC/USDT"}],
                },
            )
            async with open_daemon(
                "--config", str(config), "--http-port", "0", cwd=tmp_path
            ) as daemon:
                opened = await inbox.wait_for(lambda d: d.body["kind"] == "breaker_opened")
                assert opened.body["key"] == "sim"
                assert opened.body["severity"] == "critical"
                assert opened.path == "/hook"
                # The half-open trials keep failing: the breaker re-opens twice more within
                # min_interval_s, and those openings must not be posted again.
                await daemon.wait_logs(log_is("circuit opened", child="connections:sim"), 3)
                assert server.statistics().handshakes_refused >= 4
                url = await daemon.http_url()
                async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                    health = await client.get("/health")
                    assert health.status_code == 503
                    assert health.json()["exchanges"]["sim"]["breaker"] in ("open", "half_open")
                    await trio.sleep(0.5)  # time for a duplicate to arrive, if one were sent
                    assert inbox.kinds().count("breaker_opened") == 1

                    server.clear_refusals()  # the next half-open trial succeeds and closes it
                    closed = await inbox.wait_for(lambda d: d.body["kind"] == "breaker_closed")
                    assert closed.body["key"] == "sim"
                    kinds = inbox.kinds()
                    # every transition is alerted: the trial that closed it came from half_open
                    assert "breaker_half_open" in kinds[kinds.index("breaker_opened") :]
                    await wait_health(client, all_streaming)
                assert await daemon.stop() == 0, daemon.tail()
                # Stopping flushes the alert queue: the stop notice was delivered before exit.
                assert inbox.kinds()[-1] == "daemon_stopped", daemon.tail(60)
                assert inbox.kinds().count("breaker_opened") == 1


async def test_a_journal_held_by_another_daemon_stops_the_daemon_with_exit_code_1(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.sqlite3"
    other_daemon = WriterLock(journal)  # what a daemon running on this journal holds
    other_daemon.acquire()
    try:
        with trio.fail_after(20):
            async with open_exchange_server("binance", ("BTC/USDT",), rate_hz=20.0) as server:
                config = write_config(
                    tmp_path / "second.toml",
                    {
                        "http": {"port": 0},
                        "journal": {"path": journal},
                        "exchanges": [local_exchange("sim", server)],
                        "bots": [{"id": "b1", "exchange": "sim", "symbol": "BTC/USDT"}],
                    },
                )
                async with open_daemon("--config", str(config), cwd=tmp_path) as daemon:
                    code = await daemon.wait_exit()
    finally:
        other_daemon.release()
    assert code == 1, daemon.tail()
    loudest = [r for r in daemon.records if r["level"]["no"] >= 40]
    assert [(r["level"]["name"], r["message"]) for r in loudest] == [
        ("CRITICAL", "journal unavailable: stopping the daemon")
    ]
    assert "in use by another process" in loudest[0]["extra"]["error"]
    assert not daemon.logged(log_is("bot started"))
    assert not daemon.logged(log_is("http listening"))


async def test_an_exchange_beyond_its_restart_budget_stops_the_daemon_with_exit_code_1(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with open_exchange_server("binance", ("BTC/USDT",), rate_hz=20.0) as server:
            server.refuse_handshakes(503)
            config = write_config(
                tmp_path / "down.toml",
                {
                    "supervisor": {"max_restarts": 2, "period_s": 60.0},
                    "backoff": {"initial_s": 0.05, "max_s": 0.1},
                    "circuit_breaker": {"failure_threshold": 100},  # never paces the restarts
                    "http": {"port": 0},
                    "journal": {"path": tmp_path / "journal.sqlite3"},
                    "exchanges": [local_exchange("sim", server)],
                    "bots": [{"id": "b1", "exchange": "sim", "symbol": "BTC/USDT"}],
                },
            )
            async with open_daemon("--config", str(config), cwd=tmp_path) as daemon:
                code = await daemon.wait_exit()
    assert code == 1, daemon.tail()
    assert len(daemon.logged(log_is("child crashed", child="connections:sim"))) == 3
    (alert,) = daemon.logged(log_is("alert", kind="crash_loop"))
    assert alert["extra"]["key"] == "sim"
    (stopping,) = daemon.logged(log_is("restart intensity exceeded: stopping the daemon"))
    assert "supervisor 'exchange:sim'" in stopping["extra"]["error"]  # who gave up, not the root
    assert daemon.logged(log_is("journal closed"))  # stopped in order all the same
