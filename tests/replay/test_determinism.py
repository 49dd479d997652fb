"""Same data, same config: the same journal, row for row (issue 14's determinism test).

Through the real path: events written by the recorder's writer (Parquet), read back by
``actors.recording.reader``, replayed through ``ReplayFeed`` into real ``Bot``s with the paper
executor and the real SQLite journal, by ``run_backtest``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.backtest.runner import backtest_problems, run_backtest
from supervisor.config_loader import parse_config
from tests.replay.helpers import START_TS, dump_journal, market, record

CONFIG = """
[[exchanges]]
name = "binance"

[[bots]]
id = "sma"
exchange = "binance"
symbol = "BTC/USDT"
strategy = "sma_cross"
params = { fast = 3, slow = 8 }
order_quote = "300"
risk = { max_orders_per_minute = 4, trailing_stop_pct = 0.3 }
paper = { fee_pct = "0.1", slippage_pct = "0.05" }

[[bots]]
id = "rsi"
exchange = "binance"
symbol = "BTC/USDT"
strategy = "rsi_reversion"
risk = { stop_loss_pct = 0.2, take_profit_pct = 0.4 }

[[bots]]
id = "follower"
exchange = "binance"
symbol = "BTC/USDT"
strategy = "tests.replay.strategies:TradeFollower"

[[bots]]
id = "eth"
exchange = "binance"
symbol = "ETH/USDT"
strategy = "threshold"
params = { buy_below = "3000", sell_above = "3050" }
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    eth = market(400, symbol="ETH/USDT", start=START_TS + 0.25, base=3000, swing=25)
    return record(tmp_path_factory.mktemp("data"), market(400) + eth)


def test_two_replays_write_identical_journals(data: Path, tmp_path: Path) -> None:
    config = parse_config(CONFIG)
    assert backtest_problems(config, data) == []
    first = run_backtest(config, data, tmp_path / "one")
    second = run_backtest(config, data, tmp_path / "two")
    one, two = dump_journal(first.journal), dump_journal(second.journal)
    assert one == two
    # Not trivially equal: every bot traded, on both markets, with exits and refusals.
    traded = {row.split("|")[1] for row in one["orders"]}
    assert traded == {"'sma'", "'rsi'", "'follower'", "'eth'"}
    assert len(one["fills"]) >= 20
    assert one["refusals"]  # sma's order rate limit
    assert first.statistics == second.statistics
    # 400 tickers and 134 trades per market, all read; ETH's trades no bot subscribed to.
    assert (first.statistics.events, first.statistics.published) == (1068, 1068 - 134)
    assert first.prices == second.prices


def test_a_paced_replay_writes_the_same_journal(data: Path, tmp_path: Path) -> None:
    """--speed changes the duration only: 400 s of data at 20,000x is 20 ms."""
    config = parse_config(CONFIG)
    fast = run_backtest(config, data, tmp_path / "fast", start=START_TS + 100)
    paced = run_backtest(config, data, tmp_path / "paced", start=START_TS + 100, speed=20_000)
    assert dump_journal(fast.journal) == dump_journal(paced.journal)
    assert fast.statistics.first_ts == START_TS + 100
