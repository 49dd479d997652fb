"""Coinbase Exchange ("ws-feed", ex-Pro) public market data codec, pure.

Decisions:

* ``ticker`` -> channel ``ticker`` (one frame per match, carries best bid/ask and last);
  ``trade`` -> channel ``matches``. Every subscribed product also gets the ``heartbeat`` channel,
  the liveness signal for quiet products (a ticker may not come for minutes).
* One subscribe frame per call in the channel-object form
  ``{"type":"subscribe","channels":[{"name":"ticker","product_ids":[..]},..]}``: it says exactly
  which product goes with which channel, where the ``product_ids`` x ``channels`` form would
  subscribe the cross product. One invalid product id fails the whole message; the codec
  reports that as a ``SubscriptionError`` carrying every stream of that message, since none of
  them got subscribed. (Validating symbols before subscribing is the caller's job.)
* Replies carry no request id but come in request order, so the codec keeps a FIFO of the
  requests it produced: a ``subscriptions`` frame (cumulative, ``cumulative=True``) or a
  subscribe error answers the oldest one. After an unsubscribe the codec also emits
  ``Unsubscribed`` for the requested streams that the cumulative list no longer names.
* ``error`` frames whose message is about (un)subscribing are ``SubscriptionError``; the others
  (``ErrSlowConsume``, ``ErrSlowRead``, ``Message too big``) announce a server-side disconnect and
  become ``ReconnectRequested``.
* Sequence numbers are per product and shared by all its channels, so gaps are normal and a
  ticker and its match carry the same number. Duplicates/out-of-order frames are dropped
  per (channel, product) by a ``SequenceFilter`` (one per channel, keyed by product): accept a
  ``sequence`` above the highest seen, drop one at or below it, re-base after three rising
  frames below it, so one poisoned number cannot silence a product. ``subscribe_messages``
  forgets the (channel, product) pairs it (re)subscribes. A number is recorded only once its
  frame has decoded: a malformed frame changes nothing.
* Every frame names its product once (``product_id``): there is no second copy to check it
  against.
* ``match.side`` is the maker's side: flipped for ``Trade.side`` (the taker's). ``last_match`` (the
  one print sent right after subscribing) is decoded like a live ``match``.
* Unknown ``type``s decode to ``[]`` (Coinbase adds new ones).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import orjson

from actors.errors import DecodeError
from actors.exchanges.codec import DecodedBatch, RestRequest, decode_each
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    MAX_PENDING,
    JsonObject,
    SymbolTable,
    check_book,
    decode_failure,
    dumps,
    expect_dict,
    expect_list,
    expect_str,
    price,
    rest_symbol,
    rfc3339_ts,
    show,
    size,
    trade_id,
    trade_size,
    unique,
)
from actors.exchanges.sequence import SequenceFilter
from actors.exchanges.symbols import coinbase_native, coinbase_unified
from actors.messages import (
    Event,
    Heartbeat,
    ReconnectRequested,
    Stream,
    Subscribed,
    SubscriptionError,
    Ticker,
    Trade,
    Unsubscribed,
)

USER_AGENT = "botcriptofy/0.1"
REST_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", USER_AGENT),  # required: HTTP 400 without it
    ("Accept", "application/json"),
)

_CHANNEL = {"ticker": "ticker", "trade": "matches"}
_KIND = {"ticker": "ticker", "matches": "trade"}
_TAKER = {"buy": "sell", "sell": "buy"}  # maker side -> taker side


def decode_exchange_rest_ticker(
    exchange: str, symbol: str, data: JsonObject, received_ts: float
) -> Ticker:
    """``GET /products/BTC-USD/ticker`` ->
    ``{"ask":"63212.98","bid":"63212.97","volume":"4916.9","trade_id":1040406588,
    "price":"63212.97","size":"0.0078","time":"2026-06-19T16:43:33.016274911Z"}``."""
    if "message" in data and "bid" not in data:
        raise DecodeError(f"coinbase REST error: {show(data['message'], 200)}")
    bid = price(data["bid"], "coinbase REST bid")
    ask = price(data["ask"], "coinbase REST ask")
    check_book(bid, ask, "coinbase REST ticker")
    last = data.get("price")
    when = data.get("time")
    return Ticker(
        exchange,
        symbol,
        bid,
        ask,
        None if last is None else price(last, "coinbase REST price"),
        None,
        None,
        None if when is None else rfc3339_ts(when, "coinbase REST time"),
        received_ts,
        "rest",
    )


class CoinbaseCodec:
    protocol = "coinbase"
    default_url = "wss://ws-feed.exchange.coinbase.com"
    default_rest_url = "https://api.exchange.coinbase.com"
    max_streams_per_connection: int | None = None
    # Documented: 100 client messages/s per IP. We stay at 10 so that several connections or
    # processes behind one IP remain far below it; subscriptions are batched anyway.
    max_requests_per_second: float | None = 10.0

    def __init__(self, exchange: str = "coinbase") -> None:
        self.exchange = exchange
        # The symbol of the last rest_ticker_request: decode_rest_ticker(body) needs no symbol.
        self._rest_symbol: str | None = None
        self._products = SymbolTable("coinbase", coinbase_native, coinbase_unified, "product_id")
        self._active: dict[str, set[str]] = {}  # product -> kinds we asked for (heartbeat upkeep)
        self._pending: deque[tuple[str, tuple[Stream, ...]]] = deque(maxlen=MAX_PENDING)
        # One per channel, keyed by native product id.
        self._ticker_seq: SequenceFilter[str] = SequenceFilter()
        self._match_seq: SequenceFilter[str] = SequenceFilter()

    # --- symbols ------------------------------------------------------------------------------

    def native_symbol(self, symbol: str) -> str:
        return self._products.native(symbol)

    def unified_symbol(self, native: str) -> str:
        return self._products.unified(native)

    def subscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        """``{"type":"subscribe","channels":[{"name":"ticker","product_ids":["BTC-USD"]},
        {"name":"heartbeat","product_ids":["BTC-USD"]}]}``"""
        wanted = unique(streams)
        if not wanted:
            return []
        channels = self._channels(wanted)
        products = unique(coinbase_native(stream.symbol) for stream in wanted)
        for stream in wanted:
            native = self._products.remember(stream.symbol)
            self._active.setdefault(native, set()).add(stream.kind)
            (self._ticker_seq if stream.kind == "ticker" else self._match_seq).forget(native)
        channels.append({"name": "heartbeat", "product_ids": products})
        self._pending.append(("subscribe", tuple(wanted)))
        return [dumps({"type": "subscribe", "channels": channels})]

    def unsubscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        """Unsubscribes the channels, plus ``heartbeat`` for products left with no stream."""
        wanted = unique(streams)
        if not wanted:
            return []
        channels = self._channels(wanted)
        idle = []
        for stream in wanted:
            native = coinbase_native(stream.symbol)
            kinds = self._active.get(native)
            if kinds is not None:
                kinds.discard(stream.kind)
                if not kinds:
                    del self._active[native]
                    idle.append(native)
        if idle:
            channels.append({"name": "heartbeat", "product_ids": idle})
        self._pending.append(("unsubscribe", tuple(wanted)))
        return [dumps({"type": "unsubscribe", "channels": channels})]

    @staticmethod
    def _channels(streams: list[Stream]) -> list[JsonObject]:
        by_channel: dict[str, list[str]] = {}
        for stream in streams:
            channel = _CHANNEL.get(stream.kind)
            if channel is None:
                raise ValueError(f"coinbase: unsupported stream kind {stream.kind!r}")
            by_channel.setdefault(channel, []).append(coinbase_native(stream.symbol))
        return [{"name": name, "product_ids": unique(ids)} for name, ids in by_channel.items()]

    # --- server frames ------------------------------------------------------------------------

    def decode_batch(
        self, frames: Sequence[str | bytes], received_ts: float | None = None
    ) -> DecodedBatch:
        """Frame by frame (``codec.decode_each``). A ticker frame comes per match, not per book
        change, so two of one product in one socket read are rare and skipping one would save
        little; and its number is shared with the product's matches, which must all decode."""
        return decode_each(self.decode, frames, received_ts)

    def decode(self, frame: str | bytes, received_ts: float | None = None) -> list[Event]:
        ts = time.time() if received_ts is None else received_ts
        try:
            msg = orjson.loads(frame)
            if type(msg) is not dict:
                raise DecodeError(f"coinbase: expected a JSON object, got {type(msg).__name__}")
            kind = msg["type"]
            if kind == "ticker":
                return self._ticker(msg, ts)
            if kind == "match" or kind == "last_match":
                return self._match(msg, ts)
            if kind == "heartbeat":
                return self._heartbeat(msg)
            if kind == "subscriptions":
                return self._subscriptions(msg)
            if kind == "error":
                return [self._error(msg)]
            if type(kind) is not str:
                raise DecodeError(f"coinbase: type must be a string, got {show(kind)}")
            return []
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure(self.protocol, exc) from exc

    @staticmethod
    def _sequence(msg: JsonObject, what: str) -> int | None:
        sequence = msg.get("sequence")
        if sequence is not None and type(sequence) is not int:
            raise DecodeError(f"{what}: sequence must be an integer, got {show(sequence)}")
        return sequence

    def _ticker(self, msg: JsonObject, ts: float) -> list[Event]:
        """``{"type":"ticker","sequence":..,"product_id":"BTC-USD","price":"..","open_24h":"..",
        "volume_24h":"..","low_24h":"..","high_24h":"..","volume_30d":"..","best_bid":"..",
        "best_bid_size":"..","best_ask":"..","best_ask_size":"..","side":"buy",
        "time":"2024-01-07T22:55:34.347040Z","trade_id":592171029,"last_size":".."}``
        (``best_*_size`` absent before late 2022: optional)."""
        product = msg["product_id"]
        sequence = self._sequence(msg, "coinbase ticker")
        bid = price(msg["best_bid"], "coinbase ticker best_bid")
        ask = price(msg["best_ask"], "coinbase ticker best_ask")
        check_book(bid, ask, "coinbase ticker")
        bid_size = msg.get("best_bid_size")
        ask_size = msg.get("best_ask_size")
        when = msg.get("time")
        ticker = Ticker(
            self.exchange,
            self._products.decode(product),
            bid,
            ask,
            price(msg["price"], "coinbase ticker price"),
            None if bid_size is None else size(bid_size, "coinbase ticker best_bid_size"),
            None if ask_size is None else size(ask_size, "coinbase ticker best_ask_size"),
            None if when is None else rfc3339_ts(when, "coinbase ticker time"),
            ts,
            "ws",
            sequence,
        )
        if sequence is not None and not self._ticker_seq.accept(product, sequence):
            return []
        return [ticker]

    def _match(self, msg: JsonObject, ts: float) -> list[Event]:
        """``{"type":"match","trade_id":10,"maker_order_id":"..","taker_order_id":"..",
        "side":"sell","size":"5.23512","price":"400.23","product_id":"BTC-USD","sequence":50,
        "time":"2014-11-07T08:19:27.028459Z"}``; ``side`` is the maker's: sell -> taker bought."""
        product = msg["product_id"]
        sequence = self._sequence(msg, "coinbase match")
        side = _TAKER.get(msg["side"])
        if side is None:
            raise DecodeError(f"coinbase match: side must be buy/sell, got {show(msg['side'])}")
        raw_id = msg.get("trade_id")
        when = msg.get("time")
        trade = Trade(
            self.exchange,
            self._products.decode(product),
            price(msg["price"], "coinbase match price"),
            trade_size(msg["size"], "coinbase match size"),
            side,  # type: ignore[arg-type]
            None if raw_id is None else trade_id(raw_id, "coinbase match trade_id"),
            None if when is None else rfc3339_ts(when, "coinbase match time"),
            ts,
            sequence,
        )
        if sequence is not None and not self._match_seq.accept(product, sequence):
            return []
        return [trade]

    def _heartbeat(self, msg: JsonObject) -> list[Event]:
        """``{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",
        "time":"2014-11-07T08:19:28.464459Z"}``"""
        when = msg.get("time")
        return [
            Heartbeat(self.exchange, None if when is None else rfc3339_ts(when, "heartbeat time"))
        ]

    def _subscriptions(self, msg: JsonObject) -> list[Event]:
        """``{"type":"subscriptions","channels":[{"name":"ticker",
        "product_ids":["ETH-USD","BTC-USD"],"account_ids":null}]}`` — everything subscribed."""
        listed: list[Stream] = []
        for entry in expect_list(msg["channels"], "coinbase subscriptions channels"):
            if type(entry) is str:
                continue  # a bare channel name carries no products
            entry = expect_dict(entry, "coinbase subscriptions channel")
            kind = _KIND.get(expect_str(entry["name"], "coinbase subscriptions channel name"))
            if kind is None:
                continue  # heartbeat, status...: not streams of ours
            products = expect_list(entry.get("product_ids") or [], "coinbase product_ids")
            listed.extend(Stream(kind, self._products.decode(product)) for product in products)  # type: ignore[arg-type]
        streams = tuple(unique(listed))
        events: list[Event] = []
        if self._pending:
            op, requested = self._pending.popleft()
            if op == "unsubscribe":
                still = set(streams)
                gone = tuple(stream for stream in requested if stream not in still)
                events.append(Unsubscribed(self.exchange, gone))
        events.append(Subscribed(self.exchange, streams, cumulative=True))
        return events

    def _error(self, msg: JsonObject) -> Event:
        """``{"type":"error","message":"Failed to subscribe",
        "reason":"FOO-USD is not a valid product"}``"""
        message = expect_str(msg["message"], "coinbase error message")
        reason = msg.get("reason")
        text = message if reason is None else f"{message}: {expect_str(reason, 'reason')}"
        lowered = text.lower()
        if "subscribe" in lowered or "channel" in lowered or "product" in lowered:
            streams: tuple[Stream, ...] = ()
            if self._pending:
                streams = self._pending.popleft()[1]
            return SubscriptionError(self.exchange, text, streams)
        return ReconnectRequested(self.exchange, text)

    # --- REST fallback ------------------------------------------------------------------------

    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest:
        self._rest_symbol = symbol
        base = (base_url or self.default_rest_url).rstrip("/")
        return RestRequest(
            url=f"{base}/products/{coinbase_native(symbol)}/ticker", headers=REST_HEADERS
        )

    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker:
        ts = time.time() if received_ts is None else received_ts
        symbol = rest_symbol(symbol or self._rest_symbol, "coinbase")
        try:
            data = expect_dict(orjson.loads(body), "coinbase REST ticker")
            return decode_exchange_rest_ticker(self.exchange, symbol, data, ts)
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure("coinbase REST", exc) from exc
