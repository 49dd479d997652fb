"""WebSocket conformance of the default engine (RFC 6455), with its fast frame reader and
without it: every case runs on ``WsprotoConnector()`` ("fast": plain frames decoded by
``actors.market_data.frames``) and on ``WsprotoConnector(fast_frames=False)`` ("wsproto":
wsproto parses every frame), against the same expectations, so the fast path is shown to
behave exactly as wsproto does.

Each case is a raw server script (``tests.market_data.edge_server``: crafted bytes after a real
upgrade, on 127.0.0.1), what the client must receive (every message, in order, exact payloads),
how it must end (the close code of ``ConnectionLostError``, or the client closing with 1000
itself after the messages), and every frame the client must send back (pongs with their
payload, the close code), read from the wire on the server side.

Then a property test drives the transport's receive step directly over random frame streams
cut at random places (no socket, so the cuts are exactly the generated ones) and checks both
modes agree on all of it; and unit tests pin the reader's buffering and the HTTP head split.
"""

from __future__ import annotations

import string

import attrs
import h11
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from actors.errors import ConnectionLostError
from actors.market_data.frames import FrameReader, http_head_end
from actors.market_data.transport import Transport, WsprotoConnector, WsprotoTransport
from tests.market_data.edge_server import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    ClientFrame,
    close_payload,
    frame,
    open_edge_server,
    parse_client_frames,
)

LIMIT = 256 * 1024
MODES = {"fast": True, "wsproto": False}
Reply = tuple[str, object]  # ("pong", payload), ("close", code), ("opcode 0x1", payload)


def text(data: str, **kwargs: object) -> bytes:
    return frame(TEXT, data.encode(), **kwargs)  # type: ignore[arg-type]


def closing(code: int | None) -> Reply:
    return ("close", code)


def describe(client_frame: ClientFrame) -> Reply:
    assert client_frame.masked, "a client frame must be masked (RFC 6455 §5.3)"
    assert client_frame.fin
    if client_frame.opcode == PONG:
        return ("pong", client_frame.payload)
    if client_frame.opcode == CLOSE:
        return closing(client_frame.close_code)
    return (f"opcode {client_frame.opcode:#x}", client_frame.payload)


@attrs.frozen
class Case:
    """``lost``: the close code the client reports (None: it gets ``messages`` and closes the
    connection itself, with 1000). ``replies``: every frame the client sends after the
    upgrade."""

    writes: tuple[bytes, ...]
    messages: tuple[str | bytes, ...] = ()
    lost: int | None = None
    replies: tuple[Reply, ...] = (closing(1000),)
    with_handshake: bool = False  # the first write goes out with the 101 response
    response_piece: int | None = None  # the 101 response written in pieces of this size
    sent_close: bool = False  # the script closes: the server does not answer the client's
    max_message_size: int = LIMIT


def fails(code: int, *writes: bytes, messages: tuple[str | bytes, ...] = ()) -> Case:
    """The client fails the connection: it reports ``code`` and sends a close with it."""
    return Case(writes, messages, lost=code, replies=(closing(code),))


def one_byte_writes(data: bytes) -> tuple[bytes, ...]:
    return tuple(data[i : i + 1] for i in range(len(data)))


def pieces(data: bytes, size: int) -> tuple[bytes, ...]:
    return tuple(data[i : i + size] for i in range(0, len(data), size))


def ascii_of(n: int) -> str:
    return (string.ascii_lowercase * (n // 26 + 1))[:n]


def bytes_of(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


EURO = "€"  # 3 bytes in UTF-8: e2 82 ac
MANY = tuple(f'{{"u":{i},"b":"{i}.5"}}' for i in range(2000))
SPLIT = text(ascii_of(300)) + text("ok") + frame(BINARY, bytes_of(200))
FRAGMENTED = (
    frame(TEXT, b'{"a":', fin=False)
    + frame(PING, b"hb-1")
    + frame(CONTINUATION, b"1", fin=False)
    + frame(PONG, b"unsolicited")
    + frame(CONTINUATION, b"}")
    + text("after")
)

CASES: dict[str, Case] = {
    # --- what the fast path takes ----------------------------------------------------------
    "text and binary in order": Case(
        (text("a") + frame(BINARY, b"\x00\xff") + text("é€😀"),), ("a", b"\x00\xff", "é€😀")
    ),
    "zero-length text and binary": Case((frame(TEXT) + frame(BINARY),), ("", b"")),
    **{
        f"text of {n} bytes": Case((text(ascii_of(n)),), (ascii_of(n),))
        for n in (125, 126, 127, 65535, 65536)
    },
    **{
        f"binary of {n} bytes": Case((frame(BINARY, bytes_of(n)),), (bytes_of(n),))
        for n in (125, 126, 127, 65535, 65536)
    },
    "2000 frames in one write": Case((b"".join(text(m) for m in MANY),), MANY),
    "frames cut one byte per write": Case(
        one_byte_writes(SPLIT), (ascii_of(300), "ok", bytes_of(200))
    ),
    "a 64-bit length frame in 1000-byte writes": Case(
        pieces(text(ascii_of(70_000)) + text("next"), 1000), (ascii_of(70_000), "next")
    ),
    "frames in the 101 response's write": Case(
        (text("first") + text("second"), text("third")),
        ("first", "second", "third"),
        with_handshake=True,
    ),
    "frames in the 101 response's write, the last one cut": Case(
        (text("first") + text("second")[:4], text("second")[4:]),
        ("first", "second"),
        with_handshake=True,
    ),
    **{
        f"the 101 response and a frame in {n}-byte writes": Case(
            (text("first"), text("second")),
            ("first", "second"),
            with_handshake=True,
            response_piece=n,
        )
        for n in (1, 7)
    },
    "a frame over the limit in bytes, not in characters (the limit counts characters)": Case(
        (text(EURO * 500),), (EURO * 500,), max_message_size=1000
    ),
    "a message exactly at the limit": Case(
        (frame(BINARY, bytes_of(1000)),), (bytes_of(1000),), max_message_size=1000
    ),
    # --- fragmentation and control frames (wsproto's) ----------------------------------------
    "a ping and a pong between fragments; the fast path resumes after": Case(
        (FRAGMENTED,), ('{"a":1}', "after"), replies=(("pong", b"hb-1"), closing(1000))
    ),
    "fragments cut one byte per write": Case(
        one_byte_writes(FRAGMENTED),
        ('{"a":1}', "after"),
        replies=(("pong", b"hb-1"), closing(1000)),
    ),
    "fragmented binary": Case(
        (frame(BINARY, b"\x01", fin=False) + frame(CONTINUATION, b"\x02") + text("t"),),
        (b"\x01\x02", "t"),
    ),
    "a UTF-8 character cut between two fragments": Case(
        (
            frame(TEXT, b"a" + EURO.encode()[:2], fin=False)
            + frame(CONTINUATION, EURO.encode()[2:] + b"b"),
        ),
        (f"a{EURO}b",),
    ),
    "pings answered with their payload": Case(
        (frame(PING, b"1234") + text("x") + frame(PING) + frame(PING, bytes_of(125)),),
        ("x",),
        replies=(("pong", b"1234"), ("pong", b""), ("pong", bytes_of(125)), closing(1000)),
    ),
    "the server closes: the client answers with the same code": Case(
        (text("before") + frame(CLOSE, close_payload(4000, "maintenance")) + text("never"),),
        ("before",),
        lost=4000,
        replies=(closing(4000),),
        sent_close=True,
    ),
    "the server closes with no status code: 1005, a close without one back": Case(
        (frame(CLOSE),), lost=1005, replies=(closing(None),), sent_close=True
    ),
    # --- failures: the client closes with the code ---------------------------------------
    "a continuation with no message started": fails(
        1002, text("ok") + frame(CONTINUATION, b"x"), messages=("ok",)
    ),
    "a new data frame inside a fragmented message": fails(
        1002, frame(TEXT, b"a", fin=False) + text("b")
    ),
    "a ping with 126 bytes of payload": fails(1002, frame(PING, bytes_of(126))),
    "a fragmented ping": fails(1002, frame(PING, b"p", fin=False)),
    "invalid UTF-8": fails(1007, text("ok") + frame(TEXT, b"\xff\xfe"), messages=("ok",)),
    "an encoded surrogate (invalid UTF-8)": fails(1007, frame(TEXT, b"\xed\xa0\x80")),
    "a message ending inside a UTF-8 character": fails(
        1007, frame(TEXT, b"a", fin=False) + frame(CONTINUATION, EURO.encode()[:2])
    ),
    "RSV1": fails(1002, text("ok") + text("x", rsv=4), messages=("ok",)),
    "RSV2": fails(1002, text("x", rsv=2)),
    "RSV3 on a ping": fails(1002, frame(PING, b"p", rsv=1)),
    "a masked server frame": fails(1002, text("ok") + text("hi", mask=b"abcd"), messages=("ok",)),
    "unknown data opcode 0x3": fails(1002, frame(0x3, b"x")),
    "unknown control opcode 0xB": fails(1002, frame(0xB, b"x")),
    "a 16-bit length for 5 bytes": fails(1002, text("short", length_bytes=2)),
    "a 64-bit length for 200 bytes": fails(1002, text(ascii_of(200), length_bytes=8)),
    "a 64-bit length with its top bit set": fails(1002, b"\x81\x7f\x80" + bytes(7) + b"xyz"),
}

TOO_BIG: dict[str, Case] = {
    "a text message over the limit": fails(1009, text("ok") + text("x" * 1001), messages=("ok",)),
    "a binary message over the limit": fails(1009, frame(BINARY, bytes_of(1001))),
    "a fragmented message over the limit": fails(
        1009,
        frame(TEXT, b"x" * 400, fin=False)
        + frame(CONTINUATION, b"x" * 400, fin=False)
        + frame(CONTINUATION, b"x" * 400),
    ),
    "a fragmented message crossing the limit inside a fragment, the rest never sent": fails(
        1009, frame(TEXT, b"x" * 600, fin=False) + frame(CONTINUATION, b"x" * 600)[:504]
    ),
    "a 1 MiB frame announced, 2000 bytes of it sent": fails(1009, text(ascii_of(1 << 20))[:2010]),
    "a ping before an oversized message is answered first": Case(
        (frame(PING, b"p1") + text("x" * 1001),),
        lost=1009,
        replies=(("pong", b"p1"), closing(1009)),
    ),
}
ALL_CASES = dict(CASES) | {
    name: attrs.evolve(case, max_message_size=1000) for name, case in TOO_BIG.items()
}


@attrs.frozen
class Outcome:
    messages: list[str | bytes]
    lost: int | None  # the close code the client reported
    replies: list[Reply]


async def run_case(case: Case, *, fast: bool) -> Outcome:
    connector = WsprotoConnector(max_message_size=case.max_message_size, fast_frames=fast)
    received: list[str | bytes] = []
    lost: ConnectionLostError | None = None
    with trio.fail_after(10):
        async with open_edge_server(
            case.writes,
            with_handshake=case.with_handshake,
            sent_close=case.sent_close,
            response_piece=case.response_piece,
        ) as server:
            async with connector.connect(server.url) as transport:
                try:
                    while case.lost is not None or len(received) < len(case.messages):
                        received += await transport.receive_batch()
                except ConnectionLostError as exc:
                    lost = exc
            await server.done.wait()
    return Outcome(
        received, None if lost is None else lost.code, [describe(f) for f in server.received]
    )


@pytest.mark.parametrize("fast", MODES.values(), ids=MODES.keys())
@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
async def test_conformance(case: Case, fast: bool) -> None:
    outcome = await run_case(case, fast=fast)
    assert outcome.messages == list(case.messages)
    assert outcome.lost == case.lost
    assert outcome.replies == list(case.replies)


async def receive_until_lost(transport: Transport) -> ConnectionLostError:
    try:
        while True:
            await transport.receive_batch()
    except ConnectionLostError as exc:
        return exc


@pytest.mark.parametrize("fast", MODES.values(), ids=MODES.keys())
async def test_a_server_close_keeps_its_reason_and_is_echoed(fast: bool) -> None:
    case = CASES["the server closes: the client answers with the same code"]
    with trio.fail_after(10):
        async with open_edge_server(case.writes, sent_close=True) as server:
            async with WsprotoConnector(fast_frames=fast).connect(server.url) as transport:
                lost = await receive_until_lost(transport)
            await server.done.wait()
    assert (lost.code, lost.reason) == (4000, "maintenance")
    assert [(f.close_code, f.close_reason) for f in server.received] == [(4000, "maintenance")]


@pytest.mark.parametrize("fast", MODES.values(), ids=MODES.keys())
async def test_our_close_reads_the_reply_past_a_frame_the_reader_holds(fast: bool) -> None:
    """The client closes while the reader holds the start of a frame: wsproto is given those
    bytes first, so it finds the server's close reply after the rest of that frame and the
    close ends at once (not after ``disconnect_timeout_s``)."""
    partial = text("never delivered")
    connector = WsprotoConnector(fast_frames=fast, disconnect_timeout_s=30.0)
    with trio.fail_after(10):
        async with open_edge_server(
            [text("x") + partial[:5]], before_close_reply=partial[5:]
        ) as server:
            async with connector.connect(server.url) as transport:
                assert await transport.receive_batch() == ["x"]
                await trio.sleep(0.05)  # the partial frame is read (the reader holds it)
                with trio.fail_after(5):  # well under disconnect_timeout_s
                    await transport.aclose()
            await server.done.wait()
    assert [describe(f) for f in server.received] == [closing(1000)]


@pytest.mark.parametrize("fast", MODES.values(), ids=MODES.keys())
async def test_an_extension_the_client_did_not_offer_fails_the_upgrade(fast: bool) -> None:
    """We never offer permessage-deflate; wsproto refuses a response that names it anyway, so
    no extension (which could give RSV bits a meaning) is ever in use."""
    with trio.fail_after(10):
        async with open_edge_server(
            [text("x")], extra_headers=[(b"Sec-WebSocket-Extensions", b"permessage-deflate")]
        ) as server:
            with pytest.raises(ConnectionLostError, match="unrecognized extension"):
                async with WsprotoConnector(fast_frames=fast).connect(server.url):
                    pass


# --- both modes over random streams, cut at random places -----------------------------------


class _NeedMore(Exception):
    """The transport asked the socket for more: everything fed so far is handled."""


class _Wire(trio.abc.Stream):
    """The transport's socket in the property test: keeps what is sent; a read means the
    chunks fed so far are all handled (``_NeedMore``)."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self.closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        if self.closed:
            raise trio.ClosedResourceError
        self.sent += data

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        raise _NeedMore

    async def aclose(self) -> None:
        self.closed = True
        await trio.lowlevel.checkpoint()


def _open_transport(*, fast: bool, limit: int) -> tuple[WsprotoTransport, _Wire]:
    """A transport in the OPEN state (the upgrade done in memory) on a ``_Wire``."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="test", target="/")))
    assert any(isinstance(event, Request) for event in server.events())
    client.receive_data(server.send(AcceptConnection()))
    assert any(isinstance(event, AcceptConnection) for event in client.events())
    wire = _Wire()
    transport = WsprotoTransport(
        wire,
        client,
        receive_buffer_size=65536,
        max_message_size=limit,
        disconnect_timeout_s=1.0,
        fast_frames=fast,
    )
    return transport, wire


async def _drive(chunks: list[bytes], *, fast: bool, limit: int) -> Outcome:
    """The transport's receive step, chunk by chunk, as reads would give them; every message
    is taken with ``receive_batch`` until it would read the socket again."""
    transport, wire = _open_transport(fast=fast, limit=limit)
    messages: list[str | bytes] = []
    lost: ConnectionLostError | None = None
    for chunk in chunks:
        await transport._receive(chunk)
        try:
            while True:
                messages += await transport.receive_batch()
        except ConnectionLostError as exc:
            lost = exc
            break
        except _NeedMore:
            continue
    replies, rest = parse_client_frames(bytes(wire.sent))
    assert rest == b""
    return Outcome(messages, None if lost is None else lost.code, [describe(f) for f in replies])


@st.composite
def _element(draw: st.DrawFn, limit: int) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "text",
                "text",
                "text",
                "binary",
                "long",
                "ping",
                "pong",
                "fragmented",
                "close",
                "bad",
                "oversized",
            ]
        )
    )
    if kind == "text":
        return text(draw(st.text(max_size=40)))
    if kind == "binary":
        return frame(BINARY, draw(st.binary(max_size=40)))
    if kind == "long":
        n = draw(st.sampled_from([125, 126, 127, 1000, 65535, 65536, 70_000]))
        return (
            text(ascii_of(min(n, limit)))
            if draw(st.booleans())
            else frame(BINARY, bytes_of(min(n, limit)))
        )
    if kind in ("ping", "pong"):
        return frame(PING if kind == "ping" else PONG, draw(st.binary(max_size=125)))
    if kind == "fragmented":
        data = draw(st.text(min_size=1, max_size=30)).encode()
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
        parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        out = b""
        for i, part in enumerate(parts):
            opcode = TEXT if i == 0 else CONTINUATION
            out += frame(opcode, part, fin=i == len(parts) - 1)
            if i < len(parts) - 1 and draw(st.booleans()):
                out += frame(draw(st.sampled_from([PING, PONG])), draw(st.binary(max_size=8)))
        return out
    if kind == "close":
        return frame(CLOSE, close_payload(draw(st.sampled_from([1000, 1001, 1011, 4000])), "bye"))
    if kind == "bad":
        return draw(
            st.sampled_from(
                [
                    frame(CONTINUATION, b"x"),
                    frame(TEXT, b"a", fin=False) + text("b"),
                    frame(PING, bytes_of(126)),
                    frame(PING, b"p", fin=False),
                    frame(TEXT, b"ok\xff"),
                    frame(TEXT, b"a", fin=False) + frame(CONTINUATION, b"\xe2\x82"),
                    text("x", rsv=4),
                    text("hi", mask=b"abcd"),
                    frame(0x3, b"x"),
                    frame(0xB, b""),
                    text("short", length_bytes=2),
                    text(ascii_of(300), length_bytes=8),
                    frame(CLOSE, b"\x03"),  # a close payload of one byte
                ]
            )
        )
    # Oversized: valid UTF-8 (a message both too long and invalid fails with 1007 or 1009
    # depending on where reads end, in wsproto alone too).
    n = limit + draw(st.integers(1, 3))
    which = draw(st.integers(0, 4))
    if which == 0:
        return text("x" * n)
    if which == 1:
        return frame(BINARY, bytes_of(n))
    if which == 2:
        return frame(TEXT, b"x" * (n // 2), fin=False) + frame(CONTINUATION, b"x" * (n // 2 + 1))
    if which == 3:
        return text(EURO * n)  # over the limit in characters too
    return b"\x81\x7f" + (1 << 20).to_bytes(8, "big") + b"x" * (limit + 200)  # never finished


@st.composite
def _streams(draw: st.DrawFn) -> tuple[list[bytes], int]:
    limit = draw(st.sampled_from([100, 1000, LIMIT]))
    data = b"".join(draw(st.lists(_element(limit), min_size=1, max_size=12)))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=30))))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return [chunk for chunk in chunks if chunk], limit


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_streams())
def test_the_fast_path_and_wsproto_agree_on_random_streams(stream: tuple[list[bytes], int]) -> None:
    chunks, limit = stream
    fast = trio.run(lambda: _drive(chunks, fast=True, limit=limit))
    slow = trio.run(lambda: _drive(chunks, fast=False, limit=limit))
    assert fast == slow


# --- the reader alone -------------------------------------------------------------------------


def test_a_frame_arriving_in_many_reads_is_joined_once() -> None:
    """Reads that do not complete the frame are only listed (no join, no parse): a frame in n
    reads costs one copy, not n growing ones."""
    reader = FrameReader(max_message_size=LIMIT)
    data = text(ascii_of(200_000))
    out: list[str | bytes] = []
    for piece in pieces(data[:-1], 1000):
        reader.feed(piece)
        assert reader.read(out) == b""
    assert len(reader._chunks) == len(data) // 1000  # held as they came, never joined yet
    reader.feed(data[-1:])
    assert reader.read(out) == b""
    assert out == [ascii_of(200_000)]
    assert reader._chunks == []


def test_a_frame_over_the_limit_is_streamed_to_wsproto_as_it_arrives() -> None:
    reader = FrameReader(max_message_size=1000)
    big = frame(BINARY, bytes_of(5000))
    out: list[str | bytes] = []
    reader.feed(text("a") + big[:1500])
    assert reader.read(out) == big[:1500]  # not waited for
    assert out == ["a"]
    reader.feed(big[1500:3000])
    assert reader.read(out) == big[1500:3000]
    reader.feed(big[3000:] + text("b"))
    assert reader.read(out) == big[3000:]  # the stream ends where the frame does
    assert reader.read(out) == b""
    assert out == ["a", "b"]


def test_a_frame_that_is_wsproto_s_anyway_is_streamed_to_it() -> None:
    """A fragment (or a control frame) is handed over as it arrives, cut where wsproto alone
    would see it cut; the fast path resumes at the end of the message."""
    reader = FrameReader(max_message_size=LIMIT)
    opening = frame(TEXT, b"a" * 300, fin=False)
    final = frame(CONTINUATION, b"b" * 300)
    out: list[str | bytes] = []
    reader.feed(text("1") + opening[:100])
    assert reader.read(out) == opening[:100]
    reader.feed(opening[100:] + final[:50])
    assert reader.read(out) == opening[100:]  # the streamed frame's end...
    assert reader.read(out) == final[:50]  # ...then the next one, streamed too
    reader.feed(final[50:] + text("2") + frame(PING, b"p")[:3])
    assert reader.read(out) == final[50:]
    assert reader.read(out) == frame(PING, b"p")[:3]
    assert out == ["1", "2"]


def test_wsproto_frames_are_handed_over_in_runs_and_in_order() -> None:
    reader = FrameReader(max_message_size=LIMIT)
    ping = frame(PING, b"p")
    fragments = frame(TEXT, b"a", fin=False) + frame(CONTINUATION, b"b")
    out: list[str | bytes] = []
    reader.feed(text("1") + ping + fragments + text("2"))
    assert reader.read(out) == ping + fragments  # one run for wsproto...
    assert out == ["1"]  # ...after the message before it, and before the one after it
    assert reader.read(out) == b""
    assert out == ["1", "2"]


def test_a_frame_wsproto_rejects_by_its_header_makes_the_reader_step_aside() -> None:
    reader = FrameReader(max_message_size=LIMIT)
    out: list[str | bytes] = []
    reader.feed(text("a") + text("b", rsv=4) + text("c"))
    assert reader.read(out) == text("b", rsv=4) + text("c")
    assert not reader.fast
    reader.feed(text("d"))
    assert reader.read(out) == text("d")
    assert out == ["a"]


@pytest.mark.parametrize(
    "rejected",
    [
        text("x", rsv=4),
        text("x", rsv=2),
        frame(PING, rsv=1),
        text("x", mask=b"abcd"),
        frame(0x3, b"x"),
        frame(0x7, b"x"),
        frame(0xB, b"x"),
        frame(0xF, b"x"),
        frame(PING, b"p", fin=False),
        frame(CLOSE, bytes_of(126)),
        frame(CONTINUATION, b"x"),
        text("short", length_bytes=2),
        text(ascii_of(200), length_bytes=8),
        b"\x81\x7f\x80" + bytes(7),
    ],
)
def test_every_header_wsproto_rejects_makes_the_reader_step_aside(rejected: bytes) -> None:
    """Handed over as soon as its header is (wsproto fails it without waiting for a payload),
    with every byte after it."""
    reader = FrameReader(max_message_size=LIMIT)
    out: list[str | bytes] = []
    reader.feed(text("a") + rejected[:10])  # 10: the longest header, bar the mask
    assert reader.read(out) == rejected[:10]
    assert not reader.fast
    assert out == ["a"]


def test_a_data_frame_inside_an_open_message_makes_the_reader_step_aside() -> None:
    reader = FrameReader(max_message_size=LIMIT)
    out: list[str | bytes] = []
    opened = frame(BINARY, b"1", fin=False)
    reader.feed(opened + text("2"))
    assert reader.read(out) == opened + text("2")
    assert not reader.fast


def test_step_aside_hands_over_the_partial_frame_held() -> None:
    reader = FrameReader(max_message_size=LIMIT)
    out: list[str | bytes] = []
    reader.feed(text("a") + text("bcd")[:3])
    assert reader.read(out) == b""
    assert reader.step_aside() == text("bcd")[:3]
    reader.feed(b"cd")
    assert reader.read(out) == b"cd"
    assert out == ["a"]


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\n\r\n",
    ],
)
@pytest.mark.parametrize("after", [b"", b"\x81\x01x", b"\x81", b"\r\n\r\n"])
def test_the_http_head_ends_where_h11_ends_it(response: bytes, after: bytes) -> None:
    """h11 (which wsproto reads the upgrade response with) leaves exactly the bytes after
    ``http_head_end`` as its trailing data: those are the first frames."""
    client = h11.Connection(h11.CLIENT)
    client.send(
        h11.Request(
            method="GET",
            target="/",
            headers=[("Host", "x"), ("Connection", "Upgrade"), ("Upgrade", "websocket")],
        )
    )
    client.receive_data(response + after)
    event = client.next_event()
    assert isinstance(event, h11.InformationalResponse)
    assert event.status_code == 101
    assert client.trailing_data == (after, False)
    assert http_head_end(response + after) == len(response)


@pytest.mark.parametrize(
    ("data", "end"),
    [(b"\r\nHTTP/1.1 101", 2), (b"\nHTTP", 1), (b"HTTP/1.1 101 OK\r\nA: b\r\n", None), (b"", None)],
)
def test_a_head_not_ended_or_starting_with_an_empty_line(data: bytes, end: int | None) -> None:
    """An empty first line ends the head for h11 (which then fails it)."""
    assert http_head_end(data) == end
