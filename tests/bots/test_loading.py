"""Strategy names and params: field-path errors in the config's format; live mode refused."""

from __future__ import annotations

import pytest

from actors.bots import bot_problems, load_strategy, make_executor, strategy_problems
from actors.bots.strategies.sma_cross import SmaCross
from actors.errors import ConfigError, ExecutionError
from tests.bots.helpers import bot_config
from tests.bots.strategies import AlwaysBuy, LimitOnce


def problems(strategy: str, params: dict, prefix: str = "bots[0]") -> list[str]:
    return strategy_problems(bot_config(strategy, params), prefix)


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
