"""Binance simulator conformance, checked with a raw client."""

from __future__ import annotations

import httpx
import pytest
import trio
import wsproto
import wsproto.events as ws_events
from trio_websocket import ConnectionClosed, open_websocket_url

from actors.messages import Stream
from actors.simulator import open_exchange_server
from tests.simulator.helpers import collect, fail_after, is_decimal_string, recv, recv_until, send

BOOK_KEYS = {"u", "s", "b", "B", "a", "A"}
TRADE_KEYS = {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
REQUEST_GAP_S = 0.25  # stay under 5 messages per second


def is_stream(name: str):
    return lambda m: m.get("stream") == name


@fail_after(60)
async def test_conformance_combined_stream(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("binance", seed=1, rate_hz=10.0) as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        assert server.ws_url.endswith("/stream")
        await send(
            ws, {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker", "btcusdt@trade"], "id": 1}
        )
        assert await recv(ws) == {"result": None, "id": 1}
        assert server.subscribe_count(Stream("ticker", "BTC/USDT")) == 1
        assert server.subscribe_count(Stream("trade", "BTC/USDT")) == 1

        frames = await collect(ws, 1.0)
        books = [f["data"] for f in frames if f["stream"] == "btcusdt@bookTicker"]
        trades = [f["data"] for f in frames if f["stream"] == "btcusdt@trade"]
        assert 9 <= len(books) <= 11
        assert len(books) == len(trades)
        for book in books:
            assert set(book) == BOOK_KEYS  # no e, no E
            assert book["s"] == "BTCUSDT"
            assert isinstance(book["u"], int)
            assert all(is_decimal_string(book[k]) for k in "bBaA")
            assert float(book["b"]) < float(book["a"])
            assert len(book["b"].split(".")[1]) == 8
        assert [b["u"] for b in books] == sorted({b["u"] for b in books})  # strictly increasing
        for trade in trades:
            assert set(trade) == TRADE_KEYS
            assert trade["e"] == "trade"
            assert trade["s"] == "BTCUSDT"
            assert isinstance(trade["t"], int)
            assert isinstance(trade["T"], int)
            assert isinstance(trade["E"], int)
            assert trade["E"] >= 10**12
            assert isinstance(trade["m"], bool)
            assert trade["M"] is True
            assert is_decimal_string(trade["p"])
            assert is_decimal_string(trade["q"])
        # frames go trade, book per step; a trade executes against the book before it
        sequence = [f for f in frames if f["stream"] in ("btcusdt@bookTicker", "btcusdt@trade")]
        book = None
        for frame in sequence:
            data = frame["data"]
            if frame["stream"] == "btcusdt@bookTicker":
                book = data
            elif book is not None:
                assert data["p"] == (book["b"] if data["m"] else book["a"])

        await trio.sleep(REQUEST_GAP_S)
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
        listed = await recv_until(ws, lambda m: m.get("id") == 2)
        assert listed == {"result": ["btcusdt@bookTicker", "btcusdt@trade"], "id": 2}

        # a well-formed but unknown symbol is accepted, then silent
        await trio.sleep(REQUEST_GAP_S)
        await send(ws, {"method": "SUBSCRIBE", "params": ["nopeusdt@bookTicker"], "id": 3})
        assert await recv_until(ws, lambda m: "id" in m) == {"result": None, "id": 3}
        assert server.subscribe_count(Stream("ticker", "NOPE/USDT")) == 1

        # unsubscribe stops that stream right after the ack
        await trio.sleep(REQUEST_GAP_S)
        await send(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 4})
        assert await recv_until(ws, lambda m: "id" in m) == {"result": None, "id": 4}
        later = await collect(ws, 2.0)
        assert {f["stream"] for f in later} == {"btcusdt@bookTicker"}
        assert server.subscribe_count(Stream("trade", "BTC/USDT")) == 0


@fail_after(60)
async def test_raw_path_url_streams_and_properties(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("binance", rate_hz=5.0) as server:
        base = server.ws_url.removesuffix("/stream")
        async with open_websocket_url(f"{base}/ws/ethusdt@bookTicker") as ws:
            book = await recv(ws)
            assert set(book) == BOOK_KEYS
            assert book["s"] == "ETHUSDT"
            await send(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 1})
            assert await recv_until(ws, lambda m: "id" in m) == {"result": False, "id": 1}
            await trio.sleep(REQUEST_GAP_S)
            await send(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 2})
            assert await recv_until(ws, lambda m: "id" in m) == {"result": None, "id": 2}
            wrapped = await recv(ws)
            assert wrapped["stream"] == "ethusdt@bookTicker"
            assert set(wrapped["data"]) == BOOK_KEYS

        async with open_websocket_url(
            f"{base}/stream?streams=ethusdt@trade/btcusdt@bookTicker"
        ) as ws:
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 5})
            listed = await recv_until(ws, lambda m: m.get("id") == 5)
            assert listed["result"] == ["ethusdt@trade", "btcusdt@bookTicker"]
            trade = await recv_until(ws, is_stream("ethusdt@trade"))
            assert trade["data"]["e"] == "trade"

        async with open_websocket_url(f"{base}/ws?timeUnit=MICROSECOND") as ws:
            await send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1})
            await recv(ws)
            trade = await recv(ws)
            assert trade["T"] >= 10**15  # epoch µs


@fail_after(60)
async def test_request_errors(autojump_clock: trio.abc.Clock) -> None:
    cases = [
        ("{not json", {"code": 3}, None),
        (
            {"method": "LIST_SUBSCRIPTIONS", "id": "abc"},
            {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
            None,
        ),
        (
            {"method": "LIST_SUBSCRIPTIONS", "id": -1},
            {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
            None,
        ),
        (
            {"method": "LIST_SUBSCRIPTIONS"},
            {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"},
            None,
        ),
        ({"method": "FOO", "id": 1}, {"code": 2}, None),
        ({"params": [], "id": 1}, {"code": 2}, None),
        (
            {"method": "SUBSCRIBE", "params": ["BTCUSDT@bookticker"], "id": 7},
            {"code": 2, "msg": "Invalid request: invalid stream"},
            7,
        ),
        (
            {"method": "SET_PROPERTY", "params": ["foo", True], "id": 8},
            {"code": 0, "msg": "Unknown property"},
            8,
        ),
        (
            {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 9},
            {"code": 1, "msg": "Invalid value type: expected Boolean"},
            9,
        ),
        (
            {"method": "GET_PROPERTY", "params": ["combined", 1], "id": 10},
            {"code": 2, "msg": "Invalid request: too many parameters"},
            10,
        ),
        (
            {"method": "GET_PROPERTY", "params": [1], "id": 11},
            {"code": 2, "msg": "Invalid request: property name must be a string"},
            11,
        ),
    ]
    async with (
        open_exchange_server("binance") as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        for request, error, request_id in cases:
            await trio.sleep(REQUEST_GAP_S)
            if isinstance(request, str):
                await ws.send_message(request)
            else:
                await send(ws, request)
            reply = await recv(ws)
            assert set(reply) == {"error", "id"}
            assert reply["id"] == request_id
            assert set(reply["error"]) == {"code", "msg"}
            assert error.items() <= reply["error"].items(), (request, reply)
        assert reply is not None
        # nothing was subscribed by the failed SUBSCRIBE
        await trio.sleep(REQUEST_GAP_S)
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 12})
        assert await recv(ws) == {"result": [], "id": 12}
        assert server.statistics().requests_received == len(cases) + 1


@fail_after(30)
async def test_six_requests_in_one_second_disconnects(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("binance") as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        for n in range(5):  # five per second is allowed, twice
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": n})
            assert await recv(ws) == {"result": [], "id": n}
        await trio.sleep(1.0)
        for n in range(5, 11):
            await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": n})
        for n in range(5, 10):
            assert await recv(ws) == {"result": [], "id": n}
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.reason.code == 1008
        assert closed.value.reason.reason == "Too many requests"
        await server.wait_for(lambda s: s.statistics().connected == 0)


@fail_after(30)
async def test_1024_streams_per_connection(autojump_clock: trio.abc.Clock) -> None:
    streams = [f"sym{i}usdt@aggTrade" for i in range(1024)]
    async with (
        open_exchange_server("binance") as server,
        open_websocket_url(server.ws_url) as ws,
    ):
        await send(ws, {"method": "SUBSCRIBE", "params": streams, "id": 1})
        assert await recv(ws) == {"result": None, "id": 1}
        await trio.sleep(REQUEST_GAP_S)
        await send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2})
        reply = await recv(ws)
        assert reply["id"] == 2
        assert reply["error"]["code"] == 2
        await trio.sleep(REQUEST_GAP_S)
        await send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert len((await recv(ws))["result"]) == 1024


@fail_after(200)
async def test_ping_every_20_s_and_drop_without_pong(autojump_clock: trio.abc.Clock) -> None:
    """A wsproto client that sees the ping frames trio-websocket would answer silently."""
    async with open_exchange_server("binance") as server:
        port = int(server.ws_url.split(":")[2].split("/")[0])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(client.send(ws_events.Request(host="127.0.0.1", target="/stream")))
        start = trio.current_time()
        pings: list[float] = []
        closed_at = None
        while closed_at is None:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # reset (RST): dropped, no close frame
                data = b""
            if not data:
                closed_at = trio.current_time()
                break
            client.receive_data(data)
            for event in client.events():
                assert not isinstance(event, ws_events.CloseConnection)  # no close frame
                if isinstance(event, ws_events.Ping):
                    pings.append(trio.current_time() - start)
                    if len(pings) == 1:  # answer the first ping only
                        await stream.send_all(client.send(event.response()))
        assert pings[0] == pytest.approx(20.0, abs=0.01)
        assert pings[1] == pytest.approx(40.0, abs=0.01)
        assert closed_at - start == pytest.approx(100.0, abs=0.01)  # 60 s without a pong
        await stream.aclose()


@fail_after(30)
async def test_server_shutdown_event(autojump_clock: trio.abc.Clock) -> None:
    async with open_exchange_server("binance", rate_hz=0) as server:
        base = server.ws_url.removesuffix("/stream")
        async with (
            open_websocket_url(server.ws_url) as combined,
            open_websocket_url(f"{base}/ws") as raw,
        ):
            await server.wait_for(lambda s: s.statistics().connected == 2)
            assert server.send_server_shutdown() == 2
            event = await recv(combined)
            assert event["stream"] == "!serverShutdown"
            assert set(event["data"]) == {"e", "E"}
            assert event["data"]["e"] == "serverShutdown"
            bare = await recv(raw)
            assert bare["e"] == "serverShutdown"
            assert isinstance(bare["E"], int)
    async with open_exchange_server("kraken") as server:
        with pytest.raises(ValueError, match="Binance"):
            server.send_server_shutdown()


@fail_after(30)
async def test_rest_book_ticker_matches_the_stream(autojump_clock: trio.abc.Clock) -> None:
    async with (
        open_exchange_server("binance", seed=5, rate_hz=10.0) as server,
        open_websocket_url(server.ws_url) as ws,
        httpx.AsyncClient(base_url=server.rest_url) as http,
    ):
        await send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1})
        await recv(ws)
        book = (await recv(ws))["data"]
        server.set_rate(0)
        for frame in await collect(ws, 1.0):  # whatever was already on its way
            book = frame["data"]
        response = await http.get("/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
        assert (body["bidPrice"], body["bidQty"]) == (book["b"], book["B"])
        assert (body["askPrice"], body["askQty"]) == (book["a"], book["A"])
        assert body["symbol"] == "BTCUSDT"
        assert float(body["bidPrice"]) < float(body["askPrice"])

        bad = await http.get("/api/v3/ticker/bookTicker", params={"symbol": "NOPEUSDT"})
        assert bad.status_code == 400
        assert bad.json() == {"code": -1121, "msg": "Invalid symbol."}
        everything = await http.get("/api/v3/ticker/bookTicker")
        assert [t["symbol"] for t in everything.json()] == ["BTCUSDT", "ETHUSDT"]
        assert server.statistics().rest_requests == 3


@fail_after(30)
async def test_price_path_is_deterministic_for_a_seed(autojump_clock: trio.abc.Clock) -> None:
    async def first_books(seed: int) -> list[tuple]:
        async with (
            open_exchange_server("binance", seed=seed, rate_hz=None) as server,
            open_websocket_url(server.ws_url) as ws,
        ):
            await send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1})
            await recv(ws)
            books = [(await recv(ws))["data"] for _ in range(20)]
            return [(b["u"], b["b"], b["B"], b["a"], b["A"]) for b in books]

    assert await first_books(11) == await first_books(11)
    assert await first_books(11) != await first_books(12)
