"""One accepted client WebSocket of a simulated exchange, and how it ends.

A connection ends by cancelling its session scope (Trio's shutdown path) after recording *how*
it ends in ``ending``; the first recorded ending wins.

* ``Drop``: the socket is reset at once (no close frame) and the session cancelled.
* ``Close``: a closer task sends the close frame through trio-websocket (whose send lock lets a
  frame already being written finish first) and waits for the client's reply, then cancels the
  session. Cancelling the session *first* could cut a data frame in half on a slow socket and
  put the close frame after a torn frame. Session tasks that hit the closed socket meanwhile just
  wait for the closer.
* ``PeerGone``: the client closed or vanished; the session is cancelled.

A **half-open** connection (``go_half_open``, the server's ``stall_open_connections``) does not
end: it goes silent for good, the way a connection does when its peer hung or the route to it
died while both TCP states linger. The session's sends, replies and pings wait for ever at the
gate, and the ``Wire`` between trio-websocket and the TCP stream loses every byte both ways,
so nothing trio-websocket does by itself gets through either: it never answers a ping or a
close frame, because it never sees them. The TCP connection stays open; only the client
closing it (EOF or reset) still reaches the server, which then frees the connection like any
client that left (instead of holding a dead session until shutdown). The fault has to sit
below trio-websocket: above it, its reader task answers pings and close frames on its own.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

if TYPE_CHECKING:
    from actors.simulator.server import ExchangeServer
    from actors.simulator.session import Session


@attrs.frozen(slots=True)
class Drop:
    """Abort the TCP connection (RST) without a WebSocket close frame: the client sees 1006."""


@attrs.frozen(slots=True)
class Close:
    code: int
    reason: str | None = None


@attrs.frozen(slots=True)
class PeerGone:
    code: int | None
    reason: str | None


Ending = Drop | Close | PeerGone
CLOSE_TIMEOUT_S = 5.0  # waiting for the client's close reply (or for a stuck send to drain)


class Wire(trio.abc.Stream):
    """The client's TCP stream as the server's WebSocket reads and writes it; ``cut()`` makes
    it lose everything both ways (see the module docstring). A read under way when it is cut
    is lost too: what it returns is checked after the read."""

    def __init__(self, tcp: trio.SocketStream) -> None:
        self.tcp = tcp
        self.is_cut = False

    def cut(self) -> None:
        self.is_cut = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.is_cut:
            await trio.lowlevel.checkpoint()
            return
        await self.tcp.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        if self.is_cut:
            await trio.lowlevel.checkpoint()
            return
        await self.tcp.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        while True:
            data = await self.tcp.receive_some(max_bytes)
            if not data or not self.is_cut:
                return data  # b"": the client closed its side, which still gets through

    async def aclose(self) -> None:
        await self.tcp.aclose()


def abort_tcp(stream: trio.SocketStream) -> None:
    """Close the socket at once with SO_LINGER 0 (RST), the way a crashed or cut peer looks."""
    sock = stream.socket
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Connection:
    id: int
    ws: WebSocketConnection
    stream: Wire
    path: str
    hub: ExchangeServer
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    nursery: trio.Nursery | None = None  # the session's nursery, for injected one-off sends
    session: Session | None = None
    frames_sent: int = 0
    ending: Ending | None = None
    half_open: bool = False

    def end(self, ending: Ending) -> None:
        if self.ending is not None:
            if not isinstance(self.ending, Close):
                self.scope.cancel()
            return
        self.ending = ending
        if isinstance(ending, Drop):
            abort_tcp(self.stream.tcp)
        if isinstance(ending, Close) and self.nursery is not None:
            self.nursery.start_soon(self._close, ending)
        else:
            self.scope.cancel()

    async def _close(self, ending: Close) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_S):
            await self.ws.aclose(ending.code, ending.reason)
        self.scope.cancel()

    def spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> bool:
        """Run ``fn`` inside the session (used by fault injection); False if it already ended."""
        if self.nursery is None or self.ending is not None:
            return False
        self.nursery.start_soon(fn, *args)
        return True

    def go_half_open(self) -> None:
        """Go silent for good, keeping the TCP connection open (see the module docstring)."""
        self.half_open = True
        self.stream.cut()

    @property
    def gated(self) -> bool:
        """Whether sends must pass ``gate()`` first (one check on the hot path otherwise)."""
        return self.half_open or self.hub._resumed is not None

    async def gate(self) -> None:
        """Wait while the server is stalled, and for ever once this connection is half-open
        (until the session ends). Returns without a checkpoint when neither holds, so a caller
        can build a frame right after it and send it with no other task in between."""
        while True:
            if self.half_open:
                await trio.sleep_forever()
            resumed = self.hub._resumed
            if resumed is None:
                return
            await resumed.wait()

    async def send(self, frame: str | bytes) -> None:
        if self.gated:
            await self.gate()
        await self.send_now(frame)

    async def send_built(self, build: Callable[..., str | None], *args: object) -> None:
        """Build the frame only once the server is not stalled, then send it with no checkpoint
        in between: a frame never reflects subscription state older than what the client saw
        acknowledged before it, and per-connection counters (Coinbase Advanced
        ``sequence_num``) are assigned in wire order. ``build`` returns None to send nothing."""
        if self.gated:
            await self.gate()
        frame = build(*args)
        if frame is not None:
            await self.send_now(frame)

    async def ping(self, payload: bytes) -> None:
        """A WebSocket ping frame; returns when its pong arrives."""
        if self.gated:
            await self.gate()
        try:
            await self.ws.ping(payload)
        except ConnectionClosed as exc:
            await self._gone(exc)

    async def send_now(self, frame: str | bytes) -> None:
        try:
            await self.ws.send_message(frame)
        except ConnectionClosed as exc:
            await self._gone(exc)
        self.frames_sent += 1
        self.hub._frame_sent()

    async def receive(self) -> str | bytes:
        try:
            return await self.ws.get_message()
        except ConnectionClosed as exc:
            await self._gone(exc)

    async def _gone(self, exc: ConnectionClosed) -> NoReturn:
        if isinstance(self.ending, Close):
            await trio.sleep_forever()  # the closer cancels the session when the close is done
        reason = exc.reason
        self.end(PeerGone(reason.code if reason else None, reason.reason if reason else None))
        await trio.lowlevel.checkpoint()  # raises Cancelled: our session scope is cancelled
        raise AssertionError("a cancelled session scope did not cancel its task")
