"""Venue fills and booking each one once, whichever way it arrives first (pure).

A live order's fills reach us up to three ways: in the order response itself (Binance's FULL
response lists them), on the user data stream, and from the account's trade list when we
reconcile. ``FillDeduplicator`` accepts a fill the first time its key is seen and refuses
every later copy, so the book counts it once.

Decisions:

* **The key is (symbol, trade id)**: the venue's trade ids are unique per symbol, and every
  source carries them (Binance: ``tradeId`` in FULL fills, ``t`` in ``executionReport``,
  ``id`` in ``myTrades``). Trade ids are strings here so venues with string ids fit too.
* **Bounded memory.** At most ``max_keys`` keys are remembered, the oldest forgotten first. A
  copy of a fill older than that many later fills would be accepted again, so the bound is
  far above what one run sees between a fill and its last echo (seconds), and a restart must
  ``seed`` the keys it already booked before it replays any source.
* **Fees.** A fill's commission can be in the quote asset, the base asset, or a third asset
  (BNB). ``fee_in_quote`` converts the first two exactly and returns None for the third: that
  needs a price the fill does not carry, and guessing one would misstate PnL.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

import attrs

__all__ = ["FillDeduplicator", "FillKey", "VenueFill", "fee_in_quote"]

FillKey = tuple[str, str]  # (native symbol, trade id)
FillSource = Literal["response", "stream", "trades"]


@attrs.frozen(slots=True)
class VenueFill:
    """One trade of one of our orders, as the venue reported it."""

    symbol: str  # native
    trade_id: str
    order_id: str
    client_order_id: str
    side: Literal["buy", "sell"]
    price: Decimal
    quantity: Decimal
    commission: Decimal
    commission_asset: str | None
    time_ms: int  # the venue's transaction time
    maker: bool | None
    source: FillSource = attrs.field(eq=False)

    @property
    def key(self) -> FillKey:
        return (self.symbol, self.trade_id)


def fee_in_quote(fill: VenueFill, base_asset: str, quote_asset: str) -> Decimal | None:
    """The fill's commission in the quote asset, or None when it was paid in a third asset."""
    if fill.commission == 0:
        return Decimal(0)
    if fill.commission_asset == quote_asset:
        return fill.commission
    if fill.commission_asset == base_asset:
        return fill.commission * fill.price
    return None


class FillDeduplicator:
    __slots__ = ("_max_keys", "_seen")

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._max_keys = max_keys
        self._seen: dict[FillKey, None] = {}

    def accept(self, fill: VenueFill) -> bool:
        """True the first time this fill's key is seen (book it); False for every copy."""
        return self._remember(fill.key)

    def seed(self, keys: Iterable[FillKey]) -> None:
        """Keys already booked (at a restart, before replaying any source)."""
        for key in keys:
            self._remember(key)

    def seen(self, key: FillKey) -> bool:
        return key in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def _remember(self, key: FillKey) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._max_keys:
            del self._seen[next(iter(self._seen))]
        return True
