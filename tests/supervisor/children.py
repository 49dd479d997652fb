"""Scripted children for supervision tests: each attempt follows the next step of a script
(the last step repeats) and records when it started, became ready, and finished."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from supervisor.otp.backoff import Backoff, BackoffPolicy

Step = Callable[[Any], Awaitable[None]]


def crash(exc: Exception | None = None) -> Step:
    """Fail before becoming ready."""

    async def step(task_status: Any) -> None:
        await trio.lowlevel.checkpoint()
        raise exc if exc is not None else ValueError("boom")

    return step


def ready_then_crash(after_s: float, exc: Exception | None = None) -> Step:
    async def step(task_status: Any) -> None:
        task_status.started()
        await trio.sleep(after_s)
        raise exc if exc is not None else ValueError("boom")

    return step


def ready_forever() -> Step:
    async def step(task_status: Any) -> None:
        task_status.started()
        await trio.sleep_forever()

    return step


def ready_then_return(after_s: float = 0.0) -> Step:
    async def step(task_status: Any) -> None:
        task_status.started()
        await trio.sleep(after_s)

    return step


def return_without_ready(after_s: float = 0.0) -> Step:
    async def step(task_status: Any) -> None:
        await trio.sleep(after_s)

    return step


@attrs.define(eq=False)
class Script:
    steps: list[Step]
    starts: list[float] = attrs.field(factory=list)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.starts.append(trio.current_time())
        index = min(len(self.starts), len(self.steps)) - 1
        await self.steps[index](task_status)


def expected_delays(policy: BackoffPolicy, seed: int, count: int) -> list[float]:
    """The delays a keeper seeded with ``seed`` will sleep (no healthy run in between)."""
    mirror = Backoff(policy, rng=random.Random(seed))
    return [mirror.next_delay() for _ in range(count)]
