"""One subscription per (exchange, kind, symbol): reference count, feed state, fan-out.

Decisions:

* **No task of its own.** DESIGN §1 draws the subscription as an actor; here it is the passive
  half of one: its state is changed only by synchronous methods, which Trio runs atomically
  between checkpoints (STYLE principle 9), and the connection reader calls ``publish_*``
  directly, so a message costs no task hop between the socket and the subscriber mailboxes.
* **Reference counting is synchronous** (``acquire``/``release`` in ``pool.py``), so entering
  or leaving ``subscribe()`` can never be interrupted half-way by a cancellation and can never
  leak a reference.
* **States told to subscribers** (``FeedState``): ``live`` before the first data after any other
  state, ``stale`` when the stream was quiet for ``stale_after_s``, ``down`` when its
  connection is gone (backoff, circuit open) or the exchange refused the stream (the reason
  says which), ``fallback`` while REST polling serves tickers. A state is only posted when it
  changes, and each post is one O(1) write to the shared feed.
* A subscription that lost its last subscriber closes its feed; a new subscriber later gets a
  new ``Subscription`` (fresh counters, the departed totals stay in the pool's statistics).
"""

from __future__ import annotations

from typing import Literal

import attrs

from actors.market_data.mailbox import Mailbox, TickerSlot, TradeRing
from actors.messages import FeedState, Stream, Ticker

__all__ = ["StreamStatistics", "Subscription", "SubscriptionState"]

SubscriptionState = Literal["live", "stale", "down", "fallback"]


@attrs.frozen(slots=True)
class StreamStatistics:
    """One stream of one exchange, as ``/health`` and ``/metrics`` read it."""

    kind: str
    symbol: str
    subscribers: int
    state: str | None  # None until the stream first reports anything
    stale: bool
    live: bool
    published: int  # events fanned out since this subscription began
    skipped: int  # tickers conflated away, over all its subscribers (incl. departed)
    dropped: int  # trades lost to overflow, over all its subscribers (incl. departed)
    connection: int  # index of the connection that carries it


class Subscription:
    """The shared part of one stream: who listens, what state they were told, the feed."""

    __slots__ = (
        "_left_dropped",
        "_left_skipped",
        "connection",
        "exchange",
        "feed",
        "last_data_at",
        "live",
        "mailboxes",
        "state",
        "stream",
    )

    def __init__(
        self, exchange: str, stream: Stream, *, connection: int = 0, trade_ring_size: int = 1024
    ) -> None:
        self.exchange = exchange
        self.stream = stream
        self.connection = connection
        self.feed: TickerSlot | TradeRing = (
            TickerSlot(stream) if stream.kind == "ticker" else TradeRing(stream, trade_ring_size)
        )
        self.mailboxes: list[Mailbox] = []
        self.state: SubscriptionState | None = None
        # ``live`` is the one flag the hot path tests: True while the last state told is live.
        self.live = False
        self.last_data_at = 0.0  # trio clock; (re)set when the wire subscribe is sent
        self._left_skipped = 0
        self._left_dropped = 0

    # --- reference counting (called by the pool, synchronously) -------------------------------

    @property
    def subscribers(self) -> int:
        return len(self.mailboxes)

    def add_subscriber(self) -> Mailbox:
        mailbox = self.feed.open_mailbox()
        self.mailboxes.append(mailbox)
        return mailbox

    def remove_subscriber(self, mailbox: Mailbox) -> int:
        """Forget ``mailbox`` (keeping its counts in the totals); returns subscribers left."""
        mailbox.close()
        stats = mailbox.statistics()
        self._left_skipped += stats.skipped
        self._left_dropped += stats.dropped
        self.mailboxes.remove(mailbox)
        return len(self.mailboxes)

    def close(self) -> None:
        self.feed.close()

    # --- states --------------------------------------------------------------------------------

    def tell(self, state: SubscriptionState, reason: str = "") -> bool:
        """Post ``state`` to every subscriber if it differs from the last one told."""
        self.live = state == "live"
        if state == self.state and (self.feed.state is None or self.feed.state.reason == reason):
            return False
        self.state = state
        self.feed.post_state(FeedState(self.exchange, self.stream, state, reason))
        return True

    # --- data ---------------------------------------------------------------------------------
    # The connection reader publishes WebSocket data itself (``last_data_at``, the ``live``
    # check, ``feed.publish``), inlined on its hot path.

    def publish_fallback(self, ticker: Ticker) -> None:
        """A REST-polled ticker: published under the ``fallback`` state, never ``live``."""
        if self.state != "fallback":
            self.tell("fallback", "circuit open: REST polling")
        self.feed.publish(ticker)  # type: ignore[arg-type]

    # --- statistics ----------------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """(skipped, dropped) over every subscriber this subscription ever had."""
        skipped, dropped = self._left_skipped, self._left_dropped
        for mailbox in self.mailboxes:
            stats = mailbox.statistics()
            skipped += stats.skipped
            dropped += stats.dropped
        return skipped, dropped

    def statistics(self) -> StreamStatistics:
        skipped, dropped = self.totals()
        return StreamStatistics(
            kind=self.stream.kind,
            symbol=self.stream.symbol,
            subscribers=len(self.mailboxes),
            state=self.state,
            stale=self.state == "stale",
            live=self.live,
            published=self.feed.count,
            skipped=skipped,
            dropped=dropped,
            connection=self.connection,
        )
