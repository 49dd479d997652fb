"""The supervision tree as data (pure): what to run, how to restart it, how hard to try.

A ``SupervisorSpec`` lists its children in start order; a child is a ``ChildSpec`` (one task
kept by a keeper) or a nested ``SupervisorSpec`` (a subtree, run by the parent as one child).
The daemon's whole tree is assembled by ``supervisor.build.build_tree``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
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
# and counted apart, so it is never mistaken for a flaky feed.
DEFAULT_FAULTS: tuple[type[Exception], ...] = (FeedError, RestartIntensityError)


def _non_empty(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


def _positive(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _positive_or_infinite(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:  # NaN too
        raise ValueError(f"{attribute.name} must be > 0 (inf: no limit), got {value!r}")


@attrs.frozen
class RestartLimit:
    """A child's own restart intensity: more than ``max_restarts`` restarts within ``period_s``
    and this child alone is given up on (see ``ChildSpec.restart_limit``)."""

    max_restarts: int = attrs.field(default=5)
    period_s: float = attrs.field(default=60.0, validator=_positive)

    @max_restarts.validator
    def _max_restarts(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"max_restarts must be >= 0, got {value!r}")


@attrs.frozen
class ChildSpec:
    """One supervised child (OTP restart types).

    * ``permanent``: always restarted, even after returning normally.
    * ``transient``: restarted only after an error; returning normally ends it.
    * ``temporary``: never restarted.

    ``shutdown_grace_s`` bounds the child's own cleanup (see ``keeper.cleanup_scope``) and how
    long an ordered shutdown waits for it before moving on to the next child.

    ``restart_limit`` makes the child *contained*: its restarts count against that limit only,
    never against its supervisor's, and exceeding it leaves the child ``failed`` (a
    ``ChildGaveUp`` event) while its siblings and the supervisor run on. It is OTP's answer
    (each such child under a ``temporary`` supervisor of its own, with its own MaxR/MaxT)
    folded into the keeper, so the child keeps its name and statistics in its supervisor. For
    children whose crash loop is their own business (a bot with a buggy strategy); without it
    (infrastructure: the journal, the feeds) the failure escalates, as in OTP.
    """

    name: str = attrs.field(validator=_non_empty)
    run: ChildRun = attrs.field(eq=False)
    restart: RestartType = attrs.field(
        default="permanent", validator=attrs.validators.in_(RESTART_TYPES)
    )
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    breaker: BreakerPolicy | None = None
    shutdown_grace_s: float = attrs.field(default=5.0, validator=_positive_or_infinite)
    faults: tuple[type[Exception], ...] = DEFAULT_FAULTS
    restart_limit: RestartLimit | None = None


def _children(
    children: Iterable[ChildSpec | SupervisorSpec],
) -> tuple[ChildSpec | SupervisorSpec, ...]:
    return tuple(children)


@attrs.frozen
class SupervisorSpec:
    """A supervisor: children started in order and stopped in reverse order, restarted one for
    one within ``max_restarts`` per ``period_s`` (beyond that the supervisor gives up and its
    parent hears of it).

    ``restart``, ``backoff`` and ``shutdown_grace_s`` say how a parent keeps this supervisor when
    it is nested. As in OTP, a nested supervisor's shutdown time is unlimited by default: it
    bounds each of its own children's stop, and the parent must not move on to stopping the
    siblings this subtree depends on while it is still stopping its children.
    """

    children: tuple[ChildSpec | SupervisorSpec, ...] = attrs.field(default=(), converter=_children)
    max_restarts: int = attrs.field(default=5)
    period_s: float = attrs.field(default=60.0, validator=_positive)
    name: str = attrs.field(default="root", validator=_non_empty)
    restart: RestartType = attrs.field(
        default="permanent", validator=attrs.validators.in_(RESTART_TYPES)
    )
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    shutdown_grace_s: float = attrs.field(default=math.inf, validator=_positive_or_infinite)

    @max_restarts.validator
    def _max_restarts(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"max_restarts must be >= 0, got {value!r}")

    @children.validator
    def _unique(self, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
        seen: set[str] = set()
        for child in value:
            if child.name in seen:
                raise ValueError(f"duplicate child name {child.name!r} in supervisor {self.name!r}")
            seen.add(child.name)

    def child(self, name: str) -> ChildSpec | SupervisorSpec:
        """The child spec called ``name`` (``KeyError`` if there is none)."""
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)
