"""A bot's decision latency: from a ticker's local receipt (``received_ts``) to the bot's
decision on it, counted in fixed buckets on every ticker."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from actors.bots.views import DECISION_BUCKETS_S, DecisionLatency
from tests.bots.helpers import WallClock, bot_config, running_bot, send_events, tick


def counts_by_bound(latency: DecisionLatency) -> dict[float | str, int]:
    snap = latency.snapshot()
    bounds: list[float | str] = [*snap.bucket_bounds_s, "+Inf"]
    return {bound: n for bound, n in zip(bounds, snap.bucket_counts, strict=True) if n}


def test_a_value_lands_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    latency = DecisionLatency()
    for value in (0.0, 0.0001, 0.00011, 0.003, 1.0, 1.5, 60.0):
        latency.observe(value)
    assert counts_by_bound(latency) == {0.0001: 2, 0.00025: 1, 0.005: 1, 1.0: 1, "+Inf": 2}
    snap = latency.snapshot()
    assert snap.count == 7
    assert snap.sum_s == pytest.approx(0.0001 + 0.00011 + 0.003 + 1.0 + 1.5 + 60.0)
    assert snap.bucket_bounds_s == DECISION_BUCKETS_S


def test_a_clock_stepped_back_counts_as_no_latency() -> None:
    latency = DecisionLatency()
    latency.observe(-0.5)
    assert counts_by_bound(latency) == {0.0001: 1}
    assert latency.snapshot().sum_s == 0.0


def test_a_snapshot_does_not_move_with_later_ticks() -> None:
    latency = DecisionLatency()
    latency.observe(0.002)
    before = latency.snapshot()
    latency.observe(0.002)
    assert (before.count, latency.snapshot().count) == (1, 2)


async def test_the_bot_measures_each_ticker_from_its_receipt(
    tmp_path: Path, thread_clock: MockClock
) -> None:
    clock = WallClock()
    with trio.fail_after(10):
        async with running_bot(tmp_path / "j.sqlite3", bot_config(), clock=clock) as (
            bot,
            feed,
            _,
        ):
            assert bot.statistics().decision_latency.count == 0
            await send_events(
                bot,
                feed,
                tick(105, ts=clock.now - 0.003),  # waited 3 ms in a queue
                tick(105, ts=clock.now - 0.2),
                tick(105, ts=clock.now),
            )
            snap = bot.statistics().decision_latency
    bounds = [*snap.bucket_bounds_s, "+Inf"]
    assert {b: n for b, n in zip(bounds, snap.bucket_counts, strict=True) if n} == {
        0.0001: 1,
        0.005: 1,
        0.25: 1,
    }
    assert snap.sum_s == pytest.approx(0.203)
