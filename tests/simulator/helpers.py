"""Test client helpers written from the exchanges' public docs only: raw trio-websocket frames
and json.

Nothing here imports the project's codecs; the tests check the simulators against the
documented wire shapes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection


def fail_after(seconds: float) -> Callable:
    """Bound a test on the Trio clock (virtual under ``autojump_clock``)."""

    def decorator(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with trio.fail_after(seconds):
                return await fn(*args, **kwargs)

        return wrapper

    return decorator


async def send(ws: WebSocketConnection, message: object) -> None:
    await ws.send_message(json.dumps(message))


async def recv(ws: WebSocketConnection) -> Any:
    return json.loads(await ws.get_message())


async def recv_until(
    ws: WebSocketConnection, predicate: Callable[[Any], bool], limit: int = 500
) -> Any:
    """The first frame matching ``predicate``, skipping at most ``limit`` others."""
    for _ in range(limit):
        message = await recv(ws)
        if predicate(message):
            return message
    raise AssertionError(f"no matching frame within {limit} frames")


async def collect(ws: WebSocketConnection, seconds: float) -> list[Any]:
    """Every frame received during ``seconds`` of (virtual) time."""
    frames: list[Any] = []
    with trio.move_on_after(seconds):
        while True:
            frames.append(await recv(ws))
    return frames


async def closed_reason(ws: WebSocketConnection) -> tuple[int, str | None]:
    """Read (and discard) until the connection closes; its close code and reason."""
    while True:
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            reason = exc.reason
            break
    if reason is None:
        raise AssertionError("closed without a close reason")
    return reason.code, reason.reason


def is_decimal_string(value: object) -> bool:
    if not isinstance(value, str) or value.count(".") > 1 or not value:
        return False
    return value.replace(".", "", 1).isdigit()
