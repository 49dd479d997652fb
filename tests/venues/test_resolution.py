"""When "Order does not exist" is believed: after the venue's deadline, N times in a row."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.venues.binance.resolution import PROCESSING_LIMIT_MS, UnknownOrderResolution, Verdict
from actors.venues.binance.responses import OrderArchived, OrderNotFound, OrderSnapshot, QueryFailed

T = 1_700_000_000_000  # the order request's timestamp (server ms)


def resolution(**options: int) -> UnknownOrderResolution:
    return UnknownOrderResolution("bcf_bot_1", T, 5000, **options)


def test_the_deadline_is_the_venues_own():
    r = resolution()
    assert r.deadline_ms == T + 5000 + PROCESSING_LIMIT_MS
    assert r.trusted_from_ms == r.deadline_ms + 5000
    assert r.next_counted_query_ms() == r.trusted_from_ms


def test_not_found_before_the_deadline_never_counts():
    r = resolution()
    for asked in range(T, r.trusted_from_ms, 500):
        assert r.not_found(asked) is Verdict.PENDING
    assert r.streak == 0


def test_three_spaced_answers_after_the_deadline_mean_never_placed():
    r = resolution()
    start = r.trusted_from_ms
    assert r.not_found(start) is Verdict.PENDING
    assert r.not_found(start + 500) is Verdict.PENDING  # too soon after the last: not counted
    assert r.streak == 1
    assert r.not_found(start + 1000) is Verdict.PENDING
    assert r.next_counted_query_ms() == start + 2000
    assert r.not_found(start + 2000) is Verdict.NEVER_PLACED
    assert r.not_found(start + 9000) is Verdict.NEVER_PLACED  # final


def test_a_failed_lookup_restarts_the_count():
    r = resolution(confirmations=2)
    start = r.trusted_from_ms
    r.not_found(start)
    assert r.inconclusive() is Verdict.PENDING
    assert r.streak == 0
    assert r.not_found(start + 1000) is Verdict.PENDING
    assert r.not_found(start + 2000) is Verdict.NEVER_PLACED
    assert r.inconclusive() is Verdict.NEVER_PLACED


def test_found_always_wins_and_a_contradiction_is_flagged():
    r = resolution()
    assert r.found() is Verdict.FOUND
    assert not r.contradicted
    assert r.not_found(r.trusted_from_ms + 10**6) is Verdict.FOUND
    late = resolution(confirmations=1)
    assert late.not_found(late.trusted_from_ms) is Verdict.NEVER_PLACED
    assert late.found() is Verdict.FOUND
    assert late.contradicted


def test_observe_takes_classified_lookups():
    r = resolution(confirmations=1, read_lag_ms=0)
    assert r.observe(QueryFailed(503, None, ""), r.deadline_ms) is Verdict.PENDING
    assert r.observe(OrderNotFound("Order does not exist."), r.deadline_ms - 1) is Verdict.PENDING
    assert r.observe(OrderNotFound("Order does not exist."), r.deadline_ms) is Verdict.NEVER_PLACED
    archived = resolution()
    assert archived.observe(OrderArchived("archived"), T) is Verdict.FOUND
    snap = resolution()
    snapshot = OrderSnapshot(
        symbol="BTCUSDT",
        order_id=1,
        client_order_id="bcf_bot_1",
        side="buy",
        order_type="LIMIT",
        status="NEW",
        price=1,
        orig_qty=1,
        executed_qty=0,
        cumulative_quote_qty=None,  # type: ignore[arg-type]
        time_ms=None,
        update_time_ms=None,
    )
    assert snap.observe(snapshot, T) is Verdict.FOUND


def test_after_a_restart_the_latest_possible_request_is_assumed():
    r = UnknownOrderResolution.after_restart("bcf_bot_1", T)
    assert r.timestamp_ms == T + 1000
    assert r.recv_window_ms == 60000
    assert r.deadline_ms == T + 1000 + 60000 + 10000
    custom = UnknownOrderResolution.after_restart("x", T, confirmations=5, read_lag_ms=0)
    assert custom.confirmations == 5
    assert custom.trusted_from_ms == custom.deadline_ms


@pytest.mark.parametrize(
    "options",
    [{"confirmations": 0}, {"read_lag_ms": -1}, {"min_spacing_ms": -1}],
)
def test_bad_options(options: dict[str, int]):
    with pytest.raises(ValueError, match="must be >= "):
        resolution(**options)
    with pytest.raises(ValueError, match="recvWindow"):
        UnknownOrderResolution("x", T, 60001)


@given(
    answers=st.lists(
        st.tuples(st.sampled_from(["not_found", "failed"]), st.integers(0, 40_000)), max_size=30
    ),
    n=st.integers(1, 5),
)
def test_never_placed_needs_n_counted_answers_after_the_deadline(
    answers: list[tuple[str, int]], n: int
):
    r = resolution(confirmations=n)
    counted: list[int] = []
    for kind, offset in sorted(answers, key=lambda a: a[1]):
        asked = T + offset
        if kind == "failed":
            r.inconclusive()
            if r.verdict is Verdict.PENDING:
                counted.clear()
            continue
        before = r.streak
        r.not_found(asked)
        if r.streak > before:
            counted.append(asked)
    if r.verdict is Verdict.NEVER_PLACED:
        assert len(counted) >= n
        assert all(asked >= r.trusted_from_ms for asked in counted)
        assert all(b - a >= r.min_spacing_ms for a, b in itertools.pairwise(counted))
    else:
        assert r.streak < n
