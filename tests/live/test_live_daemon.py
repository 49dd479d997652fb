"""A live account in the whole daemon (``open_supervisor``): market data from the local Binance
server, orders on the local venue attached to it, and the operator's halt over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from prometheus_client import generate_latest

from actors.bots.config import BotConfig, RiskConfig
from actors.simulator import BinanceVenue, open_binance_venue, open_exchange_server
from supervisor.config import (
    AccountConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
)
from supervisor.daemon import metrics_registry
from supervisor.http import ServerAddress, run_http_server
from supervisor.system import System, open_supervisor

TOKEN = "t0ken-for-tests"
TOKEN_ENV = "BOTCRIPTOFY_TEST_TOKEN"


def live_config(tmp_path: Path, ws_url: str, venue: BinanceVenue, **bot: Any) -> Config:
    return Config(
        exchanges=(ExchangeConfig(name="sim", protocol="binance", url=ws_url),),
        accounts=(
            AccountConfig(
                name="main",
                api_key_env="TEST_VENUE_KEY",
                api_secret_env="TEST_VENUE_SECRET",
                rest_url=venue.rest_url,
                ws_api_url=venue.ws_api_url,
            ),
        ),
        bots=(
            BotConfig(
                id="rester",
                exchange="sim",
                symbol="BTC/USDT",
                strategy="tests.bots.strategies:LimitOnce",
                params={"offset": "500"},
                mode="live",
                account="main",
                order_quote=Decimal("200"),
                risk=RiskConfig(price_confirm_ticks=1, max_tick_move_pct=20.0),
                **bot,
            ),
        ),
        journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
        http=HttpConfig(port=0, token_env=TOKEN_ENV),
    )


@asynccontextmanager
async def daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[System, BinanceVenue, httpx.AsyncClient]]:
    async with (
        open_exchange_server("binance", ("BTC/USDT",), seed=7, rate_hz=10.0) as server,
        open_binance_venue(("BTC/USDT",), market_server=server) as venue,
    ):
        monkeypatch.setenv("TEST_VENUE_KEY", venue.api_key)
        monkeypatch.setenv("TEST_VENUE_SECRET", venue.secret)
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        config = live_config(tmp_path, server.ws_url, venue)
        async with open_supervisor(config) as system, trio.open_nursery() as nursery:
            address = await nursery.start(
                run_http_server, config.http, system, metrics_registry(system)
            )
            assert isinstance(address, ServerAddress)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=address.url, headers=headers) as client:
                yield system, venue, client
            nursery.cancel_scope.cancel(reason="test done")


async def test_the_operator_halt_cancels_live_orders_and_stops_trading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(30):
        async with daemon(tmp_path, monkeypatch) as (system, venue, client):
            await venue.wait_for(lambda v: any(o.status == "NEW" for o in v.orders()))
            (order,) = venue.orders()
            assert order.client_order_id == "bcf_rester_1"
            health = (await client.get("/health")).json()
            account = health["accounts"]["main"]
            assert account["healthy"] is True
            assert (account["user_stream"], account["working_orders"]) == ("up", 1)
            assert account["reconciliation"]["baseline_recorded"] is True

            response = await client.post("/control/halt")
            assert response.status_code == 200
            body = response.json()
            assert body["action"] == "halted"
            assert body["bots"] == ["rester"]
            assert body["accounts"] == {"main": 1}
            await venue.wait_for(lambda v: v.order("bcf_rester_1").status == "CANCELED")
            bot = system.bot("rester")
            while (await system.journal.orders("rester"))[0].status != "cancelled":
                await bot.wait_processed(bot.statistics().events + 1)
            assert bot.statistics().state == "paused"

            health = await client.get("/health")
            assert health.status_code == 503  # a halted account does not vouch for itself
            assert health.json()["accounts"]["main"]["halted"].startswith("halted by the operator")
            metrics = generate_latest(metrics_registry(system)).decode()
            assert 'botcriptofy_account_halted{account="main"} 1.0' in metrics
            assert 'botcriptofy_account_orders_sent_total{account="main"} 1.0' in metrics

            # The halt is journaled, so a restart stays halted; resume-trading lifts it.
            state = await system.journal.load_state("account:main")
            assert state["halted"].startswith("halted by the operator")
            assert (await client.post("/control/resume-trading")).json()["accounts"] == ["main"]
            assert system.health()["accounts"]["main"]["halted"] is None
            assert "halted" not in await system.journal.load_state("account:main")
            assert (
                await client.post("/control/halt", headers={"Authorization": "x"})
            ).status_code == 401
