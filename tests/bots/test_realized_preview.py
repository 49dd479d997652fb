"""``Book.realized_by``: the PnL a fill will realize, read before the fill is booked (a fill is
journaled with it, and only then changes the book). It must equal what booking realizes and
change nothing, for any sequence of buys, partial and named-lot sells."""

from __future__ import annotations

import copy
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.bots.positions import Book
from actors.journal.store import FillRecord
from tests.bots.helpers import T0, D

amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal(5), places=4)
steps = st.lists(
    st.tuples(st.sampled_from(["buy", "sell", "sell_lot"]), amounts, amounts, fees),
    min_size=1,
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_the_preview_is_what_booking_realizes_and_changes_nothing(script) -> None:
    book = Book(quote=D(10**9))
    for n, (kind, price, size, fee) in enumerate(script):
        position_id = None
        if kind != "buy":
            if book.base == 0:
                continue
            if kind == "sell_lot":
                lot = next(iter(book.lots.values()))
                position_id, size = lot.position_id, min(size, lot.size)
            else:
                size = min(size, book.base)
        side = "buy" if kind == "buy" else "sell"
        fill = FillRecord(f"b1-{n}", "b1", side, price, size, fee, position_id, T0 + n)
        before = copy.deepcopy(book)
        preview = book.realized_by(fill)
        assert book == before
        assert preview == book.apply_fill(fill)


def test_a_fill_the_book_cannot_apply_has_no_preview() -> None:
    book = Book(quote=D(1000))
    book.apply_fill(FillRecord("b1-1", "b1", "buy", D(10), D(2), D(0), None, T0))
    too_much = FillRecord("b1-2", "b1", "sell", D(10), D(3), D(0), None, T0)
    unknown_lot = FillRecord("b1-3", "b1", "sell", D(10), D(1), D(0), "b1-9", T0)
    assert book.realized_by(too_much) is None
    assert book.realized_by(unknown_lot) is None
    assert book.realized_by(FillRecord("b1-4", "b1", "buy", D(10), D(1), D(0), None, T0)) == 0
