"""The shipped examples work: every docs/examples/*.toml passes the config check, local.toml is
the embedded default, and docs/examples/embedded.py runs to completion on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supervisor import load_config
from supervisor.embedded import default_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.toml"))
PUBLIC = ("binance.toml", "coinbase.toml", "coinbase_advanced.toml", "kraken.toml")
LIVE = "binance_testnet.toml"


def test_every_exchange_protocol_has_an_example() -> None:
    backtest = "backtest.toml"  # a paper config for `run.py backtest` (docs/user-guide.md)
    cluster = "cluster.toml"  # three nodes on one machine (docs/user-guide.md, "Run a cluster")
    assert {path.name for path in CONFIGS} == {*PUBLIC, "local.toml", LIVE, backtest, cluster}
    protocols = {
        exchange.protocol_name
        for name in PUBLIC
        for exchange in load_config(EXAMPLES / name).exchanges
    }
    assert protocols >= {"binance", "coinbase", "coinbase_advanced", "kraken"}


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name != LIVE], ids=lambda path: path.name)
def test_example_config_is_valid_and_trades_on_paper(path: Path) -> None:
    config = load_config(path)
    assert config.bots
    assert all(bot.mode == "paper" for bot in config.bots)
    assert {bot.exchange for bot in config.bots} == {ex.name for ex in config.exchanges}


@pytest.mark.parametrize("name", PUBLIC)
def test_public_examples_leave_the_production_urls_to_the_codec(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert all(ex.url is None and ex.rest_url is None for ex in config.exchanges)


def test_check_config_exits_0_on_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "run.py", "--check-config", str(EXAMPLES / "binance.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "OK"), result.stderr


def test_the_testnet_example_says_what_live_mode_will_do_and_needs_its_keys() -> None:
    command = [sys.executable, "run.py", "--check-config", str(EXAMPLES / LIVE)]
    keys = {"BINANCE_TESTNET_KEY": "k-123", "BINANCE_TESTNET_SECRET": "s-456"}
    bare = {k: v for k, v in os.environ.items() if k not in keys}
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, env={**bare, **keys}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["OK", "live trading: 1 bot(s) on 1 account(s)"]
    assert "  account testnet: binance test venue" in lines
    assert "    rest https://testnet.binance.vision, user stream" in result.stdout
    assert "k-123" not in result.stdout
    assert "s-456" not in result.stdout
    missing = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, env=bare
    )
    assert missing.returncode == 2
    assert "BINANCE_TESTNET_KEY" in missing.stderr
    assert missing.stdout == ""


def test_local_example_is_the_embedded_default_spelled_out() -> None:
    expected = default_config(
        "ws://127.0.0.1:9001/stream",
        "http://127.0.0.1:9011",
        "ws://127.0.0.1:9002/v2",
        "http://127.0.0.1:9012",
        journal_path=str(EXAMPLES / "data/local/journal.sqlite3"),
    )
    assert load_config(EXAMPLES / "local.toml") == expected


def test_embedded_example_runs_to_completion_and_prints_tickers() -> None:
    """Run by path as the guide says; PYTHONPATH names the project so the test does not depend
    on how (or whether) it was pip-installed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "embedded.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    tickers = [line for line in lines if line.startswith("ticker BTC/USDT bid=")]
    assert len(tickers) == 5, result.stdout
    assert any(line.startswith("bot eth-breakout: running, ") for line in lines), result.stdout
    assert elapsed_s < 10, f"embedded.py took {elapsed_s:.1f} s"
