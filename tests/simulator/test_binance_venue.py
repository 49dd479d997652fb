"""The local Binance venue's REST API over real sockets: endpoints, signatures, timing,
filters, matching, balances. Faults are in ``test_binance_venue_faults.py``, the user data
stream in ``test_binance_venue_user_stream.py``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.simulator import ApiKey, BinanceVenue, open_binance_venue
from actors.simulator.venue_auth import rest_payload
from tests.simulator.binance_venue_client import (
    FORM,
    VenueClient,
    ed25519_signer,
    hmac_hex,
)
from tests.simulator.helpers import fail_after

# Binance's documented signing example (rest-api "SIGNED Endpoint Examples").
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOC_MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
DOC_MIXED_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
DOC_MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
DOC_TIMESTAMP = 1499827319559


@asynccontextmanager
async def trading(
    symbols: tuple[str, ...] = ("BTC/USDT",), **kwargs: Any
) -> AsyncIterator[tuple[BinanceVenue, VenueClient]]:
    kwargs.setdefault("rate_hz", 0.0)  # prices move only when a test steps them
    async with (
        open_binance_venue(symbols, seed=1, **kwargs) as venue,
        httpx.AsyncClient(base_url=venue.rest_url) as http,
    ):
        yield venue, VenueClient(venue, http)


def error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["code"], body["msg"]


def step_until(venue: BinanceVenue, done: Any, limit: int = 20_000) -> None:
    for _ in range(limit):
        if done():
            return
        venue.step("BTC/USDT")
    raise AssertionError("the model never got there")


# --- public endpoints ------------------------------------------------------------------------
@fail_after(30)
async def test_time_ping_and_book_ticker(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        response = await client.http.get("/api/v3/time")
        assert response.status_code == 200
        assert set(response.json()) == {"serverTime"}
        assert abs(response.json()["serverTime"] - venue.server_time_ms()) <= 1
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert (await client.http.get("/api/v3/ping")).json() == {}
        book = (await client.http.get("/api/v3/ticker/bookTicker?symbol=BTCUSDT")).json()
        assert set(book) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
        assert Decimal(book["bidPrice"]) < Decimal(book["askPrice"])
        assert len(book["askPrice"].split(".")[1]) == 8
        every = (await client.http.get("/api/v3/ticker/bookTicker")).json()
        assert every == [book]
        assert (await client.http.get("/api/v3/nothing")).status_code == 404
        # weights: time 1 + ping 1 + bookTicker 2 + 4 + the 404 1
        assert venue.limits.used_weight(venue.server_time_ms()) == 9


@fail_after(30)
async def test_exchange_info_filters(autojump_clock: trio.abc.Clock) -> None:
    async with trading(("BTC/USDT", "ETH/BTC")) as (_venue, client):
        response = await client.http.get("/api/v3/exchangeInfo")
        assert response.status_code == 200
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        info = response.json()
        assert info["timezone"] == "UTC"
        assert {r["rateLimitType"] for r in info["rateLimits"]} == {
            "REQUEST_WEIGHT",
            "ORDERS",
            "RAW_REQUESTS",
        }
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHBTC"]
        btc = info["symbols"][0]
        assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        assert filters["LOT_SIZE"]["minQty"] == "0.00001000"
        assert filters["MARKET_LOT_SIZE"]["stepSize"] == "0.00000000"
        assert filters["NOTIONAL"] == {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        }
        eth_btc = {f["filterType"]: f for f in info["symbols"][1]["filters"]}
        assert eth_btc["NOTIONAL"]["minNotional"] == "0.00008000"
        one = (await client.http.get("/api/v3/exchangeInfo?symbol=ETHBTC")).json()
        assert [s["symbol"] for s in one["symbols"]] == ["ETHBTC"]
        some = await client.http.get('/api/v3/exchangeInfo?symbols=["ETHBTC","BTCUSDT"]')
        assert [s["symbol"] for s in some.json()["symbols"]] == ["ETHBTC", "BTCUSDT"]
        bad = await client.http.get("/api/v3/exchangeInfo?symbol=DOGEUSDT")
        assert error(bad) == (400, -1121, "Invalid symbol.")
        both = await client.http.get('/api/v3/exchangeInfo?symbol=ETHBTC&symbols=["ETHBTC"]')
        assert error(both)[1] == -1128
        assert error(await client.http.get("/api/v3/exchangeInfo?symbols=ETHBTC"))[1] == -1100


# --- signatures ------------------------------------------------------------------------------
def test_published_hmac_vector() -> None:
    assert hmac_hex(DOC_SECRET, DOC_PAYLOAD) == DOC_SIGNATURE
    assert ApiKey.from_secret(DOC_KEY, DOC_SECRET).verify(DOC_PAYLOAD, DOC_SIGNATURE.upper())
    # the venue signs what was received: the query string and the body, no separator
    payload, signature = rest_payload(
        DOC_MIXED_QUERY, f"{DOC_MIXED_BODY}&signature={DOC_MIXED_SIGNATURE}"
    )
    assert payload == DOC_MIXED_QUERY + DOC_MIXED_BODY
    assert signature == DOC_MIXED_SIGNATURE
    assert hmac_hex(DOC_SECRET, payload) == DOC_MIXED_SIGNATURE


@fail_after(30)
async def test_published_requests_are_accepted_verbatim(autojump_clock: trio.abc.Clock) -> None:
    """The three documented requests, byte for byte, with the venue clock set to their time."""
    async with trading(("LTC/BTC",)) as (venue, client):
        assert venue.api_key == DOC_KEY
        headers = {"X-MBX-APIKEY": DOC_KEY}
        venue.skew_clock(DOC_TIMESTAMP + 50 - int(venue.now_ts() * 1000))
        as_body = await client.http.post(
            "/api/v3/order",
            content=f"{DOC_PAYLOAD}&signature={DOC_SIGNATURE}",
            headers={**headers, **FORM},
        )
        assert as_body.status_code == 200, as_body.text
        assert as_body.json()["status"] == "FILLED"  # 0.1 BTC per LTC is above the ask
        as_query = await client.http.post(
            f"/api/v3/order?{DOC_PAYLOAD}&signature={DOC_SIGNATURE}", headers=headers
        )
        assert as_query.status_code == 200, as_query.text
        mixed = await client.http.post(
            f"/api/v3/order?{DOC_MIXED_QUERY}",
            content=f"{DOC_MIXED_BODY}&signature={DOC_MIXED_SIGNATURE}",
            headers={**headers, **FORM},
        )
        assert mixed.status_code == 200, mixed.text
        assert len(venue.orders("LTCBTC")) == 3
        # the mixed request's signature over the same parameters joined with "&" is wrong
        reordered = await client.http.post(
            f"/api/v3/order?{DOC_MIXED_QUERY}",
            content=f"{DOC_MIXED_BODY}&signature={DOC_SIGNATURE}",
            headers={**headers, **FORM},
        )
        assert error(reordered) == (400, -1022, "Signature for this request is not valid.")


@fail_after(30)
async def test_bad_signature_and_api_keys(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        good = client.query({"symbol": "BTCUSDT"})
        bad = good[:-64] + ("0" if good[-64] != "0" else "1") + good[-63:]
        response = await client.http.get(
            f"/api/v3/openOrders?{bad}", headers={"X-MBX-APIKEY": DOC_KEY}
        )
        assert error(response) == (400, -1022, "Signature for this request is not valid.")
        upper = good[:-64] + good[-64:].upper()  # hex is not case-sensitive
        response = await client.http.get(
            f"/api/v3/openOrders?{upper}", headers={"X-MBX-APIKEY": DOC_KEY}
        )
        assert response.status_code == 200, response.text
        # parameters re-ordered after signing: another payload
        reordered = (
            "&".join(reversed(good.rsplit("&", 1)[0].split("&"))) + "&" + good.rsplit("&", 1)[1]
        )
        response = await client.http.get(
            f"/api/v3/openOrders?{reordered}", headers={"X-MBX-APIKEY": DOC_KEY}
        )
        assert error(response)[1] == -1022
        missing = await client.http.get(f"/api/v3/openOrders?{good}")
        assert error(missing) == (401, -2014, "API-key format invalid.")
        unknown = await client.http.get(
            f"/api/v3/openOrders?{good}", headers={"X-MBX-APIKEY": "A" * 64}
        )
        assert error(unknown) == (401, -2015, "Invalid API-key, IP, or permissions for action.")
        malformed = await client.http.get(
            f"/api/v3/openOrders?{good}", headers={"X-MBX-APIKEY": "not-a-key"}
        )
        assert error(malformed)[:2] == (401, -2014)
        unsigned = await client.http.get(
            f"/api/v3/openOrders?symbol=BTCUSDT&timestamp={client.timestamp()}",
            headers={"X-MBX-APIKEY": DOC_KEY},
        )
        assert error(unsigned) == (
            400,
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        )
        assert [r.code for r in venue.requests("/api/v3/openOrders")] == [
            -1022,
            None,
            -1022,
            -2014,
            -2015,
            -2014,
            -1102,
        ]


@fail_after(30)
async def test_ed25519_key(autojump_clock: trio.abc.Clock) -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    async with trading() as (venue, client):
        venue.add_api_key(ApiKey.from_ed25519("ed-key", public))
        ed = VenueClient(venue, client.http, api_key="ed-key", signer=ed25519_signer(private))
        assert (await ed.signed("GET", "/api/v3/openOrders")).json() == []
        response = await ed.order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
        assert response.status_code == 200, response.text
        other = Ed25519PrivateKey.generate()
        forged = VenueClient(venue, client.http, api_key="ed-key", signer=ed25519_signer(other))
        assert error(await forged.signed("GET", "/api/v3/openOrders"))[1] == -1022
        garbage = VenueClient(venue, client.http, api_key="ed-key", signer=lambda _: "%%%")
        assert error(await garbage.signed("GET", "/api/v3/openOrders"))[1] == -1022
        pem = ApiKey.from_ed25519(
            "pem-key",
            "-----BEGIN PUBLIC KEY-----\n"
            + base64.b64encode(bytes.fromhex("302a300506032b6570032100") + public).decode()
            + "\n-----END PUBLIC KEY-----\n",
        )
        assert pem.verify("a=1", ed25519_signer(private)("a=1"))
        assert pem.kind == "ED25519"
        with pytest.raises(ValueError, match="exactly one"):
            ApiKey("k")


@fail_after(30)
async def test_timestamp_and_recv_window(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (_venue, client):
        ahead = VenueClient(client.venue, client.http, clock_offset_ms=1000)
        assert error(await ahead.signed("GET", "/api/v3/openOrders")) == (
            400,
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        )
        nearly = VenueClient(client.venue, client.http, clock_offset_ms=999)
        assert (await nearly.signed("GET", "/api/v3/openOrders")).status_code == 200
        late = VenueClient(client.venue, client.http, clock_offset_ms=-5001)
        assert error(await late.signed("GET", "/api/v3/openOrders")) == (
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        )
        wide = await late.signed("GET", "/api/v3/openOrders", {"recvWindow": 10000})
        assert wide.status_code == 200
        micro = await client.signed(
            "GET", "/api/v3/openOrders", {"timestamp": client.timestamp() * 1000 + 123}
        )
        assert micro.status_code == 200, micro.text
        fractional = await late.signed("GET", "/api/v3/openOrders", {"recvWindow": "5001.500"})
        assert fractional.status_code == 200, fractional.text
        too_wide = await client.signed("GET", "/api/v3/openOrders", {"recvWindow": 60001})
        assert error(too_wide)[:2] == (400, -1131)
        assert (
            error(await client.signed("GET", "/api/v3/openOrders", {"recvWindow": "x"}))[1] == -1100
        )
        assert (
            error(await client.signed("GET", "/api/v3/openOrders", {"timestamp": "soon"}))[1]
            == -1100
        )
        no_time = await client.http.get(
            "/api/v3/openOrders?" + client.query({}, timestamp=False),
            headers={"X-MBX-APIKEY": DOC_KEY},
        )
        assert error(no_time) == (
            400,
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        )


# --- orders ----------------------------------------------------------------------------------
@fail_after(30)
async def test_market_order_full_result_ack(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        ask = venue.touch("BTCUSDT").ask
        usdt_before, _ = await client.balance("USDT")
        btc_before, _ = await client.balance("BTC")
        response = await client.order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01", newClientOrderId="m-1"
        )
        assert response.status_code == 200, response.text
        assert response.headers["X-MBX-ORDER-COUNT-10S"] == "1"
        assert response.headers["X-MBX-ORDER-COUNT-1D"] == "1"
        full = response.json()
        assert set(full) == {
            "symbol",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
            "price",
            "origQty",
            "executedQty",
            "origQuoteOrderQty",
            "cummulativeQuoteQty",
            "status",
            "timeInForce",
            "type",
            "side",
            "workingTime",
            "selfTradePreventionMode",
            "fills",
        }
        assert (full["clientOrderId"], full["status"], full["type"]) == ("m-1", "FILLED", "MARKET")
        assert full["executedQty"] == full["origQty"] == "0.01000000"
        assert full["fills"] == [
            {
                "price": f"{ask:.8f}",
                "qty": "0.01000000",
                "commission": "0.00001000",
                "commissionAsset": "BTC",
                "tradeId": full["fills"][0]["tradeId"],
            }
        ]
        cost = ask * Decimal("0.01")
        assert Decimal(full["cummulativeQuoteQty"]) == cost
        usdt_after, _ = await client.balance("USDT")
        btc_after, _ = await client.balance("BTC")
        assert Decimal(usdt_after) == Decimal(usdt_before) - cost
        assert Decimal(btc_after) == Decimal(btc_before) + Decimal("0.00999")
        result = await client.order(
            symbol="BTCUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.005",
            newOrderRespType="RESULT",
        )
        assert "fills" not in result.json()
        assert result.json()["status"] == "FILLED"
        assert len(result.json()["clientOrderId"]) == 22  # generated when not sent
        ack = await client.order(
            symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.005", newOrderRespType="ACK"
        )
        assert set(ack.json()) == {
            "symbol",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
        }
        sells = [t for t in venue.trades() if t.side == "SELL"]
        assert [t.commission_asset for t in sells] == ["USDT", "USDT"]
        assert all(
            t.commission == (t.quote_qty * Decimal("0.001")).quantize(Decimal("1e-8"))
            for t in sells
        )
        ids = [o.order_id for o in venue.orders()]
        assert ids == sorted(ids)
        assert len(set(ids)) == 3


@fail_after(30)
async def test_large_market_order_sweeps_the_synthetic_book(autojump_clock: trio.abc.Clock) -> None:
    async with trading(balances={"USDT": "1000000", "BTC": "10"}) as (venue, client):
        touch = venue.touch("BTCUSDT")
        qty = (touch.ask_size * Decimal("2.5")).quantize(Decimal("0.00001"))
        response = await client.order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity=str(qty)
        )
        fills = response.json()["fills"]
        assert [Decimal(f["price"]) for f in fills] == [
            touch.ask,
            touch.ask + Decimal("0.01"),
            touch.ask + Decimal("0.02"),
        ]
        assert sum(Decimal(f["qty"]) for f in fills) == qty
        assert [f["tradeId"] for f in fills] == list(
            range(fills[0]["tradeId"], fills[0]["tradeId"] + 3)
        )
        quote = await client.order(symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="100")
        body = quote.json()
        assert body["status"] == "FILLED", body
        assert body["origQuoteOrderQty"] == "100.00000000"
        assert Decimal(body["cummulativeQuoteQty"]) <= 100
        assert Decimal(body["cummulativeQuoteQty"]) > 100 - venue.touch("BTCUSDT").ask * Decimal(
            "0.00001"
        )
        sell_quote = await client.order(
            symbol="BTCUSDT", side="SELL", type="MARKET", quoteOrderQty="50"
        )
        assert sell_quote.json()["status"] == "FILLED"
        assert Decimal(sell_quote.json()["cummulativeQuoteQty"]) <= 50


@fail_after(60)
async def test_limit_order_rests_then_fills_as_price_crosses(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, client):
        touch = venue.touch("BTCUSDT")
        price = touch.bid - Decimal("5.00")
        response = await client.order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.05",
            price=str(price),
            newClientOrderId="rest-1",
        )
        placed = response.json()
        assert (placed["status"], placed["fills"], placed["executedQty"]) == (
            "NEW",
            [],
            "0.00000000",
        )
        _free, locked = await client.balance("USDT")
        assert Decimal(locked) == price * Decimal("0.05")
        statuses = set()

        def filled() -> bool:
            order = venue.order("rest-1")
            assert order is not None
            statuses.add(order.status)
            return order.status == "FILLED"

        step_until(venue, filled)
        assert statuses == {"NEW", "PARTIALLY_FILLED", "FILLED"}  # 0.05 BTC takes several steps
        queried = (await client.get_order(symbol="BTCUSDT", origClientOrderId="rest-1")).json()
        assert (queried["status"], queried["executedQty"]) == ("FILLED", "0.05000000")
        assert Decimal(queried["cummulativeQuoteQty"]) == price * Decimal("0.05")
        assert queried["updateTime"] >= queried["time"]
        trades = (await client.signed("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})).json()
        assert len(trades) >= 2
        assert all(t["isMaker"] and t["isBuyer"] and t["price"] == f"{price:.8f}" for t in trades)
        assert sum(Decimal(t["qty"]) for t in trades) == Decimal("0.05")
        assert sum(Decimal(t["commission"]) for t in trades) == Decimal("0.00005")
        _free_after, locked_after = await client.balance("USDT")
        assert Decimal(locked_after) == 0
        by_order = await client.signed(
            "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
        )
        assert by_order.headers["X-MBX-USED-WEIGHT-1M"]
        assert len(by_order.json()) == len(trades)
        later = await client.signed(
            "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "fromId": trades[-1]["id"]}
        )
        assert [t["id"] for t in later.json()] == [trades[-1]["id"]]
        bad_combo = await client.signed(
            "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "fromId": 1, "startTime": 1}
        )
        assert error(bad_combo)[1] == -1128
        limited = await client.signed("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT", "limit": 1})
        assert len(limited.json()) == 1


@fail_after(30)
async def test_marketable_limit_ioc_fok_and_limit_maker(autojump_clock: trio.abc.Clock) -> None:
    async with trading(balances={"USDT": "1000000", "BTC": "10"}) as (venue, client):
        touch = venue.touch("BTCUSDT")
        big = (touch.ask_size * 3).quantize(Decimal("0.00001"))
        # GTC through one level: what the book has up to the price fills, the rest rests
        gtc = await client.order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity=str(big),
            price=str(touch.ask),
        )
        body = gtc.json()
        assert body["status"] == "PARTIALLY_FILLED"
        assert Decimal(body["executedQty"]) == touch.ask_size
        ioc = await client.order(
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="IOC",
            quantity=str(big),
            price=str(touch.bid),
        )
        assert ioc.json()["status"] == "EXPIRED"
        assert Decimal(ioc.json()["executedQty"]) == touch.bid_size
        fok = await client.order(
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="FOK",
            quantity=str(big),
            price=str(touch.bid),
        )
        assert (fok.json()["status"], fok.json()["executedQty"]) == ("EXPIRED", "0.00000000")
        maker = await client.order(
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT_MAKER",
            quantity="0.001",
            price=str(touch.bid),
        )
        assert error(maker) == (400, -2010, "Order would immediately match and take.")
        resting = await client.order(
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT_MAKER",
            quantity="0.001",
            price=str(touch.ask + 100),
        )
        assert set(resting.json()) == {
            "symbol",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
        }
        assert [o.status for o in venue.orders()] == [
            "PARTIALLY_FILLED",
            "EXPIRED",
            "EXPIRED",
            "NEW",
        ]


@fail_after(30)
async def test_query_cancel_and_open_orders(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        bid = venue.touch("BTCUSDT").bid
        ids = []
        for n in range(3):
            response = await client.order(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.001",
                price=str(bid - 100 - n),
                newClientOrderId=f"open-{n}",
            )
            ids.append(response.json()["orderId"])
        by_id = await client.get_order(symbol="BTCUSDT", orderId=ids[1])
        assert by_id.json()["clientOrderId"] == "open-1"
        assert by_id.headers["X-MBX-USED-WEIGHT-1M"] == str(3 + 4)
        both = await client.get_order(symbol="BTCUSDT", orderId=ids[1], origClientOrderId="open-2")
        assert error(both) == (400, -2013, "Order does not exist.")
        assert error(await client.get_order(symbol="BTCUSDT", origClientOrderId="nope"))[1] == -2013
        neither = await client.get_order(symbol="BTCUSDT")
        assert error(neither)[1] == -1102
        _, locked = await client.balance("USDT")
        assert Decimal(locked) > 0
        cancelled = await client.cancel(
            symbol="BTCUSDT", origClientOrderId="open-0", newClientOrderId="cancel-0"
        )
        assert cancelled.status_code == 200, cancelled.text
        body = cancelled.json()
        assert (body["status"], body["origClientOrderId"], body["clientOrderId"]) == (
            "CANCELED",
            "open-0",
            "cancel-0",
        )
        again = await client.cancel(symbol="BTCUSDT", origClientOrderId="open-0")
        assert error(again) == (400, -2011, "Unknown order sent.")
        assert error(await client.cancel(symbol="BTCUSDT", orderId=1))[1] == -2011
        open_orders = (
            await client.signed("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
        ).json()
        assert [o["clientOrderId"] for o in open_orders] == ["open-1", "open-2"]
        every = await client.signed("GET", "/api/v3/openOrders")
        # 3 orders, 4 queries, an account, 3 cancels, openOrders with (6) and without (80)
        assert every.headers["X-MBX-USED-WEIGHT-1M"] == "128"
        assert len(every.json()) == 2
        cancel_all = await client.signed("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
        assert [c["origClientOrderId"] for c in cancel_all.json()] == ["open-1", "open-2"]
        assert all(c["status"] == "CANCELED" for c in cancel_all.json())
        nothing = await client.signed("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
        assert error(nothing)[1] == -2011
        assert (await client.balance("USDT"))[1] == "0.00000000"
        history = (await client.signed("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"})).json()
        assert [o["status"] for o in history] == ["CANCELED"] * 3
        since = await client.signed(
            "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "orderId": ids[2], "limit": 5}
        )
        assert [o["orderId"] for o in since.json()] == [ids[2]]


@fail_after(30)
async def test_duplicate_client_order_id_while_open_and_reuse_once_final(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trading() as (venue, client):
        bid = venue.touch("BTCUSDT").bid
        limit = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": str(bid - 50),
            "newClientOrderId": "bot1-42",
        }
        assert (await client.order(**limit)).status_code == 200
        duplicate = await client.order(**limit)
        assert error(duplicate) == (400, -2010, "Duplicate order sent.")
        assert "X-MBX-ORDER-COUNT-10S" not in duplicate.headers
        await client.cancel(symbol="BTCUSDT", origClientOrderId="bot1-42")
        reused = await client.order(**limit)
        assert reused.status_code == 200
        # a MARKET order's id is free again as soon as it filled: a resend is a second order
        market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
        first = await client.order(**market, newClientOrderId="once")
        second = await client.order(**market, newClientOrderId="once")
        assert first.json()["status"] == second.json()["status"] == "FILLED"
        assert first.json()["orderId"] != second.json()["orderId"]
        newest = (await client.get_order(symbol="BTCUSDT", origClientOrderId="once")).json()
        assert newest["orderId"] == second.json()["orderId"]
        assert [(o.client_order_id, o.status) for o in venue.orders()] == [
            ("bot1-42", "CANCELED"),
            ("bot1-42", "NEW"),
            ("once", "FILLED"),
            ("once", "FILLED"),
        ]


@fail_after(30)
async def test_insufficient_balance(autojump_clock: trio.abc.Clock) -> None:
    async with trading(balances={"USDT": "100", "BTC": "0.001"}) as (venue, client):
        buy = await client.order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        assert error(buy) == (400, -2010, "Account has insufficient balance for requested action.")
        sell = await client.order(
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.002",
            price="90000",
        )
        assert error(sell)[1] == -2010
        assert venue.orders() == ()
        venue.set_balance("BTC", "1")
        assert (await client.balance("BTC")) == ("1.00000000", "0.00000000")
        assert (
            await client.order(
                **{
                    "symbol": "BTCUSDT",
                    "side": "SELL",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.002",
                    "price": "90000",
                }
            )
        ).status_code == 200
        assert (await client.balance("BTC")) == ("0.99800000", "0.00200000")
        account = await client.signed("GET", "/api/v3/account", {"omitZeroBalances": "true"})
        assert account.headers["X-MBX-USED-WEIGHT-1M"]
        assert {b["asset"] for b in account.json()["balances"]} == {"BTC", "USDT"}
        venue.set_balance("USDT", 0)
        account = await client.signed("GET", "/api/v3/account", {"omitZeroBalances": "true"})
        assert {b["asset"] for b in account.json()["balances"]} == {"BTC"}
        body = (await client.signed("GET", "/api/v3/account")).json()
        assert body["commissionRates"]["taker"] == "0.00100000"
        assert (body["makerCommission"], body["accountType"], body["canTrade"]) == (
            10,
            "SPOT",
            True,
        )
        venue.set_commission("0", "0.002")
        assert (await client.account())["takerCommission"] == 20
        bad = await client.signed("GET", "/api/v3/account", {"omitZeroBalances": "yes"})
        assert error(bad)[1] == -1130


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"price": "60000.000000001"}, (-1111, "Parameter 'price' has too much precision.")),
        ({"price": "60000.005"}, (-1013, "Filter failure: PRICE_FILTER")),
        ({"price": "0.001"}, (-1013, "Filter failure: PRICE_FILTER")),
        ({"quantity": "0.000015"}, (-1013, "Filter failure: LOT_SIZE")),
        ({"quantity": "9001"}, (-1013, "Filter failure: LOT_SIZE")),
        ({"quantity": "0.00001"}, (-1013, "Filter failure: NOTIONAL")),
        ({"quantity": "1.5e3"}, (-1100, None)),
        ({"quantity": ""}, (-1102, None)),
        ({"timeInForce": None}, (-1102, None)),
        ({"timeInForce": "GTX"}, (-1115, "Invalid timeInForce.")),
        ({"side": "HOLD"}, (-1117, "Invalid side.")),
        ({"side": None}, (-1102, None)),
        ({"type": "ICEBERG"}, (-1116, "Invalid orderType.")),
        ({"type": None}, (-1102, None)),
        ({"type": "STOP_LOSS"}, (-2010, "Stop loss orders are not supported for this symbol.")),
        ({"symbol": "BTCEUR"}, (-1121, "Invalid symbol.")),
        ({"symbol": None}, (-1102, None)),
        ({"newClientOrderId": "has space"}, (-1100, None)),
        ({"newClientOrderId": "x" * 37}, (-1100, None)),
        ({"newClientOrderId": ""}, (-1118, "New client order ID was empty.")),
        ({"newOrderRespType": "ALL"}, (-1130, None)),
        ({"selfTradePreventionMode": "EXPIRE_BOTH"}, (-1130, None)),
        ({"quoteOrderQty": "10"}, (-1106, "Parameter 'quoteOrderQty' sent when not required.")),
        ({"price": None}, (-1102, None)),
        (
            {"stopPrice": "1"},
            (-1104, "Not all sent parameters were read; read '8' parameter(s) but was sent '9'."),
        ),
    ],
)
@fail_after(30)
async def test_limit_order_rejections(
    params: dict[str, str | None], expected: tuple[int, str | None], autojump_clock: trio.abc.Clock
) -> None:
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "60000",
    } | params
    async with trading() as (venue, client):
        response = await client.order(**{k: v for k, v in order.items() if v is not None})
        status, code, msg = error(response)
        assert (status, code) == (400, expected[0]), msg
        if expected[1] is not None:
            assert msg == expected[1]
        assert venue.orders() == ()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"quantity": "100"}, (-1013, "Filter failure: MARKET_LOT_SIZE")),
        ({"quantity": "0.00002"}, (-1013, "Filter failure: NOTIONAL")),
        ({"quantity": None, "quoteOrderQty": "1"}, (-1013, "Filter failure: NOTIONAL")),
        (
            {"quantity": None},
            (-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
        ),
        ({"quoteOrderQty": "10"}, (-1106, "Parameter 'quoteOrderQty' sent when not required.")),
        ({"price": "60000"}, (-1106, "Parameter 'price' sent when not required.")),
        ({"timeInForce": "GTC"}, (-1106, "Parameter 'timeInForce' sent when not required.")),
    ],
)
@fail_after(30)
async def test_market_order_rejections(
    params: dict[str, str | None], expected: tuple[int, str], autojump_clock: trio.abc.Clock
) -> None:
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"} | params
    async with trading() as (venue, client):
        response = await client.order(**{k: v for k, v in order.items() if v is not None})
        assert error(response) == (400, *expected)
        assert venue.orders() == ()


@fail_after(30)
async def test_test_order_and_duplicate_parameters(autojump_clock: trio.abc.Clock) -> None:
    async with trading() as (venue, client):
        tested = await client.signed(
            "POST",
            "/api/v3/order/test",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
            body=True,
        )
        assert (tested.status_code, tested.json()) == (200, {})
        failing = await client.signed(
            "POST",
            "/api/v3/order/test",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0000001"},
            body=True,
        )
        assert error(failing)[1] == -1013
        assert venue.orders() == ()
        twice = await client.http.get(
            f"/api/v3/openOrders?symbol=BTCUSDT&symbol=BTCUSDT&{client.query({})}",
            headers={"X-MBX-APIKEY": DOC_KEY},
        )
        assert error(twice) == (400, -1101, "Duplicate values for a parameter detected.")
        # a parameter in the query string and the body: the query string's is used
        text = client.query(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
        )
        response = await client.http.post(
            f"/api/v3/order?{text}",
            content="quantity=5",
            headers={"X-MBX-APIKEY": DOC_KEY, **FORM},
        )
        # the body is part of the signed payload, so the signature no longer matches
        assert error(response)[1] == -1022
        assert (
            error(
                await client.signed(
                    "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "orderId": "x"}
                )
            )[1]
            == -1100
        )
