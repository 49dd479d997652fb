"""The embedded API in-process: ``open_supervisor`` in the test's own Trio loop, against a
local Binance server in the same loop, no subprocess and no HTTP.

Clock: the ``thread_clock`` fixture (``tests/clocks.py``): every peer is a Trio task in this loop
except the journal, whose SQLite calls run in a worker thread, and virtual time must not jump
while one works.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from actors.errors import ConfigError
from actors.messages import Ticker
from actors.simulator import open_exchange_server
from supervisor.config import Config, ExchangeConfig, HttpConfig, JournalConfig
from supervisor.system import open_supervisor

BOT_ID = "embedded-buyer"


def buyer_spec() -> dict[str, Any]:
    """Threshold far above the market: buys on its first tick, then holds (nothing sells)."""
    return {
        "id": BOT_ID,
        "exchange": "sim",
        "symbol": "BTC/USDT",
        "strategy": "threshold",
        "params": {"buy_below": "10000000"},
        "order_quote": "250",
    }


async def test_open_supervisor_streams_spawns_a_trading_bot_and_stops_it(
    tmp_path: Path, thread_clock: MockClock
) -> None:
    with trio.fail_after(60):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=21, rate_hz=10.0) as server:
            config = Config(
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
            )
            async with open_supervisor(config) as sup:
                tickers: list[Ticker] = []
                async with sup.subscribe("sim", "ticker", "BTC/USDT") as events:
                    async for event in events:
                        if isinstance(event, Ticker):
                            tickers.append(event)
                            if len(tickers) == 3:
                                break
                assert {(t.exchange, t.symbol, t.source) for t in tickers} == {
                    ("sim", "BTC/USDT", "ws")
                }
                assert all(0 < t.bid < t.ask for t in tickers)
                assert server.statistics().frames_sent >= 2  # they came over the socket

                assert await sup.spawn_bot(buyer_spec()) == BOT_ID
                bot = sup.bot(BOT_ID)
                while bot.statistics().fills < 1:
                    await bot.wait_processed(bot.statistics().events + 1)
                traded = bot.statistics()
                assert (traded.orders, traded.fills, traded.open_positions) == (1, 1, 1)
                assert traded.position_size > 0
                assert traded.quote_balance < Decimal("10000")
                (order,) = await sup.journal.orders(BOT_ID)
                assert (order.intent.client_id, order.status) == (f"{BOT_ID}-1", "filled")
                assert sup.health()["bots"][BOT_ID]["position"] == traded.position_size

                with pytest.raises(ConfigError) as duplicate:
                    await sup.spawn_bot(buyer_spec())
                assert list(duplicate.value.problems) == [
                    f"bot.id: a bot with id {BOT_ID!r} is already running"
                ]
                with pytest.raises(ConfigError) as bad:
                    await sup.spawn_bot(
                        {
                            "id": "has space",
                            "exchange": "sim",
                            "symbol": "btc-usdt",
                            "order_quote": "-5",
                            "risk": {"stop_loss_pct": 0},
                        }
                    )
                paths = sorted(p.partition(":")[0] for p in bad.value.problems)
                assert paths == [
                    "bot.id",
                    "bot.order_quote",
                    "bot.risk.stop_loss_pct",
                    "bot.symbol",
                ], bad.value.problems
                assert sup.bot_ids == (BOT_ID,)  # the failed spawns left nothing behind

                await sup.stop_bot(BOT_ID)
                assert sup.bot_ids == ()
                assert BOT_ID not in sup.health()["bots"]
                with pytest.raises(KeyError):
                    sup.bot(BOT_ID)
                with pytest.raises(KeyError):
                    await sup.stop_bot(BOT_ID)

                # The journal kept its state: spawned again, the bot resumes holding the same
                # position (and, not flat, buys nothing more).
                await sup.spawn_bot(buyer_spec())
                resumed = sup.bot(BOT_ID).statistics()
                assert (resumed.position_size, resumed.quote_balance, resumed.orders) == (
                    traded.position_size,
                    traded.quote_balance,
                    1,
                )
                assert resumed.next_client_id == f"{BOT_ID}-2"
                await sup.stop_bot(BOT_ID)
