"""The public API: construction, addresses, defaults, nursery.start."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import open_websocket_url

from actors.exchanges import PROTOCOLS as REGISTERED
from actors.simulator import (
    DEFAULT_SYMBOLS,
    PROTOCOLS,
    ExchangeServer,
    open_exchange_server,
    run_exchange_server,
)
from actors.simulator.server import PROTOCOL_CLASSES
from tests.simulator.helpers import fail_after, recv, recv_until, send

WS_PATHS = {
    "binance": "/stream",
    "coinbase": "",
    "coinbase_advanced": "",
    "kraken": "/v2",
    "kraken_v1": "",
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@fail_after(30)
async def test_addresses_and_defaults(protocol: str, autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server(protocol) as server:
        assert server.protocol == protocol
        assert server.symbols == DEFAULT_SYMBOLS[protocol]
        host_port = server.ws_url.removeprefix("ws://").removesuffix(WS_PATHS[protocol])
        host, port = host_port.split(":")
        assert host == "127.0.0.1"
        assert int(port) > 0
        rest_host, rest_port = server.rest_url.removeprefix("http://").split(":")
        assert rest_host == "127.0.0.1"
        assert int(rest_port) not in (0, int(port))
        assert server.rate_hz == 10.0


def test_every_registered_protocol_has_its_simulator_module() -> None:
    assert PROTOCOLS == REGISTERED
    assert {name: (cls.__module__, cls.name) for name, cls in PROTOCOL_CLASSES.items()} == {
        name: (f"actors.simulator.{name}", name) for name in REGISTERED
    }


def test_defaults_per_protocol() -> None:
    assert DEFAULT_SYMBOLS["binance"] == ("BTC/USDT", "ETH/USDT")
    for protocol in ("coinbase", "coinbase_advanced", "kraken", "kraken_v1"):
        assert DEFAULT_SYMBOLS[protocol] == ("BTC/USD", "ETH/USD")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        ExchangeServer("bitfinex")
    with pytest.raises(ValueError, match="BTCUSDT"):
        ExchangeServer("binance", ("BTCUSDT",))
    with pytest.raises(ValueError, match="rate_hz"):
        ExchangeServer("binance", rate_hz=-1.0)
    with pytest.raises(ValueError, match="rate_hz"):
        ExchangeServer("binance", rate_hz=float("nan"))
    server = ExchangeServer("kraken")
    with pytest.raises(ValueError, match="status"):
        server.refuse_handshakes(200)


@fail_after(30)
async def test_run_exchange_server_with_nursery_start(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            run_exchange_server, "kraken", ("SOL/USD", "BTC/USD", "SOL/USD")
        )
        assert isinstance(server, ExchangeServer)
        assert server.symbols == ("SOL/USD", "BTC/USD")
        async with open_websocket_url(server.ws_url) as ws:
            await recv(ws)
            await send(
                ws,
                {
                    "method": "subscribe",
                    "params": {"channel": "trade", "symbol": ["SOL/USD"], "snapshot": True},
                },
            )
            ack = await recv(ws)
            assert ack["success"] is True
            assert ack["result"]["snapshot"] is True
            snapshot = await recv_until(ws, lambda m: m.get("channel") == "trade")
            assert snapshot["type"] == "snapshot"
            assert len(snapshot["data"]) == 50
            assert {t["symbol"] for t in snapshot["data"]} == {"SOL/USD"}
            update = await recv_until(ws, lambda m: m.get("channel") == "trade")
            assert update["type"] == "update"
            assert update["data"][0]["trade_id"] == snapshot["data"][-1]["trade_id"] + 1
        nursery.cancel_scope.cancel()


@fail_after(120)
async def test_broken_clients_do_not_hurt_the_server(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("binance") as server:
        port = int(server.ws_url.split(":")[2].split("/")[0])
        junk = await trio.open_tcp_stream("127.0.0.1", port)
        await junk.send_all(b"NOT HTTP AT ALL\r\n\r\n")
        assert (await junk.receive_some(1024)).startswith(b"HTTP/1.1 400")
        await junk.aclose()
        silent = await trio.open_tcp_stream("127.0.0.1", port)
        await silent.aclose()  # gone before any handshake
        half = await trio.open_tcp_stream("127.0.0.1", port)
        await half.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n")  # never finished
        await trio.sleep(61.0)  # the handshake timeout closes it
        assert await half.receive_some(1024) == b""
        await half.aclose()
        async with open_websocket_url(server.ws_url) as ws:
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
            assert await recv(ws) == {"result": [], "id": 1}
        assert server.statistics().connections_accepted == 1
