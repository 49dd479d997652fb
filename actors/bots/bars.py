"""Time bars (OHLC) and bounded price histories built from ticks; pure, no I/O.

A bar covers ``[start_ts, start_ts + bar_s)`` of wall-clock time (the tick's ``received_ts``, the
one time every ticker has). A bar is *completed* when the first tick of a later bucket arrives:
until then its close can still change, so strategies only ever see completed bars. Buckets with
no tick produce no bar (no synthesized flat bars): a quiet market must not look like a price.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Generic, TypeVar, overload

import attrs

T = TypeVar("T")


@attrs.frozen(slots=True)
class Bar:
    start_ts: float
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    ticks: int


class Series(Sequence[T], Generic[T]):
    """A read-only view of a bounded history (newest last), handed to strategies.

    It wraps the owner's deque without copying: strategies read it, only the bot appends.
    """

    __slots__ = ("_items",)

    def __init__(self, items: deque[T]):
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return tuple(self._items)[index]
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def tail(self, n: int) -> tuple[T, ...]:
        """The newest ``n`` items (fewer if the history is shorter), oldest first."""
        size = len(self._items)
        return tuple(itertools.islice(self._items, max(0, size - n), size))

    def __repr__(self) -> str:
        return f"Series({list(self._items)!r})"


@attrs.define
class BarBuilder:
    bar_s: float
    maxlen: int = 500
    completed: deque[Bar] = attrs.field(init=False)
    _bucket: int | None = attrs.field(default=None, init=False)
    _open: Decimal = attrs.field(default=Decimal(0), init=False)
    _high: Decimal = attrs.field(default=Decimal(0), init=False)
    _low: Decimal = attrs.field(default=Decimal(0), init=False)
    _close: Decimal = attrs.field(default=Decimal(0), init=False)
    _ticks: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if not (self.bar_s > 0 and math.isfinite(self.bar_s)):
            raise ValueError(f"bar_s must be > 0, got {self.bar_s!r}")
        self.completed = deque(maxlen=self.maxlen)

    def update(self, price: Decimal, ts: float) -> Bar | None:
        """Add one tick; returns the bar this tick completed, if any.

        A tick older than the current bucket (clock step back, reordered delivery) is folded into
        the current bar rather than reopening a closed one: closed bars are immutable.
        """
        bucket = math.floor(ts / self.bar_s)
        done: Bar | None = None
        if self._bucket is None:
            self._start(bucket, price)
            return None
        if bucket > self._bucket:
            done = Bar(
                start_ts=self._bucket * self.bar_s,
                open=self._open,
                high=self._high,
                low=self._low,
                close=self._close,
                ticks=self._ticks,
            )
            self.completed.append(done)
            self._start(bucket, price)
            return done
        self._high = max(self._high, price)
        self._low = min(self._low, price)
        self._close = price
        self._ticks += 1
        return None

    def _start(self, bucket: int, price: Decimal) -> None:
        self._bucket = bucket
        self._open = self._high = self._low = self._close = price
        self._ticks = 1
