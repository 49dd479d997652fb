"""Coinbase Advanced Trade public market data codec, pure.

Decisions:

* ``ticker`` -> channel ``ticker``; ``trade`` -> channel ``market_trades``. One channel per
  subscribe message (the API allows no more), all products of that channel in it. The first
  ``subscribe_messages`` call also subscribes ``heartbeats`` (quiet channels are closed after
  60-90 s without it), placed first because it cannot fail on a bad product.
* ``market_trades.side`` is taken to be the **maker** side and flipped for ``Trade.side``. The
  recorded traffic shows ``SELL`` prints at the best ask and ``BUY`` prints at the bid (49/51 and
  26/28), which is what maker-side labelling produces (cryptofeed v3 maps it as the taker side,
  which those prints contradict). The same convention as Exchange ``match.side``.
* The ``market_trades`` snapshot (the last 100 prints, possibly minutes old) is history, not
  live trading: it decodes to no trades, so a subscriber's bounded trade buffer does not
  overflow on subscribe. Ticker snapshots are current state and are decoded.
* ``sequence_num`` is per connection and must be gap-free: a jump forward yields a
  ``SequenceGap`` ahead of the frame's own events (the frame is still decoded: its data is
  good, only something before it was lost), on which the connection reconnects with a fresh
  codec. A number at or below the last one is a duplicate or out of order and the frame
  decodes to ``[]``; but a ``SequenceFilter`` (one key: the connection) re-bases after three
  rising frames below the last, so no single frame can mute the connection: not an absurd
  first number (there is nothing before it to call it a gap), not a counter that went back.
  A re-base is a break in the sequence too (the frames dropped before it may have been real),
  so it is reported as a ``SequenceGap`` whose ``expected`` is above ``received``.
  ``subscribe_messages`` does not reset the number: it belongs to the connection, not to a
  stream, and a gap across the reset would go unseen; the heartbeats (one a second) re-base a
  poisoned number within three seconds. Frames without ``sequence_num`` (errors) skip the
  check.
* Every ticker and trade names its product once (``product_id``; the envelope names only the
  channel): there is no second copy to check it against.
* Replies carry no request id; they come in request order, so a FIFO of our requests resolves
  ``subscriptions`` (cumulative) and ``{"type":"error"}`` frames, as for Coinbase Exchange.
* ``X-USDC`` products may arrive named ``X-USD`` (Coinbase aliases them): subscribing ``X/USDC``
  maps both ids to it (a frame for a product subscribed under both names is emitted for both
  symbols).
* The envelope ``timestamp`` (RFC 3339, 9 fractional digits) is the only time on ticker frames
  and becomes ``exchange_ts``; heartbeat ``current_time`` is a Go debug string and is ignored.
* REST fallback: the public Advanced endpoint
  ``/api/v3/brokerage/market/products/{id}/ticker?limit=1`` on ``https://api.coinbase.com``; the
  decoder also accepts the Exchange ``/products/{id}/ticker`` body, so a base URL pointing at an
  Exchange-style server works too.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import orjson

from actors.errors import DecodeError
from actors.exchanges.codec import DecodedBatch, RestRequest, decode_each
from actors.exchanges.coinbase import REST_HEADERS, decode_exchange_rest_ticker
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    MAX_PENDING,
    JsonObject,
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
    SequenceGap,
    Stream,
    Subscribed,
    SubscriptionError,
    Ticker,
    Trade,
    Unsubscribed,
)

_CHANNEL = {"ticker": "ticker", "trade": "market_trades"}
_KIND = {"ticker": "ticker", "market_trades": "trade"}
_TAKER = {"BUY": "sell", "SELL": "buy", "buy": "sell", "sell": "buy"}  # maker -> taker
_CONNECTION = "sequence_num"  # the one key of the per-connection SequenceFilter


class CoinbaseAdvancedCodec:
    protocol = "coinbase_advanced"
    default_url = "wss://advanced-trade-ws.coinbase.com"
    default_rest_url = "https://api.coinbase.com"
    max_streams_per_connection: int | None = None
    # Unauthenticated client messages: 8 per second per IP.
    max_requests_per_second: float | None = 8.0

    def __init__(self, exchange: str = "coinbase_advanced") -> None:
        self.exchange = exchange
        # The symbol of the last rest_ticker_request: decode_rest_ticker(body) needs no symbol.
        self._rest_symbol: str | None = None
        # native product id -> unified symbols (more than one only for USD/USDC aliases)
        self._products: dict[str, tuple[str, ...]] = {}
        self._pending: deque[tuple[str, tuple[Stream, ...]]] = deque(maxlen=MAX_PENDING)
        self._heartbeats = False
        self._sequence: SequenceFilter[str] = SequenceFilter()
        self._gaps: list[SequenceGap] = []  # detected, not yet returned

    # --- symbols ------------------------------------------------------------------------------

    def native_symbol(self, symbol: str) -> str:
        return coinbase_native(symbol)

    def unified_symbol(self, native: str) -> str:
        known = self._products.get(native)
        return known[0] if known else coinbase_unified(native)

    def _symbols(self, native: object) -> tuple[str, ...]:
        if type(native) is not str:
            raise DecodeError(f"coinbase_advanced: product_id must be a string, got {show(native)}")
        known = self._products.get(native)
        if known is not None:
            return known
        try:
            return (coinbase_unified(native),)
        except ValueError as exc:
            raise DecodeError(f"coinbase_advanced: {exc}") from None

    def _register(self, symbol: str) -> None:
        native = coinbase_native(symbol)
        self._add_alias(native, symbol)
        if native.endswith("-USDC"):
            self._add_alias(native[:-1], symbol)

    def _add_alias(self, native: str, symbol: str) -> None:
        known = self._products.get(native, ())
        if symbol not in known:
            # A product's own symbol goes first so unified_symbol() prefers it.
            own = native.replace("-", "/") == symbol
            self._products[native] = (symbol, *known) if own else (*known, symbol)

    # --- client frames ------------------------------------------------------------------------

    def subscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        """``{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"ticker"}``"""
        wanted = unique(streams)
        if not wanted:
            return []
        frames = []
        if not self._heartbeats:
            self._heartbeats = True
            self._pending.append(("subscribe", ()))
            frames.append(dumps({"type": "subscribe", "channel": "heartbeats"}))
        for stream in wanted:
            self._register(stream.symbol)
        return frames + self._requests("subscribe", wanted)

    def unsubscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        """Heartbeats stay subscribed: they keep the connection open between subscriptions."""
        return self._requests("unsubscribe", unique(streams))

    def _requests(self, op: str, streams: list[Stream]) -> list[str]:
        by_channel: dict[str, list[Stream]] = {}
        for stream in streams:
            channel = _CHANNEL.get(stream.kind)
            if channel is None:
                raise ValueError(f"coinbase_advanced: unsupported stream kind {stream.kind!r}")
            by_channel.setdefault(channel, []).append(stream)
        frames = []
        for channel, members in by_channel.items():
            products = unique(coinbase_native(stream.symbol) for stream in members)
            self._pending.append((op, tuple(members)))
            frames.append(dumps({"type": op, "product_ids": products, "channel": channel}))
        return frames

    # --- server frames ------------------------------------------------------------------------

    def decode_batch(
        self, frames: Sequence[str | bytes], received_ts: float | None = None
    ) -> DecodedBatch:
        """Frame by frame (``codec.decode_each``): every frame carries the connection's
        ``sequence_num``, which must be seen gap-free, so no frame can be skipped undecoded."""
        return decode_each(self.decode, frames, received_ts)

    def decode(self, frame: str | bytes, received_ts: float | None = None) -> list[Event]:
        ts = time.time() if received_ts is None else received_ts
        try:
            msg = orjson.loads(frame)
            if type(msg) is not dict:
                raise DecodeError(
                    f"coinbase_advanced: expected a JSON object, got {type(msg).__name__}"
                )
            channel = msg.get("channel")
            if channel is None:
                if msg.get("type") == "error":
                    return [self._error(msg)]
                raise DecodeError("coinbase_advanced: frame has neither channel nor type error")
            return self._envelope(expect_str(channel, "coinbase_advanced channel"), msg, ts)
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure(self.protocol, exc) from exc

    def _envelope(self, channel: str, msg: JsonObject, ts: float) -> list[Event]:
        """``{"channel":"ticker","client_id":"","timestamp":"2026-08-09T21:05:48.229198328Z",
        "sequence_num":6,"events":[{"type":"snapshot"|"update", ...}]}``"""
        sequence = msg.get("sequence_num")
        events: list[Event] = []
        if sequence is not None:
            if type(sequence) is not int or sequence < 0:
                raise DecodeError(
                    f"coinbase_advanced: sequence_num must be a non-negative integer, "
                    f"got {show(sequence)}"
                )
            last = self._sequence.highest(_CONNECTION)
            # The number counts as seen even if the body below turns out malformed: one bad
            # frame is a DecodeError, not also a gap on the next frame.
            if not self._sequence.accept(_CONNECTION, sequence):
                return []  # duplicate or out of order
            if last is not None and sequence != last + 1:
                self._gaps.append(SequenceGap(self.exchange, last + 1, sequence))
        if self._gaps:
            # Reported ahead of this frame's data; kept until a frame decodes, so a gap seen on
            # a malformed frame is not lost with it.
            events += self._gaps
        if channel == "ticker":
            events += self._tickers(msg, sequence, ts)
        elif channel == "market_trades":
            events += self._trades(msg, sequence, ts)
        elif channel == "heartbeats":
            events.append(Heartbeat(self.exchange, self._timestamp(msg)))
        elif channel == "subscriptions":
            events += self._subscriptions(msg)
        # l2_data, candles, status, ticker_batch, user...: not used
        self._gaps.clear()
        return events

    @staticmethod
    def _timestamp(msg: JsonObject) -> float | None:
        when = msg.get("timestamp")
        return None if when is None else rfc3339_ts(when, "coinbase_advanced timestamp")

    @staticmethod
    def _events(msg: JsonObject) -> list[JsonObject]:
        return [
            expect_dict(event, "coinbase_advanced event")
            for event in expect_list(msg["events"], "coinbase_advanced events")
        ]

    def _tickers(self, msg: JsonObject, sequence: int | None, ts: float) -> list[Event]:
        """events[].tickers[]: ``{"type":"ticker","product_id":"BTC-USD","price":"..",
        "volume_24_h":"..","low_24_h":"..","high_24_h":"..","low_52_w":"..","high_52_w":"..",
        "price_percent_chg_24_h":"..","best_bid":"..","best_ask":"..","best_bid_quantity":"..",
        "best_ask_quantity":".."}`` (no time, side or trade id: the envelope time is used)."""
        exchange_ts = self._timestamp(msg)
        out: list[Event] = []
        for event in self._events(msg):
            for item in expect_list(event["tickers"], "coinbase_advanced tickers"):
                item = expect_dict(item, "coinbase_advanced ticker")
                bid = price(item["best_bid"], "coinbase_advanced best_bid")
                ask = price(item["best_ask"], "coinbase_advanced best_ask")
                check_book(bid, ask, "coinbase_advanced ticker")
                last = price(item["price"], "coinbase_advanced price")
                bid_size = item.get("best_bid_quantity")
                ask_size = item.get("best_ask_quantity")
                bid_size = None if bid_size is None else size(bid_size, "best_bid_quantity")
                ask_size = None if ask_size is None else size(ask_size, "best_ask_quantity")
                for symbol in self._symbols(item["product_id"]):
                    out.append(
                        Ticker(
                            self.exchange,
                            symbol,
                            bid,
                            ask,
                            last,
                            bid_size,
                            ask_size,
                            exchange_ts,
                            ts,
                            "ws",
                            sequence,
                        )
                    )
        return out

    def _trades(self, msg: JsonObject, sequence: int | None, ts: float) -> list[Event]:
        """events[].trades[]: ``{"product_id":"BTC-USD","trade_id":"1068572091","price":"..",
        "size":"..","time":"2026-08-09T21:05:48.1Z","side":"BUY"}`` — ``side`` is the maker's."""
        out: list[Event] = []
        for event in self._events(msg):
            trades = expect_list(event["trades"], "coinbase_advanced trades")
            if event.get("type") == "snapshot":
                continue  # history, see module docstring
            for item in trades:
                item = expect_dict(item, "coinbase_advanced trade")
                side = _TAKER.get(item["side"])
                if side is None:
                    raise DecodeError(
                        f"coinbase_advanced trade: side must be BUY/SELL, got {show(item['side'])}"
                    )
                when = item.get("time")
                raw_id = item.get("trade_id")
                trade_price = price(item["price"], "coinbase_advanced trade price")
                quantity = trade_size(item["size"], "coinbase_advanced trade size")
                exchange_ts = (
                    self._timestamp(msg)
                    if when is None
                    else rfc3339_ts(when, "coinbase_advanced trade time")
                )
                ident = None if raw_id is None else trade_id(raw_id, "coinbase_advanced trade_id")
                for symbol in self._symbols(item["product_id"]):
                    out.append(
                        Trade(
                            self.exchange,
                            symbol,
                            trade_price,
                            quantity,
                            side,  # type: ignore[arg-type]
                            ident,
                            exchange_ts,
                            ts,
                            sequence,
                        )
                    )
        return out

    def _subscriptions(self, msg: JsonObject) -> list[Event]:
        """``{"channel":"subscriptions",..,"events":[{"subscriptions":{"ticker":["BTC-USD"],
        "heartbeats":["heartbeats"]}}]}`` — cumulative: everything subscribed."""
        listed: list[Stream] = []
        for event in self._events(msg):
            table = expect_dict(event["subscriptions"], "coinbase_advanced subscriptions")
            for channel, products in table.items():
                kind = _KIND.get(channel)
                if kind is None:
                    continue  # heartbeats, user...: not streams of ours
                products = expect_list(products, "coinbase_advanced subscribed products")
                for product in products:
                    listed.extend(Stream(kind, symbol) for symbol in self._symbols(product))  # type: ignore[arg-type]
        streams = tuple(unique(listed))
        out: list[Event] = []
        if self._pending:
            op, requested = self._pending.popleft()
            if op == "unsubscribe":
                still = set(streams)
                gone = tuple(stream for stream in requested if stream not in still)
                out.append(Unsubscribed(self.exchange, gone))
        out.append(Subscribed(self.exchange, streams, cumulative=True))
        return out

    def _error(self, msg: JsonObject) -> Event:
        """``{"type":"error","message":"failure to subscribe"}`` (no channel, no sequence_num)."""
        message = expect_str(msg["message"], "coinbase_advanced error message")
        streams: tuple[Stream, ...] = ()
        if self._pending:
            streams = self._pending.popleft()[1]
        return SubscriptionError(self.exchange, message, streams)

    # --- REST fallback ------------------------------------------------------------------------

    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest:
        self._rest_symbol = symbol
        base = (base_url or self.default_rest_url).rstrip("/")
        return RestRequest(
            url=f"{base}/api/v3/brokerage/market/products/{coinbase_native(symbol)}/ticker",
            params=(("limit", "1"),),
            headers=REST_HEADERS,
        )

    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker:
        """``{"trades":[{"trade_id":"..","product_id":"BTC-USD","price":"..","size":"..",
        "time":"..","side":"BUY"}],"best_bid":"..","best_ask":".."}``; errors are
        ``{"error":"NOT_FOUND","message":".."}``. An Exchange-style body is accepted too."""
        ts = time.time() if received_ts is None else received_ts
        symbol = rest_symbol(symbol or self._rest_symbol, "coinbase_advanced")
        try:
            data = expect_dict(orjson.loads(body), "coinbase_advanced REST ticker")
            if "best_bid" not in data:
                if "bid" in data:
                    return decode_exchange_rest_ticker(self.exchange, symbol, data, ts)
                problem = data.get("message", data.get("error", "no best_bid"))
                raise DecodeError(f"coinbase_advanced REST error: {show(problem, 200)}")
            bid = price(data["best_bid"], "coinbase_advanced REST best_bid")
            ask = price(data["best_ask"], "coinbase_advanced REST best_ask")
            check_book(bid, ask, "coinbase_advanced REST ticker")
            last = exchange_ts = None
            trades = data.get("trades")
            if trades:
                newest = expect_dict(expect_list(trades, "REST trades")[0], "REST trade")
                last = price(newest["price"], "coinbase_advanced REST trade price")
                when = newest.get("time")
                exchange_ts = None if when is None else rfc3339_ts(when, "REST trade time")
            return Ticker(
                self.exchange, symbol, bid, ask, last, None, None, exchange_ts, ts, "rest"
            )
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure("coinbase_advanced REST", exc) from exc
