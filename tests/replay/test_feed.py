"""``ReplayFeed`` and ``ReplayClock``: the conflation rule, virtual time, and misuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from actors.errors import FeedError
from actors.messages import FeedState, Ticker
from actors.replay import ReplayClock, ReplayFeed
from supervisor.backtest.runner import PriceSampler, run_backtest
from supervisor.config_loader import parse_config
from tests.replay.helpers import START_TS, dump_journal, market, record
from tests.replay.strategies import TickLog

CONFIG = """
[[exchanges]]
name = "binance"

[[bots]]
id = "log"
exchange = "binance"
symbol = "BTC/USDT"
strategy = "tests.replay.strategies:TickLog"
"""


def test_a_replayed_bot_sees_every_ticker_at_its_recorded_time(tmp_path: Path) -> None:
    """The conflation rule: replayed, nothing is skipped, and the bot's clocks are the data's
    (trio.current_time() for the order-rate window, the wall clock for price age and the
    UTC day: the bots row is created at the first event's time)."""
    events = market(150)
    data = record(tmp_path / "data", events)
    TickLog.seen.clear()
    result = run_backtest(parse_config(CONFIG), data, tmp_path / "out")
    tickers = [e for e in events if isinstance(e, Ticker)]
    assert [ticker for ticker, _ in TickLog.seen] == tickers
    assert [at for _, at in TickLog.seen] == [t.received_ts for t in tickers]
    assert result.statistics.published == 150  # the trades: no subscriber
    assert dump_journal(result.journal)["bots"] == [f"'log'|'10000'|{START_TS!r}"]


def test_the_window_and_a_restart_of_the_range(tmp_path: Path) -> None:
    """``start`` inclusive, ``end`` exclusive, on received_ts; the clock starts at the first
    ticker in range."""
    data = record(tmp_path / "data", market(100))
    TickLog.seen.clear()
    run_backtest(
        parse_config(CONFIG), data, tmp_path / "out", start=START_TS + 10, end=START_TS + 20
    )
    assert [t.received_ts for t, _ in TickLog.seen] == [START_TS + i for i in range(10, 20)]
    with pytest.raises(ValueError, match="no ticker of the bots' markets"):
        run_backtest(parse_config(CONFIG), data, tmp_path / "none", start=START_TS + 1000)


@pytest.fixture
def replay_clock() -> ReplayClock:
    return ReplayClock(START_TS)  # pytest-trio runs the test on a Clock fixture


async def test_a_stream_starts_live_and_an_observer_may_be_conflated(
    replay_clock: ReplayClock,
) -> None:
    """A plain ``subscribe`` (not a paced reader) is an observer the replay does not wait for:
    like a slow live subscriber, it takes the newest ticker when it looks."""
    feed = ReplayFeed()
    events = [e for e in market(5) if isinstance(e, Ticker)]
    async with feed.subscribe("binance", "ticker", "BTC/USDT") as mailbox:
        state = mailbox.receive_nowait()
        assert isinstance(state, FeedState)
        assert state.state == "live"
        stats = await feed.run(events)
        assert (stats.events, stats.published) == (5, 5)
        assert mailbox.receive_nowait() == events[-1]
        assert mailbox.statistics().skipped == 4
        assert trio.current_time() == events[-1].received_ts
    with pytest.raises(FeedError, match="unknown stream kind 'book'"):
        async with feed.subscribe("binance", "book", "BTC/USDT"):
            pass


async def test_a_replay_needs_the_replay_clock_and_a_bound_reader(
    replay_clock: ReplayClock,
) -> None:
    feed = ReplayFeed()
    async with feed.reader().subscribe("binance", "ticker", "BTC/USDT"):
        with pytest.raises(RuntimeError, match="without a bound consumer"):
            await feed.run([])
    with pytest.raises(ValueError, match="speed must be >= 0"):
        await feed.run([], speed=-1)


def test_the_replay_clock_outside_a_replay() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="clock=ReplayClock"):
            await ReplayFeed().run([])

    trio.run(main)  # the default clock


def test_price_samples_are_thinned_deterministically() -> None:
    sampler = PriceSampler(frozenset({("binance", "BTC/USDT")}), limit=10)
    events = market(95, trade_every=1) + market(5, symbol="ETH/USDT")
    for event in events:
        sampler(event)
    (samples,) = sampler.samples().values()
    tickers = [e for e in events if isinstance(e, Ticker) and e.symbol == "BTC/USDT"]
    # 95 tickers: the stride doubled to 16 (5 kept: 0, 16, ..., 80), then the last one.
    assert [ts for ts, _ in samples] == [
        tickers[i].received_ts for i in (0, 16, 32, 48, 64, 80, 94)
    ]
    assert samples[-1][1] == (tickers[-1].bid + tickers[-1].ask) / 2
