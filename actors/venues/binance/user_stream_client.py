"""The Binance Spot user data stream over the WebSocket API (I/O: one trio-websocket connection).

``run_user_stream`` connects, subscribes with ``userDataStream.subscribe.signature`` and hands
every ``executionReport`` to a callback, in order, until the stream stops; then it raises.

    async with trio.open_nursery() as nursery:
        await nursery.start(run_user_stream, url, signer, clock, tracker.on_event)

Decisions:

* **It never returns.** A stream that stops delivering is an error the caller must act on:
  restart it with backoff and sweep REST (open orders, lookups, trades) for what happened
  meanwhile. So every end raises ``UserStreamEnded`` with the reason: the connection closed
  (with its close code), ``serverShutdown`` or ``eventStreamTerminated`` (the venue says this
  connection will stop delivering), a frame that is not JSON or an event that cannot be read
  (it may have been a fill: better a sweep than a silent gap), or no pong to our ping.
* **Started means subscribed.** ``task_status.started()`` is called only after the venue
  answered the subscription with success, so a caller that waits for ``nursery.start`` and
  then places an order cannot miss that order's events. Whatever fails before then (connect,
  handshake, the subscription refused, ``connect_timeout_s`` passed) raises
  ``UserStreamError`` naming the cause, the venue's code and message when it answered.
  ``connect_timeout_s`` bounds the whole of it with our own deadline (trio-websocket's
  ``connect_timeout`` alone does not end a handshake the server never answers).
* **Server time.** The subscription is signed with ``clock``'s estimate (``trio.current_time()``
  is the local clock, as in ``rest.py``: the clock is meant to be shared with ``BinanceRest``).
  When it has no sample, or one older than ``max_sample_age_s``, the connection first asks the
  WebSocket API's ``time`` method and feeds the round trip to the clock. A ``-1021`` answer
  makes the clock forget, so the caller's next attempt re-measures.
* **Liveness.** The server pings us (trio-websocket answers). To notice a connection that
  died without a close (half-open TCP), the client pings the server after ``heartbeat_s``
  without any frame and ends the stream if the pong takes longer than ``heartbeat_s``.
  Events that arrive meanwhile wait in trio-websocket's queue (``MESSAGE_QUEUE_SIZE``
  frames; its reader stops reading the socket while the queue is full, so the bound is kept).
  A stream that stays connected but goes quiet (the venue's ``silence_user_streams``) cannot
  be told from a quiet account: periodic REST reconciliation is the caller's.
* ``on_event`` is called synchronously, in the venue's order, before the next frame is
  read; whatever it raises ends the stream and propagates as is (a bug, not a stream
  failure). Balance and order-list events and stray answers are ignored
  (``parse_user_stream_frame`` returns None for them).
* **Rate limits.** Every answer's ``rateLimits`` (and a 429/418's ``retryAfter``) goes to
  ``limits``, the caller's ``RateLimitState``, the one its REST client feeds: the venue counts
  both transports on the same per-IP meter. So does a handshake refused with 429/418 (its
  ``Retry-After`` header).
* The subscription request carries the API key: it is never logged, and no error text
  contains the request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import orjson
import trio
from loguru import logger
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)
from wsproto.utilities import LocalProtocolError

from actors.errors import DecodeError, ExecutionError
from actors.venues.binance.rate_limits import RateLimitState
from actors.venues.binance.responses import INVALID_TIMESTAMP
from actors.venues.binance.signing import DEFAULT_RECV_WINDOW_MS, ServerClock, Signer
from actors.venues.binance.user_stream import (
    SUBSCRIBE_METHOD,
    ExecutionEvent,
    StreamNotice,
    parse_user_stream_frame,
    subscribe_request,
)

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "UserStreamEnded",
    "UserStreamError",
    "run_user_stream",
]

DEFAULT_HEARTBEAT_S = 30.0
MESSAGE_QUEUE_SIZE = 256
MAX_MESSAGE_SIZE = 1024 * 1024
DISCONNECT_TIMEOUT_S = 2.0
_TIME_REQUEST_ID = "bcf-time"
_SUBSCRIBE_REQUEST_ID = "bcf-subscribe"

log = logger.bind(actor="binance_user_stream")


class UserStreamError(ExecutionError):
    """The stream could not be set up: nothing was subscribed."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class UserStreamEnded(ExecutionError):
    """The subscribed stream stopped delivering; ``reason`` says how. Restart it and sweep
    REST for what it missed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"user data stream ended: {reason}")
        self.reason = reason


async def run_user_stream(
    url: str,
    signer: Signer,
    clock: ServerClock,
    on_event: Callable[[ExecutionEvent], None],
    *,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
    connect_timeout_s: float = 10.0,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
    limits: RateLimitState | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Subscribe on ``url`` (``wss://.../ws-api/v3``) and deliver executionReports until the
    stream ends (module docstring)."""
    if not (math.isfinite(connect_timeout_s) and connect_timeout_s > 0):
        raise ValueError(f"connect_timeout_s must be > 0, got {connect_timeout_s!r}")
    if not (math.isfinite(heartbeat_s) and heartbeat_s > 0):
        raise ValueError(f"heartbeat_s must be > 0, got {heartbeat_s!r}")
    setup = trio.CancelScope(deadline=trio.current_time() + connect_timeout_s)
    ended: UserStreamEnded | None = None
    try:
        with setup:
            async with open_websocket_url(
                url,
                message_queue_size=MESSAGE_QUEUE_SIZE,
                max_message_size=MAX_MESSAGE_SIZE,
                connect_timeout=connect_timeout_s,
                disconnect_timeout=DISCONNECT_TIMEOUT_S,
            ) as ws:
                subscription_id = await _subscribe(ws, signer, clock, recv_window_ms, limits)
                setup.deadline = math.inf
                log.info("user data stream subscribed", subscription_id=subscription_id)
                task_status.started()
                try:
                    await _deliver(ws, on_event, heartbeat_s)
                except UserStreamEnded as exc:
                    ended = exc
                    raise
    except (UserStreamEnded, UserStreamError):
        raise
    except ConnectionRejected as exc:
        if limits is not None:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in exc.headers or ()}
            limits.observe(trio.current_time(), exc.status_code, headers)
        raise UserStreamError(f"handshake refused with HTTP {exc.status_code}") from exc
    except (HandshakeError, ConnectionClosed, LocalProtocolError, OSError) as exc:
        if ended is not None:  # closing after the end failed too: the end is the news
            raise ended from exc
        if isinstance(exc, ConnectionClosed):
            raise UserStreamError(f"connection closed before subscribing: {_closed(exc)}") from exc
        raise UserStreamError(f"cannot connect: {exc!r}") from exc
    raise UserStreamError(f"not subscribed within {connect_timeout_s:g} s")


def _closed(exc: ConnectionClosed) -> str:
    reason = exc.reason
    if reason is None:
        return "closed"
    text = f"code {reason.code}"
    return f"{text} {reason.reason}" if reason.reason else text


async def _request(
    ws: WebSocketConnection, request: Mapping[str, Any], limits: RateLimitState | None
) -> dict[str, Any]:
    """Send one request and read frames up to its answer (nothing else is expected before
    the subscription; anything else is skipped); the answer's rate limits go to ``limits``."""
    await ws.send_message(orjson.dumps(request).decode())
    while True:
        raw = await ws.get_message()
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UserStreamError("answer is not JSON") from None
        if isinstance(frame, dict) and frame.get("id") == request["id"]:
            if limits is not None:
                limits.observe_ws(trio.current_time(), frame)
            return frame


def _refusal(method: str, answer: Mapping[str, Any]) -> UserStreamError:
    error = answer.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    msg = error.get("msg") if isinstance(error, dict) else None
    code = code if type(code) is int else None
    return UserStreamError(
        f"{method} refused: status {answer.get('status')!r} code {code} {msg!s:.200}", code=code
    )


async def _sync_clock(
    ws: WebSocketConnection, clock: ServerClock, limits: RateLimitState | None
) -> None:
    sent_at = trio.current_time()
    answer = await _request(ws, {"id": _TIME_REQUEST_ID, "method": "time"}, limits)
    received_at = trio.current_time()
    result = answer.get("result")
    server_ms = result.get("serverTime") if isinstance(result, dict) else None
    if answer.get("status") != 200 or type(server_ms) is not int:
        raise _refusal("time", answer)
    clock.observe(sent_at, received_at, server_ms)


async def _subscribe(
    ws: WebSocketConnection,
    signer: Signer,
    clock: ServerClock,
    recv_window_ms: int,
    limits: RateLimitState | None,
) -> int | None:
    now = trio.current_time()
    best = clock.best
    if best is None or now - best.received_s > clock.max_sample_age_s:
        await _sync_clock(ws, clock, limits)
        now = trio.current_time()
    request = subscribe_request(
        signer,
        request_id=_SUBSCRIBE_REQUEST_ID,
        timestamp_ms=clock.server_ms(now),
        recv_window_ms=recv_window_ms,
    )
    answer = await _request(ws, request, limits)
    if answer.get("status") != 200:
        refused = _refusal(SUBSCRIBE_METHOD, answer)
        if refused.code == INVALID_TIMESTAMP:
            clock.forget()
        raise refused
    result = answer.get("result")
    subscription_id = result.get("subscriptionId") if isinstance(result, dict) else None
    return subscription_id if type(subscription_id) is int else None


async def _next_frame(ws: WebSocketConnection, heartbeat_s: float) -> str | bytes:
    """The next frame; after ``heartbeat_s`` of silence, a ping whose pong must come back
    within ``heartbeat_s``."""
    while True:
        with trio.move_on_after(heartbeat_s):
            return await ws.get_message()
        with trio.move_on_after(heartbeat_s) as pong:
            await ws.ping()
        if pong.cancelled_caught:
            raise UserStreamEnded(f"no pong within {heartbeat_s:g} s")


async def _deliver(
    ws: WebSocketConnection, on_event: Callable[[ExecutionEvent], None], heartbeat_s: float
) -> NoReturn:
    while True:
        try:
            raw = await _next_frame(ws, heartbeat_s)
        except ConnectionClosed as exc:
            raise UserStreamEnded(f"connection closed: {_closed(exc)}") from exc
        try:
            item = parse_user_stream_frame(raw)
        except DecodeError as exc:
            raise UserStreamEnded(f"unreadable frame: {exc}") from exc
        if isinstance(item, ExecutionEvent):
            on_event(item)
        elif isinstance(item, StreamNotice):
            raise UserStreamEnded(item.event)
