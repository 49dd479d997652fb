"""Coinbase Exchange ws-feed simulator conformance, raw client."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from actors.messages import Stream
from actors.simulator import open_exchange_server
from tests.simulator.helpers import collect, fail_after, is_decimal_string, recv, recv_until, send

TICKER_KEYS = {
    "type", "sequence", "product_id", "price", "open_24h", "volume_24h", "low_24h", "high_24h",
    "volume_30d", "best_bid", "best_bid_size", "best_ask", "best_ask_size", "side", "time",
    "trade_id", "last_size",
}  # fmt: skip
MATCH_KEYS = {
    "type", "trade_id", "maker_order_id", "taker_order_id", "side", "size", "price",
    "product_id", "sequence", "time",
}  # fmt: skip
HEARTBEAT_KEYS = {"type", "sequence", "last_trade_id", "product_id", "time"}


def channel(name: str, *products: str) -> dict[str, object]:
    return {"name": name, "product_ids": list(products), "account_ids": None}


def is_type(kind: str):
    return lambda m: m.get("type") == kind


@fail_after(60)
async def test_conformance(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("coinbase", seed=2, rate_hz=10.0) as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        await send(
            ws,
            {
                "type": "subscribe",
                "product_ids": ["BTC-USD"],
                "channels": ["ticker", "matches", "heartbeat"],
            },
        )
        assert await recv(ws) == {
            "type": "subscriptions",
            "channels": [
                channel("ticker", "BTC-USD"),
                channel("matches", "BTC-USD"),
                channel("heartbeat", "BTC-USD"),
            ],
        }
        first_ticker, last_match = await recv(ws), await recv(ws)
        assert first_ticker["type"] == "ticker"
        assert set(first_ticker) == TICKER_KEYS
        assert last_match["type"] == "last_match"
        assert set(last_match) == MATCH_KEYS
        assert first_ticker["trade_id"] == last_match["trade_id"]
        assert server.subscribe_count(Stream("ticker", "BTC/USD")) == 1
        assert server.subscribe_count(Stream("trade", "BTC/USD")) == 1

        frames = await collect(ws, 2.5)
        tickers = [f for f in frames if f["type"] == "ticker"]
        matches = {f["trade_id"]: f for f in frames if f["type"] == "match"}
        heartbeats = [f for f in frames if f["type"] == "heartbeat"]
        assert 24 <= len(tickers) <= 26
        assert len(matches) == len(tickers)
        assert len(heartbeats) == 2  # one per second per product
        for ticker in tickers:
            assert set(ticker) == TICKER_KEYS
            assert ticker["product_id"] == "BTC-USD"
            for key in ("price", "best_bid", "best_ask", "best_bid_size", "last_size"):
                assert is_decimal_string(ticker[key])
            assert float(ticker["best_bid"]) < float(ticker["best_ask"])
            datetime.fromisoformat(ticker["time"])
            match = matches[ticker["trade_id"]]
            assert set(match) == MATCH_KEYS
            assert match["sequence"] == ticker["sequence"]  # one counter per product
            assert match["price"] == ticker["price"]
            assert match["size"] == ticker["last_size"]
            assert {match["side"], ticker["side"]} == {"buy", "sell"}  # maker vs taker side
        sequences = [t["sequence"] for t in tickers]
        assert sequences == sorted(set(sequences))
        for heartbeat in heartbeats:
            assert set(heartbeat) == HEARTBEAT_KEYS
            assert heartbeat["product_id"] == "BTC-USD"
            assert isinstance(heartbeat["sequence"], int)

        # second form, cumulative reply
        await send(
            ws, {"type": "subscribe", "channels": [{"name": "ticker", "product_ids": ["ETH-USD"]}]}
        )
        assert await recv_until(ws, is_type("subscriptions")) == {
            "type": "subscriptions",
            "channels": [
                channel("ticker", "BTC-USD", "ETH-USD"),
                channel("matches", "BTC-USD"),
                channel("heartbeat", "BTC-USD"),
            ],
        }
        eth = await recv_until(ws, lambda m: m.get("product_id") == "ETH-USD")
        assert eth["type"] == "ticker"

        # one bad product fails the whole message
        await send(
            ws,
            {"type": "subscribe", "product_ids": ["ETH-USD", "FOO-USD"], "channels": ["matches"]},
        )
        assert await recv_until(ws, is_type("error")) == {
            "type": "error",
            "message": "Failed to subscribe",
            "reason": "FOO-USD is not a valid product",
        }
        assert server.subscribe_count(Stream("trade", "ETH/USD")) == 0
        await send(ws, {"type": "subscribe", "product_ids": ["ETH-USD"]})
        error = await recv_until(ws, is_type("error"))
        assert error["reason"] == "No channels provided"

        # unsubscribe: one product of a channel, then a whole channel
        await send(ws, {"type": "unsubscribe", "product_ids": ["BTC-USD"], "channels": ["ticker"]})
        reply = await recv_until(ws, is_type("subscriptions"))
        assert reply["channels"][0] == channel("ticker", "ETH-USD")
        await send(ws, {"type": "unsubscribe", "channels": ["heartbeat"]})
        reply = await recv_until(ws, is_type("subscriptions"))
        assert [c["name"] for c in reply["channels"]] == ["ticker", "matches"]
        later = await collect(ws, 2.0)
        kinds = {(f["type"], f["product_id"]) for f in later}
        assert kinds == {("ticker", "ETH-USD"), ("match", "BTC-USD")}


@fail_after(30)
async def test_no_subscribe_within_5_s_is_dropped(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("coinbase") as server:
        async with (
            open_websocket_url(server.ws_url) as idle,
            open_websocket_url(server.ws_url) as busy,
        ):
            start = trio.current_time()
            await trio.sleep(4.0)
            await send(
                busy, {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["heartbeat"]}
            )
            with pytest.raises(ConnectionClosed) as closed:
                await idle.get_message()
            assert trio.current_time() - start == pytest.approx(5.0, abs=0.01)
            assert closed.value.reason.code == 1006  # dropped without a close frame
            frames = await collect(busy, 6.0)
            assert frames[0]["type"] == "subscriptions"
            assert sum(f["type"] == "heartbeat" for f in frames) >= 5
            assert server.statistics().connected == 1


@fail_after(30)
async def test_rest_product_ticker(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("coinbase", rate_hz=0) as server,
        httpx.AsyncClient(base_url=server.rest_url) as http,
    ):
        response = await http.get("/products/BTC-USD/ticker")
        assert response.status_code == 200
        body = response.json()
        assert {"ask", "bid", "volume", "trade_id", "price", "size", "time"} <= set(body)
        assert float(body["bid"]) < float(body["ask"])
        assert isinstance(body["trade_id"], int)
        assert len(body["time"].split(".")[1]) == 10  # 9 fractional digits and Z
        assert (await http.get("/products/FOO-USD/ticker")).json() == {"message": "NotFound"}

        del http.headers["user-agent"]
        anonymous = await http.get("/products/BTC-USD/ticker")
        assert anonymous.status_code == 400
        assert anonymous.json() == {"message": "User-Agent header is required."}
