"""Fan-out through the whole plane: slow subscribers, overflow, many events, many listeners."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing

from actors.market_data.mailbox import Mailbox
from actors.messages import FeedState, Lagged, Stream, Ticker, Trade
from actors.simulator import open_exchange_server
from tests.market_data.helpers import ENGINES, config_for, next_of, open_plane

BTC = "BTC/USDT"


async def test_a_subscriber_that_never_reads_delays_no_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=50.0) as server,
            open_plane([config_for(server)], trade_ring_size=16) as md,
            md.subscribe("binance", "ticker", BTC) as fast,
            md.subscribe("binance", "ticker", BTC) as idle,
            md.subscribe("binance", "trade", BTC) as fast_trades,
            md.subscribe("binance", "trade", BTC) as idle_trades,
        ):
            await md.wait_streaming("binance")
            assert isinstance(await fast.receive(), FeedState)
            assert isinstance(await fast_trades.receive(), FeedState)
            # Each step sends a trade, then the book it left: read both of the first step.
            tickers = [await next_of(fast, Ticker)]
            trades = [await next_of(fast_trades, Trade)]
            started = trio.current_time()
            for _ in range(100):
                tickers.append(await fast.receive())  # type: ignore[arg-type]
                trades.append(await fast_trades.receive())  # type: ignore[arg-type]
            # At 50 events/s the fast reader kept pace: 100 events in exactly 2 s.
            assert trio.current_time() - started == pytest.approx(2.0, abs=1e-6)
            assert all(isinstance(t, Ticker) for t in tickers)
            ids = [t.sequence for t in trades]
            assert ids == list(range(ids[0], ids[0] + 101))  # every trade, in order

            assert isinstance(fast, Mailbox)
            assert isinstance(idle, Mailbox)
            assert fast.statistics().skipped == 0
            assert idle.statistics().skipped >= 100
            assert fast_trades.statistics().dropped == 0  # type: ignore[attr-defined]
            dropped = idle_trades.statistics().dropped  # type: ignore[attr-defined]
            assert dropped > 80

            # The idle ones finally read: the state, then only the newest ticker...
            assert (await idle.receive()).state == "live"  # type: ignore[union-attr]
            newest = await idle.receive()
            assert newest == tickers[-1]
            # ...and, for trades, a Lagged notice before the 16 trades still buffered.
            assert isinstance(await idle_trades.receive(), FeedState)
            lagged = await idle_trades.receive()
            assert lagged == Lagged(Stream("trade", BTC), dropped)
            kept = [idle_trades.receive_nowait() for _ in range(16)]  # type: ignore[attr-defined]
            assert kept == trades[-16:]

            stats = md.statistics().exchanges["binance"]
            assert stats.dropped == dropped
            assert stats.skipped == idle.statistics().skipped
            by_stream = {s.stream.kind: s for s in stats.subscribers if s.dropped or s.skipped}
            assert by_stream["trade"].dropped == dropped


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_thousand_rapid_events_to_a_hundred_listeners(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    """Correctness under a flood: every ticker listener ends with the newest ticker and its
    delivered + skipped counts add up to what was published; every trade listener gets every
    trade, in order (the ring is larger than the flood)."""
    listeners = 100
    with trio.fail_after(120):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=0.0) as server,
            open_plane([config_for(server)], transport=engine) as md,
            AsyncExitStack() as stack,
        ):
            ticker_channels = [
                await stack.enter_async_context(md.subscribe("binance", "ticker", BTC))
                for _ in range(listeners)
            ]
            trade_channels = [
                await stack.enter_async_context(md.subscribe("binance", "trade", BTC))
                for _ in range(listeners)
            ]
            await md.wait_streaming("binance")
            last_ticker: list[Ticker | None] = [None] * listeners
            ticker_counts = [0] * listeners
            trade_ids: list[list[int]] = [[] for _ in range(listeners)]

            async def read_tickers(i: int) -> None:
                async for item in ticker_channels[i]:
                    if isinstance(item, Ticker):
                        last_ticker[i] = item
                        ticker_counts[i] += 1
                    else:
                        assert item == FeedState("binance", Stream("ticker", BTC), "live")

            async def read_trades(i: int) -> None:
                async for item in trade_channels[i]:
                    assert not isinstance(item, Lagged)
                    if isinstance(item, Trade):
                        trade_ids[i].append(item.sequence)  # type: ignore[arg-type]

            async with trio.open_nursery() as nursery:
                for i in range(listeners):
                    nursery.start_soon(read_tickers, i)
                    nursery.start_soon(read_trades, i)
                await trio.testing.wait_all_tasks_blocked()
                server.set_rate(None)  # as fast as the socket takes them
                await server.wait_for(lambda s: s.statistics().frames_sent >= 2_000)
                server.set_rate(0.0)
                await trio.testing.wait_all_tasks_blocked()
                stats = md.statistics().exchanges["binance"]
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()

            streams = {s.kind: s for s in stats.streams}
            published_tickers = streams["ticker"].published
            published_trades = streams["trade"].published
            assert published_tickers >= 1_000
            assert published_trades == published_tickers
            newest = max((t for t in last_ticker if t is not None), key=lambda t: t.sequence or 0)
            assert all(t == newest for t in last_ticker)  # everyone ends with the newest
            skipped = [m.skipped for m in stats.subscribers if m.stream.kind == "ticker"]
            assert [c + s for c, s in zip(ticker_counts, skipped, strict=True)] == [
                published_tickers
            ] * listeners
            assert stats.skipped == sum(skipped)
            first = trade_ids[0][0]
            expected = list(range(first, first + published_trades))
            assert all(ids == expected for ids in trade_ids)
            assert stats.dropped == 0
            assert stats.messages_received == 2 * published_trades + 1  # + the ack
