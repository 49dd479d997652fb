"""Live and replay make the same decisions (issue 14's parity test).

Live: bots fed by the local Binance simulator over a real WebSocket, in the daemon's own tree
(``open_supervisor``), while the tree's recorder (``[record]``) records the stream. Replay: the
same bots on that recording (``run_backtest``). Parity, precisely:

* **the same orders**: client order id, side, type, size, limit price, tag, status and reason;
* **the same fills**: order, side, price, size, fee and realized PnL;
* provided the live bots skipped no ticker (the conflation rule, ``actors.replay.feed``): the
  test checks each live bot handled exactly as many tickers as were recorded.

Times differ and are left out: live, a decision is stamped with the wall clock when the bot
took it and orders are rate-limited on the Trio clock; replayed, both are the ticker's
``received_ts``. So the order rate limit is set out of reach here (it would count a different
window live), and the bots are tick-driven (``sma_cross`` with ``bar_s = 0``); a strategy on
wall-clock bars could cut a bar at a different tick.

Clock: the simulator paces its market on the Trio clock, so the test runs on a thread-aware
autojump clock (``tests/clocks.py``) with a short idle threshold: virtual time (the next
simulator step) only moves once every bot, the recorder and the journal's thread are idle,
so no bot is ever handed two tickers at once, and 150 steps take well under a second.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import trio
from trio.testing import MockClock

from actors.bots.config import BotConfig, RiskConfig
from actors.messages import Stream, Ticker
from actors.recording.config import RecordConfig
from actors.recording.reader import read_events
from actors.simulator import open_exchange_server
from supervisor.backtest.runner import backtest_problems, run_backtest
from supervisor.config import Config, ExchangeConfig, HttpConfig, JournalConfig
from supervisor.system import open_supervisor
from tests.clocks import new_thread_clock
from tests.replay.helpers import dump_journal

SYMBOL = "BTC/USDT"
STEPS = 150

ORDER_FIELDS = "client_id, bot_id, side, order_type, size, price, tag, status, status_reason"
FILL_FIELDS = "client_id, side, price, size, fee, realized_pnl"


@pytest.fixture
def quick_thread_clock() -> MockClock:
    return new_thread_clock(autojump_threshold=0.002)


def bots() -> tuple[BotConfig, ...]:
    risk = RiskConfig(max_orders_per_minute=100_000, max_tick_move_pct=50.0)
    return tuple(
        BotConfig(
            id=f"sma{fast}",
            exchange="sim",
            symbol=SYMBOL,
            strategy="sma_cross",
            params={"fast": fast, "slow": slow},
            risk=attrs.evolve(risk, trailing_stop_pct=trail),
        )
        for fast, slow, trail in ((2, 5, None), (3, 9, 0.05))
    )


def decisions(journal: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    import sqlite3

    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        orders = db.execute(f"SELECT {ORDER_FIELDS} FROM orders ORDER BY client_id").fetchall()
        fills = db.execute(f"SELECT {FILL_FIELDS} FROM fills ORDER BY bot_id, fill_id").fetchall()
    finally:
        db.close()
    return orders, fills


async def test_a_replay_of_the_recording_makes_the_live_decisions(
    tmp_path: Path, quick_thread_clock: MockClock
) -> None:
    recording = tmp_path / "recording"
    with trio.fail_after(120):
        async with open_exchange_server("binance", (SYMBOL,), seed=14, rate_hz=0) as server:
            config = Config(
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                journal=JournalConfig(path=str(tmp_path / "live.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
                record=RecordConfig(dir=str(recording), flush_s=0.5),
                bots=bots(),
            )
            async with open_supervisor(config) as sup:
                # Everyone subscribed before the first price: the bots and the recorder see
                # the stream from its start.
                await server.wait_for(
                    lambda s: (
                        s.subscribe_count(Stream("ticker", SYMBOL)) >= 1
                        and s.subscribe_count(Stream("trade", SYMBOL)) >= 1
                    )
                )
                server.set_rate(20.0)
                live = [sup.bot(bot.id) for bot in config.bots]
                while min(bot.statistics().ticks for bot in live) < STEPS:
                    await live[0].wait_processed(live[0].statistics().events + 1)
                server.set_rate(0)
                await trio.sleep(1)  # virtual: what was sent is handled
                live_ticks = {bot.config.id: bot.statistics().ticks for bot in live}

    recorded = [e for e in read_events(recording, kinds=("ticker",)) if isinstance(e, Ticker)]
    assert set(live_ticks.values()) == {len(recorded)}  # no live bot skipped a ticker

    replay_config = attrs.evolve(config, record=None)
    assert backtest_problems(replay_config, recording) == []
    # A replay owns its trio.run (and clock): in a thread, as this test already runs in one.
    result = await trio.to_thread.run_sync(
        run_backtest, replay_config, recording, tmp_path / "replay"
    )
    assert result.statistics.published == len(recorded)

    live_orders, live_fills = decisions(tmp_path / "live.sqlite3")
    replay_orders, replay_fills = decisions(result.journal)
    assert replay_orders == live_orders
    assert replay_fills == live_fills
    assert {order[1] for order in live_orders} == {"sma2", "sma3"}  # both traded
    assert len(live_fills) >= 6
    # And the replay is the recording's, not the live run's clock: same rows, other times.
    assert (
        dump_journal(result.journal)["orders"] != dump_journal(tmp_path / "live.sqlite3")["orders"]
    )
