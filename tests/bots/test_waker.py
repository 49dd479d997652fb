"""``Waker``: one task parked on several mailboxes at once (how a bot reads its inputs)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from actors.market_data.mailbox import TickerSlot, TradeRing, Waker
from actors.messages import FeedState, Stream, Trade
from tests.bots.helpers import EXCHANGE, SYMBOL, tick

TICKERS = Stream("ticker", SYMBOL)
TRADES = Stream("trade", SYMBOL)


def trade(n: int) -> Trade:
    return Trade(EXCHANGE, SYMBOL, Decimal(1), Decimal(1), "buy", str(n), None, 0.0)


async def test_the_first_publish_on_any_feed_wakes_the_task_once():
    slot, ring, waker = TickerSlot(TICKERS), TradeRing(TRADES, 8), Waker()
    with slot.open_mailbox() as tickers, ring.open_mailbox() as trades:
        woken = 0
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                nonlocal woken
                await waker.wait([tickers, trades])
                woken += 1

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            ring.publish(trade(1))
            slot.publish(tick(100))  # before the task ran: not a second reschedule
            ring.publish(trade(2))
        assert woken == 1
        # nothing left parked anywhere: publishing costs nothing again
        assert slot._waiters == [] and ring._waiters == []  # noqa: PT018
        assert trades.receive_nowait() == trade(1)


async def test_a_waker_woken_by_one_feed_does_not_pile_up_on_the_others():
    slot, ring, waker = TickerSlot(TICKERS), TradeRing(TRADES, 8), Waker()
    with slot.open_mailbox() as tickers, ring.open_mailbox() as trades:
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                for _ in range(100):
                    await waker.wait([tickers, trades])
                    tickers.receive_nowait()

            nursery.start_soon(reader)
            for n in range(100):
                await trio.testing.wait_all_tasks_blocked()
                assert len(ring._waiters) == 1  # parked once, never twice
                slot.publish(tick(100 + n))


async def test_wake_from_another_task_and_a_no_op_when_nobody_waits():
    slot, waker = TickerSlot(TICKERS), Waker()
    with slot.open_mailbox() as tickers:
        done = trio.Event()

        async def waiter() -> None:
            await waker.wait([tickers])
            done.set()

        waker.wake()  # nobody parked: nothing happens, and nothing is remembered
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set()
            waker.wake()  # e.g. a command was sent
            waker.wake()
        assert done.is_set()
        assert slot._waiters == []


async def test_wait_returns_at_once_when_something_is_pending_or_ended():
    slot, ring, waker = TickerSlot(TICKERS), TradeRing(TRADES, 8), Waker()
    with slot.open_mailbox() as tickers, ring.open_mailbox() as trades:
        slot.post_state(FeedState(EXCHANGE, TICKERS, "stale"))
        with trio.fail_after(1):
            await waker.wait([trades, tickers])
        tickers.receive_nowait()
        ring.close()
        with trio.fail_after(1):
            await waker.wait([tickers, trades])
        with pytest.raises(trio.EndOfChannel):
            trades.receive_nowait()


async def test_cancelled_while_parked_leaves_no_waiter_behind(autojump_clock):
    slot, ring, waker = TickerSlot(TICKERS), TradeRing(TRADES, 8), Waker()
    with slot.open_mailbox() as tickers, ring.open_mailbox() as trades:
        with trio.move_on_after(5) as timeout:
            await waker.wait([tickers, trades])
        assert timeout.cancelled_caught
        assert slot._waiters == [] and ring._waiters == []  # noqa: PT018
        waker.wake()  # no stale task to reschedule
        slot.publish(tick(100))


async def test_a_second_waiter_is_refused():
    slot, waker = TickerSlot(TICKERS), Waker()
    with slot.open_mailbox() as tickers:
        with pytest.RaisesGroup(trio.BusyResourceError):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(waker.wait, [tickers])
                await trio.testing.wait_all_tasks_blocked()
                await waker.wait([tickers])
