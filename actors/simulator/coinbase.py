"""Coinbase Exchange "ws-feed" and its REST product ticker, server side.

Decisions:

* Channels simulated: ``ticker`` (kind "ticker"), ``matches`` (kind "trade") and ``heartbeat``.
  Any other channel name fails the subscribe with reason ``"<name> is not a valid channel"``.
* One invalid product id (or channel) fails the *whole* message: nothing of it is applied and an
  ``error`` frame is sent; unknown message types get an error too (``Failed to subscribe``
  wording with a reason; the exact real text is not documented).
* A subscription needs product ids (top-level or per channel). Unsubscribe without product ids
  drops the whole channel; unknown products in an unsubscribe are ignored.
* A connection that has not completed a successful subscribe 5 s after the handshake is dropped
  without a close frame (clients report ``1006 unexpected EOF``).
* Per product, the sequence is the market's, shared by every channel; a ticker and the match of
  the same trade carry the same ``sequence`` and ``trade_id``. Heartbeats carry the product's
  current sequence without consuming one.
* After a subscribe: the cumulative ``subscriptions`` reply, then per new product one ``ticker``
  (the last trade) and/or one ``last_match``; live updates for that pair start only after its
  initial frame, so they never arrive before it.
"""

from __future__ import annotations

import re
import uuid
from typing import ClassVar

import trio

from actors.exchanges.symbols import coinbase_native
from actors.simulator.connection import Connection, Drop
from actors.simulator.http import HttpRequest, HttpResponse
from actors.simulator.model import Market, Step
from actors.simulator.session import INVALID_JSON, ExchangeProtocol, Session, dumps
from actors.simulator.timefmt import rfc3339_ns, rfc3339_us

CHANNELS = ("ticker", "matches", "heartbeat")
KIND_OF_CHANNEL = {"ticker": "ticker", "matches": "trade"}
SUBSCRIBE_TIMEOUT_S = 5.0
HEARTBEAT_INTERVAL_S = 1.0
TICKER_PATH = re.compile(r"^/products/([^/]+)/ticker/?$")
UUID_MIX = 0x9E3779B97F4A7C15F39CC0605CEDC834


def order_id(trade_id: int, role: int) -> str:
    """A stable UUID per (trade, maker/taker) without keeping order state."""
    return str(uuid.UUID(int=((trade_id * 2 + role) * UUID_MIX) % (1 << 128), version=4))


def opposite(side: str) -> str:
    return "sell" if side == "buy" else "buy"


class _SubscribeError(Exception):
    pass


class CoinbaseProtocol(ExchangeProtocol):
    name: ClassVar[str] = "coinbase"
    ws_path: ClassVar[str] = ""
    default_symbols: ClassVar[tuple[str, ...]] = ("BTC/USD", "ETH/USD")

    def native(self, symbol: str) -> str:
        return coinbase_native(symbol)

    def session(self, conn: Connection) -> Session:
        return CoinbaseSession(self, conn)

    def rest(self, request: HttpRequest) -> HttpResponse:
        if not request.header("user-agent"):
            return HttpResponse.json(400, {"message": "User-Agent header is required."})
        match = TICKER_PATH.match(request.path)
        market = self.by_native.get(match.group(1)) if match else None
        if market is None:
            return HttpResponse.json(404, {"message": "NotFound"})
        step = market.last
        return HttpResponse.json(
            200,
            {
                "ask": market.price(step.ask),
                "bid": market.price(step.bid),
                "volume": market.size(step.volume, 8),
                "trade_id": step.trade_id,
                "price": market.price(step.price),
                "size": market.size(step.size, 8),
                "time": rfc3339_ns(step.ts),
                "rfq_volume": "0.000000",
            },
        )


def ticker_payload(market: Market, step: Step, product_id: str) -> dict[str, object]:
    price, size = market.price, market.size
    return {
        "type": "ticker",
        "sequence": step.sequence,
        "product_id": product_id,
        "price": price(step.price),
        "open_24h": price(step.open),
        "volume_24h": size(step.volume, 8),
        "low_24h": price(step.low),
        "high_24h": price(step.high),
        "volume_30d": size(step.volume * 30, 8),
        "best_bid": price(step.bid),
        "best_bid_size": size(step.bid_size, 8),
        "best_ask": price(step.ask),
        "best_ask_size": size(step.ask_size, 8),
        "side": step.side,
        "time": rfc3339_us(step.ts),
        "trade_id": step.trade_id,
        "last_size": size(step.size, 8),
    }


def match_payload(market: Market, step: Step, product_id: str, kind: str) -> dict[str, object]:
    return {
        "type": kind,
        "trade_id": step.trade_id,
        "maker_order_id": order_id(step.trade_id, 0),
        "taker_order_id": order_id(step.trade_id, 1),
        "side": opposite(step.side),  # the maker's side
        "size": market.size(step.size, 8),
        "price": market.price(step.price),
        "product_id": product_id,
        "sequence": step.sequence,
        "time": rfc3339_us(step.ts),
    }


class CoinbaseSession(Session):
    protocol: CoinbaseProtocol

    def __init__(self, protocol: CoinbaseProtocol, conn: Connection) -> None:
        super().__init__(protocol, conn)
        self.channels: dict[str, dict[str, None]] = {}  # channel -> ordered product ids
        self._live: set[tuple[str, str]] = set()  # (channel, product) whose updates may flow
        self._subscribed = trio.Event()

    async def on_open(self) -> None:
        assert self.nursery is not None
        self.nursery.start_soon(self._subscribe_deadline)
        self.nursery.start_soon(self._heartbeat_loop)

    async def _subscribe_deadline(self) -> None:
        with trio.move_on_after(SUBSCRIBE_TIMEOUT_S):
            await self._subscribed.wait()
        if not self._subscribed.is_set():
            await self.conn.gate()
            self.conn.end(Drop())

    async def _heartbeat_loop(self) -> None:
        while True:
            await trio.sleep(HEARTBEAT_INTERVAL_S)
            for product_id in list(self.channels.get("heartbeat", ())):
                await self.conn.send_built(self._heartbeat_frame, product_id)

    def _heartbeat_frame(self, product_id: str) -> str | None:
        if product_id not in self.channels.get("heartbeat", ()):
            return None
        step = self.protocol.by_native[product_id].last
        return dumps(
            {
                "type": "heartbeat",
                "sequence": step.sequence,
                "last_trade_id": step.trade_id,
                "product_id": product_id,
                "time": rfc3339_us(self.server.now_ts()),
            }
        )

    # --- requests ------------------------------------------------------------------------------
    async def on_request(self, raw: str, message: object) -> None:
        if message is INVALID_JSON or not isinstance(message, dict):
            await self._error("Failed to subscribe", "malformed JSON")
            return
        kind = message.get("type")
        try:
            if kind == "subscribe":
                await self._subscribe(self._requested(message, subscribing=True))
            elif kind == "unsubscribe":
                await self._unsubscribe(self._requested(message, subscribing=False))
            else:
                raise _SubscribeError(f"{kind} is not a valid message type")
        except _SubscribeError as exc:
            verb = "unsubscribe" if kind == "unsubscribe" else "subscribe"
            await self._error(f"Failed to {verb}", str(exc))

    async def _error(self, message: str, reason: str) -> None:
        await self.conn.send(dumps({"type": "error", "message": message, "reason": reason}))

    def _requested(
        self, message: dict[str, object], *, subscribing: bool
    ) -> list[tuple[str, list[str] | None]]:
        top = self._product_ids(message.get("product_ids"))
        channels = message.get("channels")
        if not isinstance(channels, list) or not channels:
            raise _SubscribeError("No channels provided")
        requested: list[tuple[str, list[str] | None]] = []
        for entry in channels:
            if isinstance(entry, str):
                name, product_ids = entry, top
            elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
                name = entry["name"]
                own = entry.get("product_ids")
                product_ids = top if own is None else self._product_ids(own)
            else:
                raise _SubscribeError(f"{entry} is not a valid channel")
            if name not in CHANNELS:
                raise _SubscribeError(f"{name} is not a valid channel")
            if subscribing:
                if not product_ids:
                    raise _SubscribeError("No product ids provided")
                for product_id in product_ids:
                    if product_id not in self.protocol.by_native:
                        raise _SubscribeError(f"{product_id} is not a valid product")
            requested.append((name, product_ids))
        return requested

    @staticmethod
    def _product_ids(value: object) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise _SubscribeError("product_ids must be a list of product ids")
        return value

    def _subscriptions_frame(self) -> str:
        return dumps(
            {
                "type": "subscriptions",
                "channels": [
                    {"name": name, "product_ids": list(products), "account_ids": None}
                    for name, products in self.channels.items()
                    if products
                ],
            }
        )

    async def _subscribe(self, requested: list[tuple[str, list[str] | None]]) -> None:
        added: list[tuple[str, str]] = []
        for name, product_ids in requested:
            products = self.channels.setdefault(name, {})
            for product_id in product_ids or ():
                if product_id not in products:
                    products[product_id] = None
                    added.append((name, product_id))
                    if name in KIND_OF_CHANNEL:
                        symbol = self.protocol.by_native[product_id].symbol
                        self.add_stream(KIND_OF_CHANNEL[name], symbol)
        self._subscribed.set()
        await self.conn.send(self._subscriptions_frame())
        self._update_feeds()
        for name, product_id in added:
            if name == "ticker":
                await self.conn.send_built(self._initial_frame, name, product_id, "ticker")
            elif name == "matches":
                await self.conn.send_built(self._initial_frame, name, product_id, "last_match")
            self._live.add((name, product_id))

    async def _unsubscribe(self, requested: list[tuple[str, list[str] | None]]) -> None:
        for name, product_ids in requested:
            products = self.channels.get(name, {})
            for product_id in list(products) if product_ids is None else product_ids:
                if product_id in products:
                    del products[product_id]
                    self._live.discard((name, product_id))
                    if name in KIND_OF_CHANNEL:
                        symbol = self.protocol.by_native[product_id].symbol
                        self.remove_stream(KIND_OF_CHANNEL[name], symbol)
            if not products:
                self.channels.pop(name, None)
        await self.conn.send(self._subscriptions_frame())
        self._update_feeds()

    def _update_feeds(self) -> None:
        products = {**self.channels.get("ticker", {}), **self.channels.get("matches", {})}
        self.set_feeds([self.protocol.by_native[p].symbol for p in products])

    # --- data ----------------------------------------------------------------------------------
    def _initial_frame(self, channel: str, product_id: str, kind: str) -> str | None:
        if product_id not in self.channels.get(channel, ()):
            return None
        market = self.protocol.by_native[product_id]
        if kind == "ticker":
            return dumps(ticker_payload(market, market.last, product_id))
        return dumps(match_payload(market, market.last, product_id, kind))

    def _match_frame(self, market: Market, step: Step) -> str | None:
        product_id = self.protocol.native_of[market.symbol]
        if ("matches", product_id) not in self._live:
            return None
        return dumps(match_payload(market, step, product_id, "match"))

    def _ticker_frame(self, market: Market, step: Step) -> str | None:
        product_id = self.protocol.native_of[market.symbol]
        if ("ticker", product_id) not in self._live:
            return None
        return dumps(ticker_payload(market, step, product_id))

    async def on_step(self, market: Market, step: Step) -> None:
        await self.conn.send_built(self._match_frame, market, step)
        await self.conn.send_built(self._ticker_frame, market, step)
