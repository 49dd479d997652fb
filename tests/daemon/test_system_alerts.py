"""Supervision and bot events reach the alert webhook through ``open_supervisor``."""

from __future__ import annotations

import trio

from actors.messages import Ticker
from actors.simulator import open_exchange_server
from supervisor.config import (
    AlertsConfig,
    Config,
    ExchangeConfig,
    HttpConfig,
    JournalConfig,
    WebhookConfig,
)
from supervisor.system import open_supervisor
from tests.daemon.test_alerts import receiving


async def test_a_stalled_feed_is_replaced_and_alerted_once(tmp_path) -> None:
    with trio.fail_after(20):
        async with (
            receiving() as (url, deliveries),
            open_exchange_server("binance", ("BTC/USDT",), rate_hz=20.0) as server,
        ):
            config = Config(
                exchanges=(ExchangeConfig(name="binance", url=server.ws_url, stale_after_s=1.0),),
                http=HttpConfig(enabled=False),
                journal=JournalConfig(path=str(tmp_path / "journal.sqlite3")),
                alerts=AlertsConfig(webhooks=(WebhookConfig(url + "/hook"),)),
            )
            async with (
                open_supervisor(config) as sup,
                sup.subscribe("binance", "ticker", "BTC/USDT") as events,
            ):
                assert (await deliveries.receive()).body["kind"] == "daemon_started"
                while not isinstance(await events.receive(), Ticker):
                    pass
                server.stall()
                stale = await deliveries.receive()
                assert (stale.body["kind"], stale.body["key"]) == ("feed_stale", "binance")
                server.resume()
                await sup.market_data.wait_streaming("binance")
                assert sup.market_data.statistics().exchanges["binance"].stale_replacements >= 1
            # After the stale alert only the stop alert comes (delivery is at least once: an
            # alert whose POST was cut by shutdown is sent again), never a second stale alert.
            later = []
            with trio.move_on_after(0.5):
                async for delivery in deliveries:
                    later.append(delivery.body["kind"])
            assert set(later) == {"daemon_stopped"}
