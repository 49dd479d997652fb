"""A real daemon in the test's own Trio loop, for the read API, OpenAPI and dashboard tests.

A local Binance simulator, ``open_supervisor`` with a paper bot that trades on every tick
(``tests.bots.strategies:Churn``), and ``run_http_server`` on 127.0.0.1:0: the same pieces
``python run.py`` composes, reached over real sockets. Nothing here stands in for our code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import attrs
import trio

from actors.simulator import open_exchange_server
from supervisor.config import (
    BotConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
    RiskConfig,
)
from supervisor.daemon import metrics_registry
from supervisor.http import ServerAddress, run_http_server
from supervisor.system import System, open_supervisor

BOT = "churn"
EXCHANGE = "sim"
SYMBOL = "BTC/USDT"
TOKEN_ENV = "BOTCRIPTOFY_TEST_SERVED_TOKEN"
TOKEN = "served-t0k3n-for-tests-only"


def churn_bot(bot_id: str = BOT) -> BotConfig:
    """Buys when flat, closes when holding: a new order on every accepted tick."""
    return BotConfig(
        id=bot_id,
        exchange=EXCHANGE,
        symbol=SYMBOL,
        strategy="tests.bots.strategies:Churn",
        order_quote=Decimal("100"),
        risk=RiskConfig(max_orders_per_minute=1000),
    )


@attrs.frozen
class Served:
    system: System
    url: str


@asynccontextmanager
async def serving_system(
    journal: Path, *, bots: tuple[BotConfig, ...] = (churn_bot(),), rate_hz: float = 20.0
) -> AsyncIterator[Served]:
    """The daemon until the block ends; control is enabled if ``TOKEN_ENV`` is set."""
    async with open_exchange_server("binance", (SYMBOL,), seed=7, rate_hz=rate_hz) as server:
        config = Config(
            exchanges=(ExchangeConfig(name=EXCHANGE, protocol="binance", url=server.ws_url),),
            bots=bots,
            journal=JournalConfig(path=str(journal), fsync=False),
            http=HttpConfig(port=0, token_env=TOKEN_ENV),
        )
        async with open_supervisor(config) as system, trio.open_nursery() as nursery:
            address = await nursery.start(
                run_http_server, config.http, system, metrics_registry(system)
            )
            assert isinstance(address, ServerAddress)
            try:
                yield Served(system, address.url)
            finally:
                nursery.cancel_scope.cancel(reason="test done")


async def wait_for_fills(system: System, bot_id: str, count: int) -> None:
    """Until the bot has booked ``count`` fills (woken by its own progress, no polling)."""
    bot = system.bot(bot_id)
    while bot.statistics().fills < count:
        await bot.wait_processed(bot.statistics().events + 1)
