"""``build_tree`` is the daemon's whole supervision tree as data: checked here without running
anything (no Trio loop, no file, no socket)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.errors import ConfigError, JournalError
from supervisor.build import bot_child_name, build_tree
from supervisor.config import (
    AlertsConfig,
    BackoffPolicy,
    BotConfig,
    BreakerPolicy,
    Config,
    ExchangeConfig,
    JournalConfig,
    SupervisorConfig,
    WebhookConfig,
)
from supervisor.otp.spec import ChildSpec, RestartLimit, SupervisorSpec

BACKOFF = BackoffPolicy(initial_s=0.2, max_s=4.0, reset_after_s=30.0)
BREAKER = BreakerPolicy(failure_threshold=3, reset_timeout_s=20.0)
OWN_BACKOFF = BackoffPolicy(initial_s=1.0, max_s=60.0)
OWN_BREAKER = BreakerPolicy(failure_threshold=9, reset_timeout_s=90.0)


def config(tmp_path: Path, **overrides: Any) -> Config:
    fields: dict[str, Any] = {
        "supervisor": SupervisorConfig(max_restarts=7, period_s=120.0, shutdown_grace_s=3.0),
        "backoff": BACKOFF,
        "circuit_breaker": BREAKER,
        "exchanges": (
            ExchangeConfig(name="binance"),
            ExchangeConfig(name="kraken", backoff=OWN_BACKOFF, circuit_breaker=OWN_BREAKER),
        ),
        "bots": (
            BotConfig(id="b1", exchange="binance", symbol="BTC/USDT"),
            BotConfig(id="k1", exchange="kraken", symbol="BTC/USD"),
        ),
        "journal": JournalConfig(path=str(tmp_path / "not-yet" / "journal.sqlite3")),
    }
    fields.update(overrides)
    return Config(**fields)


def names(spec: SupervisorSpec) -> list[str]:
    return [child.name for child in spec.children]


def subtree(spec: SupervisorSpec, name: str) -> SupervisorSpec:
    child = spec.child(name)
    assert isinstance(child, SupervisorSpec)
    return child


def leaf(spec: SupervisorSpec, name: str) -> ChildSpec:
    child = spec.child(name)
    assert isinstance(child, ChildSpec)
    return child


def test_the_root_starts_journal_alerts_events_feeds_then_bots_and_restarts_nothing(
    tmp_path: Path,
) -> None:
    tree = build_tree(config(tmp_path))
    root = tree.root
    assert names(root) == ["journal", "alerts", "bot_events", "feeds", "bots"]
    assert root.max_restarts == 0  # any failure at the top stops the system
    assert [leaf(root, n).restart for n in ("journal", "alerts", "bot_events")] == [
        "permanent",
        "permanent",
        "transient",  # ends cleanly once no bot can send any more
    ]
    assert JournalError in leaf(root, "journal").faults  # a reason to stop, not a bug
    # Infrastructure is not contained: its crash loop escalates and stops the system.
    assert [leaf(root, n).restart_limit for n in ("journal", "alerts", "bot_events")] == [None] * 3
    # Nested supervisors are waited for in full: they bound their own children's stop.
    assert subtree(root, "feeds").shutdown_grace_s == subtree(root, "bots").shutdown_grace_s
    assert subtree(root, "bots").shutdown_grace_s == float("inf")
    assert not (tmp_path / "not-yet").exists()  # nothing opened


def test_configured_bots_are_transient_children_with_the_configured_backoff(
    tmp_path: Path,
) -> None:
    tree = build_tree(config(tmp_path))
    bots = subtree(tree.root, "bots")
    assert names(bots) == ["bot:b1", "bot:k1"]
    assert (bots.max_restarts, bots.period_s) == (7, 120.0)
    for child in bots.children:
        assert isinstance(child, ChildSpec)
        assert (child.restart, child.backoff, child.breaker) == ("transient", BACKOFF, None)
        assert child.shutdown_grace_s == 3.0
        # Each bot has the [supervisor] budget to itself: a crash loop gives it up alone.
        assert child.restart_limit == RestartLimit(max_restarts=7, period_s=120.0)
    assert set(tree.bots.slots) == {"b1", "k1"}
    assert bot_child_name("b1") == "bot:b1"


def test_without_the_configured_bots_the_bots_subtree_starts_empty(tmp_path: Path) -> None:
    tree = build_tree(config(tmp_path), configured_bots=False)
    assert names(subtree(tree.root, "bots")) == []
    assert tree.bots.slots == {}
    later = tree.bots.add(BotConfig(id="b1", exchange="binance", symbol="BTC/USDT"))
    assert (later.name, later.restart) == ("bot:b1", "transient")
    assert later.restart_limit == RestartLimit(max_restarts=7, period_s=120.0)
    with pytest.raises(ValueError, match="already running"):
        tree.bots.add(BotConfig(id="b1", exchange="binance", symbol="ETH/USDT"))


def test_each_exchange_is_a_subtree_with_its_own_budget_and_policies(tmp_path: Path) -> None:
    tree = build_tree(config(tmp_path))
    feeds = subtree(tree.root, "feeds")
    assert names(feeds) == ["exchange:binance", "exchange:kraken"]
    assert feeds.max_restarts == 0  # an exchange that gives up is passed on at once
    expected = {"binance": (BACKOFF, BREAKER), "kraken": (OWN_BACKOFF, OWN_BREAKER)}
    for exchange, (backoff, breaker) in expected.items():
        sub = subtree(feeds, f"exchange:{exchange}")
        assert (sub.max_restarts, sub.period_s) == (7, 120.0)
        assert names(sub) == [f"streams:{exchange}", f"connections:{exchange}"]
        connections = leaf(sub, f"connections:{exchange}")
        assert (connections.restart, connections.backoff, connections.breaker) == (
            "permanent",
            backoff,
            breaker,
        )
        assert leaf(sub, f"streams:{exchange}").breaker is None
        assert connections.restart_limit is None  # escalates: an exchange is infrastructure
    assert tree.market_data.exchanges == ("binance", "kraken")


def test_the_tree_runs_with_the_feeds_observer_the_alerts_and_the_callers(
    tmp_path: Path,
) -> None:
    mine: list[Any] = []
    tree = build_tree(config(tmp_path), observers=[mine.append])
    assert len(tree.observers) == 3
    assert tree.observers[-1] == mine.append
    assert tree.journal.config.path.endswith("journal.sqlite3")


def test_an_unset_webhook_variable_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BUILD_TEST_HOOK", raising=False)
    alerts = AlertsConfig(webhooks=(WebhookConfig(url_env="BUILD_TEST_HOOK"),))
    with pytest.raises(ConfigError, match="BUILD_TEST_HOOK"):
        build_tree(config(tmp_path, alerts=alerts))
