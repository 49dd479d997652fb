"""The supervision tree as data (pure): what to run, how to restart it, how hard to try.

The daemon's own tree is assembled by ``supervisor.system.open_supervisor``: each exchange
pool keeps its connection under a ``Keeper`` of its own (a one-child supervisor with a
breaker), and bots are dynamic ``transient`` children of the ``bots`` supervisor.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs

from actors.errors import FeedError, RestartIntensityError
from supervisor.otp.backoff import BackoffPolicy
from supervisor.otp.breaker import BreakerPolicy

RestartType = Literal["permanent", "transient", "temporary"]
RESTART_TYPES: tuple[RestartType, ...] = ("permanent", "transient", "temporary")

# ``async def run(*, task_status=trio.TASK_STATUS_IGNORED)``; bind other arguments with
# functools.partial. It calls ``task_status.started()`` once it is really ready.
ChildRun = Callable[..., Awaitable[Any]]

# Errors a child is expected to meet in normal life (a flaky network, a subtree that gave up).
# Anything else is a programming error: still restarted per spec, but logged with a traceback
# and counted apart, so it is never mistaken for a flaky feed (STYLE 22).
DEFAULT_FAULTS: tuple[type[Exception], ...] = (FeedError, RestartIntensityError)


def _non_empty(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class ChildSpec:
    """One supervised child (OTP restart types).

    * ``permanent``: always restarted, even after returning normally.
    * ``transient``: restarted only after an error; returning normally ends it.
    * ``temporary``: never restarted.

    ``shutdown_grace_s`` bounds the child's own cleanup (see ``keeper.cleanup_scope``) and how
    long an ordered shutdown waits for it before moving on to the next child.
    """

    name: str = attrs.field(validator=_non_empty)
    run: ChildRun = attrs.field(eq=False)
    restart: RestartType = attrs.field(
        default="permanent", validator=attrs.validators.in_(RESTART_TYPES)
    )
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    breaker: BreakerPolicy | None = None
    shutdown_grace_s: float = attrs.field(default=5.0, validator=_positive)
    faults: tuple[type[Exception], ...] = DEFAULT_FAULTS


@attrs.frozen
class SupervisorSpec:
    """Children are started in order and stopped in reverse order; a nested ``SupervisorSpec``
    runs as a permanent child holding its own subtree (``tree.supervisor_child``)."""

    children: tuple[ChildSpec | SupervisorSpec, ...] = attrs.field(default=(), converter=tuple)
    max_restarts: int = attrs.field(default=5)
    period_s: float = attrs.field(default=60.0, validator=_positive)
    name: str = attrs.field(default="root", validator=_non_empty)

    @max_restarts.validator
    def _max_restarts(self, attribute: attrs.Attribute, value: int) -> None:
        if value < 0:
            raise ValueError(f"max_restarts must be >= 0, got {value!r}")

    @children.validator
    def _unique(self, attribute: attrs.Attribute, value: tuple[Any, ...]) -> None:
        seen: set[str] = set()
        for child in value:
            if child.name in seen:
                raise ValueError(f"duplicate child name {child.name!r} in supervisor {self.name!r}")
            seen.add(child.name)
