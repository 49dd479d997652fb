"""Live orders through the whole path: bot core, journal, account, signed REST, user data
stream, and the local venue's matching engine."""

from __future__ import annotations

from decimal import Decimal

import trio

from tests.live.helpers import NATIVE, live, live_bot
from tests.simulator.helpers import fail_after


@fail_after(60)
async def test_a_market_buy_is_booked_once_and_matches_the_venue(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = venue.balances()
        bot = await setup.start_bot(live_bot("tests.bots.strategies:BuyOnce"))
        await setup.tick(bot)
        await venue.wait_for(lambda v: len(v.trades()) == 1)
        await trio.sleep(1)  # the user stream's copy of the fill arrives too
        orders = venue.orders()
        assert [o.client_order_id for o in orders] == ["bcf_b1_1"]
        fills = await setup.journal.fills("b1")
        trades = venue.trades()
        assert [f.venue_fill_id for f in fills] == [f"{NATIVE}:{t.trade_id}" for t in trades]
        after = venue.balances()
        base_change = (after["BTC"].free + after["BTC"].locked) - (
            before["BTC"].free + before["BTC"].locked
        )
        quote_change = (after["USDT"].free + after["USDT"].locked) - (
            before["USDT"].free + before["USDT"].locked
        )
        stats = bot.statistics()
        assert stats.base_balance == base_change
        assert stats.quote_balance - Decimal("10000") == quote_change
