"""Kraken Spot WebSocket v1 at ``/``, server side; REST as in ``kraken``.

Decisions:

* First frame: ``systemStatus`` with a seeded u64 ``connectionID`` above 2**63.
* Heartbeat ``{"event":"heartbeat"}`` every second on every connection, busy or not (what the
  recorded traffic shows, rather than the docs' "when idle").
* Subscriptions simulated: ``ticker`` and ``spread`` (kind "ticker") and ``trade`` (kind
  "trade"). Other names (``book``, ``ohlc``, ``*``) are answered per pair with
  ``Subscription name invalid`` (not simulated here).
* Pairs use the v1 names (``XBT/USD``). A pair without a slash gets ``Currency pair not in ISO
  4217-A3 format <pair>``; an unknown one (including v2 names like ``BTC/USD``) ``Currency pair
  not supported <pair>``. One ``subscriptionStatus`` per pair, ``reqid`` echoed when given.
* ``channelID``: per connection, allocated per (subscription, pair) from a seeded start.
* Data arrays carry decimals and times as strings; ticker ``a``/``b`` have the integer whole-lot
  volume in the middle. The ticker is sent on subscribe (snapshot) and then on every trade,
  ``spread`` on every book change (every step here), ``trade`` one trade per frame.
"""

from __future__ import annotations

from typing import ClassVar

import trio

from actors.exchanges.symbols import kraken_v1_native
from actors.simulator.connection import Connection
from actors.simulator.http import HttpRequest, HttpResponse
from actors.simulator.kraken import KrakenFields, kraken_price, rest_ticker
from actors.simulator.model import Market, Step
from actors.simulator.session import INVALID_JSON, ExchangeProtocol, Session, dumps
from actors.simulator.timefmt import seconds_micros

HEARTBEAT_INTERVAL_S = 1.0
STATUS_VERSION = "1.9.0"
KIND_OF_NAME = {"ticker": "ticker", "spread": "ticker", "trade": "trade"}


class KrakenV1Protocol(ExchangeProtocol):
    name: ClassVar[str] = "kraken_v1"
    ws_path: ClassVar[str] = ""
    default_symbols: ClassVar[tuple[str, ...]] = ("BTC/USD", "ETH/USD")

    def native(self, symbol: str) -> str:
        return kraken_v1_native(symbol)

    def session(self, conn: Connection) -> Session:
        return KrakenV1Session(self, conn)

    def rest(self, request: HttpRequest) -> HttpResponse:
        return rest_ticker(self.markets, request)


class KrakenV1Session(Session):
    protocol: KrakenV1Protocol

    def __init__(self, protocol: KrakenV1Protocol, conn: Connection) -> None:
        super().__init__(protocol, conn)
        # (name, pair) -> channelID; insertion-ordered
        self.channels: dict[tuple[str, str], int] = {}
        self._live: set[tuple[str, str]] = set()
        self._next_channel_id = 100 + self.server._rng.randrange(9_000)

    async def on_open(self) -> None:
        status = {
            "connectionID": self.server._connection_number(),
            "event": "systemStatus",
            "status": "online",
            "version": STATUS_VERSION,
        }
        await self.conn.send(dumps(status))
        assert self.nursery is not None
        self.nursery.start_soon(self._heartbeat_loop)

    async def _heartbeat_loop(self) -> None:
        while True:
            await trio.sleep(HEARTBEAT_INTERVAL_S)
            await self.conn.send('{"event":"heartbeat"}')

    # --- requests ------------------------------------------------------------------------------
    async def on_request(self, raw: str, message: object) -> None:
        if message is INVALID_JSON or not isinstance(message, dict):
            await self.conn.send(dumps({"errorMessage": "Malformed request", "event": "error"}))
            return
        event, reqid = message.get("event"), message.get("reqid")
        if event == "ping":
            reply: dict[str, object] = {"event": "pong"}
            if reqid is not None:
                reply["reqid"] = reqid
            await self.conn.send(dumps(reply))
        elif event in ("subscribe", "unsubscribe"):
            await self._subscription(event, message, reqid)
        else:
            await self.conn.send(dumps({"errorMessage": "Event(s) not found", "event": "error"}))

    async def _status(self, body: dict[str, object], reqid: object) -> None:
        if reqid is not None:
            body["reqid"] = reqid
        await self.conn.send(dumps(body))

    async def _subscription(self, event: str, message: dict[str, object], reqid: object) -> None:
        subscription = message.get("subscription")
        name = subscription.get("name") if isinstance(subscription, dict) else None
        pairs = message.get("pair")
        if not isinstance(pairs, list) or not pairs or not all(isinstance(p, str) for p in pairs):
            await self._status(
                {
                    "errorMessage": "Pair(s) not found",
                    "event": "subscriptionStatus",
                    "status": "error",
                    "subscription": subscription,
                },
                reqid,
            )
            return
        for pair in pairs:
            error = None
            if "/" not in pair:
                error = f"Currency pair not in ISO 4217-A3 format {pair}"
            elif pair not in self.protocol.by_native:
                error = f"Currency pair not supported {pair}"
            elif name not in KIND_OF_NAME:
                error = "Subscription name invalid"
            elif event == "subscribe" and (name, pair) in self.channels:
                error = "Subscription already exists"
            elif event == "unsubscribe" and (name, pair) not in self.channels:
                error = "Subscription Not Found"
            if error is not None:
                await self._status(
                    {
                        "errorMessage": error,
                        "event": "subscriptionStatus",
                        "pair": pair,
                        "status": "error",
                        "subscription": subscription,
                    },
                    reqid,
                )
                continue
            assert isinstance(name, str)
            symbol = self.protocol.by_native[pair].symbol
            if event == "subscribe":
                channel_id = self.channels[(name, pair)] = self._next_channel_id
                self._next_channel_id += 1
                self.add_stream(KIND_OF_NAME[name], symbol)
                status = "subscribed"
            else:
                channel_id = self.channels.pop((name, pair))
                self._live.discard((name, pair))
                self.remove_stream(KIND_OF_NAME[name], symbol)
                status = "unsubscribed"
            self._update_feeds()
            await self._status(
                {
                    "channelID": channel_id,
                    "channelName": name,
                    "event": "subscriptionStatus",
                    "pair": pair,
                    "status": status,
                    "subscription": subscription,
                },
                reqid,
            )
            if status == "subscribed":
                if name == "ticker":
                    await self.conn.send_built(self._ticker_snapshot, pair)
                self._live.add((name, pair))

    def _update_feeds(self) -> None:
        pairs = dict.fromkeys(pair for _, pair in self.channels)
        self.set_feeds([self.protocol.by_native[p].symbol for p in pairs])

    # --- data ----------------------------------------------------------------------------------
    def _ticker(self, market: Market, step: Step, channel_id: int, pair: str) -> str:
        f = KrakenFields.of(market, step, vwap_decimals=6)
        return (
            f'[{channel_id},{{"a":["{f.ask}",{f.ask_whole},"{f.ask_size}"],'
            f'"b":["{f.bid}",{f.bid_whole},"{f.bid_size}"],"c":["{f.last}","{f.last_size}"],'
            f'"v":["{f.volume}","{f.volume}"],"p":["{f.vwap}","{f.vwap}"],'
            f'"t":[{f.trades},{f.trades}],"l":["{f.low}","{f.low}"],'
            f'"h":["{f.high}","{f.high}"],"o":["{f.open}","{f.open}"]}},"ticker","{pair}"]'
        )

    def _ticker_snapshot(self, pair: str) -> str | None:
        channel_id = self.channels.get(("ticker", pair))
        if channel_id is None:
            return None
        market = self.protocol.by_native[pair]
        return self._ticker(market, market.last, channel_id, pair)

    def _frame(self, name: str, market: Market, step: Step) -> str | None:
        pair = self.protocol.native_of[market.symbol]
        if (name, pair) not in self._live:
            return None
        channel_id = self.channels[(name, pair)]
        if name == "ticker":
            return self._ticker(market, step, channel_id, pair)
        ts = seconds_micros(step.ts)
        if name == "spread":
            return (
                f'[{channel_id},["{kraken_price(market, step.bid)}",'
                f'"{kraken_price(market, step.ask)}","{ts}","{market.size(step.bid_size, 8)}",'
                f'"{market.size(step.ask_size, 8)}"],"spread","{pair}"]'
            )
        side = "b" if step.side == "buy" else "s"
        return (
            f'[{channel_id},[["{kraken_price(market, step.price)}","{market.size(step.size, 8)}",'
            f'"{ts}","{side}","m",""]],"trade","{pair}"]'
        )

    async def on_step(self, market: Market, step: Step) -> None:
        for name in ("trade", "ticker", "spread"):
            await self.conn.send_built(self._frame, name, market, step)
