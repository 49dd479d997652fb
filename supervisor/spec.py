"""The supervision tree as data (pure): what to run, how to restart it, how hard to try.

``build_tree(config, ...)`` turns a ``Config`` into a ``SupervisorSpec`` without running
anything, so the tree can be unit-tested; the callables that make each child's ``run`` are
injected, since exchanges and bots live in other packages.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs

from actors.errors import FeedError, RestartIntensityError
from supervisor.backoff import BackoffPolicy
from supervisor.breaker import BreakerPolicy
from supervisor.config import BotConfig, Config, ExchangeConfig

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


def build_tree(
    config: Config,
    *,
    exchange_run: Callable[[ExchangeConfig], ChildRun],
    bot_run: Callable[[BotConfig], ChildRun],
) -> SupervisorSpec:
    """``root`` -> ``exchanges`` (one permanent child per exchange, with a circuit breaker)
    then ``bots`` (one transient child per bot).

    Exchanges come first so they are started first and stopped last: bots never outlive the
    feeds they trade on. Bots are transient: a bot that returns has decided to stop; a bot
    that crashes is restarted. Children are named by exchange name and bot id; the subtree
    tells them apart. Each subtree gets the config's restart intensity, and so does the root,
    which sees one restart per subtree failure.
    """
    sup = config.supervisor
    grace = sup.shutdown_grace_s
    exchanges = tuple(
        ChildSpec(
            name=ex.name,
            run=exchange_run(ex),
            restart="permanent",
            backoff=BackoffPolicy.from_config(ex.backoff or config.backoff),
            breaker=BreakerPolicy.from_config(ex.circuit_breaker or config.circuit_breaker),
            shutdown_grace_s=grace,
        )
        for ex in config.exchanges
    )
    bots = tuple(
        ChildSpec(
            name=bot.id,
            run=bot_run(bot),
            restart="transient",
            backoff=BackoffPolicy.from_config(config.backoff),
            shutdown_grace_s=grace,
        )
        for bot in config.bots
    )
    limits = {"max_restarts": sup.max_restarts, "period_s": sup.period_s}
    return SupervisorSpec(
        name="root",
        children=(
            SupervisorSpec(name="exchanges", children=exchanges, **limits),
            SupervisorSpec(name="bots", children=bots, **limits),
        ),
        **limits,
    )
