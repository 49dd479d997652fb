"""kill -9 the daemon at random moments while live bots trade, ten times (twenty with
``BCF_TEST_KILL9_KILLS=20``), on one journal and one venue account: after each restart the
account is reconciled before any new order, and at the end the venue and the journal agree to
the last trade.

Why ten by default: each run is a daemon start (about a second of imports and setup) plus up to
1.5 s of trading before the kill, so twenty kills took some 45 s, a sixth of the whole suite.
Every check below is made after every kill whatever their number; more kills sample more kill
points (run the full count before changing the restart or journaling paths).

The market-data simulator and the local Binance venue attached to it run in this process and
outlive every daemon; the daemon (``run.py``) is a subprocess with one ``[[accounts]]`` entry
at the venue and two live bots that trade on every tick (``Flip``: a market buy, then a
market sell of what it holds, and again). Each run is killed with SIGKILL a random 0-1.5 s
(seeded, printed) after every bot has placed an order in it, so each restart is checked for
every bot and the kills land while both trade.

After each restart (from the venue's request log, in the order the venue received them):
the account's reconciliation (``GET /api/v3/openOrders``, then ``GET /api/v3/account``) came
before the run's first order, and every order the journal had left without an outcome at the
kill was looked up by its client id before its bot sent anything new. After each kill (from a
copy of the journal): every order on the venue was journaled first, ids are gapless, and each
bot has at most the one order it was placing without an outcome.

At the end a clean run settles everything and stops on SIGTERM; then: no client order id was
ever sent twice; every venue trade of our orders is booked exactly once in the journal (by its
``venue_fill_id``) with the price, size and fee the venue's trade implies, and no journal fill
lacks its trade; no order is left unresolved; per bot the journal's base and quote changes are
exactly what the venue's trades of its orders made them, and their sum over the bots is the
account's BTC and USDT balance change (free + locked).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from actors.bots import Signal, StrategyContext
from actors.journal.store import FillRecord
from actors.messages import Ticker
from actors.simulator import BinanceVenue, open_binance_venue, open_exchange_server
from actors.simulator import binance_venue as venue_module
from actors.simulator.binance_venue import VenueRequest
from actors.simulator.venue_matching import Fill
from actors.venues.binance.ids import bot_stem, client_order_id
from tests.e2e.helpers import (
    Daemon,
    JournalView,
    copy_journal,
    local_exchange,
    log_is,
    open_daemon,
    read_journal,
    write_config,
)

KILLS = int(os.environ.get("BCF_TEST_KILL9_KILLS", "10"))
SEED = 20261202
MAX_KILL_DELAY_S = 1.5
BOTS = ("k1", "k2")
ACCOUNT = "kill9"
KEY_ENV, SECRET_ENV = "KILL9_API_KEY", "KILL9_API_SECRET"
SYMBOL, NATIVE, BASE, QUOTE = "BTC/USDT", "BTCUSDT", "BTC", "USDT"
ORDER_QUOTE = Decimal("20")
ORDER_PATH = "/api/v3/order"
MARKET_RATE_HZ = 10.0
# A run is a daemon start (1.5 s idle, 8 s on a loaded machine) plus, per bot one after the
# other, the resolution of an order the kill left journaled but never sent: the venue's deadline
# (1 s clock tolerance + recvWindow + its 10 s processing limit + the read lag), some 13 s.
RUN_DEADLINE_S = 90.0
TEST_DEADLINE_S = 900.0


class Flip:
    """Trades on every tick: sells what it holds once that is worth selling, else buys.

    (``Churn``'s "buy when flat" stalls on a live venue that takes a buy's commission in the
    base asset: the sell rounds down to the lot step and leaves dust, so the bot is never
    flat again.)"""

    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None:
        if ctx.position.closable_size * ticker.bid >= ORDER_QUOTE / 2:
            return Signal.close("flip")
        if ctx.position.pending_buys == 0:
            return Signal.buy("flip")
        return None


def bot_table(bot_id: str) -> dict[str, Any]:
    return {
        "id": bot_id,
        "exchange": "sim",
        "symbol": SYMBOL,
        "strategy": f"{__name__}:Flip",
        "mode": "live",
        "account": ACCOUNT,
        "order_quote": str(ORDER_QUOTE),
        "risk": {
            "max_orders_per_minute": 1_000_000,
            "max_open_positions": 100,  # dust lots count as positions
            "price_confirm_ticks": 1,
            "max_tick_move_pct": 20.0,
            "daily_loss_limit_quote": "1000000",
        },
    }


def account_table(venue: BinanceVenue) -> dict[str, Any]:
    return {
        "name": ACCOUNT,
        "api_key_env": KEY_ENV,
        "api_secret_env": SECRET_ENV,
        "rest_url": venue.rest_url,
        "ws_api_url": venue.ws_api_url,
        # An order journaled but never sent before a kill is known never placed only after the
        # venue's deadline (recvWindow + its processing limit + the read lag): short ones. The
        # local venue re-checks recvWindow at its engine and never waits longer: no 10 s limit.
        "recv_window_ms": 1000,
        "processing_limit_s": 0.0,
        "query_lag_s": 0.5,
        "unknown_poll_s": 0.5,
        "unknown_confirmations": 1,  # the local venue's lookups do not lag its engine
        "order_poll_s": 1.0,
        "max_order_quote": "100000",
        "max_working_quote": "1000000",
    }


# --- what the venue saw ----------------------------------------------------------------------


def venue_id_of(journal_id: str) -> str:
    bot, _, seq = journal_id.rpartition("-")
    return client_order_id(bot, int(seq))


def journal_id_of(venue_id: str) -> str:
    return f"{owner(venue_id)}-{venue_id.rpartition('_')[2]}"


def owner(venue_id: str) -> str | None:
    stem = venue_id.rpartition("_")[0]
    return next((bot for bot in BOTS if bot_stem(bot) == stem), None)


def received_since(venue: BinanceVenue, since: float) -> list[VenueRequest]:
    """The requests the venue received from ``since`` on, in the order it received them."""
    return sorted(
        (r for r in venue.requests() if r.received_at >= since), key=lambda r: r.received_at
    )


def is_post(request: VenueRequest) -> bool:
    return request.method == "POST" and request.path == ORDER_PATH


def bot_placed_since(venue: BinanceVenue, bot: str, count: int) -> bool:
    return any(owner(o.client_order_id) == bot for o in venue.engine.orders[count:])


@attrs.frozen
class RunReport:
    posts: int  # POST /api/v3/order this run sent
    looked_up: int  # orders left unresolved by the previous kill, looked up before new orders


def check_reconciled_first(
    venue: BinanceVenue, since: float, unresolved: Mapping[str, Sequence[str]]
) -> RunReport:
    """The run that started at ``since``: the account's reconciliation came before its first
    order, and each order left unresolved was looked up before its bot's first new order."""
    requests = received_since(venue, since)
    posts = [i for i, r in enumerate(requests) if is_post(r)]
    assert posts, "the run placed no order"

    def first(method: str, path: str) -> int:
        found = [i for i, r in enumerate(requests) if (r.method, r.path) == (method, path)]
        assert found, f"the run never sent {method} {path}"
        return found[0]

    open_orders = first("GET", "/api/v3/openOrders")
    account = first("GET", "/api/v3/account")
    assert open_orders < account < posts[0], (open_orders, account, posts[0])
    first_posts: dict[str, int] = {}
    for i in posts:
        bot = owner(str(requests[i].params["newClientOrderId"]))
        assert bot is not None, requests[i]
        first_posts.setdefault(bot, i)
    assert set(first_posts) == set(BOTS), first_posts
    looked_up = 0
    for bot, venue_ids in unresolved.items():
        for venue_id in venue_ids:
            lookups = [
                i
                for i, r in enumerate(requests)
                if (r.method, r.path) == ("GET", ORDER_PATH)
                and r.params.get("origClientOrderId") == venue_id
            ]
            assert lookups, f"{bot} traded without looking up {venue_id}, left unresolved"
            assert lookups[0] < first_posts[bot], f"{bot} traded before looking {venue_id} up"
            looked_up += 1
    return RunReport(len(posts), looked_up)


def check_log_order(daemon: Daemon) -> None:
    """The account child was up (reconciled) before any bot started."""
    records = daemon.records
    ready = next(
        i for i, r in enumerate(records) if log_is("child started", child=f"account:{ACCOUNT}")(r)
    )
    bots = [i for i, r in enumerate(records) if r["message"] == "bot started"]
    assert bots, daemon.tail()
    assert ready < bots[0], daemon.tail()


# --- the journal -----------------------------------------------------------------------------


def check_snapshot(view: JournalView, venue: BinanceVenue) -> dict[str, list[str]]:
    """What must hold at any instant, kill or not; returns each bot's unresolved venue ids."""
    assert view.integrity == "ok"
    assert view.orphan_fills == 0
    journaled = set(view.order_ids())
    for order in venue.orders():  # the intent is durable before the order is sent
        assert journal_id_of(order.client_order_id) in journaled, order
    unresolved: dict[str, list[str]] = {}
    for bot, orders in view.orders.items():
        ids = [o.intent.client_id for o in orders]
        assert ids == [f"{bot}-{n}" for n in range(1, len(ids) + 1)]  # no gap, no reuse
        assert all(o.intent.order_type == "market" for o in orders)
        pending = [o.intent.client_id for o in orders if o.status in ("intent", "open")]
        assert len(pending) <= 1, pending  # one order at a time, the one being placed
        unresolved[bot] = [venue_id_of(i) for i in pending]
    return unresolved


def booked_delta(fills: Sequence[FillRecord]) -> tuple[Decimal, Decimal]:
    """(base, quote) the journal's fills changed."""
    base = quote = Decimal(0)
    for fill in fills:
        if fill.side == "buy":
            base += fill.size
            quote -= fill.price * fill.size + fill.fee
        else:
            base -= fill.size
            quote += fill.price * fill.size - fill.fee
    return base, quote


def traded_delta(trades: Sequence[Fill]) -> tuple[Decimal, Decimal]:
    """(base, quote) the venue's trades changed on the account (commission included)."""
    base = quote = Decimal(0)
    for trade in trades:
        if trade.side == "BUY":
            assert trade.commission_asset == BASE
            base += trade.qty - trade.commission
            quote -= trade.quote_qty
        else:
            assert trade.commission_asset == QUOTE
            base -= trade.qty
            quote += trade.quote_qty - trade.commission
    return base, quote


def check_final(
    view: JournalView,
    venue: BinanceVenue,
    before: Mapping[str, Any],
    posted: Counter[str],
) -> None:
    assert view.integrity == "ok"
    assert view.orphan_fills == 0
    # (1) no client order id was ever sent twice
    assert posted
    assert max(posted.values()) == 1, [cid for cid, n in posted.items() if n > 1]
    # nothing is left unresolved, and what was never placed is not on the venue
    venue_orders = {o.client_order_id: o for o in venue.orders()}
    assert set(venue_orders) <= set(posted)
    for orders in view.orders.values():
        for order in orders:
            venue_id = venue_id_of(order.intent.client_id)
            assert order.status in ("filled", "cancelled", "rejected"), order
            if order.status == "filled":
                assert venue_orders[venue_id].status == "FILLED", order
            elif venue_id in venue_orders:
                assert venue_orders[venue_id].executed_qty == 0, order
            if order.status_reason.startswith("never_placed"):
                assert venue_id not in posted, order
    # (2) every venue trade of ours is booked once, as the trade says; no fill without a trade
    cid_of = {o.order_id: cid for cid, o in venue_orders.items()}
    trades = {f"{NATIVE}:{t.trade_id}": t for t in venue.trades()}
    fills = [f for bot in BOTS for f in view.fills[bot]]
    booked = Counter(f.venue_fill_id for f in fills)
    assert None not in booked
    assert max(booked.values()) == 1
    assert set(booked) == set(trades)
    for fill in fills:
        trade = trades[str(fill.venue_fill_id)]
        assert venue_id_of(fill.client_id) == cid_of[trade.order_id], fill
        assert (fill.side, fill.price) == (trade.side.lower(), trade.price), (fill, trade)
        if fill.side == "buy":  # the commission is taken from what was bought
            expected = (trade.qty - trade.commission, trade.commission * trade.price)
        else:
            expected = (trade.qty, trade.commission)
        assert (fill.size, fill.fee) == expected, (fill, trade)
    # (3) per bot, and in sum, the journal's balances are the venue's
    total_base = total_quote = Decimal(0)
    for bot in BOTS:
        mine = [t for t in trades.values() if owner(cid_of[t.order_id]) == bot]
        assert booked_delta(view.fills[bot]) == traded_delta(mine), bot
        base, quote = booked_delta(view.fills[bot])
        total_base, total_quote = total_base + base, total_quote + quote
    after = venue.balances()

    def change(asset: str) -> Decimal:
        was = before[asset].free + before[asset].locked
        return after[asset].free + after[asset].locked - was

    assert (total_base, total_quote) == (change(BASE), change(QUOTE))


# --- the test --------------------------------------------------------------------------------


async def wait_every_bot_trading(daemon: Daemon, venue: BinanceVenue, orders_before: int) -> None:
    """Until each bot has an order on the venue beyond the first ``orders_before``; fails at
    once if the daemon exits meanwhile."""

    async def exited() -> None:
        code = await daemon.wait_exit()
        raise AssertionError(
            f"the daemon exited ({code}) before every bot traded:\n{daemon.tail()}"
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(exited)
        for bot in BOTS:
            await venue.wait_for(lambda v, bot=bot: bot_placed_since(v, bot, orders_before))
        nursery.cancel_scope.cancel()


async def run_daemon(
    config: Path, env: Mapping[str, str], venue: BinanceVenue, kill_after_s: float | None
) -> tuple[Daemon, float]:
    """One daemon run: once every bot has placed an order (so each has settled what the last
    kill left), wait ``kill_after_s`` and SIGKILL it, or (None) stop it with SIGTERM. Returns
    the dead daemon and how long it took until every bot traded."""
    began, orders_before = time.monotonic(), len(venue.engine.orders)
    with trio.fail_after(RUN_DEADLINE_S):
        async with open_daemon("--config", str(config), cwd=config.parent, env=env) as daemon:
            await wait_every_bot_trading(daemon, venue, orders_before)
            trading_after_s = time.monotonic() - began
            if kill_after_s is None:
                assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
            else:
                await trio.sleep(kill_after_s)  # the random kill point, not a wait for anything
                assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL, daemon.tail()
    return daemon, trading_after_s


async def test_kill_9_repeatedly_while_live_bots_trade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every request of the whole test is kept: the log is what invariant (1) counts.
    monkeypatch.setattr(venue_module, "REQUEST_LOG_LENGTH", 10_000_000)
    rng = random.Random(SEED)
    print(f"kill delays: random.Random({SEED})")
    journal = tmp_path / "journal.sqlite3"
    began = time.monotonic()
    left: set[str] = set()  # journal ids of orders a kill left without an outcome
    with trio.fail_after(TEST_DEADLINE_S):
        async with (
            open_exchange_server("binance", (SYMBOL,), seed=SEED, rate_hz=MARKET_RATE_HZ) as server,
            open_binance_venue(seed=SEED, market_server=server) as venue,
        ):
            venue.set_order_limits(per_10s=1_000_000, per_day=10_000_000)
            venue.set_request_weight_limit(100_000_000)
            config = write_config(
                tmp_path / "live.toml",
                {
                    "http": {"enabled": False},
                    "backoff": {"initial_s": 0.05, "max_s": 0.5},
                    "journal": {"path": journal},
                    "exchanges": [local_exchange("sim", server)],
                    "accounts": [account_table(venue)],
                    "bots": [bot_table(bot) for bot in BOTS],
                },
            )
            env = {KEY_ENV: venue.api_key, SECRET_ENV: venue.secret}
            before = venue.balances()
            unresolved: dict[str, list[str]] = {}
            for run in range(1, KILLS + 2):
                delay = rng.uniform(0.0, MAX_KILL_DELAY_S) if run <= KILLS else None
                since = trio.current_time()
                daemon, trading_after_s = await run_daemon(config, env, venue, delay)
                report = check_reconciled_first(venue, since, unresolved)
                check_log_order(daemon)
                line = (
                    f"run {run:2}: every bot trading after {trading_after_s:5.2f} s;"
                    f" {report.posts:3} orders sent; {report.looked_up} left by the last kill"
                    " looked up first"
                )
                if delay is None:
                    print(f"{line}; stopped by SIGTERM")
                    break
                view = read_journal(copy_journal(journal, tmp_path / f"after-kill-{run}"))
                unresolved = check_snapshot(view, venue)
                left.update(journal_id_of(i) for ids in unresolved.values() for i in ids)
                print(
                    f"{line}; killed {delay:.2f} s later, {sum(map(len, unresolved.values()))}"
                    f" unresolved; {sum(map(len, view.fills.values()))} fills journaled"
                )
    final = read_journal(journal)
    posted = Counter(
        str(r.params["newClientOrderId"]) for r in venue.requests(ORDER_PATH, method="POST")
    )
    check_final(final, venue, before, posted)
    outcomes = Counter(
        o.status_reason.partition(":")[0] or o.status
        for orders in final.orders.values()
        for o in orders
        if o.intent.client_id in left
    )
    booked_late = sum(f.client_id in left for fills in final.fills.values() for f in fills)
    print(
        f"{time.monotonic() - began:.1f} s: {len(posted)} orders sent, {len(left)} left"
        f" unresolved by a kill ({dict(outcomes)}; {booked_late} fills of theirs booked after"
        f" a restart); {len(venue.trades())} venue trades = journal fills"
    )
