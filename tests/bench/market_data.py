"""Market-data plane benchmark (a script, not a test): ``python tests/bench/market_data.py``.

Everything is measured against bare loops run in the same invocation, on the same server, with
the repetitions interleaved, and printed as ratios next to the absolute figures:

* **server alone**: a client that only drains the socket shows how fast the local server can
  send; the other figures mean something only while it is well above them (the script says
  so);
* **throughput**, four Binance bookTicker streams, server unthrottled: the bare wsproto loop
  (wsproto driven in one Trio task + orjson: the floor of what a Trio client can do with a
  pure-Python WebSocket), the bare trio-websocket loop (+ orjson), and the plane with each
  transport engine (connection -> codec -> subscriptions -> one subscriber per stream);
* **fan-out**: the plane with 1, 100 and 1,000 subscribers on one stream, per engine, as a
  ratio to the bare wsproto loop;
* **latency** server send -> decoded message in the subscriber at 2,000 messages/s (four
  streams): p50/p99 of the bare loops and of the plane, in interleaved rounds, each round's
  p50s as ratios to the same round's two bare loops. What differs: the bare loops deliver
  orjson's dict (prices as strings, nothing checked), a plane subscriber a ``Ticker`` with
  checked ``Decimal`` prices; so a third bare loop, wsproto + the plane's codec in the same
  task, delivers that ``Ticker`` too (like for like: the plane's routing, fan-out and task
  switch are what remains between the two). The plane is measured with a task subscriber per
  stream (a mailbox: one task switch after the reader), with a handler per stream
  (``subscribe_handler``: called by the reader itself, no switch), and with 250 subscribers
  per stream;
* **memory**: the plane's RSS over 1,000,000 messages with 100 subscribers;
* **foreign clients** (``--foreign-python PATH``), in throughput and latency as two more rows,
  interleaved like the others: cryptofeed 2.4.1 (its Binance feed, TICKER = bookTicker, as it
  ships: uvloop when installed) and the bare websockets (asyncio) + orjson loop, each run by
  ``foreign_clients.py`` in a child process under ``PATH``, an interpreter of their own
  (cryptofeed and its dependencies stay out of the project's venv; pip builds cryptofeed's
  sdist, which needs a C compiler)::

      python3 -m venv ~/venvs/bench-foreign
      ~/venvs/bench-foreign/bin/pip install cryptofeed==2.4.1 orjson websockets
      .venv/bin/python tests/bench/market_data.py --foreign-python ~/venvs/bench-foreign/bin/python

  Without the option, or with an interpreter that lacks a library, those rows are absent and
  one line says why. The child measures itself (rate, its CPU per message, the latency stamps
  at the same point as here: when its user has the decoded message, ``foreign_clients.py``
  says where) and inherits this process's CPU pinning in the latency phase.

Decisions:

* The server is a child process (``--serve``) that writes pre-framed WebSocket frames straight
  to the socket: unique update ids, the shape of real bookTicker frames, a few hundred frames
  per write. Building and framing them costs it far less than parsing costs any client, so the
  server is not the limit (the "server alone" line checks it on every run). The simulator of
  ``actors.simulator`` is not used here: its market model costs more per frame than the
  clients being measured.
* Latency: the server records ``perf_counter()`` when each frame goes out (built, just before
  its ``send_all``), keyed by (stream, update id); every client records it at the same point,
  when the message is decoded where its user gets it: after ``orjson.loads`` (or the codec's
  ``decode``) in the bare loops (per message, not per read), when a subscriber's ``receive``
  returns the ``Ticker`` in the plane; samples only after the warm-up, for every client.
  ``perf_counter`` is CLOCK_MONOTONIC on Linux, shared by both processes. The server's timer
  has Trio's resolution (epoll: 1 ms), so at 2,000 messages/s frames go out two at a time,
  each millisecond. Client and server are pinned to two CPUs (``latency_cpus`` says why;
  ``--no-pin`` leaves them to the scheduler).
* The server also takes what cryptofeed's Binance feed does when it starts: streams named in
  the request target (``/stream?streams=a@bookTicker/b@bookTicker``) start as a SUBSCRIBE of
  them does, and a plain ``GET /api/v3/exchangeInfo`` gets the four symbols (cryptofeed loads
  its symbols from it; api.binance.com is out of reach, and this way its own loading runs).
* Ratios are per repetition (each client against the bare wsproto loop of the same round),
  then the median; absolute rates drift with the machine's load, ratios much less.
* Every phase is bounded; logging is off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
import wsproto
import wsproto.events as ws_events
from loguru import logger
from trio_websocket import open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.exchanges.binance import BinanceCodec
from actors.market_data.config import TransportEngine
from actors.messages import Stream, Ticker
from supervisor.config import BackoffPolicy, BreakerPolicy, ExchangeConfig
from supervisor.feeds import open_market_data

SYMBOLS = {
    "BTC/USDT": "BTCUSDT",
    "ETH/USDT": "ETHUSDT",
    "SOL/USDT": "SOLUSDT",
    "BNB/USDT": "BNBUSDT",
}
STREAMS = [f"{native.lower()}@bookTicker" for native in SYMBOLS.values()]
STREAM_OF = {symbol: f"{native.lower()}@bookTicker" for symbol, native in SYMBOLS.items()}
ENGINES: dict[str, TransportEngine] = {"wsproto": "wsproto", "trio-websocket": "trio-websocket"}
FRAMES_PER_WRITE = 256
LATENCY_RATE_HZ = 2000.0
Result = dict[str, float]


# --- the server (child process) -----------------------------------------------------------------


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload


def _payload(stream: str, native: str, u: int) -> bytes:
    tick = u % 500
    return (
        f'{{"stream":"{stream}","data":{{"u":{u},"s":"{native}",'
        f'"b":"{65000 + tick / 100:.8f}","B":"{1 + tick / 1000:.8f}",'
        f'"a":"{65000.01 + tick / 100:.8f}","A":"{2 + tick / 1000:.8f}"}}}}'
    ).encode()


def _exchange_info() -> bytes:
    """The least of ``GET /api/v3/exchangeInfo`` a client reads its symbols from (cryptofeed's
    Binance feed does, when it starts): an HTTP/1.1 answer, then the connection closes."""
    body = orjson.dumps(
        {
            "timezone": "UTC",
            "symbols": [
                {
                    "symbol": native,
                    "status": "TRADING",
                    "baseAsset": symbol.split("/")[0],
                    "quoteAsset": symbol.split("/")[1],
                    "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01000000"}],
                }
                for symbol, native in SYMBOLS.items()
            ],
        }
    )
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _serve_connection(stream: trio.SocketStream, rate_hz: float | None, log: list) -> None:
    ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    subscribed: list[tuple[str, str]] = []
    started = trio.Event()
    natives = {s.lower(): s for s in SYMBOLS.values()}

    def subscribe(names: list[str]) -> None:  # then ``started.set()``, once the answer is sent
        subscribed.extend((name, natives[name.split("@")[0]]) for name in names)

    async def read_client(head: bytes) -> None:
        data = head
        while data:
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, ws_events.Request):
                    await stream.send_all(ws.send(ws_events.AcceptConnection()))
                    # Streams named in the URL (``/stream?streams=a@bookTicker/b@bookTicker``,
                    # Binance's combined streams) start as a SUBSCRIBE of them does.
                    query = parse_qs(urlsplit(event.target).query).get("streams")
                    if query:
                        subscribe(query[0].split("/"))
                        started.set()
                elif isinstance(event, ws_events.TextMessage):
                    request = orjson.loads(event.data)
                    subscribe(request.get("params", []))
                    reply = orjson.dumps({"result": None, "id": request["id"]}).decode()
                    await stream.send_all(ws.send(ws_events.Message(data=reply)))
                    started.set()
                elif isinstance(event, ws_events.Ping):
                    await stream.send_all(ws.send(event.response()))
                elif isinstance(event, ws_events.CloseConnection):
                    return
            data = await stream.receive_some(65536)

    async def blast() -> None:
        await started.wait()
        u = 1
        clock = time.perf_counter
        if rate_hz is None:
            while True:
                chunk = []
                for _ in range(FRAMES_PER_WRITE // len(subscribed)):
                    for name, native in subscribed:
                        chunk.append(_frame(_payload(name, native, u)))
                    u += 1
                await stream.send_all(b"".join(chunk))
        period = 1.0 / rate_hz
        next_at = trio.current_time()
        i = 0
        while True:
            next_at += period
            await trio.sleep_until(next_at)
            name, native = subscribed[i % len(subscribed)]
            i += 1
            if i % len(subscribed) == 0:
                u += 1
            frame = _frame(_payload(name, native, u))
            log.append((name, u, clock()))  # the frame is built: only the send follows
            await stream.send_all(frame)

    try:
        head = b""  # the request's head: a WebSocket handshake, or the one plain GET served
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(65536)
            if not data:
                return
            head += data
        if head.startswith(b"GET /api/v3/exchangeInfo"):
            await stream.send_all(_exchange_info())
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(blast)
            await read_client(head)
            nursery.cancel_scope.cancel()
    except Exception:  # the client went away (reset, closed): this session ends
        pass
    finally:  # closed, so a client waiting for the end of its close handshake (websockets) is done
        await trio.aclose_forcefully(stream)


def serve(rate_hz: float | None, send_log: str | None) -> None:
    log: list[tuple[str, int, float]] = []

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        print(f"ws://127.0.0.1:{port}/stream", flush=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                trio.serve_listeners, lambda s: _serve_connection(s, rate_hz, log), listeners
            )
            await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin
            nursery.cancel_scope.cancel()

    trio.run(main)
    if send_log:
        Path(send_log).write_bytes(orjson.dumps(log))


class Server:
    """The child process: ``with Server(rate) as server: server.url``."""

    def __init__(
        self, rate_hz: float | None = None, *, log_sends: bool = False, cpu: int | None = None
    ) -> None:
        self.rate_hz = rate_hz
        self.send_log = tempfile.mktemp(suffix=".json") if log_sends else None
        self.cpu = cpu  # pinned to this CPU, if given
        self.url = ""

    def __enter__(self) -> Server:
        args = [sys.executable, __file__, "--serve", str(self.rate_hz or "none")]
        if self.send_log:
            args += ["--send-log", self.send_log]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.cpu is not None:
            os.sched_setaffinity(self.proc.pid, {self.cpu})
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("ws://"):
            raise RuntimeError("the server process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def send_times(self) -> dict[tuple[str, int], float]:
        assert self.send_log is not None
        times = {(name, u): at for name, u, at in orjson.loads(Path(self.send_log).read_bytes())}
        os.unlink(self.send_log)
        return times


# --- clients ------------------------------------------------------------------------------------


class Phase:
    """Warm up, then count for ``seconds``: rate and the client's CPU per message."""

    def __init__(self, warmup_s: float, seconds: float) -> None:
        self.warmup_s, self.seconds = warmup_s, seconds


def _subscribe_frame() -> str:
    return orjson.dumps({"method": "SUBSCRIBE", "params": STREAMS, "id": 1}).decode()


async def open_raw(url: str) -> tuple[trio.SocketStream, wsproto.WSConnection]:
    """A TCP stream with a completed WebSocket handshake and the subscribe sent."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(ws.send(ws_events.Request(host=f"{host}:{port}", target="/stream")))
    accepted = False
    while not accepted:
        ws.receive_data(await stream.receive_some(65536))
        accepted = any(isinstance(e, ws_events.AcceptConnection) for e in ws.events())
    await stream.send_all(ws.send(ws_events.Message(data=_subscribe_frame())))
    return stream, ws


async def drain_only(url: str, phase: Phase, received: list | None = None) -> Result:
    """Bytes only, no WebSocket parsing: how fast the server sends."""
    stream, _ = await open_raw(url)
    frame_size = len(_frame(_payload(STREAMS[0], "BTCUSDT", 10_000_000)))
    async with stream:
        with trio.move_on_after(phase.warmup_s):
            while True:
                await stream.receive_some(65536)
        count, clock, cpu = 0, time.perf_counter(), time.process_time()
        with trio.move_on_after(phase.seconds):
            while True:
                count += len(await stream.receive_some(65536))
        elapsed = time.perf_counter() - clock
    messages = count / frame_size
    return {"rate": messages / elapsed, "cpu_us": (time.process_time() - cpu) / messages * 1e6}


async def bare_wsproto(url: str, phase: Phase, received: list | None = None) -> Result:
    """wsproto driven in one Trio task, orjson on every message: the pure-Python floor."""
    stream, ws = await open_raw(url)
    clock = time.perf_counter
    counting = False
    count = 0
    async with stream:

        async def loop() -> None:
            nonlocal count
            partial = ""  # wsproto hands a frame split across reads over in pieces
            while True:
                data = await stream.receive_some(65536)
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, ws_events.TextMessage):
                        if not event.message_finished:
                            partial += event.data
                            continue
                        text, partial = partial + event.data, ""
                        message = orjson.loads(text)
                        if counting:
                            count += 1
                            if received is not None and "stream" in message:
                                # Once decoded, as the other clients stamp theirs.
                                at = clock()
                                received.append((message["stream"], message["data"]["u"], at))
                    elif isinstance(event, ws_events.Ping):
                        await stream.send_all(ws.send(event.response()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(loop)
            await trio.sleep(phase.warmup_s)
            counting = True
            started, cpu = clock(), time.process_time()
            await trio.sleep(phase.seconds)
            elapsed = clock() - started
            nursery.cancel_scope.cancel()
    return {"rate": count / elapsed, "cpu_us": (time.process_time() - cpu) / max(count, 1) * 1e6}


async def bare_wsproto_ticker(url: str, phase: Phase, received: list | None = None) -> Result:
    """The bare wsproto loop delivering what a plane subscriber gets: each message through the
    plane's own codec (``BinanceCodec.decode``: orjson, the ``Decimal`` prices and sizes
    checked, the ``Ticker`` built, the sequence filter), in the same task. Latency only: the
    like-for-like baseline, where the bare loops above deliver orjson's dict."""
    stream, ws = await open_raw(url)
    codec = BinanceCodec()
    codec.subscribe_messages([Stream("ticker", symbol) for symbol in SYMBOLS])  # the routes
    clock = time.perf_counter
    counting = False
    async with stream:

        async def loop() -> None:
            partial = ""
            while True:
                data = await stream.receive_some(65536)
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, ws_events.TextMessage):
                        if not event.message_finished:
                            partial += event.data
                            continue
                        text, partial = partial + event.data, ""
                        for item in codec.decode(text):
                            if counting and received is not None and type(item) is Ticker:
                                received.append((STREAM_OF[item.symbol], item.sequence, clock()))
                    elif isinstance(event, ws_events.Ping):
                        await stream.send_all(ws.send(event.response()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(loop)
            await trio.sleep(phase.warmup_s)
            counting = True
            await trio.sleep(phase.seconds)
            nursery.cancel_scope.cancel()
    return {"rate": float("nan"), "cpu_us": float("nan")}


async def bare_trio_websocket(url: str, phase: Phase, received: list | None = None) -> Result:
    """trio-websocket with the same sizes as our engine, orjson on every message."""
    clock = time.perf_counter
    async with open_websocket_url(url, message_queue_size=256, receive_buffer_size=65536) as ws:
        await ws.send_message(_subscribe_frame())
        with trio.move_on_after(phase.warmup_s):
            while True:
                orjson.loads(await ws.get_message())
        count, started, cpu = 0, clock(), time.process_time()
        with trio.move_on_after(phase.seconds):
            while True:
                message = orjson.loads(await ws.get_message())
                count += 1
                if received is not None and "stream" in message:
                    received.append((message["stream"], message["data"]["u"], clock()))
        elapsed = clock() - started
    return {"rate": count / elapsed, "cpu_us": (time.process_time() - cpu) / max(count, 1) * 1e6}


def plane_client(
    engine: str, per_stream: int = 1, streams: int = len(SYMBOLS), handler: bool = False
) -> Callable[[str, Phase, list | None], Awaitable[Result]]:
    async def measure(url: str, phase: Phase, received: list | None = None) -> Result:
        return await plane(url, phase, engine, per_stream, streams, received, handler)

    return measure


async def plane(
    url: str,
    phase: Phase,
    engine: str,
    per_stream: int,
    streams: int,
    received: list | None = None,
    handler: bool = False,
) -> Result:
    """``per_stream`` subscribers on each of ``streams`` streams, tasks reading mailboxes, the
    first of each timed; with ``handler``, one handler per stream instead (``subscribe_handler``:
    called by the reader, no task)."""
    config = ExchangeConfig(name="binance", url=url, stale_after_s=30.0, transport=ENGINES[engine])
    clock = time.perf_counter
    counting = False  # latency samples after the warm-up only, as the bare loops take theirs

    async def consume(events: Any, timed: bool) -> None:
        async for item in events:
            if timed and counting and received is not None and type(item) is Ticker:
                received.append((STREAM_OF[item.symbol], item.sequence, clock()))

    def stamp(item: object) -> None:  # a handler: called by the reader with each item
        if counting and received is not None and type(item) is Ticker:
            received.append((STREAM_OF[item.symbol], item.sequence, clock()))

    async with open_market_data(
        [config], backoff=BackoffPolicy(), circuit_breaker=BreakerPolicy(), rng=random.Random(1)
    ) as md:
        async with trio.open_nursery() as nursery:
            for symbol in list(SYMBOLS)[:streams]:
                if handler:
                    await nursery.start(
                        hold, md.subscribe_handler("binance", "ticker", symbol, stamp)
                    )
                    continue
                for i in range(per_stream):
                    events = await nursery.start(hold, md.subscribe("binance", "ticker", symbol))
                    nursery.start_soon(consume, events, i == 0)
            await md.wait_streaming("binance")
            await trio.sleep(phase.warmup_s)
            counting = True
            before = md.statistics().exchanges["binance"].messages_received
            started, cpu = clock(), time.process_time()
            await trio.sleep(phase.seconds)
            elapsed = clock() - started
            count = md.statistics().exchanges["binance"].messages_received - before
            nursery.cancel_scope.cancel()
    return {"rate": count / elapsed, "cpu_us": (time.process_time() - cpu) / max(count, 1) * 1e6}


async def hold(manager: Any, *, task_status: trio.TaskStatus[Any]) -> None:
    """Enter ``manager`` and hold it until cancelled."""
    async with manager as value:
        task_status.started(value)
        await trio.sleep_forever()


async def memory(url: str, messages: int, subscribers: int) -> list[tuple[int, float]]:
    """RSS (MiB) of this process after every quarter of ``messages`` through the plane."""
    config = ExchangeConfig(name="binance", url=url, stale_after_s=30.0)
    samples: list[tuple[int, float]] = []
    async with open_market_data(
        [config], backoff=BackoffPolicy(), circuit_breaker=BreakerPolicy(), rng=random.Random(1)
    ) as md:
        async with trio.open_nursery() as nursery:
            for i in range(subscribers):
                symbol = list(SYMBOLS)[i % len(SYMBOLS)]
                events = await nursery.start(hold, md.subscribe("binance", "ticker", symbol))
                nursery.start_soon(drain, events)
            await md.wait_streaming("binance")
            step = messages // 4
            next_mark = 0
            while next_mark <= messages:
                got = md.statistics().exchanges["binance"].messages_received
                if got >= next_mark:
                    samples.append((got, rss_mib()))
                    next_mark += step
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    return samples


async def drain(events: Any) -> None:
    async for _ in events:
        pass


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- foreign clients (a child process under another interpreter) --------------------------------

FOREIGN_SCRIPT = Path(__file__).with_name("foreign_clients.py")
FOREIGN_LABELS = {
    "websockets": "bare websockets {version} (asyncio) + orjson",
    "cryptofeed": "cryptofeed {version}",
}


class Foreign:
    """The foreign rows ``--foreign-python`` can measure, the loop each ran on, and one line for
    every row left out."""

    def __init__(self, python: str | None) -> None:
        self.python = python
        self.clients: dict[str, Callable[..., Awaitable[Result]]] = {}
        self.loops: dict[str, str] = {}
        self.absent: list[str] = []

    async def find(self) -> None:
        if self.python is None:
            self.absent.append(
                "cryptofeed, bare websockets + orjson: not measured (--foreign-python PATH runs"
                " them: see the docstring)"
            )
            return
        try:
            done = await trio.run_process(
                [self.python, str(FOREIGN_SCRIPT), "check"],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        except OSError as e:
            self.absent.append(f"cryptofeed, bare websockets + orjson: {self.python}: {e}")
            return
        if done.returncode != 0:
            why = (done.stderr.decode().strip().splitlines() or ["no output"])[-1]
            self.absent.append(f"cryptofeed, bare websockets + orjson: {self.python}: {why}")
            return
        for client, lib in json.loads(done.stdout.decode().splitlines()[-1]).items():
            if "missing" in lib:
                label = FOREIGN_LABELS[client].replace(" {version}", "")
                self.absent.append(f"{label}: absent under {self.python}: {lib['missing']}")
            else:
                label = FOREIGN_LABELS[client].format(version=lib["version"])
                self.clients[label] = self._client(client, label)

    def _client(
        self, client: str, label: str
    ) -> Callable[[str, Phase, list[tuple[str, int, float]] | None], Awaitable[Result]]:
        """The client in a child process, which measures itself and prints one JSON line. The
        child inherits this process's CPU affinity: pinned to the client CPU in the latency
        phase, as the clients running here are (checked)."""
        assert self.python is not None
        python = self.python

        async def measure(
            url: str, phase: Phase, received: list[tuple[str, int, float]] | None = None
        ) -> Result:
            args = [python, str(FOREIGN_SCRIPT), "run", client, url]
            args += ["--warmup", str(phase.warmup_s), "--seconds", str(phase.seconds)]
            samples = None
            if received is not None:
                fd, samples = tempfile.mkstemp(suffix=".json")
                os.close(fd)
                args += ["--samples", samples]
            cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            try:
                done = await trio.run_process(
                    args, capture_stdout=True, capture_stderr=True, check=False
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{label} failed:\n{done.stderr.decode()[-2000:]}")
                result = json.loads(done.stdout.decode().splitlines()[-1])
                if cpus is not None and result["cpus"] != cpus:
                    raise RuntimeError(f"{label} ran on CPUs {result['cpus']}, not {cpus}")
                if samples is not None and received is not None:
                    stamps = orjson.loads(await trio.Path(samples).read_bytes())
                    received.extend((stream, u, at) for stream, u, at in stamps)
            finally:
                if samples is not None:
                    os.unlink(samples)
            self.loops[label] = result["loop"]
            return {"rate": result["rate"], "cpu_us": result["cpu_us"]}

        return measure


# --- the run ------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def interleaved(
    url: str, clients: dict[str, Callable[..., Awaitable[Result]]], reps: int, phase: Phase
) -> dict[str, dict[str, float]]:
    """Each client once per round, rounds repeated; ratios to the round's bare wsproto loop."""
    rates: dict[str, list[float]] = {name: [] for name in clients}
    cpus: dict[str, list[float]] = {name: [] for name in clients}
    ratios: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(reps):
        round_rates = {}
        for name, client in clients.items():
            with trio.fail_after(phase.warmup_s + phase.seconds + 30):
                result = await client(url, phase)
            round_rates[name] = result["rate"]
            rates[name].append(result["rate"])
            cpus[name].append(result["cpu_us"])
        for name in clients:
            ratios[name].append(round_rates[name] / round_rates["bare wsproto"])
    return {
        name: {
            "rate": median(rates[name]),
            "cpu_us": median(cpus[name]),
            "ratio": median(ratios[name]),
        }
        for name in clients
    }


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)


def latency_cpus() -> tuple[int, int] | None:
    """(client CPU, server CPU) for the latency phase, or None where pinning is not possible.

    Why pin: where the scheduler places the two processes decides how one wakes the other
    (the same core, or an idle one woken by the other), and that placement, drawn afresh for
    every client, moved p50s by a factor of two between runs of the same code. Pinned, every
    client is measured the same way: server on one core, client woken on another."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[-1]) if len(allowed) >= 2 else None


async def latency_round(
    clients: dict[str, Callable[..., Awaitable[Result]]],
    phase: Phase,
    server_cpu: int | None = None,
) -> dict[str, list[float]]:
    """Each client once, each against its own throttled server: every latency in µs."""
    values: dict[str, list[float]] = {}
    for name, client in clients.items():
        received: list[tuple[str, int, float]] = []
        with Server(LATENCY_RATE_HZ, log_sends=True, cpu=server_cpu) as server:
            with trio.fail_after(phase.warmup_s + phase.seconds + 30):
                await client(server.url, phase, received)
        sent = server.send_times()
        values[name] = [(at - sent[(s, u)]) * 1e6 for s, u, at in received if (s, u) in sent]
    return values


async def latency(
    reps: int,
    phase: Phase,
    cpus: tuple[int, int] | None,
    foreign: dict[str, Callable[..., Awaitable[Result]]],
) -> dict[str, dict[str, float]]:
    """Rounds of every client, their order turning each round; p50/p99 per client and round,
    then the median over rounds of each figure and of each round's p50 ratio to the round's
    two bare loops. With ``cpus``, client and server are pinned (``latency_cpus``)."""
    clients: dict[str, Callable[..., Awaitable[Result]]] = {
        "bare wsproto": bare_wsproto,
        "bare trio-websocket": bare_trio_websocket,
        "bare wsproto + the plane's codec": bare_wsproto_ticker,
        "plane, wsproto engine": plane_client("wsproto"),
        "plane, wsproto engine, a handler per stream": plane_client("wsproto", handler=True),
        "plane, wsproto engine, 250 subscribers per stream": plane_client("wsproto", 250),
        **foreign,
    }
    figures: dict[str, dict[str, list[float]]] = {
        name: {"p50_us": [], "p99_us": [], "samples": [], "x_wsproto": [], "x_trio_websocket": []}
        for name in clients
    }
    allowed = os.sched_getaffinity(0) if cpus is not None else None
    names = list(clients)
    try:
        if cpus is not None:
            os.sched_setaffinity(0, {cpus[0]})
        for rep in range(reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            values = await latency_round(
                {name: clients[name] for name in order},
                phase,
                None if cpus is None else cpus[1],
            )
            p50 = {name: median(v) for name, v in values.items()}
            for name, v in values.items():
                figures[name]["p50_us"].append(p50[name])
                figures[name]["p99_us"].append(percentile(v, 99) if v else float("nan"))
                figures[name]["samples"].append(len(v))
                figures[name]["x_wsproto"].append(p50[name] / p50["bare wsproto"])
                figures[name]["x_trio_websocket"].append(p50[name] / p50["bare trio-websocket"])
    finally:
        if allowed is not None:
            os.sched_setaffinity(0, allowed)
    summary = {name: {k: median(v) for k, v in f.items()} for name, f in figures.items()}
    for name, f in figures.items():  # how far the rounds spread: the machine's noise
        summary[name]["x_wsproto_min"] = min(f["x_wsproto"])
        summary[name]["x_wsproto_max"] = max(f["x_wsproto"])
    return summary


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phase = Phase(args.warmup, args.seconds)
    report: dict[str, Any] = {}
    foreign = Foreign(args.foreign_python)
    await foreign.find()
    if args.only in (None, "throughput", "fanout", "memory"):
        with Server() as server:
            server_alone = await interleaved(
                server.url, {"bare wsproto": bare_wsproto, "drain only": drain_only}, 1, phase
            )
            report["server"] = server_alone
            clients: dict[str, Callable[..., Awaitable[Result]]] = {
                "bare wsproto": bare_wsproto,
                "bare trio-websocket": bare_trio_websocket,
                "plane, wsproto engine": plane_client("wsproto"),
                "plane, trio-websocket engine": plane_client("trio-websocket"),
                **foreign.clients,
            }
            if args.only in (None, "throughput"):
                report["throughput"] = await interleaved(server.url, clients, args.reps, phase)
            if args.only in (None, "fanout"):
                fanout: dict[str, Callable[..., Awaitable[Result]]] = {"bare wsproto": bare_wsproto}
                for engine in ENGINES:
                    for n in args.fanout:
                        fanout[f"plane, {engine} engine, {n} subscribers"] = plane_client(
                            engine, n, 1
                        )
                report["fanout"] = await interleaved(server.url, fanout, args.fanout_reps, phase)
            if args.only in (None, "memory") and args.memory:
                report["memory"] = await memory(server.url, args.memory, 100)
    if args.only in (None, "latency"):
        cpus = None if args.no_pin else latency_cpus()
        report["latency_cpus"] = cpus
        report["latency"] = await latency(
            args.latency_reps, Phase(args.warmup, args.latency_seconds), cpus, foreign.clients
        )
    report["foreign"] = {"python": foreign.python, "loops": foreign.loops, "absent": foreign.absent}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved rounds of throughput")
    parser.add_argument("--fanout-reps", type=int, default=2)
    parser.add_argument("--fanout", type=int, nargs="*", default=[1, 100, 1000])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per figure")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--memory", type=int, default=1_000_000, help="messages; 0: skip")
    parser.add_argument(
        "--latency-reps", type=int, default=11, help="interleaved rounds of latency"
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=1.0,
        help="measured time per latency figure (short rounds, many: the load drifts less"
        " within a round, and the median of many rounds moves less)",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="latency: leave client and server where the scheduler puts them",
    )
    parser.add_argument(
        "--only",
        choices=["throughput", "fanout", "memory", "latency"],
        help="run one part (with the server check for the first three)",
    )
    parser.add_argument(
        "--foreign-python",
        metavar="PATH",
        help="an interpreter with cryptofeed 2.4.1, websockets and orjson (a venv of their"
        " own): adds cryptofeed and the bare websockets loop to throughput and latency",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--send-log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logger.remove()
    if args.serve:
        serve(None if args.serve == "none" else float(args.serve), args.send_log)
        return
    started = time.perf_counter()
    load = os.getloadavg()
    report = trio.run(run, args)
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average at start"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; server in a child process;"
        f" {args.seconds} s per figure, medians of interleaved rounds\n"
    )
    foreign = report["foreign"]
    if foreign["loops"]:
        loops = "; ".join(f"{name} on {loop}" for name, loop in foreign["loops"].items())
        print(f"Foreign clients, each in a child process under {foreign['python']}: {loops}.")
    for line in foreign["absent"]:
        print(f"Foreign client rows absent: {line}.")
    if "server" in report:  # the latency table opens with its own blank line
        print()
    if "server" in report:
        alone = report["server"]["drain only"]["rate"]
        measured = report.get("throughput", report["server"])
        fastest = max(r["rate"] for r in measured.values())
        capped = [name for name, r in measured.items() if r["rate"] >= alone / 1.5]
        verdict = (
            "not the limit for any client"
            if not capped
            else "the limit for " + ", ".join(capped) + ": their rates are lower bounds"
        )
        print(
            f"Server alone (drain, no parsing): {alone:,.0f} msg/s = {alone / fastest:.1f}x the"
            f" fastest client below; the server is {verdict}.\n"
        )
    if "throughput" in report:
        print("Throughput, 4 bookTicker streams, one subscriber per stream:")
        rows = [
            [name, f"{r['rate']:,.0f}", f"{r['cpu_us']:.2f}", f"{r['ratio']:.2f}"]
            for name, r in report["throughput"].items()
        ]
        print(table(["client", "msgs/s", "CPU us/msg", "x bare wsproto"], rows))
    if "fanout" in report:
        print("\nFan-out, one stream:")
        rows = [
            [name, f"{r['rate']:,.0f}", f"{r['cpu_us']:.2f}", f"{r['ratio']:.2f}"]
            for name, r in report["fanout"].items()
        ]
        print(table(["client", "msgs/s", "CPU us/msg", "x bare wsproto"], rows))
    if "latency" in report:
        print(
            f"\nLatency server send -> decoded message in the receiver at"
            f" {LATENCY_RATE_HZ:,.0f} msg/s (4 streams), medians of {args.latency_reps}"
            f" interleaved rounds of {args.latency_seconds} s; p50 ratios to the same round's"
            " bare loops (range: the lowest and highest round)"
            + (
                f"; client on CPU {report['latency_cpus'][0]}, server on CPU"
                f" {report['latency_cpus'][1]}:"
                if report["latency_cpus"]
                else "; not pinned:"
            )
        )
        rows = [
            [
                name,
                f"{r['p50_us']:.0f}",
                f"{r['p99_us']:.0f}",
                f"{r['x_wsproto']:.2f}",
                f"{r['x_wsproto_min']:.2f}-{r['x_wsproto_max']:.2f}",
                f"{r['x_trio_websocket']:.2f}",
                f"{r['samples']:.0f}",
            ]
            for name, r in report["latency"].items()
        ]
        header = [
            "client",
            "p50 us",
            "p99 us",
            "p50 x bare wsproto",
            "range",
            "x bare trio-ws",
            "samples",
        ]
        print(table(header, rows))
    if "memory" in report:
        marks = ", ".join(f"{n:,}: {mib:.1f}" for n, mib in report["memory"])
        print(f"\nRSS (MiB) after messages, plane with 100 subscribers: {marks}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
