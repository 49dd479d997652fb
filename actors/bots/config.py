"""A bot's configuration: what it trades, its risk limits, paper venue and market rules.

Units live in names (``_s`` seconds, ``_pct`` percent, ``_quote`` amounts in the quote
currency). Secrets never appear here: a live bot names its ``account``, whose config names
the environment variables that hold the keys.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import attrs

from actors.schema import (
    FieldValueError,
    at_least_one,
    check,
    name_like,
    non_negative,
    percent,
    positive,
    unified_symbol,
)

__all__ = [
    "BotConfig",
    "FieldValueError",
    "MarketConfig",
    "PaperConfig",
    "RiskConfig",
]


@attrs.frozen
class RiskConfig:
    """Checked before every order. Optional exits are off when unset."""

    max_order_quote: Decimal = attrs.field(default=Decimal("1000"), validator=positive)
    max_position_quote: Decimal = attrs.field(default=Decimal("5000"), validator=positive)
    max_open_positions: int = attrs.field(default=1, validator=at_least_one)
    daily_loss_limit_quote: Decimal = attrs.field(default=Decimal("500"), validator=positive)
    max_orders_per_minute: int = attrs.field(default=10, validator=at_least_one)
    max_price_age_s: float = attrs.field(default=5.0, validator=positive)
    max_tick_move_pct: float = attrs.field(default=5.0, validator=percent)
    # Consecutive agreeing ticks that establish a price: at start, and after a jump.
    price_confirm_ticks: int = attrs.field(default=3, validator=at_least_one)
    stop_loss_pct: float | None = attrs.field(default=None, validator=percent)
    take_profit_pct: float | None = attrs.field(default=None, validator=positive)
    trailing_stop_pct: float | None = attrs.field(default=None, validator=percent)


@attrs.frozen
class PaperConfig:
    """Paper executor: fills at bid/ask with fee and slippage; starting balance in quote."""

    quote_balance: Decimal = attrs.field(default=Decimal("10000"), validator=positive)
    fee_pct: Decimal = attrs.field(default=Decimal("0.1"), validator=non_negative)
    slippage_pct: Decimal = attrs.field(default=Decimal("0"), validator=non_negative)


@attrs.frozen
class MarketConfig:
    """The market's trading rules; orders are rounded to these steps."""

    tick_size: Decimal = attrs.field(default=Decimal("0.01"), validator=positive)
    lot_size: Decimal = attrs.field(default=Decimal("0.00001"), validator=positive)
    min_notional: Decimal = attrs.field(default=Decimal("5"), validator=non_negative)


@attrs.frozen
class BotConfig:
    id: str = attrs.field()
    exchange: str = attrs.field()
    symbol: str = attrs.field(validator=unified_symbol)
    strategy: str = attrs.field(default="sma_cross")  # built-in name or "package.module:Class"
    params: dict[str, Any] = attrs.field(factory=dict)
    mode: Literal["paper", "live"] = "paper"
    order_quote: Decimal = attrs.field(default=Decimal("100"), validator=positive)
    close_on_fallback: bool = True  # may close (never open) positions on REST-fallback prices
    risk: RiskConfig = attrs.field(factory=RiskConfig)
    paper: PaperConfig = attrs.field(factory=PaperConfig)
    market: MarketConfig = attrs.field(factory=MarketConfig)
    account: str | None = None  # mode = "live": the [[accounts]] entry that trades it

    @id.validator
    def _id(self, attribute: attrs.Attribute[Any], value: str) -> None:
        check(name_like(value, 24), "must be 1-24 letters, digits, '-' or '_'", value)
