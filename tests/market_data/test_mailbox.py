"""Fan-out buffers (actors/mailbox.py): conflation, the trade ring, state ordering, wakeups."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from actors.market_data.mailbox import Mailbox, TickerSlot, TradeRing
from actors.messages import FeedState, Lagged, Stream, Ticker, Trade

BTC_TICKER = Stream("ticker", "BTC/USDT")
BTC_TRADE = Stream("trade", "BTC/USDT")


def ticker(n: int) -> Ticker:
    return Ticker(
        "binance", "BTC/USDT", Decimal(n), Decimal(n + 1), None, None, None, None, float(n)
    )


def trade(n: int) -> Trade:
    return Trade("binance", "BTC/USDT", Decimal(n), Decimal(1), "buy", str(n), None, float(n))


def state(name: str, stream: Stream = BTC_TICKER) -> FeedState:
    return FeedState("binance", stream, name)  # type: ignore[arg-type]


def drain(mailbox: Mailbox) -> list[object]:
    items = []
    while True:
        try:
            items.append(mailbox.receive_nowait())
        except trio.WouldBlock:
            return items


def test_tickers_are_conflated_and_skips_counted() -> None:
    slot = TickerSlot(BTC_TICKER)
    mailbox = slot.open_mailbox()
    for n in range(1, 6):
        slot.publish(ticker(n))
    assert mailbox.statistics().skipped == 4  # counted before it reads, too
    assert drain(mailbox) == [ticker(5)]
    slot.publish(ticker(6))
    assert drain(mailbox) == [ticker(6)]
    stats = mailbox.statistics()
    assert (stats.skipped, stats.delivered, stats.pending) == (4, 2, 0)


def test_a_new_subscriber_gets_the_current_state_and_newest_ticker() -> None:
    slot = TickerSlot(BTC_TICKER)
    slot.post_state(state("live"))
    slot.publish(ticker(1))
    slot.publish(ticker(2))
    late = slot.open_mailbox()
    assert drain(late) == [state("live"), ticker(2)]
    assert late.statistics().skipped == 0  # what happened before it joined is not its loss


def test_state_notices_keep_their_place_among_tickers() -> None:
    slot = TickerSlot(BTC_TICKER)
    mailbox = slot.open_mailbox()
    slot.publish(ticker(1))
    slot.post_state(state("stale"))
    # The ticker came before the notice: it is delivered first.
    assert drain(mailbox) == [ticker(1), state("stale")]
    slot.publish(ticker(2))
    slot.post_state(state("down"))
    slot.post_state(state("live"))  # latest state wins
    slot.publish(ticker(3))  # replaces ticker 2, which came before the notice
    assert drain(mailbox) == [state("live"), ticker(3)]


def test_trade_overflow_reports_lagged_before_the_next_trade() -> None:
    ring = TradeRing(BTC_TRADE, size=4)
    slow, fast = ring.open_mailbox(), ring.open_mailbox()
    for n in range(10):
        ring.publish(trade(n))
        assert fast.receive_nowait() == trade(n)
    assert slow.statistics().dropped == 6
    assert drain(slow) == [Lagged(BTC_TRADE, 6), trade(6), trade(7), trade(8), trade(9)]
    assert slow.statistics().dropped == 6
    assert fast.statistics().dropped == 0
    ring.publish(trade(10))
    assert drain(slow) == [trade(10)]


def test_trades_and_states_stay_in_order() -> None:
    ring = TradeRing(BTC_TRADE, size=8)
    mailbox = ring.open_mailbox()
    ring.publish(trade(1))
    ring.publish(trade(2))
    ring.post_state(state("stale", BTC_TRADE))
    ring.publish(trade(3))
    assert drain(mailbox) == [trade(1), trade(2), state("stale", BTC_TRADE), trade(3)]


def test_lagged_then_state_then_newer_trades() -> None:
    ring = TradeRing(BTC_TRADE, size=2)
    mailbox = ring.open_mailbox()
    ring.publish(trade(1))
    ring.post_state(state("down", BTC_TRADE))
    for n in range(2, 6):
        ring.publish(trade(n))
    assert drain(mailbox) == [
        Lagged(BTC_TRADE, 3),
        state("down", BTC_TRADE),
        trade(4),
        trade(5),
    ]


async def test_a_waiting_subscriber_is_woken_by_publish() -> None:
    slot = TickerSlot(BTC_TICKER)
    mailbox = slot.open_mailbox()
    got = []

    async def reader() -> None:
        got.append(await mailbox.receive())

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            slot.publish(ticker(1))
            slot.publish(ticker(2))  # before the reader ran: it takes the newest
    assert got == [ticker(2)]


async def test_cancelled_receive_leaves_no_waiter_behind() -> None:
    slot = TickerSlot(BTC_TICKER)
    mailbox = slot.open_mailbox()
    with trio.move_on_after(0.01):
        await mailbox.receive()
    slot.publish(ticker(1))  # must not reschedule a task that is no longer waiting
    with trio.fail_after(1):
        assert await mailbox.receive() == ticker(1)


async def test_end_of_stream_after_draining_and_closed_receive_end() -> None:
    slot = TickerSlot(BTC_TICKER)
    mailbox = slot.open_mailbox()
    slot.publish(ticker(1))
    slot.close()
    with trio.fail_after(1):
        assert [item async for item in mailbox] == [ticker(1)]
    other = TickerSlot(BTC_TICKER).open_mailbox()
    await other.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await other.receive()


async def test_closing_wakes_a_waiting_reader_and_two_readers_are_refused() -> None:
    slot = TickerSlot(BTC_TICKER)
    mailbox = slot.open_mailbox()
    outcomes: list[str] = []

    async def reader() -> None:
        try:
            await mailbox.receive()
        except trio.ClosedResourceError:
            outcomes.append("closed")

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await mailbox.receive()
            mailbox.close()
    assert outcomes == ["closed"]


async def test_end_of_channel_wakes_a_waiting_reader() -> None:
    ring = TradeRing(BTC_TRADE, size=4)
    mailbox = ring.open_mailbox()

    async def close_later() -> None:
        await trio.testing.wait_all_tasks_blocked()
        ring.close()

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_later)
            with pytest.raises(trio.EndOfChannel):
                await mailbox.receive()


async def test_an_item_taken_by_receive_nowait_first_does_not_end_a_waiting_receive() -> None:
    """``receive_nowait`` from another task may take what woke a waiting ``receive``; the
    reader must go on waiting, not report ``EndOfChannel`` on a stream that has not ended."""
    slot = TickerSlot(BTC_TICKER)
    mailbox = slot.open_mailbox()
    got: list[object] = []

    async def reader() -> None:
        got.append(await mailbox.receive())

    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            slot.publish(ticker(1))
            assert mailbox.receive_nowait() == ticker(1)  # before the woken reader runs
            await trio.testing.wait_all_tasks_blocked()
            slot.publish(ticker(2))
    assert got == [ticker(2)]
