"""Frame reading micro-benchmark (a script, not a test): ``python tests/bench/frames.py``.

Prints the CPU cost per message of reading server frames, on one pre-built byte stream of
Binance-like bookTicker frames (combined-stream shape, ~150 bytes each, unmasked text), fed in
``receive_buffer_size`` (64 KiB) chunks as the socket would give them:

* **wsproto**: ``receive_data`` then ``events()``, one event per message (what the transport
  did for every frame before ``actors.market_data.frames``, and still does with
  ``fast_frames=False``);
* **fast path**: ``FrameReader.feed`` then ``read``;
* **fast path, through the transport**: ``WsprotoTransport._receive`` (the reader plus the
  transport's loop around it, no socket), to show what the seam adds.

Decisions: no socket and no event loop around the first two, so only parsing is measured; the
three are interleaved over several rounds and the median kept, and the ratio is taken per round
(the machine's load moves absolute figures much more than ratios); CPU count and load average
are printed with the figures. The payloads carry a unique update id so nothing is cached.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, Request, TextMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.market_data.frames import FrameReader
from actors.market_data.transport import WsprotoTransport

CHUNK = 64 * 1024
MAX_MESSAGE_SIZE = 256 * 1024


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload


def build_stream(count: int) -> tuple[list[bytes], int]:
    """``count`` frames cut into 64 KiB chunks (frames straddle chunk ends, as on a socket)."""
    frames = []
    size = 0
    for i in range(count):
        payload = (
            f'{{"stream":"btcusdt@bookTicker","data":{{"u":{40_000_000_000 + i},"s":"BTCUSDT",'
            f'"b":"67012.{i % 100_000:05d}","B":"1.23400000",'
            f'"a":"67012.{(i + 7) % 100_000:05d}","A":"0.98700000"}}}}'
        ).encode()
        size += len(payload)
        frames.append(_frame(payload))
    data = b"".join(frames)
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)], size // count


def run_wsproto(chunks: list[bytes]) -> int:
    """A frame cut by a chunk's end comes out in two events, joined here as the transport does.
    Each read's messages are dropped after it, as a consumer would (in all three runs)."""
    conn = Connection(ConnectionType.CLIENT)
    count = 0
    part = ""
    for chunk in chunks:
        out: list[str | bytes] = []
        append = out.append
        conn.receive_data(chunk)
        for event in conn.events():
            assert isinstance(event, TextMessage)
            if not event.message_finished:
                part += event.data
            elif part:
                append(part + event.data)
                part = ""
            else:
                append(event.data)
        count += len(out)
    return count


def run_fast(chunks: list[bytes]) -> int:
    reader = FrameReader(max_message_size=MAX_MESSAGE_SIZE)
    count = 0
    for chunk in chunks:
        out: list[str | bytes] = []
        reader.feed(chunk)
        while reader.read(out):
            raise AssertionError("no frame of this stream is wsproto's")
        count += len(out)
    return count


def _open_transport() -> WsprotoTransport:
    """A client ``WSConnection`` in the OPEN state (handshake done in memory) in a transport
    whose stream is never used: no frame of this stream needs a reply."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="bench", target="/")))
    assert any(isinstance(event, Request) for event in server.events())
    client.receive_data(server.send(AcceptConnection()))
    assert any(isinstance(event, AcceptConnection) for event in client.events())
    stream, _peer = trio.testing.memory_stream_pair()
    return WsprotoTransport(
        stream,
        client,
        receive_buffer_size=CHUNK,
        max_message_size=MAX_MESSAGE_SIZE,
        disconnect_timeout_s=1.0,
    )


def run_transport(chunks: list[bytes]) -> int:
    async def main() -> int:
        transport = _open_transport()
        count = 0
        for chunk in chunks:
            await transport._receive(chunk)
            count += len(await transport.receive_batch())
        return count

    return trio.run(main)


def timed(run: Callable[[list[bytes]], int], chunks: list[bytes], count: int) -> float:
    """µs of CPU per message (process time: other processes on the machine do not count)."""
    start = time.process_time()
    received = run(chunks)
    elapsed = time.process_time() - start
    assert received == count, (received, count)
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    chunks, payload = build_stream(args.frames)
    load = os.getloadavg()
    print(
        f"Frame reading: Python {sys.version.split()[0]} ({platform.machine()}), "
        f"{os.cpu_count()} CPUs, load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{args.frames} text frames, {payload} bytes of payload on average, "
        f"{len(chunks)} reads of {CHUNK // 1024} KiB; median of {args.rounds} interleaved rounds"
    )
    runs = {"wsproto": run_wsproto, "fast path": run_fast, "fast path, transport": run_transport}
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            figures[name].append(timed(run, chunks, args.frames))
    base = figures["wsproto"]
    for name, values in figures.items():
        ratios = [b / v for b, v in zip(base, values, strict=True)]
        print(
            f"  {name:<22} {statistics.median(values):6.2f} µs/message "
            f"(min {min(values):.2f}, max {max(values):.2f})"
            f"   wsproto / this: {statistics.median(ratios):5.1f}x"
        )
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
