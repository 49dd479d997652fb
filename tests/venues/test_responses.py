"""Every order answer is accepted, refused (provably nothing on the venue) or unknown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.bots.risk import RejectReason
from actors.venues.binance.responses import (
    Accepted,
    Cancelled,
    CancelRefused,
    OrderArchived,
    OrderNotFound,
    OrderSnapshot,
    QueryFailed,
    RefusalKind,
    Refused,
    Unknown,
    UnknownKind,
    classify_cancel,
    classify_new_order,
    classify_no_response,
    classify_query,
    venue_error,
)
from actors.venues.fills import VenueFill
from tests.exchanges.helpers import FUZZ

CID = "bcf_grid_7"
D = Decimal

FULL: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": CID,
    "transactTime": 1507725176595,
    "price": "0.00000000",
    "origQty": "10.00000000",
    "executedQty": "10.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "10.00000000",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "SELL",
    "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
    "fills": [
        {
            "price": "4000.00000000",
            "qty": "1.00000000",
            "commission": "4.00000000",
            "commissionAsset": "USDT",
            "tradeId": 56,
        },
        {
            "price": "3999.00000000",
            "qty": "5.00000000",
            "commission": "19.99500000",
            "commissionAsset": "USDT",
            "tradeId": 57,
        },
    ],
}
ACK = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": CID,
    "transactTime": 1507725176595,
}


def err(code: int, msg: str) -> bytes:
    return orjson.dumps({"code": code, "msg": msg})


def new(status: int, body: object) -> object:
    return classify_new_order(status, body, client_order_id=CID)


# --- accepted -----------------------------------------------------------------------------------


def test_full_response_is_accepted_with_its_fills():
    outcome = new(200, orjson.dumps(FULL))
    assert isinstance(outcome, Accepted)
    assert (outcome.symbol, outcome.order_id, outcome.client_order_id) == ("BTCUSDT", 28, CID)
    assert outcome.status == "FILLED"
    assert outcome.terminal
    assert not outcome.working
    assert outcome.side == "sell"
    assert outcome.executed_qty == D(10)
    assert outcome.cumulative_quote_qty == D(10)
    assert outcome.fills[0] == VenueFill(
        symbol="BTCUSDT",
        trade_id="56",
        order_id="28",
        client_order_id=CID,
        side="sell",
        price=D(4000),
        quantity=D(1),
        commission=D(4),
        commission_asset="USDT",
        time_ms=1507725176595,
        maker=None,
        source="response",
    )
    assert [f.trade_id for f in outcome.fills] == ["56", "57"]


def test_ack_response_is_accepted_without_a_status():
    outcome = new(200, orjson.dumps(ACK).decode())
    assert isinstance(outcome, Accepted)
    assert outcome.status is None
    assert outcome.working
    assert outcome.fills == ()
    assert outcome.side is None
    assert outcome.executed_qty is None


def test_a_resting_order_and_an_expired_one():
    resting = new(200, {**FULL, "status": "NEW", "executedQty": "0", "fills": []})
    assert isinstance(resting, Accepted)
    assert resting.working
    assert not resting.terminal
    expired = new(200, {**FULL, "status": "EXPIRED", "fills": [], "expiryReason": "IOC"})
    assert isinstance(expired, Accepted)
    assert expired.terminal
    assert expired.expiry_reason == "IOC"
    odd = new(200, {**FULL, "status": "SOMETHING_NEW"})
    assert isinstance(odd, Accepted)
    assert odd.working


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b"{}",
        orjson.dumps({**FULL, "clientOrderId": "someone_else"}),
        orjson.dumps({**FULL, "orderId": "28"}),
        orjson.dumps({**FULL, "fills": [{"price": "1"}]}),
        orjson.dumps({**FULL, "side": "UP"}),
        orjson.dumps({**FULL, "executedQty": 10}),
        orjson.dumps([FULL]),
    ],
)
def test_a_success_we_cannot_read_is_unknown_never_refused(body: bytes):
    outcome = new(200, body)
    assert isinstance(outcome, Unknown)
    assert outcome.kind is UnknownKind.MALFORMED_SUCCESS
    assert outcome.http_status == 200


# --- refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "msg", "kind"),
    [
        (400, -1013, "Filter failure: LOT_SIZE", RefusalKind.FILTER),
        (400, -1013, "Filter failure: PRICE_FILTER", RefusalKind.FILTER),
        (400, -1013, "Filter failure: NOTIONAL", RefusalKind.MIN_NOTIONAL),
        (400, -1013, "Filter failure: MIN_NOTIONAL", RefusalKind.MIN_NOTIONAL),
        (
            400,
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'",
            RefusalKind.PARAMETER,
        ),
        (400, -1102, "Mandatory parameter 'quantity' was not sent", RefusalKind.PARAMETER),
        (
            400,
            -1111,
            "Precision is over the maximum defined for this asset.",
            RefusalKind.PARAMETER,
        ),
        (400, -1121, "Invalid symbol.", RefusalKind.PARAMETER),
        (400, -1131, "recvWindow must be less than 60000", RefusalKind.PARAMETER),
        (400, -1014, "Unsupported order combination.", RefusalKind.PARAMETER),
        (400, -1020, "This operation is not supported.", RefusalKind.PARAMETER),
        (
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
            RefusalKind.TIMESTAMP,
        ),
        (400, -1022, "Signature for this request is not valid.", RefusalKind.AUTH),
        (401, -2015, "Invalid API-key, IP, or permissions for action.", RefusalKind.AUTH),
        (401, -2014, "API-key format invalid.", RefusalKind.AUTH),
        (401, -1002, "You are not authorized to execute this request.", RefusalKind.AUTH),
        (400, -1003, "Too many requests queued.", RefusalKind.RATE_LIMIT),
        (400, -1015, "Too many new orders.", RefusalKind.RATE_LIMIT),
        (
            400,
            -2010,
            "Account has insufficient balance for requested action.",
            RefusalKind.INSUFFICIENT_BALANCE,
        ),
        (400, -2010, "Market is closed.", RefusalKind.MARKET_CLOSED),
        (400, -2010, "Order would immediately match and take.", RefusalKind.VENUE_REJECTED),
        (429, -1003, "Too much request weight used.", RefusalKind.RATE_LIMIT),
        (
            429,
            -1015,
            "Too many new orders; current limit is 10 orders per SECOND.",
            RefusalKind.RATE_LIMIT,
        ),
        (
            418,
            -1003,
            "Way too much request weight used; IP banned until 1.",
            RefusalKind.RATE_LIMIT,
        ),
    ],
)
def test_documented_refusals(status: int, code: int, msg: str, kind: RefusalKind):
    outcome = new(status, err(code, msg))
    assert outcome == Refused(kind, status, code, msg)
    assert str(outcome) == f"{kind.value} HTTP {status} {code} {msg}"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, RefusalKind.RATE_LIMIT), (418, RefusalKind.RATE_LIMIT), (403, RefusalKind.WAF)],
)
def test_gateway_refusals_whatever_the_body(status: int, kind: RefusalKind):
    assert new(status, b"") == Refused(kind, status, None, "")


def test_nothing_sent_is_refused_and_maybe_sent_is_unknown():
    assert classify_no_response(request_sent=False, detail="connect refused") == Refused(
        RefusalKind.NOT_SENT, None, None, "connect refused"
    )
    assert classify_no_response(request_sent=True, detail="read timeout") == Unknown(
        UnknownKind.NO_RESPONSE, None, None, "read timeout"
    )


def test_refusal_kinds_share_the_bots_names_where_they_mean_the_same():
    for kind in (
        RefusalKind.MIN_NOTIONAL,
        RefusalKind.INSUFFICIENT_BALANCE,
        RefusalKind.RATE_LIMIT,
        RefusalKind.VENUE_REJECTED,
    ):
        assert RejectReason(kind.value).value == kind.value


# --- unknown ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (500, b"", UnknownKind.SERVER_ERROR),
        (502, b"<html>bad gateway</html>", UnknownKind.SERVER_ERROR),
        (
            503,
            err(-1000, "Unknown error, please check your request or try again later."),
            UnknownKind.SERVER_ERROR,
        ),
        (
            503,
            err(-1008, "Server is currently overloaded with other requests."),
            UnknownKind.SERVER_ERROR,
        ),
        (504, b"", UnknownKind.SERVER_ERROR),
        # Even a "refusing" code on a 5xx: the venue says the outcome is unknown.
        (
            500,
            err(-2010, "Account has insufficient balance for requested action."),
            UnknownKind.SERVER_ERROR,
        ),
        (
            400,
            err(
                -1007,
                "Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.",
            ),
            UnknownKind.VENUE_TIMEOUT,
        ),
        (
            400,
            err(
                -1006,
                "An unexpected response was received from the message bus. Execution "
                "status unknown.",
            ),
            UnknownKind.UNEXPECTED_RESPONSE,
        ),
        (400, err(-2010, "Duplicate order sent."), UnknownKind.DUPLICATE_ID),
        (
            400,
            err(-1000, "An unknown error occurred while processing the request."),
            UnknownKind.UNRECOGNISED,
        ),
        (
            400,
            err(-1001, "Internal error; unable to process your request. Please try again."),
            UnknownKind.UNRECOGNISED,
        ),
        (
            400,
            err(-1008, "Server is currently overloaded with other requests."),
            UnknownKind.UNRECOGNISED,
        ),
        (400, err(-9999, "A code nobody documented."), UnknownKind.UNRECOGNISED),
        (400, b"<html>proxy says no</html>", UnknownKind.UNRECOGNISED),
        (404, b"", UnknownKind.UNRECOGNISED),
        (409, err(-2021, "Order cancel-replace partially failed."), UnknownKind.UNRECOGNISED),
        (302, b"", UnknownKind.UNRECOGNISED),
    ],
)
def test_unknown_outcomes(status: int, body: bytes, kind: UnknownKind):
    outcome = new(status, body)
    assert isinstance(outcome, Unknown)
    assert outcome.kind is kind
    assert outcome.http_status == status
    assert str(outcome).startswith(f"{kind.value} HTTP {status}")


@FUZZ
@given(status=st.integers(100, 599), code=st.integers(-3000, 0), msg=st.text(max_size=40))
def test_refused_only_for_documented_4xx_codes_or_gateway_statuses(
    status: int, code: int, msg: str
):
    outcome = new(status, err(code, msg))
    if isinstance(outcome, Refused):
        assert status in (403, 418, 429) or (
            400 <= status < 500
            and (
                code in (-1013, -1014, -1020, -1021, -1022, -1002, -1003, -1015, -2014, -2015)
                or -1199 <= code <= -1100
                or (code == -2010 and msg.strip() != "Duplicate order sent.")
            )
        )
    else:
        assert isinstance(outcome, Unknown)  # never Accepted from an error body


def test_venue_error_shape():
    assert venue_error(err(-1121, "Invalid symbol.")) is not None
    assert venue_error({"code": True, "msg": "x"}) is None
    assert venue_error({"code": -1, "msg": 2}) is None
    assert venue_error(b"[") is None
    assert venue_error([1]) is None


# --- cancel -------------------------------------------------------------------------------------

CANCELLED = {
    "symbol": "LTCBTC",
    "origClientOrderId": CID,
    "orderId": 4,
    "orderListId": -1,
    "clientOrderId": "cancelMyOrder1",
    "transactTime": 1684804350068,
    "price": "2.00000000",
    "origQty": "1.00000000",
    "executedQty": "0.25000000",
    "cummulativeQuoteQty": "0.50000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
}


def cancel(status: int, body: object) -> object:
    return classify_cancel(status, body, client_order_id=CID)


def test_cancel_outcomes():
    assert cancel(200, orjson.dumps(CANCELLED)) == Cancelled(
        symbol="LTCBTC",
        order_id=4,
        client_order_id=CID,
        status="CANCELED",
        executed_qty=D("0.25"),
        cumulative_quote_qty=D("0.5"),
    )
    assert cancel(400, err(-2011, "Unknown order sent.")) == CancelRefused(
        RefusalKind.NOT_OPEN, 400, -2011, "Unknown order sent."
    )
    restricted = cancel(400, err(-2011, "Order was not canceled due to cancel restrictions."))
    assert isinstance(restricted, CancelRefused)
    assert restricted.kind is RefusalKind.VENUE_REJECTED
    assert cancel(400, err(-1021, "Timestamp ahead.")) == CancelRefused(
        RefusalKind.TIMESTAMP, 400, -1021, "Timestamp ahead."
    )
    assert cancel(429, b"").kind is RefusalKind.RATE_LIMIT  # type: ignore[union-attr]
    for status, body in (
        (503, b""),
        (400, err(-1007, "Timeout")),
        (400, b"?"),
        (200, b"{}"),
        (200, orjson.dumps({**CANCELLED, "origClientOrderId": "x"})),
    ):
        assert isinstance(cancel(status, body), Unknown)


# --- query --------------------------------------------------------------------------------------

ORDER = {
    "symbol": "LTCBTC",
    "orderId": 1,
    "orderListId": -1,
    "clientOrderId": CID,
    "price": "0.1",
    "origQty": "1.0",
    "executedQty": "0.0",
    "cummulativeQuoteQty": "0.0",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "stopPrice": "0.0",
    "icebergQty": "0.0",
    "time": 1499827319559,
    "updateTime": 1499827319559,
    "isWorking": True,
    "workingTime": 1499827319559,
    "origQuoteOrderQty": "0.000000",
    "selfTradePreventionMode": "NONE",
}


def query(status: int, body: object) -> object:
    return classify_query(status, body, client_order_id=CID)


def test_query_outcomes():
    snapshot = query(200, orjson.dumps(ORDER))
    assert isinstance(snapshot, OrderSnapshot)
    assert snapshot.status == "NEW"
    assert not snapshot.terminal
    assert snapshot.side == "buy"
    assert snapshot.orig_qty == D(1)
    assert snapshot.time_ms == 1499827319559
    assert query(400, err(-2013, "Order does not exist.")) == OrderNotFound("Order does not exist.")
    assert isinstance(query(400, err(-2026, "Order was canceled or expired...")), OrderArchived)
    assert query(503, b"") == QueryFailed(503, None, "")
    assert query(400, err(-1021, "late")) == QueryFailed(400, -1021, "late")
    unreadable = query(200, orjson.dumps({**ORDER, "clientOrderId": "other"}))
    assert isinstance(unreadable, QueryFailed)
    assert "other" in unreadable.message
    missing = query(200, orjson.dumps({k: v for k, v in ORDER.items() if k != "status"}))
    assert isinstance(missing, QueryFailed)
    assert "missing field" in missing.message
    # A 5xx carrying -2013 is not an answer about the order.
    assert isinstance(query(500, err(-2013, "Order does not exist.")), QueryFailed)
