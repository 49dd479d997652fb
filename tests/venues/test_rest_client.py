"""``BinanceRest`` against the local Binance venue over real sockets, the venue's faults
included: every order outcome classified, no order ever sent twice, limits obeyed locally."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.errors import ExecutionError
from actors.simulator import ApiKey, BinanceVenue, open_binance_venue
from actors.venues.binance.filters import PreparedOrder, SymbolRules
from actors.venues.binance.responses import (
    Accepted,
    Cancelled,
    CancelRefused,
    OrderNotFound,
    OrderSnapshot,
    QueryFailed,
    RefusalKind,
    Refused,
    Unknown,
    UnknownKind,
)
from actors.venues.binance.rest import (
    AssetBalance,
    BinanceRest,
    PlacedOrder,
    VenueRateLimited,
    VenueRequestError,
)
from actors.venues.binance.signing import Ed25519Signer, HmacSigner, ServerClock, Signer
from tests.simulator.helpers import fail_after

SYMBOL = "BTCUSDT"
ORDER_PATH = "/api/v3/order"
QTY = Decimal("0.001")


@asynccontextmanager
async def trading(
    signer: Signer | None = None, **options: Any
) -> AsyncIterator[tuple[BinanceVenue, BinanceRest]]:
    async with open_binance_venue(("BTC/USDT",), seed=3, rate_hz=0.0) as venue:
        signer = signer or HmacSigner(venue.api_key, venue.secret)
        async with BinanceRest(venue.rest_url, signer, **options) as rest:
            yield venue, rest


async def symbol_rules(rest: BinanceRest) -> SymbolRules:
    return (await rest.exchange_info([SYMBOL])).rules[SYMBOL]


async def market_buy(venue: BinanceVenue, rest: BinanceRest) -> PreparedOrder:
    rules = await symbol_rules(rest)
    order = rules.prepare("buy", "market", QTY, reference_price=venue.touch(SYMBOL).ask)
    assert isinstance(order, PreparedOrder)
    return order


async def limit_buy(venue: BinanceVenue, rest: BinanceRest) -> PreparedOrder:
    rules = await symbol_rules(rest)
    order = rules.prepare("buy", "limit", QTY, venue.touch(SYMBOL).bid - 100)
    assert isinstance(order, PreparedOrder)
    return order


def posts(venue: BinanceVenue) -> int:
    return len(venue.requests(ORDER_PATH, method="POST"))


def accepted(placed: PlacedOrder) -> Accepted:
    assert isinstance(placed.outcome, Accepted), placed.outcome
    return placed.outcome


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the happy paths ---------------------------------------------------------------------------
@fail_after(30)
async def test_time_sync_then_a_market_order_with_full_fills(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, rest):
        await rest.sync_time()
        assert rest.clock.synced
        assert abs(rest.clock.server_ms(trio.current_time()) - venue.server_time_ms()) <= 1
        info = await rest.exchange_info([SYMBOL])
        assert list(info.rules) == [SYMBOL]
        assert ("REQUEST_WEIGHT", "1M", 6000) in [
            (r.limit_type, r.interval, r.limit) for r in rest.limits.rules
        ]
        assert rest.limits.rules == info.rate_limits
        order = await market_buy(venue, rest)
        placed = await rest.place_order(order, "bcf_a_1")
        answer = accepted(placed)
        assert (answer.status, answer.side, answer.executed_qty) == ("FILLED", "buy", QTY)
        assert [f.trade_id for f in answer.fills] == [str(t.trade_id) for t in venue.trades()]
        assert {f.source for f in answer.fills} == {"response"}
        assert sum(f.quantity for f in answer.fills) == QTY
        [request] = venue.requests(ORDER_PATH, method="POST")
        assert request.params["newOrderRespType"] == "FULL"
        assert request.params["newClientOrderId"] == "bcf_a_1"
        assert int(request.params["timestamp"]) == placed.timestamp_ms
        assert int(request.params["recvWindow"]) == placed.recv_window_ms == 5000
        assert venue.requests("/api/v3/time")[0].status == 200


@fail_after(30)
async def test_limit_order_rests_then_lookup_list_and_cancel(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, rest):
        order = await limit_buy(venue, rest)
        placed = accepted(await rest.place_order(order, "bcf_a_2"))
        assert (placed.status, placed.fills) == ("NEW", ())
        found = await rest.query_order(SYMBOL, "bcf_a_2")
        assert isinstance(found.outcome, OrderSnapshot)
        assert (found.outcome.status, found.outcome.price) == ("NEW", order.price)
        assert abs(found.asked_at_ms - venue.server_time_ms()) <= 2
        second = accepted(await rest.place_order(order, "bcf_a_3"))
        listed = await rest.open_orders(SYMBOL)
        assert [o.client_order_id for o in listed] == ["bcf_a_2", "bcf_a_3"]
        assert [o.order_id for o in await rest.open_orders()] == [placed.order_id, second.order_id]
        cancelled = await rest.cancel_order(SYMBOL, "bcf_a_2")
        assert isinstance(cancelled, Cancelled)
        assert (cancelled.status, cancelled.executed_qty) == ("CANCELED", 0)
        gone = await rest.query_order(SYMBOL, "bcf_a_2")
        assert isinstance(gone.outcome, OrderSnapshot)
        assert gone.outcome.status == "CANCELED"
        assert [o.client_order_id for o in await rest.open_orders(SYMBOL)] == ["bcf_a_3"]
        again = await rest.cancel_order(SYMBOL, "bcf_a_2")
        assert isinstance(again, CancelRefused)
        assert (again.kind, again.code) == (RefusalKind.NOT_OPEN, -2011)


@fail_after(30)
async def test_my_trades_and_account(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        before = await rest.account()
        placed = accepted(await rest.place_order(await market_buy(venue, rest), "bcf_a_4"))
        trades = await rest.my_trades(SYMBOL)

        def seen(fills: Any) -> list[tuple[Any, ...]]:
            return [(f.key, f.order_id, f.price, f.quantity, f.commission) for f in fills]

        assert seen(trades) == seen(placed.fills)
        assert {t.source for t in trades} == {"trades"}
        assert {t.side for t in trades} == {"buy"}
        assert {t.client_order_id for t in trades} == {""}
        mine = await rest.my_trades(SYMBOL, order_id=placed.order_id, client_order_id="bcf_a_4")
        assert {t.client_order_id for t in mine} == {"bcf_a_4"}
        last = int(trades[-1].trade_id)
        assert [t.trade_id for t in await rest.my_trades(SYMBOL, from_id=last, limit=1)] == [
            str(last)
        ]
        with pytest.raises(ValueError, match="limit"):
            await rest.my_trades(SYMBOL, limit=0)
        after = await rest.account()
        balances = venue.balances()
        assert after["BTC"] == AssetBalance(balances["BTC"].free, balances["BTC"].locked)
        assert after["BTC"].free > before["BTC"].free
        assert after["USDT"].free < before["USDT"].free


@fail_after(30)
async def test_ed25519_key(autojump_clock: trio.abc.Clock) -> None:
    private = Ed25519PrivateKey.generate()
    async with open_binance_venue(("BTC/USDT",), seed=3, rate_hz=0.0) as venue:
        venue.add_api_key(ApiKey.from_ed25519("ed-key", private.public_key().public_bytes_raw()))
        async with BinanceRest(venue.rest_url, Ed25519Signer("ed-key", private)) as rest:
            placed = accepted(await rest.place_order(await market_buy(venue, rest), "bcf_ed_1"))
            assert placed.status == "FILLED"
            assert "ed-key" not in repr(rest)
            assert (await rest.account())["BTC"].free > 0


# --- the venue's order faults --------------------------------------------------------------------
FAULTS = {
    "executed, answer dropped": (
        lambda v: v.drop_responses(),
        True,
        UnknownKind.NO_RESPONSE,
        None,
    ),
    "executed, connection reset": (
        lambda v: v.drop_responses(reset=True),
        True,
        UnknownKind.NO_RESPONSE,
        None,
    ),
    "not executed, answer dropped": (
        lambda v: v.drop_responses(execute=False),
        False,
        UnknownKind.NO_RESPONSE,
        None,
    ),
    "executed, then 503 -1007": (
        lambda v: v.error_responses(status=503, code=-1007),
        True,
        UnknownKind.SERVER_ERROR,
        -1007,
    ),
    "executed, then 408 -1007": (
        lambda v: v.error_responses(status=408, code=-1007),
        True,
        UnknownKind.VENUE_TIMEOUT,
        -1007,
    ),
    "not executed, then a gateway's 502": (
        lambda v: v.error_responses(status=502, code=None, execute=False),
        False,
        UnknownKind.SERVER_ERROR,
        None,
    ),
    "executed, answered after our timeout": (
        lambda v: v.delay_responses(30.0),
        True,
        UnknownKind.NO_RESPONSE,
        None,
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@fail_after(60)
async def test_order_faults_are_unknown_and_never_resent(
    fault: str, autojump_clock: trio.abc.Clock
) -> None:
    arm, executed, kind, code = FAULTS[fault]
    async with trading(timeout_s=5.0) as (venue, rest):
        order = await market_buy(venue, rest)
        await rest.sync_time()
        arm(venue)
        placed = await rest.place_order(order, "bcf_f_1")
        assert isinstance(placed.outcome, Unknown), placed.outcome
        assert (placed.outcome.kind, placed.outcome.code) == (kind, code)
        await venue.wait_for(lambda v: posts(v) > 0)  # a late answer is logged when sent
        assert posts(venue) == 1  # sent once, never again
        [request] = venue.requests(ORDER_PATH, method="POST")
        assert int(request.params["timestamp"]) == placed.timestamp_ms
        venue_order = venue.order("bcf_f_1")
        assert (venue_order is not None and venue_order.status == "FILLED") is executed
        # the lookup that resolves it
        found = await rest.query_order(SYMBOL, "bcf_f_1")
        assert isinstance(found.outcome, OrderSnapshot if executed else OrderNotFound)
        assert posts(venue) == 1


@fail_after(30)
async def test_not_sent_when_the_venue_cannot_be_reached(autojump_clock: trio.abc.Clock) -> None:
    async with open_binance_venue(("BTC/USDT",), seed=3, rate_hz=0.0) as venue:
        signer = HmacSigner(venue.api_key, venue.secret)
        async with BinanceRest(venue.rest_url, signer) as rest:
            order = await market_buy(venue, rest)
        url = f"http://127.0.0.1:{closed_port()}"
        async with BinanceRest(url, signer) as unsynced:
            placed = await unsynced.place_order(order, "bcf_n_1")
            assert isinstance(placed.outcome, Refused)
            assert placed.outcome.kind is RefusalKind.NOT_SENT
            assert "GET /api/v3/time" in placed.outcome.message
            assert placed.timestamp_ms == 0
        clock = ServerClock()
        clock.observe(trio.current_time(), trio.current_time(), venue.server_time_ms())
        async with BinanceRest(url, signer, clock=clock) as synced:
            placed = await synced.place_order(order, "bcf_n_2")
            assert isinstance(placed.outcome, Refused)
            assert placed.outcome.kind is RefusalKind.NOT_SENT
            assert "ConnectError" in placed.outcome.message
            assert placed.timestamp_ms > 0
            cancelled = await synced.cancel_order(SYMBOL, "bcf_n_2")
            assert isinstance(cancelled, CancelRefused)
            assert cancelled.kind is RefusalKind.NOT_SENT
            query = await synced.query_order(SYMBOL, "bcf_n_2")
            assert isinstance(query.outcome, QueryFailed)
            with pytest.raises(VenueRequestError, match=r"GET /api/v3/account: no response"):
                await synced.account()
        assert venue.orders() == ()


@fail_after(30)
async def test_lookup_and_cancel_faults(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        accepted(await rest.place_order(await limit_buy(venue, rest), "bcf_l_1"))
        venue.error_responses(endpoint="GET /api/v3/order", status=503, code=-1000)
        failed = await rest.query_order(SYMBOL, "bcf_l_1")
        assert failed.outcome == QueryFailed(
            503, -1000, "An unknown error occurred while processing the request."
        )
        venue.drop_responses(endpoint="GET /api/v3/order")
        lost = await rest.query_order(SYMBOL, "bcf_l_1")
        assert isinstance(lost.outcome, QueryFailed)
        assert lost.outcome.message.startswith("no response")
        venue.drop_responses(endpoint="DELETE /api/v3/order")  # cancelled, answer lost
        cancel = await rest.cancel_order(SYMBOL, "bcf_l_1")
        assert isinstance(cancel, Unknown)
        assert cancel.kind is UnknownKind.NO_RESPONSE
        order = venue.order("bcf_l_1")
        assert order is not None
        assert order.status == "CANCELED"
        assert len(venue.requests(ORDER_PATH, method="DELETE")) == 1


@fail_after(30)
async def test_lookups_lag_the_engine(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        venue.set_query_lag(3.0)
        accepted(await rest.place_order(await limit_buy(venue, rest), "bcf_q_1"))
        early = await rest.query_order(SYMBOL, "bcf_q_1")
        assert isinstance(early.outcome, OrderNotFound)
        await trio.sleep(3.0)
        late = await rest.query_order(SYMBOL, "bcf_q_1")
        assert isinstance(late.outcome, OrderSnapshot)
        assert late.asked_at_ms - early.asked_at_ms == pytest.approx(3000, abs=2)


# --- refusals ----------------------------------------------------------------------------------
@fail_after(30)
async def test_skewed_venue_clock_refused_then_resynced(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        order = await market_buy(venue, rest)
        await rest.sync_time()
        venue.skew_clock(10_000)  # our timestamps now look 10 s old
        placed = await rest.place_order(order, "bcf_t_1")
        assert isinstance(placed.outcome, Refused)
        assert (placed.outcome.kind, placed.outcome.code) == (RefusalKind.TIMESTAMP, -1021)
        assert not rest.clock.synced
        syncs = len(venue.requests("/api/v3/time"))
        assert posts(venue) == 1  # no retry of the refused request
        again = accepted(await rest.place_order(order, "bcf_t_2"))
        assert len(venue.requests("/api/v3/time")) == syncs + 1
        assert abs(again.transact_time_ms - venue.server_time_ms()) <= 2
        assert venue.order("bcf_t_1") is None
        assert posts(venue) == 2


@fail_after(30)
async def test_concurrent_first_requests_share_one_sync(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest), trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(rest.account)
    assert len(venue.requests("/api/v3/time")) == 1
    assert len(venue.requests("/api/v3/account")) == 3


@fail_after(1000)  # virtual time
async def test_stale_clock_sample_is_remeasured(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        await rest.account()
        await rest.account()
        assert len(venue.requests("/api/v3/time")) == 1
        await trio.sleep(rest.clock.max_sample_age_s + 1)
        await rest.account()
        assert len(venue.requests("/api/v3/time")) == 2


@fail_after(300)
async def test_429_blocks_every_request_locally_until_retry_after(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, rest):
        order = await market_buy(venue, rest)
        await rest.sync_time()
        venue.exhaust_request_weight()
        placed = await rest.place_order(order, "bcf_r_1")
        assert isinstance(placed.outcome, Refused)
        assert (placed.outcome.kind, placed.outcome.http_status, placed.outcome.code) == (
            RefusalKind.RATE_LIMIT,
            429,
            -1003,
        )
        assert venue.requests()[-1].status == 429
        wait = rest.limits.order_wait_s(trio.current_time())
        assert 0 < wait <= 60
        sent = len(venue.requests())
        held = await rest.place_order(order, "bcf_r_2")
        assert isinstance(held.outcome, Refused)
        assert held.outcome.kind is RefusalKind.RATE_LIMIT
        assert held.outcome.http_status is None
        assert held.outcome.message.startswith("not sent: rate limited for")
        with pytest.raises(VenueRateLimited) as limited:
            await rest.account()
        assert limited.value.wait_s == pytest.approx(wait)
        with pytest.raises(VenueRateLimited):
            await rest.query_order(SYMBOL, "bcf_r_1")
        with pytest.raises(VenueRateLimited):
            await rest.cancel_order(SYMBOL, "bcf_r_1")
        assert len(venue.requests()) == sent  # nothing reached the venue
        await trio.sleep(wait)
        accepted(await rest.place_order(order, "bcf_r_3"))
        assert 418 not in {r.status for r in venue.requests()}


@fail_after(300)
async def test_418_ban_holds_everything_for_its_retry_after(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, rest), httpx.AsyncClient(base_url=venue.rest_url) as other:
        order = await market_buy(venue, rest)
        await rest.sync_time()
        # another process on our IP ignores a 429 and gets the IP banned
        venue.exhaust_request_weight()
        assert (await other.get("/api/v3/time")).status_code == 429
        assert (await other.get("/api/v3/time")).status_code == 418
        with pytest.raises(VenueRequestError) as banned:
            await rest.account()
        assert (banned.value.http_status, banned.value.code) == (418, -1003)
        assert "HTTP 418 -1003" in str(banned.value)
        assert rest.limits.request_wait_s(trio.current_time()) == pytest.approx(120)
        sent = len(venue.requests())
        held = await rest.place_order(order, "bcf_b_1")
        assert isinstance(held.outcome, Refused)
        assert held.outcome.kind is RefusalKind.RATE_LIMIT
        with pytest.raises(VenueRateLimited):
            await rest.sync_time()
        assert len(venue.requests()) == sent
        await trio.sleep(120)
        accepted(await rest.place_order(order, "bcf_b_2"))


@fail_after(60)
async def test_order_count_limit_holds_orders_only(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        order = await market_buy(venue, rest)
        await trio.sleep(10 - (venue.server_time_ms() / 1000) % 10)  # start of a 10 s window
        venue.set_order_limits(per_10s=1)
        accepted(await rest.place_order(order, "bcf_o_1"))
        refused = await rest.place_order(order, "bcf_o_2")
        assert isinstance(refused.outcome, Refused)
        assert (refused.outcome.kind, refused.outcome.code) == (RefusalKind.RATE_LIMIT, -1015)
        held = await rest.place_order(order, "bcf_o_3")
        assert isinstance(held.outcome, Refused)
        assert held.outcome.message.startswith("not sent")
        assert posts(venue) == 2
        await rest.account()  # other requests go on
        await trio.sleep(rest.limits.order_wait_s(trio.current_time()))
        accepted(await rest.place_order(order, "bcf_o_4"))


@fail_after(30)
async def test_bad_credentials_are_auth_refusals_and_never_shown(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_binance_venue(("BTC/USDT",), seed=3, rate_hz=0.0) as venue:
        wrong = HmacSigner(venue.api_key, "not-the-secret")
        async with BinanceRest(venue.rest_url, wrong) as rest:
            placed = await rest.place_order(await market_buy(venue, rest), "bcf_s_1")
            assert isinstance(placed.outcome, Refused)
            assert (placed.outcome.kind, placed.outcome.code) == (RefusalKind.AUTH, -1022)
            with pytest.raises(VenueRequestError) as failed:
                await rest.account()
            signature = str(venue.requests("/api/v3/account")[-1].params["signature"])
            text = f"{failed.value} {placed.outcome} {rest!r}"
            assert "GET /api/v3/account: HTTP 400 -1022" in text
            for secret in (venue.api_key, "not-the-secret", signature):
                assert secret not in text
        unknown = HmacSigner("A" * 64, "x")
        async with BinanceRest(venue.rest_url, unknown) as rest:
            placed = await rest.place_order(await market_buy(venue, rest), "bcf_s_2")
            assert isinstance(placed.outcome, Refused)
            assert (placed.outcome.kind, placed.outcome.http_status, placed.outcome.code) == (
                RefusalKind.AUTH,
                401,
                -2015,
            )
        async with BinanceRest(venue.rest_url, None) as public:
            assert SYMBOL in (await public.exchange_info()).rules
            with pytest.raises(ExecutionError, match="no API key"):
                await public.account()
        assert venue.orders() == ()


@pytest.mark.parametrize(
    ("quantity", "kind", "code", "message"),
    [
        ("0.00001", RefusalKind.MIN_NOTIONAL, -1013, "Filter failure: NOTIONAL"),
        ("0.000015", RefusalKind.FILTER, -1013, "Filter failure: LOT_SIZE"),
        ("0.000000001", RefusalKind.PARAMETER, -1111, "too much precision"),
    ],
)
@fail_after(30)
async def test_venue_filter_refusals(
    quantity: str, kind: RefusalKind, code: int, message: str, autojump_clock: trio.abc.Clock
) -> None:
    async with trading() as (venue, rest):
        price = venue.touch(SYMBOL).bid - 100
        # shaped by hand, past our own filters: the venue is the last word
        order = PreparedOrder(
            SYMBOL, "buy", "limit", Decimal(quantity), price, quantity, str(price), None
        )
        placed = await rest.place_order(order, "bcf_x_1")
        assert isinstance(placed.outcome, Refused)
        assert (placed.outcome.kind, placed.outcome.code) == (kind, code)
        assert message in placed.outcome.message
        assert venue.orders() == ()


@fail_after(30)
async def test_other_endpoints_raise_with_status_and_code(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, rest):
        with pytest.raises(VenueRequestError) as bad_symbol:
            await rest.exchange_info(["NOPE"])
        assert (bad_symbol.value.http_status, bad_symbol.value.code) == (400, -1121)
        assert str(bad_symbol.value) == "GET /api/v3/exchangeInfo: HTTP 400 -1121 Invalid symbol."
        venue.error_responses(endpoint="GET /api/v3/account", status=502, code=None)
        with pytest.raises(VenueRequestError, match=r"HTTP 502 \(no venue error in the body\)"):
            await rest.account()
        venue.drop_responses(endpoint="GET /api/v3/openOrders")
        with pytest.raises(VenueRequestError, match="openOrders: no response"):
            await rest.open_orders(SYMBOL)
        with pytest.raises(RuntimeError, match="not open"):
            await BinanceRest(venue.rest_url, None).sync_time()
        with pytest.raises(ValueError, match="recv_window_ms"):
            BinanceRest(venue.rest_url, None, recv_window_ms=60_001)
        with pytest.raises(ValueError, match="timeout_s"):
            BinanceRest(venue.rest_url, None, timeout_s=0)


# --- answers the venue never gives: a bare HTTP server of the test's own -------------------------
async def serve_fixed(
    bodies: dict[str, bytes], *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answers every request with ``200`` and ``bodies[path]``, then closes the connection."""

    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        target = data.split(b" ", 2)[1].decode()
        body = bodies[target.partition("?")[0]]
        head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        await stream.send_all(head.encode() + body)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        task_status.started(f"http://127.0.0.1:{listener.socket.getsockname()[1]}")


@fail_after(30)
async def test_unreadable_successes(autojump_clock: trio.abc.Clock) -> None:
    bodies = {
        "/api/v3/time": b"<html>",
        "/api/v3/exchangeInfo": b'{"symbols": [{"symbol": "X"}], "rateLimits": []}',
        "/api/v3/order": b'{"symbol": "BTCUSDT"}',
        "/api/v3/openOrders": b'[{"clientOrderId": "a"}]',
        "/api/v3/myTrades": b'[{"id": "1"}]',
        "/api/v3/account": b'{"balances": [{"asset": "BTC", "free": 1}]}',
    }
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_fixed, bodies)
        clock = ServerClock()
        clock.observe(trio.current_time(), trio.current_time(), 1_700_000_000_000)
        async with BinanceRest(url, HmacSigner("k", "s"), clock=clock) as rest:
            with pytest.raises(VenueRequestError, match="time: unreadable response: HTTP 200"):
                await rest.sync_time()
            with pytest.raises(VenueRequestError, match="exchangeInfo: unreadable response"):
                await rest.exchange_info()
            price = Decimal(1)
            order = PreparedOrder(SYMBOL, "buy", "limit", QTY, price, "0.001", "1", None)
            placed = await rest.place_order(order, "bcf_u_1")
            assert isinstance(placed.outcome, Unknown)
            assert placed.outcome.kind is UnknownKind.MALFORMED_SUCCESS
            query = await rest.query_order(SYMBOL, "bcf_u_1")
            assert isinstance(query.outcome, QueryFailed)
            assert query.outcome.http_status == 200
            for call in (rest.open_orders(), rest.my_trades(SYMBOL), rest.account()):
                with pytest.raises(VenueRequestError, match="unreadable response"):
                    await call
            bodies["/api/v3/time"] = b'{"serverTime": 1700000005000}'
            rest.clock.forget()
            await rest.sync_time()
            assert rest.clock.server_ms(trio.current_time()) == 1_700_000_005_000
        nursery.cancel_scope.cancel()
