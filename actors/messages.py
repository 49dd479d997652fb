"""Messages exchanged between actors: frozen, slotted attrs classes, defined once.

Prices and sizes of market data are ``Decimal`` parsed from the exchange's own text, so that a
bot books exactly what the exchange quoted. Wall-clock times are epoch seconds (``*_ts``);
durations inside the program use ``trio.current_time()`` (``*_at``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import attrs

StreamKind = Literal["ticker", "trade"]
STREAM_KINDS: tuple[str, ...] = ("ticker", "trade")
Side = Literal["buy", "sell"]


@attrs.frozen(slots=True)
class Stream:
    """One market-data stream: a kind of event for one unified symbol (``BTC/USDT``)."""

    kind: StreamKind
    symbol: str


# --- market data -------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Ticker:
    """Best bid/ask (and last price where the stream has one).

    ``last`` is None where the stream carries no last price (Binance bookTicker); sizes are None
    where the stream carries none; ``exchange_ts`` is None where the exchange sends no time.
    ``source`` is ``"ws"`` or ``"rest"`` (REST polling fallback). ``sequence`` is the exchange's
    own ordering number where it has one (Binance ``u``, Coinbase ``sequence``).
    """

    exchange: str
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal | None
    bid_size: Decimal | None
    ask_size: Decimal | None
    exchange_ts: float | None
    received_ts: float
    source: Literal["ws", "rest"] = "ws"
    sequence: int | None = None

    @property
    def stream(self) -> Stream:
        return Stream("ticker", self.symbol)

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@attrs.frozen(slots=True)
class Trade:
    """One public trade; ``side`` is always the taker's side."""

    exchange: str
    symbol: str
    price: Decimal
    size: Decimal
    side: Side
    trade_id: str | None
    exchange_ts: float | None
    received_ts: float
    sequence: int | None = None

    @property
    def stream(self) -> Stream:
        return Stream("trade", self.symbol)


# --- control events decoded from the wire -------------------------------------------------------


@attrs.frozen(slots=True)
class Subscribed:
    """The exchange confirmed streams. ``cumulative`` acks (Coinbase) list everything subscribed."""

    exchange: str
    streams: tuple[Stream, ...]
    request_id: int | None = None
    cumulative: bool = False


@attrs.frozen(slots=True)
class Unsubscribed:
    exchange: str
    streams: tuple[Stream, ...]
    request_id: int | None = None


@attrs.frozen(slots=True)
class SubscriptionError:
    """The exchange refused a (un)subscribe; ``streams`` is empty when it did not say which."""

    exchange: str
    message: str
    streams: tuple[Stream, ...] = ()
    request_id: int | None = None


@attrs.frozen(slots=True)
class Heartbeat:
    """Application-level liveness (Coinbase heartbeat(s), Kraken heartbeat / pong)."""

    exchange: str
    exchange_ts: float | None = None


@attrs.frozen(slots=True)
class SystemStatus:
    """Exchange system status (Kraken ``online``/``maintenance``/...)."""

    exchange: str
    status: str


@attrs.frozen(slots=True)
class ReconnectRequested:
    """The exchange asked us to reconnect now (Binance ``serverShutdown``)."""

    exchange: str
    reason: str


@attrs.frozen(slots=True)
class SequenceGap:
    """A per-connection sequence that must be gap-free had a gap (Coinbase Advanced)."""

    exchange: str
    expected: int
    received: int


ControlEvent = (
    Subscribed
    | Unsubscribed
    | SubscriptionError
    | Heartbeat
    | SystemStatus
    | ReconnectRequested
    | SequenceGap
)
MarketEvent = Ticker | Trade
Event = MarketEvent | ControlEvent


# --- feed state told to subscribers --------------------------------------------------------------


@attrs.frozen(slots=True)
class Lagged:
    """This subscriber's trade buffer overflowed: ``dropped`` trades were not delivered."""

    stream: Stream
    dropped: int


@attrs.frozen(slots=True)
class FeedState:
    """The state of one stream changed, told to its subscribers.

    ``state``: ``live`` (fresh data), ``stale`` (no data for stale_after_s), ``down`` (no
    connection: backoff or circuit open), ``fallback`` (REST polling serves tickers).
    """

    exchange: str
    stream: Stream
    state: Literal["live", "stale", "down", "fallback"]
    reason: str = ""
