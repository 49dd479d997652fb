"""The WebSocket API user data stream: subscription request and executionReport events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from actors.errors import DecodeError
from actors.venues.binance.signing import HmacSigner
from actors.venues.binance.user_stream import (
    SUBSCRIBE_METHOD,
    ExecutionEvent,
    StreamNotice,
    parse_user_stream_frame,
    subscribe_request,
)
from actors.venues.fills import FillDeduplicator, VenueFill

D = Decimal
CID = "bcf_grid_7"

# The venue's documented executionReport, for our order, as a trade.
REPORT: dict[str, Any] = {
    "e": "executionReport",
    "E": 1499405658658,
    "s": "ETHBTC",
    "c": CID,
    "S": "BUY",
    "o": "LIMIT",
    "f": "GTC",
    "q": "1.00000000",
    "p": "0.10264410",
    "P": "0.00000000",
    "F": "0.00000000",
    "g": -1,
    "C": "",
    "x": "TRADE",
    "X": "PARTIALLY_FILLED",
    "r": "NONE",
    "i": 4293153,
    "l": "0.40000000",
    "z": "0.40000000",
    "L": "0.10264410",
    "n": "0.00040000",
    "N": "ETH",
    "T": 1499405658657,
    "t": 77,
    "I": 8641984,
    "w": True,
    "m": False,
    "M": False,
    "O": 1499405658657,
    "Z": "0.04105764",
    "Y": "0.04105764",
    "Q": "0.00000000",
    "W": 1499405658657,
    "V": "NONE",
}


def wrapped(event: dict[str, Any]) -> bytes:
    return orjson.dumps({"subscriptionId": 0, "event": event})


def test_subscribe_request_is_signed_over_sorted_parameters():
    signer = HmacSigner("key-abc", "secret")
    request = subscribe_request(signer, request_id="r1", timestamp_ms=1700000000000)
    assert request["id"] == "r1"
    assert request["method"] == SUBSCRIBE_METHOD == "userDataStream.subscribe.signature"
    params = request["params"]
    assert params["apiKey"] == "key-abc"
    assert params["recvWindow"] == 5000
    assert params["timestamp"] == 1700000000000
    assert params["signature"] == signer.sign(
        "apiKey=key-abc&recvWindow=5000&timestamp=1700000000000"
    )


def test_a_trade_report_is_a_fill():
    event = parse_user_stream_frame(wrapped(REPORT))
    assert isinstance(event, ExecutionEvent)
    assert event.client_order_id == CID
    assert event.order_id == 4293153
    assert event.execution_type == "TRADE"
    assert event.status == "PARTIALLY_FILLED"
    assert not event.terminal
    assert (event.cumulative_qty, event.cumulative_quote_qty) == (D("0.4"), D("0.04105764"))
    assert event.fill() == VenueFill(
        symbol="ETHBTC",
        trade_id="77",
        order_id="4293153",
        client_order_id=CID,
        side="buy",
        price=D("0.10264410"),
        quantity=D("0.4"),
        commission=D("0.0004"),
        commission_asset="ETH",
        time_ms=1499405658657,
        maker=False,
        source="stream",
    )


def test_a_new_report_is_not_a_fill():
    event = parse_user_stream_frame(
        wrapped(
            {
                **REPORT,
                "x": "NEW",
                "X": "NEW",
                "t": -1,
                "l": "0",
                "z": "0",
                "L": "0",
                "n": "0",
                "N": None,
                "Z": "0",
            }
        )
    )
    assert isinstance(event, ExecutionEvent)
    assert event.trade_id is None
    assert event.commission_asset is None
    assert event.fill() is None


def test_a_cancel_report_names_the_cancelled_order_not_the_cancel_request():
    event = parse_user_stream_frame(
        wrapped(
            {
                **REPORT,
                "x": "CANCELED",
                "X": "CANCELED",
                "c": "web_cancel_id",
                "C": CID,
                "t": -1,
                "l": "0",
            }
        )
    )
    assert isinstance(event, ExecutionEvent)
    assert event.client_order_id == CID
    assert event.terminal
    assert event.fill() is None


def test_expiry_reason_and_bare_events():
    event = parse_user_stream_frame(
        orjson.dumps({**REPORT, "x": "EXPIRED", "X": "EXPIRED", "eR": "PRICE_RANGE"})
    )
    assert isinstance(event, ExecutionEvent)
    assert event.expiry_reason == "PRICE_RANGE"
    assert event.terminal


def test_notices_and_ignored_frames():
    assert parse_user_stream_frame(
        wrapped({"e": "eventStreamTerminated", "E": 1728973001334})
    ) == StreamNotice("eventStreamTerminated", 1728973001334)
    assert parse_user_stream_frame(
        {"event": {"e": "serverShutdown", "E": 1770123456789}}
    ) == StreamNotice("serverShutdown", 1770123456789)
    assert parse_user_stream_frame(
        orjson.dumps({"event": {"e": "serverShutdown"}})
    ) == StreamNotice("serverShutdown", None)
    assert (
        parse_user_stream_frame(wrapped({"e": "outboundAccountPosition", "E": 1, "B": []})) is None
    )
    assert parse_user_stream_frame(wrapped({"e": "balanceUpdate", "E": 1})) is None
    assert (
        parse_user_stream_frame({"id": "r1", "status": 200, "result": {"subscriptionId": 0}})
        is None
    )


@pytest.mark.parametrize(
    "frame",
    [
        b"not json",
        b"[]",
        wrapped({**REPORT, "S": "HOLD"}),
        wrapped({**REPORT, "t": "77"}),
        wrapped({**REPORT, "l": 0.4}),
        wrapped({**REPORT, "m": "false"}),
        wrapped({k: v for k, v in REPORT.items() if k != "z"}),
        orjson.dumps({"subscriptionId": 0, "event": "x"}),
    ],
)
def test_malformed_reports_are_decode_errors_never_dropped(frame: bytes):
    with pytest.raises(DecodeError):
        parse_user_stream_frame(frame)


def test_a_fill_is_booked_once_whichever_way_it_arrives_first():
    from actors.venues.binance.responses import Accepted, classify_new_order

    full = {
        "symbol": "ETHBTC",
        "orderId": 4293153,
        "clientOrderId": CID,
        "transactTime": 1499405658657,
        "status": "PARTIALLY_FILLED",
        "side": "BUY",
        "origQty": "1",
        "executedQty": "0.4",
        "cummulativeQuoteQty": "0.04105764",
        "fills": [
            {
                "price": "0.10264410",
                "qty": "0.40000000",
                "commission": "0.00040000",
                "commissionAsset": "ETH",
                "tradeId": 77,
            }
        ],
    }
    accepted = classify_new_order(200, orjson.dumps(full), client_order_id=CID)
    assert isinstance(accepted, Accepted)
    event = parse_user_stream_frame(wrapped(REPORT))
    assert isinstance(event, ExecutionEvent)
    stream_fill = event.fill()
    assert stream_fill is not None
    for first, second in ((accepted.fills[0], stream_fill), (stream_fill, accepted.fills[0])):
        dedupe = FillDeduplicator()
        assert dedupe.accept(first)
        assert not dedupe.accept(second)
    # Both sources describe the same trade (the response does not say maker or taker; the
    # source is not part of a fill's identity).
    assert accepted.fills[0] == attrs.evolve(stream_fill, maker=None)
