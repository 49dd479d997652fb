"""The strategy API and how strategies are found and configured.

A strategy is a class with ``on_tick(ticker, ctx) -> Signal | None``; optionally
``on_trade(trade, ctx) -> Signal | None``, ``on_start(ctx)`` and ``on_stop(ctx)``. It may declare
``price_source`` (``"mid"``/``"last"``), ``bar_s`` (bar length, 0 for none) and ``history``
(how many prices/bars to keep) as attributes; the bot reads them once, after construction.

Config names a built-in (``strategy = "sma_cross"``) or the user's own class by dotted path
(``strategy = "mypkg.strats:MyStrategy"``). A class with a ``Params`` attribute (an attrs class)
is constructed with one argument, the bot's ``params`` table structured into ``Params``; a class
without ``Params`` is constructed with no argument and must get an empty ``params`` table.

Strategies are long-only on spot: ``buy`` opens a position, ``sell`` reduces or closes it. What a
signal does not say comes from the bot's config (``order_quote`` for a buy's size; the whole
position for a sell's).

``load_strategy(bot_config, path_prefix)`` (``build_strategy`` from a raw name and params)
raises ``ConfigError`` whose lines carry field paths (``bots[0].params.fast: must be > 0, got 0``);
``strategy_problems`` returns the same lines, so the config loader can report everything at once.

Decisions:

* Plugins are trusted code named by the config file. Naming a module imports it, which runs its
  code, so a spec from the control API passes ``plugins`` (the modules the config allows) and a
  module outside it is refused by name, before anything is imported.
* Whatever the user's code raises while loading (at import, a syntax error, ``sys.exit()``, in
  ``__init__``) is one problem line naming the module and where it raised: a plugin's bug is a
  problem with the config that names it, not a crash of ``--check-config`` or of a spawn.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Set as AbstractSet
from decimal import Decimal
from types import ModuleType
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from actors.bots.config import BotConfig
from actors.bots.context import PriceSource, StrategyContext
from actors.bots.params import structure_params
from actors.errors import ConfigError, describe_error
from actors.messages import Side, Ticker

BUILTIN_STRATEGIES: dict[str, str] = {
    "rsi_reversion": "actors.bots.strategies.rsi_reversion:RsiReversion",
    "sma_cross": "actors.bots.strategies.sma_cross:SmaCross",
    "threshold": "actors.bots.strategies.threshold:Threshold",
}


def _positive_or_none(_inst: Any, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is not None and not isinstance(value, Decimal):
        # Booked money is Decimal, exact as the exchange quoted it: a float here would be a
        # silent rounding error.
        raise TypeError(
            f"Signal.{attribute.name} must be a Decimal, got {type(value).__name__} {value!r}"
        )
    if value is not None and not (value.is_finite() and value > 0):
        raise ValueError(f"Signal.{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(slots=True)
class Signal:
    """What a strategy wants. ``quote``: a buy's amount in quote (default ``order_quote``);
    ``size``: a sell's amount in base (default: the whole open position)."""

    side: Side
    quote: Decimal | None = attrs.field(default=None, validator=_positive_or_none)
    size: Decimal | None = attrs.field(default=None, validator=_positive_or_none)
    order_type: Literal["market", "limit"] = "market"
    price: Decimal | None = attrs.field(default=None, validator=_positive_or_none)
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"Signal.side must be 'buy' or 'sell', got {self.side!r}")
        if self.order_type not in ("market", "limit"):
            raise ValueError(
                f"Signal.order_type must be 'market' or 'limit', got {self.order_type!r}"
            )
        if (self.order_type == "limit") != (self.price is not None):
            raise ValueError("Signal.price is required for limit orders and only for them")
        if self.side == "buy" and self.size is not None:
            raise ValueError("a buy Signal is sized by quote, not size")
        if self.side == "sell" and self.quote is not None:
            raise ValueError("a sell Signal is sized by size, not quote")

    @classmethod
    def buy(
        cls, reason: str = "", *, quote: Decimal | None = None, price: Decimal | None = None
    ) -> Signal:
        return cls(
            "buy",
            quote=quote,
            order_type="market" if price is None else "limit",
            price=price,
            reason=reason,
        )

    @classmethod
    def sell(
        cls, reason: str = "", *, size: Decimal | None = None, price: Decimal | None = None
    ) -> Signal:
        return cls(
            "sell",
            size=size,
            order_type="market" if price is None else "limit",
            price=price,
            reason=reason,
        )

    @classmethod
    def close(cls, reason: str = "") -> Signal:
        """Sell the whole open position at market."""
        return cls("sell", reason=reason)


@runtime_checkable
class Strategy(Protocol):
    def on_tick(self, ticker: Ticker, ctx: StrategyContext) -> Signal | None: ...


def is_module_name(name: str) -> bool:
    """``package.module``: dot-separated Python identifiers (a module, not ``module:Class``)."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def strategy_module(name: str) -> str | None:
    """The module naming strategy ``name`` imports, or None when it names none (an unknown
    built-in, a malformed path). Nothing is imported."""
    module, sep, attr = BUILTIN_STRATEGIES.get(name, name).partition(":")
    return module if sep and module and attr else None


_BUILTIN_MODULES = frozenset(target.partition(":")[0] for target in BUILTIN_STRATEGIES.values())


def import_plugin(module_name: str, path: str) -> ModuleType:
    """Import a strategy module; ``ConfigError`` (at ``path``) for whatever importing it raised.

    A plugin's import runs the user's code: a syntax error, an exception at import, even
    ``sys.exit()`` is a problem with the config that named it, reported as one line like every
    other problem, not a traceback (``--check-config`` exits 2, not 1)."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError([f"{path}: cannot import module {module_name!r}: {exc}"]) from exc
    except (Exception, SystemExit) as exc:
        raise ConfigError(
            [f"{path}: importing module {module_name!r} failed: {_raised(exc)}"]
        ) from exc


def _raised(exc: BaseException) -> str:
    """One line: the exception and where the user's code raised it (its innermost frame; a
    SyntaxError's message names its own file and line, and its traceback is importlib's)."""
    text = " ".join(describe_error(exc).split())  # a multi-line message stays one problem line
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and not isinstance(exc, SyntaxError):
        text += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return text


def resolve_strategy_class(
    name: str, path: str, *, plugins: AbstractSet[str] | None = None
) -> type:
    """The class named by ``name``; ConfigError (with ``path``) if there is none.

    ``plugins`` is the trust decision, made before anything is imported: ``None`` (the config
    file, which is trusted code) imports any module; a set (a spec from the control API) allows
    the built-in strategies' modules and those modules only, so a request can never make the
    daemon import, and so run, a module the operator did not name."""
    target = BUILTIN_STRATEGIES.get(name)
    if target is None:
        if ":" not in name:
            builtins = ", ".join(sorted(BUILTIN_STRATEGIES))
            raise ConfigError(
                [
                    f"{path}: unknown strategy {name!r}; built-ins are {builtins}, "
                    "or name your own as 'package.module:Class'"
                ]
            )
        target = name
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path:
        raise ConfigError([f"{path}: {name!r} must be 'package.module:Class'"])
    if plugins is not None and module_name not in plugins | _BUILTIN_MODULES:
        allowed = ", ".join(sorted(plugins)) or "none"
        raise ConfigError(
            [
                f"{path}: module {module_name!r} is not an allowed plugin; a spawned bot runs a"
                " built-in strategy or one from a module the config file allows (the top-level"
                f" plugins list, or a configured bot's strategy); allowed: {allowed}"
            ]
        )
    module = import_plugin(module_name, path)
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                [f"{path}: module {module_name!r} has no attribute {attr_path!r}"]
            ) from None
    if not isinstance(obj, type):
        raise ConfigError([f"{path}: {name!r} is not a class"])
    if not callable(getattr(obj, "on_tick", None)):
        raise ConfigError([f"{path}: {name!r} has no on_tick(ticker, ctx) method"])
    params_cls = getattr(obj, "Params", None)
    if params_cls is not None and not attrs.has(params_cls):
        raise ConfigError([f"{path}: {name!r}.Params must be an attrs class"])
    return obj


def build_strategy(
    name: str,
    params: Any,
    path_prefix: str = "bots[0]",
    *,
    plugins: AbstractSet[str] | None = None,
) -> Strategy:
    """Strategy ``name`` constructed with ``params`` (a ``[[bots]]`` table's ``strategy`` and
    ``params``); ``ConfigError`` with field paths under ``path_prefix``."""
    strategy_path = f"{path_prefix}.strategy"
    cls = resolve_strategy_class(name, strategy_path, plugins=plugins)
    params_cls = getattr(cls, "Params", None)
    params_path = f"{path_prefix}.params"
    if params_cls is None:
        if params:
            keys = ", ".join(sorted(params))
            raise ConfigError([f"{params_path}: {name!r} takes no parameters, got {keys}"])
        arguments: tuple[Any, ...] = ()
    else:
        arguments = (structure_params(params, params_cls, params_path),)
    try:
        strategy: Strategy = cls(*arguments)
    except Exception as exc:  # the user's constructor: its failure is the config's problem
        raise ConfigError(
            [f"{strategy_path}: constructing {name!r} failed: {_raised(exc)}"]
        ) from exc
    return strategy


def load_strategy(
    config: BotConfig, path_prefix: str = "bots[0]", *, plugins: AbstractSet[str] | None = None
) -> Strategy:
    return build_strategy(config.strategy, config.params, path_prefix, plugins=plugins)


def strategy_problems(
    name: str,
    params: Any,
    path_prefix: str = "bots[0]",
    *,
    plugins: AbstractSet[str] | None = None,
) -> list[str]:
    """``build_strategy``'s problems as lines. It takes the raw ``strategy`` and ``params``
    rather than a ``BotConfig`` so that a bot whose other fields are wrong (a bad symbol) still
    has its strategy checked: every problem is reported in one run."""
    try:
        build_strategy(name, params, path_prefix, plugins=plugins)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def bot_problems(
    config: BotConfig, path_prefix: str = "bots[0]", *, plugins: AbstractSet[str] | None = None
) -> list[str]:
    """What is wrong with the bot alone (its account's existence is the config's check)."""
    return strategy_problems(config.strategy, config.params, path_prefix, plugins=plugins)


def context_for(strategy: Strategy, bot_id: str, symbol: str, **views: Any) -> StrategyContext:
    """A context shaped by what the strategy declares (price source, bar length, history)."""
    source: PriceSource = getattr(strategy, "price_source", "mid")
    if source not in ("mid", "last"):
        raise ConfigError(
            [
                f"strategy {type(strategy).__name__}: price_source must be 'mid' or 'last', "
                f"got {source!r}"
            ]
        )
    return StrategyContext(
        bot_id=bot_id,
        symbol=symbol,
        price_source=source,
        bar_s=float(getattr(strategy, "bar_s", 0.0) or 0.0),
        history=int(getattr(strategy, "history", 500)),
        **views,
    )
