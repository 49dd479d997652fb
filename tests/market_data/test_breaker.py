"""Circuit breaker per exchange and the REST fallback, against a server refusing handshakes."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.messages import FeedState, Ticker
from actors.simulator import open_exchange_server
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

BACKOFF = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=4.0, reset_after_s=5.0)
BREAKER = BreakerPolicy(failure_threshold=3, reset_timeout_s=20.0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("status", [429, 503])
async def test_refused_handshakes_open_the_breaker_rest_serves_and_the_probe_closes_it(
    autojump_clock: trio.testing.MockClock, status: int, engine: str
) -> None:
    symbol = "BTC/USDT"
    with trio.fail_after(300):
        async with open_exchange_server("binance", (symbol,), rate_hz=10.0) as server:
            server.refuse_handshakes(status)  # every handshake, until cleared
            config = config_for(server, fallback="rest", rest_poll_interval_s=2.0)
            async with (
                open_plane_tree([config], backoff=BACKOFF, breaker=BREAKER, transport=engine) as (
                    md,
                    tree,
                ),
                md.subscribe("binance", "ticker", symbol) as events,
                md.subscribe("binance", "trade", symbol) as trades,
            ):
                first = await next_state(events, "down")
                assert first.reason.startswith(
                    f"connection failed: handshake refused with HTTP {status}"
                )
                await next_state(events, "down", "circuit open")
                opened_at = trio.current_time()
                stats = md.statistics().exchanges["binance"]
                assert stats.breaker_state == "open"
                keeper = connections_keeper(tree, "binance")
                assert (keeper.consecutive_failures, keeper.breaker_state) == (3, "open")
                assert stats.restarts == 2  # three runs of the connections
                assert server.statistics().handshakes_refused == 3
                assert f"HTTP {status}" in (stats.last_error or "")

                # REST serves the ticker subscribers meanwhile.
                assert await next_of(events, FeedState) == FeedState(
                    "binance", events.stream, "fallback", "circuit open: REST polling"
                )
                rest_tickers = [await next_of(events, Ticker) for _ in range(3)]
                assert all(t.source == "rest" for t in rest_tickers)
                assert all((t.exchange, t.symbol) == ("binance", symbol) for t in rest_tickers)
                stats = md.statistics().exchanges["binance"]
                assert stats.state == "fallback"
                assert stats.fallback is not None
                assert stats.fallback.active
                assert stats.fallback.tickers >= 3
                assert stats.fallback.errors == 0
                assert server.statistics().handshakes_refused == 3  # no attempt while open
                await next_state(trades, "down", "circuit open")

                # The server recovers; the half-open probe at reset_timeout_s connects.
                server.clear_refusals()
                await md.wait_streaming("binance")
                assert trio.current_time() - opened_at == pytest.approx(20.0, abs=1e-6)
                assert md.statistics().exchanges["binance"].breaker_state == "half_open"
                live = await next_state(events, "live")
                assert live.stream == events.stream
                assert (await next_of(events, Ticker)).source == "ws"

                # It closes after a healthy run of backoff.reset_after_s; REST stops.
                await trio.sleep(BACKOFF.reset_after_s + 0.1)
                stats = md.statistics().exchanges["binance"]
                assert stats.breaker_state == "closed"
                assert stats.fallback is not None
                assert not stats.fallback.active
                requests = stats.fallback.requests
                await trio.sleep(10.0)
                stats = md.statistics().exchanges["binance"]
                assert stats.fallback is not None
                assert stats.fallback.requests == requests
                assert stats.state == "streaming"
                assert stats.breaker_transitions == 3
                assert [t.to_state for t in stats.transitions] == [
                    "connecting",
                    "backoff",
                    "connecting",
                    "backoff",
                    "connecting",
                    "circuit_open",
                    "fallback",  # the REST poller started
                    "streaming",  # the half-open probe restored every stream
                ]


async def test_rest_errors_are_counted_and_never_crash_the_plane(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(300):
        async with open_exchange_server("kraken", ("BTC/USD",), rate_hz=10.0) as server:
            server.refuse_handshakes(503)
            # A symbol the server does not list: REST answers Kraken's HTTP-200 error body.
            config = config_for(server, fallback="rest", rest_poll_interval_s=1.0)
            async with (
                open_plane([config], backoff=BACKOFF, breaker=BREAKER) as md,
                md.subscribe("kraken", "ticker", "NOPE/USD") as events,
            ):
                await next_state(events, "down", "circuit open")
                await trio.sleep(3.5)  # four poll rounds, one per rest_poll_interval_s
                stats = md.statistics().exchanges["kraken"]
                assert stats.fallback is not None
                assert (stats.fallback.rounds, stats.fallback.errors) == (4, 4)
                assert stats.fallback.tickers == 0
                assert "Unknown asset pair" in (stats.fallback.last_error or "")
                assert stats.state == "fallback"


async def test_without_fallback_the_open_breaker_means_down_and_no_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(300):
        async with open_exchange_server("coinbase", ("BTC/USD",), rate_hz=10.0) as server:
            server.refuse_handshakes(429)
            async with (
                open_plane([config_for(server)], backoff=BACKOFF, breaker=BREAKER) as md,
                md.subscribe("coinbase", "ticker", "BTC/USD") as events,
            ):
                await next_state(events, "down", "circuit open")
                await trio.sleep(19.0)
                stats = md.statistics().exchanges["coinbase"]
                assert stats.state == "circuit_open"
                assert stats.fallback is None
                assert server.statistics().handshakes_refused == 3
                assert server.statistics().rest_requests == 0
