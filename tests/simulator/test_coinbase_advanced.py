"""Coinbase Advanced Trade simulator conformance, raw client."""

from __future__ import annotations

import re

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from actors.messages import Stream
from actors.simulator import open_exchange_server
from tests.simulator.helpers import (
    closed_reason,
    collect,
    fail_after,
    is_decimal_string,
    recv,
    recv_until,
    send,
)

ENVELOPE_KEYS = {"channel", "client_id", "timestamp", "sequence_num", "events"}
TICKER_KEYS = {
    "type", "product_id", "price", "volume_24_h", "low_24_h", "high_24_h", "low_52_w",
    "high_52_w", "price_percent_chg_24_h", "best_bid", "best_ask", "best_bid_quantity",
    "best_ask_quantity",
}  # fmt: skip
TRADE_KEYS = {"trade_id", "product_id", "price", "size", "time", "side"}
GO_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} \+0000 UTC m=\+\d+\.\d+$")
NS_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def on(channel: str):
    return lambda m: m.get("channel") == channel


@fail_after(60)
async def test_conformance(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("coinbase_advanced", seed=3, rate_hz=10.0) as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        frames = []
        await send(ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "ticker"})
        frames.append(reply := await recv(ws))
        assert set(reply) == ENVELOPE_KEYS
        assert reply["client_id"] == ""
        assert (reply["channel"], reply["sequence_num"]) == ("subscriptions", 0)
        assert reply["events"] == [{"subscriptions": {"ticker": ["BTC-USD"]}}]
        frames.append(snapshot := await recv(ws))
        assert snapshot["channel"] == "ticker"
        assert snapshot["events"][0]["type"] == "snapshot"
        (ticker,) = snapshot["events"][0]["tickers"]
        assert set(ticker) == TICKER_KEYS
        assert ticker["type"] == "ticker"

        await send(
            ws, {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"}
        )
        frames.append(reply := await recv_until(ws, on("subscriptions")))
        assert reply["events"] == [
            {"subscriptions": {"ticker": ["BTC-USD"], "market_trades": ["BTC-USD"]}}
        ]
        frames.append(trades := await recv_until(ws, on("market_trades")))
        assert trades["events"][0]["type"] == "snapshot"
        assert len(trades["events"][0]["trades"]) == 100
        await send(ws, {"type": "subscribe", "channel": "heartbeats"})
        frames.append(reply := await recv_until(ws, on("subscriptions")))
        assert reply["events"][0]["subscriptions"]["heartbeats"] == ["heartbeats"]
        assert server.subscribe_count(Stream("trade", "BTC/USD")) == 1

        # errors: no channel/sequence_num, and nothing applied
        await send(ws, {"type": "subscribe", "product_ids": ["FOO-USD"], "channel": "ticker"})
        await send(ws, {"type": "subscribe", "product_ids": ["ETH-USD"], "channels": ["ticker"]})
        errors = 0
        while errors < 2:
            frame = await recv(ws)
            if frame.get("type") == "error":
                assert frame == {"type": "error", "message": "failure to subscribe"}
                errors += 1
            else:
                frames.append(frame)
        frames.extend(await collect(ws, 2.5))
        assert [f["sequence_num"] for f in frames] == list(range(len(frames)))  # gap-free
        for frame in frames:
            assert set(frame) == ENVELOPE_KEYS
            assert NS_TIMESTAMP.match(frame["timestamp"])

        heartbeats = [f["events"][0] for f in frames if f["channel"] == "heartbeats"]
        assert 2 <= len(heartbeats) <= 3
        assert all(GO_TIME.match(h["current_time"]) for h in heartbeats)
        counters = [h["heartbeat_counter"] for h in heartbeats]
        assert counters == list(range(counters[0], counters[0] + len(counters)))

        book = ticker
        updates = 0
        for frame in frames[5:]:
            if frame["channel"] == "ticker":
                (event,) = frame["events"]
                assert event["type"] == "update"
                (book,) = event["tickers"]
                assert set(book) == TICKER_KEYS
                assert is_decimal_string(book["best_bid_quantity"])
                assert float(book["best_bid"]) < float(book["best_ask"])
            elif frame["channel"] == "market_trades":
                (event,) = frame["events"]
                (trade,) = event["trades"]
                assert set(trade) == TRADE_KEYS
                assert isinstance(trade["trade_id"], str)
                # side is the maker's: a SELL print executed at the ask
                assert trade["price"] == (
                    book["best_ask"] if trade["side"] == "SELL" else book["best_bid"]
                )
                updates += 1
        assert 24 <= updates <= 26

        await send(ws, {"type": "unsubscribe", "product_ids": ["BTC-USD"], "channel": "ticker"})
        reply = await recv_until(ws, on("subscriptions"))
        assert reply["events"][0]["subscriptions"] == {
            "market_trades": ["BTC-USD"],
            "heartbeats": ["heartbeats"],
        }
        assert {f["channel"] for f in await collect(ws, 2.0)} == {"market_trades", "heartbeats"}


@fail_after(300)
async def test_quiet_subscription_closed_unless_heartbeats(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("coinbase_advanced", rate_hz=0) as server:
        async with (
            open_websocket_url(server.ws_url) as quiet,
            open_websocket_url(server.ws_url) as kept,
        ):
            for ws in (quiet, kept):
                await send(
                    ws, {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "ticker"}
                )
            await send(kept, {"type": "subscribe", "channel": "heartbeats"})
            start = trio.current_time()
            code, _ = await closed_reason(quiet)
            assert 60.0 <= trio.current_time() - start <= 90.0
            assert code == 1000
            await trio.sleep(120.0)
            assert server.statistics().connected == 1
            assert (await recv_until(kept, on("heartbeats")))["events"][0]["heartbeat_counter"]


@fail_after(30)
async def test_no_subscribe_within_5_s_is_dropped(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("coinbase_advanced") as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1006
        assert trio.current_time() == pytest.approx(5.0, abs=0.01)


@fail_after(30)
async def test_rest_market_ticker(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("coinbase_advanced", rate_hz=0) as server,
        httpx.AsyncClient(base_url=server.rest_url) as http,
    ):
        response = await http.get("/api/v3/brokerage/market/products/BTC-USD/ticker?limit=1")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"trades", "best_bid", "best_ask"}
        (trade,) = body["trades"]
        assert set(trade) == TRADE_KEYS
        assert trade["product_id"] == "BTC-USD"
        assert float(body["best_bid"]) < float(body["best_ask"])
        missing = await http.get("/api/v3/brokerage/market/products/FOO-USD/ticker")
        assert missing.status_code == 404
