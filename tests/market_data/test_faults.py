"""Faults injected by the local servers: drops, stalls, garbage, reconnect requests, limits."""

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
    connections_keeper,
    next_data,
    next_of,
    next_state,
    open_plane,
    open_plane_tree,
)

BTC, ETH = "BTC/USDT", "ETH/USDT"


def subscribe_requests(server: ExchangeServer) -> list[dict]:
    return [
        r.message
        for r in server.requests()
        if isinstance(r.message, dict) and r.message.get("method") == "SUBSCRIBE"
    ]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_dropped_connection_restores_every_stream_and_no_subscriber_is_lost(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    streams = [("ticker", BTC), ("ticker", ETH), ("trade", BTC), ("trade", ETH)]
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC, ETH), rate_hz=10.0) as server,
            open_plane([config_for(server)], transport=engine) as md,
            AsyncExitStack() as stack,
        ):
            channels = [
                await stack.enter_async_context(md.subscribe("binance", kind, symbol))
                for kind, symbol in streams
                for _ in range(2)
            ]
            await md.wait_streaming("binance")
            for events in channels:
                await next_data(events)
            assert len(subscribe_requests(server)) == 1  # all four streams in one request

            seen: dict[int, list[object]] = {i: [] for i in range(len(channels))}
            resumed = [trio.Event() for _ in channels]

            async def watch(i: int) -> None:
                async for item in channels[i]:
                    seen[i].append(item)
                    if isinstance(item, Ticker | Trade) and any(
                        isinstance(x, FeedState) and x.state == "down" for x in seen[i]
                    ):
                        resumed[i].set()

            async with trio.open_nursery() as nursery:
                for i in range(len(channels)):
                    nursery.start_soon(watch, i)
                await trio.testing.wait_all_tasks_blocked()
                assert server.drop_connections() == 1
                for event in resumed:
                    await event.wait()
                nursery.cancel_scope.cancel()
            for i, events in enumerate(channels):
                states = [x for x in seen[i] if isinstance(x, FeedState)]
                assert [x.state for x in states] == ["down", "live"]
                assert states[0].reason.startswith("connection ended: ConnectionLostError")
                data = [x for x in seen[i] if not isinstance(x, FeedState)]
                kind = Ticker if events.stream.kind == "ticker" else Trade
                assert data
                assert all(isinstance(x, kind) for x in data)
            await md.wait_streaming("binance")

            assert server.statistics().connections_accepted == 2
            restore = subscribe_requests(server)[1]
            assert sorted(restore["params"]) == sorted(
                ["btcusdt@bookTicker", "ethusdt@bookTicker", "btcusdt@trade", "ethusdt@trade"]
            )
            stats = md.statistics().exchanges["binance"]
            assert stats.reconnects == 1
            assert stats.restarts == 1
            assert [s.subscribers for s in stats.streams] == [2, 2, 2, 2]
            assert all(s.live for s in stats.streams)
            assert [t.to_state for t in stats.transitions] == [
                "connecting",
                "streaming",
                "connecting",
                "backoff",
                "connecting",
                "streaming",
            ]


async def test_a_stall_is_detected_at_stale_after_s_and_the_connection_replaced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(120):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=5.0)]) as md,
            md.subscribe("binance", "ticker", BTC) as events,
        ):
            await md.wait_streaming("binance")
            last = await next_of(events, Ticker)
            last_at = trio.current_time()
            server.stall()
            # Nothing else arrives; note when the last ticker came and when stale is told.
            stale = await next_state(events, "stale")
            assert trio.current_time() - last_at == pytest.approx(5.0, abs=0.1 + 1e-9)
            assert stale.reason == "no data for 5.0 s"
            down = await next_state(events, "down")
            assert "StaleFeedError: no frame at all" in down.reason
            await trio.testing.wait_all_tasks_blocked()
            stats = md.statistics().exchanges["binance"]
            assert stats.stale_replacements == 1
            assert stats.state in ("backoff", "connecting")
            assert "no frame at all" in (stats.last_error or "")
            server.resume()
            await next_of(events, Ticker)
            assert (await md.wait_streaming("binance")) is None
            stats = md.statistics().exchanges["binance"]
            assert stats.connects == 2
            assert server.statistics().connections_accepted == 2
            del last


async def test_stale_is_told_exactly_stale_after_s_after_the_last_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A quiet stream on a live connection is told stale at exactly last data + stale_after_s;
    the connection is kept while another stream still flows."""
    with trio.fail_after(120):
        async with (
            open_exchange_server("binance", (BTC, ETH), rate_hz=0.0) as server,
            open_plane([config_for(server, stale_after_s=5.0)]) as md,
            md.subscribe("binance", "ticker", BTC) as btc,
            md.subscribe("binance", "ticker", ETH) as eth,
        ):
            await md.wait_streaming("binance")
            subscribed_at = trio.current_time()
            # No market data at all: both streams go stale 5 s after the subscribe, and with
            # every stream stale (and no frame at all) the connection is replaced.
            assert (await next_state(btc, "stale")).stream == Stream("ticker", BTC)
            await next_state(eth, "stale")
            assert trio.current_time() - subscribed_at == pytest.approx(5.0, abs=1e-6)
            await next_state(btc, "down")
            assert md.statistics().exchanges["binance"].stale_replacements == 1


async def test_a_quiet_stream_is_stale_but_its_connection_is_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(120):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=5.0)]) as md,
            md.subscribe("binance", "ticker", BTC) as btc,
            # A well-formed stream for a symbol the exchange does not list: acked, never data.
            md.subscribe("binance", "ticker", "NOPE/USDT") as nope,
        ):
            await md.wait_streaming("binance")
            started = trio.current_time()
            stale = await next_state(nope, "stale")
            assert trio.current_time() - started == pytest.approx(5.0, abs=1e-6)
            assert stale.stream == Stream("ticker", "NOPE/USDT")
            # it never brought data, so nothing can repair it: never resubscribed, and its
            # connection is kept through many stale periods
            for _ in range(300):
                await next_of(btc, Ticker)
            stats = md.statistics().exchanges["binance"]
            assert (stats.stale_replacements, stats.stream_repairs) == (0, 0)
            assert stats.connects == 1
            assert {(s.symbol, s.stale) for s in stats.streams} == {
                (BTC, False),
                ("NOPE/USDT", True),
            }


async def test_a_stream_joining_a_lingering_socket_is_watched_for_staleness(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A socket lingering with nothing to carry has no watchdog deadline to speak of; a stream
    that joins it must still be told stale exactly stale_after_s after its subscribe."""
    with trio.fail_after(120):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=5.0)], idle_linger_s=60.0) as md,
        ):
            async with md.subscribe("binance", "ticker", BTC) as btc:
                await md.wait_streaming("binance")
                await next_of(btc, Ticker)
            await trio.sleep(10.0)  # the watchdog has looked again: nothing is watched now
            async with md.subscribe("binance", "ticker", "NOPE/USDT") as nope:
                subscribed_at = trio.current_time()
                await next_state(nope, "stale")
                assert trio.current_time() - subscribed_at == pytest.approx(5.0, abs=1e-6)
            assert server.statistics().connections_accepted == 1


async def test_a_garbage_frame_is_counted_and_the_connection_stays_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server)]) as md,
            md.subscribe("binance", "ticker", BTC) as events,
        ):
            await md.wait_streaming("binance")
            await next_of(events, Ticker)
            assert server.send_garbage() == 1
            assert server.send_garbage('{"stream":"btcusdt@bookTicker","data":{"u":"x"}}') == 1
            for _ in range(5):
                await next_of(events, Ticker)
            stats = md.statistics().exchanges["binance"]
            assert stats.decode_errors == 2
            assert stats.connects == 1
            assert stats.state == "streaming"
            assert server.statistics().connections_accepted == 1


async def test_server_shutdown_is_a_clean_reconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane_tree([config_for(server)]) as (md, tree),
            md.subscribe("binance", "trade", BTC) as events,
        ):
            await md.wait_streaming("binance")
            await trio.sleep(2.0)  # past min_session_s
            assert server.send_server_shutdown() == 1
            await server.wait_for(lambda s: s.statistics().connections_accepted == 2)
            await next_of(events, Trade)
            await md.wait_streaming("binance")
            stats = md.statistics().exchanges["binance"]
            assert (stats.reconnects, stats.restarts, stats.connects) == (1, 0, 2)
            assert connections_keeper(tree, "binance").consecutive_failures == 0
            assert len(subscribe_requests(server)) == 2


async def test_the_connection_lifetime_is_renewed_before_the_exchange_cuts_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(200):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            # 45 s, not a multiple of Binance's 20 s ping: trio-websocket 0.12.2 fails when a
            # ping arrives during its close handshake (see actors/transport.py).
            open_plane([config_for(server)], max_lifetime_s=45.0) as md,
            md.subscribe("binance", "ticker", BTC) as events,
        ):
            await md.wait_streaming("binance")
            connected_at = trio.current_time()
            await server.wait_for(lambda s: s.statistics().connections_accepted == 2)
            assert trio.current_time() - connected_at == pytest.approx(45.0, abs=1e-6)
            await next_of(events, Ticker)
            stats = md.statistics().exchanges["binance"]
            assert (stats.reconnects, stats.restarts) == (1, 0)


async def test_streams_past_the_per_connection_limit_open_a_second_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC, ETH), rate_hz=10.0) as server,
            open_plane([config_for(server)], max_streams_per_connection=3) as md,
            AsyncExitStack() as stack,
        ):
            channels = [
                await stack.enter_async_context(md.subscribe("binance", kind, symbol))
                for kind in ("ticker", "trade")
                for symbol in (BTC, ETH)
            ]
            await md.wait_streaming("binance")
            for events in channels:
                await next_data(events)
            assert server.statistics().connections_accepted == 2
            by_connection = {
                c: sorted(r.message["params"])
                for c in server.connection_ids()
                for r in server.requests(c)
            }
            assert sorted(len(p) for p in by_connection.values()) == [1, 3]
            stats = md.statistics().exchanges["binance"]
            assert [c.streams for c in stats.connections] == [3, 1]
            assert sorted(s.connection for s in stats.streams) == [0, 0, 0, 1]


async def test_binance_request_rate_never_exceeds_five_per_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    symbols = [f"C{i}/USDT" for i in range(12)]
    with trio.fail_after(120):
        async with (
            open_exchange_server("binance", symbols, rate_hz=2.0) as server,
            open_plane([config_for(server)]) as md,
        ):
            leaving = []
            for symbol in symbols:  # one new stream every 50 ms: 20 requests/s if unbudgeted
                for kind in ("ticker", "trade"):
                    stack = AsyncExitStack()
                    events = await stack.enter_async_context(md.subscribe("binance", kind, symbol))
                    leaving.append((stack, events))
                    await trio.sleep(0.05)
            await md.wait_streaming("binance")
            for _, events in leaving:
                await next_data(events)
            assert len(server.statistics().subscribers) == 24
            for stack, _ in leaving:  # and leave one every 50 ms
                await stack.aclose()
                await trio.sleep(0.05)
            await server.wait_for(lambda s: not s.statistics().subscribers)
            times = [r.received_at for r in server.requests()]
            assert len(times) >= 8  # the budget had work to do: batches of several streams
            assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 5
            assert server.statistics().connections_accepted == 1  # never cut for the rate


async def test_a_refused_subscription_is_told_to_its_subscribers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("coinbase", ("BTC/USD",), rate_hz=10.0) as server,
            open_plane([config_for(server)]) as md,
            md.subscribe("coinbase", "ticker", "BTC/USD") as good,
        ):
            await md.wait_streaming("coinbase")
            await next_of(good, Ticker)
            async with md.subscribe("coinbase", "ticker", "NOPE/USD") as bad:
                down = await next_state(bad, "down")
                assert "refused by the exchange" in down.reason
                assert "NOPE-USD" in down.reason
            await next_of(good, Ticker)
            stats = md.statistics().exchanges["coinbase"]
            assert stats.subscription_errors == 1
            assert stats.connects == 1
            assert stats.state == "streaming"


async def test_a_sequence_gap_is_a_clean_reconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Coinbase Advanced numbers every frame of a connection; a jump means lost frames."""
    with trio.fail_after(60):
        async with (
            open_exchange_server("coinbase_advanced", ("BTC/USD",), rate_hz=10.0) as server,
            open_plane([config_for(server)]) as md,
            md.subscribe("coinbase_advanced", "ticker", "BTC/USD") as events,
        ):
            await md.wait_streaming("coinbase_advanced")
            await next_of(events, Ticker)
            await trio.sleep(2.0)  # past min_session_s
            server.send_garbage(
                '{"channel":"heartbeats","client_id":"","timestamp":"2026-08-09T21:05:48.2Z",'
                '"sequence_num":1000000,"events":[{"current_time":"x","heartbeat_counter":1}]}'
            )
            await server.wait_for(lambda s: s.statistics().connections_accepted == 2)
            await next_of(events, Ticker)
            stats = md.statistics().exchanges["coinbase_advanced"]
            assert (stats.reconnects, stats.restarts) == (1, 0)
            assert stats.connections[0].sequence_gaps == 1


async def test_a_reconnect_request_right_after_connecting_is_paced_by_the_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server)]) as md,
            md.subscribe("binance", "ticker", BTC) as events,
        ):
            await md.wait_streaming("binance")
            assert server.send_server_shutdown() == 1
            await next_state(events, "down")
            await trio.testing.wait_all_tasks_blocked()
            stats = md.statistics().exchanges["binance"]
            assert stats.state == "backoff"
            assert "ProtocolError" in (stats.last_error or "")
            await md.wait_streaming("binance")
            assert md.statistics().exchanges["binance"].restarts == 1


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_handshake_that_never_completes_times_out(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    with trio.fail_after(120):
        async with open_exchange_server("binance", (BTC,), rate_hz=10.0) as server:
            server.stall()  # accepts TCP, never answers the upgrade
            async with (
                open_plane([config_for(server)], transport=engine) as md,
                md.subscribe("binance", "ticker", BTC) as events,
            ):
                started = trio.current_time()
                down = await next_state(events, "down")
                assert trio.current_time() - started == pytest.approx(10.0, abs=1e-6)
                assert "ConnectionLostError" in down.reason or "timed out" in down.reason
                server.resume()
                await next_of(events, Ticker)
