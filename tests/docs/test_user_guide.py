"""docs/user-guide.md says what the code does: its strategy example is the shipped file and
trades as described, its TOML snippets are valid configs, and its lists of command-line
options, metric families and alert kinds are the real ones."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import generate_latest

import run
from actors.bots import PositionView, Signal
from actors.bots.strategy import context_for, load_strategy
from actors.errors import ConfigError
from actors.messages import Ticker
from supervisor import parse_config
from supervisor.alerts import ALERT_KINDS
from supervisor.config import BotConfig
from supervisor.metrics import SnapshotCollector, new_registry

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
EXAMPLES = ROOT / "docs" / "examples"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE, flags=re.DOTALL)


def section(heading: str) -> str:
    start = GUIDE.index(heading)
    end = GUIDE.find("\n#", start + len(heading))
    return GUIDE[start : end if end != -1 else None]


@pytest.fixture
def examples_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_the_strategy_example_is_the_shipped_file() -> None:
    shipped = (EXAMPLES / "breakout.py").read_text(encoding="utf-8")
    assert shipped in blocks("python")


@pytest.mark.usefixtures("examples_on_path")
@pytest.mark.parametrize("index", range(len(blocks("toml"))))
def test_toml_snippets_are_valid_configs(index: int) -> None:
    parse_config(blocks("toml")[index], source=f"user-guide toml block {index}")


@pytest.mark.usefixtures("examples_on_path")
def test_bad_breakout_params_are_reported_with_their_path() -> None:
    text = blocks("toml")[1].replace("window = 30", "window = 1")
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert [p for p in caught.value.problems if p.startswith("bots[0].params.window:")]


def ticker(price: str) -> Ticker:
    value = Decimal(price)
    return Ticker("binance", "BTC/USDT", value, value, None, None, None, None, 0.0)


@pytest.mark.usefixtures("examples_on_path")
def test_breakout_buys_above_the_range_and_closes_below_it() -> None:
    config = BotConfig(
        id="b",
        exchange="binance",
        symbol="BTC/USDT",
        strategy="breakout:Breakout",
        params={"window": 3, "quote": "150"},
    )
    strategy = load_strategy(config)
    held = PositionView(Decimal(1), Decimal(100), 1, 0, Decimal(0), Decimal(1))
    position = [PositionView(Decimal(0), None, 0, 0, Decimal(0), Decimal(0))]
    ctx = context_for(strategy, "b", "BTC/USDT", position_fn=lambda: position[0])

    def on(price: str, *, accepted: bool = True) -> Signal | None:
        tick = ticker(price)
        ctx.observe(tick, accepted=accepted, now_ts=0.0)
        return strategy.on_tick(tick, ctx)

    assert [on(p) for p in ("100", "101", "100.5")] == [None, None, None]  # warming up
    assert on("150", accepted=False) is None  # quarantined: ignored, kept out of history
    assert on("101.5") == Signal.buy("breakout", quote=Decimal("150"))
    position[0] = held
    assert on("101.6") is None  # a new high while holding: no second entry
    assert on("99") == Signal.close("breakdown")


def test_command_line_options_are_the_real_ones() -> None:
    table = section("Command-line options:")
    documented = set(re.findall(r"^\| `(--[a-z-]+)", table, flags=re.MULTILINE))
    parser = run._parser()
    real = {s for action in parser._actions for s in action.option_strings if s != "--help"}
    assert documented == {s for s in real if s.startswith("--")}


def test_metric_families_are_the_real_ones() -> None:
    collector = SnapshotCollector(
        exchanges=lambda: {
            "binance": {
                "messages_received": 1,
                "bytes_received": 10,
                "decode_errors": 0,
                "reconnects": 0,
                "breaker_state": "closed",
                "state": "streaming",
                "skipped": 0,
                "dropped": 0,
                "connection_uptime_s": 1.0,
                "last_message_age_s": 0.1,
                "latency": {"bucket_bounds_s": [0.1], "bucket_counts": [1, 0], "sum_s": 0.01},
                "streams": [
                    {"kind": "ticker", "symbol": "BTC/USDT", "subscribers": 1, "stale": False}
                ],
            }
        },
        bots=lambda: {
            "b": {
                "exchange": "binance",
                "symbol": "BTC/USDT",
                "quote": "USDT",
                "ticks": 1,
                "quarantined_ticks": 0,
                "orders": 0,
                "fills": 0,
                "rejections": {"rate_limit": 1},
                "position": 0,
                "realized_pnl": 0,
                "unrealized_pnl": 0,
                "quote_balance": 10000,
                "position_value": 0,
                "equity": 10000,
                "decision_latency": {
                    "bucket_bounds_s": [0.001],
                    "bucket_counts": [1, 0],
                    "sum_s": 0.0002,
                },
                "state": "running",
            }
        },
        children=lambda: {"bot:b": {"restarts": 0, "state": "running"}},
        uptime_s=lambda: 1.0,
        alerts=lambda: {"sent": 0, "suppressed": 0, "failed": 0, "dropped": 0},
        runtime=lambda: {"tasks_living": 10, "tasks_runnable": 0},
        recording=lambda: {
            "rows_received": 1,
            "rows_written": 1,
            "frames_received": 0,
            "frames_written": 0,
            "parts_written": 0,
            "dropped_rows": 0,
            "flushes": 1,
            "buffered_rows": 0,
            "open_segments": 1,
            "last_flush_ts": 1.0,
        },
        cluster=lambda: {
            "binance": {
                "node": "n1",
                "role": "leader",
                "leader": "n1",
                "epoch": 1,
                "redis_up": True,
                "redis_rtt_s": 0.001,
                "entries_written": 1,
                "entries_read": 0,
                "stale_epoch_dropped": 0,
                "takeovers": 1,
                "lag_bucket_bounds_s": [0.001],
                "lag_bucket_counts": [0, 0],
                "lag_sum_s": 0.0,
            }
        },
    )
    registry = new_registry(collector, process=True)  # as the daemon's (metrics_registry)
    exposed = set(re.findall(r"^# TYPE (\S+)", generate_latest(registry).decode(), re.M))
    pattern = r"`((?:botcriptofy|process|python)_\w+)`"
    documented = set(re.findall(pattern, section("### `GET /metrics`")))
    assert documented == exposed


def test_alert_kinds_are_the_real_ones() -> None:
    alerts = section("### Alerts")
    kinds = alerts[alerts.index("Kinds:") : alerts.index("The `json`")]
    assert set(re.findall(r"`([a-z]+_[a-z_]+)`", kinds)) == set(ALERT_KINDS)
