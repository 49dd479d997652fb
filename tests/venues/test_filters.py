"""Symbol rules from exchangeInfo; rounding never in our favour; formatting never over-precise."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.bots.risk import RejectReason
from actors.errors import DecodeError
from actors.venues.binance.filters import (
    FilterReason,
    FilterRejection,
    PreparedOrder,
    SymbolRules,
    decimals_of,
    format_step,
    parse_exchange_info,
    parse_symbol_rules,
    round_down,
    round_up,
)
from tests.exchanges.helpers import FUZZ

D = Decimal

BTCUSDT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "baseAssetPrecision": 8,
    "quoteAsset": "USDT",
    "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000.00000000",
            "stepSize": "0.00001000",
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00000000",
            "maxQty": "120.50000000",
            "stepSize": "0.00000000",
        },
        {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10},
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": "5",
            "bidMultiplierDown": "0.2",
            "askMultiplierUp": "5",
            "askMultiplierDown": "0.2",
            "avgPriceMins": 5,
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ],
}


def rules(**changes: Any) -> SymbolRules:
    entry = copy.deepcopy(BTCUSDT)
    entry.update(changes)
    return parse_symbol_rules(entry)


def test_parses_the_filters_that_matter():
    r = rules()
    assert r.symbol == "BTCUSDT"
    assert r.unified == "BTC/USDT"
    assert r.trading
    assert (r.tick_size, r.min_price, r.max_price) == (D("0.01"), D("0.01"), D("1000000"))
    assert (r.lot.step, r.lot.min_qty, r.lot.max_qty) == (D("0.00001"), D("0.00001"), D("9000"))
    assert r.market_lot is not None
    assert r.market_lot.max_qty == D("120.5")
    [notional] = r.notional
    assert notional.min_notional == D(5)
    assert notional.max_notional == D(9000000)
    assert notional.min_applies_to_market
    assert not notional.max_applies_to_market
    assert "MARKET" in r.order_types


def test_parse_exchange_info_by_symbol():
    body = orjson.dumps({"timezone": "UTC", "rateLimits": [], "symbols": [BTCUSDT]})
    assert set(parse_exchange_info(body)) == {"BTCUSDT"}
    assert parse_exchange_info({"symbols": []}) == {}


def test_old_min_notional_filter():
    entry = copy.deepcopy(BTCUSDT)
    entry["filters"] = [f for f in entry["filters"] if f["filterType"] != "NOTIONAL"]
    entry["filters"].append(
        {
            "filterType": "MIN_NOTIONAL",
            "minNotional": "10",
            "applyToMarket": False,
            "avgPriceMins": 5,
        }
    )
    r = parse_symbol_rules(entry)
    [notional] = r.notional
    assert notional.filter_type == "MIN_NOTIONAL"
    assert not notional.min_applies_to_market
    # Not applied to market orders: no reference price needed, no notional check.
    assert isinstance(r.prepare("buy", "market", D("0.0001")), PreparedOrder)
    assert r.prepare("buy", "limit", D("0.0001"), D("50000")) == FilterRejection(
        FilterReason.MIN_NOTIONAL, "notional 5 is below MIN_NOTIONAL minNotional 10"
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.update(filters=[f for f in e["filters"] if f["filterType"] != "LOT_SIZE"]),
        lambda e: e.update(filters=[f for f in e["filters"] if f["filterType"] != "PRICE_FILTER"]),
        lambda e: e["filters"][0].update(tickSize=0.01),
        lambda e: e["filters"][0].update(tickSize="-1"),
        lambda e: e["filters"][6].update(applyMinToMarket="true"),
        lambda e: e.pop("baseAsset"),
        lambda e: e.update(filters="nope"),
        lambda e: e.update(orderTypes=[1]),
    ],
)
def test_malformed_entries_are_decode_errors(mutate: Any):
    entry = copy.deepcopy(BTCUSDT)
    mutate(entry)
    with pytest.raises(DecodeError):
        parse_symbol_rules(entry)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"symbols": 3}', b"{}"])
def test_malformed_exchange_info_is_a_decode_error(body: bytes):
    with pytest.raises(DecodeError):
        parse_exchange_info(body)


# --- rounding and formatting --------------------------------------------------------------------


def test_rounding_examples():
    r = rules()
    assert r.round_quantity(D("0.123456789")) == D("0.12345")
    assert r.round_price(D("100.019"), "buy") == D("100.01")
    assert r.round_price(D("100.011"), "sell") == D("100.02")
    assert r.round_price(D("100.01"), "sell") == D("100.01")
    assert r.format_quantity(D("0.12340")) == "0.1234"
    assert r.format_price(D("100.10")) == "100.1"
    assert r.format_price(D("100")) == "100"
    assert format_step(D("1E+3"), D("10")) == "1000"
    assert format_step(D("0E-8"), D("0.00000001")) == "0"
    assert format_step(D("1.2300"), D(0)) == "1.23"
    assert decimals_of(D("0.00100000")) == 3
    assert decimals_of(D("10")) == 0
    with pytest.raises(ValueError, match="not a multiple"):
        format_step(D("0.123"), D("0.01"))
    with pytest.raises(ValueError, match="no decimals"):
        decimals_of(D(0))
    with pytest.raises(ValueError, match="cannot format"):
        format_step(D("Infinity"), D("1"))
    with pytest.raises(ValueError, match="step"):
        round_down(D(1), D(-1))


def test_a_zero_step_is_no_step_rule():
    assert round_down(D("1.23456"), D(0)) == D("1.23456")
    assert round_up(D("1.23456"), D(0)) == D("1.23456")
    assert format_step(D("-0.00"), D("0.01")) == "0"


def test_negative_values_still_floor():
    assert round_down(D("-1.5"), D(1)) == D(-2)
    assert round_up(D("-1.5"), D(1)) == D(-1)


STEPS = st.sampled_from(
    [
        D("1"),
        D("10"),
        D("0.1"),
        D("0.01"),
        D("0.00001000"),
        D("0.00000001"),
        D("0.5"),
        D("0.25"),
        D("5"),
    ]
)
AMOUNTS = st.decimals(min_value=D("0.00000001"), max_value=D("100000000"), places=10)


@FUZZ
@given(value=AMOUNTS, step=STEPS)
def test_rounding_is_never_in_our_favour_and_lands_on_the_step(value: Decimal, step: Decimal):
    down, up = round_down(value, step), round_up(value, step)
    assert down <= value <= up
    assert value - down < step
    assert up - value < step
    assert round_down(down, step) == down
    assert round_down(up, step) == up
    assert (down == up) == (value == down)


@FUZZ
@given(value=AMOUNTS, step=STEPS)
def test_formatting_never_has_more_decimals_than_the_step(value: Decimal, step: Decimal):
    text = format_step(round_down(value, step), step)
    assert "e" not in text.lower()
    decimals = len(text.partition(".")[2])
    assert decimals <= decimals_of(step)
    assert not text.endswith("0") or "." not in text
    assert D(text) == round_down(value, step)


@FUZZ
@given(quantity=AMOUNTS, price=st.decimals(min_value=D("0.01"), max_value=D("999999"), places=6))
def test_prepared_limit_orders_pass_every_rule_and_never_favour_us(
    quantity: Decimal, price: Decimal
):
    r = rules()
    for side in ("buy", "sell"):
        prepared = r.prepare(side, "limit", quantity, price)
        if isinstance(prepared, FilterRejection):
            continue
        assert prepared.quantity <= quantity
        assert prepared.price is not None
        assert prepared.price <= price if side == "buy" else prepared.price >= price
        assert r.lot.min_qty <= prepared.quantity <= r.lot.max_qty
        assert prepared.quantity % r.lot.step == 0
        assert prepared.price % r.tick_size == 0
        assert prepared.notional == prepared.quantity * prepared.price >= 5
        assert D(prepared.quantity_text) == prepared.quantity
        assert prepared.price_text is not None
        assert D(prepared.price_text) == prepared.price
        assert len(prepared.quantity_text.partition(".")[2]) <= 5
        assert len(prepared.price_text.partition(".")[2]) <= 2


# --- checks -------------------------------------------------------------------------------------


def test_a_good_limit_order_and_its_parameters():
    prepared = rules().prepare("buy", "limit", D("0.0123456"), D("65000.129"))
    assert prepared == PreparedOrder(
        symbol="BTCUSDT",
        side="buy",
        order_type="limit",
        quantity=D("0.01234"),
        price=D("65000.12"),
        quantity_text="0.01234",
        price_text="65000.12",
        notional=D("0.01234") * D("65000.12"),
    )
    assert isinstance(prepared, PreparedOrder)
    assert prepared.request_params("bcf_bot_1") == [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01234"),
        ("price", "65000.12"),
        ("newClientOrderId", "bcf_bot_1"),
        ("newOrderRespType", "FULL"),
    ]


def test_a_market_order_uses_both_lot_rules_and_the_reference_price():
    r = rules()
    prepared = r.prepare("sell", "market", D("1.000019"), reference_price=D("60000"))
    assert isinstance(prepared, PreparedOrder)
    assert prepared.quantity == D("1.00001")
    assert prepared.price is None
    assert prepared.request_params("id", response_type="RESULT") == [
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("type", "MARKET"),
        ("quantity", "1.00001"),
        ("newClientOrderId", "id"),
        ("newOrderRespType", "RESULT"),
    ]
    # MARKET_LOT_SIZE maxQty 120.5 applies to market orders only.
    too_big = r.prepare("sell", "market", D("200"), reference_price=D("60000"))
    assert isinstance(too_big, FilterRejection)
    assert too_big.reason is FilterReason.MAX_ORDER_SIZE
    assert "MARKET_LOT_SIZE maxQty 120.5" in too_big.detail
    assert isinstance(r.prepare("sell", "limit", D("200"), D("600")), PreparedOrder)
    # minNotional applies to market orders here, so a reference price is needed.
    assert r.prepare("buy", "market", D("1")).reason is FilterReason.NO_PRICE  # type: ignore[union-attr]


def test_a_market_step_coarser_than_the_lot_step_wins():
    entry = copy.deepcopy(BTCUSDT)
    entry["filters"][3]["stepSize"] = "0.00100000"
    r = parse_symbol_rules(entry)
    assert r.quantity_step(market=True) == D("0.001")
    assert r.round_quantity(D("1.23456"), market=True) == D("1.234")
    assert r.round_quantity(D("1.23456")) == D("1.23456")
    entry["filters"][3]["stepSize"] = "0.00004000"
    entry["filters"][1]["stepSize"] = "0.00006000"
    assert parse_symbol_rules(entry).quantity_step(market=True) == D("0.00012")


@pytest.mark.parametrize(
    ("order", "reason", "detail"),
    [
        (("buy", "limit", D("0.000001"), D("100")), FilterReason.SIZE_BELOW_LOT, "rounds to 0"),
        (("buy", "limit", D("9001"), D("100")), FilterReason.MAX_ORDER_SIZE, "LOT_SIZE maxQty"),
        (("buy", "limit", D("1"), D("0.001")), FilterReason.PRICE_OUT_OF_RANGE, "rounds to 0"),
        (("sell", "limit", D("1"), D("0.001")), FilterReason.MIN_NOTIONAL, "below NOTIONAL"),
        (("buy", "limit", D("1"), D("2000000")), FilterReason.PRICE_OUT_OF_RANGE, "maxPrice"),
        (("buy", "limit", D("0.0001"), D("100")), FilterReason.MIN_NOTIONAL, "minNotional 5"),
        (("buy", "limit", D("9000"), D("1001")), FilterReason.MAX_ORDER_SIZE, "maxNotional"),
    ],
)
def test_each_rule_says_why(order: Any, reason: FilterReason, detail: str):
    result = rules().prepare(*order)
    assert isinstance(result, FilterRejection)
    assert result.reason is reason
    assert detail in result.detail
    assert str(result).startswith(f"{reason.value}: ")


def test_min_qty_and_min_price():
    entry = copy.deepcopy(BTCUSDT)
    entry["filters"][1]["minQty"] = "0.00100000"
    entry["filters"][0]["minPrice"] = "1.00000000"
    r = parse_symbol_rules(entry)
    below = r.prepare("buy", "limit", D("0.0009"), D("100000"))
    assert isinstance(below, FilterRejection)
    assert below.reason is FilterReason.SIZE_BELOW_LOT
    assert "minQty 0.001" in below.detail
    cheap = r.prepare("buy", "limit", D("10"), D("0.5"))
    assert isinstance(cheap, FilterRejection)
    assert "minPrice" in cheap.detail


def test_symbol_status_and_order_types():
    halted = rules(status="HALT").prepare("buy", "limit", D("1"), D("100"))
    assert halted == FilterRejection(FilterReason.SYMBOL_NOT_TRADING, "BTCUSDT status is HALT")
    no_market = rules(orderTypes=["LIMIT"]).prepare("buy", "market", D("1"), reference_price=D("9"))
    assert isinstance(no_market, FilterRejection)
    assert no_market.reason is FilterReason.ORDER_TYPE_NOT_ALLOWED
    # Without an orderTypes list, nothing is assumed either way.
    entry = copy.deepcopy(BTCUSDT)
    del entry["orderTypes"]
    assert parse_symbol_rules(entry).order_types == frozenset()


def test_price_arguments_are_checked():
    r = rules()
    with pytest.raises(ValueError, match="needs a price"):
        r.prepare("buy", "limit", D("1"))
    with pytest.raises(ValueError, match="reference_price"):
        r.prepare("buy", "market", D("1"), D("100"))


def test_reasons_share_the_bots_names_where_they_mean_the_same():
    for reason in (
        FilterReason.SIZE_BELOW_LOT,
        FilterReason.MIN_NOTIONAL,
        FilterReason.MAX_ORDER_SIZE,
        FilterReason.NO_PRICE,
    ):
        assert RejectReason(reason.value).value == reason.value
