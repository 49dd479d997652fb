"""Dropping duplicate and out-of-order frames by the exchange's sequence number, per key.

Decisions:

* A frame whose sequence is above the highest seen for its key is accepted and becomes the
  highest; one at or below it is a duplicate or arrived out of order, and is dropped.
* Dropping alone would let one frame silence a key for good: a poisoned number (``10**18``) or
  an exchange whose counter restarted would make every later real frame look old. So when
  ``REBASE_AFTER`` consecutive frames of one key are each at or below the highest *and strictly
  increasing among themselves*, that is a live counter below a highest that is wrong or gone:
  the last of them is accepted and becomes the highest (a re-base). Real out-of-order delivery
  is a frame or two, not a rising run, and a repeated identical frame never counts twice, so a
  replaying server cannot re-base. The price of the rule is that the first ``REBASE_AFTER - 1``
  frames of a new counter are dropped.
* ``forget(key)`` starts a key afresh: codecs call it for every stream they (re)subscribe,
  because a resubscribe is how a connection repairs a silent stream, and it must not stay
  silent behind a poisoned number.
* The accept path costs one dict lookup, one comparison and one store; the bookkeeping of
  dropped frames lives off it. At most ``MAX_KEYS`` keys are kept (frames may name symbols we
  never asked for): past that the oldest key is forgotten, which only costs it its history.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["MAX_KEYS", "REBASE_AFTER", "SequenceFilter"]

K = TypeVar("K", bound=Hashable)

REBASE_AFTER = 3
MAX_KEYS = 8192


class SequenceFilter(Generic[K]):
    __slots__ = ("_behind", "_highest")

    def __init__(self) -> None:
        self._highest: dict[K, int] = {}
        # key -> (sequence of the last dropped frame, length of the rising run it ends)
        self._behind: dict[K, tuple[int, int]] = {}

    def accept(self, key: K, sequence: int) -> bool:
        """Whether the frame numbered ``sequence`` is new for ``key``; records it if so."""
        highest = self._highest.get(key)
        if highest is not None and sequence <= highest:
            return self._dropped(key, sequence)
        if highest is None and len(self._highest) >= MAX_KEYS:
            self.forget(next(iter(self._highest)))
        self._highest[key] = sequence
        if self._behind:
            self._behind.pop(key, None)
        return True

    def _dropped(self, key: K, sequence: int) -> bool:
        behind = self._behind
        run = behind.get(key)
        length = run[1] + 1 if run is not None and sequence > run[0] else 1
        if length < REBASE_AFTER:
            behind[key] = (sequence, length)
            return False
        behind.pop(key, None)
        self._highest[key] = sequence
        return True

    def highest(self, key: K) -> int | None:
        """The highest sequence accepted for ``key`` (None before the first frame)."""
        return self._highest.get(key)

    def forget(self, key: K) -> None:
        """The next frame of ``key`` is accepted whatever its number."""
        self._highest.pop(key, None)
        self._behind.pop(key, None)
