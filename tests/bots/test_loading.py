"""Strategy names and params: field-path errors in the config's format; live mode refused;
a plugin's failures while loading are problem lines; an allow-list refuses before importing."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.bots import bot_problems, load_strategy, make_executor, strategy_problems
from actors.bots.strategies.sma_cross import SmaCross
from actors.errors import ConfigError, ExecutionError
from tests.bots.helpers import bot_config
from tests.bots.plugins import Plugins
from tests.bots.strategies import AlwaysBuy, LimitOnce


def problems(strategy: str, params: dict, prefix: str = "bots[0]") -> list[str]:
    return strategy_problems(strategy, params, prefix)


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Plugins:
    return Plugins.on_path(tmp_path, monkeypatch)


def test_builtins_load_with_their_params():
    strategy = load_strategy(bot_config("sma_cross", {"fast": 3, "slow": 7, "price": "last"}))
    assert isinstance(strategy, SmaCross)
    assert (strategy.params.fast, strategy.params.slow, strategy.price_source) == (3, 7, "last")
    assert load_strategy(bot_config("rsi_reversion", {})).params.period == 14


def test_validator_error_names_the_field():
    assert problems("sma_cross", {"fast": 0}) == ["bots[0].params.fast: must be > 0, got 0"]


def test_unknown_params_key_is_an_error():
    assert problems("sma_cross", {"fsat": 5}, "bots[3]") == [
        "bots[3].params.fsat: unknown key (expected one of fast, slow, price, bar_s)"
    ]


def test_every_problem_is_reported_once_per_line():
    assert problems("sma_cross", {"slow": "x", "bogus": 1}) == [
        "bots[0].params.slow: expected int, got 'x'",
        "bots[0].params.bogus: unknown key (expected one of fast, slow, price, bar_s)",
    ]


def test_cross_field_and_type_errors():
    assert problems("sma_cross", {"fast": 10, "slow": 5}) == [
        "bots[0].params.slow: must be > fast (10), got 5"
    ]
    assert problems("sma_cross", {"fast": True}) == ["bots[0].params.fast: expected int, got True"]
    assert problems("sma_cross", {"price": "close"}) == [
        "bots[0].params.price: must be one of 'mid', 'last', got 'close'"
    ]
    assert problems("rsi_reversion", {"oversold": 80, "overbought": 70}) == [
        "bots[0].params.overbought: must be > oversold (80), got 70"
    ]
    assert problems("rsi_reversion", {"oversold": 0}) == [
        "bots[0].params.oversold: must be > 0 and < 100, got 0"
    ]
    assert problems("threshold", {}) == ["bots[0].params: set buy_below, sell_above or both"]
    assert problems("threshold", {"buy_below": 10, "sell_above": "9.5"}) == [
        "bots[0].params.sell_above: must be > buy_below (10), got 9.5"
    ]
    assert problems("sma_cross", {"fast": 0, "slow": "x", "price": 1, "zz": 0}) == [
        "bots[0].params.fast: must be > 0, got 0",
        "bots[0].params.slow: expected int, got 'x'",
        "bots[0].params.price: must be one of 'mid', 'last', got 1",
        "bots[0].params.zz: unknown key (expected one of fast, slow, price, bar_s)",
    ]
    assert problems("threshold", {"buy_below": "cheap"}) == [
        "bots[0].params.buy_below: expected a decimal number, got 'cheap'"
    ]


def test_decimal_params_are_exact():
    strategy = load_strategy(bot_config("threshold", {"buy_below": 0.1}))
    assert str(strategy.params.buy_below) == "0.1"


def test_unknown_strategy_name():
    assert problems("momentum", {}, "bots[2]") == [
        "bots[2].strategy: unknown strategy 'momentum'; built-ins are rsi_reversion, sma_cross, "
        "threshold, or name your own as 'package.module:Class'"
    ]


def test_dotted_path_errors():
    assert problems("nosuchpkg.strats:X", {}) == [
        "bots[0].strategy: cannot import module 'nosuchpkg.strats': No module named 'nosuchpkg'"
    ]
    assert problems("tests.bots.strategies:Missing", {}) == [
        "bots[0].strategy: module 'tests.bots.strategies' has no attribute 'Missing'"
    ]
    assert problems("tests.bots.strategies:NoOnTick", {}) == [
        "bots[0].strategy: 'tests.bots.strategies:NoOnTick' has no on_tick(ticker, ctx) method"
    ]
    assert problems("tests.bots.strategies:NOT_A_CLASS", {}) == [
        "bots[0].strategy: 'tests.bots.strategies:NOT_A_CLASS' is not a class"
    ]
    assert problems("tests.bots.strategies", {}) == [
        "bots[0].strategy: unknown strategy 'tests.bots.strategies'; built-ins are rsi_reversion, "
        "sma_cross, threshold, or name your own as 'package.module:Class'"
    ]


def test_users_own_strategy_by_dotted_path():
    assert isinstance(load_strategy(bot_config("tests.bots.strategies:AlwaysBuy", {})), AlwaysBuy)
    limit = load_strategy(bot_config("tests.bots.strategies:LimitOnce", {"offset": "2.5"}))
    assert isinstance(limit, LimitOnce)
    assert str(limit.params.offset) == "2.5"
    # attrs' own validators (frame local "attr") are located too
    assert problems("tests.bots.strategies:LimitOnce", {"offset": 0}) == [
        "bots[0].params.offset: 'offset' must be > 0: 0"
    ]
    assert problems("tests.bots.strategies:AlwaysBuy", {"x": 1}) == [
        "bots[0].params: 'tests.bots.strategies:AlwaysBuy' takes no parameters, got x"
    ]


def test_load_strategy_raises_config_error_with_problems():
    with pytest.raises(ConfigError) as info:
        load_strategy(bot_config("sma_cross", {"fast": -1, "slow": 0}), "bots[1]")
    assert info.value.problems == (  # every validator problem, not only the first
        "bots[1].params.fast: must be > 0, got -1",
        "bots[1].params.slow: must be > 0, got 0",
    )


def test_params_must_be_a_table():
    assert problems("sma_cross", [1, 2]) == [
        "bots[0].params: expected a table of parameters, got [1, 2]"
    ]  # type: ignore[arg-type]


def test_live_mode_needs_an_account_not_the_paper_factory():
    config = bot_config(mode="live")
    assert bot_problems(config, "bots[4]") == []  # the account is the whole config's check
    with pytest.raises(ExecutionError, match="names account None, which this daemon does not"):
        make_executor(config, [].append)


def test_nested_params_get_full_paths():
    name = "tests.bots.strategies:Nested"
    assert problems(
        name, {"main": {"weight": 0, "w": 1}, "legs": [{"weight": 2}, {"weight": "x"}]}
    ) == [
        "bots[0].params.main.weight: 'weight' must be >= 1: 0",
        "bots[0].params.main.w: unknown key (expected one of weight)",
        "bots[0].params.legs[1].weight: expected int, got 'x'",
    ]
    strategy = load_strategy(bot_config(name, {"legs": [{"weight": 3}]}))
    assert strategy.params.legs[0].weight == 3


def test_a_plugin_raising_at_import_is_one_problem_line_naming_where(plugins: Plugins) -> None:
    name = plugins.write(
        """
        import os

        raise RuntimeError("no model file in\\n" + os.sep + "models")
        """
    )
    assert problems(f"{name}:S", {}) == [
        f"bots[0].strategy: importing module {name!r} failed: RuntimeError: no model file in"
        f" /models (at {plugins.path(name)}:4)"
    ]


def test_a_plugin_with_a_syntax_error_is_one_problem_line(plugins: Plugins) -> None:
    name = plugins.write("class S:\n    def on_tick(self:\n        pass\n")
    (line,) = problems(f"{name}:S", {})
    assert line.startswith(f"bots[0].strategy: importing module {name!r} failed: SyntaxError: ")
    assert line.endswith(f"({name}.py, line 2)")


def test_a_plugin_exiting_at_import_does_not_exit_the_caller(plugins: Plugins) -> None:
    name = plugins.write("import sys\n\nsys.exit(3)\n")
    assert problems(f"{name}:S", {}) == [
        f"bots[0].strategy: importing module {name!r} failed: SystemExit: 3"
        f" (at {plugins.path(name)}:3)"
    ]


def test_a_plugin_missing_a_dependency_names_it(plugins: Plugins) -> None:
    name = plugins.write("import no_such_dependency_x\n")
    assert problems(f"{name}:S", {}) == [
        f"bots[0].strategy: cannot import module {name!r}: No module named 'no_such_dependency_x'"
    ]


def test_a_strategy_raising_in_its_constructor_is_one_problem_line(plugins: Plugins) -> None:
    name = plugins.write(
        """
        import attrs


        class Plain:
            def __init__(self):
                raise ValueError("needs a model file")

            def on_tick(self, ticker, ctx):
                return None


        @attrs.frozen
        class P:
            n: int = 1


        class WithParams:
            Params = P

            def __init__(self, params):
                self.ratio = 1 / (params.n - 1)

            def on_tick(self, ticker, ctx):
                return None
        """
    )
    assert problems(f"{name}:Plain", {}, "bots[1]") == [
        f"bots[1].strategy: constructing '{name}:Plain' failed: ValueError: needs a model file"
        f" (at {plugins.path(name)}:7)"
    ]
    assert problems(f"{name}:WithParams", {"n": 1}) == [
        f"bots[0].strategy: constructing '{name}:WithParams' failed: ZeroDivisionError:"
        f" division by zero (at {plugins.path(name)}:22)"
    ]
    assert problems(f"{name}:WithParams", {"n": 2}) == []


def test_an_allow_list_refuses_other_modules_before_importing_them(plugins: Plugins) -> None:
    refused, refused_flag = plugins.marker()
    allowed, allowed_flag = plugins.marker()
    trusted = frozenset({allowed})
    assert strategy_problems(f"{refused}:Strategy", {}, "bot", plugins=trusted) == [
        f"bot.strategy: module {refused!r} is not an allowed plugin; a spawned bot runs a"
        " built-in strategy or one from a module the config file allows (the top-level plugins"
        f" list, or a configured bot's strategy); allowed: {allowed}"
    ]
    assert not refused_flag.exists()
    with pytest.raises(ConfigError, match="allowed: none"):
        load_strategy(bot_config(f"{refused}:Strategy", {}), plugins=frozenset())
    assert not refused_flag.exists()

    assert strategy_problems(f"{allowed}:Strategy", {}, "bot", plugins=trusted) == []
    assert allowed_flag.exists()
    # Built-ins always load, by name or by their module's path; without a list anything loads.
    assert strategy_problems("sma_cross", {}, "bot", plugins=frozenset()) == []
    builtin = "actors.bots.strategies.threshold:Threshold"
    assert strategy_problems(builtin, {"buy_below": 1}, "bot", plugins=frozenset()) == []
    assert strategy_problems(f"{refused}:Strategy", {}, "bot") == []
    assert refused_flag.exists()
