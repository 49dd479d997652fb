"""Embedded use: the supervisor inside your own Trio program.

    python docs/examples/embedded.py

Starts a local simulated Binance exchange, opens the supervisor on a config built in code,
prints a few normalized tickers, runs a paper bot with the example strategy in
``breakout.py`` (next to this file, so importable by dotted path), and stops after a few
seconds. Nothing leaves 127.0.0.1; the journal goes to a temporary directory.
"""

from __future__ import annotations

import tempfile

import trio

from actors.messages import Ticker
from actors.simulator import open_exchange_server
from supervisor import Config, configure_logging, open_supervisor
from supervisor.config import ExchangeConfig, JournalConfig

BOT_RUN_S = 3.0


async def main(journal_dir: str) -> None:
    async with open_exchange_server("binance", ("BTC/USDT", "ETH/USDT"), rate_hz=20.0) as server:
        config = Config(
            plugins=("breakout",),  # a spawned bot may use the strategy in breakout.py
            exchanges=(ExchangeConfig(name="binance", url=server.ws_url),),
            journal=JournalConfig(path=f"{journal_dir}/journal.sqlite3", fsync=False),
        )
        async with open_supervisor(config) as sup:
            # Read normalized events directly: Ticker, Trade, FeedState or Lagged.
            async with sup.subscribe("binance", "ticker", "BTC/USDT") as events:
                printed = 0
                async for event in events:
                    if isinstance(event, Ticker):
                        print(f"ticker {event.symbol} bid={event.bid} ask={event.ask}")
                        printed += 1
                        if printed == 5:
                            break

            # A bot takes the keys of a [[bots]] table (or a supervisor.config.BotConfig).
            bot_id = await sup.spawn_bot(
                {
                    "id": "eth-breakout",
                    "exchange": "binance",
                    "symbol": "ETH/USDT",
                    "strategy": "breakout:Breakout",
                    "params": {"window": 10},
                    "order_quote": "250",
                    "risk": {"stop_loss_pct": 0.5},
                }
            )
            await trio.sleep(BOT_RUN_S)
            stats = sup.bot(bot_id).statistics()
            print(
                f"bot {bot_id}: {stats.state}, {stats.ticks} ticks, {stats.orders} orders,"
                f" position {stats.position_size}, realized {stats.realized_pnl:+.4f} USDT,"
                f" last action {stats.last_action!r}"
            )
            await sup.stop_bot(bot_id)


if __name__ == "__main__":
    configure_logging(level="WARNING")  # only the entry point configures log sinks
    with tempfile.TemporaryDirectory() as journal_dir:
        trio.run(main, journal_dir)
