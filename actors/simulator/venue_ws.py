"""The local Binance venue's WebSocket API (``/ws-api/v3``): the user data stream.

Methods: ``ping``, ``time``, ``userDataStream.subscribe.signature``,
``userDataStream.unsubscribe``, ``session.subscriptions``. Decisions:

* Requests are ``{"id", "method", "params"}``; answers ``{"id", "status", "result" | "error",
  "rateLimits"}`` (``rateLimits`` left out with ``returnRateLimits=false`` in the URL or the
  params). The request weight is the venue's one per-IP counter, shared with REST: a
  connection costs 2, ``ping``/``time`` 1, the ``userDataStream.*`` and ``session.*``
  methods 2. Over the limit: status 429; banned: 418, and the connection is closed after it.
* ``userDataStream.subscribe.signature`` takes ``apiKey``, ``timestamp``, ``signature`` and
  optional ``recvWindow``, signed over the params sorted by name (any key type). It is
  checked like a signed REST request (``-2015`` unknown key with status 401, ``-1021``,
  ``-1022``). It answers ``{"subscriptionId": n}``, n counting from 0 per connection; the
  account allows one subscription per connection: a second is ``-2035`` "User Data Stream
  subscription already active." (the code is our best knowledge; the docs only say it is an
  error).
* Events go out as ``{"subscriptionId": n, "event": {...}}``, in the engine's order, after
  the answer to the request that caused them when both come from the same connection.
  ``userDataStream.unsubscribe`` (all, or ``subscriptionId``) answers ``{}`` and then sends
  ``eventStreamTerminated`` for each subscription it ended.
* The server pings every 20 s and drops a connection whose pong is 60 s late; it closes every
  connection 24 h after it opened (code 1000) and sends ``{"event": {"e": "serverShutdown"}}``
  on demand. Pings and request answers go on while a subscription is silenced (the
  ``silence_user_streams`` fault): only its events are lost.
* Unknown methods are ``-1020`` "This operation is not supported."; a frame that is not a JSON
  object is ``-1135`` "Invalid JSON Request" with ``"id": null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from actors.simulator.http import reset_socket
from actors.simulator.venue_auth import ws_payload
from actors.simulator.venue_limits import Refusal
from actors.simulator.venue_rest import (
    VenueError,
    api_key,
    check_window,
    mandatory,
    parse_window,
)

if TYPE_CHECKING:
    from actors.simulator.binance_venue import BinanceVenue

WS_API_PATH = "/ws-api/v3"
PING_INTERVAL_S = 20.0
PONG_TIMEOUT_S = 60.0
MAX_CONNECTION_S = 24 * 3600.0
CONNECTION_WEIGHT = 2
METHOD_WEIGHTS: Mapping[str, int] = {
    "ping": 1,
    "time": 1,
    "userDataStream.subscribe.signature": 2,
    "userDataStream.unsubscribe": 2,
    "session.subscriptions": 2,
}


@attrs.define(eq=False)
class Subscription:
    subscription_id: int
    key: str
    silenced: bool = False
    events_sent: int = 0
    events_lost: int = 0


def dumps(payload: object) -> str:
    return orjson.dumps(payload).decode()


class WsApiSession:
    """One accepted WebSocket API connection."""

    def __init__(
        self,
        venue: BinanceVenue,
        connection_id: int,
        ws: WebSocketConnection,
        tcp: trio.SocketStream,
        path: str,
    ) -> None:
        self.venue = venue
        self.id = connection_id
        self.ws = ws
        self.tcp = tcp
        self.opened_at = trio.current_time()
        query = parse_qs(urlsplit(path).query)
        self.return_rate_limits = query.get("returnRateLimits", ["true"])[0] != "false"
        self.subscriptions: dict[int, Subscription] = {}
        self.scope = trio.CancelScope()
        self._next_subscription_id = 0
        self._outbox, self._outgoing = trio.open_memory_channel[str | tuple[int, str]](math.inf)

    # --- life ------------------------------------------------------------------------------
    async def run(self) -> None:
        with self.scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_loop)
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._ping_loop)
                    nursery.start_soon(self._lifetime)
            except* (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    def drop(self) -> None:
        """Reset the TCP connection, no close frame (the client sees 1006)."""
        reset_socket(self.tcp)
        self.scope.cancel()

    def enqueue(self, frame: str) -> None:
        self._outbox.send_nowait(frame)

    def close_after_queue(self, code: int, reason: str) -> None:
        """Send what is queued, then close with ``code``."""
        self._outbox.send_nowait((code, reason))

    async def _write_loop(self) -> None:
        async for item in self._outgoing:
            if isinstance(item, tuple):
                await self.ws.aclose(*item)
                self.scope.cancel()
                return
            await self.ws.send_message(item)
            self.venue.frame_sent()

    async def _read_loop(self) -> None:
        while True:
            raw = await self.ws.get_message()
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            self.handle(text)

    async def _ping_loop(self) -> None:
        pings = 0
        while True:
            await trio.sleep(PING_INTERVAL_S)
            pings += 1
            with trio.move_on_after(PONG_TIMEOUT_S) as timer:
                await self.ws.ping(pings.to_bytes(8, "big"))
            if timer.cancelled_caught:
                self.drop()
                return

    async def _lifetime(self) -> None:
        await trio.sleep_until(self.opened_at + MAX_CONNECTION_S)
        self.close_after_queue(1000, "Connection lifetime expired")

    # --- requests ----------------------------------------------------------------------------
    def handle(self, raw: str) -> None:
        venue = self.venue
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            venue.record_ws(self.id, "", {}, 400, -1135)
            self._answer(None, 400, error={"code": -1135, "msg": "Invalid JSON Request"})
            return
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            venue.record_ws(self.id, str(method), {}, 400, -1102)
            err = mandatory("method" if not isinstance(method, str) else "params")
            self._answer(request_id, 400, error={"code": err.code, "msg": err.msg})
            return
        method = method.removeprefix("v3/")
        now_ms = venue.server_time_ms()
        show_limits = params.get("returnRateLimits", self.return_rate_limits) is not False
        refusal = venue.limits.admit(now_ms, METHOD_WEIGHTS.get(method, 1))
        if refusal is not None:
            venue.record_ws(self.id, method, params, refusal.status, refusal.code)
            self._refuse(request_id, refusal, now_ms, show_limits)
            return
        try:
            outcome = self._call(method, params, now_ms)
        except VenueError as exc:
            venue.record_ws(self.id, method, params, exc.status, exc.code)
            self._answer(
                request_id, exc.status, error={"code": exc.code, "msg": exc.msg}, limits=show_limits
            )
            return
        venue.record_ws(self.id, method, params, 200, None)
        result, ended = outcome
        self._answer(request_id, 200, result=result, limits=show_limits)
        for subscription_id in ended:
            terminated = {"e": "eventStreamTerminated", "E": now_ms}
            self.enqueue(dumps({"subscriptionId": subscription_id, "event": terminated}))

    def _call(self, method: str, params: dict[str, Any], now_ms: int) -> tuple[object, list[int]]:
        """The result, and the subscriptions the request ended."""
        if method == "ping":
            return {}, []
        if method == "time":
            return {"serverTime": now_ms}, []
        if method == "session.subscriptions":
            return [{"subscriptionId": s} for s in self.subscriptions], []
        if method == "userDataStream.subscribe.signature":
            return self._subscribe(params, now_ms), []
        if method == "userDataStream.unsubscribe":
            return {}, self._unsubscribe(params)
        raise VenueError(400, -1020, "This operation is not supported.")

    def _subscribe(self, params: dict[str, Any], now_ms: int) -> dict[str, object]:
        for name in ("apiKey", "timestamp", "signature"):
            if params.get(name) in (None, ""):
                raise mandatory(name)
        key = api_key(self.venue.api_keys, str(params["apiKey"]))
        window_params = {"timestamp": str(params["timestamp"])}
        if "recvWindow" in params:
            window_params["recvWindow"] = str(params["recvWindow"])
        check_window(parse_window(window_params), now_ms)
        if not key.verify(ws_payload(params), str(params["signature"])):
            raise VenueError(400, -1022, "Signature for this request is not valid.")
        if self.subscriptions:
            raise VenueError(400, -2035, "User Data Stream subscription already active.")
        subscription = Subscription(self._next_subscription_id, key.key)
        self._next_subscription_id += 1
        self.subscriptions[subscription.subscription_id] = subscription
        self.venue.changed()
        return {"subscriptionId": subscription.subscription_id}

    def _unsubscribe(self, params: dict[str, Any]) -> list[int]:
        wanted = params.get("subscriptionId")
        if wanted is None:
            ended = list(self.subscriptions)
        elif wanted in self.subscriptions:
            ended = [wanted]
        else:
            raise VenueError(400, -2036, "User Data Stream subscription not active.")
        for subscription_id in ended:
            del self.subscriptions[subscription_id]
        self.venue.changed()
        return ended

    # --- answers -----------------------------------------------------------------------------
    def _answer(
        self,
        request_id: object,
        status: int,
        *,
        result: object = None,
        error: dict[str, object] | None = None,
        limits: bool = True,
    ) -> None:
        answer: dict[str, object] = {"id": request_id, "status": status}
        if error is not None:
            answer["error"] = error
        else:
            answer["result"] = result
        if limits:
            answer["rateLimits"] = [self.venue.weight_status()]
        self.enqueue(dumps(answer))

    def _refuse(self, request_id: object, refusal: Refusal, now_ms: int, limits: bool) -> None:
        error: dict[str, object] = {"code": refusal.code, "msg": refusal.msg}
        if refusal.retry_after_ms is not None:
            error["data"] = {"serverTime": now_ms, "retryAfter": refusal.retry_after_ms}
        self._answer(request_id, refusal.status, error=error, limits=limits)
        if refusal.status == 418:
            self.close_after_queue(1008, "IP banned")

    # --- events ------------------------------------------------------------------------------
    def push(self, event: dict[str, object]) -> None:
        for subscription in self.subscriptions.values():
            if subscription.silenced:
                subscription.events_lost += 1
                continue
            subscription.events_sent += 1
            self.enqueue(dumps({"subscriptionId": subscription.subscription_id, "event": event}))


async def accept_or_refuse(venue: BinanceVenue, request: WebSocketRequest) -> bool:
    """Refuse a handshake to another path (404) or over the rate limit; True if accepted."""
    if urlsplit(request.path).path != WS_API_PATH:
        await request.reject(404, body=b"Not Found")
        return False
    refusal = venue.limits.admit(venue.server_time_ms(), CONNECTION_WEIGHT)
    if refusal is not None:
        headers = []
        if refusal.retry_after_s is not None:
            headers.append((b"Retry-After", str(refusal.retry_after_s).encode()))
        await request.reject(refusal.status, extra_headers=headers, body=refusal.msg.encode())
        return False
    return True
