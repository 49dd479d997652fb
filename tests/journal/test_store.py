"""The journal's rules, on both backends (SQLite file, real PostgreSQL): the same operations,
the same answers."""

from __future__ import annotations

import attrs
import pytest

from actors.bots.positions import Book
from actors.errors import JournalError
from actors.journal.store import FillRecord, OrderIntent, RefusalRecord
from tests.bots.helpers import T0, D


def intent(
    seq: int, side: str = "buy", size: str = "1", order_type: str = "market", price=None, bot="b1"
) -> OrderIntent:
    return OrderIntent(
        client_id=f"{bot}-{seq}",
        bot_id=bot,
        seq=seq,
        symbol="BTC/USDT",
        side=side,  # type: ignore[arg-type]
        order_type=order_type,  # type: ignore[arg-type]
        size=D(size),
        price=None if price is None else D(price),
        tag="test",
        position_id=None,
        created_ts=T0,
    )


def fill_of(order: OrderIntent, price: str, fee: str = "0", ts: float = T0) -> FillRecord:
    return FillRecord(
        order.client_id, order.bot_id, order.side, D(price), order.size, D(fee), None, ts
    )


def test_client_order_ids_are_unique(store):
    store.register_bot("b1", D(1000), T0)
    store.record_intent(intent(1))
    with pytest.raises(JournalError, match="duplicate client order id"):
        store.record_intent(intent(1))
    store.run_batch([("barrier", ())])
    with pytest.raises(store.integrity_errors):  # the constraint itself, below our checks
        store._execute(
            "INSERT INTO orders (client_id, bot_id, seq, symbol, side, order_type, size, status,"
            " created_ts, updated_ts) VALUES ('b1-1', 'b1', 99, 'X/Y', 'buy', 'market', '1',"
            " 'intent', 0, 0)"
        )
    assert [o.intent.client_id for o in store.orders("b1")] == ["b1-1"]


def test_a_failing_operation_in_a_batch_does_not_lose_the_others(store):
    store.register_bot("b1", D(1000), T0)
    results = store.run_batch(
        [
            ("record_intent", (intent(1),)),
            ("record_intent", (intent(1),)),
            ("record_intent", (intent(2),)),
            ("record_fill", (fill_of(intent(9), "1"), "filled")),
            ("record_fill", (fill_of(intent(2), "100"), "filled")),
        ]
    )
    assert [type(r).__name__ for r in results] == ["Value", "Error", "Value", "Error", "Value"]
    assert [(o.intent.seq, o.status) for o in store.orders("b1")] == [(1, "intent"), (2, "filled")]
    assert [f.client_id for f in store.fills("b1")] == ["b1-2"]


def test_fills_only_for_live_orders_and_never_beyond_size(store):
    store.register_bot("b1", D(1000), T0)
    order = intent(1, size="2")
    store.record_intent(order)
    with pytest.raises(JournalError, match="exceed"):
        store.record_fill(FillRecord("b1-1", "b1", "buy", D(100), D(3), D(0), None, T0))
    store.record_fill(fill_of(order, "100"))
    with pytest.raises(JournalError, match="already filled"):
        store.record_fill(fill_of(order, "100"))
    with pytest.raises(JournalError, match="unknown order"):
        store.record_fill(FillRecord("b1-9", "b1", "buy", D(1), D(1), D(0), None, T0))
    store.record_intent(intent(2))
    store.record_status("b1-2", "cancelled", "test", T0)
    with pytest.raises(JournalError, match="already cancelled"):
        store.record_fill(fill_of(intent(2), "100"))
    with pytest.raises(JournalError, match="cannot become open"):
        store.record_status("b1-2", "open", "late", T0)


def test_a_venue_fill_id_is_booked_once(store):
    store.register_bot("b1", D(1000), T0)
    store.record_intent(intent(1, size="2"))
    part = attrs.evolve(fill_of(intent(1, size="1"), "100"), venue_fill_id="BTCUSDT:7")
    store.record_fill(part, "open")
    with pytest.raises(JournalError, match="record_fill failed"):
        store.record_fill(part, "open")
    assert len(store.fills("b1")) == 1
    assert store.orders("b1")[0].filled_size == D(1)


def test_load_bot_derives_state_and_replay_matches(store):
    assert store.register_bot("b1", D(1000), T0) == D(1000)
    assert store.register_bot("b1", D(5), T0) == D(1000)  # the first start fixes the balance
    live = Book(quote=D(1000))
    orders = [intent(1, "buy", "2"), intent(2, "sell", "1"), intent(3, "buy", "1")]
    prices = ["100.25", "101.5", "99.75"]
    for order, price in zip(orders, prices, strict=True):
        store.record_intent(order)
        f = fill_of(order, price, fee="0.1")
        store.record_fill(f)
        live.apply_fill(f)
    store.record_intent(intent(4, "buy", "1", "limit", "90"))
    store.record_status("b1-4", "open", "resting", T0)
    store.record_intent(intent(5, "sell", "1"))  # journaled, never filled
    store.save_state("b1", "hwm:b1-1", "120", T0)
    store.save_state("b1", "paused", "1", T0)
    store.save_state("b1", "paused", None, T0)

    record = store.load_bot("b1", D(1000), T0)
    assert [o.intent.client_id for o in record.open_orders] == ["b1-4"]
    assert [o.intent.client_id for o in record.unresolved] == ["b1-5"]
    assert record.next_seq == 6
    assert record.orders_count == 5
    assert dict(record.state) == {"hwm:b1-1": "120"}
    replayed = Book.replay(record.initial_quote, record.fills)
    assert replayed == live
    assert (replayed.quote, replayed.base) == (
        D("1000") - D("200.5") - D("0.1") + D("101.5") - D("0.1") - D("99.75") - D("0.1"),
        D(2),
    )


def test_decimals_and_timestamps_read_back_exactly(store):
    """The text of a Decimal (its exponent, trailing zeros) and every bit of a float."""
    values = ["1E+2", "0.10", "-0", "12345678901234567.00000001"]
    store.register_bot("b1", D("1000.500"), 0.1 + 0.2)
    for seq, text in enumerate(values, start=1):
        order = attrs.evolve(intent(seq, size=text.lstrip("-")), created_ts=1e-300 * seq)
        store.record_intent(order)
        store.record_fill(
            attrs.evolve(fill_of(order, text, fee=text), ts=T0 + 1 / 3, realized_pnl=D(text))
        )
    record = store.load_bot("b1", D(1), T0)
    assert str(record.initial_quote) == "1000.500"
    assert [str(f.price) for f in record.fills] == values
    assert [str(f.realized_pnl) for f in record.fills] == values
    assert {f.ts for f in record.fills} == {T0 + 1 / 3}
    assert [o.intent.created_ts for o in store.orders("b1")] == [1e-300 * s for s in (1, 2, 3, 4)]


def test_a_fill_keeps_the_pnl_it_realized(store):
    store.register_bot("b1", D(1000), T0)
    buy, sell = intent(1, size="2"), intent(2, "sell", size="2")
    store.record_intent(buy)
    store.record_fill(attrs.evolve(fill_of(buy, "100"), realized_pnl=D(0)))
    store.record_intent(sell)
    store.record_fill(attrs.evolve(fill_of(sell, "104.75"), realized_pnl=D("9.50")))
    assert [(f.side, f.realized_pnl) for f in store.fills("b1")] == [
        ("buy", D(0)),
        ("sell", D("9.50")),
    ]
    assert [str(f.realized_pnl) for f in store.load_bot("b1", D(1000), T0).fills] == ["0", "9.50"]


def test_refusals_are_rows_of_counts(store):
    rows = [
        RefusalRecord("b1", "rate_limit", "signal:golden_cross", T0, T0 + 59, 120),
        RefusalRecord("b1", "stale_price", "", T0 + 3, T0 + 3, 1),
        RefusalRecord("b2", "rate_limit", "", T0, T0, 2),
    ]
    store.record_refusals(rows)
    assert store.refusals("b1") == rows[:2]
    assert store.refusals("b2") == rows[2:]
    with pytest.raises(JournalError, match=r"(?i)check"):  # a row counts at least one refusal
        store.record_refusals([RefusalRecord("b1", "rate_limit", "", T0, T0, 0)])
    assert len(store.refusals("b1")) == 2
