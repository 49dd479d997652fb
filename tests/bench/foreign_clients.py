"""Foreign clients for ``market_data.py``, run in a child process under another interpreter.

``market_data.py --foreign-python PATH`` runs this script with ``PATH`` (a venv holding
cryptofeed 2.4.1, websockets and orjson; the project's venv must not get cryptofeed and its
dependencies), so it imports the standard library and those libraries only, nothing of the
project. Two commands, each printing one JSON line on stdout:

* ``check``: which clients this interpreter can run (library versions, the event loop each
  would use) and, for the others, why not;
* ``run CLIENT URL --warmup S --seconds S [--samples PATH]``: connect to the bench server at
  ``URL``, wait for the first message, warm up, then count for ``S`` seconds: ``rate``
  (messages/s taken in), ``cpu_us`` (this process's CPU time per message) and ``loop``. With
  ``--samples``, every message after the warm-up is stamped ``(stream, update id u,
  perf_counter())`` and the list written to ``PATH`` as JSON: ``perf_counter`` is
  CLOCK_MONOTONIC, shared with the server's send log.

The clients:

* ``websockets``: the bare loop, websockets' asyncio client on asyncio's own event loop, the
  SUBSCRIBE message the other bare loops send, ``orjson.loads`` on every message and nothing
  else; stamped after ``loads``, as ``bare_wsproto`` stamps.
* ``cryptofeed``: its ``FeedHandler`` and ``Binance`` feed on the TICKER channel (bookTicker),
  as it ships: its default configuration but for logging (off, as in the rest of the bench), so
  uvloop when installed (the ``loop`` field says which loop ran). A message counts, and is
  stamped, when the ticker callback fires: that is where cryptofeed's user gets it, after
  cryptofeed's JSON parse, ``Decimal`` prices and ``Ticker``. Its ``Ticker`` has no update id,
  but keeps the message it was built from in ``raw`` (the combined stream's ``data``), so ``u``
  and the symbol (``s``, lower-cased + ``@bookTicker``: the stream's name) come from there. Two
  changes point it at the bench server, both by subclassing ``Binance``: its endpoints (the
  WebSocket one, and the REST one its constructor reads ``/api/v3/exchangeInfo`` from: the
  bench server answers that GET with the four symbols, so cryptofeed's own symbol loading runs
  unchanged, with no network), and the scheme: cryptofeed's ``WSAsyncConn`` refuses an address
  that is not ``wss://`` and the bench server (like every client's) speaks plain ``ws://``, so
  ``connect`` rewrites the scheme of the connections it built (no TLS on any row). Binance
  subscribes through the URL (``/stream?streams=a@bookTicker/...``), which the bench server
  accepts as it accepts a SUBSCRIBE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import time
from typing import Any, ClassVar

SYMBOLS = {
    "BTC-USDT": "BTCUSDT",
    "ETH-USDT": "ETHUSDT",
    "SOL-USDT": "SOLUSDT",
    "BNB-USDT": "BNBUSDT",
}
STREAMS = [f"{native.lower()}@bookTicker" for native in SYMBOLS.values()]


class Meter:
    """Counts messages after the warm-up, their CPU time, and (optionally) the stamps."""

    def __init__(self, stamps: bool) -> None:
        self.first = asyncio.Event()
        self.counting = False
        self.count = 0
        self.samples: list[tuple[str, int, float]] | None = [] if stamps else None

    async def measure(self, warmup_s: float, seconds: float) -> dict[str, Any]:
        await self.first.wait()
        await asyncio.sleep(warmup_s)
        self.counting = True
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        self.counting = False
        count = self.count
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        if loop == "uvloop":
            loop = f"uvloop {importlib.metadata.version('uvloop')}"
        return {
            "rate": count / elapsed,
            "cpu_us": cpu / max(count, 1) * 1e6,
            "count": count,
            "loop": loop,
            "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        }


async def bare_websockets(
    url: str, meter: Meter, warmup_s: float, seconds: float
) -> dict[str, Any]:
    import orjson
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    clock = time.perf_counter
    subscribe = orjson.dumps({"method": "SUBSCRIBE", "params": STREAMS, "id": 1}).decode()
    async with connect(url) as ws:

        async def read() -> None:
            samples = meter.samples
            await ws.send(subscribe)
            async for text in ws:
                message = orjson.loads(text)
                meter.first.set()
                if meter.counting:
                    meter.count += 1
                    if samples is not None and "stream" in message:
                        samples.append((message["stream"], message["data"]["u"], clock()))

        reader = asyncio.create_task(read())
        result = await meter.measure(warmup_s, seconds)
        # Closed while the reader still reads: a reader stopped first leaves websockets' reading
        # paused (its queue full), and its close handshake then waits ``close_timeout`` (10 s).
        await ws.close()
        with contextlib.suppress(ConnectionClosed):  # the bench server sends no close frame
            await reader
        return result


def run_cryptofeed(url: str, meter: Meter, warmup_s: float, seconds: float) -> dict[str, Any]:
    from cryptofeed import FeedHandler
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
    from cryptofeed.defines import TICKER
    from cryptofeed.exchanges import Binance

    host = url.split("/")[2]

    class LocalBinance(Binance):  # type: ignore[misc]  # (Any: cryptofeed ships no types)
        websocket_endpoints: ClassVar = [WebsocketEndpoint(f"wss://{host}")]
        rest_endpoints: ClassVar = [
            RestEndpoint(f"http://{host}", routes=Routes("/api/v3/exchangeInfo"))
        ]

        def connect(self) -> list[Any]:
            connections: list[Any] = super().connect()
            for connection, *_ in connections:
                connection.address = "ws://" + connection.address.removeprefix("wss://")
            return connections

    clock = time.perf_counter
    samples = meter.samples

    async def ticker(t: Any, receipt_timestamp: float) -> None:
        at = clock()
        meter.first.set()
        if meter.counting:
            meter.count += 1
            if samples is not None:
                raw = t.raw
                samples.append((raw["s"].lower() + "@bookTicker", raw["u"], at))

    handler = FeedHandler(config={"uvloop": True, "log": {"disabled": True}})
    handler.add_feed(
        LocalBinance(symbols=list(SYMBOLS), channels=[TICKER], callbacks={TICKER: ticker})
    )
    # The loop of the policy FeedHandler installed (uvloop's). FeedHandler.run() takes the
    # current loop with ``get_event_loop``, which uvloop's policy (0.23 here) does not create:
    # set one first.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler.run(start_loop=False, install_signal_handlers=False)
    try:
        return loop.run_until_complete(meter.measure(warmup_s, seconds))
    finally:
        handler.stop(loop=loop)
        handler.close(loop=loop)


def check() -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    try:
        import orjson  # noqa: F401
        import websockets  # noqa: F401

        found["websockets"] = {"version": importlib.metadata.version("websockets")}
    except ImportError as e:
        found["websockets"] = {"missing": str(e)}
    try:
        import cryptofeed  # noqa: F401

        found["cryptofeed"] = {"version": importlib.metadata.version("cryptofeed")}
    except ImportError as e:
        found["cryptofeed"] = {"missing": str(e)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    run = sub.add_parser("run")
    run.add_argument("client", choices=["websockets", "cryptofeed"])
    run.add_argument("url")
    run.add_argument("--warmup", type=float, required=True)
    run.add_argument("--seconds", type=float, required=True)
    run.add_argument("--samples", help="write the latency stamps here (JSON)")
    args = parser.parse_args()
    if args.command == "check":
        print(json.dumps(check()), flush=True)
        return
    meter = Meter(stamps=args.samples is not None)
    if args.client == "websockets":
        result = asyncio.run(bare_websockets(args.url, meter, args.warmup, args.seconds))
    else:
        result = run_cryptofeed(args.url, meter, args.warmup, args.seconds)
    if args.samples is not None:
        with open(args.samples, "w") as f:
            json.dump(meter.samples, f)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
