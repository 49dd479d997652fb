"""Kraken WS v2 simulator conformance and the Kraken REST ticker, raw client."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import httpx
import trio
from trio_websocket import open_websocket_url

from actors.messages import Stream
from actors.simulator import open_exchange_server
from tests.simulator.helpers import collect, fail_after, is_decimal_string, recv, recv_until, send

TICKER_KEYS = {
    "symbol", "bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high",
    "change", "change_pct", "timestamp",
}  # fmt: skip
TRADE_KEYS = {"symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp"}


def without_times(reply: dict) -> dict:
    assert datetime.fromisoformat(reply.pop("time_in"))
    assert datetime.fromisoformat(reply.pop("time_out"))
    return reply


def on(channel: str):
    return lambda m: m.get("channel") == channel


@fail_after(60)
async def test_conformance(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("kraken", seed=4, rate_hz=10.0) as server:
        assert server.ws_url.endswith("/v2")
        async with open_websocket_url(server.ws_url) as ws:
            status = await recv(ws)
            assert status["channel"] == "status"
            assert status["type"] == "update"
            (info,) = status["data"]
            assert info["api_version"] == "v2"
            assert info["system"] == "online"
            assert isinstance(info["connection_id"], int)
            assert 2**63 < info["connection_id"] < 2**64

            subscribe = {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo"}
            await send(ws, {"method": "subscribe", "params": subscribe, "req_id": 1})
            assert without_times(await recv(ws)) == {
                "method": "subscribe",
                "result": {
                    "channel": "ticker",
                    "event_trigger": "bbo",
                    "snapshot": True,
                    "symbol": "BTC/USD",
                },
                "success": True,
                "req_id": 1,
            }
            raw = await ws.get_message()
            snapshot = json.loads(raw, parse_float=Decimal)
            assert (snapshot["channel"], snapshot["type"]) == ("ticker", "snapshot")
            (ticker,) = snapshot["data"]
            assert set(ticker) == TICKER_KEYS
            for key in TICKER_KEYS - {"symbol", "timestamp"}:
                assert isinstance(ticker[key], Decimal | int), key  # JSON numbers
            assert ticker["bid"] < ticker["ask"]

            await send(
                ws,
                {
                    "method": "subscribe",
                    "params": {"channel": "trade", "symbol": ["BTC/USD"]},
                    "req_id": 2,
                },
            )
            ack = without_times(await recv_until(ws, lambda m: m.get("req_id") == 2))
            assert ack["result"] == {"channel": "trade", "snapshot": False, "symbol": "BTC/USD"}
            assert server.subscribe_count(Stream("trade", "BTC/USD")) == 1

            await send(
                ws,
                {
                    "method": "subscribe",
                    "params": {"channel": "ticker", "symbol": ["NOPE/USD", "XBT/USD"]},
                    "req_id": 3,
                },
            )
            for symbol in ("NOPE/USD", "XBT/USD"):
                error = without_times(await recv_until(ws, lambda m: m.get("req_id") == 3))
                assert error == {
                    "error": f"Currency pair not supported {symbol}",
                    "method": "subscribe",
                    "success": False,
                    "symbol": symbol,
                    "req_id": 3,
                }

            await send(ws, {"method": "ping", "req_id": 9})
            pong = without_times(await recv_until(ws, lambda m: m.get("method") == "pong"))
            assert pong == {"method": "pong", "req_id": 9}

            frames = await collect(ws, 2.5)
            tickers = [f for f in frames if f.get("channel") == "ticker"]
            trades = [f for f in frames if f.get("channel") == "trade"]
            assert 24 <= len(tickers) <= 26
            assert 24 <= len(trades) <= 26
            assert not any(f.get("channel") == "heartbeat" for f in frames)  # busy: none needed
            book = ticker
            for frame in frames:
                (item,) = frame["data"]
                assert frame["type"] == "update"
                if frame["channel"] == "ticker":
                    assert set(item) == TICKER_KEYS
                    book = {
                        k: Decimal(str(v)) if k in ("bid", "ask") else v for k, v in item.items()
                    }
                else:
                    assert set(item) == TRADE_KEYS
                    assert isinstance(item["trade_id"], int)
                    # side is the taker's: a buy lifted the ask
                    price = Decimal(str(item["price"]))
                    assert price == (book["ask"] if item["side"] == "buy" else book["bid"])

            await send(
                ws,
                {
                    "method": "unsubscribe",
                    "params": {"channel": "trade", "symbol": ["BTC/USD"]},
                    "req_id": 4,
                },
            )
            ack = without_times(await recv_until(ws, lambda m: m.get("req_id") == 4))
            assert ack == {
                "method": "unsubscribe",
                "result": {"channel": "trade", "symbol": "BTC/USD"},
                "success": True,
                "req_id": 4,
            }
            await send(
                ws,
                {
                    "method": "unsubscribe",
                    "params": {"channel": "trade", "symbol": ["BTC/USD"]},
                    "req_id": 5,
                },
            )
            again = await recv_until(ws, lambda m: m.get("req_id") == 5)
            assert again["error"] == "Subscription Not Found"
            assert again["success"] is False
            later = await collect(ws, 1.0)
            assert {f["channel"] for f in later} == {"ticker"}

            server.set_rate(0)  # a quiet market: heartbeats about once a second
            quiet = await collect(ws, 4.5)
            first = quiet.index({"channel": "heartbeat"})
            assert quiet[first:] == [{"channel": "heartbeat"}] * len(quiet[first:])
            assert 3 <= len(quiet[first:]) <= 4


@fail_after(30)
async def test_rest_ticker(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("kraken", rate_hz=0) as server,
        httpx.AsyncClient(base_url=server.rest_url) as http,
    ):
        body = (await http.get("/0/public/Ticker", params={"pair": "XBTUSD"})).json()
        assert body["error"] == []
        assert list(body["result"]) == ["XXBTZUSD"]
        ticker = body["result"]["XXBTZUSD"]
        assert set(ticker) == {"a", "b", "c", "v", "p", "t", "l", "h", "o"}
        for key in ("a", "b"):
            price, whole, lots = ticker[key]
            assert is_decimal_string(price)
            assert whole.isdigit()
            assert is_decimal_string(lots)
        assert float(ticker["b"][0]) < float(ticker["a"][0])
        assert all(isinstance(n, int) for n in ticker["t"])
        assert isinstance(ticker["o"], str)

        both = (await http.get("/0/public/Ticker", params={"pair": "XBTUSD,ETHUSD"})).json()
        assert set(both["result"]) == {"XXBTZUSD", "XETHZUSD"}
        unknown = await http.get("/0/public/Ticker", params={"pair": "NOPEUSD"})
        assert unknown.status_code == 200
        assert unknown.json() == {"error": ["EQuery:Unknown asset pair"], "result": {}}
