"""Recording overhead on the feed (a script, not a test): ``python tests/bench/recording.py``.

The market-data benchmark's server (``tests/bench/market_data.py``, a child process sending
pre-framed Binance bookTicker frames for four streams as fast as the socket takes them) feeds
the real plane (wsproto engine, one subscriber per stream draining it). Each round runs, one
after the other: the bare wsproto loop (the floor), the plane with recording off, and the
plane with a ``Recorder`` (``flush_s = 1``) on the same four streams writing to a temporary
directory. Figures are medians over interleaved rounds; the ratio on/off is per round.

A second part feeds a steady ``--rate`` (2,000 messages/s by default, the order of a busy
real feed) and compares the process's CPU time per message with recording off and on, and the
share of messages recorded.

What "recorded" means: the recorder is a handler on each stream, called by the reader with
every ticker the plane publishes, so it records all of them (the share of the published
tickers recorded is printed, and should be 100%); the messages it does not record are Binance
tickers the codec skipped as superseded within one socket read, which nobody received.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.market_data.pool import ExchangeStatistics
from actors.recording.config import RecordConfig
from actors.recording.recorder import Recorder
from supervisor.config import BackoffPolicy, BreakerPolicy, ExchangeConfig
from supervisor.feeds import open_market_data
from tests.bench.market_data import SYMBOLS, Phase, Server, bare_wsproto, drain, hold


async def plane(url: str, phase: Phase, record_dir: str | None) -> dict[str, float]:
    config = ExchangeConfig(name="binance", url=url, stale_after_s=30.0)
    async with open_market_data(
        [config], backoff=BackoffPolicy(), circuit_breaker=BreakerPolicy(), rng=random.Random(1)
    ) as md:
        async with trio.open_nursery() as nursery:
            for symbol in SYMBOLS:
                events = await nursery.start(hold, md.subscribe("binance", "ticker", symbol))
                nursery.start_soon(drain, events)
            recorder = None
            if record_dir is not None:
                streams = [("binance", "ticker", symbol) for symbol in SYMBOLS]
                recorder = Recorder(
                    RecordConfig(dir=record_dir, flush_s=1.0), md.subscribe_handler, streams
                )
                await nursery.start(recorder.run)
            await md.wait_streaming("binance")
            await trio.sleep(phase.warmup_s)
            before = md.statistics().exchanges["binance"]
            rows_before = 0 if recorder is None else recorder.statistics().rows_received
            started, cpu = time.perf_counter(), time.process_time()
            await trio.sleep(phase.seconds)
            elapsed = time.perf_counter() - started
            after = md.statistics().exchanges["binance"]
            rows = 0 if recorder is None else recorder.statistics().rows_received - rows_before
            count = after.messages_received - before.messages_received
            published = published_of(after) - published_of(before)
            cpu_us = (time.process_time() - cpu) / max(count, 1) * 1e6
            nursery.cancel_scope.cancel()
    result = {"rate": count / elapsed, "cpu_us": cpu_us, "recorded_per_s": rows / elapsed}
    if recorder is not None:
        stats = recorder.statistics()
        result["dropped"] = stats.dropped_rows
        result["recorded_share"] = rows / max(1, published)
        result["written"] = stats.rows_written
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phase = Phase(args.warmup, args.seconds)
    rounds: list[dict[str, dict[str, float]]] = []
    steady: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        with Server() as server:
            for i in range(args.reps):
                bare = await bare_wsproto(server.url, phase)
                off = await plane(server.url, phase, None)
                on = await plane(server.url, phase, os.path.join(tmp, f"round{i}"))
                rounds.append({"bare wsproto": bare, "recording off": off, "recording on": on})
        with Server(args.rate) as server:
            for i in range(args.reps):
                off = await plane(server.url, phase, None)
                on = await plane(server.url, phase, os.path.join(tmp, f"steady{i}"))
                steady.append({"recording off": off, "recording on": on})
    return {"rounds": rounds, "steady": steady}


def published_of(exchange: ExchangeStatistics) -> int:
    """Tickers the plane published on the exchange's streams (not those the codec skipped)."""
    return sum(stream.published for stream in exchange.streams)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per figure")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=2000.0, help="msg/s of the steady part")
    args = parser.parse_args()
    logger.remove()
    load = os.getloadavg()
    report = trio.run(run, args)
    rounds = report["rounds"]
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average at start"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; server in a child process;"
        f" {args.seconds} s per figure, medians of {args.reps} interleaved rounds\n"
    )
    print("Feed throughput, 4 bookTicker streams, one draining subscriber per stream:")
    for name in ("bare wsproto", "recording off", "recording on"):
        rate = median([r[name]["rate"] for r in rounds])
        cpu = median([r[name]["cpu_us"] for r in rounds])
        print(f"  {name:14} {rate:>10,.0f} msg/s  {cpu:6.2f} CPU us/msg")
    ratio = median([r["recording on"]["rate"] / r["recording off"]["rate"] for r in rounds])
    recorded = median([r["recording on"]["recorded_per_s"] for r in rounds])
    dropped = sum(r["recording on"]["dropped"] for r in rounds)
    print(f"\nrecording on / off (per round, median): {ratio:.3f}")
    published = median([r["recording on"]["recorded_share"] for r in rounds])
    print(f"rows recorded: {recorded:,.0f}/s, {published:.1%} of the tickers published", end="")
    print(f" (the rest of the messages skipped by the codec within a read); dropped {dropped:.0f}")
    steady = report["steady"]
    off_cpu = median([r["recording off"]["cpu_us"] for r in steady])
    on_cpu = median([r["recording on"]["cpu_us"] for r in steady])
    share = median(
        [r["recording on"]["recorded_per_s"] / r["recording on"]["rate"] for r in steady]
    )
    of_published = median([r["recording on"]["recorded_share"] for r in steady])
    print(
        f"\nSteady feed at {args.rate:,.0f} msg/s: CPU per message off {off_cpu:.1f} us, on"
        f" {on_cpu:.1f} us (x{on_cpu / off_cpu:.2f}); recorded {share:.1%} of the messages,"
        f" {of_published:.1%} of the tickers published (the rest of the messages skipped by the"
        " codec within a socket read)"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
