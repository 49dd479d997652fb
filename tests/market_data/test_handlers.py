"""Handlers (``subscribe_handler``): a subscriber that is a function, called by the reader with
every item of its stream, against the local servers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio
import trio.testing

from actors.errors import HandlerError
from actors.market_data.mailbox import TickerSlot
from actors.messages import FeedState, Stream, Ticker, Trade
from actors.simulator import open_exchange_server
from tests.market_data.helpers import ENGINES, config_for, next_of, open_plane
from tests.market_data.test_subscriptions import requests_with

BTC, ETH = "BTC/USDT", "ETH/USDT"


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_handler_gets_every_ticker_and_trade_in_order_and_counts_as_a_subscriber(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    got: list[Any] = []
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=50.0) as server,
            open_plane([config_for(server)], transport=engine) as md,
        ):
            async with (
                md.subscribe_handler("binance", "ticker", BTC, got.append) as handler,
                md.subscribe_handler("binance", "trade", BTC, got.append),
                md.subscribe("binance", "ticker", BTC) as events,
            ):
                await md.wait_streaming("binance")
                await trio.sleep(1.5)  # about 75 steps: the market's history holds 100
                server.set_rate(0)
                await trio.sleep(0.5)  # the last steps reach the reader
                market = server.markets[BTC]
                # The mailbox subscriber meanwhile only had the newest ticker to take.
                newest = await next_of(events, Ticker)
                plane = md.statistics().exchanges["binance"]
                assert [s.subscribers for s in plane.streams] == [2, 1]
                assert handler.statistics().delivered == len(
                    [item for item in got if item.stream.kind == "ticker"]
                )

            states = [item for item in got if isinstance(item, FeedState)]
            assert sorted(states, key=lambda state: state.stream.kind) == [
                FeedState("binance", Stream("ticker", BTC), "live"),
                FeedState("binance", Stream("trade", BTC), "live"),
            ]
            for kind in ("ticker", "trade"):  # each stream's state before its first data
                first = next(item for item in got if item.stream.kind == kind)
                assert isinstance(first, FeedState)
            tickers = [item.sequence for item in got if isinstance(item, Ticker)]
            assert len(tickers) >= 60
            # Every step the server made since the first: none conflated away.
            assert tickers == [s.update_id for s in market.history if s.update_id >= tickers[0]]
            last = next(item for item in reversed(got) if isinstance(item, Ticker))
            assert last == newest
            assert (last.bid, last.ask) == (
                Decimal(market.price(market.last.bid, 8)),
                Decimal(market.price(market.last.ask, 8)),
            )
            trades = [item.sequence for item in got if isinstance(item, Trade)]
            assert trades == list(range(trades[0], market.last.trade_id + 1))
            # The handlers were the streams' references: gone, the streams leave the wire.
            await server.wait_for(lambda s: len(requests_with(s, "UNSUBSCRIBE")) >= 1)
            await trio.testing.wait_all_tasks_blocked()
            assert md.statistics().exchanges["binance"].streams == ()


async def test_a_handler_that_raises_fails_its_own_block_and_nothing_else(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = 0

    def breaks_on_the_third(item: object) -> None:
        nonlocal calls
        if isinstance(item, Ticker):
            calls += 1
            if calls == 3:
                raise ZeroDivisionError("a bug in the handler")

    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=20.0) as server,
            open_plane([config_for(server)]) as md,
            md.subscribe("binance", "ticker", BTC) as events,
        ):
            await md.wait_streaming("binance")

            async def hold_it() -> None:
                async with md.subscribe_handler("binance", "ticker", BTC, breaks_on_the_third):
                    await trio.sleep_forever()  # cancelled when the handler raises

            with pytest.raises(HandlerError, match="binance ticker BTC/USDT") as failed:
                await hold_it()
            assert isinstance(failed.value.__cause__, ZeroDivisionError)
            assert calls == 3  # detached at once: never called again

            # The reader and the other subscriber go on, on the same connection.
            seen = (await next_of(events, Ticker)).sequence
            assert seen is not None
            await trio.sleep(1.0)
            later = await next_of(events, Ticker)
            assert later.sequence is not None
            assert later.sequence > seen
            plane = md.statistics().exchanges["binance"]
            assert server.statistics().connections_accepted == 1
            assert plane.restarts == 0
            assert [s.subscribers for s in plane.streams] == [1]
            assert calls == 3


async def test_a_new_handler_first_gets_the_current_state_and_newest_ticker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server)]) as md,
            md.subscribe("binance", "ticker", BTC) as events,
        ):
            newest = await next_of(events, Ticker)
            server.set_rate(0)
            await trio.sleep(0.5)
            newest = events.receive_nowait() if events.statistics().pending else newest
            got: list[object] = []
            async with md.subscribe_handler("binance", "ticker", BTC, got.append):
                assert got == [FeedState("binance", Stream("ticker", BTC), "live"), newest]


async def test_a_handler_is_told_when_its_stream_goes_stale_and_comes_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[object] = []
    with trio.fail_after(120):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=10.0) as server,
            open_plane([config_for(server, stale_after_s=5.0)]) as md,
            md.subscribe_handler("binance", "ticker", BTC, got.append),
        ):
            await md.wait_streaming("binance")
            await trio.sleep(1.0)
            server.set_rate(0)
            await trio.sleep(7.0)
            server.set_rate(10.0)
            await trio.sleep(10.0)
            states = [item.state for item in got if isinstance(item, FeedState)]
            # (The quiet socket is replaced meanwhile: ``down`` while it reconnects.)
            assert states[:2] == ["live", "stale"]
            assert states[-1] == "live"
            back = max(i for i, item in enumerate(got) if isinstance(item, FeedState))
            assert any(isinstance(item, Ticker) for item in got[back + 1 :])


def test_replay_keeps_the_order_in_which_state_and_ticker_were_published() -> None:
    stream = Stream("ticker", BTC)
    ticker = Ticker("binance", BTC, Decimal(1), Decimal(2), None, None, None, None, 0.0)
    before = TickerSlot(stream)  # the state, then a ticker
    before.post_state(FeedState("binance", stream, "live"))
    before.publish(ticker)
    after = TickerSlot(stream)  # a ticker, then the state
    after.publish(ticker)
    after.post_state(FeedState("binance", stream, "stale"))
    for slot, expected in (
        (before, [FeedState("binance", stream, "live"), ticker]),
        (after, [ticker, FeedState("binance", stream, "stale")]),
    ):
        got: list[object] = []
        errors: list[Exception] = []
        handler = slot.open_handler(got.append, errors.append)
        handler.replay()
        assert got == expected
        assert (errors, handler.statistics().delivered) == ([], 2)
        handler.close()
        slot.publish(ticker)
        assert len(got) == 2  # closed: no longer called
