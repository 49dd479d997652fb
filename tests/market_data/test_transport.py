"""The transport seam: both engines map the same failures to the same errors."""

from __future__ import annotations

from functools import partial

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from actors.errors import ConnectionLostError, HandshakeRefusedError
from actors.market_data.transport import (
    Connector,
    Transport,
    TrioWebsocketConnector,
    WsprotoConnector,
)
from actors.simulator import open_exchange_server
from tests.market_data.helpers import CONNECTORS, ENGINES, config_for, next_of, open_plane

SUBSCRIBE = '{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}'


async def receive_until_lost(transport: Transport) -> ConnectionLostError:
    try:
        while True:
            await transport.receive_batch()
    except ConnectionLostError as exc:
        return exc


def engines(**kwargs: object) -> list[Connector]:
    return [WsprotoConnector(**kwargs), TrioWebsocketConnector(**kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_refused_handshake_keeps_its_http_status(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    with trio.fail_after(10):
        async with open_exchange_server("binance") as server:
            server.refuse_handshakes(429, count=1)
            with pytest.raises(HandshakeRefusedError) as refused:
                async with CONNECTORS[engine].connect(server.ws_url):
                    pass
            assert refused.value.status == 429
            with pytest.raises(HandshakeRefusedError) as not_found:
                async with CONNECTORS[engine].connect(server.ws_url + "/nope"):
                    pass
            assert not_found.value.status == 404
            async with CONNECTORS[engine].connect(server.ws_url) as transport:
                await transport.send(SUBSCRIBE)
                assert b'"id":1' in str(await transport.receive_batch()).encode()


@pytest.mark.parametrize("engine", ENGINES)
async def test_nobody_listening_is_a_lost_connection(engine: str) -> None:
    with trio.fail_after(10):
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        await listener.aclose()
        with pytest.raises(ConnectionLostError) as lost:
            async with CONNECTORS[engine].connect(f"ws://127.0.0.1:{port}/stream"):
                pass
        assert isinstance(lost.value.__cause__, Exception)


async def test_a_server_that_does_not_speak_http_is_a_lost_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A wrong URL (some other service on that port) is a feed fault for the backoff and the
    breaker, not wsproto's ``RemoteProtocolError`` leaking out as a programming error. (The
    default engine only: trio-websocket raises it inside a group from its own nursery.)"""

    async def not_http(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, not_http, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(ConnectionLostError):
                async with WsprotoConnector().connect(f"ws://127.0.0.1:{port}/stream"):
                    pass
            nursery.cancel_scope.cancel(reason="test done")


@pytest.mark.parametrize(("code", "reason"), [(1008, "Too many requests"), (4000, None)])
@pytest.mark.parametrize("engine", ENGINES)
async def test_a_close_frame_keeps_its_code_and_reason(
    autojump_clock: trio.testing.MockClock, engine: str, code: int, reason: str | None
) -> None:
    with trio.fail_after(10):
        async with (
            open_exchange_server("binance", rate_hz=0.0) as server,
            CONNECTORS[engine].connect(server.ws_url) as transport,
        ):
            await transport.send(SUBSCRIBE)
            await transport.receive_batch()
            server.close_connections(code, reason)
            lost = await receive_until_lost(transport)
            assert (lost.code, lost.reason) == (code, reason)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_reset_connection_is_1006(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    with trio.fail_after(10):
        async with (
            open_exchange_server("binance", rate_hz=0.0) as server,
            CONNECTORS[engine].connect(server.ws_url) as transport,
        ):
            await transport.send(SUBSCRIBE)
            await transport.receive_batch()
            server.drop_connections()
            lost = await receive_until_lost(transport)
            assert lost.code == 1006
            with pytest.raises(ConnectionLostError):
                await transport.send(SUBSCRIBE)


@pytest.mark.parametrize("connector", engines(max_message_size=100), ids=["wsproto", "trio-ws"])
async def test_a_message_over_the_size_limit_closes_with_1009(
    autojump_clock: trio.testing.MockClock, connector: Connector
) -> None:
    with trio.fail_after(10):
        async with (
            open_exchange_server("binance", rate_hz=0.0) as server,
            connector.connect(server.ws_url) as transport,
        ):
            await transport.send(SUBSCRIBE)
            await transport.receive_batch()
            server.send_garbage("x" * 101)
            lost = await receive_until_lost(transport)
            assert lost.code == 1009


@pytest.mark.parametrize("engine", ENGINES)
async def test_pings_are_answered_so_binance_keeps_the_connection(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    """The simulator pings every 20 s and drops a client that has not answered within 60 s."""
    with trio.fail_after(300):
        async with (
            open_exchange_server("binance", ("BTC/USDT",), rate_hz=0.05) as server,
            open_plane([config_for(server, stale_after_s=60.0)], transport=engine) as md,
            md.subscribe("binance", "ticker", "BTC/USDT") as events,
        ):
            await md.wait_streaming("binance")
            await trio.sleep(150.0)
            await next_of(events, object)
            assert server.statistics().connections_accepted == 1
            assert md.statistics().exchanges["binance"].connects == 1


async def _fragmenting_server(stream: trio.SocketStream) -> None:
    """Speaks just enough WebSocket to send one message in three fragments, then two whole
    messages in one write."""
    ws = WSConnection(ConnectionType.SERVER)
    while True:
        ws.receive_data(await stream.receive_some(65536))
        if any(isinstance(event, Request) for event in ws.events()):
            break
    out = ws.send(AcceptConnection())
    out += ws.send(TextMessage(data='{"a":', message_finished=False))
    out += ws.send(TextMessage(data="1", message_finished=False))
    out += ws.send(TextMessage(data="}", message_finished=True))
    await stream.send_all(out)
    await stream.send_all(ws.send(TextMessage(data="[2]")) + ws.send(TextMessage(data="[3]")))
    await trio.sleep_forever()


async def test_wsproto_engine_joins_fragments_and_batches_what_one_read_holds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, _fragmenting_server, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            async with WsprotoConnector().connect(f"ws://127.0.0.1:{port}/") as transport:
                received: list[str | bytes] = []
                while len(received) < 3:
                    received += await transport.receive_batch()
                assert received == ['{"a":1}', "[2]", "[3]"]
            nursery.cancel_scope.cancel()
