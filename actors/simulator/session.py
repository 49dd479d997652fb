"""Base classes shared by the five protocol modules.

``ExchangeProtocol`` is one per server: it knows the markets, decides handshakes for its URL
paths, answers REST, and creates a ``Session`` per accepted connection. A ``Session`` runs one
task reading client messages and, per symbol with a data subscription, one feed task that pulls
steps from the shared ``Market`` at the server's rate and sends the protocol's frames for them.

Pacing decisions (``_feed``):

* ``rate_hz`` is events per second per stream; each step gives every subscribed stream of the
  symbol one event. The first step comes one period after the subscription (snapshots, where a
  protocol has them, are sent at once by the reader).
* ``rate_hz=None`` steps as fast as ``send`` returns: only socket backpressure limits it.
* ``rate_hz=0`` sends no market events (heartbeats and replies go on): a quiet market.
* A feed that falls more than one period behind (slow client, stall) restarts its schedule from
  now instead of bursting to catch up. A rate change wakes sleeping feeds at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import orjson
import trio

from actors.messages import Stream
from actors.simulator.connection import Connection
from actors.simulator.http import HttpRequest, HttpResponse
from actors.simulator.model import Market, Step

if TYPE_CHECKING:
    from actors.simulator.server import ExchangeServer

INVALID_JSON = object()  # the parsed value of a frame that is not JSON


def dumps(payload: object) -> str:
    return orjson.dumps(payload).decode()


class ExchangeProtocol:
    name: ClassVar[str]
    ws_path: ClassVar[str]  # appended to ws://host:port to form ws_url
    default_symbols: ClassVar[tuple[str, ...]]

    def __init__(self, server: ExchangeServer) -> None:
        self.server = server
        self.markets: dict[str, Market] = server.markets
        self.native_of: dict[str, str] = {s: self.native(s) for s in self.markets}
        self.by_native: dict[str, Market] = {self.native_of[s]: m for s, m in self.markets.items()}

    def native(self, symbol: str) -> str:
        raise NotImplementedError

    def handshake_status(self, path: str) -> int | None:
        """HTTP status to refuse a handshake for ``path`` with, or None to accept it."""
        return None if path.split("?", 1)[0] == (self.ws_path or "/") else 404

    def session(self, conn: Connection) -> Session:
        raise NotImplementedError

    def rest(self, request: HttpRequest) -> HttpResponse:
        raise NotImplementedError


class Session:
    """Per-connection protocol behaviour. Subclasses implement ``on_request`` and ``on_step``.

    ``muted`` streams are subscribed but sent no data: until the client subscribes them again
    (a server-side fault that a resubscribe clears), or for the connection's life when the
    value is True (a fault only a new connection clears); sessions that honour it set
    ``supports_mute``."""

    supports_mute: ClassVar[bool] = False

    def __init__(self, protocol: ExchangeProtocol, conn: Connection) -> None:
        self.protocol = protocol
        self.server = protocol.server
        self.conn = conn
        self.nursery: trio.Nursery | None = None
        self._feeds: dict[str, trio.CancelScope] = {}
        self._streams: Counter[Stream] = Counter()
        self.muted: dict[Stream, bool] = {}  # stream -> muted for the connection's life

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = self.conn.nursery = nursery
                await self.on_open()
                nursery.start_soon(self._read_loop)
        finally:
            self.server._forget_streams(self._streams)
            self._streams.clear()

    async def _read_loop(self) -> None:
        while True:
            raw = await self.conn.receive()
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                message = INVALID_JSON
            self.server._log_request(self.conn.id, text, message)
            self.on_received()
            if self.conn.ending is not None:
                continue  # being closed (e.g. over a rate limit): the next receive is cancelled
            if self.server._resumed is not None:
                await self.conn.gate()  # a stalled server reads but does not answer
            await self.on_request(text, message)

    # --- hooks ---------------------------------------------------------------------------------
    async def on_open(self) -> None:
        """Frames sent right after the handshake, timers started per connection."""

    def on_received(self) -> None:
        """Called as each client message arrives, before any stall: rate limits count here."""

    async def on_request(self, raw: str, message: object) -> None:
        raise NotImplementedError

    async def on_step(self, market: Market, step: Step) -> None:
        raise NotImplementedError

    async def send_server_shutdown(self) -> None:
        raise NotImplementedError(f"{self.protocol.name} has no serverShutdown event")

    # --- subscription bookkeeping --------------------------------------------------------------
    def add_stream(self, kind: str, symbol: str) -> None:
        stream = Stream(kind, symbol)  # type: ignore[arg-type]
        if self.muted.get(stream) is False:
            del self.muted[stream]
        self._streams[stream] += 1
        if self._streams[stream] == 1:
            self.server._stream_changed(stream, +1)

    def remove_stream(self, kind: str, symbol: str) -> None:
        stream = Stream(kind, symbol)  # type: ignore[arg-type]
        if self._streams[stream] <= 0:
            return
        self._streams[stream] -= 1
        if self._streams[stream] == 0:
            del self._streams[stream]
            self.server._stream_changed(stream, -1)

    def set_feeds(self, symbols: Sequence[str]) -> None:
        """Run exactly one feed task per symbol in ``symbols`` (unified names)."""
        wanted = set(symbols)
        for symbol in list(self._feeds):
            if symbol not in wanted:
                self._feeds.pop(symbol).cancel()
        for symbol in symbols:
            if symbol not in self._feeds:
                scope = self._feeds[symbol] = trio.CancelScope()
                assert self.nursery is not None
                self.nursery.start_soon(self._feed, self.protocol.markets[symbol], scope)

    async def _feed(self, market: Market, scope: trio.CancelScope) -> None:
        server, conn = self.server, self.conn
        with scope:
            rate = server._rate_hz
            next_at = trio.current_time() + (1 / rate if rate else 0.0)
            while True:
                rate = server._rate_hz
                if rate is not None:
                    changed = server._rate_changed
                    if rate <= 0:
                        await changed.wait()
                        next_at = trio.current_time()
                        continue
                    now = trio.current_time()
                    if next_at > now:
                        with trio.move_on_at(next_at) as timer:
                            await changed.wait()
                        if not timer.cancelled_caught:
                            next_at = trio.current_time()
                            continue
                    elif now - next_at > 1 / rate:
                        next_at = now
                    next_at += 1 / rate
                if server._resumed is not None:
                    await conn.gate()
                sent = conn.frames_sent
                await self.on_step(market, market.step(server.now_ts()))
                if conn.frames_sent == sent:
                    await trio.lowlevel.checkpoint()
