"""Pure parts of the plane: request budget, latency histogram, log throttle, subscription state."""

from __future__ import annotations

from decimal import Decimal

from actors.market_data.connection import LatencyHistogram, LogThrottle, RequestBudget
from actors.market_data.subscription import Subscription
from actors.messages import FeedState, Stream, Ticker


def test_budget_keeps_a_message_per_second_for_pongs_in_a_sliding_window() -> None:
    budget = RequestBudget(5.0)  # Binance
    assert budget.limit == 4
    sent = []
    now = 0.0
    for _ in range(12):
        now = budget.next_send_at(now)
        budget.record(now)
        sent.append(now)
    assert sent[:4] == [0.0] * 4
    assert sent[4:8] == [1.1] * 4
    # No window of 1 s (the exchange's) ever holds more than 4 of ours.
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 1.0) <= 4


def test_budget_without_a_limit_never_waits() -> None:
    budget = RequestBudget(None)
    for _ in range(100):
        assert budget.next_send_at(3.0) == 3.0
        budget.record(3.0)


def test_latency_histogram_buckets_are_upper_bounds() -> None:
    histogram = LatencyHistogram((0.01, 0.1))
    for value in (-0.5, 0.01, 0.02, 0.1, 3.0):
        histogram.observe(value)
    snap = histogram.snapshot()
    assert snap.bucket_counts == (2, 2, 1)
    assert snap.count == 5
    assert abs(snap.sum_s - 2.63) < 1e-9


def test_log_throttle_reports_what_it_suppressed() -> None:
    throttle = LogThrottle(10.0)
    assert throttle.due(0.0) == 0
    assert throttle.due(1.0) is None
    assert throttle.due(9.9) is None
    assert throttle.due(10.0) == 2
    assert throttle.due(10.5) is None


def test_subscription_tells_each_state_once_and_keeps_departed_counts() -> None:
    stream = Stream("ticker", "BTC/USDT")
    sub = Subscription("binance", stream)
    fast, slow = sub.acquire(), sub.acquire()
    assert sub.tell("live") is True
    assert sub.live is True
    for n in range(1, 4):
        sub.publish(
            Ticker("binance", "BTC/USDT", Decimal(n), Decimal(n), None, None, None, None, 0.0),
            float(n),
        )
        fast.receive_nowait()  # the live notice, then each ticker
        if n == 1:
            fast.receive_nowait()
    assert sub.last_data_at == 3.0
    assert sub.tell("live") is False
    assert sub.tell("stale", "quiet") is True
    assert sub.feed.state == FeedState("binance", stream, "stale", "quiet")
    assert sub.live is False
    sub.release(slow)
    assert sub.subscribers == 1
    assert sub.totals() == (2, 0)  # the departed one skipped 2 of 3 tickers
    assert sub.statistics().subscribers == 1


def test_a_stream_that_never_reached_the_wire_is_retired_with_its_last_subscriber() -> None:
    retired: list[Subscription] = []
    sub = Subscription(
        "binance", Stream("trade", "BTC/USDT"), linger_s=5.0, on_retire=retired.append
    )
    events = sub.acquire()
    sub.release(events)
    assert retired == [sub]
    assert sub.retired
    assert sub.closed
