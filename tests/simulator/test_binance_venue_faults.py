"""The local Binance venue's fault knobs, one test each, and its shared price path with the
market-data simulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import wsproto
import wsproto.events as ws_events
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from actors.messages import Stream
from actors.simulator import BinanceVenue, open_binance_venue, open_exchange_server
from tests.simulator.binance_venue_client import (
    VenueClient,
    next_event,
    no_frame_within,
    subscribe,
    ws_request,
)
from tests.simulator.helpers import fail_after, recv_until, send

MARKET_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}


@asynccontextmanager
async def trading(**kwargs: Any) -> AsyncIterator[tuple[BinanceVenue, VenueClient]]:
    kwargs.setdefault("rate_hz", 0.0)
    async with (
        open_binance_venue(("BTC/USDT",), seed=3, **kwargs) as venue,
        httpx.AsyncClient(base_url=venue.rest_url, timeout=60.0) as http,
    ):
        yield venue, VenueClient(venue, http)


async def receive_until_closed(ws: WebSocketConnection) -> None:
    while True:
        await ws.get_message()


def code(response: httpx.Response) -> int:
    result: int = response.json()["code"]
    return result


# --- answers lost or replaced ----------------------------------------------------------------
@pytest.mark.parametrize("reset", [False, True])
@fail_after(30)
async def test_execute_then_drop_the_response(reset: bool, autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        venue.drop_responses(reset=reset)
        with pytest.raises(httpx.TransportError):
            await client.order(**MARKET_BUY, newClientOrderId="lost-1")
        order = venue.order("lost-1")
        assert order is not None
        assert order.status == "FILLED"  # executed, the client just never heard
        [request] = venue.requests("/api/v3/order")
        assert (request.status, request.fault, request.params["newClientOrderId"]) == (
            None,
            "drop",
            "lost-1",
        )
        # the knob was for one request: the query that resolves the unknown outcome works
        found = await client.get_order(symbol="BTCUSDT", origClientOrderId="lost-1")
        assert found.json()["status"] == "FILLED"


@fail_after(30)
async def test_drop_before_execution(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        venue.drop_responses(2, execute=False)
        for n in range(2):
            with pytest.raises(httpx.TransportError):
                await client.order(**MARKET_BUY, newClientOrderId=f"never-{n}")
        assert venue.orders() == ()
        missing = await client.get_order(symbol="BTCUSDT", origClientOrderId="never-0")
        assert code(missing) == -2013
        assert (await client.order(**MARKET_BUY)).status_code == 200


@pytest.mark.parametrize(
    ("status", "error_code", "execute"),
    [(503, -1007, True), (500, -1000, True), (502, None, True), (503, -1007, False)],
)
@fail_after(30)
async def test_execute_then_answer_5xx_or_timeout(
    status: int, error_code: int | None, execute: bool, autojump_clock: trio.abc.Clock
) -> None:
    async with trading() as (venue, client):
        venue.error_responses(status=status, code=error_code, execute=execute)
        response = await client.order(**MARKET_BUY, newClientOrderId="unknown-1")
        assert response.status_code == status
        if error_code is None:
            assert response.headers["content-type"] == "text/html"
        else:
            assert code(response) == error_code
        if error_code == -1007:
            assert response.json()["msg"] == (
                "Timeout waiting for response from backend server. Send status unknown;"
                " execution status unknown."
            )
        order = venue.order("unknown-1")
        assert (order is not None and order.status == "FILLED") is execute
        assert venue.requests()[-1].fault == "error"


@fail_after(60)
async def test_late_answers(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        venue.delay_responses(30.0)
        with pytest.raises(httpx.ReadTimeout):
            await client.http.post(
                "/api/v3/order",
                content=client.query({**MARKET_BUY, "newClientOrderId": "slow-1"}),
                headers={
                    "X-MBX-APIKEY": client.api_key,
                    "content-type": "application/x-www-form-urlencoded",
                },
                timeout=10.0,
            )
        order = venue.order("slow-1")
        assert order is not None
        assert order.status == "FILLED"  # executed at once; only the answer was late
        # held back before the engine longer than recvWindow: it expires on the way
        venue.delay_responses(6.0, execute=False)
        started = trio.current_time()
        expired = await client.order(**MARKET_BUY, newClientOrderId="slow-2")
        assert trio.current_time() - started >= 6.0
        assert code(expired) == -1021
        assert venue.order("slow-2") is None
        with pytest.raises(ValueError, match="unknown endpoint"):
            venue.delay_responses(1.0, endpoint="POST /api/v3/orders")
        venue.error_responses(3)
        venue.clear_faults()
        assert (await client.order(**MARKET_BUY)).status_code == 200


# --- time --------------------------------------------------------------------------------------
@fail_after(30)
async def test_skewed_venue_clock_gives_1021_both_ways(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        venue.skew_clock(10_000)  # the venue is 10 s ahead: the client's timestamps look old
        behind = await client.order(**MARKET_BUY)
        assert (behind.status_code, code(behind)) == (400, -1021)
        assert behind.json()["msg"] == "Timestamp for this request is outside of the recvWindow."
        venue.skew_clock(-2_000)  # the venue is 2 s behind: the client is "ahead"
        ahead = await client.order(**MARKET_BUY)
        assert ahead.json() == {
            "code": -1021,
            "msg": "Timestamp for this request was 1000ms ahead of the server's time.",
        }
        # a client that keeps an offset from GET /api/v3/time gets through
        server_time = (await client.http.get("/api/v3/time")).json()["serverTime"]
        client.clock_offset_ms = server_time - client.timestamp()
        assert (await client.order(**MARKET_BUY)).status_code == 200
        assert venue.orders()[0].time_ms == pytest.approx(server_time, abs=100)


@fail_after(30)
async def test_recv_window_rechecked_at_the_engine(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        venue.set_engine_latency(6.0)
        late = await client.order(**MARKET_BUY, newClientOrderId="engine-1")
        assert code(late) == -1021
        assert venue.orders() == ()
        wide = await client.signed(
            "POST", "/api/v3/order", {**MARKET_BUY, "recvWindow": 10_000}, body=True
        )
        assert wide.status_code == 200
        venue.set_engine_latency(0)
        with pytest.raises(ValueError, match="seconds"):
            venue.set_engine_latency(-1)


@fail_after(30)
async def test_order_does_not_exist_for_a_while_after_creation(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, client):
        venue.set_query_lag(3.0)
        placed = await client.order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=str(venue.touch("BTCUSDT").bid - 100),
            newClientOrderId="lagging",
        )
        assert placed.status_code == 200
        early = await client.get_order(symbol="BTCUSDT", origClientOrderId="lagging")
        assert early.json() == {"code": -2013, "msg": "Order does not exist."}
        listed = await client.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
        assert [o["clientOrderId"] for o in listed.json()] == ["lagging"]
        await trio.sleep(3.0)
        late = await client.get_order(symbol="BTCUSDT", origClientOrderId="lagging")
        assert late.json()["status"] == "NEW"


# --- rate limits -------------------------------------------------------------------------------
@fail_after(300)
async def test_429_then_418_with_retry_after(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        await trio.sleep(60 - (venue.server_time_ms() / 1000) % 60)  # start of a minute
        venue.set_request_weight_limit(5)
        for n in range(5):
            response = await client.http.get("/api/v3/time")
            assert response.headers["X-MBX-USED-WEIGHT-1M"] == str(n + 1)
        limited = await client.http.get("/api/v3/time")
        assert limited.status_code == 429
        assert code(limited) == -1003
        assert "current limit is 5 request weight per 1 MINUTE" in limited.json()["msg"]
        retry_after = int(limited.headers["Retry-After"])
        assert 55 <= retry_after <= 60
        banned = await client.http.get("/api/v3/time")  # did not back off
        assert banned.status_code == 418
        assert banned.headers["Retry-After"] == "120"
        assert "IP banned until" in banned.json()["msg"]
        await trio.sleep(119)
        assert (await client.http.get("/api/v3/time")).status_code == 418
        await trio.sleep(1)
        assert (await client.http.get("/api/v3/time")).status_code == 200
        # a client that waits out the Retry-After is not banned
        venue.exhaust_request_weight()
        limited = await client.http.get("/api/v3/time")
        assert limited.status_code == 429
        await trio.sleep(int(limited.headers["Retry-After"]))
        assert (await client.http.get("/api/v3/time")).status_code == 200
        # a second ban lasts twice as long; lift_ban ends it
        venue.exhaust_request_weight()
        await client.http.get("/api/v3/time")
        second = await client.http.get("/api/v3/time")
        assert second.headers["Retry-After"] == "240"
        venue.lift_ban()
        assert (await client.http.get("/api/v3/time")).status_code == 200
        assert [r.status for r in venue.requests("/api/v3/time")][-4:] == [200, 429, 418, 200]


@fail_after(60)
async def test_order_rate_limit(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        await trio.sleep(10 - (venue.server_time_ms() / 1000) % 10)
        venue.set_order_limits(per_10s=2)
        assert (await client.order(**MARKET_BUY)).headers["X-MBX-ORDER-COUNT-10S"] == "1"
        assert (await client.order(**MARKET_BUY)).headers["X-MBX-ORDER-COUNT-10S"] == "2"
        refused = await client.order(**MARKET_BUY)
        assert refused.status_code == 429
        assert refused.json() == {
            "code": -1015,
            "msg": "Too many new orders; current limit is 2 orders per 10 SECOND.",
        }
        assert "Retry-After" not in refused.headers
        await trio.sleep(10)
        assert (await client.order(**MARKET_BUY)).status_code == 200
        assert len(venue.orders()) == 3


@fail_after(60)
async def test_websocket_api_shares_the_weight_and_gets_banned(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, client), open_websocket_url(venue.ws_api_url) as ws:
        venue.exhaust_request_weight()
        limited = await ws_request(ws, {"id": 1, "method": "ping"})
        assert (limited["status"], limited["error"]["code"]) == (429, -1003)
        assert limited["error"]["data"]["retryAfter"] > limited["error"]["data"]["serverTime"]
        banned = await ws_request(ws, {"id": 2, "method": "ping"})
        assert banned["status"] == 418
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
        assert (await client.http.get("/api/v3/time")).status_code == 418


# --- the user data stream ------------------------------------------------------------------------
@fail_after(120)
async def test_user_stream_goes_silent_while_pings_continue(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client), open_websocket_url(venue.ws_api_url) as ws:
        await subscribe(ws, client)
        assert venue.silence_user_streams() == 1
        await client.order(**MARKET_BUY, newClientOrderId="unseen")
        assert await no_frame_within(ws, 50.0)  # two server pings went by, answered
        pong = await ws_request(ws, {"id": "p", "method": "ping"})
        assert pong["status"] == 200
        assert venue.ws_connections() == 1
        assert venue.subscriptions() == 1
        # a fresh subscription (here: on a new connection) gets events again
        async with open_websocket_url(venue.ws_api_url) as fresh:
            await subscribe(fresh, client)
            await client.order(**MARKET_BUY, newClientOrderId="seen")
            event = (await next_event(fresh, "executionReport"))["event"]
            assert event["c"] == "seen"
        assert await no_frame_within(ws, 1.0)


@fail_after(30)
async def test_drop_and_server_shutdown(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        async with open_websocket_url(venue.ws_api_url) as ws:
            await subscribe(ws, client)
            assert venue.send_server_shutdown() == 1
            shutdown = json.loads(await ws.get_message())
            assert set(shutdown) == {"event"}
            assert shutdown["event"]["e"] == "serverShutdown"
            assert venue.drop_ws_connections() == 1
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1006
        await venue.wait_for(lambda v: v.ws_connections() == 0)


@fail_after(24 * 3600 + 60)  # virtual time
async def test_connection_closed_after_24_hours(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client), open_websocket_url(venue.ws_api_url) as ws:
        await subscribe(ws, client)
        opened = trio.current_time()
        with pytest.raises(ConnectionClosed) as closed:
            await receive_until_closed(ws)
        assert trio.current_time() - opened == pytest.approx(24 * 3600, abs=1)
        assert closed.value.reason.code == 1000


# --- one price path with the market-data simulator -------------------------------------------
@fail_after(60)
async def test_attached_venue_trades_on_the_market_data_price_path(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with (
        open_exchange_server("binance", ("BTC/USDT",), seed=4, rate_hz=10.0) as server,
        open_binance_venue(market_server=server, rate_hz=0) as venue,
        httpx.AsyncClient(base_url=venue.rest_url) as http,
        open_websocket_url(server.ws_url) as feed,
    ):
        client = VenueClient(venue, http)
        assert venue.symbols == ("BTC/USDT",)
        assert venue.now_ts() == server.now_ts()
        # with no subscriber the server steps nothing: the venue's touch is the server's book
        book = (await http.get(f"{server.rest_url}/api/v3/ticker/bookTicker?symbol=BTCUSDT")).json()
        bought = (await client.order(**MARKET_BUY)).json()
        assert bought["fills"][0]["price"] == book["askPrice"]
        # a resting order fills from the steps the market-data feed pulls
        await send(feed, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})
        await server.wait_for(lambda s: s.subscribe_count(Stream("trade", "BTC/USDT")) == 1)
        trade = await recv_until(feed, lambda m: m.get("stream") == "btcusdt@trade")
        price = Decimal(trade["data"]["p"]) - Decimal("3")
        await client.order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price=str(price),
            newClientOrderId="follow",
        )
        while True:
            trade = await recv_until(feed, lambda m: m.get("stream") == "btcusdt@trade")
            if Decimal(trade["data"]["p"]) < price:
                break
        await venue.wait_for(
            lambda v: v.order("follow") is not None and v.order("follow").status == "FILLED"
        )  # type: ignore[union-attr]
        assert venue.steps_missed == 0
        with pytest.raises(ValueError, match="server's symbols"):
            BinanceVenue(("ETH/USDT",), market_server=server)


@fail_after(30)
async def test_venue_moves_the_price_by_itself(autojump_clock: trio.abc.Clock) -> None:
    async with open_binance_venue(("BTC/USDT",), seed=5, rate_hz=10.0) as venue:
        first = venue.markets["BTC/USDT"].last.index
        await trio.sleep(1.0)
        assert 9 <= venue.markets["BTC/USDT"].last.index - first <= 11
    with pytest.raises(ValueError, match="rate_hz"):
        BinanceVenue(rate_hz=-1)
    with pytest.raises(ValueError, match="count"):
        venue.drop_responses(0)


@fail_after(300)
async def test_unanswered_pings_drop_the_connection(autojump_clock: trio.abc.Clock) -> None:
    """A raw wsproto client that never answers: pings every 20 s, dropped 60 s after one."""
    async with trading() as (venue, _client):
        port = int(venue.ws_api_url.split(":")[2].split("/")[0])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(client.send(ws_events.Request(host="127.0.0.1", target="/ws-api/v3")))
        start = trio.current_time()
        pings: list[float] = []
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # reset: dropped without a close frame
                data = b""
            if not data:
                break
            client.receive_data(data)
            pings += [
                trio.current_time() - start
                for event in client.events()
                if isinstance(event, ws_events.Ping)
            ]
        assert trio.current_time() - start == pytest.approx(80.0, abs=0.5)
        assert pings == pytest.approx([20.0], abs=0.5)
        await venue.wait_for(lambda v: v.ws_connections() == 0)
        await stream.aclose()


@fail_after(60)
async def test_banned_ip_cannot_connect_to_the_websocket_api(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, client):
        venue.exhaust_request_weight()
        assert (await client.http.get("/api/v3/time")).status_code == 429
        with pytest.raises(ConnectionRejected) as refused:
            await open_and_close(venue.ws_api_url)
        assert refused.value.status_code == 418
        assert int(dict(refused.value.headers)[b"retry-after"]) == 120


async def open_and_close(url: str) -> None:
    async with open_websocket_url(url):
        pass


@fail_after(60)
async def test_max_num_orders_filter(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actors.simulator.venue_rest.MAX_NUM_ORDERS", 2)
    async with trading() as (venue, client):
        price = str(venue.touch("BTCUSDT").bid - 100)
        limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        for _ in range(2):
            assert (await client.order(**limit, quantity="0.001", price=price)).status_code == 200
        third = await client.order(**limit, quantity="0.001", price=price)
        assert third.json() == {"code": -1013, "msg": "Filter failure: MAX_NUM_ORDERS"}
        assert (await client.order(**MARKET_BUY)).status_code == 200  # MARKET orders never rest
