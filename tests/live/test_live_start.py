"""Live bots start at once in the daemon: one bot's recovery of an order in doubt (which waits
for the venue's deadline) does not delay another bot's start.

The whole system as the daemon runs it (``open_supervisor(start=False)``, then
``System.start``) with market data from the local Binance server and orders on the local venue
attached to it; virtual time (``thread_clock``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio

from actors.bots.config import BotConfig
from actors.journal.store import OrderIntent
from actors.simulator import open_binance_venue, open_exchange_server
from supervisor.config import AccountConfig, Config, ExchangeConfig, JournalConfig
from supervisor.system import open_supervisor
from tests.bots.helpers import running_journal
from tests.live.helpers import ORDER_PATH, live_risk, order_posts
from tests.simulator.helpers import fail_after

BUY_ONCE = "tests.bots.strategies:BuyOnce"


def bot(bot_id: str) -> BotConfig:
    return BotConfig(
        id=bot_id,
        exchange="sim",
        symbol="BTC/USDT",
        strategy=BUY_ONCE,
        mode="live",
        account="main",
        order_quote=Decimal("200"),
        risk=live_risk(),
    )


@fail_after(300)
async def test_a_bot_recovering_an_order_in_doubt_does_not_delay_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, thread_clock: trio.abc.Clock
) -> None:
    """``slow`` (first in the config) has an intent the journal never saw the end of and the
    venue never got: its start waits until the venue's deadline has passed and "does not
    exist" was seen enough times. ``quick`` starts meanwhile and trades."""
    path = tmp_path / "journal.sqlite3"
    async with (
        open_exchange_server("binance", ("BTC/USDT",), seed=7, rate_hz=4.0) as server,
        open_binance_venue(("BTC/USDT",), market_server=server) as venue,
    ):
        async with running_journal(path) as journal:
            now = venue.now_ts()
            await journal.load_bot("slow", initial_quote=Decimal("10000"), now_ts=now)
            await journal.record_intent(
                OrderIntent(
                    client_id="slow-1",
                    bot_id="slow",
                    seq=1,
                    symbol="BTC/USDT",
                    side="buy",
                    order_type="market",
                    size=Decimal("0.001"),
                    price=None,
                    tag="signal:entry",
                    position_id=None,
                    created_ts=now,
                )
            )
        monkeypatch.setenv("TEST_VENUE_KEY", venue.api_key)
        monkeypatch.setenv("TEST_VENUE_SECRET", venue.secret)
        config = Config(
            exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
            accounts=(
                AccountConfig(
                    name="main",
                    api_key_env="TEST_VENUE_KEY",
                    api_secret_env="TEST_VENUE_SECRET",
                    rest_url=venue.rest_url,
                    ws_api_url=venue.ws_api_url,
                    # a deadline of 4 s (the defaults: 15 s) keeps the test fast
                    recv_window_ms=2000,
                    processing_limit_s=1.0,
                    query_lag_s=1.0,
                    unknown_poll_s=1.0,
                ),
            ),
            bots=(bot("slow"), bot("quick")),
            journal=JournalConfig(path=str(path), fsync=False),
        )
        async with open_supervisor(config, start=False) as system:
            started_at = trio.current_time()
            await system.start()  # as the daemon does, once its HTTP port is bound
            ready_at = trio.current_time()
            assert system.bot_ids == ("slow", "quick")  # listed in config order
            lookups = [
                r
                for r in venue.requests(ORDER_PATH, method="GET")
                if r.params.get("origClientOrderId") == "bcf_slow_1"
            ]
            assert [r.code for r in lookups][-1] == -2013
            resolved_at = lookups[-1].received_at
            assert resolved_at - started_at > 4  # the venue's deadline: a slow recovery
            await venue.wait_for(lambda v: v.order("bcf_quick_1") is not None)
            [quick] = [
                p for p in order_posts(venue) if p.params["newClientOrderId"] == "bcf_quick_1"
            ]
            assert quick.received_at < resolved_at  # quick traded while slow recovered
            assert ready_at >= resolved_at  # the daemon is up once every bot is
            record, *_ = await system.journal.orders("slow")
            assert (record.status, "never placed" in record.status_reason) == ("rejected", True)
            posted = [p.params["newClientOrderId"] for p in order_posts(venue)]
            assert posted[0] == "bcf_quick_1"
            assert "bcf_slow_1" not in posted  # looked up, never sent
