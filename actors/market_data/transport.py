"""The WebSocket transport seam: connect / send / receive / close, and nothing else.

The connection actor talks to a ``Transport`` so that engines can be swapped and measured
without touching the actor. Two engines live here:

* ``WsprotoConnector`` (**the default**): wsproto driven directly by our reader task. One
  ``receive_some`` of up to ``receive_buffer_size`` bytes yields every complete message in it,
  handed over as one batch; no extra task, no channel. Plain frames (whole, unfragmented,
  unmasked text or binary: nearly all of an exchange's) are decoded by
  ``actors.market_data.frames.FrameReader``, every other frame by wsproto, which keeps the
  protocol's rules (``fast_frames=False``: wsproto decodes them all).
* ``TrioWebsocketConnector``: trio-websocket. Its reader task hands each message through a
  memory channel and yields after each one, so a scheduler round (a Trio "batch") moves one
  message.

Why the default is the wsproto engine (measured, ``tests/bench/market_data.py``): batching
first. (Per-message CPU was the same in both, wsproto's frame parser being half of it and
trio-websocket using wsproto too, until this engine got its own reader for plain frames: about
1 µs a message instead of 15, ``tests/bench/frames.py``.) Subscribers woken by a publish run
once per scheduler round, so with trio-websocket 1000 subscribers on one stream cost 1000 task
steps *per message* and the feed falls to ~1% of the bare loop's rate, while with the wsproto
engine they run once per socket read, whatever it held, and the plane keeps the bare loop's
rate. It also avoids two
trio-websocket 0.12.2 bugs found here (a handshake the server never answers is never timed out;
a ping during our close handshake fails the close: see ``TrioWebsocketConnector.connect``).
trio-websocket stays available, one setting away (``transport = "trio-websocket"`` in the
exchange's configuration, ``connector_for``), and is run by the same tests. A Trio
batch of the wsproto engine decodes at most one ``receive_buffer_size`` read (~400 frames,
a few ms) before other tasks run.

``receive_batch()`` returns every complete message available (at least one), so either engine
fits one reader loop. This module is also the one boundary where trio-websocket's, wsproto's
and the OS's exceptions become ours: a close -> ``ConnectionLostError`` (close code
and reason kept; 1006 when the TCP connection ended without a close frame), a refused handshake
-> ``HandshakeRefusedError`` (HTTP status kept), any other handshake failure (timeout, refused
TCP connect) and ``OSError`` -> ``ConnectionLostError``; always ``raise ... from exc``.

Closing is a courtesy for live peers. A normal close (idle, clean reconnect, shutdown) sends a
close frame and waits up to ``disconnect_timeout_s`` for the server's reply (RFC 6455 §7.1.1).
A socket the connection's watchdog declared dead (``StaleFeedError``: no frame for
``stale_after_s``, a half-open TCP connection or a server that hung) will not answer, so that
wait would only add ``disconnect_timeout_s`` to every stall's recovery
(``tests/bench/stall_recovery.py``, ``stale_after_s = 1.5``: stall -> new data p99 3.7 s with
the courteous close, 1.7 s without it). ``Transport.abort()`` marks such a socket: the
close that follows (leaving the connector's context) closes the TCP stream at once, with no
close frame, on both engines, through Trio's documented forceful close
(``trio.aclose_forcefully``: an ``AsyncResource`` whose ``aclose`` is cancelled still closes,
ungracefully). For trio-websocket that is its ``WebSocketConnection`` (public API): its reader
task sees the stream closed and ends cleanly, and ``open_websocket``'s own close then finds the
connection already closed and returns without waiting.

Sizes, chosen deliberately:

* ``message_queue_size = 256`` (trio-websocket): its reader task stops reading the socket, and
  so stops answering pings, while its queue is full (Binance drops a connection that has not
  answered for a minute). Our reader decodes and fans out synchronously and never awaits a
  subscriber, so the queue only fills while the loop is busy elsewhere; 256 frames is 128 ms of
  a 2,000 msg/s feed, enough to ride out a slow bot callback, and still bounded. The wsproto
  engine has no queue: it reads the socket only when the previous batch was taken, so what it
  holds is bounded by one ``receive_buffer_size`` read.
* ``max_message_size = 256 KiB``: the largest frame we subscribe to is a Coinbase Advanced
  trade snapshot (~20 KiB); 256 KiB leaves room without letting a broken server make us buffer
  256 x 1 MiB (trio-websocket's default) before the reader notices. Larger -> close 1009.
* ``receive_buffer_size = 64 KiB`` instead of trio-websocket's 4 KiB: one ``recv`` per ~400
  Binance frames under load instead of one per ~25 (and, for the wsproto engine, the most one
  batch holds).
* ``connect_timeout_s = 10``: a handshake slower than that is a failed attempt for the backoff
  and breaker; ``disconnect_timeout_s = 2``: closing is a courtesy, not worth waiting for.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, cast
from urllib.parse import urlsplit

import attrs
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from actors.errors import ConnectionLostError, HandshakeRefusedError
from actors.market_data.config import TransportEngine
from actors.market_data.frames import FrameReader, http_head_end

__all__ = [
    "Connector",
    "Transport",
    "TrioWebsocketConnector",
    "TrioWebsocketTransport",
    "WsprotoConnector",
    "WsprotoTransport",
    "connector_for",
]

ABNORMAL_CLOSURE = 1006
MESSAGE_TOO_BIG = 1009


class Transport(Protocol):
    """One open WebSocket carrying whole text or binary messages."""

    async def send(self, message: str) -> None: ...

    async def receive_batch(self) -> list[str | bytes]:
        """Every complete message available now, at least one (waits for the first)."""
        ...

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """The courteous close: a close frame, then a wait for the server's reply (at most
        ``disconnect_timeout_s`` when leaving the connector's context closes it). After
        ``abort()`` it closes the TCP stream at once instead."""
        ...

    def abort(self) -> None:
        """Declare the socket dead: the close that follows (leaving the connector's context,
        or ``aclose``) skips the closing handshake and closes the TCP stream at once.

        Synchronous and without a checkpoint, so a reader can call it and raise in the same
        step: no sibling task (the control task sending a subscribe) runs in between to find
        the socket closed under it and report a second failure; the nursery cancels it first,
        and the socket closes right after, when the connector's context exits."""
        ...


class Connector(Protocol):
    """Opens transports: ``async with connector.connect(url) as transport:``."""

    def connect(self, url: str) -> AbstractAsyncContextManager[Transport]: ...


def _lost(exc: ConnectionClosed) -> ConnectionLostError:
    reason = exc.reason
    if reason is None:
        return ConnectionLostError("websocket closed")
    return ConnectionLostError("websocket closed", code=reason.code, reason=reason.reason)


@attrs.define(eq=False)
class TrioWebsocketTransport:
    """A trio-websocket connection with our exceptions."""

    ws: WebSocketConnection
    aborted: bool = attrs.field(default=False, init=False)

    async def send(self, message: str) -> None:
        try:
            await self.ws.send_message(message)
        except ConnectionClosed as exc:
            raise _lost(exc) from exc
        except OSError as exc:
            raise ConnectionLostError(f"send failed: {exc}") from exc

    async def receive_batch(self) -> list[str | bytes]:
        try:
            return [await self.ws.get_message()]
        except ConnectionClosed as exc:
            raise _lost(exc) from exc
        except OSError as exc:
            raise ConnectionLostError(f"receive failed: {exc}") from exc

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self.aborted:
            await trio.aclose_forcefully(self.ws)  # see the module docstring
            return
        try:
            await self.ws.aclose(code, reason)
        except (ConnectionClosed, OSError):
            pass  # closing an already broken socket is not news

    def abort(self) -> None:
        self.aborted = True


@attrs.frozen
class TrioWebsocketConnector:
    """trio-websocket client engine (the alternative; ``WsprotoConnector`` is the default).
    See the module docstring for the sizes."""

    message_queue_size: int = 256
    max_message_size: int = 256 * 1024
    receive_buffer_size: int = 64 * 1024
    connect_timeout_s: float = 10.0
    disconnect_timeout_s: float = 2.0

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[TrioWebsocketTransport]:
        """A failure while *closing* after the body ended normally is swallowed: the caller
        already decided the socket is done (a clean reconnect must not turn into a failure).

        Known upstream bug (trio-websocket 0.12.2): when a ping arrives during our close
        handshake, its reader task answers it, wsproto refuses a pong in LOCAL_CLOSING
        (``LocalProtocolError``), and ``open_websocket``'s exit then re-raises the
        ``Cancelled`` it captured from its own close, which escapes its scope; the supervisor
        sees the connections end and restarts them after a backoff. The window is the close
        handshake (milliseconds against a 20 s ping period); ``WsprotoConnector`` does not have
        it."""
        body_done = False
        # trio-websocket's own connect_timeout does not end a handshake the server never
        # answers (its reader task keeps the nursery open), so the deadline is ours; it is
        # lifted once connected.
        handshake = trio.CancelScope(deadline=trio.current_time() + self.connect_timeout_s)
        try:
            with handshake:
                async with open_websocket_url(
                    url,
                    message_queue_size=self.message_queue_size,
                    max_message_size=self.max_message_size,
                    receive_buffer_size=self.receive_buffer_size,
                    connect_timeout=self.connect_timeout_s,
                    disconnect_timeout=self.disconnect_timeout_s,
                ) as ws:
                    handshake.deadline = math.inf  # no deadline: the socket is open
                    transport = TrioWebsocketTransport(ws)
                    try:
                        yield transport
                    finally:
                        if transport.aborted:
                            # Closed before open_websocket's exit, which would otherwise
                            # send a close frame and wait disconnect_timeout_s for a reply
                            # that a dead socket never sends; it then finds nothing to do.
                            await transport.aclose()
                    body_done = True
        except ConnectionRejected as exc:
            raise HandshakeRefusedError(
                f"handshake refused with HTTP {exc.status_code}", status=exc.status_code
            ) from exc
        except (HandshakeError, ConnectionClosed, LocalProtocolError, OSError) as exc:
            if body_done:
                return
            if isinstance(exc, ConnectionClosed):
                raise _lost(exc) from exc
            raise ConnectionLostError(f"websocket failed: {exc!r}") from exc
        if handshake.cancelled_caught:
            raise ConnectionLostError(f"handshake timed out after {self.connect_timeout_s} s")


# --- the wsproto engine ------------------------------------------------------------------------


def _split_url(url: str) -> tuple[str, int, str, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"WebSocket URL scheme must be ws: or wss:, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"WebSocket URL has no host: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, resource, secure


class WsprotoTransport:
    """A client WebSocket driven by wsproto from the caller's own task.

    Only ``receive_batch`` reads the socket, and only when the previous batch was taken; pings
    are answered as they are read. Sends (ours and pongs) share a FIFO lock, since a Trio
    stream refuses two concurrent ``send_all``. What is read goes through a ``FrameReader``
    first: it decodes the plain frames and hands wsproto the others, whole and in order; when
    we close, it steps aside and wsproto reads the closing handshake alone.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        ws: WSConnection,
        *,
        receive_buffer_size: int,
        max_message_size: int,
        disconnect_timeout_s: float,
        fast_frames: bool = True,
    ) -> None:
        self._stream = stream
        self._ws = ws
        self._frames = FrameReader(max_message_size=max_message_size, fast=fast_frames)
        self._receive_buffer_size = receive_buffer_size
        self._max_message_size = max_message_size
        self._disconnect_timeout_s = disconnect_timeout_s
        self._send_lock = trio.StrictFIFOLock()
        self._ready: list[str | bytes] = []
        self._parts: list[str | bytes] = []
        self._size = 0
        self._closed: tuple[int | None, str | None] | None = None  # (code, reason) once closed
        self._stream_closed = False
        self._aborted = False

    def _lost(self) -> ConnectionLostError:
        assert self._closed is not None
        code, reason = self._closed
        return ConnectionLostError("websocket closed", code=code, reason=reason)

    async def receive_batch(self) -> list[str | bytes]:
        """Reads the socket until a message is whole. The read and ``_receive`` are written
        out here for the read that is all plain frames (nearly every one), so that no coroutine
        is made between the socket and the subscribers: at a few thousand messages a second
        each one arrives alone, its code cold, where a call costs several times its warm cost
        (``tests/bench/market_data.py --only latency``)."""
        frames = self._frames
        while not self._ready:
            if self._closed is not None:
                raise self._lost()
            try:
                data = await self._stream.receive_some(self._receive_buffer_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._closed = (ABNORMAL_CLOSURE, f"receive failed: {exc!r}")
                await self._close_stream()
                continue
            if not data:
                self._closed = (ABNORMAL_CLOSURE, "connection ended without a close frame")
                await self._close_stream()
                continue
            frames.feed(bytes(data) if isinstance(data, bytearray) else data)
            if self._closed is None:  # (a failed send may have closed it meanwhile)
                raw = frames.read(self._ready)
                if raw:
                    await self._wsproto_frames(raw)
        ready, self._ready = self._ready, []
        return ready

    async def _receive(self, data: bytes) -> None:
        """Messages the frame reader decodes go straight to the batch; the bytes it returns are
        wsproto's (whole frames, in stream order), whose events are handled before the reader
        goes on, so that messages keep their order and nothing is read past a close."""
        frames = self._frames
        frames.feed(data)
        if self._closed is None:
            raw = frames.read(self._ready)
            if raw:
                await self._wsproto_frames(raw)

    async def _wsproto_frames(self, raw: bytes) -> None:
        """``raw`` (from the frame reader) through wsproto, then the reader again, until every
        byte held is handled or the connection closed."""
        frames = self._frames
        ready = self._ready
        while True:
            self._ws.receive_data(raw)
            await self._handle(self._ws.events())
            if self._closed is not None:
                return
            raw = frames.read(ready)
            if not raw:
                return

    async def _handle(self, events: Iterable[Event]) -> None:
        """Messages to the batch, pongs and the close reply sent in order. A message over the
        limit ends the batch with a 1009 close, after the pongs already due: so what is sent
        back does not depend on how the frames were cut into batches."""
        replies: list[bytes] = []
        ready = self._ready
        too_big = False
        for event in events:
            if isinstance(event, TextMessage):
                data: str | bytes = event.data
            elif isinstance(event, BytesMessage):
                data = bytes(event.data)  # wsproto may hand a bytearray
            elif isinstance(event, Ping):
                if self._ws.state is ConnectionState.OPEN:  # not while our close is under way
                    replies.append(self._ws.send(event.response()))
                continue
            elif isinstance(event, CloseConnection):
                self._closed = (event.code, event.reason or None)
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    replies.append(self._ws.send(event.response()))
                elif self._ws.state is ConnectionState.OPEN:  # a framing error wsproto found
                    replies.append(self._ws.send(CloseConnection(event.code, event.reason)))
                break
            else:
                continue
            if event.message_finished and not self._parts:
                if len(data) > self._max_message_size:
                    too_big = True
                    break
                ready.append(data)
                continue
            self._parts.append(data)
            self._size += len(data)
            if self._size > self._max_message_size:
                too_big = True
                break
            if event.message_finished:
                parts, self._parts, self._size = self._parts, [], 0
                if isinstance(data, str):
                    ready.append("".join(cast("list[str]", parts)))
                else:
                    ready.append(b"".join(cast("list[bytes]", parts)))
        for reply in replies:
            try:
                await self._send_bytes(reply)
            except ConnectionLostError:
                break
        if too_big:
            await self._too_big()
        elif self._closed is not None:
            await self._close_stream()

    async def _too_big(self) -> None:
        reason = f"message larger than {self._max_message_size} bytes"
        self._closed = (MESSAGE_TOO_BIG, reason)
        self._parts, self._size = [], 0
        try:
            await self._send_bytes(self._ws.send(CloseConnection(MESSAGE_TOO_BIG, reason)))
        except (ConnectionLostError, LocalProtocolError):
            pass
        await self._close_stream()

    async def _send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                if self._closed is None:
                    self._closed = (ABNORMAL_CLOSURE, f"send failed: {exc!r}")
                raise self._lost() from exc

    async def send(self, message: str) -> None:
        if self._closed is not None:
            raise self._lost()
        try:
            data = self._ws.send(TextMessage(data=message))
        except LocalProtocolError as exc:
            raise ConnectionLostError(f"cannot send: {exc}") from exc
        await self._send_bytes(data)

    async def _close_stream(self, *, forcefully: bool = False) -> None:
        if not self._stream_closed:
            self._stream_closed = True
            if forcefully:
                await trio.aclose_forcefully(self._stream)  # e.g. no TLS close_notify either
            else:
                await self._stream.aclose()

    def _ws_state(self) -> ConnectionState:
        """Read afresh: it changes as frames arrive, whatever an earlier check found."""
        return self._ws.state

    def abort(self) -> None:
        self._aborted = True

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self._aborted:
            if self._closed is None:
                self._closed = (ABNORMAL_CLOSURE, "aborted: the socket was declared dead")
            await self._close_stream(forcefully=True)
            return
        try:
            if self._closed is None and self._ws.state is ConnectionState.OPEN:
                self._closed = (code, reason)
                with trio.move_on_after(self._disconnect_timeout_s):
                    await self._send_bytes(self._ws.send(CloseConnection(code, reason)))
                    # wsproto reads the rest alone, from the partial frame the reader holds.
                    held = self._frames.step_aside()
                    if held:
                        self._ws.receive_data(held)
                    # Courtesy: let the server answer and close first (RFC 6455 §7.1.1).
                    while self._ws_state() is not ConnectionState.CLOSED:
                        data = await self._stream.receive_some(self._receive_buffer_size)
                        if not data:
                            break
                        self._ws.receive_data(bytes(data))
                        for _event in self._ws.events():
                            pass
        except (ConnectionLostError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await self._close_stream()


async def _handshake(
    stream: trio.abc.Stream, host_header: str, resource: str, connector: WsprotoConnector
) -> WsprotoTransport:
    """wsproto is given the response head and nothing past it (``http_head_end``): frames the
    server sends right behind its ``101`` go to the transport's frame reader, so that wsproto's
    buffer only ever holds whole frames. What follows a refusal's head (its body) is wsproto's.
    """
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=host_header, target=resource)))
    status: int | None = None
    body = b""
    head: bytearray | None = bytearray()  # the response so far, until its head ended
    fed = 0  # how much of ``head`` wsproto has
    past_head = False  # wsproto was given bytes after the head
    while True:
        data = await stream.receive_some(connector.receive_buffer_size)
        if not data:
            raise ConnectionLostError(
                "connection ended during the handshake", code=ABNORMAL_CLOSURE
            )
        if head is None:
            chunks = [bytes(data)]
        else:
            head += data
            end = http_head_end(head)
            if end is None:
                chunks = [bytes(head[fed:])]  # all of it is head, so far
                fed = len(head)
            else:
                chunks = [bytes(head[fed:end]), bytes(head[end:])]
                head = None
        for index, chunk in enumerate(chunks):
            past_head = past_head or (head is None and index == len(chunks) - 1)
            if chunk:  # b"" is the end of the stream to h11
                ws.receive_data(chunk)
            events = ws.events()
            for event in events:
                if isinstance(event, AcceptConnection):
                    transport = WsprotoTransport(
                        stream,
                        ws,
                        receive_buffer_size=connector.receive_buffer_size,
                        max_message_size=connector.max_message_size,
                        disconnect_timeout_s=connector.disconnect_timeout_s,
                        # Never negotiated (see ``actors.market_data.frames``), checked anyway;
                        # and should wsproto ever accept past the head, the frames are its own.
                        fast_frames=connector.fast_frames
                        and not event.extensions
                        and not past_head,
                    )
                    await transport._handle(events)  # frames wsproto holds: none, unless past_head
                    await transport._receive(b"".join(chunks[index + 1 :]))
                    return transport
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise HandshakeRefusedError(
                            f"handshake refused with HTTP {status}", status=status
                        )
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise HandshakeRefusedError(
                            f"handshake refused with HTTP {status}: {body[:200]!r}",
                            status=status,
                        )


@attrs.frozen
class WsprotoConnector:
    """The batching engine (see the module docstring); same sizes as the default engine."""

    max_message_size: int = 256 * 1024
    receive_buffer_size: int = 64 * 1024
    connect_timeout_s: float = 10.0
    disconnect_timeout_s: float = 2.0
    ssl_context: ssl.SSLContext | None = None
    #: Decode plain frames without wsproto (``actors.market_data.frames``); False: wsproto
    #: parses every frame, as the conformance tests compare.
    fast_frames: bool = True

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[WsprotoTransport]:
        host, port, resource, secure = _split_url(url)
        host_header = host if port in (80, 443) else f"{host}:{port}"
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_after(self.connect_timeout_s):
                if secure:
                    context = self.ssl_context or ssl.create_default_context()
                    stream = await trio.open_ssl_over_tcp_stream(
                        host, port, ssl_context=context, https_compatible=True
                    )
                else:
                    stream = await trio.open_tcp_stream(host, port)
                transport = await _handshake(stream, host_header, resource, self)
        except trio.TooSlowError as exc:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            raise ConnectionLostError(
                f"handshake timed out after {self.connect_timeout_s} s"
            ) from exc
        except (OSError, trio.BrokenResourceError, RemoteProtocolError) as exc:
            # RemoteProtocolError: the peer's answer is not HTTP (a wrong URL, another service).
            if stream is not None:
                await trio.aclose_forcefully(stream)
            raise ConnectionLostError(f"connect failed: {exc!r}") from exc
        except BaseException:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            raise
        try:
            yield transport
        finally:
            await transport.aclose()


def connector_for(engine: TransportEngine) -> Connector:
    """The connector for a feed's ``transport`` setting, with the default sizes."""
    if engine == "trio-websocket":
        return TrioWebsocketConnector()
    return WsprotoConnector()
