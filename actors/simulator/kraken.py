"""Kraken Spot WebSocket v2 at ``/v2`` and the Kraken REST ticker, server side. The REST part
is shared with ``kraken_v1``.

Decisions:

* On connect: one ``status`` update with a random u64 ``connection_id`` above 2**63 (seeded).
* Channels simulated: ``ticker`` (kind "ticker"; ``event_trigger`` ``trades`` default or
  ``bbo``, ``snapshot`` default true), ``trade`` (kind "trade"; ``snapshot`` default false, the
  last 50 trades) and ``heartbeat`` (ack only). Other channels: ``Channel <name> not supported``.
  Every market step is one trade and one BBO change, so both triggers emit on every step.
* Acks and errors are per symbol, carry ``time_in``/``time_out`` (RFC 3339 µs) and echo
  ``req_id``. Symbols must be the v2 names (``BTC/USD``); anything else, including v1 names like
  ``XBT/USD``, is ``Currency pair not supported <symbol>``. Subscribing twice answers
  ``Already subscribed``; unsubscribing an absent one ``Subscription Not Found``.
* Prices and quantities are JSON numbers whose text is the exact tick/lot value.
* Heartbeat: once any channel is subscribed, ``{"channel":"heartbeat"}`` every second in which
  no other frame was sent.

REST ``GET /0/public/Ticker?pair=``: accepts the REST altname (``XBTUSD``), Kraken's own key
(``XXBTZUSD``) or the plain ``BTCUSD``, comma-separated; answers keyed by Kraken's own name
(``X``/``Z`` prefixed for the legacy assets listed below, else the altname). Unknown pairs give
HTTP 200 ``{"error":["EQuery:Unknown asset pair"],"result":{}}``.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import trio

from actors.exchanges.symbols import kraken_native, kraken_rest_pair, kraken_v1_native
from actors.simulator.connection import Connection
from actors.simulator.http import HttpRequest, HttpResponse
from actors.simulator.model import Market, Step
from actors.simulator.session import INVALID_JSON, ExchangeProtocol, Session, dumps
from actors.simulator.timefmt import rfc3339_us

LEGACY_CRYPTO = frozenset({"XBT", "ETH", "LTC", "XRP", "XLM", "XMR", "ZEC", "ETC", "MLN", "REP"})
LEGACY_FIAT = frozenset({"USD", "EUR", "GBP", "JPY", "CAD"})
HEARTBEAT_INTERVAL_S = 1.0
TRADE_SNAPSHOT_LENGTH = 50
STATUS_VERSION = "2.0.10"
KIND_OF_CHANNEL = {"ticker": "ticker", "trade": "trade"}


def kraken_rest_key(symbol: str) -> str:
    """Kraken's own pair name, the key of REST results: ``BTC/USD`` -> ``XXBTZUSD``."""
    base, quote = kraken_v1_native(symbol).split("/")
    if base in LEGACY_CRYPTO and (quote in LEGACY_FIAT or quote in LEGACY_CRYPTO):
        return f"X{base}{'Z' if quote in LEGACY_FIAT else 'X'}{quote}"
    return base + quote


def kraken_price(market: Market, ticks: int) -> str:
    return market.price(ticks, max(5, market.spec.price_decimals))


@attrs.frozen(slots=True)
class KrakenFields:
    """A step formatted the Kraken v1/REST way: decimals as strings (prices with at least 5
    decimals, sizes with 8), whole-lot volumes as integers. Today and 24 h figures are the
    same market-session figures here."""

    ask: str
    ask_whole: int
    ask_size: str
    bid: str
    bid_whole: int
    bid_size: str
    last: str
    last_size: str
    volume: str
    vwap: str
    trades: int
    low: str
    high: str
    open: str

    @classmethod
    def of(cls, market: Market, step: Step, *, vwap_decimals: int) -> KrakenFields:
        def price(ticks: int) -> str:
            return kraken_price(market, ticks)

        return cls(
            ask=price(step.ask),
            ask_whole=step.ask_size // market.lot_scale,
            ask_size=market.size(step.ask_size, 8),
            bid=price(step.bid),
            bid_whole=step.bid_size // market.lot_scale,
            bid_size=market.size(step.bid_size, 8),
            last=price(step.price),
            last_size=market.size(step.size, 8),
            volume=market.size(step.volume, 8),
            vwap=f"{market.vwap(step):.{vwap_decimals}f}",
            trades=step.trade_count,
            low=price(step.low),
            high=price(step.high),
            open=price(step.open),
        )


def rest_ticker(markets: dict[str, Market], request: HttpRequest) -> HttpResponse:
    if request.path != "/0/public/Ticker":
        return HttpResponse.json(200, {"error": ["EGeneral:Unknown method"]})
    names: dict[str, Market] = {}
    for market in markets.values():
        symbol = market.symbol
        for name in (kraken_rest_pair(symbol), kraken_rest_key(symbol), symbol.replace("/", "")):
            names[name] = market
    wanted = request.param("pair")
    if wanted is None:
        chosen = list(markets.values())
    else:
        asked = [name.strip().upper() for name in wanted.split(",") if name.strip()]
        chosen = [names[name] for name in asked if name in names]
        if len(chosen) < len(asked):  # one unknown pair fails the whole request
            chosen = []
    if not chosen:
        return HttpResponse.json(200, {"error": ["EQuery:Unknown asset pair"], "result": {}})
    result = {}
    for market in chosen:
        f = KrakenFields.of(market, market.last, vwap_decimals=5)
        result[kraken_rest_key(market.symbol)] = {
            "a": [f.ask, str(f.ask_whole), f.ask_size],
            "b": [f.bid, str(f.bid_whole), f.bid_size],
            "c": [f.last, f.last_size],
            "v": [f.volume, f.volume],
            "p": [f.vwap, f.vwap],
            "t": [f.trades, f.trades],
            "l": [f.low, f.low],
            "h": [f.high, f.high],
            "o": f.open,
        }
    return HttpResponse.json(200, {"error": [], "result": result})


class KrakenProtocol(ExchangeProtocol):
    name: ClassVar[str] = "kraken"
    ws_path: ClassVar[str] = "/v2"
    default_symbols: ClassVar[tuple[str, ...]] = ("BTC/USD", "ETH/USD")

    def native(self, symbol: str) -> str:
        return kraken_native(symbol)

    def session(self, conn: Connection) -> Session:
        return KrakenSession(self, conn)

    def rest(self, request: HttpRequest) -> HttpResponse:
        return rest_ticker(self.markets, request)


class KrakenSession(Session):
    protocol: KrakenProtocol

    def __init__(self, protocol: KrakenProtocol, conn: Connection) -> None:
        super().__init__(protocol, conn)
        # channel -> symbol -> ack params (ticker: event_trigger); ordered
        self.channels: dict[str, dict[str, dict[str, object]]] = {}
        self._live: set[tuple[str, str]] = set()
        self._heartbeats = False

    async def on_open(self) -> None:
        status = {
            "channel": "status",
            "type": "update",
            "data": [
                {
                    "api_version": "v2",
                    "connection_id": self.server._connection_number(),
                    "system": "online",
                    "version": STATUS_VERSION,
                }
            ],
        }
        await self.conn.send(dumps(status))
        assert self.nursery is not None
        self.nursery.start_soon(self._heartbeat_loop)

    async def _heartbeat_loop(self) -> None:
        seen = self.conn.frames_sent
        while True:
            await trio.sleep(HEARTBEAT_INTERVAL_S)
            if self._heartbeats and self.conn.frames_sent == seen:
                await self.conn.send('{"channel":"heartbeat"}')
            seen = self.conn.frames_sent

    # --- requests ------------------------------------------------------------------------------
    async def _reply(self, reply: dict[str, object], time_in: str, req_id: object) -> None:
        reply["time_in"] = time_in
        reply["time_out"] = rfc3339_us(self.server.now_ts())
        if req_id is not None:
            reply["req_id"] = req_id
        await self.conn.send(dumps(reply))

    async def on_request(self, raw: str, message: object) -> None:
        time_in = rfc3339_us(self.server.now_ts())
        if message is INVALID_JSON or not isinstance(message, dict):
            await self._reply({"error": "Malformed request", "success": False}, time_in, None)
            return
        method, req_id = message.get("method"), message.get("req_id")
        if method == "ping":
            await self._reply({"method": "pong"}, time_in, req_id)
            return
        if method not in ("subscribe", "unsubscribe"):
            await self._reply(
                {"error": "Method not found", "method": method, "success": False}, time_in, req_id
            )
            return
        params = message.get("params")
        channel = params.get("channel") if isinstance(params, dict) else None
        if not isinstance(params, dict) or not isinstance(channel, str):
            error = {"error": "Missing channel", "method": method, "success": False}
            await self._reply(error, time_in, req_id)
            return
        if channel == "heartbeat":
            self._heartbeats = self._heartbeats or method == "subscribe"
            await self._reply(
                {"method": method, "result": {"channel": "heartbeat"}, "success": True},
                time_in,
                req_id,
            )
            return
        if channel not in KIND_OF_CHANNEL:
            error = {
                "error": f"Channel {channel} not supported",
                "method": method,
                "success": False,
            }
            await self._reply(error, time_in, req_id)
            return
        symbols = params.get("symbol")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) for s in symbols)
        ):
            error = {"error": "Missing symbol", "method": method, "success": False}
            await self._reply(error, time_in, req_id)
            return
        if method == "subscribe":
            await self._subscribe(channel, params, symbols, time_in, req_id)
        else:
            await self._unsubscribe(channel, symbols, time_in, req_id)

    async def _subscribe(
        self,
        channel: str,
        params: dict[str, object],
        symbols: list[str],
        time_in: str,
        req_id: object,
    ) -> None:
        result: dict[str, object] = {"channel": channel}
        if channel == "ticker":
            trigger = params.get("event_trigger", "trades")
            if trigger not in ("trades", "bbo"):
                error = {"error": "Invalid event_trigger", "method": "subscribe", "success": False}
                await self._reply(error, time_in, req_id)
                return
            result["event_trigger"] = trigger
        snapshot = params.get("snapshot", channel == "ticker")
        if not isinstance(snapshot, bool):
            error = {"error": "Invalid snapshot", "method": "subscribe", "success": False}
            await self._reply(error, time_in, req_id)
            return
        result["snapshot"] = snapshot
        subscribed = self.channels.setdefault(channel, {})
        for symbol in symbols:
            refusal = None
            if symbol not in self.protocol.markets:
                refusal = f"Currency pair not supported {symbol}"
            elif symbol in subscribed:
                refusal = "Already subscribed"
            if refusal is not None:
                reply = {
                    "error": refusal,
                    "method": "subscribe",
                    "success": False,
                    "symbol": symbol,
                }
                await self._reply(reply, time_in, req_id)
                continue
            subscribed[symbol] = result
            self.add_stream(KIND_OF_CHANNEL[channel], symbol)
            self._heartbeats = True
            self._update_feeds()
            ack = {"method": "subscribe", "result": {**result, "symbol": symbol}, "success": True}
            await self._reply(ack, time_in, req_id)
            if snapshot:
                await self.conn.send_built(self._snapshot_frame, channel, symbol)
            self._live.add((channel, symbol))

    async def _unsubscribe(
        self, channel: str, symbols: list[str], time_in: str, req_id: object
    ) -> None:
        subscribed = self.channels.get(channel, {})
        for symbol in symbols:
            if symbol not in subscribed:
                reply = {
                    "error": "Subscription Not Found",
                    "method": "unsubscribe",
                    "success": False,
                    "symbol": symbol,
                }
                await self._reply(reply, time_in, req_id)
                continue
            params = subscribed.pop(symbol)
            self._live.discard((channel, symbol))
            self.remove_stream(KIND_OF_CHANNEL[channel], symbol)
            self._update_feeds()
            result = {k: v for k, v in params.items() if k != "snapshot"}
            ack = {"method": "unsubscribe", "result": {**result, "symbol": symbol}, "success": True}
            await self._reply(ack, time_in, req_id)

    def _update_feeds(self) -> None:
        symbols = {**self.channels.get("ticker", {}), **self.channels.get("trade", {})}
        self.set_feeds(list(symbols))

    # --- data ----------------------------------------------------------------------------------
    @staticmethod
    def _ticker_item(market: Market, step: Step) -> str:
        num, qty = market.price_number, market.size_number
        change = step.price - step.open
        change_pct = round(change / step.open * 100, 2) if step.open else 0.0
        return (
            f'{{"symbol":"{market.symbol}","bid":{num(step.bid)},"bid_qty":{qty(step.bid_size)},'
            f'"ask":{num(step.ask)},"ask_qty":{qty(step.ask_size)},"last":{num(step.price)},'
            f'"volume":{qty(step.volume)},"vwap":{round(market.vwap(step), 2)},'
            f'"low":{num(step.low)},"high":{num(step.high)},"change":{num(change)},'
            f'"change_pct":{change_pct},"timestamp":"{rfc3339_us(step.ts)}"}}'
        )

    @staticmethod
    def _trade_item(market: Market, step: Step) -> str:
        return (
            f'{{"symbol":"{market.symbol}","side":"{step.side}",'
            f'"price":{market.price_number(step.price)},"qty":{market.size_number(step.size)},'
            f'"ord_type":"market","trade_id":{step.trade_id},'
            f'"timestamp":"{rfc3339_us(step.ts)}"}}'
        )

    def _snapshot_frame(self, channel: str, symbol: str) -> str | None:
        if symbol not in self.channels.get(channel, {}):
            return None
        market = self.protocol.markets[symbol]
        if channel == "ticker":
            items = self._ticker_item(market, market.last)
        else:
            history = list(market.history)[-TRADE_SNAPSHOT_LENGTH:]
            items = ",".join(self._trade_item(market, step) for step in history)
        return f'{{"channel":"{channel}","type":"snapshot","data":[{items}]}}'

    def _ticker_frame(self, market: Market, step: Step) -> str | None:
        if ("ticker", market.symbol) not in self._live:
            return None
        return f'{{"channel":"ticker","type":"update","data":[{self._ticker_item(market, step)}]}}'

    def _trade_frame(self, market: Market, step: Step) -> str | None:
        if ("trade", market.symbol) not in self._live:
            return None
        return f'{{"channel":"trade","type":"update","data":[{self._trade_item(market, step)}]}}'

    async def on_step(self, market: Market, step: Step) -> None:
        await self.conn.send_built(self._trade_frame, market, step)
        await self.conn.send_built(self._ticker_frame, market, step)
