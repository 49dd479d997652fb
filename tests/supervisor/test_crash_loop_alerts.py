"""A crash loop is alerted whichever way it was contained (``supervision_alerts``), and a
programming error that keeps coming back is said once, not once per crash."""

from __future__ import annotations

from typing import Any

import trio

from supervisor.alerts import Alerts, supervision_alerts
from supervisor.config import AlertsConfig
from supervisor.otp.events import ChildCrashed, ChildGaveUp, Escalated


def bug(occurrences: int) -> ChildCrashed:
    return ChildCrashed(
        "bots",
        "bot:b1",
        "ZeroDivisionError: strategy bug",
        True,
        occurrences,
        float(occurrences),
        ("ZeroDivisionError",),
        occurrences=occurrences,
    )


async def test_a_given_up_bot_and_an_escalating_exchange_are_crash_loop_alerts_told_apart(
    autojump_clock: Any, records: list[Any]
) -> None:
    observe = supervision_alerts(
        Alerts(AlertsConfig(min_interval_s=0.001)), keys={"connections:sim": "sim"}
    )
    for event in (
        bug(1),
        bug(2),
        bug(3),
        ChildGaveUp("bots", "bot:b1", 3, 2, 60.0, "ZeroDivisionError: strategy bug", 3.0),
        Escalated("exchange:sim", "connections:sim", 3, 2, 60.0, 4.0),
    ):
        observe(event)
        await trio.sleep(1)
    alerts = [r for r in records if r["message"] == "alert"]
    assert [(r["level"].name, r["extra"]["kind"], r["extra"]["key"]) for r in alerts] == [
        ("CRITICAL", "crash_loop", "bot:b1"),
        ("CRITICAL", "crash_loop", "sim"),
    ]
    given_up, escalated = (r["extra"]["fields"] for r in alerts)
    assert given_up == {
        "child": "bot:b1",
        "outcome": "given_up",
        "restarts": 3,
        "max_restarts": 2,
        "period_s": 60.0,
        "error": "ZeroDivisionError: strategy bug",
    }
    assert (escalated["child"], escalated["outcome"]) == ("connections:sim", "escalated")
    # Three crashes with one bug: the alerts' own line once, as the keeper's traceback.
    said = [r for r in records if r["message"] == "child crashed with a programming error"]
    assert len(said) == 1
