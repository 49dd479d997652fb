"""Bot engine benchmark (a script, not a test): ``python tests/bench/bots.py``.

By default, the bots through the real market-data plane: ``open_supervisor`` (journal with fsync
on, the Binance codec over a WebSocket, the supervision tree) fed by a Binance simulator in a
child process, ``--symbols`` ticker streams sharing ``--rate`` messages/s. Each repetition
measures, in alternating order:

* **spawn**: ``--bots`` bots spawned one after the other (``await system.spawn_bot(spec)``, the
  embedded API) while the feed streams at full rate; the baseline is the same spawns against a
  quiet simulator (one ticker per stream per second). Also the time to stop them all.
* **latency**: for every ticker published and every subscriber of its symbol, the time from the
  publish to the subscriber's decision on that ticker or a newer one (a subscriber takes the
  newest ticker from a conflating mailbox, so a ticker it skipped is decided on by the next one
  it takes). The bots run a threshold strategy that reads ``ctx.price`` and ``ctx.position`` and
  never trades; the baseline is as many bare subscribers on the same feed, reading their
  mailboxes exactly as a bot does (a ``Waker`` taking turns) and doing nothing else. Per
  subscriber: how many decisions it made and its own p99, so a starving subscriber shows; and
  how many tickers/s the plane published, so a plane that falls behind its feed shows too.

``--engine`` adds the figures of the engine on its own: the age of the ticker at the strategy
for one bot trading on every tick (1,000 tickers/s), ticks/s through one bot, journal writes/s
with fsync on, and bot-ticks/s for 100 and 1000 bots on 10 symbols when the bench publishes
into the ticker slots itself and waits for every bot before the next tick.

Decisions:

* **Ratios next to absolute figures.** The machine this was written on (2 shared cores) gives a
  spinning thread between a third and all of a core from one minute to the next: the bare
  baseline runs in the same invocation, interleaved with the bots, and the machine's state
  (cores, load average, the CPU share a spinning thread gets) is printed before and after.
* **The publish time** of every ticker is taken by wrapping ``TickerSlot.publish`` (the plane's
  buffer), the decision time in the strategy (bots) or the loop body (baseline), with the same
  clock, into arrays: two million tuples would make the garbage collector's pauses part of
  what is measured (they did: 200 ms).
* Every phase is bounded (``--limit``); one that runs out of time says so. Logging is off.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import trio
from loguru import logger

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from actors.bots import Bot, Signal, StrategyContext  # noqa: E402
from actors.bots.strategies.threshold import Threshold  # noqa: E402
from actors.journal import Journal  # noqa: E402
from actors.journal.store import OrderIntent  # noqa: E402
from actors.market_data.mailbox import Mailbox, TickerSlot, Waker, shared_wake_queue  # noqa: E402
from actors.messages import Stream, Ticker  # noqa: E402
from supervisor.config import (  # noqa: E402
    BotConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
    MarketConfig,
    PaperConfig,
    RiskConfig,
)
from supervisor.system import System, open_supervisor  # noqa: E402
from tests.market_data.helpers import open_plane  # noqa: E402

SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "BNB", "LTC", "DOT", "AVAX", "TRX", "LINK")
QUIET_RATE_HZ = 1.0  # per stream, for the spawn baseline
TAIL_S = 1.0  # decisions still recorded after the window, so late tickers are decided on


class LIMIT:
    seconds = 300.0  # per phase (--limit)


EXCHANGE = "sim"


# --- the machine ----------------------------------------------------------------------------------


def cpu_share(seconds: float = 0.5) -> float:
    """The share of a core a spinning thread gets right now (1.0 on an idle machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        pass
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average {load}, a spinning thread gets "
        f"{cpu_share():.0%} of a core; Python {sys.version.split()[0]}"
    )


# --- the simulator --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def simulator_process(symbols: Sequence[str], rate_hz: float) -> AsyncIterator[str]:
    """``python -m actors.simulator binance`` in its own process (its CPU is not the client's);
    yields its WebSocket URL. ``rate_hz`` is per stream."""
    args = ["binance", "--symbols", ",".join(symbols), "--rate", str(rate_hz)]
    args += ["--ws-port", str(free_port()), "--rest-port", str(free_port())]
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "actors.simulator", *args], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        text = ""
        with trio.fail_after(10):
            while "simulator listening" not in text:
                chunk = await proc.stderr.receive_some()
                assert chunk, "the simulator exited"
                text += chunk.decode()
        ws = re.search(r"ws://[^\s'\",}]+", text)
        assert ws, text
        yield ws[0]
    finally:
        proc.terminate()
        with trio.move_on_after(5):
            await proc.wait()
        proc.kill()


# --- what is recorded -----------------------------------------------------------------------------


class Series:
    """(sequence, perf_counter) pairs in two arrays: nothing the garbage collector tracks, so
    recording two million of them does not add collector pauses to what is measured."""

    __slots__ = ("at", "sequence")

    def __init__(self) -> None:
        self.sequence = array("q")
        self.at = array("d")

    def add(self, sequence: int) -> None:
        self.sequence.append(sequence)
        self.at.append(time.perf_counter())

    def __len__(self) -> int:
        return len(self.sequence)


class Record:
    """Publish times per symbol and decisions per subscriber, while on."""

    publishing: ClassVar[bool] = False
    deciding: ClassVar[bool] = False
    published: ClassVar[dict[str, Series]] = defaultdict(Series)
    decisions: ClassVar[dict[str, Series]] = defaultdict(Series)

    @classmethod
    def clear(cls) -> None:
        cls.publishing = cls.deciding = False
        cls.published.clear()
        cls.decisions.clear()


_publish = TickerSlot.publish


def _recording_publish(self: TickerSlot, ticker: Ticker) -> None:
    if Record.publishing and ticker.sequence is not None:
        Record.published[ticker.symbol].add(ticker.sequence)
    _publish(self, ticker)


TickerSlot.publish = _recording_publish  # type: ignore[method-assign]


class Probe(Threshold):
    """The threshold strategy (reads ``ctx.price`` and ``ctx.position``) with a threshold it
    never reaches, recording each decision."""

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        signal = super().on_tick(ticker, ctx)
        if Record.deciding and ticker.sequence is not None:
            Record.decisions[ctx.bot_id].add(ticker.sequence)
        return signal


def bot_spec(n: int, symbol: str) -> dict[str, Any]:
    return {
        "id": f"bot{n}",
        "exchange": EXCHANGE,
        "symbol": symbol,
        "strategy": f"{__name__}:Probe",
        "params": {"buy_below": "0.000001"},
    }


@attrs.frozen
class Latency:
    p50_ms: float
    p99_ms: float
    max_ms: float
    samples: int
    undecided: int  # (ticker, subscriber) pairs not decided on by the end of the tail
    decisions_per_s: float
    per_subscriber: tuple[int, int, int]  # decisions in the window: min, median, max
    worst_subscriber_p99_ms: float  # the p99 of the subscriber whose p99 is highest
    cpu_share: float  # process CPU time / wall time during the window
    full_collections: int = 0  # the garbage collector's generation 2, during the window
    published_per_s: float = 0.0  # tickers published into the slots, all symbols


def latency(symbol_of: dict[str, str], window: tuple[float, float], cpu: float) -> Latency:
    """Every ticker published in the window against every subscriber of its symbol: the first
    decision of that subscriber on it or a newer one (sequence numbers grow per symbol)."""
    start, end = window
    values: list[float] = []
    undecided = 0
    counts: list[int] = []
    worst_p99 = 0.0
    for name, symbol in symbol_of.items():
        published = Record.published[symbol]
        decisions = Record.decisions.get(name, Series())
        counts.append(sum(1 for at in decisions.at if at <= end))
        mine: list[float] = []
        i, n = 0, len(published)
        for sequence, at in zip(decisions.sequence, decisions.at, strict=True):
            while i < n and published.sequence[i] <= sequence:
                mine.append(at - published.at[i])
                i += 1
        undecided += n - i
        mine.extend(end + TAIL_S - p for p in published.at[i:])  # at least this late
        if mine:
            mine.sort()
            worst_p99 = max(worst_p99, mine[min(len(mine) - 1, int(len(mine) * 0.99))])
        values.extend(mine)
    values.sort()
    ms = [v * 1000 for v in values] or [float("nan")]
    counts.sort()
    return Latency(
        p50_ms=ms[len(ms) // 2],
        p99_ms=ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        max_ms=ms[-1],
        samples=len(values),
        undecided=undecided,
        decisions_per_s=sum(counts) / (end - start),
        per_subscriber=(counts[0], counts[len(counts) // 2], counts[-1]),
        worst_subscriber_p99_ms=worst_p99 * 1000,
        cpu_share=cpu,
    )


async def measure(
    system: System, symbol_of: dict[str, str], warmup_s: float, measure_s: float
) -> Latency:
    await trio.sleep(warmup_s)
    Record.clear()
    Record.publishing = Record.deciding = True
    full_collections = gc.get_stats()[2]["collections"]
    start, cpu = time.perf_counter(), time.process_time()
    await trio.sleep(measure_s)
    Record.publishing = False
    end = time.perf_counter()
    cpu = (time.process_time() - cpu) / (end - start)
    full_collections = gc.get_stats()[2]["collections"] - full_collections
    await trio.sleep(TAIL_S)
    Record.deciding = False
    published = sum(len(series) for series in Record.published.values()) / (end - start)
    return attrs.evolve(
        latency(symbol_of, (start, end), cpu),
        full_collections=full_collections,
        published_per_s=published,
    )


# --- the phases -----------------------------------------------------------------------------------


@attrs.frozen
class Spawn:
    total_s: float
    slowest_s: float
    stop_s: float


@asynccontextmanager
async def running_system(
    url: str, journal_dir: Path, symbols: Sequence[str]
) -> AsyncIterator[System]:
    """``open_supervisor`` on the simulator, every ticker stream already streaming (held open by
    a subscriber that never reads), so the feed runs at full rate from the first spawn on."""
    config = Config(
        exchanges=(ExchangeConfig(name=EXCHANGE, protocol="binance", url=url),),
        journal=JournalConfig(path=str(journal_dir / "journal.sqlite3"), fsync=True),
        http=HttpConfig(enabled=False),
        # The spawned bots' strategy lives in this script: the embedded API (a mapping, as the
        # control API sends) takes a plugin module only if the config allows it.
        plugins=(__name__,),
    )
    async with open_supervisor(config) as system, AsyncExitStack() as holders:
        for symbol in symbols:
            mailbox = await holders.enter_async_context(
                system.subscribe(EXCHANGE, "ticker", symbol)
            )
            while type(await mailbox.receive()) is not Ticker:
                pass
        yield system


async def spawn_bots(system: System, n_bots: int, symbols: Sequence[str]) -> tuple[float, float]:
    started = time.perf_counter()
    slowest = 0.0
    for n in range(n_bots):
        at = time.perf_counter()
        await system.spawn_bot(bot_spec(n, symbols[n % len(symbols)]))
        slowest = max(slowest, time.perf_counter() - at)
    return time.perf_counter() - started, slowest


async def spawn_phase(url: str, tmp: Path, n_bots: int, symbols: Sequence[str]) -> Spawn:
    """Spawn only (the quiet baseline)."""
    with trio.fail_after(LIMIT.seconds):
        async with running_system(url, tmp, symbols) as system:
            total, slowest = await spawn_bots(system, n_bots, symbols)
            stopping = time.perf_counter()
    return Spawn(total, slowest, time.perf_counter() - stopping)


async def bots_phase(
    url: str, tmp: Path, n_bots: int, symbols: Sequence[str], warmup_s: float, measure_s: float
) -> tuple[Spawn, Latency]:
    symbol_of = {bot_spec(n, "")["id"]: symbols[n % len(symbols)] for n in range(n_bots)}
    with trio.fail_after(LIMIT.seconds):
        async with running_system(url, tmp, symbols) as system:
            total, slowest = await spawn_bots(system, n_bots, symbols)
            result = await measure(system, symbol_of, warmup_s, measure_s)
            stopping = time.perf_counter()
    return Spawn(total, slowest, time.perf_counter() - stopping), result


async def bare_phase(
    url: str,
    tmp: Path,
    n_subscribers: int,
    symbols: Sequence[str],
    warmup_s: float,
    measure_s: float,
) -> Latency:
    """The floor: as many subscribers as bots, each reading its mailbox the way a bot does
    (parked on a ``Waker`` that takes turns in the run's queue, the newest ticker taken when it
    runs) and doing nothing else, so the ratio is what the bot engine costs."""

    async def subscriber(system: System, name: str, symbol: str) -> None:
        decisions = Record.decisions
        waker = Waker(shared_wake_queue())
        async with system.subscribe(EXCHANGE, "ticker", symbol) as mailbox:
            while True:
                try:
                    item = mailbox.receive_nowait()
                except trio.WouldBlock:
                    await waker.wait([mailbox])
                    continue
                if Record.deciding and type(item) is Ticker and item.sequence is not None:
                    decisions[name].add(item.sequence)

    symbol_of = {f"sub{n}": symbols[n % len(symbols)] for n in range(n_subscribers)}
    with trio.fail_after(LIMIT.seconds):
        async with running_system(url, tmp, symbols) as system, trio.open_nursery() as nursery:
            for name, symbol in symbol_of.items():
                nursery.start_soon(subscriber, system, name, symbol)
            result = await measure(system, symbol_of, warmup_s, measure_s)
            nursery.cancel_scope.cancel()
    return result


# --- the engine on its own (--engine) -------------------------------------------------------------

LOW, MID, HIGH = Decimal("95"), Decimal("105"), Decimal("115")
LAG_RATE_HZ = 1000.0
LAG_WARMUP_S = 1.0
LAG_MEASURE_S = 5.0
ENGINE_LIMIT_S = 60.0


def engine_config(bot_id: str, symbol: str) -> BotConfig:
    return BotConfig(
        id=bot_id,
        exchange="bench",
        symbol=symbol,
        strategy="threshold",
        params={"buy_below": "100", "sell_above": "110"},
        risk=RiskConfig(
            max_tick_move_pct=50.0,
            max_orders_per_minute=1_000_000,
            max_price_age_s=60.0,
            stop_loss_pct=20.0,
            trailing_stop_pct=30.0,
        ),
        paper=PaperConfig(quote_balance=Decimal("1000000"), fee_pct=Decimal("0.1")),
    )


def bench_ticker(symbol: str, price: Decimal) -> Ticker:
    return Ticker(
        "bench", symbol, price, price + Decimal("0.01"), None, None, None, None, time.time()
    )


class Feeds:
    """One ticker slot per symbol, shared by the bots on it (as the plane does)."""

    def __init__(self) -> None:
        self.slots: dict[str, TickerSlot] = {}

    @asynccontextmanager
    async def subscribe(self, exchange: str, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
        slot = self.slots.setdefault(symbol, TickerSlot(Stream("ticker", symbol)))
        with slot.open_mailbox() as mailbox:
            yield mailbox


async def run_bots(
    path: Path, n_bots: int, n_symbols: int, ticks_per_symbol: int, trade_every: int
) -> tuple[float, int, int]:
    """Returns (seconds, bot-ticks processed, orders placed). The journal outlives the bots
    (its own nursery), as in the daemon."""
    feeds = Feeds()
    symbols = [f"S{i}/USDT" for i in range(n_symbols)]
    journal = Journal(JournalConfig(path=str(path), fsync=False))
    with trio.fail_after(ENGINE_LIMIT_S):
        async with trio.open_nursery() as outer:
            await outer.start(journal.run)
            async with trio.open_nursery() as nursery:
                bots = [
                    Bot(engine_config(f"bot{i}", symbols[i % n_symbols]), feeds.subscribe, journal)
                    for i in range(n_bots)
                ]
                for bot in bots:
                    await nursery.start(bot.run)
                started = time.perf_counter()

                async def feed_symbol(symbol: str, on_symbol: list[Bot]) -> None:
                    slot = feeds.slots[symbol]
                    for i in range(ticks_per_symbol):
                        if trade_every and i % trade_every == 0:
                            price = LOW if (i // trade_every) % 2 == 0 else HIGH
                        else:
                            price = MID
                        slot.publish(bench_ticker(symbol, price))
                        for bot in on_symbol:
                            await bot.wait_processed(i + 1)

                async with trio.open_nursery() as feeders:
                    for n, symbol in enumerate(symbols):
                        feeders.start_soon(feed_symbol, symbol, bots[n::n_symbols])
                elapsed = time.perf_counter() - started
                orders = sum(bot.statistics().orders for bot in bots)
                nursery.cancel_scope.cancel()
            outer.cancel_scope.cancel()
    return elapsed, n_bots * ticks_per_symbol, orders


async def journal_writes(path: Path, writers: int, per_writer: int) -> tuple[float, int, int]:
    journal = Journal(JournalConfig(path=str(path), fsync=True))

    async def writer(n: int) -> None:
        bot_id = f"w{n}"
        await journal.load_bot(bot_id, initial_quote=Decimal(1), now_ts=time.time())
        for seq in range(1, per_writer + 1):
            await journal.record_intent(
                OrderIntent(
                    f"{bot_id}-{seq}",
                    bot_id,
                    seq,
                    "X/Y",
                    "buy",
                    "market",
                    Decimal(1),
                    None,
                    "bench",
                    None,
                    time.time(),
                )
            )

    with trio.fail_after(ENGINE_LIMIT_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            started = time.perf_counter()
            async with trio.open_nursery() as writers_nursery:
                for n in range(writers):
                    writers_nursery.start_soon(writer, n)
            elapsed = time.perf_counter() - started
            stats = journal.statistics()
            nursery.cancel_scope.cancel()
    return elapsed, stats.writes, stats.commits


class LagProbe:
    """Trades on every tick (buy when flat, close when holding) and records how old each
    ticker is when it is handed over (wall clock, since the plane received it)."""

    ages: ClassVar[list[float]] = []
    recording: ClassVar[bool] = False

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if LagProbe.recording:
            LagProbe.ages.append(time.time() - ticker.received_ts)
        return Signal.buy("lag") if ctx.position.flat else Signal.close("lag")


async def ticker_lag(path: Path) -> tuple[list[float], int, int, int]:
    """Returns (ages in s, ticks handed to the strategy while measuring, orders, skipped)."""
    LagProbe.ages, LagProbe.recording = [], False
    bot_config = BotConfig(
        id="lag",
        exchange="binance",
        symbol="BTC/USDT",
        strategy=f"{__name__}:LagProbe",
        risk=RiskConfig(
            max_orders_per_minute=1_000_000, max_tick_move_pct=50.0, price_confirm_ticks=1
        ),
        paper=PaperConfig(quote_balance=Decimal(10_000_000), fee_pct=Decimal("0.1")),
        market=MarketConfig(
            tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"), min_notional=Decimal(1)
        ),
    )
    journal = Journal(JournalConfig(path=str(path), fsync=True))
    mailboxes: list[Mailbox] = []
    with trio.fail_after(ENGINE_LIMIT_S):
        async with (
            simulator_process(["BTC/USDT"], LAG_RATE_HZ) as url,
            open_plane([ExchangeConfig(name="binance", protocol="binance", url=url)]) as md,
            trio.open_nursery() as outer,
        ):
            await outer.start(journal.run)

            @asynccontextmanager
            async def subscribe(exchange: str, kind: str, symbol: str) -> AsyncIterator[Mailbox]:
                async with md.subscribe(exchange, kind, symbol) as mailbox:
                    mailboxes.append(mailbox)
                    yield mailbox

            async with trio.open_nursery() as nursery:
                bot = Bot(bot_config, subscribe, journal)
                await nursery.start(bot.run)
                await trio.sleep(LAG_WARMUP_S)
                before = bot.statistics()
                skipped = mailboxes[0].statistics().skipped
                LagProbe.recording = True
                await trio.sleep(LAG_MEASURE_S)
                LagProbe.recording = False
                after = bot.statistics()
                skipped = mailboxes[0].statistics().skipped - skipped
                nursery.cancel_scope.cancel()
            outer.cancel_scope.cancel()
    return LagProbe.ages, after.ticks - before.ticks, after.orders - before.orders, skipped


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def engine(tmp: Path) -> None:
    ages, ticks, orders, skipped = await ticker_lag(tmp / "lag.sqlite3")
    ms = [age * 1000 for age in ages]
    print(
        f"ticker age at the strategy ({LAG_RATE_HZ:,.0f} tickers/s from another process, "
        f"a trade every tick, fsync on): p50 {percentile(ms, 50):.1f} ms, "
        f"p90 {percentile(ms, 90):.1f} ms, p99 {percentile(ms, 99):.1f} ms  "
        f"({ticks} ticks handed over in {LAG_MEASURE_S:.0f} s, {orders} orders, "
        f"{skipped} tickers conflated away)"
    )
    seconds, ticks, orders = await run_bots(tmp / "quiet.sqlite3", 1, 1, 20_000, trade_every=0)
    print(
        f"1 bot, no trades:            {ticks / seconds:10,.0f} ticks/s  "
        f"({ticks} ticks, {seconds:.2f} s)"
    )
    seconds, ticks, orders = await run_bots(tmp / "busy.sqlite3", 1, 1, 2_000, trade_every=1)
    print(
        f"1 bot, a trade every tick:   {ticks / seconds:10,.0f} ticks/s  "
        f"({orders} orders, {2 * orders / seconds:,.0f} journal writes/s, fsync off)"
    )
    seconds, writes, commits = await journal_writes(tmp / "seq.sqlite3", 1, 300)
    print(
        f"journal, fsync on, 1 writer:  {writes / seconds:10,.0f} writes/s  "
        f"({writes} writes, {commits} commits)"
    )
    seconds, writes, commits = await journal_writes(tmp / "par.sqlite3", 100, 30)
    print(
        f"journal, fsync on, 100 writers: {writes / seconds:8,.0f} writes/s  "
        f"({writes} writes, {commits} commits: group commit)"
    )
    for n_bots, per_symbol in ((100, 500), (1000, 100)):
        try:
            seconds, ticks, orders = await run_bots(
                tmp / f"many{n_bots}.sqlite3", n_bots, 10, per_symbol, 10
            )
        except trio.TooSlowError:
            print(f"{n_bots:4d} bots on 10 symbols:     did not finish in {ENGINE_LIMIT_S:.0f} s")
            continue
        print(
            f"{n_bots:4d} bots on 10 symbols:     {ticks / seconds:10,.0f} bot-ticks/s  "
            f"({ticks} bot-ticks, {orders} orders, {seconds:.2f} s; a trade every 10th tick)"
        )


# --- the run --------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)


def med(values: Sequence[float], fmt: str) -> str:
    return format(statistics.median(values), fmt) if values else "-"


def ratio(top: Sequence[float], bottom: Sequence[float]) -> str:
    if not top or not bottom:
        return "-"
    return f"{statistics.median(top) / statistics.median(bottom):.2f}"


def spawn_row(label: str, runs: list[Spawn], baseline: list[Spawn]) -> list[str]:
    return [
        label,
        med([s.total_s for s in runs], ".1f"),
        med([s.slowest_s * 1000 for s in runs], ".0f"),
        med([s.stop_s for s in runs], ".1f"),
        ratio([s.total_s for s in runs], [s.total_s for s in baseline]),
    ]


def latency_row(label: str, runs: list[Latency]) -> list[str]:
    if not runs:
        return [label] + ["-"] * 11
    per = sorted(runs, key=lambda r: r.p99_ms)[len(runs) // 2].per_subscriber
    return [
        label,
        med([r.p50_ms for r in runs], ".1f"),
        med([r.p99_ms for r in runs], ".1f"),
        med([r.max_ms for r in runs], ".1f"),
        med([r.worst_subscriber_p99_ms for r in runs], ".1f"),
        f"{per[0]}/{per[1]}/{per[2]}",
        med([r.published_per_s for r in runs], ",.0f"),
        med([r.decisions_per_s for r in runs], ",.0f"),
        med([r.cpu_share for r in runs], ".0%"),
        str(sum(r.full_collections for r in runs)),
        str(sum(r.undecided for r in runs)),
        f"{sum(r.samples for r in runs):,}",
    ]


@attrs.define
class Results:
    quiet: list[Spawn] = attrs.Factory(list)
    busy: list[Spawn] = attrs.Factory(list)
    bots: list[Latency] = attrs.Factory(list)
    bare: list[Latency] = attrs.Factory(list)


async def repetition(
    args: argparse.Namespace,
    rep: int,
    where: Path,
    urls: tuple[str, str],
    symbols: Sequence[str],
    results: Results,
) -> None:
    """One of each phase; odd repetitions run them in reverse order."""
    busy_url, quiet_url = urls
    tag = f"  rep {rep + 1}:"

    async def quiet() -> None:
        (where / "quiet").mkdir(parents=True)
        s = await spawn_phase(quiet_url, where / "quiet", args.bots, symbols)
        results.quiet.append(s)
        print(
            f"{tag} spawn, quiet feed {s.total_s:.1f} s (slowest {s.slowest_s * 1000:.0f} ms), "
            f"stop {s.stop_s:.1f} s",
            flush=True,
        )

    async def bots() -> None:
        (where / "bots").mkdir(parents=True)
        s, r = await bots_phase(
            busy_url, where / "bots", args.bots, symbols, args.warmup, args.measure
        )
        results.busy.append(s)
        results.bots.append(r)
        print(
            f"{tag} spawn, busy feed {s.total_s:.1f} s (slowest {s.slowest_s * 1000:.0f} ms), "
            f"stop {s.stop_s:.1f} s; bots p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
            f"max {r.max_ms:.0f} ms, CPU {r.cpu_share:.0%}",
            flush=True,
        )

    async def bare() -> None:
        (where / "bare").mkdir(parents=True)
        r = await bare_phase(
            busy_url, where / "bare", args.bots, symbols, args.warmup, args.measure
        )
        results.bare.append(r)
        print(
            f"{tag} bare subscribers p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
            f"max {r.max_ms:.0f} ms, CPU {r.cpu_share:.0%}",
            flush=True,
        )

    phases = [quiet, bots, bare]
    if rep % 2:
        phases.reverse()
    for phase in phases:
        try:
            await phase()
        except trio.TooSlowError:
            print(f"{tag} {phase.__name__} did not finish in {LIMIT.seconds:g} s", flush=True)


async def plane(args: argparse.Namespace, tmp: Path) -> Results:
    symbols = [f"{base}/USDT" for base in SYMBOLS[: args.symbols]]
    results = Results()
    async with (
        simulator_process(symbols, args.rate / len(symbols)) as busy_url,
        simulator_process(symbols, QUIET_RATE_HZ) as quiet_url,
    ):
        for rep in range(args.reps):
            urls = (busy_url, quiet_url)
            await repetition(args, rep, tmp / f"rep{rep}", urls, symbols, results)
    return results


def report(args: argparse.Namespace, results: Results) -> None:
    print(
        f"\nSpawning {args.bots} bots one after the other (await system.spawn_bot), "
        f"median of {args.reps}:"
    )
    rows = [
        spawn_row(f"quiet feed ({QUIET_RATE_HZ:g} msg/s per stream)", results.quiet, results.quiet),
        spawn_row(f"busy feed ({args.rate:,.0f} msg/s)", results.busy, results.quiet),
    ]
    print(table(["", "spawn s", "slowest spawn ms", "stop s", "vs quiet"], rows))
    print(
        f"\nTicker publish -> decision on it or a newer one, for every (ticker, subscriber) "
        f"pair; {args.bots} subscribers, {args.measure:g} s per run, median of {args.reps}:"
    )
    rows = [latency_row("bare subscribers", results.bare), latency_row("bots", results.bots)]
    rows.append(
        [
            "bots / bare",
            ratio([r.p50_ms for r in results.bots], [r.p50_ms for r in results.bare]),
            ratio([r.p99_ms for r in results.bots], [r.p99_ms for r in results.bare]),
            ratio([r.max_ms for r in results.bots], [r.max_ms for r in results.bare]),
            *[""] * 8,
        ]
    )
    header = ["", "p50 ms", "p99 ms", "max ms", "worst sub p99", "decisions/sub min/med/max"]
    header += ["tickers/s", "decisions/s", "CPU", "gen2 GCs", "undecided", "samples"]
    print(table(header, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000, help="bots (and bare subscribers)")
    parser.add_argument("--symbols", type=int, default=10, choices=range(1, len(SYMBOLS) + 1))
    parser.add_argument("--rate", type=float, default=2000.0, help="tickers/s, all symbols")
    parser.add_argument("--reps", type=int, default=2, help="interleaved repetitions (0: none)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--measure", type=float, default=5.0, help="seconds measured")
    parser.add_argument("--limit", type=float, default=LIMIT.seconds, help="seconds per phase")
    parser.add_argument("--engine", action="store_true", help="also the engine on its own")
    args = parser.parse_args()
    LIMIT.seconds = args.limit
    logger.remove()

    async def run() -> Results:
        with tempfile.TemporaryDirectory() as tmp:
            if args.engine:
                print("Bot engine on its own (paper executor, SQLite journal):")
                await engine(Path(tmp))
                print()
            return await plane(args, Path(tmp)) if args.reps else Results()

    started = time.perf_counter()
    print(f"machine before: {machine()}")
    print(
        f"{args.bots} bots on {args.symbols} symbols; Binance simulator in a child process, "
        f"{args.rate:,.0f} msg/s in all; open_supervisor, journal fsync on; "
        f"{args.reps} interleaved repetitions\n",
        flush=True,
    )
    results = trio.run(run)
    print(f"\nmachine after: {machine()}")
    if args.reps:
        report(args, results)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    print(json.dumps(attrs.asdict(results)))


if __name__ == "__main__":
    main()
