"""A tiny HTTP/1.1 server for the simulators' REST endpoints: h11 parses, Trio moves bytes.

Decision: h11 (already installed with wsproto) instead of hypercorn + ASGI, because the
endpoints are a handful of synchronous lookups into the market state; h11 keeps the server in
one small module with no lifespan/config/logging machinery, and all its timers are on the Trio
clock. The handler is a plain function ``HttpRequest -> HttpResponse``: no I/O in it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import h11
import orjson
import trio
from loguru import logger

IDLE_TIMEOUT_S = 60.0  # keep-alive connections idle this long are closed
MAX_RECEIVE_BYTES = 65_536

log = logger.bind(actor="simulator-http")


@attrs.frozen(slots=True)
class HttpRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path)

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


Handler = Callable[[HttpRequest], HttpResponse]


async def serve_http(
    handler: Handler,
    host: str,
    port: int = 0,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started`` gets the listeners (read the port there)."""

    async def serve_connection(stream: trio.SocketStream) -> None:
        async with stream:
            await _serve_connection(stream, handler)

    await trio.serve_tcp(serve_connection, port, host=host, task_status=task_status)


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = b""
        with trio.move_on_after(IDLE_TIMEOUT_S):
            data = await stream.receive_some(MAX_RECEIVE_BYTES)
        conn.receive_data(data)  # b"" means EOF (or idle timeout: treat as gone)


async def _send(conn: h11.Connection, stream: trio.SocketStream, response: HttpResponse) -> None:
    headers = [*response.headers, ("content-length", str(len(response.body)))]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data += conn.send(h11.Data(data=response.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


async def _serve_connection(stream: trio.SocketStream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = await _next_event(conn, stream)
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed (or EOF)
            while not isinstance(await _next_event(conn, stream), h11.EndOfMessage):
                pass  # bodies are ignored: every endpoint here is a GET
            request = HttpRequest(
                method=event.method.decode("ascii"),
                target=event.target.decode("latin-1"),
                headers=tuple(
                    (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers
                ),
            )
            try:
                response = handler(request)
            except Exception:
                log.exception("rest handler failed", target=request.target)
                response = HttpResponse.json(500, {"message": "internal error"})
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
