"""A supervisor: keepers for a set of children in one nursery (one_for_one), ordered start and
ordered shutdown.

``async with open_supervisor_tree(spec) as sup:`` starts the spec's children in order, each
one's first attempt settled before the next starts (``Keeper.run``), and yields the root's
``Supervisor``, which can start and stop children while the block runs.

Decisions:

* **Ordered shutdown, even under outside cancellation.** Once a child is ready its keeper runs
  inside a *shielded* cancel scope of its own, so cancelling the block (SIGINT cancelling the
  root, a ``move_on_after`` around it, an error in the body) does not hit every child at once.
  Leaving the block, for whatever reason, stops the children one at a time in reverse start
  order: cancel the child's scope, then wait (shielded) up to its ``shutdown_grace_s`` (plus
  ``STOP_MARGIN_S``) for its keeper to finish; a child that overruns is logged and the next
  one is stopped anyway (the nursery still waits for it: no task outlives its nursery).
  Children bound their own cleanup with ``keeper.cleanup_scope()``. Before a child is ready
  the shield is off, so a caller of ``start_child`` can always be cancelled. This is the only
  mechanism that orders a shutdown: whatever must outlive something else is started before it.
* **Escalation.** A keeper that exceeds the restart intensity raises ``RestartIntensityError``
  (its ``__cause__`` is the child's last error); the nursery cancels the block, the remaining
  children are stopped in reverse order, and the ``async with`` raises an ``ExceptionGroup``
  holding it (Trio's strict groups: so does an exception raised in the body). Catch it with
  ``except* RestartIntensityError``. With ``max_restarts=0`` a supervisor restarts nothing: any
  child failure escalates at once.
* **Containment.** A child with its own ``restart_limit`` never escalates: beyond its limit it
  is left ``failed`` and the supervisor goes on with the others (``ChildGaveUp``). Its restarts
  are not counted in the shared intensity either, so any number of contained children crashing
  at once cannot make their supervisor give up. Which failures are contained is a choice made
  where the tree is built (``supervisor.build``: bots are, infrastructure is not).
* **Nested supervisors.** A ``SupervisorSpec`` among the children runs as one child of its
  parent (restart type, backoff and shutdown time from that spec). Its ``Supervisor`` handle is
  created once, with the parent, and reused when the parent restarts it (each run starts over
  from the spec's children, as in OTP); ``subtree(name)`` returns it, so callers can start and
  stop children in a subtree and read their statistics. When a subtree escalates, its parent
  restarts it and counts that against its own intensity.
* **Dynamic children.** ``start_child`` adds a child at the end of the order; ``stop_child``
  cancels its scope and awaits its "done" event (never a flag), then forgets it. A child that
  ended on its own (temporary, transient after a clean exit, contained and given up) stays
  listed with its final state until stopped or replaced by a ``start_child`` with the same name
  (which is how a given-up child comes back, with a fresh budget).
* Each child gets its own ``random.Random``, seeded from the supervisor's ``rng``, so jitter is
  reproducible with a seeded ``rng`` whatever order Trio runs tasks in.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

import attrs
import trio
from loguru import logger

from supervisor.otp.events import Observer
from supervisor.otp.intensity import RestartIntensity
from supervisor.otp.keeper import ChildStatistics, Keeper
from supervisor.otp.spec import ChildSpec, SupervisorSpec

__all__ = ["Supervisor", "SupervisorStatistics", "open_supervisor_tree"]

# How much longer than a child's grace an ordered shutdown waits before calling it an overrun:
# a child that honours its grace still needs a moment to unwind once the grace is over.
STOP_MARGIN_S = 0.5


@attrs.frozen
class SupervisorStatistics:
    name: str
    children: tuple[ChildStatistics, ...]
    restarts_in_period: int
    max_restarts: int
    period_s: float


@attrs.define(eq=False)
class _Child:
    keeper: Keeper
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)

    @property
    def spec(self) -> ChildSpec:
        return self.keeper.spec


class _ShieldWhenReady:
    """Wraps the keeper's task_status: shields the child's scope at the moment it is ready."""

    def __init__(self, task_status: trio.TaskStatus[None], scope: trio.CancelScope):
        self._task_status = task_status
        self._scope = scope

    def started(self, value: None = None) -> None:
        self._scope.shield = True
        self._task_status.started(value)


def _observers(observers: Iterable[Observer]) -> tuple[Observer, ...]:
    return tuple(observers)


@attrs.define(eq=False)
class Supervisor:
    """A supervisor's handle: ``open_supervisor_tree`` runs the root, a parent runs each nested
    one (see the module docstring). Only its own task, and callers of the async methods (in the
    caller's task), touch its state."""

    spec: SupervisorSpec
    rng: random.Random = attrs.field(factory=random.Random)
    observers: tuple[Observer, ...] = attrs.field(default=(), converter=_observers)
    _intensity: RestartIntensity = attrs.field(init=False)
    _children: dict[str, _Child] = attrs.field(factory=dict, init=False)
    _subtrees: dict[str, Supervisor] = attrs.field(factory=dict, init=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)
    _closing: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self._intensity = self._new_intensity()
        for child in self.spec.children:
            if isinstance(child, SupervisorSpec):
                self._subtrees[child.name] = self._new_subtree(child)

    @property
    def name(self) -> str:
        return self.spec.name

    def subtree(self, name: str) -> Supervisor:
        """The handle of the nested supervisor ``name`` (``KeyError`` if there is none). Stable
        across restarts of that subtree: keep it."""
        return self._subtrees[name]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run this supervisor as a child of another: ready once each of its children's first
        attempt has settled; cancelled, it stops them in reverse order."""
        async with self._running():
            task_status.started()
            await trio.sleep_forever()

    async def start_child(self, spec: ChildSpec | SupervisorSpec) -> ChildStatistics:
        """Start a child after the existing ones; returns its snapshot once its first attempt
        has settled (``state`` is ``running``, or ``backoff``/``failed`` if it crashed).

        Raises ``ValueError`` if a child of that name is still kept, ``RuntimeError`` if the
        supervisor is not running or is shutting down. A first failure that exceeds the
        restart intensity escalates from the supervisor, like any other.
        """
        if self._nursery is None or self._closing:
            raise RuntimeError(f"supervisor {self.name!r} is not accepting children")
        existing = self._children.get(spec.name)
        if existing is not None and not existing.done.is_set():
            raise ValueError(f"supervisor {self.name!r} already has a child {spec.name!r}")
        if isinstance(spec, SupervisorSpec):
            subtree = self._subtrees.get(spec.name)
            if subtree is None or subtree.spec != spec:
                subtree = self._subtrees[spec.name] = self._new_subtree(spec)
            child_spec = ChildSpec(
                name=spec.name,
                run=subtree.run,
                restart=spec.restart,
                backoff=spec.backoff,
                shutdown_grace_s=spec.shutdown_grace_s,
            )
        else:
            child_spec = spec
            self._subtrees.pop(spec.name, None)
        keeper = Keeper(
            child_spec,
            intensity=self._intensity,
            rng=self._child_rng(),
            observers=self.observers,
            supervisor=self.name,
        )
        child = _Child(keeper)
        self._children.pop(spec.name, None)
        self._children[spec.name] = child  # registered first, so shutdown sees it at once
        await self._nursery.start(self._keep, child)
        return keeper.statistics()

    async def stop_child(self, name: str) -> ChildStatistics:
        """Cancel the child and wait until its keeper has finished; returns its final snapshot.

        ``KeyError`` if there is no such child.
        """
        child = self._children[name]
        child.scope.cancel(reason=f"stop_child({name!r})")
        await child.done.wait()
        if self._children.get(name) is child:
            del self._children[name]
            if not any(spec.name == name for spec in self.spec.children):
                self._subtrees.pop(name, None)
        return child.keeper.statistics()

    def children(self) -> tuple[ChildStatistics, ...]:
        """One snapshot per child of the current (or last) run, in start order."""
        return tuple(child.keeper.statistics() for child in self._children.values())

    def statistics(self) -> SupervisorStatistics:
        return SupervisorStatistics(
            name=self.name,
            children=self.children(),
            restarts_in_period=self._intensity.count(trio.current_time()),
            max_restarts=self._intensity.max_restarts,
            period_s=self._intensity.period_s,
        )

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """One run: start the spec's children in order; on the way out (whatever the reason),
        stop every child in reverse order, shielded."""
        if self._nursery is not None:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        self._intensity = self._new_intensity()
        self._children = {}
        self._closing = False
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    for child in self.spec.children:
                        await self.start_child(child)
                        # A child whose first failure escalated has cancelled this nursery
                        # (synchronously, as it reported ready): start nothing more.
                        await trio.lowlevel.checkpoint_if_cancelled()
                    yield
                finally:
                    with trio.CancelScope(shield=True):
                        await self._stop_all()
        finally:
            self._nursery = None

    def _new_intensity(self) -> RestartIntensity:
        return RestartIntensity(self.spec.max_restarts, self.spec.period_s)

    def _new_subtree(self, spec: SupervisorSpec) -> Supervisor:
        return Supervisor(spec, rng=self._child_rng(), observers=self.observers)

    def _child_rng(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))

    async def _keep(self, child: _Child, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            with logger.contextualize(supervisor=self.name), child.scope:
                await child.keeper.run(task_status=_ShieldWhenReady(task_status, child.scope))
        finally:
            child.done.set()

    async def _stop_all(self) -> None:
        """Reverse start order, one at a time; the caller shields this."""
        self._closing = True
        # A snapshot of the children: a concurrent ``stop_child`` may forget one meanwhile.
        for child in reversed(list(self._children.values())):
            if child.done.is_set():
                continue
            name = child.spec.name
            child.scope.cancel(reason=f"supervisor {self.name!r} shutting down")
            with trio.move_on_after(child.spec.shutdown_grace_s + STOP_MARGIN_S) as waited:
                await child.done.wait()
            if waited.cancelled_caught:
                logger.error(
                    "child overran shutdown grace",
                    supervisor=self.name,
                    child=name,
                    grace_s=child.spec.shutdown_grace_s,
                )


@asynccontextmanager
async def open_supervisor_tree(
    spec: SupervisorSpec | Iterable[ChildSpec | SupervisorSpec] = (),
    *,
    rng: random.Random | None = None,
    observers: Sequence[Observer] = (),
) -> AsyncIterator[Supervisor]:
    """Run a supervision tree for the duration of the block (see the module docstring).

    ``spec`` is a ``SupervisorSpec`` or just its children (default limits). ``rng`` seeds
    every child's backoff jitter; ``observers`` see every supervision event of the whole tree,
    nested supervisors included.
    """
    if not isinstance(spec, SupervisorSpec):
        spec = SupervisorSpec(children=spec)
    sup = Supervisor(spec, rng=rng if rng is not None else random.Random(), observers=observers)
    async with sup._running():
        yield sup
