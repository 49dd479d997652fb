"""The local Binance venue's WebSocket API user data stream, over real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trio_websocket import ConnectionRejected, WebSocketConnection, open_websocket_url

from actors.simulator import ApiKey, BinanceVenue, open_binance_venue
from tests.simulator.binance_venue_client import (
    VenueClient,
    ed25519_signer,
    events_until,
    next_event,
    no_frame_within,
    subscribe,
    ws_request,
    ws_signature_payload,
)
from tests.simulator.helpers import fail_after

REPORT_KEYS = set("eEsScofqpPFgCxXrilzLnNTtIwmMOZYQV")


async def open_websocket(url: str) -> None:
    async with open_websocket_url(url):
        raise AssertionError("accepted")


@asynccontextmanager
async def streaming(
    path: str = "", **kwargs: Any
) -> AsyncIterator[tuple[BinanceVenue, VenueClient, WebSocketConnection]]:
    kwargs.setdefault("rate_hz", 0.0)
    async with (
        open_binance_venue(("BTC/USDT",), seed=2, **kwargs) as venue,
        httpx.AsyncClient(base_url=venue.rest_url) as http,
        open_websocket_url(venue.ws_api_url + path) as ws,
    ):
        yield venue, VenueClient(venue, http), ws


@fail_after(30)
async def test_subscribe_ping_time_and_session_subscriptions(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with streaming() as (venue, client, ws):
        assert venue.ws_api_url.endswith("/ws-api/v3")
        answer = await subscribe(ws, client, "sub-1")
        assert answer["id"] == "sub-1"
        assert answer["status"] == 200
        assert answer["result"] == {"subscriptionId": 0}
        [limits] = answer["rateLimits"]
        assert (limits["rateLimitType"], limits["interval"], limits["limit"]) == (
            "REQUEST_WEIGHT",
            "MINUTE",
            6000,
        )
        assert limits["count"] == 2 + 2  # the connection, the subscription
        assert venue.subscriptions() == 1
        pong = await ws_request(ws, {"id": 7, "method": "ping"})
        assert (pong["status"], pong["result"]) == (200, {})
        now = await ws_request(
            ws, {"id": 8, "method": "time", "params": {"returnRateLimits": False}}
        )
        assert abs(now["result"]["serverTime"] - venue.server_time_ms()) <= 1
        assert "rateLimits" not in now
        listed = await ws_request(ws, {"id": None, "method": "session.subscriptions"})
        assert listed["result"] == [{"subscriptionId": 0}]
        again = await subscribe(ws, client, 9)
        assert again["status"] == 400
        assert again["error"]["code"] == -2035
        versioned = await ws_request(ws, {"id": 10, "method": "v3/ping"})
        assert versioned["status"] == 200
        unknown = await ws_request(ws, {"id": 11, "method": "order.place", "params": {}})
        assert unknown["error"] == {"code": -1020, "msg": "This operation is not supported."}
        await ws.send_message("not json")
        garbage = json.loads(await ws.get_message())
        assert (garbage["id"], garbage["status"], garbage["error"]["code"]) == (None, 400, -1135)
        no_method = await ws_request(ws, {"id": 12, "params": {}})
        assert no_method["error"]["code"] == -1102
        methods = [r.method for r in venue.requests(method=None) if r.transport == "ws"]
        assert methods == [
            "userDataStream.subscribe.signature",
            "ping",
            "time",
            "session.subscriptions",
            "userDataStream.subscribe.signature",
            "ping",
            "order.place",
            "",
            "None",
        ]


@fail_after(30)
async def test_subscription_refusals(autojump_clock: trio.abc.Clock) -> None:
    async with streaming("?returnRateLimits=false") as (venue, client, ws):
        params: dict[str, object] = {"apiKey": client.api_key, "timestamp": client.timestamp()}
        params["signature"] = client.sign(ws_signature_payload(params)).upper()  # hex: any case
        params["timestamp"] = int(params["timestamp"]) + 1  # type: ignore[call-overload]
        forged = await ws_request(
            ws, {"id": 1, "method": "userDataStream.subscribe.signature", "params": params}
        )
        assert forged == {
            "id": 1,
            "status": 400,
            "error": {"code": -1022, "msg": "Signature for this request is not valid."},
        }
        stale = VenueClient(venue, client.http, clock_offset_ms=-6000)
        assert (await subscribe(ws, stale, 2))["error"]["code"] == -1021
        windowed = {"apiKey": client.api_key, "timestamp": stale.timestamp(), "recvWindow": 10000}
        windowed["signature"] = client.sign(ws_signature_payload(windowed))
        accepted = await ws_request(
            ws, {"id": 3, "method": "userDataStream.subscribe.signature", "params": windowed}
        )
        assert accepted["status"] == 200, accepted
        await ws_request(ws, {"id": 4, "method": "userDataStream.unsubscribe"})
        stranger = VenueClient(venue, client.http, api_key="B" * 64)
        refused = await subscribe(ws, stranger, 5)
        assert (refused["status"], refused["error"]["code"]) == (401, -2015)
        missing = await ws_request(
            ws,
            {"id": 6, "method": "userDataStream.subscribe.signature", "params": {"apiKey": "x"}},
        )
        assert missing["error"]["code"] == -1102
        assert venue.subscriptions() == 0


@fail_after(30)
async def test_ed25519_subscription(autojump_clock: trio.abc.Clock) -> None:
    private = Ed25519PrivateKey.generate()
    async with streaming() as (venue, client, ws):
        venue.add_api_key(ApiKey.from_ed25519("ed", private.public_key().public_bytes_raw()))
        ed = VenueClient(venue, client.http, api_key="ed", signer=ed25519_signer(private))
        answer = await subscribe(ws, ed)
        assert answer["result"] == {"subscriptionId": 0}


@fail_after(30)
async def test_market_order_events(autojump_clock: trio.abc.Clock) -> None:
    async with streaming() as (_venue, client, ws):
        await subscribe(ws, client)
        response = await client.order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newClientOrderId="ev-1"
        )
        placed = response.json()
        frames = []
        while len(frames) < 3:
            frames.append(await next_event(ws))
        assert all(f["subscriptionId"] == 0 for f in frames)
        new, trade, position = (f["event"] for f in frames)
        assert set(new) == REPORT_KEYS
        assert (new["e"], new["x"], new["X"], new["c"], new["C"]) == (
            "executionReport",
            "NEW",
            "NEW",
            "ev-1",
            "",
        )
        assert (new["i"], new["t"], new["N"], new["w"]) == (placed["orderId"], -1, None, False)
        [fill] = placed["fills"]
        assert (trade["x"], trade["X"], trade["l"], trade["z"], trade["L"]) == (
            "TRADE",
            "FILLED",
            "0.00200000",
            "0.00200000",
            fill["price"],
        )
        assert (trade["t"], trade["n"], trade["N"], trade["m"]) == (
            fill["tradeId"],
            fill["commission"],
            "BTC",
            False,
        )
        assert trade["Z"] == trade["Y"] == placed["cummulativeQuoteQty"]
        assert trade["T"] == placed["transactTime"]
        assert position["e"] == "outboundAccountPosition"
        balances = {b["a"]: (b["f"], b["l"]) for b in position["B"]}
        assert set(balances) == {"BTC", "USDT"}
        assert balances["BTC"] == await client.balance("BTC")


@fail_after(60)
async def test_resting_order_fill_and_cancel_events(autojump_clock: trio.abc.Clock) -> None:
    async with streaming() as (venue, client, ws):
        await subscribe(ws, client)
        bid = venue.touch("BTCUSDT").bid
        await client.order(
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=str(bid + 1000),
            newClientOrderId="far",
        )
        await client.order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=str(bid - Decimal("0.5")),
            newClientOrderId="near",
        )
        placed = await events_until(ws, lambda e: e.get("c") == "near")
        new = placed[-1]
        assert (new["x"], new["w"], new["W"], new["p"]) == (
            "NEW",
            True,
            new["O"],
            f"{bid - Decimal('0.5'):.8f}",
        )
        for _ in range(20_000):
            order = venue.order("near")
            if order is not None and order.status == "FILLED":
                break
            venue.step("BTC/USDT")
        fills = await events_until(ws, lambda e: e.get("X") == "FILLED")
        assert all(e["m"] is True for e in fills if e["e"] == "executionReport")
        await client.cancel(symbol="BTCUSDT", origClientOrderId="far", newClientOrderId="undo")
        cancel = (await events_until(ws, lambda e: e.get("x") == "CANCELED"))[-1]
        assert (cancel["c"], cancel["C"], cancel["X"], cancel["w"]) == (
            "undo",
            "far",
            "CANCELED",
            False,
        )
        position = (await next_event(ws, "outboundAccountPosition"))["event"]
        assert [b["a"] for b in position["B"]] == ["BTC"]
        assert position["B"][0]["l"] == "0.00000000"


@fail_after(30)
async def test_unsubscribe_and_balance_update(autojump_clock: trio.abc.Clock) -> None:
    async with streaming() as (venue, client, ws):
        await subscribe(ws, client)
        venue.set_balance("USDT", "123.45")
        update = (await next_event(ws, "balanceUpdate"))["event"]
        assert update["a"] == "USDT"
        assert Decimal(update["d"]) < 0
        position = (await next_event(ws, "outboundAccountPosition"))["event"]
        assert position["B"] == [{"a": "USDT", "f": "123.45000000", "l": "0.00000000"}]
        wrong = await ws_request(
            ws, {"id": 1, "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 5}}
        )
        assert wrong["error"]["code"] == -2036
        answer = await ws_request(
            ws, {"id": 2, "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 0}}
        )
        assert answer["result"] == {}
        terminated = await next_event(ws)
        assert terminated["subscriptionId"] == 0
        assert terminated["event"]["e"] == "eventStreamTerminated"
        venue.set_balance("USDT", "1")
        assert await no_frame_within(ws, 5.0)
        again = await subscribe(ws, client, 3)
        assert again["result"] == {"subscriptionId": 1}


@fail_after(30)
async def test_wrong_path_is_refused(autojump_clock: trio.abc.Clock) -> None:
    async with open_binance_venue(rate_hz=0) as venue:
        with pytest.raises(ConnectionRejected) as refused:
            await open_websocket(venue.ws_api_url.replace("/ws-api/v3", "/ws"))
        assert refused.value.status_code == 404
