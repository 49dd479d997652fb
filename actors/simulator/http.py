"""A tiny HTTP/1.1 server for the simulators' REST endpoints: h11 parses, Trio moves bytes.

Decisions:

* h11 (already installed with wsproto) instead of hypercorn + ASGI, because the endpoints are
  a handful of lookups into the simulated state; h11 keeps the server in one small module with
  no lifespan/config/logging machinery, and all its timers are on the Trio clock.
* The handler is a function ``HttpRequest -> HttpResponse``, plain or ``async``: the market-data
  simulators' handlers are plain (no I/O in them); the trading venue's is async, because a
  venue can take time between accepting a request and answering it (engine latency, a
  delayed answer), and that time must pass on the Trio clock, inside the connection's task.
* Request bodies are read whole (up to ``MAX_BODY_BYTES``, else 413) and kept as bytes, with
  the query string as received (``raw_query``), because a venue that checks signatures must
  see exactly the bytes the client signed, not a re-encoding of parsed parameters.
* A handler that raises ``NoResponse`` gets its connection closed without an answer: with a
  FIN (the client reads EOF) or, ``reset=True``, an RST. That is the "the request may have
  executed, the answer never came" fault, which only a closed socket can produce.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import struct
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import h11
import orjson
import trio
from loguru import logger

IDLE_TIMEOUT_S = 60.0  # keep-alive connections idle this long are closed
MAX_RECEIVE_BYTES = 65_536
MAX_BODY_BYTES = 1 << 20

log = logger.bind(actor="simulator-http")


@attrs.frozen(slots=True)
class HttpRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased
    body: bytes = b""

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path)

    @property
    def raw_query(self) -> str:
        """The query string exactly as sent (percent-encoding kept), without the ``?``."""
        return urlsplit(self.target).query

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


@attrs.frozen(slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)

    @classmethod
    def json(
        cls, status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
    ) -> HttpResponse:
        return cls(status, orjson.dumps(payload), (("content-type", "application/json"), *headers))


class NoResponse(Exception):
    """Raised by a handler: close the connection without answering (RST when ``reset``)."""

    def __init__(self, *, reset: bool = False) -> None:
        super().__init__("closed without a response")
        self.reset = reset


Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


async def serve_http(
    handler: Handler,
    host: str,
    port: int = 0,
    *,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started`` gets the listeners (read the port there).
    Keep-alive connections idle for ``idle_timeout_s`` are closed."""

    async def serve_connection(stream: trio.SocketStream) -> None:
        async with stream:
            await _serve_connection(stream, handler, idle_timeout_s)

    await trio.serve_tcp(serve_connection, port, host=host, task_status=task_status)


def reset_socket(stream: trio.SocketStream) -> None:
    """Close at once with SO_LINGER 0: the peer sees a reset, as from a crashed server."""
    sock = stream.socket
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _BodyTooLarge(Exception):
    pass


async def _next_event(
    conn: h11.Connection, stream: trio.SocketStream, idle_timeout_s: float = IDLE_TIMEOUT_S
) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = b""
        with trio.move_on_after(idle_timeout_s):
            data = await stream.receive_some(MAX_RECEIVE_BYTES)
        conn.receive_data(data)  # b"" means EOF (or idle timeout: treat as gone)


async def _read_body(
    conn: h11.Connection, stream: trio.SocketStream, idle_timeout_s: float
) -> bytes | None:
    """The request body, or None when the client went away before its end."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await _next_event(conn, stream, idle_timeout_s)
        if isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY_BYTES:
                raise _BodyTooLarge
            chunks.append(bytes(event.data))
        else:
            return None  # ConnectionClosed / PAUSED: nothing to answer


async def _send(conn: h11.Connection, stream: trio.SocketStream, response: HttpResponse) -> None:
    headers = [*response.headers, ("content-length", str(len(response.body)))]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data += conn.send(h11.Data(data=response.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


async def _handle(handler: Handler, request: HttpRequest) -> HttpResponse:
    try:
        result = handler(request)
        if inspect.isawaitable(result):
            result = await result
        return result
    except NoResponse:
        raise
    except Exception:
        log.exception("rest handler failed", target=request.target)
        return HttpResponse.json(500, {"message": "internal error"})


async def _serve_connection(
    stream: trio.SocketStream, handler: Handler, idle_timeout_s: float = IDLE_TIMEOUT_S
) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = await _next_event(conn, stream, idle_timeout_s)
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed (or EOF)
            try:
                body = await _read_body(conn, stream, idle_timeout_s)
            except _BodyTooLarge:
                await _send(conn, stream, HttpResponse.json(413, {"message": "body too large"}))
                return
            if body is None:
                return
            request = HttpRequest(
                method=event.method.decode("ascii"),
                target=event.target.decode("latin-1"),
                headers=tuple(
                    (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers
                ),
                body=body,
            )
            try:
                response = await _handle(handler, request)
            except NoResponse as exc:
                if exc.reset:
                    reset_socket(stream)
                return  # the caller's ``async with stream`` closes it (FIN) otherwise
            await _send(conn, stream, response)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await _send(
                conn, stream, HttpResponse.json(exc.error_status_hint, {"message": str(exc)})
            )
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
