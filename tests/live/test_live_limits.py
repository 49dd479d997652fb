"""The venue's limits across restarts and pages: a 418 ban outlives an account restart and a
daemon restart (nothing is sent into it), an order's trade list is read page by page, and the
user data stream's WebSocket API answers feed the same rate-limit state as REST.

Times are virtual (``thread_clock``): a two-minute ban costs no real time.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import trio

from actors.simulator import BinanceVenue
from actors.simulator.venue_limits import REQUEST_WEIGHT_LIMIT
from actors.venues.binance.account import LiveOrder
from actors.venues.binance.config import AccountConfig
from actors.venues.binance.tracker import VenueReport
from supervisor.accounts import HOLD_MARGIN_S, RATE_LIMIT_KEY, Accounts, restore_hold
from supervisor.alerts import Alerts
from supervisor.config import AlertsConfig, SecretsConfig
from tests.bots.helpers import SYMBOL
from tests.live.helpers import (
    ACCOUNT,
    NATIVE,
    eventually,
    live,
    live_bot,
    live_risk,
    order_posts,
    totals,
)
from tests.live.test_live_faults import filled, step_until
from tests.simulator.helpers import fail_after

ALWAYS_BUY = "tests.bots.strategies:AlwaysBuy"
LIMIT_ONCE = "tests.bots.strategies:LimitOnce"
FIRST_BAN_S = 120


async def ban_the_address(venue: BinanceVenue) -> float:
    """Another client on our address ignores a 429: the IP is banned. When the ban ends."""
    venue.exhaust_request_weight()
    async with httpx.AsyncClient(base_url=venue.rest_url) as other:
        assert (await other.get("/api/v3/time")).status_code == 429
        ban = await other.get("/api/v3/time")
        assert (ban.status_code, ban.headers["Retry-After"]) == (418, str(FIRST_BAN_S))
    return trio.current_time() + FIRST_BAN_S


@fail_after(600)
async def test_a_ban_outlives_an_account_restart(tmp_path, thread_clock: trio.abc.Clock) -> None:
    """The account learns of a 418 ban from an order's answer; its run ends and starts again
    (a supervisor restart of the same object): the new run sends nothing, not even its clock
    sync or its stream's connection, before the ban is over, and orders meanwhile are refused
    unsent. A request during the ban would have made it longer."""
    async with live(tmp_path) as setup:
        venue, account = setup.venue, setup.account
        before = totals(venue)
        bot = await setup.start_bot(live_bot(ALWAYS_BUY, risk=live_risk(max_open_positions=50)))
        ban_ends = await ban_the_address(venue)
        await setup.tick(bot)  # order 1 meets the ban: the account holds until its end
        assert await setup.settled(bot, 1) == "rejected"
        assert [r.status for r in order_posts(venue)] == [418]
        await setup.stop_account()
        sent = len(venue.requests())
        ready = trio.Event()

        async def restart() -> None:
            await setup.start_account()
            ready.set()

        setup.nursery.start_soon(restart)
        await setup.tick(bot)  # order 2: refused here
        assert await setup.settled(bot, 2) == "rejected"
        await trio.sleep_until(ban_ends - 1)
        assert not ready.is_set()
        assert len(venue.requests()) == sent  # nothing at all reached the venue
        assert venue.ws_connections() == 0
        await ready.wait()
        assert trio.current_time() >= ban_ends
        await setup.tick(bot)  # order 3: trading resumes
        assert await setup.settled(bot, 3) == "filled"
        assert [r.status for r in order_posts(venue)] == [418, 200]
        assert venue.limits.bans == 1  # never banned again, never longer
        assert account.counters["orders_sent"] == 3  # (2 was refused before the venue)
        await setup.booked(bot, len(venue.trades()))
        await setup.check_invariants([bot], before)


@fail_after(600)
async def test_a_ban_outlives_a_daemon_restart(tmp_path, thread_clock: trio.abc.Clock) -> None:
    """The daemon's account child saves the hold in the journal; a new daemon (new account
    objects on the same journal) restores it and sends nothing before the ban is over."""
    async with live(tmp_path, start=False) as setup:
        venue, journal = setup.venue, setup.journal
        environ = {"TEST_KEY": venue.api_key, "TEST_SECRET": venue.secret}
        alerts = Alerts(AlertsConfig())

        def build() -> Accounts:
            accounts = Accounts.build(
                [setup.account.config], [live_bot(ALWAYS_BUY)], SecretsConfig(), environ=environ
            )
            accounts.wall_clock = venue.now_ts  # (follows the virtual clock)
            return accounts

        first = build()
        async with trio.open_nursery() as nursery:
            await nursery.start(first.run_account, ACCOUNT, journal, alerts)
            ban_ends = await ban_the_address(venue)
            reports: list[VenueReport] = []
            price = Decimal(venue.book_ticker(NATIVE)["askPrice"])
            order = LiveOrder("bcf_b1_1", SYMBOL, "buy", "market", Decimal("0.01"), None, price)
            await first.accounts[ACCOUNT].submit(order, reports.append)
            assert [r.status for r in order_posts(venue)] == [418]
            await journal.flush()
            nursery.cancel_scope.cancel()
        saved = await journal.load_state(f"account:{ACCOUNT}")
        assert '"reason":"IP banned (418)' in saved[RATE_LIMIT_KEY]
        second = build()
        sent = len(venue.requests())
        async with trio.open_nursery() as nursery:
            ready = trio.Event()

            async def start() -> None:
                await nursery.start(second.run_account, ACCOUNT, journal, alerts)
                ready.set()

            nursery.start_soon(start)
            await trio.sleep_until(ban_ends - 1)
            assert not ready.is_set()
            assert len(venue.requests()) == sent
            await ready.wait()
            assert trio.current_time() >= ban_ends
            assert second.accounts[ACCOUNT].ready
            assert venue.limits.bans == 1
            nursery.cancel_scope.cancel()


@fail_after(120)
async def test_an_order_filled_in_more_trades_than_a_page_is_read_page_by_page(
    tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The stream is silent, so the order's fills are found by a lookup and its trade list.
    With a page of 2 trades (the venue's maximum is 1000) the list is read with ``fromId``
    until a short page, and every trade is booked once."""
    async with live(tmp_path, account={"order_poll_s": 30.0}) as setup:
        venue, account = setup.venue, setup.account
        account.trades_page_size = 2
        before = totals(venue)
        config = live_bot(
            LIMIT_ONCE,
            params={"offset": "1"},
            order_quote=Decimal("5000"),
            risk=live_risk(max_order_quote=Decimal("6000"), max_position_quote=Decimal("6000")),
        )
        bot = await setup.start_bot(config)
        assert venue.silence_user_streams() == 1
        await setup.tick(bot)
        assert await setup.order_status("b1", 1) == "open"
        await step_until(venue, filled("bcf_b1_1"))
        trades = venue.trades()
        assert len(trades) >= 5  # so several pages, one of them maybe full and last
        assert await setup.settled(bot, 1) == "filled"  # at the next poll
        await setup.booked(bot, len(trades))
        order_id = str(venue.order("bcf_b1_1").order_id)  # type: ignore[union-attr]
        pages = [r for r in venue.requests("/api/v3/myTrades") if r.params["orderId"] == order_id]
        assert [r.params["limit"] for r in pages] == ["2"] * len(pages)
        ids = [t.trade_id for t in trades]
        expected = ["0"] + [str(i + 1) for i in ids[1::2]]  # from 0, then after each page
        assert [r.params["fromId"] for r in pages] == expected
        # the venue pages as Binance: without fromId, the most recent trades
        recent = await account.rest.my_trades(NATIVE, order_id=order_id, limit=2)
        assert [t.trade_id for t in recent] == [str(i) for i in ids[-2:]]
        await setup.check_invariants([bot], before)


async def fresh_weight_window(venue: BinanceVenue) -> None:
    """Sleep to just after the venue's next whole minute: a new weight window, so what the
    test counts is all there is in it."""
    now_ms = venue.server_time_ms()
    await trio.sleep((60_000 - now_ms % 60_000) / 1000 + 0.1)


@pytest.mark.parametrize("answer", ["at_limit", "over_limit"])
@fail_after(300)
async def test_the_websocket_apis_rate_limits_hold_rest_requests_too(
    answer: str, tmp_path, thread_clock: trio.abc.Clock
) -> None:
    """The user stream resubscribes; the WebSocket API's answer to the subscription says the
    address's weight is at its limit (its ``rateLimits``), or refuses it with 429 and a
    ``retryAfter``. Either way the account's one rate-limit state holds REST requests too: the
    next order is refused without a request, the stream waits before connecting again, and
    the address is never banned."""
    async with live(tmp_path) as setup:
        venue, account = setup.venue, setup.account
        before = totals(venue)
        bot = await setup.start_bot(live_bot(ALWAYS_BUY, risk=live_risk(max_open_positions=5)))
        await fresh_weight_window(venue)
        used = venue.limits.used_weight(venue.server_time_ms())
        # the reconnection costs 2, the subscription 2: at the limit, or over it
        venue.set_request_weight_limit(used + (4 if answer == "at_limit" else 3))
        assert venue.drop_ws_connections() == 1
        await eventually(lambda: account.limits.request_wait_s(trio.current_time()) > 0)
        venue.set_request_weight_limit(REQUEST_WEIGHT_LIMIT)  # (from the next window on)
        subscribes = [r for r in venue.requests() if r.method.startswith("userDataStream")]
        assert subscribes[-1].status == (200 if answer == "at_limit" else 429)
        assert "per 1M" in account.limits.reason or "(429)" in account.limits.reason
        await setup.tick(bot)  # refused here: nothing reaches the venue
        assert await setup.settled(bot, 1) == "rejected"
        assert order_posts(venue) == []
        [refused] = await setup.journal.orders("b1")
        assert "not sent: rate limited" in refused.status_reason
        await trio.sleep(account.limits.request_wait_s(trio.current_time()))
        await eventually(lambda: account.stream_up)
        assert venue.limits.bans == 0
        await setup.tick(bot)  # the hold is over: trading goes on
        assert await setup.settled(bot, 2) == "filled"
        assert [r.status for r in order_posts(venue)] == [200]
        await setup.booked(bot, len(venue.trades()))
        await setup.check_invariants([bot], before)


@pytest.mark.parametrize(
    "saved",
    [
        "not json",
        "[]",
        '{"requests_until_ts": "soon", "orders_until_ts": null, "reason": ""}',
        '{"reason": "x"}',
    ],
)
async def test_an_unreadable_saved_hold_is_ignored(saved: str, autojump_clock) -> None:
    account = Accounts.build(
        [account_config_for_tests()],
        [],
        SecretsConfig(),
        environ={"TEST_KEY": "k", "TEST_SECRET": "s"},
    ).accounts[ACCOUNT]
    restore_hold(account, saved, now_ts=1000.0)
    assert account.limits.request_wait_s(trio.current_time()) == 0
    good = '{"requests_until_ts": 1030.0, "orders_until_ts": null, "reason": "IP banned"}'
    restore_hold(account, good, now_ts=1000.0)
    assert account.limits.request_wait_s(trio.current_time()) == 30 + HOLD_MARGIN_S
    assert account.limits.order_wait_s(trio.current_time()) == 30 + HOLD_MARGIN_S


def account_config_for_tests() -> AccountConfig:
    return AccountConfig(
        name=ACCOUNT,
        api_key_env="TEST_KEY",
        api_secret_env="TEST_SECRET",
        rest_url="http://127.0.0.1:1",
        ws_api_url="ws://127.0.0.1:1/ws-api/v3",
    )
