"""Kraken WS v1 public market data codec, pure. v2 (``kraken``) is the default.

Decisions:

* ``ticker`` -> channel ``spread``: the v1 ``ticker`` channel refreshes bid/ask only on trades,
  while ``spread`` updates on every top-of-book change and carries a time, the v1
  equivalent of Binance bookTicker (no last price). A v1 ``ticker`` frame, if one arrives, still
  decodes to a Ticker (with last, without time). ``trade`` -> channel ``trade``.
* Pairs use the v1 names (``XBT/USD``, ``XDG/USD``). One request per channel carries every
  pair, with a positive incrementing ``reqid``; acks come one per pair and are resolved to
  streams through reqid -> pending pairs (errors may lack ``reqid``; then the pair and channel
  named in the frame are used).
* Data arrays are routed by the trailing ``channelName`` and pair, never by ``channelID``
  (deprecated, per connection). Book frames, including the 5-element two-dict form, and ohlc
  frames decode to ``[]``.
* The frame names its stream twice, so the two must agree: the codec remembers which
  (channelName, pair) each ``channelID`` was given by a ``subscribed`` status (and drops it on
  ``unsubscribed``), and a data frame whose ``channelID`` was given to another channel or pair
  than its trailing names is a ``DecodeError``, never data for either. A ``channelID`` we were
  never told about is not checked (one dict lookup per frame either way).
* Tickers and trades carry no sequence number, so nothing is dropped as out of order.
* Ticker ``a``/``b`` rows are [price, whole-lot volume (int), lot volume]: size is index 2.
* ``systemStatus`` -> ``SystemStatus`` (its ``connectionID`` is u64; orjson parses it);
  ``heartbeat`` and ``pong`` -> ``Heartbeat``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson

from actors.errors import DecodeError
from actors.exchanges.codec import DecodedBatch, RestRequest, decode_each
from actors.exchanges.kraken_rest import (
    DEFAULT_REST_URL,
    decode_kraken_rest_ticker,
    kraken_rest_ticker_request,
)
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    JsonArray,
    JsonObject,
    SymbolTable,
    check_book,
    decode_failure,
    dumps,
    expect_dict,
    expect_list,
    expect_str,
    price,
    remember,
    rest_symbol,
    show,
    size,
    trade_id,
    trade_size,
    unix_str_ts,
)
from actors.exchanges.symbols import kraken_v1_native, kraken_v1_unified
from actors.messages import (
    Event,
    Heartbeat,
    Stream,
    Subscribed,
    SubscriptionError,
    SystemStatus,
    Ticker,
    Trade,
    Unsubscribed,
)

_CHANNEL = {"ticker": "spread", "trade": "trade"}
_KIND = {"spread": "ticker", "ticker": "ticker", "trade": "trade"}
_SIDES = {"b": "buy", "s": "sell"}


class KrakenV1Codec:
    protocol = "kraken_v1"
    default_url = "wss://ws.kraken.com"
    default_rest_url = DEFAULT_REST_URL
    max_streams_per_connection: int | None = None
    # Dynamic, unpublished WS request limit (see KrakenCodec): 5/s, two requests per resubscribe.
    max_requests_per_second: float | None = 5.0

    def __init__(self, exchange: str = "kraken_v1") -> None:
        self.exchange = exchange
        # The symbol of the last rest_ticker_request: decode_rest_ticker(body) needs no symbol.
        self._rest_symbol: str | None = None
        self._next_reqid = 1
        # reqid -> (op, kind, {v1 pair: stream} still awaiting its per-pair status)
        self._pending: dict[int, tuple[str, str, dict[str, Stream]]] = {}
        self._pairs = SymbolTable("kraken_v1", kraken_v1_native, kraken_v1_unified, "pair")
        # channelID -> (channelName, pair) it was assigned by a subscriptionStatus
        self._channel_ids: dict[int, tuple[str, str]] = {}

    # --- symbols ------------------------------------------------------------------------------

    def native_symbol(self, symbol: str) -> str:
        return self._pairs.native(symbol)

    def unified_symbol(self, native: str) -> str:
        return self._pairs.unified(native)

    # --- client frames ------------------------------------------------------------------------

    def subscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        """``{"event":"subscribe","pair":["XBT/USD","ETH/USD"],"subscription":{"name":"spread"},
        "reqid":1}``"""
        return self._requests("subscribe", streams)

    def unsubscribe_messages(self, streams: Sequence[Stream]) -> list[str]:
        return self._requests("unsubscribe", streams)

    def _requests(self, op: str, streams: Sequence[Stream]) -> list[str]:
        by_kind = self._pairs.group_by_kind(streams, _CHANNEL)
        frames = []
        for kind, members in by_kind.items():
            reqid = self._next_reqid
            self._next_reqid += 1
            remember(self._pending, reqid, (op, kind, dict(members)))
            frames.append(
                dumps(
                    {
                        "event": op,
                        "pair": list(members),
                        "subscription": {"name": _CHANNEL[kind]},
                        "reqid": reqid,
                    }
                )
            )
        return frames

    # --- server frames ------------------------------------------------------------------------

    def decode_batch(
        self, frames: Sequence[str | bytes], received_ts: float | None = None
    ) -> DecodedBatch:
        """Frame by frame (``codec.decode_each``). A data array is routed by its trailing
        channel name and pair, which come after the payload (the leading ``channelID`` is
        deprecated), so no prefix tells its stream; and v1 is not the default Kraken codec."""
        return decode_each(self.decode, frames, received_ts)

    def decode(self, frame: str | bytes, received_ts: float | None = None) -> list[Event]:
        ts = time.time() if received_ts is None else received_ts
        try:
            msg = orjson.loads(frame)
            if type(msg) is list:
                return self._data(msg, ts)
            if type(msg) is not dict:
                raise DecodeError(
                    f"kraken_v1: expected a JSON array or object, got {type(msg).__name__}"
                )
            event = msg["event"]
            if event == "heartbeat" or event == "pong":
                return [Heartbeat(self.exchange)]
            if event == "subscriptionStatus":
                return self._subscription_status(msg)
            if event == "systemStatus":
                return [self._system_status(msg)]
            if event == "error":
                return [self._error(msg)]
            expect_str(event, "kraken_v1 event")
            return []
        except DecodeError:
            raise
        except FOREIGN_ERRORS as exc:
            raise decode_failure(self.protocol, exc) from exc

    def _data(self, msg: JsonArray, ts: float) -> list[Event]:
        """``[channelID, payload(, payload), channelName, pair]``: route by the last two."""
        if len(msg) < 4:
            raise DecodeError(f"kraken_v1: data array needs >= 4 elements, got {len(msg)}")
        channel = msg[-2]
        channel_id = msg[0]
        assigned = self._channel_ids.get(channel_id) if type(channel_id) is int else None
        if assigned is not None and (assigned[0] != channel or assigned[1] != msg[-1]):
            raise DecodeError(
                f"kraken_v1: channelID {channel_id} is {assigned[0]} {assigned[1]}, "
                f"but the frame says {show(channel)} {show(msg[-1])}"
            )
        if channel == "spread":
            return [self._spread(msg[1], self._pairs.decode(msg[-1]), ts)]
        if channel == "trade":
            return self._trades(msg[1], self._pairs.decode(msg[-1]), ts)
        if channel == "ticker":
            return [self._ticker(msg[1], self._pairs.decode(msg[-1]), ts)]
        expect_str(channel, "kraken_v1 channelName")
        return []  # book-*, ohlc-*: not used

    def _spread(self, row: object, symbol: str, ts: float) -> Ticker:
        """``[0,["5698.40000","5700.00000","1542057299.545897","1.01234567","0.98765432"],
        "spread","XBT/USD"]`` — [bid, ask, time, bidVolume, askVolume] (volumes since 1.x)."""
        row = expect_list(row, "kraken_v1 spread")
        bid = price(row[0], "kraken_v1 spread bid")
        ask = price(row[1], "kraken_v1 spread ask")
        check_book(bid, ask, "kraken_v1 spread")
        return Ticker(
            self.exchange,
            symbol,
            bid,
            ask,
            None,
            size(row[3], "kraken_v1 spread bidVolume") if len(row) > 3 else None,
            size(row[4], "kraken_v1 spread askVolume") if len(row) > 4 else None,
            unix_str_ts(row[2], "kraken_v1 spread time"),
            ts,
        )

    def _ticker(self, payload: object, symbol: str, ts: float) -> Ticker:
        """``[1668,{"a":["13.253900",35,"35.72892241"],"b":["13.232900",185,"185.18432037"],
        "c":["13.253900","3.71672000"],"v":[..],"p":[..],"t":[640,1353],"l":[..],"h":[..],
        "o":[..]},"ticker","WAVES/EUR"]`` — a/b middle element is the whole-lot volume."""
        payload = expect_dict(payload, "kraken_v1 ticker")
        ask_row = expect_list(payload["a"], "kraken_v1 ticker a")
        bid_row = expect_list(payload["b"], "kraken_v1 ticker b")
        bid = price(bid_row[0], "kraken_v1 ticker b[0]")
        ask = price(ask_row[0], "kraken_v1 ticker a[0]")
        check_book(bid, ask, "kraken_v1 ticker")
        last_row = payload.get("c")
        last = None if last_row is None else price(expect_list(last_row, "c")[0], "ticker c[0]")
        return Ticker(
            self.exchange,
            symbol,
            bid,
            ask,
            last,
            size(bid_row[2], "kraken_v1 ticker b[2]"),
            size(ask_row[2], "kraken_v1 ticker a[2]"),
            None,
            ts,
        )

    def _trades(self, rows: object, symbol: str, ts: float) -> list[Event]:
        """``[0,[["5541.20000","0.15850568","1534614057.321597","s","l",""],..],"trade",
        "XBT/USD"]`` — [price, volume, time, side (taker), orderType, misc(, trade_id)]."""
        out: list[Event] = []
        for row in expect_list(rows, "kraken_v1 trades"):
            row = expect_list(row, "kraken_v1 trade")
            side = _SIDES.get(row[3])
            if side is None:
                raise DecodeError(f"kraken_v1 trade: side must be b/s, got {show(row[3])}")
            out.append(
                Trade(
                    self.exchange,
                    symbol,
                    price(row[0], "kraken_v1 trade price"),
                    trade_size(row[1], "kraken_v1 trade volume"),
                    side,  # type: ignore[arg-type]
                    trade_id(row[6], "kraken_v1 trade_id") if len(row) > 6 else None,
                    unix_str_ts(row[2], "kraken_v1 trade time"),
                    ts,
                )
            )
        return out

    def _take_pending(self, reqid: object, pair: object) -> tuple[str | None, Stream | None]:
        """Resolve one per-pair reply against our pending request: (kind, stream)."""
        if type(reqid) is not int:
            return None, None
        pending = self._pending.get(reqid)
        if pending is None:
            return None, None
        _, kind, remaining = pending
        stream = remaining.pop(pair, None) if type(pair) is str else None
        if not remaining:
            del self._pending[reqid]
        return kind, stream

    def _subscription_status(self, msg: JsonObject) -> list[Event]:
        """``{"channelID":1668,"channelName":"ticker","event":"subscriptionStatus",
        "pair":"WAVES/EUR","status":"subscribed","subscription":{"name":"ticker"},"reqid":7}``
        or ``{"errorMessage":"Currency pair not supported LSK/XBT",
        "event":"subscriptionStatus","pair":"LSK/XBT","status":"error",
        "subscription":{"name":"book"}}``"""
        status = expect_str(msg["status"], "kraken_v1 subscriptionStatus status")
        reqid = msg.get("reqid")
        if reqid is not None and type(reqid) is not int:
            raise DecodeError(f"kraken_v1: reqid must be an integer, got {show(reqid)}")
        pair = msg.get("pair")
        subscription = msg.get("subscription")
        name = msg.get("channelName")
        if name is None and subscription is not None:
            name = expect_dict(subscription, "kraken_v1 subscription").get("name")
        kind = _KIND.get(name) if type(name) is str else None
        pending_kind, stream = self._take_pending(reqid, pair)
        if stream is None:
            stream = self._pairs.stream_or_none(kind or pending_kind, pair)
        streams = () if stream is None else (stream,)
        if status == "error":
            message = expect_str(msg["errorMessage"], "kraken_v1 errorMessage")
            return [SubscriptionError(self.exchange, message, streams, reqid)]
        if status != "subscribed" and status != "unsubscribed":
            raise DecodeError(f"kraken_v1: unknown subscriptionStatus status {show(status)}")
        # channelName as data frames will carry it ("book-10"), not the subscription's "book".
        self._assign(msg.get("channelID"), status, msg.get("channelName"), pair)
        if not streams and pending_kind is None:
            return []  # an ack for a channel we never ask for (book, ohlc...)
        if status == "unsubscribed":
            return [Unsubscribed(self.exchange, streams, reqid)]
        return [Subscribed(self.exchange, streams, reqid)]

    def _assign(self, channel_id: object, status: str, name: object, pair: object) -> None:
        """Remember (or, on unsubscribe, forget) which stream a ``channelID`` carries."""
        if type(channel_id) is not int:
            return
        if status == "unsubscribed":
            self._channel_ids.pop(channel_id, None)
        elif type(name) is str and type(pair) is str:
            remember(self._channel_ids, channel_id, (name, pair))

    def _system_status(self, msg: JsonObject) -> SystemStatus:
        """``{"connectionID":18239578009413566319,"event":"systemStatus","status":"online",
        "version":"1.8.3"}`` (status: online, maintenance, cancel_only, post_only)."""
        return SystemStatus(self.exchange, expect_str(msg["status"], "kraken_v1 status"))

    def _error(self, msg: JsonObject) -> SubscriptionError:
        """``{"errorMessage":"Malformed request","event":"error","reqid":42}``: a request we
        sent was refused as a whole."""
        message = expect_str(msg["errorMessage"], "kraken_v1 errorMessage")
        reqid = msg.get("reqid")
        streams: tuple[Stream, ...] = ()
        if type(reqid) is int:
            pending = self._pending.pop(reqid, None)
            if pending is not None:
                streams = tuple(pending[2].values())
        else:
            reqid = None
        return SubscriptionError(self.exchange, message, streams, reqid)

    # --- REST fallback ------------------------------------------------------------------------

    def rest_ticker_request(self, symbol: str, base_url: str | None = None) -> RestRequest:
        self._rest_symbol = symbol
        return kraken_rest_ticker_request(symbol, base_url or self.default_rest_url)

    def decode_rest_ticker(
        self, body: bytes | str, symbol: str | None = None, received_ts: float | None = None
    ) -> Ticker:
        ts = time.time() if received_ts is None else received_ts
        symbol = rest_symbol(symbol or self._rest_symbol, "kraken_v1")
        return decode_kraken_rest_ticker(self.exchange, symbol, body, ts)
