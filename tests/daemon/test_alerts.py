"""Alerts over real sockets: a hypercorn webhook receiver on 127.0.0.1:0 in the test's nursery.

Clock: pytest-trio's ``autojump_clock`` (threshold 0). httpx (anyio on Trio) and hypercorn both
run in this loop and loopback I/O is ready as soon as it is written, so the clock only jumps when
every task is really waiting on a timer; measured: the retry times below are exact and the
whole file runs in well under a second.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import attrs
import hypercorn.config
import hypercorn.trio
import orjson
import pytest
import trio
import trio.testing
from loguru import logger

from actors.errors import ConfigError
from supervisor.alerts import Alert, Alerts, alert_text, render_payload
from supervisor.config import AlertsConfig, WebhookConfig

HANG = -1  # a status that makes the receiver never answer


@attrs.frozen
class Delivery:
    path: str
    content_type: str
    body: Any
    at: float


@attrs.define(eq=False)
class Receiver:
    """A webhook endpoint: answers each request with the next scripted status (last repeats)."""

    statuses: tuple[int, ...]
    deliveries: trio.MemorySendChannel[Delivery]
    seen: int = 0

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = dict(scope["headers"])
        self.deliveries.send_nowait(
            Delivery(
                scope["path"],
                headers.get(b"content-type", b"").decode(),
                orjson.loads(body),
                trio.current_time(),
            )
        )
        status = self.statuses[min(self.seen, len(self.statuses) - 1)]
        self.seen += 1
        if status == HANG:
            await trio.sleep_forever()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def receiving(
    *statuses: int,
) -> AsyncIterator[tuple[str, trio.MemoryReceiveChannel[Delivery]]]:
    deliveries_send, deliveries_receive = trio.open_memory_channel[Delivery](32)
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            hypercorn.trio.serve, Receiver(statuses or (200,), deliveries_send), config
        )
        try:
            yield binds[0], deliveries_receive
        finally:
            nursery.cancel_scope.cancel(reason="test done")


def breaker_opened(message: str = "circuit opened", key: str = "binance") -> Alert:
    return Alert("breaker_opened", key, "warning", message, {"failures": 5})


# --- pure parts -------------------------------------------------------------------------------


def test_alert_validates_kind_and_severity() -> None:
    with pytest.raises(ValueError, match="kind"):
        Alert("breaker_opend", "binance", "warning", "typo")
    with pytest.raises(ValueError, match="severity"):
        Alert("breaker_opened", "binance", "fatal", "bad severity")  # type: ignore[arg-type]


def test_payload_shapes() -> None:
    alert = Alert(
        "stop_loss_hit",
        "b1",
        "info",
        "stop-loss hit",
        {"price": Decimal("27000.50"), "pnl": Decimal("-12.3")},
        ts=1700000000.0,
    )
    assert orjson.loads(render_payload(alert, "json")) == {
        "kind": "stop_loss_hit",
        "key": "b1",
        "severity": "info",
        "message": "stop-loss hit",
        "fields": {"price": "27000.50", "pnl": "-12.3"},
        "ts": 1700000000.0,
    }
    text = "[INFO] stop_loss_hit b1: stop-loss hit (price=27000.50, pnl=-12.3)"
    assert alert_text(alert) == text
    assert orjson.loads(render_payload(alert, "slack")) == {"text": text}
    assert orjson.loads(render_payload(alert, "discord")) == {
        "content": text,
        "allowed_mentions": {"parse": []},
    }


def test_chat_payloads_are_truncated() -> None:
    alert = Alert("crash_loop", "exchange:binance", "critical", "x" * 5000)
    discord = orjson.loads(render_payload(alert, "discord"))["content"]
    slack = orjson.loads(render_payload(alert, "slack"))["text"]
    assert len(discord) == 2000
    assert discord.endswith("…")
    assert len(slack) == 3000


# --- the actor --------------------------------------------------------------------------------


async def test_dedup_and_rate_limit_per_kind_and_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(300):
        async with receiving() as (url, deliveries), trio.open_nursery() as nursery:
            alerts = Alerts(
                AlertsConfig(webhooks=(WebhookConfig(url + "/hook"),), min_interval_s=60.0)
            )
            await nursery.start(alerts.run)
            start = trio.current_time()
            accepted = [alerts.emit(breaker_opened(f"opened #{i}")) for i in range(5)]
            assert accepted == [True, False, False, False, False]
            first = await deliveries.receive()
            assert (first.path, first.body["kind"], first.body["message"]) == (
                "/hook",
                "breaker_opened",
                "opened #0",
            )
            assert first.content_type == "application/json"

            # Another key has its own window; a suppressed emit does not extend the window.
            assert alerts.emit(breaker_opened("kraken opened", key="kraken"))
            assert (await deliveries.receive()).body["key"] == "kraken"
            await trio.sleep_until(start + 59.5)
            assert not alerts.emit(breaker_opened("still within the interval"))
            await trio.sleep_until(start + 60.0)
            assert alerts.emit(breaker_opened("opened again"))
            again = await deliveries.receive()
            assert (again.body["key"], again.body["message"]) == ("binance", "opened again")

            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.WouldBlock):
                deliveries.receive_nowait()  # exactly once per window, nothing else in flight
            stats = alerts.statistics()
            assert (stats.accepted, stats.sent, stats.suppressed, stats.failed, stats.dropped) == (
                3,
                3,
                5,
                0,
                0,
            )
            nursery.cancel_scope.cancel()


async def test_slack_and_discord_sinks(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with receiving() as (url, deliveries), trio.open_nursery() as nursery:
            alerts = Alerts(
                AlertsConfig(
                    webhooks=(
                        WebhookConfig(url + "/slack", format="slack"),
                        WebhookConfig(url + "/discord", format="discord"),
                        WebhookConfig(url + "/json", format="json"),
                    )
                )
            )
            await nursery.start(alerts.run)
            alerts.emit(
                Alert(
                    "bot_halted",
                    "b1",
                    "critical",
                    "daily loss limit hit",
                    {"loss_quote": Decimal("500")},
                )
            )
            got = {}
            for _ in range(3):
                delivery = await deliveries.receive()
                got[delivery.path] = delivery.body
            nursery.cancel_scope.cancel()
    text = "[CRITICAL] bot_halted b1: daily loss limit hit (loss_quote=500)"
    assert got["/slack"] == {"text": text}
    assert got["/discord"] == {"content": text, "allowed_mentions": {"parse": []}}
    assert got["/json"]["fields"] == {"loss_quote": "500"}
    assert alerts.statistics().sent == 3


async def test_failed_delivery_is_retried_with_backoff_then_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(30):
        async with receiving(500) as (url, deliveries), trio.open_nursery() as nursery:
            alerts = Alerts(
                AlertsConfig(webhooks=(WebhookConfig(url + "/hook"),)),
                max_attempts=3,
                retry_initial_s=0.5,
            )
            await nursery.start(alerts.run)
            start = trio.current_time()
            alerts.emit(breaker_opened())
            attempts = [await deliveries.receive() for _ in range(3)]
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.WouldBlock):
                deliveries.receive_nowait()
            nursery.cancel_scope.cancel()
    assert [round(a.at - start, 6) for a in attempts] == [0.0, 0.5, 1.5]
    stats = alerts.statistics()
    assert (stats.sent, stats.failed) == (0, 1)


async def test_client_errors_are_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(30):
        async with receiving(404, 200) as (url, deliveries), trio.open_nursery() as nursery:
            alerts = Alerts(
                AlertsConfig(webhooks=(WebhookConfig(url + "/gone"),), min_interval_s=0.0)
            )
            await nursery.start(alerts.run)
            alerts.emit(breaker_opened("first"))
            alerts.emit(breaker_opened("second"))  # min_interval_s=0: no suppression
            assert [(await deliveries.receive()).body["message"] for _ in range(2)] == [
                "first",
                "second",
            ]
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    stats = alerts.statistics()
    assert (stats.accepted, stats.sent, stats.failed, stats.suppressed) == (2, 1, 1, 0)


async def test_unreachable_sink_is_counted_as_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound but not listening: connection refused
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                alerts = Alerts(
                    AlertsConfig(webhooks=(WebhookConfig(f"http://127.0.0.1:{port}/hook"),)),
                    max_attempts=2,
                )
                await nursery.start(alerts.run)
                alerts.emit(breaker_opened())
                # Refused at once, retried after retry_initial_s=0.5, refused again: failed.
                await trio.sleep(0.4)
                await trio.testing.wait_all_tasks_blocked()
                assert alerts.statistics().failed == 0
                await trio.sleep(0.1)
                await trio.testing.wait_all_tasks_blocked()
                assert alerts.statistics().failed == 1
                nursery.cancel_scope.cancel()
    assert (alerts.statistics().sent, alerts.statistics().failed) == (0, 1)


async def test_full_inbox_drops_without_blocking(autojump_clock: trio.testing.MockClock) -> None:
    alerts = Alerts(AlertsConfig(), inbox_size=2)  # run() not started: nothing drains it
    results = [alerts.emit(breaker_opened(key=f"ex{i}")) for i in range(3)]  # sync: cannot block
    assert results == [True, True, False]
    stats = alerts.statistics()
    assert (stats.accepted, stats.dropped, stats.queued) == (2, 1, 2)
    # A dropped alert opens no window: the same key is accepted once there is room.
    assert not alerts.emit(breaker_opened(key="ex2"))
    assert alerts.statistics().suppressed == 0


async def test_queued_alerts_are_flushed_on_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10):
        async with receiving() as (url, deliveries):
            alerts = Alerts(AlertsConfig(webhooks=(WebhookConfig(url + "/hook"),)))
            async with trio.open_nursery() as nursery:
                await nursery.start(alerts.run)
                alerts.emit(Alert("crash_loop", "exchange:kraken", "critical", "escalated"))
                alerts.emit(Alert("daemon_stopped", "daemon", "info", "stopping"))
                nursery.cancel_scope.cancel(reason="daemon shutdown")
            kinds = [(await deliveries.receive()).body["kind"] for _ in range(2)]
    assert kinds == ["crash_loop", "daemon_stopped"]
    assert alerts.statistics().sent == 2


async def test_flush_is_bounded_by_shutdown_grace(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(30):
        async with receiving(HANG) as (url, deliveries):
            alerts = Alerts(
                AlertsConfig(webhooks=(WebhookConfig(url + "/hook"),)),
                shutdown_grace_s=2.0,
                request_timeout_s=5.0,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(alerts.run)
                alerts.emit(Alert("daemon_stopped", "daemon", "info", "stopping"))
                await deliveries.receive()  # the sink got the request and will never answer
                cancelled_at = trio.current_time()
                nursery.cancel_scope.cancel(reason="daemon shutdown")
            assert trio.current_time() - cancelled_at == pytest.approx(2.0)
    assert alerts.statistics().sent == 0


async def test_alerts_are_logged_without_sinks(autojump_clock: trio.testing.MockClock) -> None:
    records: list[Any] = []
    sink = logger.add(lambda message: records.append(message.record), level="DEBUG")
    try:
        alerts = Alerts(AlertsConfig(min_interval_s=10.0))
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                await nursery.start(alerts.run)
                alerts.emit(breaker_opened())
                alerts.emit(breaker_opened())
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
    finally:
        logger.remove(sink)
    emitted = [r for r in records if r["message"] == "alert"]
    assert len(emitted) == 1
    assert emitted[0]["level"].name == "WARNING"
    assert emitted[0]["extra"]["kind"] == "breaker_opened"
    assert emitted[0]["extra"]["fields"] == {"failures": 5}
    assert [r["message"] for r in records].count("alert suppressed") == 1
    assert alerts.statistics().sent == 0


async def test_a_webhook_url_can_come_from_the_environment(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(30):
        async with receiving() as (url, deliveries), trio.open_nursery() as nursery:
            monkeypatch.setenv("ALERT_HOOK_URL", url + "/secret-hook")
            config = AlertsConfig(webhooks=(WebhookConfig(url_env="ALERT_HOOK_URL"),))
            assert "secret-hook" not in repr(config)
            alerts = Alerts.from_config(config)
            await nursery.start(alerts.run)
            alerts.emit(breaker_opened())
            assert (await deliveries.receive()).path == "/secret-hook"
            nursery.cancel_scope.cancel()
    monkeypatch.delenv("ALERT_HOOK_URL")
    with pytest.raises(ConfigError, match="ALERT_HOOK_URL"):
        Alerts.from_config(config)
