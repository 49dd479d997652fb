"""``python run.py backtest`` end to end (a real subprocess, real files), and its refusals.

The grid case is one subprocess: a 2x2 grid in two worker processes, each variant replayed
into its own journal and report, then the summary printed and written. The refusals call the
same ``botcriptofy`` entry point in-process (they exit before any replay or process starts).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from supervisor.cli import main as cli_main
from tests.cli.helpers import run_py
from tests.replay.helpers import market, record

CONFIG = """
[[exchanges]]
name = "binance"

[[bots]]
id = "sma"
exchange = "binance"
symbol = "BTC/USDT"
strategy = "sma_cross"
params = { fast = 3, slow = 8 }
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "sma.toml"
    config.write_text(CONFIG)
    return config, record(tmp_path / "data", market(240, trade_every=0))


def test_a_parameter_grid_runs_each_variant_into_its_own_report(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    config, data = setup
    out = tmp_path / "grid"
    result = run_py(
        "backtest",
        "--config", config,
        "--data", data,
        "--from", "2025-12-01",
        "--to", "2025-12-01",
        "--param", "bots[0].params.fast=2,4",
        "--param", "bots[0].params.slow=9,21",
        "--jobs", "2",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dirs = ["000_fast=2_slow=9", "001_fast=2_slow=21", "002_fast=4_slow=9", "003_fast=4_slow=21"]
    for name in dirs:
        for file in ("journal.sqlite3", "report.html", "report.png"):
            assert (out / name / file).stat().st_size > 0, (name, file)
    with (out / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["dir"] for row in rows] == dirs
    assert rows[0]["params"] == "bots[0].params.fast=2 bots[0].params.slow=9"
    assert all(int(row["trades"]) > 0 for row in rows)
    # Different parameters, different results (the same data and bot code otherwise).
    assert len({(row["trades"], row["PnL"], row["max drawdown"]) for row in rows}) == 4
    assert "<table>" in (out / "summary.html").read_text()
    assert result.stdout.splitlines()[0].split() == [
        "#", "params", "trades", "PnL", "max", "drawdown", "Sharpe", "dir",
    ]  # fmt: skip
    assert len(result.stdout.splitlines()) == 1 + 4 + 1  # header, variants, where written

    # ``run.py check`` and ``run.py report`` are botcriptofy's subcommands.
    check = run_py("check", config)
    assert (check.returncode, check.stdout) == (0, "OK\n")
    # ``run.py report`` is ``botcriptofy report``: the same journal, read back.
    report = run_py("report", "--journal", out / dirs[0] / "journal.sqlite3")
    assert report.returncode == 0, report.stderr
    assert report.stdout.splitlines()[1].split()[:2] == ["bot", "symbol"]
    assert report.stdout.splitlines()[2].split()[:2] == ["sma", "BTC/USDT"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--param", "bots[0].params.fats=5"],
            "bots[0].params.fats: unknown key (expected one of fast, slow, price, bar_s)",
        ),
        (
            ["--param", "bots[2].params.fast=5"],
            "bots[2].params.fast: bots has 1 entries, no [2]",
        ),
        (["--param", "bots[0]..fast=5"], "bots[0]..fast: not a config field path"),
        (
            ["--param", "bots[0].params.fast=five"],
            "bots[0].params.fast: 'five' is not a TOML value (numbers as 5 or 0.5, booleans"
            ' as true, strings quoted: "five")',
        ),
        (
            ["--param", "bots[0].params.fast=2,8"],
            "bots[0].params.slow: must be > fast (8), got 8 (variant bots[0].params.fast=8)",
        ),
        (["--from", "yesterday"], "--from: 'yesterday' is not an ISO date or datetime"),
        (
            ["--from", "2025-12-02"],
            "bots[0]: no recorded ticker of binance BTC/USDT between 2025-12-02T00:00:00Z and"
            " the end (--from/--to)",
        ),
        (["--param", 'bots[0].mode="live"'], "bots[0].account: "),
    ],
)
def test_bad_params_and_options_exit_2_naming_the_path(
    setup: tuple[Path, Path], args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, data = setup
    code = cli_main(["backtest", "--config", str(config), "--data", str(data), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[0].startswith(expected), err


def test_live_bots_and_missing_data_are_refused(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, data = setup
    config = tmp_path / "live.toml"
    config.write_text(
        CONFIG.replace('id = "sma"', 'id = "sma"\nmode = "live"\naccount = "main"')
        + '\n[[bots]]\nid = "eth"\nexchange = "binance"\nsymbol = "ETH/USDT"\n'
        + '\n[[accounts]]\nname = "main"\n'
        + 'api_key_env = "K"\napi_secret_env = "S"\n'
    )
    code = cli_main(["backtest", "--config", str(config), "--data", str(data)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[0].startswith("accounts: a backtest trades no live account")
    assert err[1].startswith("bots[0].mode: a backtest runs paper bots; 'sma' is \"live\"")
    assert err[2] == (
        f"bots[1]: no recorded tickers for binance ETH/USDT in {data}"
        " (recorded tickers: binance BTC/USDT)"
    )


def test_a_failing_bot_fails_its_backtest_with_exit_1(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No supervisor restarts a replayed bot: its error ends the run, named, with exit 1."""
    _, data = setup
    raising = tmp_path / "raising.toml"
    raising.write_text(
        CONFIG.replace('"sma_cross"', '"tests.bots.strategies:Raising"').replace(
            "fast = 3, slow = 8", "on_tick_number = 5"
        )
    )
    out = tmp_path / "out"
    code = cli_main(["backtest", "--config", str(raising), "--data", str(data), "--out", str(out)])
    assert code == 1
    assert capsys.readouterr().err == "variant (base): ZeroDivisionError: strategy bug\n"
