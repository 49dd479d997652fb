"""A raw WebSocket server for the conformance tests: it completes the HTTP upgrade itself
(wsproto in server mode, for the handshake only) and then writes crafted bytes, frame by frame
or byte by byte, and reads back, unmasked, every frame the client sends.

Why raw: a WebSocket library refuses to send what these tests need (masked or RSV frames,
unknown opcodes, oversized pings, non-minimal lengths, fragments out of order), and a
library's own reader would hide what the client sent (a pong's payload, a close code).
Every server listens on 127.0.0.1, port 0, inside the test's own event loop.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

import attrs
import trio
import trio.lowlevel
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "ClientFrame",
    "EdgeServer",
    "close_payload",
    "frame",
    "open_edge_server",
    "parse_client_frames",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_bytes: int | None = None,
) -> bytes:
    """One frame, any of it wrong on request: ``rsv`` is the three RSV bits (4 = RSV1),
    ``mask`` a masking key (a server must not mask), ``length_bytes`` 0, 2 or 8 forces the
    7-, 16- or 64-bit length encoding (None: the minimal one, as RFC 6455 requires)."""
    n = len(payload)
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 0x10000 else 8
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes == 0:
        head += bytes([mask_bit | n])
    elif length_bytes == 2:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


@attrs.frozen
class ClientFrame:
    """A frame the client sent, unmasked; ``masked`` says whether it was (RFC 6455 §5.3:
    always)."""

    opcode: int
    payload: bytes
    fin: bool = True
    masked: bool = True

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


def parse_client_frames(data: bytes) -> tuple[list[ClientFrame], bytes]:
    """The whole frames in ``data`` and the bytes left after them."""
    frames = []
    pos = 0
    while len(data) - pos >= 2:
        b0, b1 = data[pos], data[pos + 1]
        n = b1 & 0x7F
        at = pos + 2
        if n == 126:
            if len(data) - at < 2:
                break
            n = struct.unpack_from("!H", data, at)[0]
            at += 2
        elif n == 127:
            if len(data) - at < 8:
                break
            n = struct.unpack_from("!Q", data, at)[0]
            at += 8
        key = b""
        if b1 & 0x80:
            key = data[at : at + 4]
            at += 4
        if len(data) < at + n or len(key) < (4 if b1 & 0x80 else 0):
            break
        payload = data[at : at + n]
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        frames.append(ClientFrame(b0 & 0x0F, payload, fin=bool(b0 & 0x80), masked=bool(key)))
        pos = at + n
    return frames, data[pos:]


@attrs.define(eq=False)
class EdgeServer:
    """One scripted connection: ``writes`` go out one ``send_all`` each (the first together
    with the ``101`` response when ``with_handshake``; that response cut in ``response_piece``
    byte writes if set), with a checkpoint between writes so that the client reads them apart;
    then the server records every frame the client sends until it closes the TCP connection. A
    close from the client is answered (unless the server sent one first), as RFC 6455 §5.5.1
    asks, so the client's courteous close never waits."""

    writes: Sequence[bytes]
    with_handshake: bool = False
    extra_headers: Sequence[tuple[bytes, bytes]] = ()
    sent_close: bool = False  # the script holds a close frame: the server started closing
    before_close_reply: bytes = b""  # written just before the answer to the client's close
    response_piece: int | None = None  # write the 101 response in pieces of this many bytes
    url: str = ""
    received: list[ClientFrame] = attrs.field(factory=list)
    done: trio.Event = attrs.field(factory=trio.Event)

    async def serve(self, stream: trio.SocketStream) -> None:
        try:
            await self._serve(stream)
        finally:
            self.done.set()
            await trio.aclose_forcefully(stream)

    async def _serve(self, stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            ws.receive_data(data)
            if any(isinstance(event, Request) for event in ws.events()):
                break
        response = ws.send(AcceptConnection(extra_headers=list(self.extra_headers)))
        writes = list(self.writes)
        if self.with_handshake and writes:
            response += writes.pop(0)
        piece = self.response_piece or len(response)
        writes[:0] = [response[i : i + piece] for i in range(0, len(response), piece)]
        try:
            for data in writes:
                await trio.lowlevel.checkpoint()  # the client reads what came so far
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass  # the client failed the connection before the script's end: read what it sent
        pending = b""
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return  # the client reset the connection: it was done
            if not data:
                return
            frames, pending = parse_client_frames(pending + data)
            for client_frame in frames:
                self.received.append(client_frame)
                if client_frame.opcode == CLOSE and not self.sent_close:
                    self.sent_close = True
                    reply = self.before_close_reply + frame(CLOSE, client_frame.payload[:2])
                    try:
                        await stream.send_all(reply)
                    except trio.BrokenResourceError:
                        return


@asynccontextmanager
async def open_edge_server(
    writes: Sequence[bytes],
    *,
    with_handshake: bool = False,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    sent_close: bool = False,
    before_close_reply: bytes = b"",
    response_piece: int | None = None,
) -> AsyncIterator[EdgeServer]:
    """A listener on 127.0.0.1, port 0, serving one ``EdgeServer`` script per connection."""
    server = EdgeServer(
        writes,
        with_handshake=with_handshake,
        extra_headers=extra_headers,
        sent_close=sent_close,
        before_close_reply=before_close_reply,
        response_piece=response_piece,
    )
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
        server.url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
        yield server
        nursery.cancel_scope.cancel(reason="test done")
