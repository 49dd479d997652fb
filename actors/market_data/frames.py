"""Reading server WebSocket frames fast, with wsproto kept for everything else (RFC 6455).

Pure code: bytes in, messages and bytes out; no I/O, no Trio. The transport
(``actors.market_data.transport``) feeds it what the socket gave and hands wsproto what it
returns.

Why it exists: wsproto's frame parser is general-purpose pure Python (a buffer object, a header
tuple, a generator, an incremental UTF-8 decoder and an event object per frame): 10 µs or more a
message, half of the client's time under load. Nearly every frame an exchange sends is the
simplest kind there is: one unmasked, unfragmented (FIN=1) text frame, RSV bits clear.
``FrameReader`` decodes those itself, in about a microsecond, and gives every other byte to
wsproto, which keeps all of the protocol: fragmentation, ping/pong, the close handshake, and
every failure with its close code.

Decisions, and why:

* **Cut the stream at frame boundaries only, so wsproto cannot tell.** wsproto parses the bytes
  it is given, whatever the reads were. Given the same stream minus some whole frames, removed
  where it would be between two frames with no message in progress, each of which it would
  have turned into exactly one complete message with the same data, it behaves exactly as on
  the whole stream. The reader takes only such frames: first byte ``0x81`` or ``0x82`` (FIN,
  no RSV bit, text or binary), second byte below 128 (unmasked), a minimal length encoding (7,
  16 or 64 bits; wsproto rejects a longer one than needed), the whole frame received, no
  fragmented message open, at most ``max_message_size`` bytes, and for text a payload that
  ``bytes.decode("utf-8")`` accepts. That is the codec wsproto's incremental decoder runs, and
  strict: a payload it rejects goes to wsproto, which fails the connection with 1007 and its
  own reason.
* **Track the open fragmented message here.** wsproto holds a message open from a text or
  binary frame with FIN=0 to the continuation frame with FIN=1. The reader applies the same
  rule to the frames it hands over, and while a message is open it hands over every frame,
  data or control (a ping between two fragments is answered by wsproto, in order).
* **A frame the fast path may take waits here until it is whole**, not in wsproto, so
  wsproto's buffer is empty whenever the reader decodes again. The reads that follow it are
  kept in a list and joined once, when enough bytes arrived: a 200 KiB frame in 50 reads is
  copied once, not 50 times a growing buffer (linear, not quadratic).
* **A frame that is wsproto's anyway is streamed to it as its bytes arrive** (a fragment, a
  control frame, a frame over ``max_message_size``): wsproto gets it cut exactly where it would
  alone, so it and the transport act at the same read as before this reader existed (a
  fragment crossing the limit fails with 1009 at once; a broken server cannot make us hold more
  than the limit), and the boundary rule above still holds once the frame ends. Frames up to
  the limit need no size check on the fast path: a binary message is its frame, and text has
  no more characters (what the limit counts, as trio-websocket does) than bytes.
* **A frame wsproto rejects from its header alone** (an RSV bit, a mask, an unknown opcode, a
  fragmented or longer than 125 bytes control frame, a non-minimal or 2**63-and-over length,
  a continuation with no message open, a new text or binary frame inside one) **makes the
  reader step aside for good**: that frame and every byte after it go to wsproto straight
  away, which fails the connection with its own code (1002) without waiting for a payload that
  may never come.
* **No extension.** Reading an RSV bit as an error is right only without extensions. We never
  offer one (permessage-deflate would cost an inflate per frame), and wsproto refuses an
  upgrade response naming an extension we did not offer, so none can be negotiated; the
  transport still turns the fast path off (``fast=False``) if one ever were.
* **Control frames always go to wsproto**: they are rare, and it answers them by the rules (a
  pong echoes the ping's payload; the close handshake).
* **The upgrade response is split here too** (``http_head_end``): bytes the server sends right
  after its ``101`` response are frames, and they must reach this reader, not wsproto's buffer.

What differs from wsproto alone: only when, on a broken stream. An unfragmented text frame of
at most ``max_message_size`` bytes with invalid UTF-8 fails (1007, the same code) once it is
whole, where wsproto alone fails it at the read holding the bad byte.
"""

from __future__ import annotations

import re

__all__ = ["FrameReader", "http_head_end"]

# First bytes of the frames the fast path takes (FIN, no RSV bit, text or binary) are
# written as literals in ``FrameReader.read``: no global lookup per frame. 0x81: text; 0x82: binary.
_RSV = 0x70
_FIN = 0x80
_OPCODE = 0x0F
_CONTINUATION = 0x0
_BINARY = 0x2  # the last data opcode
_CLOSE = 0x8
_PONG = 0xA
_MAX_CONTROL_PAYLOAD = 125


def _rejected(b0: int, length: int, in_message: bool) -> bool:
    """Whether wsproto (a client, no extension) fails a frame from its header alone: RSV bits,
    an unknown opcode, a fragmented or too long control frame, or a data frame that does not
    fit the open message (a continuation with none open, a new message inside one). The length
    encoding and the mask are checked where the header is read."""
    if b0 & _RSV:
        return True
    opcode = b0 & _OPCODE
    if opcode >= _CLOSE:
        return opcode > _PONG or not b0 & _FIN or length > _MAX_CONTROL_PAYLOAD
    if opcode == _CONTINUATION:
        return not in_message
    return opcode > _BINARY or in_message


def _opens_or_closes(b0: int, in_message: bool) -> bool:
    """Whether wsproto has a fragmented message open after this (accepted) frame: from a data
    frame with FIN=0 to the continuation with FIN=1; control frames change nothing."""
    if b0 & _OPCODE >= _CLOSE:
        return in_message
    return not b0 & _FIN


class FrameReader:
    """Splits what a client WebSocket receives into messages it decodes itself and bytes for
    wsproto, in stream order (see the module docstring for the rules).

    ``feed(data)`` each read, then call ``read(out)`` until it returns ``b""``: each call
    appends the messages it decoded to ``out`` and returns the bytes that come next in the
    stream and are wsproto's (whole frames, or the parts of a frame streamed to it), which the
    caller gives wsproto, and whose events it handles, before calling again: so messages keep
    their order whichever of the two decoded them.
    """

    __slots__ = (
        "_buf",
        "_chunks",
        "_fast",
        "_have",
        "_in_message",
        "_limit",
        "_need",
        "_pos",
        "_stream",
    )

    def __init__(self, *, max_message_size: int, fast: bool = True) -> None:
        self._limit = max_message_size
        self._fast = fast  # False: every byte goes to wsproto
        self._buf = b""  # received bytes, handled up to _pos
        self._pos = 0
        self._chunks: list[bytes] = []  # reads after _buf, joined only when a frame is whole
        self._have = 0  # bytes held from _pos: len(_buf) - _pos + the chunks
        self._need = 0  # bytes from _pos needed before parsing can make progress
        self._stream = 0  # bytes of an oversized frame still to be streamed to wsproto
        self._in_message = False  # wsproto holds a fragmented message open

    @property
    def fast(self) -> bool:
        """Whether frames may still be decoded here (False once stepped aside)."""
        return self._fast

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._have += len(data)

    def step_aside(self) -> bytes:
        """Every byte held, and from now on every byte fed, is wsproto's: for the close
        handshake, which wsproto reads alone."""
        self._fast = False
        return self._take_all()

    def read(self, out: list[str | bytes]) -> bytes:
        """Append the messages decoded here to ``out``; return the bytes that follow them and
        are wsproto's, or ``b""`` when every byte held has been handled (or waits for more)."""
        if not self._fast:
            return self._take_all()
        if self._stream:
            return self._take_stream()
        if self._have < self._need:
            return b""  # a frame still incomplete: no join, no parse
        buf, pos = self._merged()
        end = len(buf)
        limit = self._limit
        in_message = self._in_message
        append = out.append
        first = -1  # where the frames for wsproto start, if any were found
        need = 2
        while True:
            left = end - pos
            if left < 2:
                need = 2
                break
            b0 = buf[pos]
            length = buf[pos + 1]
            if length < 126:
                start = pos + 2
            elif length == 126:
                if left < 4:
                    need = 4
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
                if length < 126:
                    return self._give_up(buf, pos if first < 0 else first)
            elif length == 127:
                if left < 10:
                    need = 10
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
                if length < 0x10000 or length >> 63:
                    return self._give_up(buf, pos if first < 0 else first)
            else:  # masked: a server must not mask (RFC 6455 §5.1)
                return self._give_up(buf, pos if first < 0 else first)
            stop = start + length
            if b0 in (0x81, 0x82) and stop <= end and length <= limit and not in_message:
                if first >= 0:
                    need = 0  # wsproto's frames first; this one on the next call
                    break
                if b0 == 0x82:
                    append(buf[start:stop])
                    pos = stop
                    continue
                try:
                    append(buf[start:stop].decode())  # UTF-8, strict: the defaults (faster)
                except UnicodeDecodeError:
                    pass  # wsproto's: it fails the connection with 1007
                else:
                    pos = stop
                    continue
            # A frame for wsproto.
            if _rejected(b0, length, in_message):
                return self._give_up(buf, pos if first < 0 else first)
            if stop > end:
                if b0 in (0x81, 0x82) and length <= limit and not in_message:
                    need = stop - pos  # perhaps the fast path's: wait until it is whole
                    break
                # wsproto's whatever follows: streamed as it arrives, as wsproto alone gets it.
                self._in_message = _opens_or_closes(b0, in_message)
                self._stream = stop - end
                return self._take_from(buf, pos if first < 0 else first)
            if first < 0:
                first = pos
            in_message = _opens_or_closes(b0, in_message)
            pos = stop
        self._in_message = in_message
        self._buf = buf
        self._pos = pos
        self._have = end - pos
        self._need = need
        return buf[first:pos] if first >= 0 else b""

    def _give_up(self, buf: bytes, first: int) -> bytes:
        """A frame wsproto fails from its header: it and all that follows are wsproto's."""
        self._fast = False
        return self._take_from(buf, first)

    def _take_from(self, buf: bytes, first: int) -> bytes:
        self._buf, self._pos, self._have, self._need = b"", 0, 0, 2
        return buf[first:] if first else buf

    def _take_all(self) -> bytes:
        buf, pos = self._merged()
        return self._take_from(buf, pos)

    def _take_stream(self) -> bytes:
        data = self._take_all()
        if len(data) <= self._stream:
            self._stream -= len(data)
            return data
        n, self._stream = self._stream, 0
        self._buf, self._pos, self._have, self._need = data, n, len(data) - n, 2
        return data[:n]

    def _merged(self) -> tuple[bytes, int]:
        """The bytes held as one ``bytes`` and where unhandled ones start. At most one copy of
        what is held: none when the last read ended on a frame boundary, else the start of the
        frame it cut plus the new read (under load, a 64 KiB copy per read: a few hundredths of
        a µs a message, less than parsing the cut frame in two pieces would cost)."""
        chunks = self._chunks
        if not chunks:
            return self._buf, self._pos
        self._chunks = []
        if self._pos == len(self._buf):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), 0
        return b"".join([memoryview(self._buf)[self._pos :], *chunks]), 0


_BLANK_LINE = re.compile(rb"\n\r?\n")


def http_head_end(data: bytes | bytearray) -> int | None:
    """Where the HTTP response head in ``data`` ends (the index after its blank line), by h11's
    own rule (wsproto reads the upgrade response with h11), or None while it has not ended.

    Giving wsproto exactly the head leaves the frames that follow a ``101`` in the same read
    to the ``FrameReader``: wsproto would otherwise keep them, and perhaps a partial frame, in
    its own buffer. A response starting with an empty line ends there (h11 then fails it)."""
    if data[:1] == b"\n":
        return 1
    if data[:2] == b"\r\n":
        return 2
    match = _BLANK_LINE.search(data)
    return match.end() if match else None
