"""Coinbase Advanced Trade market-data WebSocket and its public REST ticker, server side.

Decisions:

* Channels simulated: ``ticker`` (kind "ticker"), ``market_trades`` (kind "trade") and
  ``heartbeats``. One channel per message (a ``channels`` list is refused). Any failure (unknown
  channel, missing/invalid product) answers ``{"type":"error","message":"failure to subscribe"}``
  (or ``failure to unsubscribe``) without ``channel``/``sequence_num`` and applies nothing.
* ``sequence_num`` is per connection, +1 per frame across all channels, starting at 0, gap-free;
  it is assigned right before the frame goes on the wire (``Connection.send_built``).
* After a subscribe: the cumulative ``subscriptions`` frame, then per new product one
  ``snapshot`` (ticker: the current book; market_trades: the last 100 trades, newest first); live
  ``update`` frames for that product start after its snapshot.
* ``heartbeats`` sends one frame per second with a Go-style ``current_time`` and a per-connection
  ``heartbeat_counter``; it is listed as ``"heartbeats":["heartbeats"]`` in subscriptions.
* Quiet subscriptions: checked every 30 s; a connection with data subscriptions, no
  ``heartbeats`` subscription and no update or snapshot sent for 60 s or more is closed (close
  code 1000) - so it happens 60-90 s after the last update, as documented. (The docs say the
  channels are "closed"; closing the socket is how clients observe it.)
* The 5 s subscribe rule applies as on the Exchange feed (dropped without a close frame).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import ClassVar

import trio

from actors.exchanges.symbols import coinbase_native
from actors.simulator.connection import Close, Connection, Drop
from actors.simulator.http import HttpRequest, HttpResponse
from actors.simulator.model import Market, Step
from actors.simulator.session import INVALID_JSON, ExchangeProtocol, Session, dumps
from actors.simulator.timefmt import go_time, rfc3339_ns, rfc3339_us

CHANNELS = ("ticker", "market_trades", "heartbeats")
KIND_OF_CHANNEL = {"ticker": "ticker", "market_trades": "trade"}
SUBSCRIBE_TIMEOUT_S = 5.0
HEARTBEAT_INTERVAL_S = 1.0
QUIET_CHECK_S = 30.0
QUIET_CLOSE_S = 60.0
TICKER_PATH = re.compile(r"^/api/v3/brokerage/market/products/([^/]+)/ticker/?$")


class _SubscribeError(Exception):
    pass


def ticker_item(market: Market, step: Step, product_id: str) -> dict[str, object]:
    price, size = market.price, market.size
    change_pct = (step.price - step.open) / step.open * 100 if step.open else 0.0
    return {
        "type": "ticker",
        "product_id": product_id,
        "price": price(step.price),
        "volume_24_h": size(step.volume, 8),
        "low_24_h": price(step.low),
        "high_24_h": price(step.high),
        "low_52_w": price(step.low * 6 // 10),
        "high_52_w": price(step.high * 14 // 10),
        "price_percent_chg_24_h": repr(change_pct),
        "best_bid": price(step.bid),
        "best_ask": price(step.ask),
        "best_bid_quantity": size(step.bid_size, 8),
        "best_ask_quantity": size(step.ask_size, 8),
    }


def trade_item(market: Market, step: Step, product_id: str) -> dict[str, object]:
    return {
        "trade_id": str(step.trade_id),
        "product_id": product_id,
        "price": market.price(step.price),
        "size": market.size(step.size, 8),
        "time": rfc3339_us(step.ts),
        "side": "SELL" if step.side == "buy" else "BUY",  # the maker's side
    }


class CoinbaseAdvancedProtocol(ExchangeProtocol):
    name: ClassVar[str] = "coinbase_advanced"
    ws_path: ClassVar[str] = ""
    default_symbols: ClassVar[tuple[str, ...]] = ("BTC/USD", "ETH/USD")

    def native(self, symbol: str) -> str:
        return coinbase_native(symbol)

    def session(self, conn: Connection) -> Session:
        return CoinbaseAdvancedSession(self, conn)

    def rest(self, request: HttpRequest) -> HttpResponse:
        match = TICKER_PATH.match(request.path)
        market = self.by_native.get(match.group(1)) if match else None
        if market is None:
            return HttpResponse.json(
                404,
                {"error": "NOT_FOUND", "error_details": "product not found", "message": "NotFound"},
            )
        try:
            limit = max(1, min(100, int(request.param("limit") or "1")))
        except ValueError:
            return HttpResponse.json(400, {"error": "INVALID_ARGUMENT", "message": "bad limit"})
        product_id = self.native_of[market.symbol]
        trades = list(market.history)[-limit:][::-1]
        return HttpResponse.json(
            200,
            {
                "trades": [trade_item(market, step, product_id) for step in trades],
                "best_bid": market.price(market.last.bid),
                "best_ask": market.price(market.last.ask),
            },
        )


class CoinbaseAdvancedSession(Session):
    protocol: CoinbaseAdvancedProtocol

    def __init__(self, protocol: CoinbaseAdvancedProtocol, conn: Connection) -> None:
        super().__init__(protocol, conn)
        self.channels: dict[str, dict[str, None]] = {}
        self._live: set[tuple[str, str]] = set()
        self._subscribed = trio.Event()
        self._sequence_num = 0
        self._heartbeat_counter = 0
        self._last_update_at = trio.current_time()

    async def on_open(self) -> None:
        assert self.nursery is not None
        self.nursery.start_soon(self._subscribe_deadline)
        self.nursery.start_soon(self._heartbeat_loop)
        self.nursery.start_soon(self._quiet_watchdog)

    def _envelope(self, channel: str, events: list[dict[str, object]]) -> str:
        number = self._sequence_num
        self._sequence_num += 1
        return dumps(
            {
                "channel": channel,
                "client_id": "",
                "timestamp": rfc3339_ns(self.server.now_ts()),
                "sequence_num": number,
                "events": events,
            }
        )

    async def _send_events(
        self, channel: str, events: Callable[[], list[dict[str, object]] | None]
    ) -> None:
        def build() -> str | None:
            built = events()
            return None if built is None else self._envelope(channel, built)

        await self.conn.send_built(build)

    # --- timers --------------------------------------------------------------------------------
    async def _subscribe_deadline(self) -> None:
        with trio.move_on_after(SUBSCRIBE_TIMEOUT_S):
            await self._subscribed.wait()
        if not self._subscribed.is_set():
            await self.conn.gate()
            self.conn.end(Drop())

    async def _heartbeat_loop(self) -> None:
        while True:
            await trio.sleep(HEARTBEAT_INTERVAL_S)
            await self._send_events("heartbeats", self._heartbeat_events)

    def _heartbeat_events(self) -> list[dict[str, object]] | None:
        if "heartbeats" not in self.channels:
            return None
        self._heartbeat_counter += 1
        uptime_s = trio.current_time() - self.server.started_at
        return [
            {
                "current_time": go_time(self.server.now_ts(), uptime_s),
                "heartbeat_counter": self._heartbeat_counter,
            }
        ]

    async def _quiet_watchdog(self) -> None:
        while True:
            await trio.sleep(QUIET_CHECK_S)
            has_data = any(self.channels.get(c) for c in KIND_OF_CHANNEL)
            quiet_s = trio.current_time() - self._last_update_at
            if has_data and "heartbeats" not in self.channels and quiet_s >= QUIET_CLOSE_S:
                await self.conn.gate()
                self.conn.end(Close(1000, "subscription closed: no updates"))
                return

    # --- requests ------------------------------------------------------------------------------
    async def on_request(self, raw: str, message: object) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        verb = "unsubscribe" if kind == "unsubscribe" else "subscribe"
        try:
            if message is INVALID_JSON or kind not in ("subscribe", "unsubscribe"):
                raise _SubscribeError
            assert isinstance(message, dict)
            channel, product_ids = self._requested(message, subscribing=kind == "subscribe")
        except _SubscribeError:
            await self.conn.send(dumps({"type": "error", "message": f"failure to {verb}"}))
            return
        if kind == "subscribe":
            await self._subscribe(channel, product_ids)
        else:
            await self._unsubscribe(channel, product_ids)

    def _requested(self, message: dict[str, object], *, subscribing: bool) -> tuple[str, list[str]]:
        channel = message.get("channel")
        product_ids = message.get("product_ids", [])
        if channel not in CHANNELS or not isinstance(product_ids, list):
            raise _SubscribeError
        assert isinstance(channel, str)
        if channel == "heartbeats":
            return channel, []
        if not all(isinstance(p, str) for p in product_ids):
            raise _SubscribeError
        if subscribing and (
            not product_ids or not all(p in self.protocol.by_native for p in product_ids)
        ):
            raise _SubscribeError
        return channel, product_ids

    def _subscriptions_events(self) -> list[dict[str, object]]:
        listed: dict[str, list[str]] = {}
        for channel, products in self.channels.items():
            if channel == "heartbeats":
                listed[channel] = ["heartbeats"]
            elif products:
                listed[channel] = list(products)
        return [{"subscriptions": listed}]

    async def _subscribe(self, channel: str, product_ids: list[str]) -> None:
        products = self.channels.setdefault(channel, {})
        added = [p for p in dict.fromkeys(product_ids) if p not in products]
        for product_id in added:
            products[product_id] = None
            symbol = self.protocol.by_native[product_id].symbol
            self.add_stream(KIND_OF_CHANNEL[channel], symbol)
        self._subscribed.set()
        await self._send_events("subscriptions", self._subscriptions_events)
        self._update_feeds()
        for product_id in added:
            await self._send_events(channel, partial(self._snapshot, channel, product_id))
            self._live.add((channel, product_id))

    async def _unsubscribe(self, channel: str, product_ids: list[str]) -> None:
        if channel == "heartbeats":
            self.channels.pop("heartbeats", None)
        else:
            products = self.channels.get(channel, {})
            for product_id in product_ids or list(products):
                if product_id in products:
                    del products[product_id]
                    self._live.discard((channel, product_id))
                    symbol = self.protocol.by_native[product_id].symbol
                    self.remove_stream(KIND_OF_CHANNEL[channel], symbol)
            if not products:
                self.channels.pop(channel, None)
        await self._send_events("subscriptions", self._subscriptions_events)
        self._update_feeds()

    def _update_feeds(self) -> None:
        products = {**self.channels.get("ticker", {}), **self.channels.get("market_trades", {})}
        self.set_feeds([self.protocol.by_native[p].symbol for p in products])

    # --- data ----------------------------------------------------------------------------------
    def _snapshot(self, channel: str, product_id: str) -> list[dict[str, object]] | None:
        if product_id not in self.channels.get(channel, ()):
            return None
        market = self.protocol.by_native[product_id]
        self._last_update_at = trio.current_time()
        if channel == "ticker":
            return [{"type": "snapshot", "tickers": [ticker_item(market, market.last, product_id)]}]
        trades = [trade_item(market, step, product_id) for step in reversed(market.history)]
        return [{"type": "snapshot", "trades": trades}]

    def _update(self, channel: str, market: Market, step: Step) -> list[dict[str, object]] | None:
        product_id = self.protocol.native_of[market.symbol]
        if (channel, product_id) not in self._live:
            return None
        self._last_update_at = trio.current_time()
        if channel == "ticker":
            return [{"type": "update", "tickers": [ticker_item(market, step, product_id)]}]
        return [{"type": "update", "trades": [trade_item(market, step, product_id)]}]

    async def on_step(self, market: Market, step: Step) -> None:
        # the trade first, then the book it left behind
        await self._send_events(
            "market_trades", lambda: self._update("market_trades", market, step)
        )
        await self._send_events("ticker", lambda: self._update("ticker", market, step))
