"""What supervision reports to observers (metrics, alerts, the /health page).

Observers are plain sync callables ``(event) -> None`` run inside the keeper's task: they must
not block (queue work with ``send_nowait``/``Alerts.emit`` instead). An observer that raises is
logged with its traceback and skipped; supervision goes on. Times are ``trio.current_time()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from supervisor.otp.breaker import Transition

ChildState = Literal["starting", "running", "backoff", "circuit_open", "stopped", "failed"]


@attrs.frozen
class ChildStateChanged:
    supervisor: str
    child: str
    from_state: ChildState
    to_state: ChildState
    at: float


@attrs.frozen
class ChildCrashed:
    """``programming_error`` is True when the error is not one of the spec's expected
    ``faults`` (e.g. a TypeError rather than a FeedError)."""

    supervisor: str
    child: str
    error: str
    programming_error: bool
    consecutive_failures: int
    at: float
    error_types: tuple[str, ...] = ()  # class names of the error's leaves (groups unwrapped)
    # For a programming error, how many times this child has crashed with this same error (same
    # types, raised through the same frames): only the first is logged with its traceback.
    # Always 1 for an expected fault, which is never logged with one.
    occurrences: int = 1


@attrs.frozen
class BreakerTransitioned:
    supervisor: str
    child: str
    transition: Transition


@attrs.frozen
class Escalated:
    """Restart intensity exceeded, or a child failed under a supervisor that restarts nothing
    (``max_restarts == 0``): ``RestartIntensityError`` goes to the parent next."""

    supervisor: str
    child: str
    restarts: int
    max_restarts: int
    period_s: float
    at: float


@attrs.frozen
class ChildGaveUp:
    """A contained child (``ChildSpec.restart_limit``) exceeded its own restart intensity: it is
    left ``failed`` and not restarted; its supervisor and siblings run on. ``error`` is its last
    error (None if it kept returning normally)."""

    supervisor: str
    child: str
    restarts: int
    max_restarts: int
    period_s: float
    error: str | None
    at: float


SupervisionEvent = ChildStateChanged | ChildCrashed | BreakerTransitioned | Escalated | ChildGaveUp
Observer = Callable[[SupervisionEvent], None]
