"""Events for the recording tests: deterministic, with awkward values (trailing zeros, None)."""

from __future__ import annotations

from decimal import Decimal

from actors.messages import Ticker, Trade

DAY = 1_780_000_000.0  # 2026-05-28 UTC, far from midnight


def ticker(
    i: int, *, symbol: str = "BTC/USDT", exchange: str = "binance", ts: float = DAY
) -> Ticker:
    return Ticker(
        exchange,
        symbol,
        Decimal(f"{60000 + i}.10"),
        Decimal(f"{60000 + i}.2000"),
        None if i % 3 else Decimal("60000.15"),
        Decimal("1.5E-7") if i % 2 else None,
        Decimal("0.00100000"),
        None if i % 5 == 0 else ts + i - 0.004,
        ts + i,
        "rest" if i % 7 == 0 else "ws",
        None if i % 4 == 0 else 10_000 + i,
    )


def trade(i: int, *, symbol: str = "BTC/USDT", exchange: str = "binance", ts: float = DAY) -> Trade:
    return Trade(
        exchange,
        symbol,
        Decimal(f"{60000 + i}.00"),
        Decimal("0.0300"),
        "buy" if i % 2 else "sell",
        None if i % 6 == 0 else str(1_000_000 + i),
        ts + i + 0.25 - 0.003,
        ts + i + 0.25,
        None,
    )
