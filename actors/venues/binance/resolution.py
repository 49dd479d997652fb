"""When "Order does not exist" may be believed: a small pure state machine.

An order whose outcome is unknown (timeout, 5xx, ``-1007``...) is looked up by its client id
(``GET /api/v3/order?origClientOrderId=``). "Found" settles it at once. ``-2013`` "Order does
not exist." settles nothing by itself: the venue may still be processing the request, and its
lookups read memory, then a database that lags the engine (a freshly placed order can answer
``-2013`` for seconds). ``UnknownOrderResolution`` decides when a "not found" is the truth.

Decisions:

* **The venue's own deadline.** A signed request is re-checked against ``timestamp +
  recvWindow`` (server clock) just before it is forwarded to the matching engine, and the API
  waits at most 10 s for the engine (``-1007`` after that). So once the server clock passes
  ``timestamp + recvWindow + 10 s`` (``deadline_ms``) the request can no longer create an
  order; ``read_lag_ms`` (default 5 s) more lets the lookups' database catch up.
* **Counted answers.** A "not found" counts only when the query was sent after that point
  *by the server's clock*; the caller passes ``ServerClock.earliest_server_ms`` of the query's
  local send time, so the clock estimate's error can only delay the verdict, never advance it.
  Counted answers must be ``min_spacing_ms`` apart (faster polling does not shorten the wait),
  and ``confirmations`` (default 3) consecutive ones give ``never_placed``. A lookup that fails
  (timeout, 5xx, rate limit) says nothing about the order and restarts the count.
* **Found wins, always.** Any answer showing the order (``OrderSnapshot``, or ``-2026``
  archived: it existed) gives ``found``. A ``found`` after ``never_placed`` means the venue
  contradicted itself: ``contradicted`` is set and the executor must alert and book what the
  venue shows. The rule above exists so that this never happens: the journal refuses fills for
  an order it has closed as rejected.
* **After a restart** the request's ``timestamp`` and ``recvWindow`` are not in the journal:
  ``after_restart`` assumes the latest possible request (sent just before the restart, server
  time ``now``, with the largest ``recvWindow`` the venue accepts), which is later than any
  request the previous process can have sent (a request's ``timestamp`` may run up to 1 s
  ahead of the server clock, so ``now + 1 s``).
"""

from __future__ import annotations

from enum import StrEnum

import attrs

from actors.venues.binance.responses import (
    OrderArchived,
    OrderNotFound,
    OrderSnapshot,
    QueryFailed,
    QueryOutcome,
)
from actors.venues.binance.signing import MAX_RECV_WINDOW_MS

__all__ = [
    "DEFAULT_CONFIRMATIONS",
    "DEFAULT_READ_LAG_MS",
    "PROCESSING_LIMIT_MS",
    "UnknownOrderResolution",
    "Verdict",
]

PROCESSING_LIMIT_MS = 10_000
AHEAD_TOLERANCE_MS = 1_000  # the venue accepts a timestamp up to 1 s ahead of its clock
DEFAULT_CONFIRMATIONS = 3
DEFAULT_READ_LAG_MS = 5_000
DEFAULT_MIN_SPACING_MS = 1_000


class Verdict(StrEnum):
    PENDING = "pending"
    FOUND = "found"
    NEVER_PLACED = "never_placed"


@attrs.define
class UnknownOrderResolution:
    client_order_id: str
    timestamp_ms: int  # the ``timestamp`` the order request carried (server clock)
    recv_window_ms: int  # the ``recvWindow`` it carried
    confirmations: int = DEFAULT_CONFIRMATIONS
    read_lag_ms: int = DEFAULT_READ_LAG_MS
    min_spacing_ms: int = DEFAULT_MIN_SPACING_MS
    # The venue's longest wait for its engine (Binance: 10 s); a venue that re-checks
    # ``recvWindow`` at the engine and never waits longer (the local venue) may give less.
    processing_limit_ms: int = PROCESSING_LIMIT_MS
    verdict: Verdict = Verdict.PENDING
    streak: int = 0
    last_counted_ms: int | None = None
    contradicted: bool = False

    def __attrs_post_init__(self) -> None:
        if self.confirmations < 1:
            raise ValueError(f"confirmations must be >= 1, got {self.confirmations}")
        if not 0 < self.recv_window_ms <= MAX_RECV_WINDOW_MS:
            raise ValueError(f"recvWindow must be in 1..{MAX_RECV_WINDOW_MS} ms")
        if self.read_lag_ms < 0 or self.min_spacing_ms < 0:
            raise ValueError("read_lag_ms and min_spacing_ms must be >= 0")

    @classmethod
    def after_restart(
        cls,
        client_order_id: str,
        server_now_ms: int,
        *,
        recv_window_ms: int = MAX_RECV_WINDOW_MS,
        confirmations: int = DEFAULT_CONFIRMATIONS,
        read_lag_ms: int = DEFAULT_READ_LAG_MS,
        min_spacing_ms: int = DEFAULT_MIN_SPACING_MS,
        processing_limit_ms: int = PROCESSING_LIMIT_MS,
    ) -> UnknownOrderResolution:
        """For an intent the journal left unresolved: its request, if one was sent, reached
        the venue before ``server_now_ms`` (pass ``ServerClock.latest_server_ms`` of now), so
        its ``timestamp`` was below that plus the venue's 1 s tolerance for clocks ahead.
        ``recv_window_ms`` is the largest the previous process can have signed with: the
        venue's maximum unless the caller knows better (its own config)."""
        return cls(
            client_order_id,
            server_now_ms + AHEAD_TOLERANCE_MS,
            recv_window_ms,
            confirmations=confirmations,
            read_lag_ms=read_lag_ms,
            min_spacing_ms=min_spacing_ms,
            processing_limit_ms=processing_limit_ms,
        )

    @property
    def deadline_ms(self) -> int:
        """Server time after which the request can no longer create an order."""
        return self.timestamp_ms + self.recv_window_ms + self.processing_limit_ms

    @property
    def trusted_from_ms(self) -> int:
        """Server time from which a "not found" counts."""
        return self.deadline_ms + self.read_lag_ms

    def next_counted_query_ms(self) -> int:
        """The earliest server time a lookup sent can count (ask no sooner: it would not)."""
        if self.last_counted_ms is None:
            return self.trusted_from_ms
        return max(self.trusted_from_ms, self.last_counted_ms + self.min_spacing_ms)

    def not_found(self, asked_at_ms: int) -> Verdict:
        """A ``-2013`` to a lookup sent when the server clock read at least ``asked_at_ms``."""
        if self.verdict is not Verdict.PENDING:
            return self.verdict
        if asked_at_ms < self.next_counted_query_ms():
            return self.verdict
        self.streak += 1
        self.last_counted_ms = asked_at_ms
        if self.streak >= self.confirmations:
            self.verdict = Verdict.NEVER_PLACED
        return self.verdict

    def found(self) -> Verdict:
        if self.verdict is Verdict.NEVER_PLACED:
            self.contradicted = True
        self.verdict = Verdict.FOUND
        return self.verdict

    def inconclusive(self) -> Verdict:
        """The lookup failed: the count of consecutive "not found" answers starts over."""
        if self.verdict is Verdict.PENDING:
            self.streak = 0
            self.last_counted_ms = None
        return self.verdict

    def observe(self, outcome: QueryOutcome, asked_at_ms: int) -> Verdict:
        """Any lookup's classified answer (``classify_query``)."""
        if isinstance(outcome, OrderSnapshot | OrderArchived):
            return self.found()
        if isinstance(outcome, OrderNotFound):
            return self.not_found(asked_at_ms)
        assert isinstance(outcome, QueryFailed)
        return self.inconclusive()
