"""The keeper: one task per child that starts it, watches it, and restarts it per its spec.

Decisions:

* Each attempt runs the child in its own nursery (its own cancel scope) via ``nursery.start``,
  so "ready" means the child called ``task_status.started()``. A child that returns without
  calling it is treated as ready-then-exited (one-shot jobs need not signal).
* The keeper catches ``Exception`` (an ``ExceptionGroup`` from the child's nursery is one) and
  decides after the ``try``; ``trio.Cancelled`` and ``KeyboardInterrupt`` are BaseExceptions,
  never caught, so cancelling the keeper always stops it.
* The keeper itself reports ready (``task_status.started()``) once the child's *first attempt
  has settled*: the child is ready, or it failed and the keeper is now backing off. A child
  whose dependency is down at boot therefore does not block the children started after it;
  ``statistics().state`` tells which case it was.
* An error a child raises *while being stopped* (its cleanup failed) is logged as "child
  failed while stopping" and recorded in ``last_error``; it neither restarts the child nor
  escapes the keeper, and the cancellation goes on (``except*`` splits it from ``Cancelled``;
  when it is the attempt's only error, the keeper's cancelled scope tells it is a stop).
* Restart types as in OTP: permanent children are always restarted, transient ones only after
  an error, temporary ones never (a crash leaves them ``failed``).
* A child is *healthy* once it has run ``backoff.reset_after_s`` since becoming ready. That one
  notion drives three things: the backoff resets, the consecutive-failure count resets, and the
  circuit breaker records a success (so a half-open trial closes the breaker only after a
  healthy run, and a feed that connects and drops at once keeps counting as failing). A crash
  at any time, before or after ready, is a failure. A normal return is not a failure; it counts
  as a breaker success.
* While the breaker is open the child is not started (state ``circuit_open``); the keeper sleeps
  until exactly ``reset_timeout_s`` after it opened, then makes the half-open trial. No backoff
  is added on top.
* Restart intensity is checked when a crash decides a restart (OTP: immediately, not after the
  backoff sleep). Restarts that wait on an open breaker are not counted: the breaker already
  paces them to one per ``reset_timeout_s``, and an exchange that is down for an hour must not
  stop the daemon. Exceeding it raises ``RestartIntensityError`` (chained to the last error),
  which leaves the keeper and so escalates to the supervisor's nursery. A supervisor with no
  budget (``max_restarts=0``, the root) is not in a crash loop: it just passes the failure up,
  logged at INFO (the crash itself was logged) and reported as ``Escalated`` all the same.
* A contained child (``spec.restart_limit``) has an intensity of its own instead: its restarts
  are counted there and never in the supervisor's shared one (a bot in a crash loop must not
  use up the budget of the others), and exceeding it ends the keeper *normally* with the child
  ``failed`` (logged at ERROR, reported as ``ChildGaveUp``): nothing escalates, the supervisor
  and the siblings run on. Only a ``start_child`` of the same name brings it back, with a
  fresh keeper and so a fresh budget.
* Errors that are not in ``spec.faults`` (default: ``FeedError``, ``RestartIntensityError``) are
  programming errors: restarted per spec all the same, but logged at ERROR with the traceback
  and counted in ``programming_errors``; expected faults are a WARNING without traceback,
  counted in ``faults``. The traceback is logged here and nowhere else, and once per distinct
  error: the same error again (same exception types raised from the same frames; the message
  may differ, it often carries a value) is one ERROR line with its ``occurrences`` count. A
  strategy that raises on every tick would otherwise bury the log in identical tracebacks.
  The count is per keeper (per child, per spawn), over at most ``SEEN_ERRORS_LIMIT`` errors.
* Observers (``supervisor.otp.events``) see every state change, crash, breaker transition and
  escalation, for metrics and alerts.
"""

from __future__ import annotations

import math
import random
import traceback
from collections.abc import Hashable, Sequence
from contextvars import ContextVar
from typing import Any

import attrs
import trio
from loguru import logger

from actors.errors import RestartIntensityError, describe_error, error_leaves
from supervisor.otp.backoff import Backoff
from supervisor.otp.breaker import BreakerState, CircuitBreaker, Transition
from supervisor.otp.events import (
    BreakerTransitioned,
    ChildCrashed,
    ChildGaveUp,
    ChildState,
    ChildStateChanged,
    Escalated,
    Observer,
    SupervisionEvent,
)
from supervisor.otp.intensity import RestartIntensity
from supervisor.otp.spec import ChildSpec, RestartType

__all__ = ["ChildStatistics", "Keeper", "cleanup_scope", "error_signature"]

# Distinct errors a keeper remembers for its "traceback once" rule: enough for any real child;
# beyond it the oldest is forgotten (and would log its traceback again), so memory stays bounded.
SEEN_ERRORS_LIMIT = 64

_shutdown_grace_s: ContextVar[float] = ContextVar("botcriptofy_shutdown_grace_s", default=5.0)


def cleanup_scope() -> trio.CancelScope:
    """A shielded scope bounded by the running child's ``shutdown_grace_s``.

    For a child's ``finally`` that must still await (flush a journal, unsubscribe) after it was
    cancelled: ``with cleanup_scope(): await journal.flush()``. The grace comes from a
    contextvar the keeper sets, so it reaches every task the child spawns.
    """
    return trio.move_on_after(_shutdown_grace_s.get(), shield=True)


@attrs.frozen
class ChildStatistics:
    """A frozen snapshot of one child. Times are ``trio.current_time()`` instants.

    ``started_at`` is when the current run became ready (None while not running);
    ``retry_at`` is when the next attempt is due (while in backoff or circuit_open).
    """

    name: str
    state: ChildState
    restart: RestartType
    restarts: int
    last_error: str | None
    breaker_state: BreakerState | None
    started_at: float | None
    retry_at: float | None
    consecutive_failures: int
    faults: int
    programming_errors: int


def error_signature(error: BaseException) -> Hashable:
    """What makes two errors "the same" for logging: each leaf's type and the frames it was
    raised through (file, line, function). Not the message: ``KeyError('ETH')`` and
    ``KeyError('BTC')`` from the same line are one bug, and the one-line repeat still shows
    the message."""
    return tuple(
        (
            f"{type(leaf).__module__}.{type(leaf).__qualname__}",
            tuple(
                (frame.f_code.co_filename, lineno, frame.f_code.co_name)
                for frame, lineno in traceback.walk_tb(leaf.__traceback__)
            ),
        )
        for leaf in error_leaves(error)
    )


def _expected(error: Exception, faults: tuple[type[Exception], ...]) -> bool:
    if isinstance(error, BaseExceptionGroup):
        _matched, rest = error.split(faults)
        return rest is None
    return isinstance(error, faults)


class _ReadyOnce:
    """The keeper's own ready signal: sent once, after the first attempt settles."""

    def __init__(self, task_status: trio.TaskStatus[None]):
        self._task_status = task_status
        self.sent = False

    def signal(self) -> None:
        if not self.sent:
            self.sent = True
            self._task_status.started()


class _ChildStatus:
    """Passed to the child as ``task_status``; remembers whether it signalled."""

    def __init__(self, task_status: trio.TaskStatus[Any]):
        self._task_status = task_status
        self.called = False

    def started(self, value: Any = None) -> None:
        self.called = True
        self._task_status.started(value)


@attrs.define(eq=False)
class Keeper:
    """Keeps one child. ``intensity`` is shared by the keepers of one supervisor."""

    spec: ChildSpec
    intensity: RestartIntensity = attrs.field(factory=RestartIntensity)
    rng: random.Random = attrs.field(factory=random.Random)
    observers: Sequence[Observer] = ()
    supervisor: str = "root"
    _backoff: Backoff = attrs.field(init=False)
    _breaker: CircuitBreaker | None = attrs.field(init=False)
    _state: ChildState = attrs.field(default="starting", init=False)
    _attempts: int = attrs.field(default=0, init=False)
    _last_error: str | None = attrs.field(default=None, init=False)
    _started_at: float | None = attrs.field(default=None, init=False)
    _retry_at: float | None = attrs.field(default=None, init=False)
    _consecutive_failures: int = attrs.field(default=0, init=False)
    _faults: int = attrs.field(default=0, init=False)
    _programming_errors: int = attrs.field(default=0, init=False)
    _own_intensity: RestartIntensity | None = attrs.field(default=None, init=False)
    _seen_errors: dict[Hashable, int] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self._backoff = Backoff(self.spec.backoff, rng=self.rng)
        limit = self.spec.restart_limit
        if limit is not None:
            self._own_intensity = RestartIntensity(limit.max_restarts, limit.period_s)
        self._breaker = None
        if self.spec.breaker is not None:
            self._breaker = CircuitBreaker(
                self.spec.breaker, on_transition=[self._on_breaker_transition]
            )

    def statistics(self) -> ChildStatistics:
        return ChildStatistics(
            name=self.spec.name,
            state=self._state,
            restart=self.spec.restart,
            restarts=max(0, self._attempts - 1),
            last_error=self._last_error,
            breaker_state=None if self._breaker is None else self._breaker.state,
            started_at=self._started_at,
            retry_at=self._retry_at,
            consecutive_failures=self._consecutive_failures,
            faults=self._faults,
            programming_errors=self._programming_errors,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the child until it ends for good (per its restart type) or is cancelled.

        Raises ``RestartIntensityError`` when the supervisor's restart intensity is exceeded;
        returns, the child ``failed``, when a contained child exceeds its own.
        """
        ready = _ReadyOnce(task_status)
        grace_token = _shutdown_grace_s.set(self.spec.shutdown_grace_s)
        try:
            with logger.contextualize(child=self.spec.name):
                try:
                    await self._supervise(ready)
                finally:
                    if self._state not in ("stopped", "failed"):
                        self._started_at = None
                        self._retry_at = None
                        self._set_state("stopped", trio.current_time())
                        logger.info("child stopped")
        finally:
            _shutdown_grace_s.reset(grace_token)

    async def _supervise(self, ready: _ReadyOnce) -> None:
        while True:
            breaker = self._breaker
            if breaker is not None:
                now = trio.current_time()
                if not breaker.allow(now):
                    self._retry_at = now + breaker.time_until_retry(now)
                    self._set_state("circuit_open", now)
                    await trio.sleep_until(self._retry_at)
                    continue

            error = await self._attempt(ready)
            now = trio.current_time()
            self._started_at = None
            if error is None:
                logger.info("child exited", restart=self.spec.restart)
                self._consecutive_failures = 0
                if breaker is not None:
                    breaker.record_success(now)
            else:
                self._record_crash(error, now)
            ready.signal()  # the first attempt has settled, whichever way
            # A child that returned while the keeper is being cancelled is being stopped:
            # no restart, and nothing counted toward intensity.
            await trio.lowlevel.checkpoint_if_cancelled()

            if self.spec.restart == "temporary" or (
                error is None and self.spec.restart == "transient"
            ):
                self._set_state("stopped" if error is None else "failed", now)
                return
            if breaker is not None and breaker.state == "open":
                continue  # paced by the breaker, not counted toward intensity
            if self._own_intensity is not None:
                if self._own_intensity.record(now):
                    self._give_up(self._own_intensity, error, now)
                    return
            elif self.intensity.record(now):
                self._escalate(error, now)
            delay = self._backoff.next_delay()
            self._retry_at = now + delay
            self._set_state("backoff", now)
            logger.info("restart scheduled", delay_s=delay, failures=self._backoff.failures)
            await trio.sleep_until(self._retry_at)

    async def _attempt(self, ready: _ReadyOnce) -> Exception | None:
        """Run the child once; returns its error, or None if it returned normally."""
        self._attempts += 1
        self._retry_at = None
        self._set_state("starting", trio.current_time())
        stopping = False
        try:
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self._run_child, nursery.cancel_scope)
                    self._on_ready(ready, nursery)
            except Exception as exc:  # ExceptionGroup included; never Cancelled/KeyboardInterrupt
                if trio.current_effective_deadline() != -math.inf:
                    return exc
                # The keeper is being cancelled and the child turned its Cancelled into an
                # error (its only task left, e.g. after the health watch finished): a stop,
                # not a crash. Recorded as such; the checkpoint below lets the stop go on.
                self._record_stop_error(exc)
                stopping = True
        except* Exception as errors:
            # Only reached with errors mixed with Cancelled or KeyboardInterrupt in one group:
            # the child failed while being stopped. Log them; except* re-raises the rest, so
            # the stop goes on.
            self._record_stop_error(errors)
        if stopping:
            await trio.lowlevel.checkpoint_if_cancelled()
        return None

    async def _run_child(
        self, attempt_scope: trio.CancelScope, *, task_status: trio.TaskStatus[Any]
    ) -> None:
        status = _ChildStatus(task_status)
        await self.spec.run(task_status=status)
        if not status.called:
            status.started()
        attempt_scope.cancel(reason="child returned")  # ends the health watch

    def _on_ready(self, ready: _ReadyOnce, nursery: trio.Nursery) -> None:
        now = trio.current_time()
        self._started_at = now
        self._set_state("running", now)
        logger.info("child started", attempt=self._attempts)
        ready.signal()
        nursery.start_soon(self._watch_health, now)

    async def _watch_health(self, ready_at: float) -> None:
        await trio.sleep_until(ready_at + self.spec.backoff.reset_after_s)
        now = trio.current_time()
        self._backoff.observe_run(ready_at, now)
        self._consecutive_failures = 0
        if self._breaker is not None:
            self._breaker.record_success(now)
        logger.debug("child healthy", ran_s=now - ready_at)

    def _record_crash(self, error: Exception, now: float) -> None:
        programming = not _expected(error, self.spec.faults)
        self._consecutive_failures += 1
        self._last_error = describe_error(error)
        fields = {
            "error": self._last_error,
            "programming_error": programming,
            "consecutive_failures": self._consecutive_failures,
        }
        occurrences = 1
        if programming:
            self._programming_errors += 1
            occurrences = self._seen(error_signature(error))
            if occurrences == 1:
                logger.opt(exception=error).error("child crashed", **fields, occurrences=1)
            else:  # its traceback is in the log already
                logger.error("child crashed", **fields, occurrences=occurrences)
        else:
            self._faults += 1
            logger.warning("child crashed", **fields)
        self._notify(
            ChildCrashed(
                supervisor=self.supervisor,
                child=self.spec.name,
                error=self._last_error,
                programming_error=programming,
                consecutive_failures=self._consecutive_failures,
                at=now,
                error_types=tuple(
                    dict.fromkeys(type(leaf).__name__ for leaf in error_leaves(error))
                ),
                occurrences=occurrences,
            )
        )
        if self._breaker is not None:
            self._breaker.record_failure(now)

    def _seen(self, signature: Hashable) -> int:
        """Count one more occurrence of ``signature``; returns the count, 1 the first time."""
        count = self._seen_errors.pop(signature, 0) + 1
        if count == 1 and len(self._seen_errors) >= SEEN_ERRORS_LIMIT:
            del self._seen_errors[next(iter(self._seen_errors))]  # the least recently seen
        self._seen_errors[signature] = count  # (re)inserted last: the most recently seen
        return count

    def _record_stop_error(self, errors: Exception) -> None:
        self._last_error = describe_error(errors)
        if _expected(errors, self.spec.faults):
            # A feed fault while stopping is the shutdown order at work (a bot whose feed closed
            # first), not news for an operator: info, not a warning.
            logger.info("child ended with a fault while stopping", error=self._last_error)
        else:
            self._programming_errors += 1
            logger.opt(exception=errors).error(
                "child failed while stopping", error=self._last_error, programming_error=True
            )

    def _escalate(self, error: Exception | None, now: float) -> None:
        restarts = self.intensity.count(now)
        limit, period_s = self.intensity.max_restarts, self.intensity.period_s
        self._set_state("failed", now)
        if limit == 0:
            logger.info("escalating child failure", supervisor=self.supervisor)
        else:
            logger.error(
                "restart intensity exceeded",
                supervisor=self.supervisor,
                restarts=restarts,
                max_restarts=limit,
                period_s=period_s,
            )
        self._notify(
            Escalated(
                supervisor=self.supervisor,
                child=self.spec.name,
                restarts=restarts,
                max_restarts=limit,
                period_s=period_s,
                at=now,
            )
        )
        if limit == 0:
            message = f"supervisor {self.supervisor!r}: child {self.spec.name!r} failed"
        else:
            message = (
                f"supervisor {self.supervisor!r}: more than {limit} restarts within"
                f" {period_s} s (last: child {self.spec.name!r})"
            )
        raise RestartIntensityError(message) from error

    def _give_up(self, intensity: RestartIntensity, error: Exception | None, now: float) -> None:
        restarts = intensity.count(now)
        last = None if error is None else self._last_error
        self._retry_at = None
        self._set_state("failed", now)
        logger.error(
            "crash loop: child given up",
            supervisor=self.supervisor,
            restarts=restarts,
            max_restarts=intensity.max_restarts,
            period_s=intensity.period_s,
            error=last,
        )
        self._notify(
            ChildGaveUp(
                supervisor=self.supervisor,
                child=self.spec.name,
                restarts=restarts,
                max_restarts=intensity.max_restarts,
                period_s=intensity.period_s,
                error=last,
                at=now,
            )
        )

    def _set_state(self, state: ChildState, now: float) -> None:
        old, self._state = self._state, state
        if old != state:
            self._notify(
                ChildStateChanged(
                    supervisor=self.supervisor,
                    child=self.spec.name,
                    from_state=old,
                    to_state=state,
                    at=now,
                )
            )

    def _on_breaker_transition(self, transition: Transition) -> None:
        if transition.to_state == "open":
            logger.warning(
                "circuit opened",
                failures=transition.failures,
                retry_in_s=self.spec.breaker.reset_timeout_s if self.spec.breaker else None,
            )
        elif transition.to_state == "half_open":
            logger.info("circuit half-open")
        else:
            logger.info("circuit closed")
        self._notify(
            BreakerTransitioned(
                supervisor=self.supervisor, child=self.spec.name, transition=transition
            )
        )

    def _notify(self, event: SupervisionEvent) -> None:
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                logger.opt(exception=True).error(
                    "observer failed",
                    observer=getattr(observer, "__qualname__", type(observer).__name__),
                    event=type(event).__name__,
                )
