"""Live orders under the venue's faults: answers lost, late or replaced; the user data stream
silent, dropped or shut down; rate limits and bans; a bad key; a filter the bot does not know;
a skewed venue clock.

Every test that trades ends with ``check_invariants``: no client order id sent twice, every
venue trade of our orders booked exactly once, and the bot's balances moved exactly as the
venue's. Times are virtual (``thread_clock``): the resolution waits of tens of seconds cost no
real time.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio

from actors.errors import describe_error, error_leaves
from actors.simulator import BinanceVenue
from actors.venues.binance.account import BinanceAccount
from actors.venues.binance.resolution import PROCESSING_LIMIT_MS
from actors.venues.binance.signing import HmacSigner
from actors.venues.binance.user_stream_client import UserStreamError
from tests.bots.helpers import SYMBOL
from tests.live.helpers import (
    ORDER_PATH,
    eventually,
    live,
    live_bot,
    live_market,
    live_risk,
    order_posts,
    rest_requests,
    totals,
)
from tests.simulator.helpers import fail_after

BUY_ONCE = "tests.bots.strategies:BuyOnce"
LIMIT_ONCE = "tests.bots.strategies:LimitOnce"
CID = "bcf_b1_1"


def lookups(venue: BinanceVenue, cid: str = CID) -> list[int | None]:
    """The venue's answer codes (None: found) to every lookup of ``cid``."""
    return [
        r.code
        for r in venue.requests(ORDER_PATH, method="GET")
        if r.params.get("origClientOrderId") == cid
    ]


def arm(venue: BinanceVenue, fault: str) -> None:
    """One order fault that executes the order and loses or replaces its answer."""
    match fault:
        case "dropped":
            venue.drop_responses()  # executed, then the connection closed
        case "http_5xx":
            venue.error_responses(status=502, code=None)  # a gateway's HTML page
        case "timeout_1007":
            venue.error_responses(status=503, code=-1007)
        case "late":
            venue.delay_responses(30.0)  # answered after the client gave up (timeout 5 s)
        case _:
            raise AssertionError(fault)


# --- 1. each order fault ----------------------------------------------------------------------


@pytest.mark.parametrize("resolved_by", ["stream", "lookup"])
@pytest.mark.parametrize("fault", ["dropped", "http_5xx", "timeout_1007", "late"])
@fail_after(120)
async def test_an_executed_order_whose_answer_is_lost_is_booked_once(
    fault: str, resolved_by: str, tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The venue executed the order, the answer is lost: the order is in doubt (unless the
    stream told first), never sent again, and resolved by the user stream or, with the stream
    silent, by lookups."""
    async with live(tmp_path, account={"request_timeout_s": 5.0}) as setup:
        venue = setup.venue
        before = totals(venue)
        bot = await setup.start_bot(live_bot(BUY_ONCE))
        if resolved_by == "lookup":
            assert venue.silence_user_streams() == 1
        arm(venue, fault)
        await setup.tick(bot)
        assert await setup.settled(bot, 1) == "filled"
        await setup.booked(bot, len(venue.trades()))
        assert len(venue.trades()) >= 1
        [order] = venue.orders()
        assert (order.client_order_id, order.status) == (CID, "FILLED")
        await venue.wait_for(lambda v: len(order_posts(v)) == 1)  # late: logged when answered
        [post] = order_posts(venue)
        assert post.fault == {"dropped": "drop", "late": "delay"}.get(fault, "error")
        stats = setup.account.statistics()
        assert stats["orders_sent"] == 1
        if resolved_by == "lookup":
            assert stats["orders_in_doubt"] == 1
            assert stats["in_doubt_found"] >= 1
            assert None in lookups(venue)  # a lookup found it
        elif fault == "late":  # the stream told long before the timeout: nothing in doubt
            assert stats["orders_in_doubt"] == 0
        # else the answer's loss and the stream's event race: in doubt or not, booked once
        await trio.sleep(1)  # any late copy of a fill (stream, lookup) arrives too
        await setup.check_invariants([bot], before)


@pytest.mark.parametrize("fault", ["dropped", "held_back"])
@fail_after(120)
async def test_an_order_never_executed_ends_rejected_only_after_the_deadline(
    fault: str, tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The request never made an order (dropped before the engine; or held back longer than
    the client's timeout and its recvWindow, so the venue refuses it when it arrives): the
    order is closed as never placed, but only once the venue's deadline and the read lag have
    passed and "does not exist" was seen several times."""
    config = {"request_timeout_s": 5.0, "query_lag_s": 5.0, "unknown_confirmations": 3}
    async with live(tmp_path, account=config) as setup:
        venue = setup.venue
        before = totals(venue)
        bot = await setup.start_bot(live_bot(BUY_ONCE))
        if fault == "dropped":
            venue.drop_responses(execute=False)
        else:
            venue.delay_responses(30.0, execute=False)
        sent_at = trio.current_time()
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "intent"  # in doubt: not closed yet
        assert await setup.settled(bot, 1) == "rejected"
        waited = trio.current_time() - sent_at
        recv_window_s = setup.account.config.recv_window_ms / 1000
        assert waited >= recv_window_s + PROCESSING_LIMIT_MS / 1000 + 5.0
        [record] = await setup.journal.orders("b1")
        assert "never placed" in record.status_reason
        assert venue.orders() == ()
        answers = lookups(venue)
        assert answers.count(-2013) >= 3
        assert None not in answers
        assert setup.account.counters["in_doubt_never_placed"] == 1
        if fault == "held_back":  # the venue refuses it once it arrives, past its window
            await venue.wait_for(lambda v: len(order_posts(v)) == 1)
            assert order_posts(venue)[0].code == -1021
        assert venue.orders() == ()
        assert len(order_posts(venue)) == 1
        await setup.check_invariants([bot], before)


@fail_after(120)
async def test_does_not_exist_for_a_while_is_not_believed(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The answer is lost and the venue's lookups say "does not exist" for 18 s after the
    order was made (past the request's deadline, within the configured read lag): those
    answers are not believed; the order is found and its fills booked once."""
    config = {"query_lag_s": 5.0, "unknown_poll_s": 2.0}
    async with live(tmp_path, account=config) as setup:
        venue = setup.venue
        before = totals(venue)
        bot = await setup.start_bot(live_bot(BUY_ONCE))
        venue.silence_user_streams()  # only lookups can tell
        venue.set_query_lag(18.0)
        venue.drop_responses()
        await setup.tick(bot)
        assert await setup.settled(bot, 1) == "filled"
        answers = lookups(venue)
        assert answers.count(-2013) >= 3  # as many as would have closed it, had they counted
        assert answers[-1] is None
        assert setup.account.counters["in_doubt_never_placed"] == 0
        await setup.booked(bot, len(venue.trades()))
        await trio.sleep(1)
        await setup.check_invariants([bot], before)


# --- 2. resting orders: filled over the stream, cancelled by the bot ----------------------------


async def step_until(venue: BinanceVenue, done: object, *, limit: int = 500) -> int:
    """Step the venue's price until ``done(venue)``; how many steps it took."""
    assert callable(done)
    for n in range(1, limit + 1):
        venue.step(SYMBOL)
        if done(venue):
            return n
        await trio.lowlevel.checkpoint()
    raise AssertionError(f"not done after {limit} steps")


def filled(cid: str) -> object:
    def check(venue: BinanceVenue) -> bool:
        order = venue.order(cid)
        return order is not None and order.status == "FILLED"

    return check


@fail_after(60)
async def test_a_resting_limit_fills_over_the_user_stream(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = totals(venue)
        bot = await setup.start_bot(live_bot(LIMIT_ONCE, params={"offset": "1"}))
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "open"
        assert venue.order(CID).status == "NEW"  # type: ignore[union-attr]
        await step_until(venue, filled(CID))
        assert await setup.settled(bot, 1) == "filled"
        await setup.booked(bot, len(venue.trades()))
        assert all(t.maker for t in venue.trades())
        assert setup.account.counters["lookups"] == 0  # the stream told, no poll was needed
        await setup.check_invariants([bot], before)


@pytest.mark.parametrize("sell_answer", ["answered", "late"])
@fail_after(120)
async def test_a_stop_loss_cancels_the_resting_sell_then_exits(
    sell_answer: str, tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The core's exit path: a stop-loss cancels the resting take-profit sell that holds the
    base, then sells at market. ``late``: the resting sell's own answer came after the
    client's timeout, when the user stream had already said it rests."""
    async with live(tmp_path, account={"request_timeout_s": 3.0}) as setup:
        venue = setup.venue
        before = totals(venue)
        config = live_bot(
            "tests.bots.strategies:BuyOnceThenLimitSell",
            risk=live_risk(stop_loss_pct=0.02),
        )
        bot = await setup.start_bot(config)
        await setup.tick(bot)  # buys at market
        assert await setup.settled(bot, 1) == "filled"
        if sell_answer == "late":
            venue.delay_responses(10.0)
        await setup.tick(bot)  # rests a sell at twice the price
        assert await setup.order_status("b1", 2) == "open"
        assert venue.order("bcf_b1_2").status == "NEW"  # type: ignore[union-attr]
        steps = 0
        while await setup.order_status("b1", 2) == "open":  # the price falls to the stop
            venue.step(SYMBOL)
            await setup.tick(bot)
            steps += 1
            assert steps < 500, "the stop-loss never fired"
        assert await setup.settled(bot, 2) == "cancelled"
        assert venue.order("bcf_b1_2").status == "CANCELED"  # type: ignore[union-attr]
        assert await setup.settled(bot, 3) == "filled"  # the stop-loss sell
        [_, _, exit_order] = await setup.journal.orders("b1")
        assert exit_order.intent.tag == "stop_loss"
        await setup.booked(bot, len(venue.trades()))
        assert bot.statistics().position_size < Decimal("0.00001")  # dust of the commission
        await trio.sleep(1)
        await setup.check_invariants([bot], before)


@fail_after(60)
async def test_an_account_halt_cancels_the_resting_order_and_refuses_new_ones(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = totals(venue)
        config = live_bot("tests.bots.strategies:AlwaysBuy", risk=live_risk(max_open_positions=5))
        bot = await setup.start_bot(config)
        await setup.tick(bot)
        assert await setup.settled(bot, 1) == "filled"
        assert await setup.account.halt("operator says stop") == 0  # nothing working
        await setup.tick(bot)
        assert await setup.settled(bot, 2) == "rejected"
        [*_, refused] = await setup.journal.orders("b1")
        assert "halted: operator says stop" in refused.status_reason
        assert [o.client_order_id for o in venue.orders()] == [CID]
        await setup.check_invariants([bot], before)


@fail_after(60)
async def test_an_account_halt_cancels_a_resting_limit(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = totals(venue)
        bot = await setup.start_bot(live_bot(LIMIT_ONCE, params={"offset": "50"}))
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "open"
        assert await setup.account.halt("operator says stop") == 1
        assert await setup.settled(bot, 1) == "cancelled"
        assert venue.order(CID).status == "CANCELED"  # type: ignore[union-attr]
        assert totals(venue) == before  # the locked quote is back
        await setup.check_invariants([bot], before)


# --- 3. the user data stream silent, dropped, shut down ---------------------------------------


@pytest.mark.parametrize("fault", ["silenced", "dropped", "server_shutdown"])
@fail_after(120)
async def test_fills_the_user_stream_missed_are_found_and_booked_once(
    fault: str, tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path, account={"order_poll_s": 2.0}) as setup:
        venue = setup.venue
        before = totals(venue)
        bot = await setup.start_bot(live_bot(LIMIT_ONCE, params={"offset": "1"}))
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "open"
        match fault:
            case "silenced":
                assert venue.silence_user_streams() == 1
            case "dropped":
                assert venue.drop_ws_connections() == 1
            case "server_shutdown":
                assert venue.send_server_shutdown() == 1
        await step_until(venue, filled(CID))  # the fill's event is lost with the stream
        assert await setup.settled(bot, 1) == "filled"
        await setup.booked(bot, len(venue.trades()))
        account = setup.account
        assert account.counters["lookups"] >= 1  # found by a lookup, not by the stream
        if fault == "silenced":
            await eventually(lambda: account.counters["stream_misses"] >= 1)
        await eventually(lambda: account.stream_up and venue.subscriptions() == 1)
        subscribes = [r for r in venue.requests() if r.method.startswith("userDataStream")]
        assert len(subscribes) == 2
        assert all(r.status == 200 for r in subscribes)
        assert account.counters["stream_reconnects"] == 1
        # the new subscription delivers: a second bot's fill needs no trade lookup
        other = await setup.start_bot(live_bot(LIMIT_ONCE, bot_id="b2", params={"offset": "1"}))
        await setup.tick(other)
        await step_until(venue, filled("bcf_b2_1"))
        assert await setup.settled(other, 1) == "filled"
        await trio.sleep(2 * account.config.order_poll_s)  # polls look, find nothing missing
        order_id = str(venue.order("bcf_b2_1").order_id)  # type: ignore[union-attr]
        trade_lookups = venue.requests("/api/v3/myTrades")
        assert [r for r in trade_lookups if r.params.get("orderId") == order_id] == []
        assert account.counters["stream_misses"] == (1 if fault == "silenced" else 0)
        await setup.check_invariants([bot, other], before)


# --- 4. rate limits: 429, then a 418 ban ------------------------------------------------------


@fail_after(600)
async def test_429_then_418_block_orders_locally_until_the_wait_is_over(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """A 429 blocks every request until its Retry-After; another client on the same address
    ignores it and gets the IP banned (418); our next order after the 429's wait meets the ban
    and waits its Retry-After too. While blocked, orders are refused without a request."""
    async with live(tmp_path) as setup:
        venue, account = setup.venue, setup.account
        before = totals(venue)
        config = live_bot("tests.bots.strategies:AlwaysBuy", risk=live_risk(max_open_positions=50))
        bot = await setup.start_bot(config)
        told: list[float] = []  # the daemon alerts venue_rate_limited from this
        account.on_blocked = told.append
        venue.exhaust_request_weight()
        await setup.tick(bot)  # order 1: 429 with Retry-After
        assert await setup.settled(bot, 1) == "rejected"
        [limited] = order_posts(venue)
        assert (limited.status, limited.code) == (429, -1003)
        blocked_s = account.statistics()["orders_blocked_s"]
        assert blocked_s > 0
        assert told == [pytest.approx(blocked_s, abs=0.5)]
        # another process on our address does not back off: the IP is banned
        async with httpx.AsyncClient(base_url=venue.rest_url) as other:
            ban = await other.get("/api/v3/time")
            assert (ban.status_code, ban.headers["Retry-After"]) == (418, "120")
            banned_at = trio.current_time()
        sent = len(rest_requests(venue))
        for seq in (2, 3, 4):  # refused here: nothing reaches the venue
            await setup.tick(bot)
            assert await setup.settled(bot, seq) == "rejected"
            await trio.sleep(5)
        assert len(rest_requests(venue)) == sent
        [*_, refused] = await setup.journal.orders("b1")
        assert "not sent: rate limited" in refused.status_reason
        await trio.sleep(blocked_s)  # the 429's wait is over; the ban is not
        await setup.tick(bot)  # order 5: meets the ban
        assert await setup.settled(bot, 5) == "rejected"
        banned = order_posts(venue)[-1]
        assert (banned.status, banned.params["newClientOrderId"]) == (418, "bcf_b1_5")
        ban_s = account.statistics()["orders_blocked_s"]  # what is left of the 120 s ban
        assert ban_s == pytest.approx(banned_at + 120 - trio.current_time(), abs=1)
        sent = len(rest_requests(venue))
        await setup.tick(bot)  # order 6: refused here
        assert await setup.settled(bot, 6) == "rejected"
        assert len(rest_requests(venue)) == sent
        await trio.sleep(ban_s)
        assert account.statistics()["orders_blocked_s"] == 0
        await setup.tick(bot)  # order 7: trading resumes
        assert await setup.settled(bot, 7) == "filled"
        assert [r.status for r in order_posts(venue)] == [429, 418, 200]
        # once when the 429 held orders, once when the ban held them longer; not per order
        assert told[1:] == [pytest.approx(ban_s, abs=1)]
        assert [o.client_order_id for o in venue.orders()] == ["bcf_b1_7"]
        await setup.booked(bot, len(venue.trades()))
        await setup.check_invariants([bot], before)


@fail_after(300)
async def test_a_stream_lost_while_rate_limited_waits_before_reconnecting(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """A WebSocket connection counts against the address's request weight: reconnecting the
    user stream during a 429's Retry-After would get the IP banned. It waits it out."""
    async with live(tmp_path) as setup:
        venue, account = setup.venue, setup.account
        before = totals(venue)
        config = live_bot("tests.bots.strategies:AlwaysBuy", risk=live_risk(max_open_positions=5))
        bot = await setup.start_bot(config)
        venue.exhaust_request_weight()
        await setup.tick(bot)
        assert await setup.settled(bot, 1) == "rejected"  # 429
        wait_s = account.statistics()["orders_blocked_s"]
        assert wait_s > 5
        assert venue.drop_ws_connections() == 1
        await eventually(lambda: not account.stream_up)
        await trio.sleep(wait_s - 1)
        assert not account.stream_up
        assert venue.limits.bans == 0
        await eventually(lambda: account.stream_up)
        assert venue.limits.bans == 0
        await setup.tick(bot)  # and trading goes on
        assert await setup.settled(bot, 2) == "filled"
        await setup.booked(bot, len(venue.trades()))
        await setup.check_invariants([bot], before)


# --- 5. a bad key, a filter the bot does not know, a skewed venue clock -----------------------


@fail_after(60)
async def test_a_wrong_secret_fails_the_account_naming_the_signature(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path, start=False) as setup:
        venue = setup.venue
        account = BinanceAccount(
            setup.account.config, HmacSigner(venue.api_key, "not-the-secret" * 4), (SYMBOL,)
        )
        with pytest.raises(BaseException) as failed:  # noqa: PT011 (the group is checked below)
            await account.run()
        [leaf] = list(error_leaves(failed.value))
        assert isinstance(leaf, UserStreamError)
        assert leaf.code == -1022
        assert "Signature for this request is not valid" in describe_error(failed.value)
        signed = [r for r in venue.requests() if r.method.startswith("userDataStream")]
        assert [(r.status, r.code) for r in signed] == [(400, -1022)]  # tried once, no storm
        assert order_posts(venue) == []
        assert not account.ready


@pytest.mark.parametrize(
    ("quote", "market", "rule"),
    [
        # the bot thinks 2 USDT is enough; the venue's NOTIONAL minimum is 5
        ("2", {"min_notional": Decimal("1")}, "below NOTIONAL minNotional 5"),
        # the bot's lot is finer than the venue's LOT_SIZE step: its size rounds to nothing
        (
            "0.5",
            {"min_notional": Decimal("0.1"), "lot_size": Decimal("0.0000001")},
            "at step 0.00001",
        ),
    ],
)
@fail_after(60)
async def test_an_order_the_venue_filters_refuse_is_never_sent(
    quote: str,
    market: dict[str, Decimal],
    rule: str,
    tmp_path,
    thread_clock: trio.abc.Clock,
) -> None:
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = totals(venue)
        bot_market = live_market(**market)
        bot = await setup.start_bot(
            live_bot(BUY_ONCE, order_quote=Decimal(quote), market=bot_market)
        )
        await setup.tick(bot)
        assert await setup.settled(bot, 1) == "rejected"
        [record] = await setup.journal.orders("b1")
        assert "venue rules" in record.status_reason
        assert rule in record.status_reason
        assert order_posts(venue) == []
        assert venue.orders() == ()
        await setup.check_invariants([bot], before)


@fail_after(60)
async def test_a_skewed_venue_clock_refuses_one_order_then_resyncs(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = totals(venue)
        config = live_bot("tests.bots.strategies:AlwaysBuy", risk=live_risk(max_open_positions=5))
        bot = await setup.start_bot(config)
        venue.skew_clock(10_000)  # the venue runs 10 s ahead: our timestamps look old
        await setup.tick(bot)
        assert await setup.settled(bot, 1) == "rejected"
        [record] = await setup.journal.orders("b1")
        assert "-1021" in record.status_reason
        assert not setup.account.rest.clock.synced  # forgotten: the next request syncs first
        await setup.tick(bot)
        assert await setup.settled(bot, 2) == "filled"
        assert [r.code for r in order_posts(venue)] == [-1021, None]
        paths = [r.path for r in venue.requests()]  # synced again, then the order sent
        assert paths[-2:] == ["/api/v3/time", ORDER_PATH]
        assert [o.client_order_id for o in venue.orders()] == ["bcf_b1_2"]
        await setup.booked(bot, len(venue.trades()))
        await setup.check_invariants([bot], before)
