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
    stream: trio.SocketStream
    path: str
    hub: ExchangeServer
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    nursery: trio.Nursery | None = None  # the session's nursery, for injected one-off sends
    session: Session | None = None
    frames_sent: int = 0
    ending: Ending | None = None

    def end(self, ending: Ending) -> None:
        if self.ending is not None:
            if not isinstance(self.ending, Close):
                self.scope.cancel()
            return
        self.ending = ending
        if isinstance(ending, Drop):
            abort_tcp(self.stream)
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

    async def gate(self) -> None:
        """Wait while the server is stalled. Returns without a checkpoint when it is not, so a
        caller can build a frame right after it and send it with no other task in between."""
        while (resumed := self.hub._resumed) is not None:
            await resumed.wait()

    async def send(self, frame: str | bytes) -> None:
        if self.hub._resumed is not None:
            await self.gate()
        await self.send_now(frame)

    async def send_built(self, build: Callable[..., str | None], *args: object) -> None:
        """Build the frame only once the server is not stalled, then send it with no checkpoint
        in between: a frame never reflects subscription state older than what the client saw
        acknowledged before it, and per-connection counters (Coinbase Advanced
        ``sequence_num``) are assigned in wire order. ``build`` returns None to send nothing."""
        if self.hub._resumed is not None:
            await self.gate()
        frame = build(*args)
        if frame is not None:
            await self.send_now(frame)

    async def ping(self, payload: bytes) -> None:
        """A WebSocket ping frame; returns when its pong arrives."""
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
