"""Live orders across restarts: what the journal left unresolved or open, what the venue has
that the journal lacks, and balances that the journal does not explain.

A restart here is what a daemon's is: the bot and the account are stopped (their scopes
cancelled, mid-order), then new ``Bot`` and ``BinanceAccount`` objects start on the same
journal and venue. Every test ends with ``check_invariants`` (see ``helpers``).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from actors.bots.live import reconcile_account
from actors.journal.store import OrderIntent
from actors.simulator import BinanceVenue
from actors.venues.binance.filters import PreparedOrder
from actors.venues.binance.resolution import AHEAD_TOLERANCE_MS, PROCESSING_LIMIT_MS
from actors.venues.binance.responses import Accepted
from tests.bots.helpers import SYMBOL
from tests.live.helpers import (
    INITIAL_QUOTE,
    ORDER_PATH,
    Live,
    live,
    live_bot,
    live_risk,
    order_posts,
    totals,
)
from tests.simulator.helpers import fail_after

BUY_ONCE = "tests.bots.strategies:BuyOnce"  # a new one (a restarted bot) buys again
LIMIT_ONCE = "tests.bots.strategies:LimitOnce"


def lookups(venue: BinanceVenue, cid: str) -> list[int | None]:
    return [
        r.code
        for r in venue.requests(ORDER_PATH, method="GET")
        if r.params.get("origClientOrderId") == cid
    ]


async def step_until(venue: BinanceVenue, cid: str, statuses: tuple[str, ...]) -> None:
    for _ in range(500):
        venue.step(SYMBOL)
        order = venue.order(cid)
        if order is not None and order.status in statuses:
            return
        await trio.lowlevel.checkpoint()
    raise AssertionError(f"{cid} never reached {statuses}")


async def restart(setup: Live, *bots: object) -> None:
    """Stop the bots and the account mid-flight; start a new account object (not the bots)."""
    for bot in bots:
        await setup.stop_bot(bot)  # type: ignore[arg-type]
    await setup.stop_account()
    setup.new_account()
    await setup.start_account()


# --- (a) an intent journaled, never sent -----------------------------------------------------


@fail_after(120)
async def test_an_intent_never_sent_is_closed_at_start_before_any_new_order(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The previous run journaled the intent and died before sending it. The bot's start
    looks it up until the latest request that run could have sent is past the venue's
    deadline, closes it as never placed, and only then trades."""
    async with live(tmp_path) as setup:
        venue, journal = setup.venue, setup.journal
        before = totals(venue)
        now = venue.now_ts()
        await journal.load_bot("b1", initial_quote=INITIAL_QUOTE, now_ts=now)
        await journal.record_intent(
            OrderIntent(
                client_id="b1-1",
                bot_id="b1",
                seq=1,
                symbol=SYMBOL,
                side="buy",
                order_type="market",
                size=Decimal("0.00769"),
                price=None,
                tag="signal:entry",
                position_id=None,
                created_ts=now,
            )
        )
        started = trio.current_time()
        bot = await setup.start_bot(
            live_bot(BUY_ONCE, risk=live_risk(max_open_positions=5))
        )  # returns once reconciled
        waited = trio.current_time() - started
        deadline_s = (
            AHEAD_TOLERANCE_MS + setup.account.config.recv_window_ms + PROCESSING_LIMIT_MS
        ) / 1000 + setup.account.config.query_lag_s
        assert waited >= deadline_s
        [record] = await journal.orders("b1")
        assert record.status == "rejected"
        assert "never placed" in record.status_reason
        answers = lookups(venue, "bcf_b1_1")
        assert answers.count(-2013) >= 3
        assert None not in answers
        assert order_posts(venue) == []
        await setup.tick(bot)
        assert await setup.settled(bot, 2) == "filled"
        [post] = order_posts(venue)
        assert post.params["newClientOrderId"] == "bcf_b1_2"
        requests = list(venue.requests())
        last_lookup = max(
            i for i, r in enumerate(requests) if r.params.get("origClientOrderId") == "bcf_b1_1"
        )
        assert requests.index(post) > last_lookup
        await setup.booked(bot, len(venue.trades()))
        await setup.check_invariants([bot], before)


# --- (b) in doubt or partly filled when the daemon stopped ----------------------------------


@fail_after(120)
async def test_an_order_in_doubt_at_a_restart_is_found_and_booked_once(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The answer was lost, the stream is silent and lookups say "does not exist" (the venue's
    read lag): the bot and the account stop before the order is resolved. A new account and a
    new bot on the same journal find it and book its fills, once."""
    async with live(tmp_path, account={"query_lag_s": 5.0}) as setup:
        venue = setup.venue
        before = totals(venue)
        bot = await setup.start_bot(live_bot(BUY_ONCE, risk=live_risk(max_open_positions=5)))
        venue.silence_user_streams()
        venue.set_query_lag(10.0)
        venue.drop_responses()
        await setup.tick(bot)
        assert setup.account.counters["orders_in_doubt"] == 1
        await trio.sleep(4)
        assert lookups(venue, "bcf_b1_1").count(-2013) >= 2  # not found yet, and not believed
        assert await setup.order_status("b1", 1) == "intent"
        assert venue.order("bcf_b1_1").status == "FILLED"  # type: ignore[union-attr]
        await restart(setup, bot)
        assert setup.account.orders == {}  # a new account knows nothing of it
        bot = await setup.start_bot(
            live_bot(BUY_ONCE, risk=live_risk(max_open_positions=5))
        )  # returns once it is resolved
        assert await setup.order_status("b1", 1) == "filled"
        assert setup.account.counters["in_doubt_found"] >= 1
        await setup.tick(bot)  # BuyOnce again (a new strategy object): order 2
        assert await setup.settled(bot, 2) == "filled"
        await setup.booked(bot, len(venue.trades()))
        assert [r.params["newClientOrderId"] for r in order_posts(venue)] == [
            "bcf_b1_1",
            "bcf_b1_2",
        ]
        await trio.sleep(1)
        await setup.check_invariants([bot], before)


@fail_after(120)
async def test_fills_booked_before_a_restart_are_not_booked_again(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """A large resting buy fills in parts: some booked, then the daemon stops, the rest fills
    while nothing listens. At the restart the trade list holds all of them: those the journal
    has are skipped, the others booked."""
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = totals(venue)
        config = live_bot(
            LIMIT_ONCE,
            params={"offset": "1"},
            order_quote=Decimal("5000"),
            risk=live_risk(max_order_quote=Decimal("6000"), max_position_quote=Decimal("6000")),
        )
        bot = await setup.start_bot(config)
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "open"
        await step_until(venue, "bcf_b1_1", ("PARTIALLY_FILLED", "FILLED"))
        assert venue.order("bcf_b1_1").status == "PARTIALLY_FILLED"  # type: ignore[union-attr]
        booked_before = len(venue.trades())
        await setup.booked(bot, booked_before)
        await restart(setup, bot)
        await step_until(venue, "bcf_b1_1", ("FILLED",))
        assert len(venue.trades()) > booked_before
        bot = await setup.start_bot(config)
        assert await setup.settled(bot, 1) == "filled"
        assert len(await setup.journal.fills("b1")) == len(venue.trades())
        await trio.sleep(1)
        await setup.check_invariants([bot], before)


# --- (c) an open order of ours that the journal lacks -----------------------------------------


async def place_foreign(setup: Live, cid: str) -> None:
    """A resting buy under our prefix, placed with the REST client behind the account's
    back (a lost journal, another deployment sharing the prefix)."""
    rules = setup.account.rules[SYMBOL]
    price = Decimal(setup.venue.book_ticker("BTCUSDT")["askPrice"]) - 1
    prepared = rules.prepare("buy", "limit", Decimal("0.002"), price)
    assert isinstance(prepared, PreparedOrder)
    placed = await setup.account.rest.place_order(prepared, cid)
    assert isinstance(placed.outcome, Accepted)
    assert placed.outcome.status == "NEW"


@pytest.mark.parametrize("action", ["cancel", "adopt", "report"])
@fail_after(120)
async def test_a_foreign_order_of_ours_is_cancelled_adopted_or_reported(
    action: str, tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path, account={"foreign_orders": action}) as setup:
        venue, journal = setup.venue, setup.journal
        before = totals(venue)
        await place_foreign(setup, "bcf_b1_7")
        config = live_bot("tests.bots.strategies:Idle")
        result = await reconcile_account(setup.account, journal, [config])
        assert result.foreign == ("bcf_b1_7",)
        assert result.action == action
        assert result.blocked == {}
        foreign = venue.order("bcf_b1_7")
        assert foreign is not None
        bot = await setup.start_bot(config)
        if action == "cancel":
            assert foreign.status == "CANCELED"
            assert await journal.orders("b1") == []
        elif action == "report":
            assert foreign.status == "NEW"
            assert await journal.orders("b1") == []
        else:
            [adopted] = await journal.orders("b1")
            assert (adopted.intent.client_id, adopted.intent.tag) == ("b1-7", "adopted")
            assert adopted.status == "open"  # the bot's start found it resting
            await step_until(venue, "bcf_b1_7", ("FILLED",))
            assert await setup.settled(bot, 7) == "filled"
            await setup.booked(bot, len(venue.trades()))
            assert bot.statistics().next_client_id == "b1-8"
        assert [r.params["newClientOrderId"] for r in order_posts(venue)] == ["bcf_b1_7"]
        await trio.sleep(1)
        await setup.check_invariants([bot], None if action == "report" else before)


# --- (d) balances the journal does not explain --------------------------------------------------


@fail_after(120)
async def test_a_balance_difference_over_tolerance_blocks_the_bot(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    async with live(tmp_path, account={"balance_tolerance_pct": 1.0}) as setup:
        venue, journal, account = setup.venue, setup.journal, setup.account
        before = totals(venue)
        config = live_bot(BUY_ONCE, risk=live_risk(max_open_positions=5))
        first = await reconcile_account(account, journal, [config])
        assert first.baseline_recorded
        assert first.blocked == {}
        bot = await setup.start_bot(config)
        await setup.tick(bot)
        assert await setup.settled(bot, 1) == "filled"
        await setup.booked(bot, len(venue.trades()))
        await setup.check_invariants([bot], before)
        await setup.stop_bot(bot)
        explained = await reconcile_account(account, journal, [config])  # the fills explain it
        assert not explained.baseline_recorded
        assert explained.differences == {"BTC": 0, "USDT": 0}
        assert explained.blocked == {}
        usdt = venue.balances()["USDT"].free
        venue.set_balance("USDT", usdt - 1000)  # a withdrawal the journal knows nothing of
        checked = await reconcile_account(account, journal, [config])
        assert checked.differences["USDT"] == -1000
        reason = checked.blocked["b1"]
        assert reason.startswith("balance check: USDT")
        posts = len(order_posts(venue))
        bot = await setup.start_bot(config, blocked=dict(checked.blocked))
        await setup.tick(bot)  # a new BuyOnce buys again: refused before the account
        assert await setup.settled(bot, 2) == "rejected"
        [_, refused] = await journal.orders("b1")
        assert refused.status_reason == reason
        assert len(order_posts(venue)) == posts
        await setup.check_invariants([bot], None)


@fail_after(120)
async def test_a_bot_restarted_while_its_account_runs_books_what_it_missed(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """Only the bot restarts (a strategy error, say): the account, still tracking its resting
    order, reported a fill to the stopped bot. The new run's recovery books it, once."""
    async with live(tmp_path) as setup:
        venue = setup.venue
        before = totals(venue)
        config = live_bot(
            LIMIT_ONCE,
            params={"offset": "1"},
            order_quote=Decimal("5000"),
            risk=live_risk(max_order_quote=Decimal("6000"), max_position_quote=Decimal("6000")),
        )
        bot = await setup.start_bot(config)
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "open"
        await setup.stop_bot(bot)
        await step_until(venue, "bcf_b1_1", ("PARTIALLY_FILLED", "FILLED"))
        assert venue.order("bcf_b1_1").status == "PARTIALLY_FILLED"  # type: ignore[union-attr]
        await trio.sleep(1)  # the stream told the account, which told the stopped bot
        assert setup.account.counters["fills"] >= 1
        assert await setup.journal.fills("b1") == []
        bot = await setup.start_bot(config)
        await setup.booked(bot, len(venue.trades()))
        assert await setup.order_status("b1", 1) == "open"
        await step_until(venue, "bcf_b1_1", ("FILLED",))
        assert await setup.settled(bot, 1) == "filled"
        await trio.sleep(1)
        await setup.check_invariants([bot], before)


@fail_after(120)
async def test_a_recovery_right_after_a_1021_syncs_the_clock_first(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """A ``-1021`` makes the account forget the venue clock; a bot starting then with an
    unresolved intent needs that clock for the venue's deadline: it is synced first."""
    async with live(tmp_path) as setup:
        venue, journal = setup.venue, setup.journal
        before = totals(venue)
        first = await setup.start_bot(live_bot(BUY_ONCE, risk=live_risk(max_open_positions=5)))
        venue.skew_clock(10_000)
        await setup.tick(first)
        assert await setup.settled(first, 1) == "rejected"  # -1021
        assert not setup.account.rest.clock.synced
        now = venue.now_ts()
        await journal.load_bot("b2", initial_quote=INITIAL_QUOTE, now_ts=now)
        await journal.record_intent(
            OrderIntent(
                client_id="b2-1",
                bot_id="b2",
                seq=1,
                symbol=SYMBOL,
                side="buy",
                order_type="market",
                size=Decimal("0.00769"),
                price=None,
                tag="signal:entry",
                position_id=None,
                created_ts=now,
            )
        )
        second = await setup.start_bot(live_bot(BUY_ONCE, bot_id="b2"))
        assert setup.account.rest.clock.synced
        assert await setup.order_status("b2", 1) == "rejected"
        assert [r.params["newClientOrderId"] for r in order_posts(venue)] == ["bcf_b1_1"]
        await setup.check_invariants([first, second], before)


@fail_after(120)
async def test_an_account_restarted_under_its_bot_looks_its_orders_up_at_once(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The account's run ends and starts again (a supervisor restart of the same object)
    while its bot trades on: its resting order filled meanwhile, with no stream to say so.
    The new run looks it up as soon as it is subscribed, not a poll period later."""
    async with live(tmp_path, account={"order_poll_s": 60.0}) as setup:
        venue, account = setup.venue, setup.account
        before = totals(venue)
        bot = await setup.start_bot(live_bot(LIMIT_ONCE, params={"offset": "1"}))
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "open"
        await setup.stop_account()
        await step_until(venue, "bcf_b1_1", ("FILLED",))
        await setup.start_account()  # the same object
        with trio.fail_after(5):  # well within order_poll_s
            assert await setup.settled(bot, 1) == "filled"
        assert account.counters["lookups"] >= 1
        await setup.booked(bot, len(venue.trades()))
        await trio.sleep(1)
        await setup.check_invariants([bot], before)
