"""Fault injection, rate control and observability, on every protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from trio_websocket import (
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from actors.messages import Stream
from actors.simulator import GARBAGE_FRAME, PROTOCOLS, ExchangeServer, open_exchange_server
from tests.simulator.helpers import closed_reason, collect, fail_after, recv, send

SUBSCRIBE = {
    "binance": {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1},
    "coinbase": {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["ticker"]},
    "coinbase_advanced": {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "ticker"},
    "kraken": {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}},
    "kraken_v1": {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ticker"}},
}


def ticker_stream(protocol: str) -> Stream:
    return Stream("ticker", "BTC/USDT" if protocol == "binance" else "BTC/USD")


def is_ticker(protocol: str, frame: object) -> bool:
    if isinstance(frame, list):
        return frame[-2] == "ticker"
    assert isinstance(frame, dict)
    if protocol == "binance":
        return frame.get("stream") == "btcusdt@bookTicker"
    if protocol == "coinbase":
        return frame.get("type") == "ticker"
    return frame.get("channel") == "ticker"


@asynccontextmanager
async def subscribed(server: ExchangeServer) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(server.ws_url) as ws:
        await send(ws, SUBSCRIBE[server.protocol])
        await server.wait_for(lambda s: s.subscribe_count(ticker_stream(s.protocol)) >= 1)
        while not is_ticker(server.protocol, await recv(ws)):
            pass
        yield ws


@pytest.mark.parametrize("protocol", PROTOCOLS)
@fail_after(30)
async def test_drop_without_close_frame(protocol: str, autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server(protocol) as server:
        async with subscribed(server) as ws:
            assert server.drop_connections() == 1
            assert await closed_reason(ws) == (1006, None)
            await server.wait_for(lambda s: s.statistics().connected == 0)
            assert server.subscribe_count(ticker_stream(protocol)) == 0
        async with subscribed(server):  # the server itself is fine
            assert server.statistics().connections_accepted == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
@fail_after(30)
async def test_close_with_code_and_reason(protocol: str, autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server(protocol, rate_hz=None) as server:
        async with subscribed(server) as ws:
            assert server.close_connections(4000, "maintenance") == 1
            assert await closed_reason(ws) == (4000, "maintenance")
            await server.wait_for(lambda s: s.statistics().connected == 0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@fail_after(120)
async def test_stall_sends_nothing_until_resumed(
    protocol: str, autojump_clock: trio.abc.Clock
) -> None:
    async with open_exchange_server(protocol) as server, subscribed(server) as ws:
        server.stall()
        sent = server.statistics().frames_sent
        assert server.statistics().stalled
        await collect(ws, 30.0)  # frames already on their way, then silence
        assert server.statistics().frames_sent == sent
        assert server.statistics().connected == 1

        # a stalled server completes no new handshake either
        with trio.move_on_after(5.0) as timer:
            async with open_websocket_url(server.ws_url):
                pass
        assert timer.cancelled_caught
        assert server.statistics().connections_accepted == 1

        # but it still reads and logs what clients send
        requests = server.statistics().requests_received
        await send(ws, SUBSCRIBE[protocol])
        await server.wait_for(lambda s: s.statistics().requests_received == requests + 1)
        server.resume()
        frame = await recv(ws)
        assert frame is not None
        assert server.statistics().frames_sent > sent


@pytest.mark.parametrize("protocol", PROTOCOLS)
@fail_after(30)
async def test_garbage_frame_then_data_continues(
    protocol: str, autojump_clock: trio.abc.Clock
) -> None:
    async with open_exchange_server(protocol) as server, subscribed(server) as ws:
        assert server.send_garbage() == 1
        while (await ws.get_message()) != GARBAGE_FRAME:
            pass
        while not is_ticker(protocol, await recv(ws)):
            pass


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("status", [429, 503])
@fail_after(30)
async def test_refuse_next_handshakes(
    protocol: str, status: int, autojump_clock: trio.abc.Clock
) -> None:
    async with open_exchange_server(protocol) as server:
        server.refuse_handshakes(status, count=2, retry_after_s=30)
        for _ in range(2):
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(server.ws_url):
                    pass
            assert rejected.value.status_code == status
            assert (b"Retry-After", b"30") in [(k.title(), v) for k, v in rejected.value.headers]
        async with open_websocket_url(server.ws_url):
            await server.wait_for(lambda s: s.statistics().connected == 1)
        stats = server.statistics()
        assert (stats.handshakes_refused, stats.connections_accepted) == (2, 1)


@fail_after(30)
async def test_refuse_until_cleared(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("kraken") as server:
        server.refuse_handshakes(503)
        for _ in range(3):
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(server.ws_url):
                    pass
            assert rejected.value.status_code == 503
        server.clear_refusals()
        async with open_websocket_url(server.ws_url) as ws:
            assert (await recv(ws))["channel"] == "status"


@pytest.mark.parametrize(
    ("protocol", "path"), [("binance", "/nope"), ("kraken", "/v1"), ("coinbase", "/x")]
)
@fail_after(30)
async def test_unknown_path_is_404(
    protocol: str, path: str, autojump_clock: trio.abc.Clock
) -> None:
    async with open_exchange_server(protocol) as server:
        base = server.ws_url.removesuffix("/stream").removesuffix("/v2")
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(base + path):
                pass
        assert rejected.value.status_code == 404


@fail_after(60)
async def test_rate_knob(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("binance", rate_hz=10.0) as server, subscribed(server) as ws:
        assert 9 <= len(await collect(ws, 1.0)) <= 11
        server.set_rate(50.0)
        assert 48 <= len(await collect(ws, 1.0)) <= 52
        server.set_rate(0)
        await collect(ws, 0.5)  # drain what was in flight
        assert await collect(ws, 5.0) == []
        server.set_rate(None)  # as fast as sends complete: no virtual time passes
        start = trio.current_time()
        books = [await recv(ws) for _ in range(500)]
        assert trio.current_time() == start
        assert len({b["data"]["u"] for b in books}) == 500
        with pytest.raises(ValueError, match="rate_hz"):
            server.set_rate(-1.0)


@fail_after(30)
async def test_request_log_and_statistics(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("coinbase", rate_hz=10.0) as server:
        async with subscribed(server) as ws:
            await ws.send_message("not json")
            await server.wait_for(lambda s: len(s.requests()) == 2)
            (connection_id,) = server.connection_ids()
            subscribe, garbage = server.requests(connection_id)
            assert subscribe.message == SUBSCRIBE["coinbase"]
            assert subscribe.valid_json
            assert (garbage.raw, garbage.message, garbage.valid_json) == ("not json", None, False)
            assert server.requests(connection_id + 1) == ()
            stats = server.statistics()
            assert stats.protocol == "coinbase"
            assert stats.connected == 1
            assert stats.subscribers == {Stream("ticker", "BTC/USD"): 1}
            assert stats.frames_sent >= 2
            assert stats.rate_hz == 10.0
            assert not stats.stalled
            with pytest.raises(TypeError):
                stats.subscribers[Stream("ticker", "ETH/USD")] = 1  # type: ignore[index]
            await server.wait_for(lambda s: s.statistics().frames_sent >= stats.frames_sent + 5)
        await server.wait_for(lambda s: s.statistics().connected == 0)
        assert server.statistics().subscribers == {}
