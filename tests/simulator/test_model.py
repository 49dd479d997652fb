"""The seeded market model and wire time formats (pure, no Trio)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from actors.simulator.model import HISTORY_LENGTH, Market, fixed, number
from actors.simulator.timefmt import go_time, rfc3339_ns, rfc3339_us, seconds_micros

START_TS = 1_750_000_000.0


def path(seed: int, symbol: str = "BTC/USDT", steps: int = 50) -> list[tuple]:
    market = Market(symbol, seed, START_TS)
    return [
        (s.bid, s.ask, s.bid_size, s.ask_size, s.price, s.size, s.side, s.trade_id)
        for s in (market.step(START_TS + i) for i in range(steps))
    ]


def test_same_seed_same_path_and_different_seed_differs() -> None:
    assert path(7) == path(7)
    assert path(7) != path(8)
    assert path(7, "BTC/USDT") != path(7, "ETH/USDT")


def test_book_and_trades_are_consistent() -> None:
    market = Market("BTC/USDT", 3, START_TS)
    previous = market.last
    for i in range(2_000):
        step = market.step(START_TS + i)
        assert 0 < step.bid < step.ask
        assert step.bid_size > 0
        assert step.ask_size > 0
        assert step.size > 0
        # a taker buy lifts the previous ask, a taker sell hits the previous bid
        assert step.price == (previous.ask if step.side == "buy" else previous.bid)
        assert step.trade_id == previous.trade_id + 1
        assert step.update_id > previous.update_id
        assert step.sequence > previous.sequence
        assert step.low <= step.price <= step.high
        previous = step
    assert {s.side for s in market.history} == {"buy", "sell"}


def test_spread_is_realistic_in_basis_points() -> None:
    market = Market("BTC/USDT", 1, START_TS)
    spreads = []
    for i in range(500):
        step = market.step(START_TS + i)
        spreads.append((step.ask - step.bid) / ((step.ask + step.bid) / 2) * 10_000)
    assert 0.3 < min(spreads)
    assert max(spreads) < 5.0


def test_warm_up_history_and_prices_near_reference() -> None:
    market = Market("ETH/USD", 0, START_TS)
    assert len(market.history) == HISTORY_LENGTH
    assert market.history[-1].ts < START_TS
    mid = (market.last.bid + market.last.ask) / 2 / market.tick_scale
    assert 2_500 < mid < 4_000


@pytest.mark.parametrize(
    ("value", "decimals", "text", "num"),
    [
        (1234, 2, "12.34", "12.34"),
        (5, 3, "0.005", "0.005"),
        (1200, 2, "12.00", "12"),
        (-5, 2, "-0.05", "-0.05"),
        (7, 0, "7", "7"),
    ],
)
def test_fixed_and_number_are_exact(value: int, decimals: int, text: str, num: str) -> None:
    assert fixed(value, decimals) == text
    assert number(value, decimals) == num
    assert Decimal(text) == Decimal(value).scaleb(-decimals)


def test_price_padding_keeps_the_value() -> None:
    market = Market("BTC/USDT", 0, START_TS)
    step = market.last
    assert Decimal(market.price(step.bid, 8)) == Decimal(market.price(step.bid))
    assert len(market.price(step.bid, 8).split(".")[1]) == 8


def test_time_formats() -> None:
    ts = 1_704_667_734.347040
    assert rfc3339_us(ts) == "2024-01-07T22:48:54.347040Z"
    assert rfc3339_ns(ts).startswith("2024-01-07T22:48:54.3470")  # float ts: ~100 ns
    assert len(rfc3339_ns(ts).split(".")[1]) == 10  # 9 digits + Z
    parsed = datetime.fromisoformat(rfc3339_us(ts))
    assert parsed == datetime.fromtimestamp(ts, UTC).replace(microsecond=347040)
    assert go_time(ts, 41691.26).endswith(" +0000 UTC m=+41691.260000000")
    assert go_time(ts, 1.0).startswith("2024-01-07 22:48:54.")
    assert seconds_micros(ts) == "1704667734.347040"
