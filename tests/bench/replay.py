"""Replay benchmark (a script, not a test): ``python tests/bench/replay.py``.

Replayed tickers per second through ``run_backtest`` (recorded Parquet read back, the replay
feed, real ``Bot``s with the paper executor, the SQLite journal without fsync), for 1 bot and
for 100 bots on one symbol, pinned to one core. In the same invocation, interleaved with
them, two baselines on the same files:

* **read**: ``read_events`` alone (Parquet to ``Ticker`` objects), the floor of any replay;
* **bare replay**: the same events through ``ReplayFeed.run`` to one bare consumer that takes
  each ticker from its mailbox and does nothing else: the replay's own cost (clock, publish,
  waiting for the consumer) without a bot.

Ratios are to the bare replay of the same run. The machine (cores, the core pinned, load
average) is printed before and after: absolute figures depend on it, ratios much less.

Decisions: the bots run ``sma_cross`` (a moving-average cross that trades now and then, so the
journal is in the path: each order is two or three journal round trips, and the count is
printed); the 100 bots have different windows so they do not all trade on the same tick.
Logging is off. Each figure is the median of ``--reps`` repetitions.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.market_data.mailbox import Mailbox
from actors.messages import Ticker
from actors.recording.reader import read_events
from actors.replay import ReplayClock, ReplayFeed
from supervisor.backtest.runner import run_backtest
from supervisor.config_loader import parse_config
from tests.replay.helpers import START_TS, market, record


def machine() -> str:
    pinned = sorted(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"cores {os.cpu_count()}, pinned to {pinned}, load average {load}"


def config_text(bots: int) -> str:
    out = ['[[exchanges]]\nname = "binance"\n']
    for i in range(bots):
        fast = 5 + i % 10
        slow = fast + 15 + i % 20
        out.append(
            f'[[bots]]\nid = "b{i}"\nexchange = "binance"\nsymbol = "BTC/USDT"\n'
            f'strategy = "sma_cross"\nparams = {{ fast = {fast}, slow = {slow} }}\n'
            "risk = { max_orders_per_minute = 1000 }\n"
        )
    return "\n".join(out)


class BareConsumer:
    """Takes each ticker from its mailbox and counts it: a consumer with no bot behind it."""

    def __init__(self) -> None:
        self.handled = 0
        self._progress = trio.Event()

    async def run(self, mailbox: Mailbox) -> None:
        async for _ in mailbox:
            self.handled += 1
            self._progress.set()
            self._progress = trio.Event()

    async def wait_processed(self, count: int) -> None:
        while self.handled < count:
            await self._progress.wait()


def bare_replay(data: Path) -> int:
    async def main() -> int:
        feed = ReplayFeed()
        consumer = BareConsumer()
        reader = feed.reader(consumer)
        async with trio.open_nursery() as nursery:
            async with reader.subscribe("binance", "ticker", "BTC/USDT") as mailbox:
                nursery.start_soon(consumer.run, mailbox)
                stats = await feed.run(read_events(data, kinds=("ticker",)))
                nursery.cancel_scope.cancel()
        return stats.published

    return trio.run(main, clock=ReplayClock(START_TS))


def read_only(data: Path) -> int:
    return sum(1 for e in read_events(data, kinds=("ticker",)) if type(e) is Ticker)


ORDERS: dict[int, int] = {}  # bots -> orders journaled in the last run


def bots(data: Path, out: Path, count: int) -> int:
    result = run_backtest(parse_config(config_text(count)), data, out)
    db = sqlite3.connect(result.journal)
    ORDERS[count] = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    db.close()
    return result.statistics.published


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    ticks = fn()
    return time.perf_counter() - started, ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--ticks", type=int, default=20_000, help="tickers for the 1-bot run")
    parser.add_argument("--ticks-100", type=int, default=1_000, help="tickers for 100 bots")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--core", type=int, default=0, help="the core to pin to")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    from loguru import logger

    logger.remove()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sizes = {"1 bot": args.ticks, "100 bots": args.ticks_100}
        rates: dict[str, list[float]] = {}
        for label, n in sizes.items():
            data = record(root / f"data{n}", market(n, trade_every=0))
            runs: dict[str, Callable[[], int]] = {
                "read": lambda data=data: read_only(data),
                "bare replay": lambda data=data: bare_replay(data),
                label: lambda data=data, label=label: bots(
                    data, root / "out", 1 if label == "1 bot" else 100
                ),
            }
            for _ in range(args.reps):
                for name, fn in runs.items():
                    seconds, ticks = timed(fn)
                    assert ticks == n, (name, ticks, n)
                    rates.setdefault(f"{name} ({n} ticks)", []).append(ticks / seconds)
        print(f"{'run':<32}{'ticks/s':>12}{'ratio to bare replay':>24}")
        for label, n in sizes.items():
            bare = statistics.median(rates[f"bare replay ({n} ticks)"])
            for name in ("read", "bare replay", label):
                rate = statistics.median(rates[f"{name} ({n} ticks)"])
                extra = f"  ({rate * 100:,.0f} bot-ticks/s)" if name == "100 bots" else ""
                print(f"{name + f' ({n} ticks)':<32}{rate:>12,.0f}{rate / bare:>24.3f}{extra}")
    print(f"orders journaled per run: 1 bot {ORDERS[1]}, 100 bots {ORDERS[100]}")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
