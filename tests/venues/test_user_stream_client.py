"""``run_user_stream`` against the local Binance venue's WebSocket API over real sockets (and,
for frames the venue never sends, a small WebSocket server of the test's own)."""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import orjson
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trio_websocket import WebSocketRequest, serve_websocket

from actors.simulator import ApiKey, BinanceVenue, open_binance_venue
from actors.venues.binance.filters import PreparedOrder
from actors.venues.binance.responses import Accepted
from actors.venues.binance.rest import BinanceRest
from actors.venues.binance.signing import Ed25519Signer, HmacSigner, ServerClock, Signer
from actors.venues.binance.user_stream import ExecutionEvent
from actors.venues.binance.user_stream_client import (
    UserStreamEnded,
    UserStreamError,
    run_user_stream,
)
from tests.simulator.helpers import fail_after

SYMBOL = "BTCUSDT"
Item = ExecutionEvent | UserStreamEnded


@asynccontextmanager
async def trading(
    signer: Signer | None = None,
) -> AsyncIterator[tuple[BinanceVenue, BinanceRest]]:
    async with open_binance_venue(("BTC/USDT",), seed=4, rate_hz=0.0) as venue:
        signer = signer or HmacSigner(venue.api_key, venue.secret)
        async with BinanceRest(venue.rest_url, signer) as rest:
            yield venue, rest


@asynccontextmanager
async def streaming(
    url: str, signer: Signer, clock: ServerClock, **options: Any
) -> AsyncIterator[trio.MemoryReceiveChannel[Item]]:
    """The stream in a task; its events, then the exception that ended it, on a channel."""
    send, receive = trio.open_memory_channel[Item](math.inf)

    async def stream(task_status: trio.TaskStatus[None]) -> None:
        try:
            await run_user_stream(
                url, signer, clock, send.send_nowait, task_status=task_status, **options
            )
        except UserStreamEnded as exc:
            send.send_nowait(exc)

    async with trio.open_nursery() as nursery:
        await nursery.start(stream)
        yield receive
        nursery.cancel_scope.cancel()


async def events_until_terminal(receive: trio.MemoryReceiveChannel[Item]) -> list[ExecutionEvent]:
    events = []
    while True:
        item = await receive.receive()
        assert isinstance(item, ExecutionEvent), item
        events.append(item)
        if item.terminal:
            return events


async def ended(receive: trio.MemoryReceiveChannel[Item]) -> UserStreamEnded:
    item = await receive.receive()
    assert isinstance(item, UserStreamEnded), item
    return item


async def place(venue: BinanceVenue, rest: BinanceRest, order_type: str, cid: str) -> Accepted:
    rules = (await rest.exchange_info([SYMBOL])).rules[SYMBOL]
    touch = venue.touch(SYMBOL)
    if order_type == "market":
        order = rules.prepare("buy", "market", Decimal("0.002"), reference_price=touch.ask)
    else:
        order = rules.prepare("buy", "limit", Decimal("0.002"), touch.bid - 100)
    assert isinstance(order, PreparedOrder)
    placed = (await rest.place_order(order, cid)).outcome
    assert isinstance(placed, Accepted), placed
    return placed


# --- events ------------------------------------------------------------------------------------
@fail_after(30)
async def test_execution_reports_of_orders_placed_over_rest(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        await rest.sync_time()
        signer = HmacSigner(venue.api_key, venue.secret)
        async with streaming(venue.ws_api_url, signer, rest.clock) as receive:
            assert venue.subscriptions() == 1  # started means subscribed
            venue.set_balance("ETH", "1")  # balance events are not ours to deliver
            placed = await place(venue, rest, "market", "bcf_s_1")
            events = await events_until_terminal(receive)
            assert {e.client_order_id for e in events} == {"bcf_s_1"}
            assert events[0].execution_type == "NEW"
            fills = [f for e in events if (f := e.fill()) is not None]
            assert [f.key for f in fills] == [f.key for f in placed.fills]
            assert {f.source for f in fills} == {"stream"}
            assert events[-1].status == "FILLED"
            assert events[-1].cumulative_qty == sum(f.quantity for f in fills)
            # a resting order, then its cancellation
            await place(venue, rest, "limit", "bcf_s_2")
            new = await receive.receive()
            assert isinstance(new, ExecutionEvent)
            assert (new.client_order_id, new.status) == ("bcf_s_2", "NEW")
            await rest.cancel_order(SYMBOL, "bcf_s_2")
            [cancelled] = await events_until_terminal(receive)
            assert (cancelled.client_order_id, cancelled.status) == ("bcf_s_2", "CANCELED")
        ws_methods = [r.method for r in venue.requests(method="userDataStream.subscribe.signature")]
        assert len(ws_methods) == 1
        assert venue.requests(method="time") == ()  # the REST sync served the stream too


@fail_after(30)
async def test_an_unsynced_clock_is_synced_over_the_connection(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, rest):
        clock = ServerClock()
        signer = HmacSigner(venue.api_key, venue.secret)
        async with streaming(venue.ws_api_url, signer, clock) as receive:
            assert clock.synced
            assert abs(clock.server_ms(trio.current_time()) - venue.server_time_ms()) <= 1
            [time_request] = venue.requests(method="time")
            assert time_request.transport == "ws"
            await place(venue, rest, "market", "bcf_c_1")
            assert (await events_until_terminal(receive))[-1].status == "FILLED"


@fail_after(30)
async def test_ed25519_subscription(autojump_clock: trio.abc.Clock) -> None:
    private = Ed25519PrivateKey.generate()
    async with trading() as (venue, rest):
        venue.add_api_key(ApiKey.from_ed25519("ed-key", private.public_key().public_bytes_raw()))
        signer = Ed25519Signer("ed-key", private)
        async with streaming(venue.ws_api_url, signer, ServerClock()) as receive:
            await place(venue, rest, "market", "bcf_e_1")
            assert (await events_until_terminal(receive))[-1].client_order_id == "bcf_e_1"


# --- how it ends -------------------------------------------------------------------------------
@fail_after(30)
async def test_server_shutdown_ends_the_stream(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, _rest):
        signer = HmacSigner(venue.api_key, venue.secret)
        async with streaming(venue.ws_api_url, signer, ServerClock()) as receive:
            assert venue.send_server_shutdown() == 1
            assert (await ended(receive)).reason == "serverShutdown"
        await venue.wait_for(lambda v: v.ws_connections() == 0)  # and we closed it


@fail_after(30)
async def test_dropped_connection_ends_the_stream(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, _rest):
        signer = HmacSigner(venue.api_key, venue.secret)
        async with streaming(venue.ws_api_url, signer, ServerClock()) as receive:
            assert venue.drop_ws_connections() == 1
            end = await ended(receive)
            assert end.reason.startswith("connection closed: code 1006")
            assert "user data stream ended" in str(end)


@fail_after(300)
async def test_no_pong_ends_the_stream(autojump_clock: trio.abc.Clock) -> None:
    """A relay that stops forwarding both ways: the connection is dead, nobody closed it."""
    async with trading() as (venue, _rest), trio.open_nursery() as nursery:
        frozen = trio.Event()
        port = int(venue.ws_api_url.split(":")[2].split("/")[0])
        relay = await nursery.start(partial(run_relay, port, frozen))
        signer = HmacSigner(venue.api_key, venue.secret)
        url = f"ws://127.0.0.1:{relay}/ws-api/v3"
        async with streaming(url, signer, ServerClock(), heartbeat_s=10.0) as receive:
            await trio.sleep(25.0)  # quiet but alive: the venue's and our pings are answered
            frozen.set()
            silent_from = trio.current_time()
            assert (await ended(receive)).reason == "no pong within 10 s"
            # up to 10 s of silence, then 10 s for the pong, then 2 s to try to close
            assert 10.0 < trio.current_time() - silent_from <= 22.0
        nursery.cancel_scope.cancel()


async def run_relay(port: int, frozen: trio.Event, *, task_status: trio.TaskStatus[int]) -> None:
    async def pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
        while data := await source.receive_some(65536):
            if not frozen.is_set():
                await sink.send_all(data)

    async def handle(client: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream("127.0.0.1", port)
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, upstream)
            nursery.start_soon(pump, upstream, client)

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        task_status.started(listener.socket.getsockname()[1])


# --- subscription failures ---------------------------------------------------------------------
@fail_after(30)
async def test_refused_subscription_names_the_code(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        await rest.sync_time()
        wrong = HmacSigner(venue.api_key, "not-the-secret")
        with pytest.raises(UserStreamError) as refused:
            await run_user_stream(venue.ws_api_url, wrong, rest.clock, print)
        assert refused.value.code == -1022
        assert "Signature for this request is not valid." in str(refused.value)
        assert venue.api_key not in str(refused.value)
        venue.skew_clock(10_000)
        right = HmacSigner(venue.api_key, venue.secret)
        with pytest.raises(UserStreamError) as stale:
            await run_user_stream(venue.ws_api_url, right, rest.clock, print)
        assert stale.value.code == -1021
        assert not rest.clock.synced  # forgotten: the next attempt syncs first
        async with streaming(venue.ws_api_url, right, rest.clock):
            assert venue.subscriptions() == 1


@fail_after(60)
async def test_connect_failures_and_timeout(autojump_clock: trio.abc.Clock) -> None:
    signer = HmacSigner("k", "s")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserStreamError, match="cannot connect"):
        await run_user_stream(f"ws://127.0.0.1:{port}/ws-api/v3", signer, ServerClock(), print)
    async with open_binance_venue(("BTC/USDT",), rate_hz=0.0) as venue:
        with pytest.raises(UserStreamError, match="handshake refused with HTTP 404"):
            await run_user_stream(venue.ws_api_url + "x", signer, ServerClock(), print)

    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()  # accepts TCP, never answers the handshake

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        url = f"ws://127.0.0.1:{listener.socket.getsockname()[1]}/ws-api/v3"
        started = trio.current_time()
        with pytest.raises(UserStreamError, match="not subscribed within 3 s"):
            await run_user_stream(url, signer, ServerClock(), print, connect_timeout_s=3.0)
        assert trio.current_time() - started == pytest.approx(3.0)
        nursery.cancel_scope.cancel()
    with pytest.raises(ValueError, match="connect_timeout_s"):
        await run_user_stream("ws://x", signer, ServerClock(), print, connect_timeout_s=0)
    with pytest.raises(ValueError, match="heartbeat_s"):
        await run_user_stream("ws://x", signer, ServerClock(), print, heartbeat_s=math.inf)


# --- frames the venue never sends: a server of our own -------------------------------------------
async def fake_ws_api(
    script: Callable[[Any], Awaitable[None]], *, task_status: trio.TaskStatus[str]
) -> None:
    """Answers ``time`` and the subscription, then runs ``script(ws)``."""

    async def handle(request: WebSocketRequest) -> None:
        ws = await request.accept()
        for _ in range(2):
            message = orjson.loads(await ws.get_message())
            result: object = {"serverTime": 1_700_000_000_000}
            if message["method"] != "time":
                result = {"subscriptionId": 0}
            await ws.send_message(
                orjson.dumps({"id": message["id"], "status": 200, "result": result}).decode()
            )
        await script(ws)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, handle, "127.0.0.1", 0, ssl_context=None)
        )
        task_status.started(f"ws://127.0.0.1:{server.port}/ws-api/v3")


def event(body: dict[str, Any]) -> str:
    return orjson.dumps({"subscriptionId": 0, "event": body}).decode()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "unreadable frame"),
        (event({"e": "executionReport", "s": SYMBOL}), "unreadable frame"),
        (event({"e": "eventStreamTerminated", "E": 1}), "eventStreamTerminated"),
    ],
)
@fail_after(30)
async def test_frames_that_end_the_stream(
    frame: str, reason: str, autojump_clock: trio.abc.Clock
) -> None:
    async def script(ws: Any) -> None:
        await ws.send_message(event({"e": "outboundAccountPosition", "E": 1}))  # ignored
        await ws.send_message(orjson.dumps({"id": "other", "status": 200}).decode())  # ignored
        await ws.send_message(frame)

    async with trio.open_nursery() as nursery:
        url = await nursery.start(fake_ws_api, script)
        signer = HmacSigner("k", "s")
        async with streaming(url, signer, ServerClock()) as receive:
            assert (await ended(receive)).reason.startswith(reason)
        nursery.cancel_scope.cancel()
