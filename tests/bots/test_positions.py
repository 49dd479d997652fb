"""The book (a fold over fills) and the position monitor rules (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.bots.positions import Book, BookError, ExitRules, check_exits, update_high_water
from actors.journal.store import FillRecord
from tests.bots.helpers import T0, D


def fill(client_id, side, price, size, fee="0", position_id=None, ts=T0) -> FillRecord:
    return FillRecord(client_id, "b1", side, D(price), D(size), D(fee), position_id, ts)


def test_buy_and_sell_move_balances_and_realize_pnl():
    book = Book(quote=D(1000))
    book.apply_fill(fill("b1-1", "buy", 100, 2, fee="0.2"))
    assert (book.quote, book.base) == (D("799.8"), D(2))
    lot = book.lots["b1-1"]
    assert (lot.entry_price, lot.cost_quote, lot.hwm) == (D(100), D("200.2"), D(100))
    realized = book.apply_fill(fill("b1-2", "sell", 110, 2, fee="0.22"))
    assert realized == D("220") - D("0.22") - D("200.2")
    assert book.quote == D("1019.58")
    assert book.base == 0
    assert not book.lots
    assert book.realized_pnl == realized
    assert book.realized_on("2026-01-01") == realized


def test_strategy_sell_reduces_lots_oldest_first_and_exit_names_its_lot():
    book = Book(quote=D(1000))
    book.apply_fill(fill("b1-1", "buy", 100, 1))
    book.apply_fill(fill("b1-2", "buy", 120, 1))
    book.apply_fill(fill("b1-3", "sell", 130, "1.5"))
    assert list(book.lots) == ["b1-2"]
    assert book.lots["b1-2"].size == D("0.5")
    assert book.lots["b1-2"].cost_quote == D(60)
    assert book.realized_pnl == D(30) + D(5)
    book.apply_fill(fill("b1-4", "buy", 90, 1))
    book.apply_fill(fill("b1-5", "sell", 80, 1, position_id="b1-4"))
    assert list(book.lots) == ["b1-2"]
    assert book.realized_pnl == D(35) - D(10)


def test_replay_equals_live_book():
    fills = [
        fill("b1-1", "buy", "100.5", "0.3", fee="0.03015"),
        fill("b1-2", "sell", "101.25", "0.1", fee="0.010125"),
        fill("b1-3", "buy", "99", "0.2", fee="0.0198", ts=T0 + 86400),
        fill("b1-4", "sell", "98", "0.4", fee="0.0392", ts=T0 + 86400),
    ]
    live = Book(quote=D(500))
    for f in fills:
        live.apply_fill(f)
    replayed = Book.replay(D(500), fills)
    assert replayed == live
    assert replayed.base == 0
    assert replayed.quote == D(500) + replayed.realized_pnl
    assert set(replayed.realized_by_day) == {"2026-01-01", "2026-01-02"}


def test_replay_restores_high_water_marks_but_never_below_entry():
    fills = [fill("b1-1", "buy", 100, 1), fill("b1-2", "buy", 100, 1)]
    book = Book.replay(D(1000), fills, {"b1-1": D(130), "b1-2": D(90), "gone": D(1)})
    assert book.lots["b1-1"].hwm == D(130)
    assert book.lots["b1-2"].hwm == D(100)


def test_inconsistent_fills_are_refused():
    book = Book(quote=D(1000))
    with pytest.raises(BookError):
        book.apply_fill(fill("b1-1", "sell", 100, 1))
    book.apply_fill(fill("b1-2", "buy", 100, 1))
    with pytest.raises(BookError):
        book.apply_fill(fill("b1-3", "sell", 100, 1, position_id="nope"))


RULES = ExitRules(stop_loss=D("0.05"), take_profit=D("0.10"), trailing_stop=D("0.03"))


def lots_at(entry=100):
    book = Book(quote=D(1000))
    book.apply_fill(fill("b1-1", "buy", entry, 1))
    return book


@pytest.mark.parametrize(
    ("bid", "expected"),
    [
        ("95.01", []),
        ("95", [("stop_loss", D(95))]),
        ("80", [("stop_loss", D(95))]),
        ("109.99", []),
        ("110", [("take_profit", D(110))]),
    ],
)
def test_stop_loss_and_take_profit_levels(bid, expected):
    book = lots_at()
    only_sl_tp = ExitRules(stop_loss=RULES.stop_loss, take_profit=RULES.take_profit)
    triggers = check_exits(book.lots.values(), D(bid), only_sl_tp)
    assert [(t.reason, t.trigger_price) for t in triggers] == expected


def test_trailing_stop_follows_the_high_water_mark():
    book = lots_at()
    rules = ExitRules(trailing_stop=D("0.03"))
    lots = book.lots.values()
    assert update_high_water(lots, D(105)) == [book.lots["b1-1"]]
    assert update_high_water(lots, D(104)) == []
    assert check_exits(lots, D("101.86"), rules) == []  # 105 * 0.97 = 101.85
    (trigger,) = check_exits(lots, D("101.85"), rules)
    assert (trigger.reason, trigger.trigger_price, trigger.size) == (
        "trailing_stop",
        D("101.85"),
        D(1),
    )


def test_a_lot_with_an_exit_in_flight_is_not_exited_twice():
    book = lots_at()
    book.lots["b1-1"].exit_client_id = "b1-2"
    assert check_exits(book.lots.values(), D(50), RULES) == []


def test_unrealized_marks_at_bid():
    book = lots_at()
    assert book.unrealized(D(90)) == D(-10)
    assert book.unrealized(None) == Decimal(0)


def test_what_a_sell_leaves_below_the_lot_size_is_dust_not_a_position():
    # A live buy whose commission was taken in the base asset: 0.00153692 bought, and the
    # close can only sell whole lots of 0.00001.
    fills = [
        fill("b-1", "buy", "65000", "0.00153692", fee="0.0650"),
        fill("b-2", "sell", "65100", "0.00153", fee="0.0996", position_id="b-1"),
    ]
    book = Book.replay(D("1000"), fills, dust_below=D("0.00001"))
    assert book.lots == {}  # flat: the bot may buy again
    assert book.base == D("0.00000692")  # what the venue holds is still counted
    assert (book.dust_base, book.sellable) == (D("0.00000692"), D("0"))
    lot_cost = D("65000") * D("0.00153692") + D("0.0650")
    dust_cost = lot_cost - lot_cost * D("0.00153") / D("0.00153692")
    assert book.dust_cost == dust_cost
    assert book.unrealized(D("66000")) == D("66000") * D("0.00000692") - dust_cost
    # Without a lot size (paper: sizes are whole lots), the remainder stays a lot.
    assert list(Book.replay(D("1000"), fills).lots) == ["b-1"]
