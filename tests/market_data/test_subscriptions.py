"""Reference-counted subscriptions over one pooled connection, against the local servers."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing

from actors.messages import FeedState, Stream, Ticker, Trade
from actors.simulator import ExchangeServer, open_exchange_server
from tests.market_data.helpers import (
    ENGINES,
    config_for,
    next_data,
    next_of,
    open_plane,
)

BTC = "BTC/USDT"


def requests_with(server: ExchangeServer, method: str) -> list[dict]:
    return [
        r.message
        for r in server.requests()
        if isinstance(r.message, dict) and r.message.get("method") == method
    ]


@pytest.mark.parametrize("engine", ENGINES)
async def test_ten_subscribers_share_one_connection_and_one_wire_subscription(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server)], transport=engine) as md,
            AsyncExitStack() as stack,
        ):
            channels = [
                await stack.enter_async_context(md.subscribe("binance", "ticker", BTC))
                for _ in range(10)
            ]
            await md.wait_streaming("binance")
            for events in channels:
                assert await next_of(events, FeedState) == FeedState(
                    "binance", Stream("ticker", BTC), "live"
                )
                ticker = await next_of(events, Ticker)
                assert (ticker.exchange, ticker.symbol, ticker.source) == ("binance", BTC, "ws")
            stats = server.statistics()
            assert stats.connections_accepted == 1
            assert requests_with(server, "SUBSCRIBE") == [
                {"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1}
            ]
            plane = md.statistics().exchanges["binance"]
            assert plane.streams[0].subscribers == 10
            assert len(plane.subscribers) == 10

            # Nine leave: nothing on the wire.
            for events in channels[:9]:
                await events.aclose()
            await stack.aclose()  # leaves all ten, the last one last
            await server.wait_for(lambda s: len(requests_with(s, "UNSUBSCRIBE")) == 1)
            await trio.testing.wait_all_tasks_blocked()
            assert requests_with(server, "UNSUBSCRIBE") == [
                {"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 2}
            ]
            assert len(requests_with(server, "SUBSCRIBE")) == 1
            plane = md.statistics().exchanges["binance"]
            assert (plane.subscribe_requests, plane.unsubscribe_requests) == (1, 1)
            assert plane.streams == ()


async def test_the_last_of_ten_leaving_unsubscribes_exactly_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Subscribers leave one by one while data flows; only the tenth causes an UNSUBSCRIBE."""
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=20.0) as server,
            open_plane([config_for(server)]) as md,
        ):
            leave = [trio.Event() for _ in range(10)]
            left = [trio.Event() for _ in range(10)]

            async def subscriber(i: int) -> None:
                async with md.subscribe("binance", "ticker", BTC) as events:
                    await next_of(events, Ticker)
                    await leave[i].wait()
                left[i].set()

            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(subscriber, i)
                await md.wait_streaming("binance")
                for i in range(9):
                    leave[i].set()
                    await left[i].wait()
                    await trio.sleep(0.5)  # data keeps flowing to the last one
                    assert requests_with(server, "UNSUBSCRIBE") == []
                    assert server.subscribe_count(Stream("ticker", BTC)) == 1
                leave[9].set()
            await server.wait_for(lambda s: s.subscribe_count(Stream("ticker", BTC)) == 0)
            assert len(requests_with(server, "UNSUBSCRIBE")) == 1
            assert len(requests_with(server, "SUBSCRIBE")) == 1


async def test_a_cancelled_subscriber_never_leaks_its_reference(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server)]) as md,
        ):
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    async with md.subscribe("binance", "trade", BTC) as events:
                        async for _ in events:
                            pass

                nursery.start_soon(reader)
                await md.wait_streaming("binance")
                await server.wait_for(lambda s: s.subscribe_count(Stream("trade", BTC)) == 1)
                nursery.cancel_scope.cancel()
            (stream,) = md.statistics().exchanges["binance"].streams
            assert (stream.subscribers, stream.lingering) == (0, True)
            await server.wait_for(lambda s: s.subscribe_count(Stream("trade", BTC)) == 0)
            assert md.statistics().exchanges["binance"].streams == ()


async def test_subscribing_and_leaving_before_the_connection_acts_costs_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC, "ETH/USDT"), rate_hz=10.0) as server,
            open_plane([config_for(server)]) as md,
        ):
            async with md.subscribe("binance", "ticker", "ETH/USDT") as events:
                await next_data(events)
                for _ in range(5):
                    async with md.subscribe("binance", "ticker", BTC):
                        pass  # no checkpoint inside: the connection never saw it
                await trio.testing.wait_all_tasks_blocked()
            await server.wait_for(lambda s: len(requests_with(s, "UNSUBSCRIBE")) == 1)
            assert [r["params"] for r in requests_with(server, "SUBSCRIBE")] == [
                ["ethusdt@bookTicker"]
            ]


async def test_unknown_exchange_kind_or_symbol_is_a_clear_value_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(10):
        async with (
            open_exchange_server("binance", (BTC,)) as server,
            open_plane([config_for(server)]) as md,
        ):
            with pytest.raises(ValueError, match=r"unknown exchange 'kraken'.*binance"):
                md.subscribe("kraken", "ticker", BTC)
            with pytest.raises(ValueError, match="unknown stream kind 'book'"):
                md.subscribe("binance", "book", BTC)
            with pytest.raises(ValueError, match="btcusdt"):
                md.subscribe("binance", "ticker", "btcusdt")
            assert md.statistics().exchanges["binance"].state == "idle"


@pytest.mark.parametrize(
    ("protocol", "symbol"),
    [("binance", "BTC/USDT"), ("coinbase", "BTC/USD"), ("kraken", "BTC/USD")],
)
@pytest.mark.parametrize("engine", ENGINES)
async def test_each_protocol_through_the_whole_plane(
    autojump_clock: trio.testing.MockClock, protocol: str, symbol: str, engine: str
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server(protocol, (symbol, "ETH/" + symbol[4:]), rate_hz=10.0) as server,
            open_plane([config_for(server, name=f"my-{protocol}")], transport=engine) as md,
        ):
            async with (
                md.subscribe(f"my-{protocol}", "ticker", symbol) as tickers,
                md.subscribe(f"my-{protocol}", "trade", symbol) as trades,
            ):
                await md.wait_streaming(f"my-{protocol}")
                ticker = await next_of(tickers, Ticker)
                trade = await next_of(trades, Trade)
                assert (ticker.exchange, ticker.symbol, ticker.source) == (
                    f"my-{protocol}",
                    symbol,
                    "ws",
                )
                assert ticker.bid <= ticker.ask
                assert (trade.exchange, trade.symbol) == (f"my-{protocol}", symbol)
                assert trade.side in ("buy", "sell")
                stream_stats = md.statistics().exchanges[f"my-{protocol}"].streams
                assert {(s.kind, s.symbol, s.subscribers, s.live) for s in stream_stats} == {
                    ("ticker", symbol, 1, True),
                    ("trade", symbol, 1, True),
                }
            await server.wait_for(lambda s: not s.statistics().subscribers)
            stats = md.statistics().exchanges[f"my-{protocol}"]
            assert stats.decode_errors == 0
            assert stats.connects == 1
            assert stats.messages_received > 0
