"""Market-data plane benchmark (a script, not a test): ``python tests/bench/market_data.py``.

Prints two tables, each plane figure next to a bare trio-websocket + orjson loop measured in
the same run against the same server:

* **throughput** with the local Binance server unthrottled: messages/s through
  connection -> decode -> subscription -> 1, 10, 100, 1000 subscribers (all on one ticker
  stream, the worst case for fan-out: every message concerns every subscriber), for both
  transport engines; plus deliveries/s (what subscribers received after conflation) and the
  client's CPU time per message;
* **latency** server-send -> subscriber at 2,000 msg/s: p50/p99 for the bare loop and the plane
  (1 and 1000 subscribers, one of which is timed).

Decisions:

* The server runs in a **child process** (``--serve``), so its CPU (it builds every frame with
  the seeded market model) is not charged to the client loop being measured; the machine needs
  two cores for that to hold. When the server is the bottleneck the rates say so (the bare
  loop and the plane both run at the server's pace); the CPU column still shows what each
  message cost the client.
* Latency: the child process wraps the simulator connection's ``send_now`` to record
  ``perf_counter()`` just before each bookTicker frame goes out, keyed by its update id ``u``;
  the client records ``perf_counter()`` when a subscriber receives the ticker with that
  ``sequence``. ``perf_counter`` is CLOCK_MONOTONIC on Linux, shared by both processes.
* Each throughput figure is measured right after its own bare-loop figure against the same
  server, so a machine that is busy with something else slows both sides of the ratio alike.
* Every phase is bounded (``PHASE_S`` of measurement after ``WARMUP_S``); the whole run stays
  under 90 s. Logging is off.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import trio
from loguru import logger
from trio_websocket import open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.market_data.config import TransportEngine
from actors.messages import Ticker
from supervisor.config import BackoffPolicy, BreakerPolicy, ExchangeConfig
from supervisor.feeds import open_market_data

SYMBOL = "BTC/USDT"
STREAM = "btcusdt@bookTicker"
WARMUP_S = 0.4
PHASE_S = 2.0
LATENCY_RATE_HZ = 2000.0
SUBSCRIBER_COUNTS = (1, 10, 100, 1000)
ENGINES: dict[str, TransportEngine] = {  # label -> the exchange's ``transport`` setting
    "trio-websocket": "trio-websocket",
    "wsproto, default": "wsproto",
}
TOTAL_LIMIT_S = 88.0


# --- the server child process --------------------------------------------------------------


def serve(rate_hz: float | None, send_log: str | None) -> None:
    from actors.simulator import open_exchange_server
    from actors.simulator.connection import Connection as SimConnection

    sent: list[tuple[int, float]] = []
    if send_log:
        original = SimConnection.send_now
        clock = time.perf_counter

        async def send_now(self: SimConnection, frame: str | bytes) -> None:
            if isinstance(frame, str) and '"u":' in frame:
                start = frame.index('"u":') + 4
                sent.append((int(frame[start : frame.index(",", start)]), clock()))
            await original(self, frame)

        SimConnection.send_now = send_now  # type: ignore[method-assign]

    async def main() -> None:
        async with open_exchange_server("binance", (SYMBOL,), rate_hz=rate_hz) as server:
            print(server.ws_url, flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin

    trio.run(main)
    if send_log:
        Path(send_log).write_bytes(orjson.dumps(sent))


class Server:
    """The child process: ``with Server(rate) as server: server.url``."""

    def __init__(self, rate_hz: float | None, *, log_sends: bool = False) -> None:
        self.rate_hz = rate_hz
        self.send_log = tempfile.mktemp(suffix=".json") if log_sends else None
        self.url = ""

    def __enter__(self) -> Server:
        args = [sys.executable, __file__, "--serve", str(self.rate_hz or "none")]
        if self.send_log:
            args += ["--send-log", self.send_log]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
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

    def send_times(self) -> dict[int, float]:
        assert self.send_log is not None
        times = dict(orjson.loads(Path(self.send_log).read_bytes()))
        os.unlink(self.send_log)
        return times


# --- measurements ---------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def bare_loop(url: str, received: list[tuple[int, float]] | None = None) -> dict[str, Any]:
    """trio-websocket + orjson, nothing else: the ceiling the plane is compared with."""
    clock = time.perf_counter
    async with open_websocket_url(url, message_queue_size=256, receive_buffer_size=65536) as ws:
        await ws.send_message(orjson.dumps({"method": "SUBSCRIBE", "params": [STREAM], "id": 1}))
        await ws.get_message()  # the ack
        count = 0
        with trio.move_on_after(WARMUP_S):
            while True:
                orjson.loads(await ws.get_message())
        started, cpu = clock(), time.process_time()
        with trio.move_on_after(PHASE_S):
            while True:
                message = orjson.loads(await ws.get_message())
                count += 1
                if received is not None:
                    received.append((message["data"]["u"], clock()))
        elapsed = clock() - started
        return {
            "rate": count / elapsed,
            "cpu_us": (time.process_time() - cpu) / max(count, 1) * 1e6,
            "deliveries": None,
        }


async def plane(
    url: str,
    engine: str,
    subscribers: int,
    received: list[tuple[int, float]] | None = None,
) -> dict[str, Any]:
    config = ExchangeConfig(name="binance", url=url, stale_after_s=30.0, transport=ENGINES[engine])
    clock = time.perf_counter
    deliveries = [0] * subscribers

    async def consume(i: int, events: Any) -> None:
        async for item in events:
            deliveries[i] += 1
            if received is not None and i == 0 and type(item) is Ticker:
                received.append((item.sequence, clock()))

    async with open_market_data(
        [config],
        backoff=BackoffPolicy(),
        circuit_breaker=BreakerPolicy(),
        rng=random.Random(1),
    ) as md:
        async with trio.open_nursery() as nursery:
            channels = []
            for _ in range(subscribers):
                channels.append(
                    await nursery_enter(nursery, md.subscribe("binance", "ticker", SYMBOL))
                )
            for i, events in enumerate(channels):
                nursery.start_soon(consume, i, events)
            await md.wait_streaming("binance")
            await trio.sleep(WARMUP_S)
            before = md.statistics().exchanges["binance"].messages_received
            delivered = sum(deliveries)
            started, cpu = clock(), time.process_time()
            await trio.sleep(PHASE_S)
            elapsed = clock() - started
            count = md.statistics().exchanges["binance"].messages_received - before
            result = {
                "rate": count / elapsed,
                "cpu_us": (time.process_time() - cpu) / max(count, 1) * 1e6,
                "deliveries": (sum(deliveries) - delivered) / elapsed,
            }
            nursery.cancel_scope.cancel()
    return result


async def nursery_enter(nursery: trio.Nursery, manager: Any) -> Any:
    """Enter ``manager`` in a task that holds it until the nursery is cancelled."""

    async def hold(*, task_status: trio.TaskStatus[Any]) -> None:
        async with manager as value:
            task_status.started(value)
            await trio.sleep_forever()

    return await nursery.start(hold)


def latencies(sent: dict[int, float], received: list[tuple[int, float]]) -> list[float]:
    return [(at - sent[u]) * 1e6 for u, at in received if u in sent]


# --- the run --------------------------------------------------------------------------------


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


async def run() -> tuple[list[list[str]], list[list[str]]]:
    throughput: list[list[str]] = []
    latency: list[list[str]] = []

    with Server(None) as server:
        for engine in ENGINES:
            for n in SUBSCRIBER_COUNTS:
                # The bare loop runs right before each figure, so that a server slowed by
                # something else on the machine slows both sides of the ratio alike.
                with trio.fail_after(PHASE_S + WARMUP_S + 20):
                    bare = await bare_loop(server.url)
                    result = await plane(server.url, engine, n)
                throughput.append(
                    [
                        f"plane ({engine})",
                        str(n),
                        fmt_rate(result["rate"]),
                        fmt_rate(bare["rate"]),
                        f"{result['rate'] / bare['rate']:.0%}",
                        fmt_rate(result["deliveries"]),
                        f"{result['cpu_us']:.1f}",
                        f"{bare['cpu_us']:.1f}",
                    ]
                )

    runs: list[tuple[str, str, Callable[..., Any]]] = [("bare loop", "-", bare_loop)]
    for engine in ENGINES:
        for n in (1, 1000):
            runs.append(
                (
                    f"plane ({engine})",
                    str(n),
                    lambda url, rec, e=engine, n=n: plane(url, e, n, rec),
                )
            )
    for name, n, measure in runs:
        received: list[tuple[int, float]] = []
        with Server(LATENCY_RATE_HZ, log_sends=True) as server:
            with trio.fail_after(PHASE_S + WARMUP_S + 20):
                result = await measure(server.url, received)
        values = latencies(server.send_times(), received)
        latency.append(
            [
                name,
                n,
                fmt_rate(result["rate"]),
                f"{statistics.median(values):.0f}" if values else "-",
                f"{percentile(values, 99):.0f}" if values else "-",
                str(len(values)),
            ]
        )
    return throughput, latency


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--send-log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logger.remove()
    if args.serve:
        serve(None if args.serve == "none" else float(args.serve), args.send_log)
        return

    async def bounded() -> tuple[list[list[str]], list[list[str]]]:
        with trio.fail_after(TOTAL_LIMIT_S):
            return await run()

    started = time.perf_counter()
    throughput, latency = trio.run(bounded)
    print(
        f"Market-data plane vs bare trio-websocket + orjson loop (Python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs); server in a child process; {PHASE_S} s per figure.\n"
    )
    print("Throughput, local Binance server unthrottled, all subscribers on one ticker stream:")
    print(
        table(
            [
                "client",
                "subscribers",
                "msgs/s",
                "bare msgs/s",
                "of bare",
                "deliveries/s",
                "CPU us/msg",
                "bare CPU us/msg",
            ],
            throughput,
        )
    )
    print(f"\nLatency server-send -> subscriber at {LATENCY_RATE_HZ:,.0f} msg/s:")
    print(table(["client", "subscribers", "msgs/s", "p50 us", "p99 us", "samples"], latency))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    print(json.dumps({"throughput": throughput, "latency": latency}))


if __name__ == "__main__":
    main()
