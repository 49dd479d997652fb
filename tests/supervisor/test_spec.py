from __future__ import annotations

from typing import Any

import pytest

from supervisor import parse_config
from supervisor.backoff import BackoffPolicy
from supervisor.breaker import BreakerPolicy
from supervisor.intensity import RestartIntensity
from supervisor.spec import ChildSpec, SupervisorSpec, build_tree


async def idle(*, task_status: Any) -> None:
    task_status.started()


def test_intensity_counts_within_a_sliding_window() -> None:
    intensity = RestartIntensity(max_restarts=2, period_s=10.0)
    assert intensity.record(0.0) is False
    assert intensity.record(5.0) is False
    assert intensity.record(9.9) is True  # third within 10 s
    spread = RestartIntensity(max_restarts=2, period_s=10.0)
    assert [spread.record(t) for t in (0.0, 6.0, 12.0, 18.0, 24.0)] == [False] * 5
    assert spread.count(24.0) == 2
    # A restart exactly period_s ago no longer counts.
    edge = RestartIntensity(max_restarts=1, period_s=10.0)
    assert edge.record(0.0) is False
    assert edge.record(10.0) is False


def test_child_spec_validation() -> None:
    with pytest.raises(ValueError, match="'restart' must be in"):
        ChildSpec("x", idle, restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must not be empty"):
        ChildSpec("", idle)
    with pytest.raises(ValueError, match="duplicate child name 'a'"):
        SupervisorSpec(children=(ChildSpec("a", idle), ChildSpec("a", idle)))


def test_build_tree_is_pure_data() -> None:
    config = parse_config(
        """
        [supervisor]
        max_restarts = 3
        period_s = 30
        shutdown_grace_s = 2
        [backoff]
        initial_s = 1
        [circuit_breaker]
        failure_threshold = 4
        [[exchanges]]
        name = "binance"
        [[exchanges]]
        name = "kraken"
        [exchanges.backoff]
        initial_s = 2
        max_s = 8
        [exchanges.circuit_breaker]
        reset_timeout_s = 5
        [[bots]]
        id = "b1"
        exchange = "kraken"
        symbol = "BTC/USD"
        """
    )
    made: list[str] = []

    def exchange_run(ex: Any) -> Any:
        made.append(ex.name)
        return idle

    def bot_run(bot: Any) -> Any:
        made.append(bot.id)
        return idle

    tree = build_tree(config, exchange_run=exchange_run, bot_run=bot_run)
    assert made == ["binance", "kraken", "b1"]
    assert tree.name == "root"
    assert (tree.max_restarts, tree.period_s) == (3, 30)
    exchanges, bots = tree.children
    assert isinstance(exchanges, SupervisorSpec)
    assert isinstance(bots, SupervisorSpec)
    assert [c.name for c in exchanges.children] == ["binance", "kraken"]
    binance, kraken = exchanges.children
    assert isinstance(binance, ChildSpec)
    assert isinstance(kraken, ChildSpec)
    assert binance.restart == "permanent"
    assert binance.backoff == BackoffPolicy(initial_s=1, multiplier=2.0, max_s=30.0)
    assert binance.breaker == BreakerPolicy(failure_threshold=4, reset_timeout_s=30.0)
    assert kraken.backoff == BackoffPolicy(initial_s=2, multiplier=2.0, max_s=8)
    assert kraken.breaker == BreakerPolicy(failure_threshold=5, reset_timeout_s=5)
    assert binance.shutdown_grace_s == 2
    (bot,) = bots.children
    assert isinstance(bot, ChildSpec)
    assert (bot.name, bot.restart, bot.breaker) == ("b1", "transient", None)
