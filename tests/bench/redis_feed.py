"""Cluster feed benchmark (a script, not a test): ``python tests/bench/redis_feed.py``.

One leader process writes the feed through Redis the way a cluster leader does
(``FeedWriter``: the fenced Lua ``XADD``, one entry per pile of socket reads), and 1, 4 and 16
reader processes read it the way every other node does (``FeedReader`` -> the pool's
subscriptions -> one subscriber per stream). Beside them, in the same invocation, the local
plane: the same events published straight into the same subscriptions (what the node holding
the exchange connection does). Printed:

* **throughput**: trades/s that reach the subscribers of *each* reader, with the leader
  unthrottled (socket reads of 20 trades on 4 streams, as fast as it can hand them over), and
  the local plane's rate for the same events, as a ratio;
* **latency added**: at 500 socket reads/s (one trade each), leader receipt -> subscriber
  wake-up in one reader process, p50/p99, next to the local plane's publish -> wake-up.

Decisions:

* Trades, not tickers: tickers are conflated by design (a reader takes only the newest), so a
  count of them would measure conflation, not transport. A subscriber that falls more than
  1024 trades behind gets ``Lagged(dropped)``; dropped trades count as not delivered.
* Wall-clock latency (``time.time()``): leader and readers share the machine's clock.
* Redis is ``BCF_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); keys under a fresh
  prefix, deleted at the end. The figures include Redis on the same 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import trio
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from actors.market_data.config import FeedConfig
from actors.market_data.pool import ExchangePool
from actors.messages import Trade
from supervisor.cluster.feed import FeedReader, FeedWriter
from supervisor.cluster.lease import Lease, LeaseTiming
from supervisor.cluster.redis import open_redis

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT")
URL = os.environ.get("BCF_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
READ_SIZE = 20  # trades per simulated socket read (throughput)
READS_PER_S = 1000.0  # offered load: 20,000 trades/s, far above 4 real streams' pace


def trades(n: int, now: float) -> list[Trade]:
    return [
        Trade("bench", SYMBOLS[i % 4], Decimal("100.5"), Decimal("0.01"), "buy", str(i), now, now)
        for i in range(n)
    ]


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last = 0.0
        self.lags: list[float] = []

    async def consume(self, pool: ExchangePool, symbol: str, latency: bool) -> None:
        """Each wake-up takes everything pending (``receive_nowait``), as a subscriber that
        keeps up must: ``receive`` alone is one event per scheduler round."""
        async with pool.subscribe("trade", symbol) as events:
            while True:
                pending = [await events.receive()]
                while True:
                    try:
                        pending.append(events.receive_nowait())
                    except trio.WouldBlock:
                        break
                now = time.time()
                for event in pending:
                    if isinstance(event, Trade):  # Lagged: dropped, not delivered
                        self.count += 1
                        if latency:
                            self.lags.append(now - event.received_ts)
                        if self.first is None:
                            self.first = now
                        self.last = now


def new_pool() -> ExchangePool:
    return ExchangePool(FeedConfig(name="bench", protocol="binance"))


# --- reader process -----------------------------------------------------------------------------


async def reader_main(prefix: str, seconds: float, latency: bool) -> None:
    pool = new_pool()
    counter = Counter()
    async with open_redis(URL, timeout_s=2.0) as client, trio.open_nursery() as nursery:
        for symbol in SYMBOLS:
            nursery.start_soon(counter.consume, pool, symbol, latency)
        await trio.lowlevel.checkpoint()
        reader = FeedReader(pool, f"{prefix}:feed:bench", 2.0)
        await nursery.start(reader.run, client)
        print("ready", flush=True)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    span = (counter.last - counter.first) if counter.first else 0.0
    print(json.dumps({"count": counter.count, "span": span, "lags": counter.lags}), flush=True)


# --- leader -------------------------------------------------------------------------------------


async def lead(prefix: str, seconds: float, *, per_read: int, reads_per_s: float | None) -> int:
    """Hand socket reads to a FeedWriter for ``seconds``; returns events handed over."""
    handed = 0
    async with open_redis(URL, timeout_s=2.0) as client:
        lease = Lease(client, f"{prefix}:lease:bench", "leader", LeaseTiming(30.0))
        held = await lease.acquire()
        assert held is not None
        writer = FeedWriter(
            client, f"{prefix}:feed:bench", f"{prefix}:lease:bench", held.token, held.epoch,
            "leader", 100_000, 5.0,
        )  # fmt: skip
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            end = trio.current_time() + seconds
            next_at = trio.current_time()
            while trio.current_time() < end:
                writer.hook(trades(per_read, time.time()), time.time())  # type: ignore[arg-type]
                handed += per_read
                if reads_per_s is None:
                    await trio.lowlevel.checkpoint()
                else:
                    next_at += 1 / reads_per_s
                    await trio.sleep_until(next_at)
            await trio.sleep(0.5)  # the last writes land
            nursery.cancel_scope.cancel()
    return handed


def run_readers(prefix: str, n: int, seconds: float, latency: bool) -> tuple[list[Any], Any]:
    args = [sys.executable, __file__, "--reader", prefix, "--seconds", str(seconds)]
    procs = [
        subprocess.Popen([*args, *(["--latency"] if latency else [])], stdout=subprocess.PIPE,
                         text=True)
        for _ in range(n)
    ]  # fmt: skip
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "ready", line
    return procs, None


def collect(procs: list[Any]) -> list[dict[str, Any]]:
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=60)
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


async def local_plane(seconds: float, *, per_read: int, reads_per_s: float | None) -> Counter:
    """The same events published into the same subscriptions in-process (the leader's own
    subscribers)."""
    pool = new_pool()
    counter = Counter()
    async with trio.open_nursery() as nursery:
        for symbol in SYMBOLS:
            nursery.start_soon(counter.consume, pool, symbol, reads_per_s is not None)
        await trio.sleep(0.05)
        streams = pool.streams()
        end = trio.current_time() + seconds
        next_at = trio.current_time()
        while trio.current_time() < end:
            now = trio.current_time()
            for trade in trades(per_read, time.time()):
                streams[trade.stream].publish(trade, now)
            if reads_per_s is None:
                await trio.lowlevel.checkpoint()
            else:
                next_at += 1 / reads_per_s
                await trio.sleep_until(next_at)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    return counter


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def cleanup(prefix: str) -> None:
    async with open_redis(URL, timeout_s=2.0) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(keys)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reader", metavar="PREFIX")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--readers", default="1,4,16")
    args = parser.parse_args()
    logger.remove()  # logging off: it would be most of what is measured
    if args.reader:
        trio.run(reader_main, args.reader, args.seconds, args.latency)
        return

    seconds = args.seconds
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start;"
          f" Redis {URL}")  # fmt: skip
    local = trio.run(lambda: local_plane(seconds, per_read=READ_SIZE, reads_per_s=READS_PER_S))
    local_rate = local.count / (local.last - (local.first or local.last) or 1)
    print(f"local plane: {local_rate:,.0f} trades/s to 4 subscribers (same events, in-process)")
    for n in [int(x) for x in args.readers.split(",")]:
        prefix = f"bcf-bench:{uuid.uuid4().hex[:8]}"
        procs, _ = run_readers(prefix, n, seconds + 3.0, latency=False)
        handed = trio.run(
            partial(lead, prefix, seconds, per_read=READ_SIZE, reads_per_s=READS_PER_S)
        )
        results = collect(procs)
        rates = [r["count"] / r["span"] for r in results if r["span"]]
        delivered = [r["count"] / handed for r in results]
        trio.run(cleanup, prefix)
        per_reader = statistics.median(rates)
        print(
            f"through Redis, {n:2d} reader(s): {per_reader:,.0f} trades/s per reader (median;"
            f" {sum(rates):,.0f} total), ratio to local {per_reader / local_rate:.2f}; leader"
            f" handed {handed / seconds:,.0f}/s, delivered"
            f" {min(delivered):.0%}..{max(delivered):.0%}"
        )

    local = trio.run(lambda: local_plane(seconds, per_read=1, reads_per_s=500))
    prefix = f"bcf-bench:{uuid.uuid4().hex[:8]}"
    procs, _ = run_readers(prefix, 1, seconds + 3.0, latency=True)
    trio.run(lambda: lead(prefix, seconds, per_read=1, reads_per_s=500))
    (result,) = collect(procs)
    trio.run(cleanup, prefix)
    lags = result["lags"][len(result["lags"]) // 10 :]  # after a warm-up tenth
    base = local.lags[len(local.lags) // 10 :]
    p50, p99 = pct(lags, 0.5), pct(lags, 0.99)
    b50, b99 = pct(base, 0.5), pct(base, 0.99)
    print(
        f"latency at 500 reads/s: local plane p50 {b50 * 1e6:.0f} µs, p99 {b99 * 1e6:.0f} µs;"
        f" through Redis p50 {p50 * 1e6:.0f} µs, p99 {p99 * 1e6:.0f} µs; added p50"
        f" {(p50 - b50) * 1e6:.0f} µs, p99 {(p99 - b99) * 1e6:.0f} µs"
    )


if __name__ == "__main__":
    main()
