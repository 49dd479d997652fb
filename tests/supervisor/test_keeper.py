from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from actors.errors import ConnectionLostError, RestartIntensityError, StaleFeedError
from supervisor.otp.backoff import BackoffPolicy
from supervisor.otp.breaker import BreakerPolicy
from supervisor.otp.events import (
    BreakerTransitioned,
    ChildCrashed,
    ChildGaveUp,
    Escalated,
    SupervisionEvent,
)
from supervisor.otp.intensity import RestartIntensity
from supervisor.otp.keeper import SEEN_ERRORS_LIMIT, Keeper
from supervisor.otp.spec import ChildSpec, RestartLimit, RestartType

from .children import (
    Script,
    crash,
    expected_delays,
    ready_forever,
    ready_then_crash,
    ready_then_return,
    return_without_ready,
)

SEED = 42
POLICY = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=8.0, reset_after_s=60.0)


def at(times: list[float]) -> Any:
    return pytest.approx(times, abs=1e-9)


def keeper_for(
    script: Script,
    *,
    restart: RestartType = "permanent",
    backoff: BackoffPolicy = POLICY,
    breaker: BreakerPolicy | None = None,
    intensity: RestartIntensity | None = None,
    events: list[SupervisionEvent] | None = None,
) -> Keeper:
    spec = ChildSpec("feed", script.run, restart=restart, backoff=backoff, breaker=breaker)
    return Keeper(
        spec,
        intensity=intensity or RestartIntensity(max_restarts=100, period_s=60.0),
        rng=random.Random(SEED),
        observers=[] if events is None else [events.append],
    )


async def test_transient_returning_normally_is_not_restarted(autojump_clock: Any) -> None:
    script = Script([ready_then_return(3.0)])
    keeper = keeper_for(script, restart="transient")
    t0 = trio.current_time()
    with trio.fail_after(100):
        await keeper.run()
    assert script.starts == at([t0])
    assert trio.current_time() == pytest.approx(t0 + 3.0)
    stats = keeper.statistics()
    assert (stats.state, stats.restarts, stats.last_error) == ("stopped", 0, None)


async def test_transient_crashing_is_restarted(autojump_clock: Any) -> None:
    script = Script([crash(), ready_then_return(1.0)])
    keeper = keeper_for(script, restart="transient")
    (d0,) = expected_delays(POLICY, SEED, 1)
    t0 = trio.current_time()
    with trio.fail_after(100):
        await keeper.run()
    assert script.starts == at([t0, t0 + d0])
    assert trio.current_time() == pytest.approx(t0 + d0 + 1.0)
    stats = keeper.statistics()
    assert (stats.state, stats.restarts, stats.last_error) == ("stopped", 1, "ValueError: boom")
    assert (stats.programming_errors, stats.faults) == (1, 0)


async def test_temporary_is_never_restarted(autojump_clock: Any) -> None:
    crashing = Script([crash(StaleFeedError("quiet for 10 s"))])
    keeper = keeper_for(crashing, restart="temporary")
    t0 = trio.current_time()
    with trio.fail_after(100):
        await keeper.run()
    assert crashing.starts == at([t0])
    stats = keeper.statistics()
    assert (stats.state, stats.restarts, stats.faults) == ("failed", 0, 1)
    assert stats.last_error == "StaleFeedError: quiet for 10 s"

    returning = Script([ready_then_return(1.0)])
    keeper = keeper_for(returning, restart="temporary")
    with trio.fail_after(100):
        await keeper.run()
    assert len(returning.starts) == 1
    assert keeper.statistics().state == "stopped"


async def test_a_child_that_returns_without_signalling_counts_as_a_clean_exit(
    autojump_clock: Any,
) -> None:
    script = Script([return_without_ready(2.0)])
    keeper = keeper_for(script, restart="transient")
    async with trio.open_nursery() as nursery:
        with trio.fail_after(100):
            await nursery.start(keeper.run)
    assert keeper.statistics().state == "stopped"
    assert len(script.starts) == 1


async def test_permanent_returning_normally_is_restarted(autojump_clock: Any) -> None:
    script = Script([ready_then_return(2.0), ready_then_return(2.0), ready_forever()])
    keeper = keeper_for(script)
    d0, d1 = expected_delays(POLICY, SEED, 2)
    t0 = trio.current_time()
    with trio.move_on_after(50) as scope:
        await keeper.run()
    assert scope.cancelled_caught
    assert script.starts == at([t0, t0 + 2 + d0, t0 + 2 + d0 + 2 + d1])
    stats = keeper.statistics()
    assert (stats.state, stats.restarts, stats.last_error) == ("stopped", 2, None)


async def test_intensity_exceeded_by_the_crash_after_max_restarts_escalates(
    autojump_clock: Any, records: list[Any]
) -> None:
    policy = BackoffPolicy(initial_s=1.0, multiplier=1.0, max_s=1.0)
    script = Script([crash(ConnectionLostError("reset by peer"))])
    keeper = keeper_for(
        script, backoff=policy, intensity=RestartIntensity(max_restarts=2, period_s=10.0)
    )
    d0, d1 = expected_delays(policy, SEED, 2)
    t0 = trio.current_time()
    with trio.fail_after(100), pytest.raises(RestartIntensityError) as info:
        await keeper.run()
    # Third crash (max_restarts + 1) at t0 + d0 + d1: escalated at once, no backoff sleep.
    assert script.starts == at([t0, t0 + d0, t0 + d0 + d1])
    assert trio.current_time() == pytest.approx(t0 + d0 + d1)
    assert str(info.value) == (
        "supervisor 'root': more than 2 restarts within 10.0 s (last: child 'feed')"
    )
    assert info.value.__cause__ is not None
    assert keeper.statistics().state == "failed"
    escalations = [r for r in records if r["message"] == "restart intensity exceeded"]
    assert [(r["level"].name, r["extra"]["restarts"]) for r in escalations] == [("ERROR", 3)]


async def test_restarts_spread_beyond_the_period_do_not_escalate(autojump_clock: Any) -> None:
    policy = BackoffPolicy(initial_s=0.5, multiplier=1.0, max_s=0.5)
    script = Script([ready_then_crash(6.0, ConnectionLostError("reset"))])
    keeper = keeper_for(
        script, backoff=policy, intensity=RestartIntensity(max_restarts=2, period_s=10.0)
    )
    delays = expected_delays(policy, SEED, 20)
    t0 = trio.current_time()
    with trio.move_on_after(60):
        await keeper.run()  # would raise RestartIntensityError if it escalated
    expected = [t0]
    for delay in delays:
        expected.append(expected[-1] + 6.0 + delay)
    count = len(script.starts)
    assert count >= 8
    assert script.starts == at(expected[:count])
    assert keeper.statistics().restarts == count - 1


async def test_backoff_resets_after_a_healthy_run(autojump_clock: Any) -> None:
    policy = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=8.0, reset_after_s=5.0)
    events: list[SupervisionEvent] = []
    script = Script([ready_then_crash(10.0, ConnectionLostError("reset"))])
    keeper = keeper_for(script, backoff=policy, events=events)
    mirror = random.Random(SEED)
    t0 = trio.current_time()
    with trio.move_on_after(40):
        await keeper.run()
    expected = [t0]
    for _ in range(len(script.starts) - 1):
        # Each run was healthy (10 s >= 5 s), so every delay is drawn from initial_s's window.
        expected.append(expected[-1] + 10.0 + mirror.uniform(0.0, 1.0))
    assert len(script.starts) >= 3
    assert script.starts == at(expected)
    crashes = [e for e in events if isinstance(e, ChildCrashed)]
    assert [e.consecutive_failures for e in crashes] == [1] * len(crashes)


async def test_breaker_keeps_the_child_down_while_open_then_one_trial(
    autojump_clock: Any, records: list[Any]
) -> None:
    policy = BackoffPolicy(initial_s=1.0, multiplier=1.0, max_s=1.0, reset_after_s=5.0)
    events: list[SupervisionEvent] = []
    fault = ConnectionLostError("refused")
    script = Script([crash(fault), crash(fault), crash(fault), crash(fault), ready_forever()])
    keeper = keeper_for(
        script,
        backoff=policy,
        breaker=BreakerPolicy(failure_threshold=3, reset_timeout_s=30.0),
        # Two counted restarts; the breaker-paced trials must not count toward it.
        intensity=RestartIntensity(max_restarts=2, period_s=1000.0),
        events=events,
    )
    d0, d1 = expected_delays(policy, SEED, 2)
    t0 = trio.current_time()
    opened = t0 + d0 + d1
    probes: list[Any] = []

    async def probe(when: float) -> None:
        await trio.sleep_until(when)
        probes.append(keeper.statistics())

    with trio.move_on_after(opened - t0 + 100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keeper.run)
            nursery.start_soon(probe, opened + 10.0)
            nursery.start_soon(probe, opened + 45.0)

    # Not started while open; trials at exactly reset_timeout_s after each opening.
    assert script.starts == at([t0, t0 + d0, opened, opened + 30.0, opened + 60.0])
    transitions = [
        (e.transition.from_state, e.transition.to_state, e.transition.at)
        for e in events
        if isinstance(e, BreakerTransitioned)
    ]
    assert transitions == [
        ("closed", "open", pytest.approx(opened)),
        ("open", "half_open", pytest.approx(opened + 30.0)),
        ("half_open", "open", pytest.approx(opened + 30.0)),
        ("open", "half_open", pytest.approx(opened + 60.0)),
        ("half_open", "closed", pytest.approx(opened + 65.0)),  # after a healthy run of 5 s
    ]
    first, second = probes
    assert (first.state, first.breaker_state) == ("circuit_open", "open")
    assert first.retry_at == pytest.approx(opened + 30.0)
    assert second.retry_at == pytest.approx(opened + 60.0)
    assert keeper.statistics().breaker_state == "closed"
    messages = [r["message"] for r in records if r["message"].startswith("circuit")]
    assert messages == [
        "circuit opened",
        "circuit half-open",
        "circuit opened",
        "circuit half-open",
        "circuit closed",
    ]


async def raise_after(delay_s: float, exc: Exception) -> None:
    await trio.sleep(delay_s)
    raise exc


async def raise_on_cancel(exc: Exception) -> None:
    try:
        await trio.sleep_forever()
    finally:
        raise exc  # replaces Cancelled: builds a two-error group


async def test_exception_group_from_the_childs_nursery_is_caught(autojump_clock: Any) -> None:
    def two_errors(first: Exception, second: Exception) -> Any:
        """A nursery that fails with both: the second is raised while being cancelled."""

        async def step(task_status: Any) -> None:
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(raise_after, 1.0, first)
                nursery.start_soon(raise_on_cancel, second)

        return step

    group_crash = two_errors(ValueError("left"), ConnectionLostError("right"))
    feed_group = two_errors(ConnectionLostError("a"), StaleFeedError("b"))

    script = Script([group_crash, feed_group, ready_then_return()])
    keeper = keeper_for(script, restart="transient")
    with trio.fail_after(100):
        await keeper.run()
    stats = keeper.statistics()
    assert len(script.starts) == 3
    assert (stats.state, stats.restarts) == ("stopped", 2)
    # The first group held a ValueError: a programming error. The second only feed faults.
    assert (stats.programming_errors, stats.faults) == (1, 1)
    assert sorted(stats.last_error.split("; ")) == ["ConnectionLostError: a", "StaleFeedError: b"]


async def test_cancelling_the_keeper_stops_it_in_backoff_and_while_running(
    autojump_clock: Any,
) -> None:
    script = Script([crash(), ready_forever()])
    keeper = keeper_for(script)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(keeper.run)  # ready once the first attempt has settled
            assert keeper.statistics().state == "backoff"
            scope.cancel()
    assert scope.cancelled_caught
    assert keeper.statistics().state == "stopped"
    assert len(script.starts) == 1

    cleanups: list[str] = []

    async def running(task_status: Any) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            cleanups.append("cancelled")

    script = Script([running])
    keeper = keeper_for(script)
    with trio.move_on_after(5) as scope:
        await keeper.run()
    assert scope.cancelled_caught  # Cancelled went through the keeper
    assert cleanups == ["cancelled"]
    assert len(script.starts) == 1
    assert keeper.statistics().state == "stopped"


async def test_an_error_raised_while_being_cancelled_is_not_restarted(
    autojump_clock: Any,
) -> None:
    async def messy(task_status: Any) -> None:
        task_status.started()
        await raise_on_cancel(ConnectionLostError("closed during cleanup"))

    script = Script([messy])
    # Any counted restart would escalate; stopping must not count as one.
    keeper = keeper_for(script, intensity=RestartIntensity(max_restarts=0, period_s=60.0))
    with trio.move_on_after(5) as scope:
        await keeper.run()
    assert scope.cancelled_caught
    assert len(script.starts) == 1
    stats = keeper.statistics()
    assert (stats.state, stats.last_error) == (
        "stopped",
        "ConnectionLostError: closed during cleanup",
    )


async def test_an_error_raised_while_being_cancelled_after_a_healthy_run_is_no_crash(
    autojump_clock: Any, records: list[Any]
) -> None:
    # Past reset_after_s the health watch has ended, so the child's error is the only thing
    # the attempt's nursery raises (no Cancelled beside it): still a stop, not a crash, so
    # no "child crashed", no breaker failure, no breaker_opened alert at every shutdown.
    async def messy(task_status: Any) -> None:
        task_status.started()
        await raise_on_cancel(ConnectionLostError("closed during cleanup"))

    events: list[SupervisionEvent] = []
    keeper = keeper_for(
        Script([messy]),
        breaker=BreakerPolicy(failure_threshold=1),
        intensity=RestartIntensity(max_restarts=0, period_s=60.0),
        events=events,
    )
    with trio.move_on_after(POLICY.reset_after_s + 10) as scope:
        await keeper.run()
    assert scope.cancelled_caught
    assert not [e for e in events if isinstance(e, ChildCrashed | BreakerTransitioned)]
    assert [
        r["message"] for r in records if r["level"].no >= 20 and "stopping" in r["message"]
    ] == ["child ended with a fault while stopping"]
    assert [r["message"] for r in records if r["level"].no >= 30] == []
    stats = keeper.statistics()
    assert (stats.state, stats.faults, stats.consecutive_failures, stats.breaker_state) == (
        "stopped",
        0,
        0,
        "closed",
    )
    assert stats.last_error == "ConnectionLostError: closed during cleanup"


async def test_keyboard_interrupt_is_never_caught(autojump_clock: Any) -> None:
    async def interrupted(task_status: Any) -> None:
        task_status.started()
        await trio.sleep(1)
        raise KeyboardInterrupt

    script = Script([interrupted])
    keeper = keeper_for(script)
    with trio.fail_after(100), pytest.RaisesGroup(KeyboardInterrupt, flatten_subgroups=True):
        await keeper.run()
    assert len(script.starts) == 1


async def test_programming_errors_log_a_traceback_feed_faults_do_not(
    autojump_clock: Any, records: list[Any]
) -> None:
    script = Script(
        [crash(TypeError("bad arg")), crash(ConnectionLostError("gone")), ready_then_return()]
    )
    keeper = keeper_for(script, restart="transient")
    with trio.fail_after(100):
        await keeper.run()
    crashed = [r for r in records if r["message"] == "child crashed"]
    assert [(r["level"].name, r["exception"] is not None) for r in crashed] == [
        ("ERROR", True),
        ("WARNING", False),
    ]
    assert [r["extra"]["child"] for r in crashed] == ["feed", "feed"]
    assert [r["extra"]["programming_error"] for r in crashed] == [True, False]
    assert crashed[0]["extra"]["error"] == "TypeError: bad arg"
    scheduled = [r for r in records if r["message"] == "restart scheduled"]
    assert len(scheduled) == 2
    assert all(r["extra"]["child"] == "feed" and "delay_s" in r["extra"] for r in scheduled)
    stats = keeper.statistics()
    assert (stats.programming_errors, stats.faults) == (1, 1)


async def test_a_failing_observer_does_not_break_supervision(
    autojump_clock: Any, records: list[Any]
) -> None:
    def broken(event: SupervisionEvent) -> None:
        raise RuntimeError("observer bug")

    script = Script([crash(), ready_then_return()])
    spec = ChildSpec("feed", script.run, restart="transient", backoff=POLICY)
    keeper = Keeper(spec, rng=random.Random(SEED), observers=[broken])
    with trio.fail_after(100):
        await keeper.run()
    assert len(script.starts) == 2
    assert any(r["message"] == "observer failed" for r in records)


async def test_a_contained_child_beyond_its_own_limit_is_given_up_instead_of_escalating(
    autojump_clock: Any, records: list[Any]
) -> None:
    policy = BackoffPolicy(initial_s=1.0, multiplier=1.0, max_s=1.0)
    script = Script([ready_then_crash(0.5, ZeroDivisionError("strategy bug"))])
    spec = ChildSpec(
        "bot:buggy",
        script.run,
        restart="transient",
        backoff=policy,
        restart_limit=RestartLimit(max_restarts=2, period_s=10.0),
    )
    # A shared budget of zero: any crash it counted would escalate at once.
    shared = RestartIntensity(max_restarts=0, period_s=10.0)
    events: list[SupervisionEvent] = []
    keeper = Keeper(spec, intensity=shared, rng=random.Random(SEED), observers=[events.append])
    d0, d1 = expected_delays(policy, SEED, 2)
    t0 = trio.current_time()
    with trio.fail_after(100):
        await keeper.run()  # returns: nothing to escalate
    assert script.starts == at([t0, t0 + 0.5 + d0, t0 + 1.0 + d0 + d1])
    assert trio.current_time() == pytest.approx(t0 + 1.5 + d0 + d1)  # given up at once
    assert shared.count(trio.current_time()) == 0
    stats = keeper.statistics()
    assert (stats.state, stats.restarts, stats.retry_at) == ("failed", 2, None)
    assert stats.last_error == "ZeroDivisionError: strategy bug"
    assert not [e for e in events if isinstance(e, Escalated)]
    (gave_up,) = [e for e in events if isinstance(e, ChildGaveUp)]
    assert gave_up == ChildGaveUp(
        supervisor="root",
        child="bot:buggy",
        restarts=3,
        max_restarts=2,
        period_s=10.0,
        error="ZeroDivisionError: strategy bug",
        at=pytest.approx(t0 + 1.5 + d0 + d1),
    )
    (logged,) = [r for r in records if r["message"] == "crash loop: child given up"]
    assert (logged["level"].name, logged["extra"]["restarts"]) == ("ERROR", 3)
    assert not [r for r in records if r["message"] == "restart intensity exceeded"]


async def test_a_contained_child_crashing_slower_than_its_limit_keeps_being_restarted(
    autojump_clock: Any,
) -> None:
    policy = BackoffPolicy(initial_s=0.5, multiplier=1.0, max_s=0.5)
    script = Script([ready_then_crash(6.0, ZeroDivisionError("strategy bug"))])
    spec = ChildSpec(
        "bot:b1",
        script.run,
        restart="transient",
        backoff=policy,
        restart_limit=RestartLimit(max_restarts=2, period_s=10.0),
    )
    keeper = Keeper(spec, rng=random.Random(SEED))
    with trio.move_on_after(60) as waited:
        await keeper.run()
    assert waited.cancelled_caught  # never given up
    assert len(script.starts) >= 8


def raise_type_error(n: int) -> None:
    raise TypeError(f"bad arg {n}")  # one place, a new message (and instance) each time


def raise_key_error() -> None:
    raise KeyError("price")


async def test_the_same_error_logs_its_traceback_once_then_a_count(
    autojump_clock: Any, records: list[Any]
) -> None:
    def failing(raiser: Any, *args: Any) -> Any:
        async def step(task_status: Any) -> None:
            task_status.started()
            await trio.sleep(1.0)
            raiser(*args)

        return step

    script = Script(
        [
            failing(raise_type_error, 1),
            failing(raise_type_error, 2),
            failing(raise_key_error),  # another error: its own traceback
            failing(raise_type_error, 3),
            failing(lambda: raise_key_error()),  # reached another way: its own traceback too
            ready_then_return(),
        ]
    )
    events: list[SupervisionEvent] = []
    keeper = keeper_for(script, restart="transient", events=events)
    with trio.fail_after(100):
        await keeper.run()
    crashed = [r for r in records if r["message"] == "child crashed"]
    assert [
        (
            r["level"].name,
            r["exception"] is not None,
            r["extra"]["occurrences"],
            r["extra"]["error"],
        )
        for r in crashed
    ] == [
        ("ERROR", True, 1, "TypeError: bad arg 1"),
        ("ERROR", False, 2, "TypeError: bad arg 2"),
        ("ERROR", True, 1, "KeyError: 'price'"),
        ("ERROR", False, 3, "TypeError: bad arg 3"),
        ("ERROR", True, 1, "KeyError: 'price'"),
    ]
    assert [e.occurrences for e in events if isinstance(e, ChildCrashed)] == [1, 2, 1, 3, 1]
    assert keeper.statistics().programming_errors == 5


async def test_the_errors_remembered_are_bounded_the_oldest_forgotten_first(
    autojump_clock: Any, records: list[Any]
) -> None:
    # SEEN_ERRORS_LIMIT + 1 distinct errors (a class each), the last one again, then the
    # first: it was forgotten to make room, so its traceback is logged again.
    kinds = [type(f"Bug{i}", (Exception,), {}) for i in range(SEEN_ERRORS_LIMIT + 1)]
    steps = [crash(kind("x")) for kind in kinds]  # a fresh instance per step: one raise each
    script = Script([*steps, crash(kinds[-1]("x")), crash(kinds[0]("x")), ready_then_return()])
    keeper = keeper_for(script, restart="transient")
    with trio.fail_after(10_000):
        await keeper.run()
    crashed = [r for r in records if r["message"] == "child crashed"]
    assert len(crashed) == SEEN_ERRORS_LIMIT + 3
    assert [r["extra"]["occurrences"] for r in crashed[-2:]] == [2, 1]
    assert [r["exception"] is not None for r in crashed[-2:]] == [False, True]
