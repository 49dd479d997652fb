"""One backtest: a config's bots replayed on recorded data into a fresh journal and a report.

``run_backtest`` is synchronous (it owns its ``trio.run``): the grid runs one per process.

Decisions:

* **The trading path is the live one.** Each configured bot is an ``actors.bots.Bot`` with the
  paper executor (its ``[bots.paper]`` fees and slippage), the real journal actor on a fresh
  SQLite file, and a ``ReplayFeed`` reader as its ``subscribe``: only the source of the
  tickers and the clock differ from a paper run of the daemon. Live bots and ``[[accounts]]``
  are refused: a backtest must never reach a venue.
* **Time is the data's** (``actors.replay.ReplayClock``): ``trio.run`` gets a clock that
  stands at the first event's ``received_ts`` and moves with each event, so two runs of the
  same data and config write the same journal (``tests/replay/test_determinism.py``).
* **No supervision tree.** A backtest that crashes should stop with the error, not restart
  the bot from its journal and carry on with a different history; the journal actor and the
  bots run in nurseries of their own, the journal outliving the bots.
* **The journal is not fsynced**: it is rebuilt from the data on every run, and a crash
  loses a backtest, not money.
* **Price samples for the report** are the mid of every replayed ticker of each bot's
  market, thinned to at most ``MAX_PRICE_POINTS`` per market by keeping every k-th sample
  (k doubling as needed), plus the last one: bounded memory however long the data, and the
  same points for the same data.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path

import attrs
import trio

from actors.bots import Bot
from actors.journal import Journal, JournalConfig
from actors.messages import Ticker, Trade
from actors.recording.reader import read_events, recorded_streams
from actors.replay import ReplayClock, ReplayFeed, ReplayStatistics
from supervisor.config import Config

__all__ = [
    "MAX_PRICE_POINTS",
    "BacktestResult",
    "PriceSampler",
    "backtest_problems",
    "parse_time",
    "run_backtest",
]

MAX_PRICE_POINTS = 2000
JOURNAL_NAME = "journal.sqlite3"


def parse_time(text: str, *, end: bool = False) -> float:
    """``--from``/``--to``: an ISO date or datetime, UTC unless it says otherwise. A date alone
    is its 00:00 UTC, except as ``--to`` (``end``): then the whole day is included (the end is
    the next day's 00:00, exclusive). ValueError with what was expected."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            if end:
                moment += dt.timedelta(days=1)
            return moment.timestamp()
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date or datetime (2026-12-01, 2026-12-01T12:30:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def backtest_problems(
    config: Config, data: Path, *, start: float | None = None, end: float | None = None
) -> list[str]:
    """What makes ``config`` unfit to backtest on ``data`` (between ``start`` and ``end``), as
    ``path: message`` lines."""
    problems: list[str] = []
    if not config.bots:
        problems.append("bots: a backtest needs at least one [[bots]] entry")
    if config.accounts:
        problems.append(
            "accounts: a backtest trades no live account; remove [[accounts]] (each bot"
            " backtests with its [bots.paper] fees and slippage)"
        )
    if not data.is_dir():
        return [*problems, f"--data {data}: not a directory"]
    recorded = recorded_streams(data)
    tickers = {(exchange, symbol) for exchange, kind, symbol in recorded if kind == "ticker"}
    for i, bot in enumerate(config.bots):
        if bot.mode == "live":
            problems.append(
                f'bots[{i}].mode: a backtest runs paper bots; {bot.id!r} is "live" (set'
                ' mode = "paper" to backtest it)'
            )
        if (bot.exchange, bot.symbol) not in tickers:
            have = ", ".join(f"{e} {s}" for e, s in sorted(tickers)) or "none"
            problems.append(
                f"bots[{i}]: no recorded tickers for {bot.exchange} {bot.symbol} in {data}"
                f" (recorded tickers: {have})"
            )
        elif (start is not None or end is not None) and _first_ticker(
            data, bot.exchange, {bot.symbol}, start, end
        ) is None:
            problems.append(
                f"bots[{i}]: no recorded ticker of {bot.exchange} {bot.symbol} between"
                f" {_iso(start, 'the start')} and {_iso(end, 'the end')} (--from/--to)"
            )
    return problems


def _first_ticker(
    data: Path, exchange: str | None, symbols: set[str], start: float | None, end: float | None
) -> Ticker | Trade | None:
    events = read_events(
        data, exchange=exchange, symbols=symbols, kinds=("ticker",), start=start, end=end
    )
    return next(iter(events), None)


def _iso(ts: float | None, missing: str) -> str:
    if ts is None:
        return missing
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


@attrs.define
class PriceSampler:
    """Every ``stride``-th mid of each market, at most ``limit`` per market (see the module
    docstring); ``samples()`` adds each market's last mid."""

    markets: frozenset[tuple[str, str]]
    limit: int = MAX_PRICE_POINTS
    _kept: dict[tuple[str, str], list[tuple[float, Decimal]]] = attrs.field(factory=dict)
    _stride: dict[tuple[str, str], int] = attrs.field(factory=dict)
    _seen: dict[tuple[str, str], int] = attrs.field(factory=dict)
    _last: dict[tuple[str, str], tuple[float, Decimal]] = attrs.field(factory=dict)

    def __call__(self, event: Ticker | Trade) -> None:
        if type(event) is not Ticker:
            return
        key = (event.exchange, event.symbol)
        if key not in self.markets:
            return
        sample = (event.received_ts, (event.bid + event.ask) / 2)
        self._last[key] = sample
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        stride = self._stride.setdefault(key, 1)
        if seen % stride:
            return
        kept = self._kept.setdefault(key, [])
        kept.append(sample)
        if len(kept) >= self.limit:
            del kept[1::2]  # keeps the samples at multiples of the doubled stride
            self._stride[key] = stride * 2

    def samples(self) -> dict[tuple[str, str], list[tuple[float, Decimal]]]:
        out = {}
        for key, kept in self._kept.items():
            points = list(kept)
            if self._last[key] is not points[-1]:
                points.append(self._last[key])
            out[key] = points
        return out


@attrs.frozen
class BacktestResult:
    out: Path
    journal: Path
    statistics: ReplayStatistics
    prices: Mapping[tuple[str, str], list[tuple[float, Decimal]]]


def fresh_journal(out: Path) -> Path:
    """``out/journal.sqlite3``, removed first if there (with its WAL files): a backtest's
    journal holds that backtest only."""
    out.mkdir(parents=True, exist_ok=True)
    journal = out / JOURNAL_NAME
    for suffix in ("", "-wal", "-shm", ".lock"):
        try:
            os.remove(f"{journal}{suffix}")
        except FileNotFoundError:
            pass
    return journal


def run_backtest(
    config: Config,
    data: Path,
    out: Path,
    *,
    start: float | None = None,
    end: float | None = None,
    speed: float = 0.0,
) -> BacktestResult:
    """Replay ``data`` (``start`` inclusive, ``end`` exclusive, on ``received_ts``) through
    ``config``'s bots into ``out/journal.sqlite3``. The caller has checked
    ``backtest_problems``. ValueError when the bots' markets have no data in the range."""
    markets = frozenset((bot.exchange, bot.symbol) for bot in config.bots)
    symbols = {symbol for _, symbol in markets}
    first = _first_ticker(data, None, symbols, start, end)
    if first is None:
        raise ValueError(f"--data {data}: no ticker of the bots' markets in the chosen time range")
    journal = fresh_journal(out)
    sampler = PriceSampler(markets)

    def events(streams: Iterable[tuple[str, str, str]]) -> Iterator[Ticker | Trade]:
        kinds = {kind for _, kind, _ in streams}
        return read_events(data, symbols=symbols, kinds=kinds, start=start, end=end)

    statistics = trio.run(
        _replay, config, journal, events, speed, sampler, clock=ReplayClock(first.received_ts)
    )
    return BacktestResult(out, journal, statistics, sampler.samples())


async def _replay(
    config: Config,
    journal_path: Path,
    events: Callable[[Iterable[tuple[str, str, str]]], Iterator[Ticker | Trade]],
    speed: float,
    sampler: PriceSampler,
) -> ReplayStatistics:
    clock = trio.lowlevel.current_clock()
    assert isinstance(clock, ReplayClock)
    journal = Journal(JournalConfig(path=str(journal_path), fsync=False))
    feed = ReplayFeed()
    async with trio.open_nursery() as outer:
        await outer.start(journal.run)
        async with trio.open_nursery() as bots:
            for i, bot_config in enumerate(config.bots):
                reader = feed.reader()
                bot = Bot(
                    bot_config,
                    reader.subscribe,
                    journal,
                    wall_clock=clock.current_time,
                    config_path=f"bots[{i}]",
                )
                reader.bind(bot)
                await bots.start(bot.run)
            statistics = await feed.run(events(feed.streams()), speed=speed, observe=sampler)
            bots.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    return statistics
