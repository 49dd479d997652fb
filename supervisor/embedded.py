"""The embedded default run by ``python run.py`` with no arguments.

Local exchange servers on 127.0.0.1 (ephemeral ports) speaking the real Binance and Kraken (v2)
protocols, with their REST tickers as fallback, and three paper bots with different strategies
on them. The journal lives in ``data/default/`` under the working directory, so a restart there
resumes the same bots' positions. Nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import attrs
import trio
from loguru import logger

from actors.simulator import open_exchange_server
from supervisor.config import (
    BackoffPolicy,
    BotConfig,
    Config,
    ExchangeConfig,
    JournalConfig,
    RiskConfig,
)
from supervisor.otp.spec import ChildSpec, SupervisorSpec
from supervisor.otp.tree import open_supervisor_tree

DEFAULT_JOURNAL = "data/default/journal.sqlite3"
RATE_HZ = 4.0  # events per second per stream: lively but readable


def default_config(
    binance_ws: str,
    binance_rest: str,
    kraken_ws: str,
    kraken_rest: str,
    *,
    journal_path: str = DEFAULT_JOURNAL,
) -> Config:
    exchanges = (
        ExchangeConfig(
            name="binance",
            url=binance_ws,
            rest_url=binance_rest,
            fallback="rest",
            stale_after_s=5.0,
        ),
        ExchangeConfig(
            name="kraken", url=kraken_ws, rest_url=kraken_rest, fallback="rest", stale_after_s=5.0
        ),
    )
    # Sized for the simulator's walk (about 1 bp per step, RATE_HZ steps a second, so some 15 bp
    # in a minute): averages over 7.5 s to 30 s of ticks cross two or three times a minute, and
    # exits a few tenths of a percent away fire now and then. A crossover's whipsaws come in
    # bursts (up to ~10 orders in a minute over hours of the seeded paths), so the rate limit
    # sits above that and still stops a runaway strategy (an order a tick is 240 a minute).
    guarded = RiskConfig(
        stop_loss_pct=0.2, take_profit_pct=0.3, max_tick_move_pct=2.0, max_orders_per_minute=20
    )
    bots = (
        BotConfig(
            id="btc-sma",
            exchange="binance",
            symbol="BTC/USDT",
            strategy="sma_cross",
            params={"fast": 25, "slow": 120},
            order_quote=Decimal("500"),
            risk=guarded,
        ),
        BotConfig(
            id="eth-rsi",
            exchange="binance",
            symbol="ETH/USDT",
            strategy="rsi_reversion",
            params={"period": 28},
            order_quote=Decimal("300"),
            risk=guarded,
        ),
        BotConfig(
            id="kraken-sma",
            exchange="kraken",
            symbol="BTC/USD",
            strategy="sma_cross",
            params={"fast": 25, "slow": 100},
            order_quote=Decimal("250"),
            risk=RiskConfig(
                trailing_stop_pct=0.15, max_tick_move_pct=2.0, max_orders_per_minute=20
            ),
        ),
    )
    return Config(
        exchanges=exchanges,
        bots=bots,
        backoff=BackoffPolicy(initial_s=0.2, max_s=5.0),
        journal=JournalConfig(path=journal_path),
    )


@attrs.define(eq=False)
class LocalExchanges:
    """The local exchange servers as one supervised child; ``config`` is set once they listen
    (their ports are ephemeral, so the config can only be written then)."""

    journal_path: str = DEFAULT_JOURNAL
    config: Config | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with (
            open_exchange_server(
                "binance", ("BTC/USDT", "ETH/USDT"), seed=1, rate_hz=RATE_HZ
            ) as binance,
            open_exchange_server(
                "kraken", ("BTC/USD", "ETH/USD"), seed=2, rate_hz=RATE_HZ
            ) as kraken,
        ):
            logger.bind(actor="embedded").info(
                "local exchanges listening", binance=binance.ws_url, kraken=kraken.ws_url
            )
            self.config = default_config(
                binance.ws_url,
                binance.rest_url,
                kraken.ws_url,
                kraken.rest_url,
                journal_path=self.journal_path,
            )
            task_status.started()
            await trio.sleep_forever()


@asynccontextmanager
async def open_embedded_default(*, journal_path: str = DEFAULT_JOURNAL) -> AsyncIterator[Config]:
    """The local exchanges for the block's duration, and the config that trades on them.

    They run as the only child of a supervisor of their own, so they are shielded once
    listening: a Ctrl-C that cancels everything at once still reaches them only after the block
    has ended, i.e. after the daemon has closed its own connections to them. The block never
    sees a feed cut by its exchange going away first."""
    exchanges = LocalExchanges(journal_path)
    spec = SupervisorSpec(
        name="embedded",
        max_restarts=0,
        children=(ChildSpec("local_exchanges", exchanges.run),),
    )
    async with open_supervisor_tree(spec):
        assert exchanges.config is not None  # the child is ready: it has written the config
        yield exchanges.config
