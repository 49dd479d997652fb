"""SIGTERM at random points never leaves an order journaled as an intent without an outcome.

The daemon's own ``main`` runs in this process against a local Binance, with one bot trading on
every tick; a real SIGTERM (``os.kill`` of this process, caught by the daemon's signal receiver)
stops it at a random moment, twenty times on the same journal (fifty with
``BCF_TEST_SIGTERM_STOPS=50``: each stop is a daemon start and up to 0.25 s of trading, some
0.3 s). After each stop the journal must hold every order with its outcome: a stop that cut the
bot between "intent durable" and "outcome durable" would leave an order whose fate a live venue
would have to be asked about. Real time, bounded by ``fail_after``; the delays are seeded.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

import trio
from loguru import logger

from actors.journal.store import JournalStore
from actors.simulator import open_exchange_server
from supervisor.config import (
    BotConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
    RiskConfig,
)
from supervisor.daemon import main

STOPS = int(os.environ.get("BCF_TEST_SIGTERM_STOPS", "20"))


def journaled_orders(path: Path) -> list[Any]:
    store = JournalStore(path)
    store.open()
    try:
        return list(store.orders("b1"))
    finally:
        store.close()


async def run_daemon(config: Config, codes: list[int]) -> None:
    codes.append(await main(config, status_interval_s=None))


async def test_sigterm_at_random_points_leaves_no_intent_without_an_outcome(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    rng = random.Random(10)
    started: list[trio.Event] = []

    def on_record(message: Any) -> None:
        if message.record["message"] == "bot started" and started:
            started[-1].set()

    sink = logger.add(on_record, level="INFO")
    try:
        with trio.fail_after(150):
            async with open_exchange_server("binance", ("BTC/USDT",), rate_hz=200.0) as server:
                config = Config(
                    exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                    bots=(
                        BotConfig(
                            id="b1",
                            exchange="sim",
                            symbol="BTC/USDT",
                            strategy="tests.bots.strategies:Churn",
                            order_quote=10,
                            risk=RiskConfig(max_orders_per_minute=1_000_000),
                        ),
                    ),
                    journal=JournalConfig(path=str(path), fsync=True),
                    http=HttpConfig(enabled=False),
                )
                stopped_with_orders = 0
                for _ in range(STOPS):
                    started.append(trio.Event())
                    before = len(journaled_orders(path)) if path.exists() else 0
                    codes: list[int] = []

                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(run_daemon, config, codes)
                        await started[-1].wait()
                        await trio.sleep(rng.uniform(0.0, 0.25))
                        if not codes:  # the daemon's signal receiver is still installed
                            os.kill(os.getpid(), signal.SIGTERM)
                    assert codes == [0]
                    orders = journaled_orders(path)
                    unresolved = [o.intent.client_id for o in orders if o.status == "intent"]
                    assert unresolved == [], f"stop {len(started)}: {unresolved}"
                    stopped_with_orders += len(orders) > before
    finally:
        logger.remove(sink)
    assert stopped_with_orders >= STOPS // 2  # the stops did land while the bot was trading
