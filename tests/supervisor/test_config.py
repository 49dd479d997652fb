from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from actors.errors import ConfigError
from supervisor import load_config, parse_config, resolve_secret
from supervisor.config import SecretsConfig
from supervisor.config_loader import parse_bot_spec
from tests.bots.plugins import Plugins

PROJECT_ROOT = Path(__file__).resolve().parents[2]

BASE = """
[[exchanges]]
name = "binance"

[[bots]]
id = "bot-1"
exchange = "binance"
symbol = "BTC/USDT"
"""
ACCOUNT = '\n[[accounts]]\nname = "main"\napi_key_env = "K"\napi_secret_env = "S"\n'


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text))
    return info.value.problems


def test_the_base_config_is_valid_and_typed() -> None:
    config = parse_config(
        BASE
        + """
order_quote = 0.1
[bots.risk]
max_order_quote = "250.50"
daily_loss_limit_quote = 40
"""
    )
    (bot,) = config.bots
    assert bot.order_quote == Decimal("0.1")  # via str(), not the binary float
    assert bot.risk.max_order_quote == Decimal("250.50")
    assert bot.risk.daily_loss_limit_quote == Decimal(40)
    assert config.exchanges[0].protocol_name == "binance"


@pytest.mark.parametrize("text", ["", "\n  \n", "# to do: an exchange\n"])
def test_an_empty_config_is_an_error_not_an_idle_daemon(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="conf.toml")
    assert info.value.problems == (
        "conf.toml: the config is empty; name at least one [[exchanges]] entry, and [[bots]]"
        " to trade from the start (see docs/examples/)",
    )


MALFORMED = [
    pytest.param('[http]\nport = "x"', ["http.port: expected int, got 'x'"], id="str-for-int"),
    pytest.param(
        "[supervisor]\nmax_restarts = 2.5",
        ["supervisor.max_restarts: expected int, got 2.5"],
        id="float-for-int",
    ),
    pytest.param(
        '[[exchanges]]\nname = "binance"\nstale_after_s = true',
        ["exchanges[0].stale_after_s: expected float, got True"],
        id="bool-for-float",
    ),
    pytest.param(
        "[http]\nenabled = 1",
        ["http.enabled: expected bool (true or false), got 1"],
        id="int-for-bool",
    ),
    pytest.param(
        BASE + 'order_quote = "ten"',
        ["bots[0].order_quote: expected a decimal number, got 'ten'"],
        id="bad-decimal",
    ),
    pytest.param(
        BASE + "order_quote = nan",
        ["bots[0].order_quote: expected a finite decimal number, got nan"],
        id="non-finite-decimal",
    ),
    pytest.param(
        BASE + "params = 5", ["bots[0].params: expected a table, got 5"], id="params-not-table"
    ),
    pytest.param(
        BASE + "[bots.risk]\nstop_loss_pct = -2",
        ["bots[0].risk.stop_loss_pct: must be > 0 and < 100, got -2"],
        id="negative-percent",
    ),
    pytest.param(
        "[backoff]\ninitial_s = 0", ["backoff.initial_s: must be > 0, got 0"], id="zero-seconds"
    ),
    pytest.param(
        "[backoff]\ninitial_s = 5\nmax_s = 1",
        ["backoff.max_s: must be >= initial_s (5), got 1"],
        id="max-below-initial",
    ),
    pytest.param(
        "[http]\nport = 70000",
        ["http.port: must be a TCP port in 0..65535 (0 picks a free one), got 70000"],
        id="port-range",
    ),
    pytest.param(
        '[[exchanges]]\nname = "binance"\nbackof = 1',
        ["exchanges[0].backof: unknown key"],
        id="unknown-key",
    ),
    pytest.param("[htpp]\nport = 1", ["htpp: unknown key"], id="unknown-table"),
    pytest.param(
        '[[bots]]\nexchange = "binance"\nsymbol = "BTC/USDT"\n[[exchanges]]\nname = "binance"',
        ["bots[0].id: required field missing"],
        id="missing-bot-id",
    ),
    pytest.param(
        '[[exchanges]]\nprotocol = "kraken"',
        ["exchanges[0].name: required field missing"],
        id="missing-exchange-name",
    ),
    pytest.param(
        BASE + ACCOUNT + 'api_key = "AKIA-not-a-real-key"',
        [
            "accounts[0].api_key: literal secrets are not allowed in config;"
            " name an environment variable with api_key_env"
        ],
        id="literal-api-key",
    ),
    pytest.param(
        BASE + 'params = { fast = 3, password = "hunter2" }',
        [
            "bots[0].params.password: literal secrets are not allowed in config;"
            " name an environment variable with password_env"
        ],
        id="literal-secret-in-params",
    ),
    pytest.param(
        BASE + '[[accounts]]\nname = "main"\napi_secret_env = "S"\napi_key_env = "sk-live-123"',
        [
            "accounts[0].api_key_env: must be the NAME of an environment variable"
            " (UPPER_CASE letters, digits, '_'), not a secret (value not shown)"
        ],
        id="secret-pasted-as-env-name",
    ),
    pytest.param(
        BASE + '[[bots]]\nid = "bot-1"\nexchange = "binance"\nsymbol = "ETH/USDT"',
        ["bots[1].id: duplicate bot id 'bot-1'"],
        id="duplicate-bot-id",
    ),
    pytest.param(
        BASE + '[[exchanges]]\nname = "binance"',
        ["exchanges[1].name: duplicate exchange name 'binance'"],
        id="duplicate-exchange",
    ),
    pytest.param(
        '[[exchanges]]\nname = "binance"\n'
        '[[bots]]\nid = "b"\nexchange = "kraken"\nsymbol = "BTC/USD"',
        ["bots[0].exchange: unknown exchange 'kraken'; configured: binance"],
        id="unknown-exchange",
    ),
    pytest.param(
        '[[exchanges]]\nname = "binance"\n[[bots]]\nid = "b"\nexchange = "binance"\n'
        'symbol = "BTCUSDT"',
        ["bots[0].symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'BTCUSDT'"],
        id="bad-symbol",
    ),
    pytest.param(
        BASE + 'mode = "real"',
        ["bots[0].mode: must be one of 'paper', 'live', got 'real'"],
        id="bad-mode",
    ),
    pytest.param(
        '[[exchanges]]\nname = "ftx-main"\nprotocol = "ftx"',
        [
            "exchanges[0].protocol: must be one of binance, coinbase, coinbase_advanced,"
            " kraken, kraken_v1, got 'ftx'"
        ],
        id="bad-protocol",
    ),
    pytest.param(
        '[[exchanges]]\nname = "sim"',
        [
            "exchanges[0].protocol: not set and the exchange name 'sim' is not a protocol;"
            " set it to one of binance, coinbase, coinbase_advanced, kraken, kraken_v1"
        ],
        id="name-is-not-a-protocol",
    ),
    pytest.param(
        '[[exchanges]]\nname = "binance"\nurl = "https://stream.binance.com"\n'
        'rest_url = "api.binance.com"',
        [
            "exchanges[0].url: must be a URL starting with ws:// or wss://,"
            " got 'https://stream.binance.com'",
            "exchanges[0].rest_url: must be a URL starting with http:// or https://,"
            " got 'api.binance.com'",
        ],
        id="urls-without-their-scheme",
    ),
    pytest.param(
        "[http]\nport = 70000\n" + BASE + 'order_quote = "-5"\n'
        '[[bots]]\nid = "bot-2"\nexchange = "binance"\nsymbol = "BTC/USDT"\n'
        'strategy = "sma_cross"\nparams = { fast = 30, slow = 10 }',
        [
            "bots[0].order_quote: must be > 0, got -5",
            "http.port: must be a TCP port in 0..65535 (0 picks a free one), got 70000",
            "bots[1].params.slow: must be > fast (30), got 10",
        ],
        id="strategy-params-checked-alongside-other-problems",
    ),
    pytest.param(
        BASE + 'mode = "live"\naccount = "other"\n' + ACCOUNT,
        ["bots[0].account: unknown account 'other'; configured: main"],
        id="live-with-an-unknown-account",
    ),
    pytest.param(
        BASE + 'mode = "live"\n',
        ['bots[0].account: required when mode = "live"; configured accounts: none'],
        id="live-without-an-account",
    ),
    pytest.param(
        BASE
        + 'mode = "live"\naccount = "main"\n'
        + ACCOUNT
        + 'rest_url = "https://api.binance.com"',
        [
            "accounts[0].rest_url: 'https://api.binance.com' is not a test venue (testnet, demo"
            " or loopback): trading real money needs allow_mainnet = true on this account"
        ],
        id="mainnet-needs-allow-mainnet",
    ),
    pytest.param(
        'exchanges = "binance"', ["exchanges: expected an array, got 'binance'"], id="not-array"
    ),
    pytest.param("http = 5", ["http: expected a table, got 5"], id="not-table"),
    pytest.param(
        '[logging]\nlevel = "info"',
        [
            "logging.level: must be one of 'TRACE', 'DEBUG', 'INFO', 'SUCCESS', 'WARNING',"
            " 'ERROR', 'CRITICAL', got 'info'"
        ],
        id="bad-log-level",
    ),
    pytest.param(
        '[[alerts.webhooks]]\nurl = "https://hooks.example/x"\nformat = "teams"',
        ["alerts.webhooks[0].format: must be one of 'json', 'slack', 'discord', got 'teams'"],
        id="bad-webhook-format",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_each_problem_is_one_line_with_its_field_path(text: str, expected: list[str]) -> None:
    assert problems(text) == tuple(expected)


def test_every_problem_is_reported_at_once() -> None:
    text = """
    [http]
    port = "x"
    token_env = "lower"

    [backoff]
    multiplier = 0.5

    [[exchanges]]
    name = "binance"
    backof = 1

    [[exchanges]]
    name = "binance"

    [[bots]]
    id = "a"
    exchange = "nope"
    symbol = "btc/usdt"
    mode = "live"
    [bots.risk]
    stop_loss_pct = -2
    max_open_positions = 0

    [[accounts]]
    name = "main"
    api_key_env = "K"
    api_secret = "s3cr3t"

    [[bots]]
    exchange = "binance"
    symbol = "ETH/USDT"
    order_quote = "x"

    [[bots]]
    id = "a"
    exchange = "binance"
    symbol = "SOL/USDT"
    """
    assert problems(text) == (
        "accounts[0].api_secret: literal secrets are not allowed in config;"
        " name an environment variable with api_secret_env",
        "backoff.multiplier: must be >= 1, got 0.5",
        "exchanges[0].backof: unknown key",
        "bots[0].symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'btc/usdt'",
        "bots[0].risk.max_open_positions: must be >= 1, got 0",
        "bots[0].risk.stop_loss_pct: must be > 0 and < 100, got -2",
        "bots[1].id: required field missing",
        "bots[1].order_quote: expected a decimal number, got 'x'",
        "accounts[0].api_secret_env: required field missing",
        "http.port: expected int, got 'x'",
        "http.token_env: must be the NAME of an environment variable (UPPER_CASE letters,"
        " digits, '_'), not a secret (value not shown)",
        "exchanges[1].name: duplicate exchange name 'binance'",
        "bots[0].exchange: unknown exchange 'nope'; configured: binance",
        'bots[0].account: required when mode = "live"; configured accounts: main',
        "bots[2].id: duplicate bot id 'a'",
    )


def test_a_literal_secret_never_appears_in_the_problems() -> None:
    text = BASE + ACCOUNT + 'api_key = 12\ntoken = ["tok-abc"]\nsecret = "zzz-9"'
    lines = problems(text)
    assert lines == (
        "accounts[0].token: literal secrets are not allowed in config;"
        " name an environment variable with token_env",
        "accounts[0].secret: literal secrets are not allowed in config;"
        " name an environment variable with secret_env",
        # A number is not a secret; it is just an unknown key.
        "accounts[0].api_key: unknown key",
    )
    assert not any("tok-abc" in line or "zzz-9" in line for line in lines)


def test_a_bot_spec_from_the_control_api_gets_the_same_checks() -> None:
    config = parse_config(BASE)
    spec = {"id": "b2", "exchange": "binance", "symbol": "BTC/USDT", "params": {"fast": 5}}
    assert parse_bot_spec(spec, config=config).params == {"fast": 5}

    def problems_of(spec: object) -> tuple[str, ...]:
        with pytest.raises(ConfigError) as info:
            parse_bot_spec(spec, config=config)
        return info.value.problems

    assert problems_of({**spec, "id": "b 2", "exchange": "kraken", "colour": "red"}) == (
        "bot.id: must be 1-24 letters, digits, '-' or '_', got 'b 2'",
        "bot.colour: unknown key",
        "bot.exchange: unknown exchange 'kraken'; configured: binance",
    )
    assert problems_of({**spec, "params": {"fast": 0, "fsat": 1}}) == (
        "bot.params.fast: must be > 0, got 0",
        "bot.params.fsat: unknown key (expected one of fast, slow, price, bar_s)",
    )
    assert problems_of([1]) == ("bot: expected a table of bot settings, got list",)


def test_a_bad_bot_field_does_not_hide_its_strategy_problems() -> None:
    text = """
    [[exchanges]]
    name = "binance"

    [[bots]]
    id = "a"
    exchange = "binance"
    symbol = "btcusdt"
    strategy = "momentum"

    [[bots]]
    id = "b"
    exchange = "binanse"
    symbol = "ETHUSDT"
    order_quote = -1
    params = { fast = 0, fsat = 5 }
    """
    assert problems(text) == (
        "bots[0].symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'btcusdt'",
        "bots[1].symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'ETHUSDT'",
        "bots[1].order_quote: must be > 0, got -1",
        "bots[1].exchange: unknown exchange 'binanse'; configured: binance",
        "bots[0].strategy: unknown strategy 'momentum'; built-ins are rsi_reversion, sma_cross,"
        " threshold, or name your own as 'package.module:Class'",
        "bots[1].params.fast: must be > 0, got 0",
        "bots[1].params.fsat: unknown key (expected one of fast, slow, price, bar_s)",
    )


def test_a_spawn_spec_gets_every_problem_in_one_answer() -> None:
    config = parse_config(BASE)

    def problems_of(spec: dict[str, object]) -> tuple[str, ...]:
        with pytest.raises(ConfigError) as info:
            parse_bot_spec(spec, config=config, running=("bot-1",))
        return info.value.problems

    bad_symbol = {"exchange": "binance", "symbol": "btc"}
    assert problems_of(
        {**bad_symbol, "id": "bot-1", "strategy": "sma_cross", "params": {"fsat": 1}}
    ) == (
        "bot.symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'btc'",
        "bot.params.fsat: unknown key (expected one of fast, slow, price, bar_s)",
        "bot.id: a bot with id 'bot-1' is already running",
    )
    assert problems_of({**bad_symbol, "id": "new", "strategy": "momentum", "mode": "live"}) == (
        "bot.symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'btc'",
        "bot.strategy: unknown strategy 'momentum'; built-ins are rsi_reversion, sma_cross,"
        " threshold, or name your own as 'package.module:Class'",
        # refused as live, not also "bot.account: required": the account is not the problem
        "bot.mode: live bots are declared in the config file only (their account reconciles"
        " them before they trade); spawn paper bots here",
    )


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugins:
    return Plugins.on_path(tmp_path, monkeypatch)


def test_plugins_are_module_names_imported_when_the_config_is_checked(plugins: Plugins) -> None:
    name, imported = plugins.marker()
    config = parse_config(f'plugins = ["{name}"]\n' + BASE)
    assert config.plugins == (name,)
    assert imported.exists()  # a typo or a broken plugin is found now, not at a spawn

    broken = plugins.write('raise KeyError("API_URL")\n')
    assert problems(
        f'plugins = ["{name}", "mypkg.strats:Mine", "{broken}", "no_such_plugin_x", "2fast"]\n'
        + BASE
    ) == (
        "plugins: must be module names like 'mypkg.strategies' (the module, not"
        " 'module:Class'), got 'mypkg.strats:Mine', '2fast'",
        f"plugins[2]: importing module {broken!r} failed: KeyError: 'API_URL'"
        f" (at {plugins.path(broken)}:1)",
        "plugins[3]: cannot import module 'no_such_plugin_x': No module named 'no_such_plugin_x'",
    )
    assert problems('plugins = "mypkg.strats"\n' + BASE) == (
        "plugins: expected an array, got 'mypkg.strats'",
    )


def test_the_secrets_table_itself_is_not_a_secret() -> None:
    assert parse_config('[secrets]\nfile = "secrets.toml"').secrets.file == "secrets.toml"


def test_invalid_toml_names_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("a = ", source="conf.toml")
    (line,) = info.value.problems
    assert line.startswith("conf.toml: invalid TOML: ")


def test_load_config_reports_an_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert info.value.problems == (f"{missing}: cannot read config: No such file or directory",)
    good = tmp_path / "good.toml"
    good.write_text(BASE)
    assert load_config(good).bots[0].id == "bot-1"


def test_resolve_secret_reads_the_file_first_then_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text('BINANCE_KEY = "from-file"\nEMPTY = ""\nNUMBER = 5\n')
    secrets = SecretsConfig(file=str(path))
    environ = {"BINANCE_KEY": "from-env", "OTHER": "env-only", "EMPTY": "env-fills-empty"}
    assert resolve_secret("BINANCE_KEY", secrets, environ=environ) == "from-file"
    assert resolve_secret("OTHER", secrets, environ=environ) == "env-only"
    assert resolve_secret("EMPTY", secrets, environ=environ) == "env-fills-empty"
    assert resolve_secret("OTHER", SecretsConfig(), environ=environ) == "env-only"

    with pytest.raises(ConfigError) as info:
        resolve_secret("MISSING", secrets, environ=environ)
    assert info.value.problems == (
        f"MISSING: secret is not set (looked in the environment and secrets file {str(path)!r})",
    )
    with pytest.raises(ConfigError) as info:
        resolve_secret("NUMBER", secrets, environ=environ)
    assert info.value.problems == (
        f"secrets.file: NUMBER in secrets file {str(path)!r} must be a string",
    )


def test_resolve_secret_never_prints_file_content(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text('KEY = "sk-do-not-print\n')  # unterminated string
    with pytest.raises(ConfigError) as info:
        resolve_secret("KEY", SecretsConfig(file=str(path)), environ={})
    (line,) = info.value.problems
    assert line.startswith(f"secrets.file: secrets file {str(path)!r} is not valid TOML: ")
    assert "sk-do-not-print" not in line


@pytest.mark.parametrize(
    ("content", "code", "expected"),
    [
        pytest.param(
            BASE + "[bots.risk]\nstop_loss_pct = -2",
            2,
            "bots[0].risk.stop_loss_pct: must be > 0 and < 100, got -2\n",
            id="bad",
        ),
        pytest.param(
            BASE + ACCOUNT + 'passphrase = "x"',
            2,
            "accounts[0].passphrase: literal secrets are not allowed in config;"
            " name an environment variable with passphrase_env\n",
            id="secret",
        ),
        pytest.param(BASE, 0, "OK\n", id="good"),
        pytest.param(
            "# nothing here yet\n",
            2,
            "{path}: the config is empty; name at least one [[exchanges]] entry, and [[bots]] to"
            " trade from the start (see docs/examples/)\n",
            id="empty",
        ),
        pytest.param(
            BASE.replace('"BTC/USDT"', '"btc"') + 'strategy = "momentum"\n'
            '[[bots]]\nid = "b2"\nexchange = "binance"\nsymbol = "eth"\nparams = { fsat = 1 }\n',
            2,
            "bots[0].symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'btc'\n"
            "bots[1].symbol: must be a unified BASE/QUOTE symbol like 'BTC/USDT', got 'eth'\n"
            "bots[0].strategy: unknown strategy 'momentum'; built-ins are rsi_reversion,"
            " sma_cross, threshold, or name your own as 'package.module:Class'\n"
            "bots[1].params.fsat: unknown key (expected one of fast, slow, price, bar_s)\n",
            id="bad-symbol-hides-nothing",
        ),
    ],
)
def test_run_py_check_config(tmp_path: Path, content: str, code: int, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content)
    result = subprocess.run(
        [sys.executable, "run.py", "--check-config", str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == code
    assert (result.stdout if code == 0 else result.stderr) == expected.format(path=path)


def test_run_py_check_config_reports_failing_plugins_as_problems(plugins: Plugins) -> None:
    """A plugin that raises at import, has a syntax error, exits at import or raises in
    ``__init__``: one problem line each, all in one run, exit 2 and no traceback."""
    raising = plugins.write('raise RuntimeError("boom at import")\n')
    broken = plugins.write("class S:\n    def on_tick(self:\n")
    exiting = plugins.write("import sys\nsys.exit(3)\n")
    constructing = plugins.write(
        "class S:\n    def __init__(self):\n        raise ValueError('boom in init')\n\n"
        "    def on_tick(self, ticker, ctx):\n        return None\n"
    )
    bots = "".join(
        f'[[bots]]\nid = "b{i}"\nexchange = "binance"\nsymbol = "BTC/USDT"\n'
        f'strategy = "{module}:S"\n'
        for i, module in enumerate((raising, broken, exiting, constructing))
    )
    path = plugins.directory / "config.toml"
    path.write_text('[[exchanges]]\nname = "binance"\n' + bots)
    result = subprocess.run(
        [sys.executable, "run.py", "--check-config", str(path)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(plugins.directory)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 4, result.stderr
    assert lines[0] == (
        f"bots[0].strategy: importing module {raising!r} failed: RuntimeError: boom at import"
        f" (at {plugins.path(raising)}:1)"
    )
    assert lines[1].startswith(
        f"bots[1].strategy: importing module {broken!r} failed: SyntaxError: "
    )
    assert lines[1].endswith(f"({broken}.py, line 2)")
    assert lines[2] == (
        f"bots[2].strategy: importing module {exiting!r} failed: SystemExit: 3"
        f" (at {plugins.path(exiting)}:2)"
    )
    assert lines[3] == (
        f"bots[3].strategy: constructing '{constructing}:S' failed: ValueError: boom in init"
        f" (at {plugins.path(constructing)}:3)"
    )
