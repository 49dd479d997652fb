"""What becomes an alert: supervision events (``supervision_alerts``) and bot events
(``forward_bot_events``), read back from the alerts' own log lines (no webhook needed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio
from loguru import logger

from actors.bots import BotEvent, BotHalted, ExitTriggered
from supervisor.alerts import Alerts, forward_bot_events, supervision_alerts
from supervisor.config import AlertsConfig
from supervisor.otp.breaker import Transition
from supervisor.otp.events import BreakerTransitioned, ChildCrashed, Escalated


@pytest.fixture
def alerted() -> Any:
    """(kind, key) of every alert accepted during the test, in order."""
    seen: list[tuple[str, str]] = []

    def sink(message: Any) -> None:
        record = message.record
        if record["message"] == "alert":
            seen.append((record["extra"]["kind"], record["extra"]["key"]))

    handler = logger.add(sink, level="DEBUG")
    try:
        yield seen
    finally:
        logger.remove(handler)


def breaker(to_state: Any, at: float) -> BreakerTransitioned:
    return BreakerTransitioned(
        "exchange:binance", "connections:binance", Transition("closed", to_state, at, 3)
    )


def crashed(error_types: tuple[str, ...], *, programming_error: bool = False) -> ChildCrashed:
    return ChildCrashed(
        "exchange:binance",
        "connections:binance",
        "StaleFeedError: quiet",
        programming_error,
        1,
        0.0,
        error_types,
    )


async def test_supervision_events_become_alerts_keyed_by_exchange(
    autojump_clock: Any, alerted: list[tuple[str, str]]
) -> None:
    observe = supervision_alerts(
        Alerts(AlertsConfig(min_interval_s=0.001)), keys={"connections:binance": "binance"}
    )
    for event in (
        breaker("open", 1.0),
        breaker("half_open", 2.0),
        breaker("closed", 3.0),
        crashed(("StaleFeedError",)),
        crashed(("TypeError",), programming_error=True),  # logged, not alerted
        Escalated("bots", "bot:b1", 3, 2, 60.0, 4.0),
        # The root restarts nothing: passing a failure up is not a crash loop.
        Escalated("root", "bots", 1, 0, 60.0, 4.0),
    ):
        observe(event)
        await trio.sleep(1)
    assert alerted == [
        ("breaker_opened", "binance"),
        ("breaker_half_open", "binance"),
        ("breaker_closed", "binance"),
        ("feed_stale", "binance"),
        ("crash_loop", "bot:b1"),
    ]


async def test_bot_events_become_alerts_even_those_queued_when_it_stops(
    autojump_clock: Any, alerted: list[tuple[str, str]]
) -> None:
    def exit_at(reason: str, position: str) -> ExitTriggered:
        return ExitTriggered("b1", reason, position, Decimal("99"), Decimal("98"), 0.0)

    alerts = Alerts(AlertsConfig())
    send, receive = trio.open_memory_channel[BotEvent](8)
    async with trio.open_nursery() as nursery:
        await nursery.start(forward_bot_events, receive, alerts)
        send.send_nowait(exit_at("stop_loss", "p1"))
        await trio.sleep(1)
        assert alerted == [("stop_loss_hit", "b1:p1")]
        nursery.cancel_scope.cancel()
        # Queued as it is being cancelled: still alerted (emit never waits).
        send.send_nowait(exit_at("take_profit", "p2"))  # not an alert
        send.send_nowait(exit_at("trailing_stop", "p3"))
        send.send_nowait(
            BotHalted("b1", "2026-01-01", "2026-01-02", Decimal("60"), Decimal("50"), 0.0)
        )
    assert alerted == [("stop_loss_hit", "b1:p1"), ("stop_loss_hit", "b1:p3"), ("bot_halted", "b1")]
