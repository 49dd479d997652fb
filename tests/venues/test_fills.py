"""Fill identity, deduplication and fees."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.venues.fills import FillDeduplicator, VenueFill, fee_in_quote

D = Decimal


def fill(trade_id: str = "1", symbol: str = "BTCUSDT", **changes: object) -> VenueFill:
    base = VenueFill(
        symbol=symbol,
        trade_id=trade_id,
        order_id="9",
        client_order_id="bcf_bot_1",
        side="buy",
        price=D("100"),
        quantity=D("0.5"),
        commission=D("0.001"),
        commission_asset="BTC",
        time_ms=1,
        maker=True,
        source="trades",
    )
    return attrs.evolve(base, **changes)


def test_the_key_is_symbol_and_trade_id():
    dedupe = FillDeduplicator()
    assert dedupe.accept(fill("1"))
    assert not dedupe.accept(fill("1", source="stream"))
    assert dedupe.accept(fill("1", symbol="ETHUSDT"))  # trade ids are per symbol
    assert dedupe.accept(fill("2"))
    assert dedupe.seen(("BTCUSDT", "2"))
    assert len(dedupe) == 3


def test_seeding_and_the_memory_bound():
    dedupe = FillDeduplicator(max_keys=2)
    dedupe.seed([("BTCUSDT", "1"), ("BTCUSDT", "2")])
    assert not dedupe.accept(fill("1"))
    assert dedupe.accept(fill("3"))  # forgets the oldest
    assert not dedupe.seen(("BTCUSDT", "1"))
    assert len(dedupe) == 2
    with pytest.raises(ValueError, match="max_keys"):
        FillDeduplicator(max_keys=0)


@given(st.lists(st.integers(0, 30), max_size=80))
def test_each_trade_is_accepted_exactly_once(trade_ids: list[int]):
    dedupe = FillDeduplicator()
    accepted = [t for t in trade_ids if dedupe.accept(fill(str(t)))]
    assert sorted(accepted) == sorted(set(trade_ids))


def test_fee_in_quote():
    assert fee_in_quote(fill(commission_asset="USDT", commission=D("0.05")), "BTC", "USDT") == D(
        "0.05"
    )
    assert fee_in_quote(fill(), "BTC", "USDT") == D("0.1")  # 0.001 BTC at 100
    assert fee_in_quote(fill(commission_asset="BNB"), "BTC", "USDT") is None
    assert fee_in_quote(fill(commission_asset=None, commission=D(0)), "BTC", "USDT") == 0
