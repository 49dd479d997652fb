from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from actors.errors import ConnectionLostError, RestartIntensityError
from supervisor import (
    BackoffPolicy,
    ChildSpec,
    SupervisorSpec,
    cleanup_scope,
    open_supervisor_tree,
)
from supervisor.otp.events import ChildCrashed, ChildGaveUp, Escalated, SupervisionEvent
from supervisor.otp.spec import RestartLimit
from supervisor.otp.tree import STOP_MARGIN_S

from .children import Script, crash, ready_forever, ready_then_crash

FAST = BackoffPolicy(initial_s=0.1, multiplier=1.0, max_s=0.1)


def actor(
    name: str,
    log: list[tuple[str, str, float]],
    *,
    ready_after_s: float = 1.0,
    cleanup_s: float = 0.0,
) -> ChildSpec:
    """A child that takes ``ready_after_s`` to start and ``cleanup_s`` to clean up (bounded
    by its grace through ``cleanup_scope``), logging each step with the virtual time."""

    async def run(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        log.append((name, "starting", trio.current_time()))
        await trio.sleep(ready_after_s)
        task_status.started()
        log.append((name, "ready", trio.current_time()))
        try:
            await trio.sleep_forever()
        finally:
            with cleanup_scope():
                await trio.sleep(cleanup_s)
            log.append((name, "cleaned", trio.current_time()))

    return ChildSpec(name, run, backoff=FAST, shutdown_grace_s=5.0)


async def test_children_start_in_order_and_stop_in_reverse(autojump_clock: Any) -> None:
    log: list[tuple[str, str, float]] = []
    specs = [actor(n, log, ready_after_s=1.0, cleanup_s=2.0) for n in ("journal", "feed", "bot")]
    t0 = trio.current_time()
    with trio.fail_after(100):
        async with open_supervisor_tree(specs) as sup:
            assert trio.current_time() == pytest.approx(t0 + 3.0)  # each ready before the next
            assert [c.state for c in sup.children()] == ["running"] * 3
            await trio.sleep(10)
    t1 = t0 + 13.0
    assert log == [
        ("journal", "starting", pytest.approx(t0)),
        ("journal", "ready", pytest.approx(t0 + 1)),
        ("feed", "starting", pytest.approx(t0 + 1)),
        ("feed", "ready", pytest.approx(t0 + 2)),
        ("bot", "starting", pytest.approx(t0 + 2)),
        ("bot", "ready", pytest.approx(t0 + 3)),
        ("bot", "cleaned", pytest.approx(t1 + 2)),
        ("feed", "cleaned", pytest.approx(t1 + 4)),
        ("journal", "cleaned", pytest.approx(t1 + 6)),
    ]
    assert trio.current_time() == pytest.approx(t1 + 6)


async def test_cancelling_the_root_still_stops_children_in_reverse(autojump_clock: Any) -> None:
    log: list[tuple[str, str, float]] = []
    specs = [actor(n, log, cleanup_s=1.0) for n in ("a", "b", "c")]
    t0 = trio.current_time()
    with trio.fail_after(100):
        with trio.move_on_after(20) as root:
            async with open_supervisor_tree(specs):
                await trio.sleep_forever()
    assert root.cancelled_caught
    cleaned = [(name, when) for name, step, when in log if step == "cleaned"]
    assert cleaned == [
        ("c", pytest.approx(t0 + 21)),
        ("b", pytest.approx(t0 + 22)),
        ("a", pytest.approx(t0 + 23)),
    ]


async def test_cleanup_is_cut_at_the_grace_and_an_overrun_does_not_stall_the_others(
    autojump_clock: Any, records: list[Any]
) -> None:
    log: list[tuple[str, str, float]] = []
    polite = actor("polite", log, ready_after_s=0.0, cleanup_s=100.0)  # cut by cleanup_scope

    async def stubborn(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):  # ignores its grace
                await trio.sleep(8)
            log.append(("stubborn", "cleaned", trio.current_time()))

    specs = [polite, ChildSpec("stubborn", stubborn, shutdown_grace_s=3.0)]
    t0 = trio.current_time()
    with trio.fail_after(100):
        async with open_supervisor_tree(specs):
            pass
    # stubborn is waited for its 3 s grace (+ margin), then polite is stopped and its cleanup
    # is cut at its 5 s grace; stubborn still finished first (t0 + 8) and the tree waited for
    # both: no task outlives it.
    margin = STOP_MARGIN_S
    assert log == [
        ("polite", "starting", pytest.approx(t0)),
        ("polite", "ready", pytest.approx(t0)),
        ("stubborn", "cleaned", pytest.approx(t0 + 8)),
        ("polite", "cleaned", pytest.approx(t0 + 3 + margin + 5)),
    ]
    assert trio.current_time() == pytest.approx(t0 + 3 + margin + 5)
    overran = [r for r in records if r["message"] == "child overran shutdown grace"]
    assert [r["extra"]["child"] for r in overran] == ["stubborn"]


async def test_dynamic_start_and_stop_child(autojump_clock: Any) -> None:
    log: list[tuple[str, str, float]] = []
    with trio.fail_after(100):
        async with open_supervisor_tree([actor("feed", log)]) as sup:
            snapshot = await sup.start_child(actor("bot-1", log, cleanup_s=1.0))
            assert (snapshot.name, snapshot.state) == ("bot-1", "running")
            assert [c.name for c in sup.children()] == ["feed", "bot-1"]
            with pytest.raises(ValueError, match="already has a child 'bot-1'"):
                await sup.start_child(actor("bot-1", log))

            before = trio.current_time()
            final = await sup.stop_child("bot-1")
            assert final.state == "stopped"
            assert ("bot-1", "cleaned", pytest.approx(before + 1.0)) in log
            assert [c.name for c in sup.children()] == ["feed"]
            with pytest.raises(KeyError):
                await sup.stop_child("bot-1")

            again = await sup.start_child(actor("bot-1", log))  # the name is free again
            assert again.state == "running"
            stats = sup.statistics()
            assert stats.name == "root"
            assert [c.name for c in stats.children] == ["feed", "bot-1"]


async def test_escalation_stops_the_siblings_and_raises_from_the_block(
    autojump_clock: Any,
) -> None:
    log: list[tuple[str, str, float]] = []
    flaky = Script([crash(ConnectionLostError("refused"))])
    spec = SupervisorSpec(
        children=(actor("journal", log), ChildSpec("flaky", flaky.run, backoff=FAST)),
        max_restarts=2,
        period_s=10.0,
    )
    body_finished = False
    with trio.fail_after(100), pytest.RaisesGroup(RestartIntensityError):
        async with open_supervisor_tree(spec, rng=random.Random(1)):
            await trio.sleep_forever()
            body_finished = True
    assert not body_finished
    assert len(flaky.starts) == 3
    assert [step for name, step, _ in log if name == "journal"] == ["starting", "ready", "cleaned"]


async def test_a_nested_subtree_that_escalates_is_restarted_by_its_parent(
    autojump_clock: Any,
) -> None:
    flaky = Script([crash(ConnectionLostError("refused"))] * 2 + [ready_forever()])
    subtree = SupervisorSpec(
        name="exchanges",
        children=(ChildSpec("flaky", flaky.run, backoff=FAST),),
        max_restarts=0,  # the first crash escalates the subtree
        period_s=10.0,
    )
    events: list[SupervisionEvent] = []
    with trio.fail_after(100):
        async with open_supervisor_tree(
            SupervisorSpec(children=(subtree,), max_restarts=5), observers=[events.append]
        ) as sup:
            await trio.sleep(5)
            (child,) = sup.children()
            assert (child.name, child.state, child.restarts) == ("exchanges", "running", 2)
            # A subtree's escalation is an expected fault, not a programming error.
            assert (child.faults, child.programming_errors) == (2, 0)
    assert len(flaky.starts) == 3
    crashes = [(e.supervisor, e.child) for e in events if isinstance(e, ChildCrashed)]
    assert crashes == [
        ("exchanges", "flaky"),
        ("root", "exchanges"),
        ("exchanges", "flaky"),
        ("root", "exchanges"),
    ]


async def test_start_child_is_refused_once_the_tree_is_closed(autojump_clock: Any) -> None:
    log: list[tuple[str, str, float]] = []
    async with open_supervisor_tree([]) as sup:
        pass
    with pytest.raises(RuntimeError, match="not accepting children"):
        await sup.start_child(actor("late", log))


async def test_a_child_stopped_by_another_task_during_shutdown_is_skipped(
    autojump_clock: Any,
) -> None:
    # While the ordered shutdown waits on "b" (the last started, stopped first), a control
    # request stops "a" and forgets it: the shutdown must carry on, not KeyError on "a".
    log: list[tuple[str, str, float]] = []
    b_cleaning = trio.Event()

    async def slow_cleanup(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            b_cleaning.set()
            with cleanup_scope():
                await trio.sleep(1.0)

    stopped: list[str] = []
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            async with open_supervisor_tree([actor("a", log), ChildSpec("b", slow_cleanup)]) as sup:

                async def stop_a_meanwhile() -> None:
                    await b_cleaning.wait()
                    stopped.append((await sup.stop_child("a")).state)

                nursery.start_soon(stop_a_meanwhile)
    assert stopped == ["stopped"]
    assert [child.name for child in sup.children()] == ["b"]


async def test_nested_supervisors_stop_depth_first_in_reverse_under_an_outside_cancel(
    autojump_clock: Any, records: list[Any]
) -> None:
    # Each nested child takes 3 s to clean up: more than a plain child's default grace for the
    # whole subtree, which a nested supervisor does not have (its shutdown is unlimited).
    log: list[tuple[str, str, float]] = []
    spec = SupervisorSpec(
        children=(
            actor("journal", log, cleanup_s=1.0),
            SupervisorSpec(
                name="feeds", children=[actor(n, log, cleanup_s=3.0) for n in ("f1", "f2")]
            ),
            SupervisorSpec(
                name="bots", children=[actor(n, log, cleanup_s=3.0) for n in ("b1", "b2")]
            ),
        ),
        max_restarts=0,
    )
    t0 = trio.current_time()
    with trio.fail_after(100):
        with trio.move_on_after(20) as outside:
            async with open_supervisor_tree(spec):
                await trio.sleep_forever()
    assert outside.cancelled_caught

    def t(offset: float) -> Any:
        return pytest.approx(t0 + offset)

    cleaned = [(name, when) for name, step, when in log if step == "cleaned"]
    assert cleaned == [
        ("b2", t(23.0)),
        ("b1", t(26.0)),
        ("f2", t(29.0)),
        ("f1", t(32.0)),
        ("journal", t(33.0)),
    ]
    assert not [r for r in records if r["level"].no >= 30]


async def test_a_subtree_handle_starts_children_and_survives_a_restart_of_its_subtree(
    autojump_clock: Any,
) -> None:
    log: list[tuple[str, str, float]] = []
    flaky = Script([ready_then_crash(5.0, ConnectionLostError("gone")), ready_forever()])
    subtree = SupervisorSpec(
        name="bots",
        children=(ChildSpec("flaky", flaky.run, backoff=FAST),),
        max_restarts=0,  # flaky's crash escalates the subtree; the root restarts it
        backoff=FAST,
    )
    with trio.fail_after(100):
        async with open_supervisor_tree(SupervisorSpec(children=(subtree,))) as root:
            bots = root.subtree("bots")
            assert bots.name == "bots"
            with pytest.raises(KeyError):
                root.subtree("nope")
            await bots.start_child(actor("spawned", log))
            assert [c.name for c in bots.children()] == ["flaky", "spawned"]

            await trio.sleep(10)  # flaky crashed at 5 s: the subtree was restarted
            assert root.subtree("bots") is bots
            ((child,),) = [root.children()]
            assert (child.name, child.restarts, child.state) == ("bots", 1, "running")
            # A restart starts over from the spec: the spawned child is not brought back...
            assert [c.name for c in bots.children()] == ["flaky"]
            # ... and the same handle starts children in the new run.
            await bots.start_child(actor("again", log))
            assert [c.name for c in bots.children()] == ["flaky", "again"]
    assert [step for name, step, _ in log if name == "spawned"] == ["starting", "ready", "cleaned"]


async def test_a_first_failure_at_a_root_without_restarts_escalates_before_later_children(
    autojump_clock: Any, records: list[Any]
) -> None:
    log: list[tuple[str, str, float]] = []
    events: list[SupervisionEvent] = []
    broken = Script([crash(ConnectionLostError("held by another process"))])
    spec = SupervisorSpec(
        children=(actor("first", log), ChildSpec("broken", broken.run), actor("later", log)),
        max_restarts=0,
    )
    with trio.fail_after(100), pytest.RaisesGroup(RestartIntensityError) as raised:
        async with open_supervisor_tree(spec, observers=[events.append]):
            pytest.fail("the body must not run")
    (escalated,) = raised.value.exceptions
    assert "child 'broken' failed" in str(escalated)
    assert isinstance(escalated.__cause__, ExceptionGroup)
    assert escalated.__cause__.exceptions[0].args == ("held by another process",)
    assert [(name, step) for name, step, _ in log] == [
        ("first", "starting"),
        ("first", "ready"),
        ("first", "cleaned"),
    ]
    assert len(broken.starts) == 1
    # Nothing was restarted, so it is not reported as a crash loop.
    assert [r["message"] for r in records if r["level"].no >= 30] == ["child crashed"]
    assert any(r["message"] == "escalating child failure" for r in records)
    (event,) = [e for e in events if isinstance(e, Escalated)]
    assert (event.supervisor, event.child, event.max_restarts) == ("root", "broken", 0)


async def test_a_dynamic_child_whose_first_failure_escalates_stops_its_supervisor(
    autojump_clock: Any,
) -> None:
    # The caller of start_child is not the one to fail: the supervisor gives up, as it would
    # for any of its children, and the caller is cancelled with the rest of the block.
    log: list[tuple[str, str, float]] = []
    broken = Script([crash(ConnectionLostError("refused"))])
    reached_after_start = False
    spec = SupervisorSpec(children=(actor("journal", log),), max_restarts=0)
    with trio.fail_after(100), pytest.RaisesGroup(RestartIntensityError):
        async with open_supervisor_tree(spec) as sup:
            snapshot = await sup.start_child(ChildSpec("broken", broken.run))
            assert snapshot.state == "failed"
            reached_after_start = True
            await trio.sleep_forever()
    assert reached_after_start
    assert [step for name, step, _ in log if name == "journal"] == ["starting", "ready", "cleaned"]


async def test_contained_children_in_a_crash_loop_are_given_up_and_the_rest_runs_on(
    autojump_clock: Any,
) -> None:
    """Two contained children crash in a loop under a supervisor whose own budget is one
    restart: each is given up on alone, the sibling keeps running, nothing escalates, and a
    ``start_child`` of the same name brings one back with a fresh budget."""
    log: list[tuple[str, str, float]] = []
    events: list[SupervisionEvent] = []
    limit = RestartLimit(max_restarts=2, period_s=10.0)
    buggy = [Script([ready_then_crash(0.5, ZeroDivisionError("bug"))]) for _ in range(2)]
    spec = SupervisorSpec(
        children=(
            actor("healthy", log),
            *(
                ChildSpec(f"bot:{i}", s.run, "transient", FAST, restart_limit=limit)
                for i, s in enumerate(buggy)
            ),
        ),
        max_restarts=1,
        period_s=10.0,
    )
    with trio.fail_after(100):
        async with open_supervisor_tree(spec, observers=[events.append]) as sup:
            await trio.sleep(5)
            states = {c.name: (c.state, c.restarts) for c in sup.children()}
            assert states == {
                "healthy": ("running", 0),
                "bot:0": ("failed", 2),
                "bot:1": ("failed", 2),
            }
            assert sup.statistics().restarts_in_period == 0  # never in the shared budget
            assert [len(s.starts) for s in buggy] == [3, 3]
            given_up = sorted(e.child for e in events if isinstance(e, ChildGaveUp))
            assert given_up == ["bot:0", "bot:1"]

            fixed = Script([ready_forever()])
            again = await sup.start_child(
                ChildSpec("bot:0", fixed.run, "transient", FAST, restart_limit=limit)
            )
            assert (again.state, again.restarts, again.last_error) == ("running", 0, None)
    assert not [e for e in events if isinstance(e, Escalated)]
    assert [step for name, step, _ in log if name == "healthy"] == ["starting", "ready", "cleaned"]
