"""The subscription actor: linger before the wire unsubscribe, per-stream staleness on its own
timer, and the source (WebSocket or REST fallback) that feeds it."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from actors.market_data.subscription import Subscription
from actors.messages import FeedState, Stream, Ticker
from actors.simulator import ExchangeServer, open_exchange_server
from supervisor.config import BackoffPolicy, BreakerPolicy
from tests.market_data.helpers import (
    ENGINES,
    config_for,
    connections_keeper,
    next_of,
    next_state,
    open_plane,
    open_plane_tree,
)

BTC = "BTC/USDT"
LINGER_S = 3.0


def requests_with(server: ExchangeServer, method: str) -> list[dict]:
    return [
        r.message
        for r in server.requests()
        if isinstance(r.message, dict) and r.message.get("method") == method
    ]


def ticker(n: int) -> Ticker:
    return Ticker("binance", BTC, Decimal(n), Decimal(n + 1), None, None, None, None, 0.0)


# --- linger ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_subscriber_back_within_the_linger_costs_no_wire_message(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server)], transport=engine, unsubscribe_linger_s=LINGER_S) as md,
        ):
            async with md.subscribe("binance", "ticker", BTC) as events:
                await md.wait_streaming("binance")
                await next_of(events, Ticker)
            await trio.sleep(LINGER_S - 0.5)
            (stream,) = md.statistics().exchanges["binance"].streams
            assert (stream.subscribers, stream.lingering) == (0, True)

            # Back within the linger: the stream is still live, with its newest ticker.
            async with md.subscribe("binance", "ticker", BTC) as events:
                assert await events.receive() == FeedState("binance", Stream("ticker", BTC), "live")
                assert isinstance(await events.receive(), Ticker)
                await trio.sleep(2 * LINGER_S)  # the first linger would have ended by now
                (stream,) = md.statistics().exchanges["binance"].streams
                assert (stream.subscribers, stream.lingering) == (1, False)
            left_at = trio.current_time()
            assert requests_with(server, "UNSUBSCRIBE") == []
            assert len(requests_with(server, "SUBSCRIBE")) == 1

            # Gone for good: exactly one unsubscribe, when the linger ends.
            await trio.sleep_until(left_at + LINGER_S - 0.001)
            assert len(md.statistics().exchanges["binance"].streams) == 1
            assert requests_with(server, "UNSUBSCRIBE") == []
            await trio.sleep_until(left_at + LINGER_S + 0.001)
            assert md.statistics().exchanges["binance"].streams == ()
            await server.wait_for(lambda s: s.subscribe_count(Stream("ticker", BTC)) == 0)
            await trio.sleep(2 * LINGER_S)
            assert len(requests_with(server, "UNSUBSCRIBE")) == 1
            assert len(requests_with(server, "SUBSCRIBE")) == 1
            stats = md.statistics().exchanges["binance"]
            assert (stats.subscribe_requests, stats.unsubscribe_requests) == (1, 1)


async def test_the_linger_restarts_with_each_last_subscriber_leaving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server)], unsubscribe_linger_s=LINGER_S) as md,
        ):
            async with md.subscribe("binance", "trade", BTC):
                await md.wait_streaming("binance")
            for _ in range(3):  # comes and goes, each time within the linger
                await trio.sleep(LINGER_S - 1.0)
                async with md.subscribe("binance", "trade", BTC):
                    pass
            left_at = trio.current_time()
            await server.wait_for(lambda s: len(requests_with(s, "UNSUBSCRIBE")) == 1)
            assert trio.current_time() - left_at >= LINGER_S
            assert len(requests_with(server, "SUBSCRIBE")) == 1


# --- staleness on the actor's own timer ----------------------------------------------------------


async def test_stale_is_told_exactly_stale_after_s_after_the_last_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sub = Subscription("binance", Stream("ticker", BTC), stale_after_s=5.0)
    events = sub.acquire()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sub.run)
            start = trio.current_time()
            sub.watch(start)  # the wire subscribe went out
            await trio.sleep(1.0)
            assert sub.publish(ticker(1), trio.current_time()) is True  # live
            await trio.sleep(2.0)
            assert sub.publish(ticker(2), trio.current_time()) is False
            stale = await next_state(events, "stale")
            assert trio.current_time() - start == 3.0 + 5.0
            assert stale.reason == "no data for 5.0 s"

            # Data makes it live again, and the timer starts over from that data.
            await trio.sleep(4.0)
            assert sub.publish(ticker(3), trio.current_time()) is True
            data_at = trio.current_time()
            await next_state(events, "live")
            await next_state(events, "stale")
            assert trio.current_time() - data_at == 5.0

            # A stream that nothing is expected to feed (down, or fed by REST) is never stale.
            sub.publish(ticker(4), trio.current_time())
            sub.down("connection ended")
            await trio.sleep(20.0)
            sub.use_source("rest")
            sub.watch(trio.current_time())
            await trio.sleep(20.0)
            assert sub.state == "down"
            nursery.cancel_scope.cancel()


async def test_a_stream_that_never_reports_is_stale_exactly_stale_after_s_after_its_subscribe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=4.0)]) as md,
            md.subscribe("binance", "ticker", BTC) as btc,
        ):
            await md.wait_streaming("binance")
            await next_of(btc, Ticker)
            # Acked, never any data: a symbol the exchange does not list.
            async with md.subscribe("binance", "trade", "NOPE/USDT") as nope:
                await server.wait_for(
                    lambda s: s.subscribe_count(Stream("trade", "NOPE/USDT")) == 1
                )
                subscribed_at = server.requests()[-1].received_at
                await next_state(nope, "stale")
                assert trio.current_time() - subscribed_at == pytest.approx(4.0, abs=1e-3)
                await next_of(btc, Ticker)  # the other stream flows on the same connection
            assert md.statistics().exchanges["binance"].connects == 1


# --- source: WebSocket <-> REST fallback ---------------------------------------------------------


async def test_the_source_switches_to_rest_while_the_breaker_is_open_and_back_to_ws(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backoff = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=4.0, reset_after_s=10.0)
    breaker = BreakerPolicy(failure_threshold=2, reset_timeout_s=20.0)
    with trio.fail_after(300):
        async with open_exchange_server("binance", (BTC,), rate_hz=10.0) as server:
            config = config_for(server, fallback="rest", rest_poll_interval_s=2.0)
            async with (
                open_plane_tree([config], backoff=backoff, breaker=breaker) as (md, tree),
                md.subscribe("binance", "ticker", BTC) as events,
            ):

                def source() -> str:
                    (stream,) = md.statistics().exchanges["binance"].streams
                    return stream.source

                await md.wait_streaming("binance")
                assert (await next_of(events, Ticker)).source == "ws"
                assert source() == "ws"

                # WS -> REST: the connection fails until the breaker opens.
                server.refuse_handshakes(503)
                server.drop_connections()
                await next_state(events, "down", "circuit open")
                assert source() == "rest"
                await next_state(events, "fallback")
                assert (await next_of(events, Ticker)).source == "rest"

                # REST -> WS: the half-open trial brings the stream back on the WebSocket, and
                # REST stops feeding it even though the breaker is not closed yet.
                server.clear_refusals()
                await next_state(events, "live")
                assert source() == "ws"
                assert connections_keeper(tree, "binance").breaker_state == "half_open"
                fallback = md.statistics().exchanges["binance"].fallback
                assert fallback is not None
                requests = fallback.requests
                for _ in range(20):  # two seconds of WebSocket tickers, no REST one among them
                    assert (await next_of(events, Ticker)).source == "ws"
                fallback = md.statistics().exchanges["binance"].fallback
                assert fallback is not None
                assert (fallback.active, fallback.requests) == (True, requests)

                # The trial fails: back to REST at once.
                server.refuse_handshakes(503)
                server.drop_connections()
                await next_state(events, "down", "circuit open")
                assert source() == "rest"
                await next_state(events, "fallback")
                assert (await next_of(events, Ticker)).source == "rest"

                # And the next trial succeeds: WebSocket, then the breaker closes.
                server.clear_refusals()
                await next_state(events, "live")
                await trio.sleep(backoff.reset_after_s + 0.1)
                stats = md.statistics().exchanges["binance"]
                assert stats.breaker_state == "closed"
                assert stats.fallback is not None
                assert not stats.fallback.active
                assert source() == "ws"
                assert (await next_of(events, Ticker)).source == "ws"
