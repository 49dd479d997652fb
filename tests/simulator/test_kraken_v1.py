"""Kraken WS v1 simulator conformance, raw client."""

from __future__ import annotations

import trio
from trio_websocket import open_websocket_url

from actors.messages import Stream
from actors.simulator import open_exchange_server
from tests.simulator.helpers import collect, fail_after, is_decimal_string, recv, recv_until, send


def is_status(pair: str):
    return lambda m: (
        isinstance(m, dict) and m.get("event") == "subscriptionStatus" and m.get("pair") == pair
    )


def is_data(name: str):
    return lambda m: isinstance(m, list) and m[-2] == name


@fail_after(60)
async def test_conformance(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("kraken_v1", seed=6, rate_hz=10.0) as server:
        async with open_websocket_url(server.ws_url) as ws:
            status = await recv(ws)
            assert set(status) == {"connectionID", "event", "status", "version"}
            assert (status["event"], status["status"]) == ("systemStatus", "online")
            assert 2**63 < status["connectionID"] < 2**64

            await send(
                ws,
                {
                    "event": "subscribe",
                    "pair": ["XBT/USD", "ETH/USD"],
                    "subscription": {"name": "ticker"},
                    "reqid": 7,
                },
            )
            ids = {}
            for pair in ("XBT/USD", "ETH/USD"):
                reply = await recv_until(ws, is_status(pair))
                ids[pair] = reply.pop("channelID")
                assert reply == {
                    "channelName": "ticker",
                    "event": "subscriptionStatus",
                    "pair": pair,
                    "status": "subscribed",
                    "subscription": {"name": "ticker"},
                    "reqid": 7,
                }
            assert len(set(ids.values())) == 2
            assert server.subscribe_count(Stream("ticker", "BTC/USD")) == 1

            ticker = await recv_until(ws, is_data("ticker"))
            channel_id, body, name, pair = ticker
            assert channel_id == ids[pair]
            assert name == "ticker"
            assert set(body) == {"a", "b", "c", "v", "p", "t", "l", "h", "o"}
            for side in ("a", "b"):
                price, whole_lots, lots = body[side]
                assert is_decimal_string(price)
                assert is_decimal_string(lots)
                assert isinstance(whole_lots, int)
                assert whole_lots == int(float(lots))
            assert float(body["b"][0]) < float(body["a"][0])
            assert all(is_decimal_string(x) for k in "cvplho" for x in body[k])
            assert all(isinstance(n, int) for n in body["t"])

            await send(
                ws, {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "trade"}}
            )
            trade_status = await recv_until(
                ws, lambda m: isinstance(m, dict) and m.get("channelName") == "trade"
            )
            assert "reqid" not in trade_status
            assert trade_status["status"] == "subscribed"
            await send(
                ws,
                {
                    "event": "subscribe",
                    "pair": ["XBTUSD", "BTC/USD"],
                    "subscription": {"name": "spread"},
                    "reqid": 8,
                },
            )
            for pair, message in (
                ("XBTUSD", "Currency pair not in ISO 4217-A3 format XBTUSD"),
                ("BTC/USD", "Currency pair not supported BTC/USD"),
            ):
                assert await recv_until(ws, is_status(pair)) == {
                    "errorMessage": message,
                    "event": "subscriptionStatus",
                    "pair": pair,
                    "status": "error",
                    "subscription": {"name": "spread"},
                    "reqid": 8,
                }
            await send(ws, {"event": "ping", "reqid": 42})
            assert await recv_until(
                ws, lambda m: isinstance(m, dict) and m.get("event") == "pong"
            ) == {
                "event": "pong",
                "reqid": 42,
            }

            frames = await collect(ws, 2.5)
            trades = [f for f in frames if is_data("trade")(f)]
            tickers = [f for f in frames if is_data("ticker")(f)]
            heartbeats = [f for f in frames if f == {"event": "heartbeat"}]
            assert 24 <= len(trades) <= 26
            assert 48 <= len(tickers) <= 52
            assert 2 <= len(heartbeats) <= 3  # about one per second, busy or not
            for channel_id, prints, name, pair in trades:
                assert (channel_id, name, pair) == (trade_status["channelID"], "trade", "XBT/USD")
                for price, volume, when, side, order_type, misc in prints:
                    assert is_decimal_string(price)
                    assert is_decimal_string(volume)
                    assert is_decimal_string(when)
                    assert len(when.split(".")[1]) == 6
                    assert side in ("b", "s")
                    assert order_type in ("m", "l")
                    assert misc == ""

            await send(
                ws,
                {
                    "event": "unsubscribe",
                    "pair": ["XBT/USD"],
                    "subscription": {"name": "trade"},
                    "reqid": 9,
                },
            )
            reply = await recv_until(ws, lambda m: isinstance(m, dict) and m.get("reqid") == 9)
            assert reply["status"] == "unsubscribed"
            assert reply["channelID"] == trade_status["channelID"]
            later = await collect(ws, 1.0)
            assert not any(is_data("trade")(f) for f in later)
            assert any(is_data("ticker")(f) for f in later)


@fail_after(30)
async def test_spread_channel(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("kraken_v1", rate_hz=10.0) as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        await send(
            ws, {"event": "subscribe", "pair": ["ETH/USD"], "subscription": {"name": "spread"}}
        )
        status = await recv_until(ws, is_status("ETH/USD"))
        channel_id, (bid, ask, when, bid_volume, ask_volume), name, pair = await recv_until(
            ws, is_data("spread")
        )
        assert (channel_id, name, pair) == (status["channelID"], "spread", "ETH/USD")
        assert all(is_decimal_string(x) for x in (bid, ask, when, bid_volume, ask_volume))
        assert float(bid) < float(ask)
