"""``ExchangeServer``: a local exchange speaking one real public market-data protocol over
WebSocket, plus its REST ticker over HTTP, with fault injection and observability for tests.

Decisions:

* Sockets: the WebSocket side is ``trio.serve_tcp`` + ``trio_websocket.wrap_server_stream``
  rather than ``serve_websocket``: the same handshake and framing, but the server keeps each
  connection's TCP stream, which an abrupt drop (reset, no close frame) needs and which
  ``serve_websocket`` only exposes through private attributes. Ports are picked by the OS (0).
* Handshake refusals (``refuse_handshakes``) use trio-websocket's ``WebSocketRequest.reject``;
  unknown URL paths are refused with 404 the same way. Both count as ``handshakes_refused``.
* A stalled server (``stall``) completes no handshake and sends nothing - no data, replies,
  heartbeats, pings or protocol-timer actions - until ``resume``; it keeps reading, logging and
  counting client requests (so Binance's rate limit still counts them).
* Faults that act on connections (drop, close, garbage, serverShutdown) affect the connections
  open at the time of the call; ``stall``, ``refuse_handshakes`` and ``set_rate`` also affect
  future ones until changed.
* Observability: every client message is logged (bounded to the last ``REQUEST_LOG_LENGTH``);
  ``wait_for(predicate)`` re-checks its predicate on every change (connection, refusal,
  request, subscription, frame) by waiting on an Event that is only created when someone waits,
  so the per-frame cost without waiters is one attribute check.
* Exchange timestamps come from the Trio clock anchored to the wall clock at start
  (``now_ts``), so under ``autojump_clock`` they advance with virtual time.
"""

from __future__ import annotations

import importlib
import math
import random
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

import attrs
import trio
from loguru import logger
from trio_websocket import ConnectionClosed, WebSocketRequest, wrap_server_stream

from actors.exchanges import PROTOCOLS
from actors.exchanges.symbols import split_unified
from actors.messages import Stream
from actors.simulator.connection import Close, Connection, Drop, Wire
from actors.simulator.http import HttpRequest, HttpResponse, serve_http
from actors.simulator.model import Market
from actors.simulator.session import INVALID_JSON, ExchangeProtocol


def _protocol_class(protocol: str) -> type[ExchangeProtocol]:
    """The simulator of a registered protocol (``actors.exchanges.PROTOCOLS``) is the
    ``ExchangeProtocol`` of that ``name`` in ``actors.simulator.<protocol>``: a new exchange
    needs its module, and no line here."""
    module = importlib.import_module(f"actors.simulator.{protocol}")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ExchangeProtocol)
            and getattr(value, "name", None) == protocol
        ):
            return value
    raise ImportError(f"actors.simulator.{protocol} has no ExchangeProtocol named {protocol!r}")


PROTOCOL_CLASSES: Mapping[str, type[ExchangeProtocol]] = MappingProxyType(
    {protocol: _protocol_class(protocol) for protocol in PROTOCOLS}
)
DEFAULT_SYMBOLS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: cls.default_symbols for name, cls in PROTOCOL_CLASSES.items()}
)
HANDSHAKE_TIMEOUT_S = 60.0
DISCONNECT_TIMEOUT_S = 5.0
REQUEST_LOG_LENGTH = 10_000
GARBAGE_FRAME = "\x00}{ garbage, not JSON \ufffd"


@attrs.frozen(slots=True)
class ClientRequest:
    """One message a client sent: ``message`` is the parsed JSON, or None when ``raw`` was not
    JSON (``valid_json`` tells a JSON ``null`` from garbage)."""

    connection_id: int
    received_at: float  # trio.current_time()
    raw: str
    message: object
    valid_json: bool


@attrs.frozen(slots=True)
class ServerStatistics:
    protocol: str
    connections_accepted: int
    handshakes_refused: int
    connected: int
    frames_sent: int
    requests_received: int
    rest_requests: int
    subscribers: Mapping[Stream, int]  # connections subscribed per stream (read-only copy)
    stalled: bool
    rate_hz: float | None


@attrs.frozen(slots=True)
class _Refusal:
    status: int
    remaining: int | None  # None: until cleared
    retry_after_s: float | None


def _reason_phrase(status: int) -> bytes | None:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return None


def _check_rate(rate_hz: float | None) -> float | None:
    if rate_hz is not None and (not math.isfinite(rate_hz) or rate_hz < 0):
        raise ValueError(f"rate_hz must be None or a finite number >= 0, got {rate_hz!r}")
    return rate_hz


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class ExchangeServer:
    """Create with ``open_exchange_server`` / ``run_exchange_server``; ``run`` serves until
    cancelled. Fields are checked in ``__init__`` and ``set_rate`` only (``on_setattr`` is off):
    the frame counter is bumped per frame on the hot path."""

    protocol: str = attrs.field()
    symbols: tuple[str, ...] = attrs.field(default=(), converter=tuple[str, ...])
    seed: int = 0
    _rate_hz: float | None = attrs.field(default=10.0, converter=_check_rate)
    host: str = "127.0.0.1"
    ws_port: int = 0  # 0: any free port (tests); fixed ports for a standalone server
    rest_port: int = 0

    markets: dict[str, Market] = attrs.field(init=False, factory=dict)
    started_at: float = attrs.field(init=False, default=0.0)
    _anchor_ts: float = attrs.field(init=False, default=0.0)
    _protocol: ExchangeProtocol | None = attrs.field(init=False, default=None)
    _ws_port: int = attrs.field(init=False, default=0)
    _rest_port: int = attrs.field(init=False, default=0)
    _rng: random.Random = attrs.field(init=False)
    _connections: dict[int, Connection] = attrs.field(init=False, factory=dict)
    _next_connection_id: int = attrs.field(init=False, default=1)
    _accepted: int = attrs.field(init=False, default=0)
    _refused: int = attrs.field(init=False, default=0)
    _frames_sent: int = attrs.field(init=False, default=0)
    _rest_requests: int = attrs.field(init=False, default=0)
    _requests_received: int = attrs.field(init=False, default=0)
    _requests: deque[ClientRequest] = attrs.field(
        init=False, factory=lambda: deque(maxlen=REQUEST_LOG_LENGTH)
    )
    _subscribers: dict[Stream, int] = attrs.field(init=False, factory=dict)
    _refusal: _Refusal | None = attrs.field(init=False, default=None)
    _resumed: trio.Event | None = attrs.field(init=False, default=None)  # set while stalled
    _rate_changed: trio.Event = attrs.field(init=False, factory=trio.Event)
    _changed: trio.Event | None = attrs.field(init=False, default=None)
    log: Any = attrs.field(init=False, repr=False, default=logger)

    @protocol.validator
    def _check_protocol(self, _attribute: object, value: str) -> None:
        if value not in PROTOCOL_CLASSES:
            raise ValueError(
                f"unknown protocol {value!r}; expected one of {tuple(PROTOCOL_CLASSES)}"
            )

    def __attrs_post_init__(self) -> None:
        symbols = self.symbols or DEFAULT_SYMBOLS[self.protocol]
        for symbol in symbols:
            split_unified(symbol)  # raises ValueError naming a malformed symbol
        self.symbols = tuple(dict.fromkeys(symbols))
        self._rng = random.Random(f"{self.seed}/server")
        self.log = logger.bind(actor="simulator", protocol=self.protocol)

    # --- addresses -----------------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        assert self._protocol is not None, "server not started"
        return f"ws://{self._url_host}:{self._ws_port}{self._protocol.ws_path}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._url_host}:{self._rest_port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def rate_hz(self) -> float | None:
        return self._rate_hz

    def now_ts(self) -> float:
        """Wall-clock epoch seconds driven by the Trio clock (see module docstring)."""
        return self._anchor_ts + (trio.current_time() - self.started_at)

    # --- lifecycle -----------------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[ExchangeServer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.started_at = trio.current_time()
        self._anchor_ts = time.time()
        self.markets = {s: Market(s, self.seed, self._anchor_ts) for s in self.symbols}
        self._protocol = PROTOCOL_CLASSES[self.protocol](self)
        async with trio.open_nursery() as nursery:
            ws_listeners = await nursery.start(
                partial(trio.serve_tcp, self._handle_tcp, self.ws_port, host=self.host)
            )
            rest_listeners = await nursery.start(
                serve_http, self._handle_rest, self.host, self.rest_port
            )
            self._ws_port = ws_listeners[0].socket.getsockname()[1]
            self._rest_port = rest_listeners[0].socket.getsockname()[1]
            self.log.info(
                "simulator listening", ws_url=self.ws_url, rest_url=self.rest_url, seed=self.seed
            )
            task_status.started(self)

    async def _handle_tcp(self, tcp: trio.SocketStream) -> None:
        stream = Wire(tcp)  # what the WebSocket reads and writes; a half-open fault cuts it
        try:
            async with trio.open_nursery() as nursery:  # trio-websocket's reader task runs here
                try:
                    request = None
                    with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                        request = await wrap_server_stream(nursery, stream)
                    if request is not None:
                        await self._serve(request, stream)
                finally:
                    nursery.cancel_scope.cancel()
        except* (ConnectionClosed, trio.BrokenResourceError):
            self.log.debug("client vanished during a handshake")
        finally:
            await stream.aclose()

    async def _serve(self, request: WebSocketRequest, stream: Wire) -> None:
        assert self._protocol is not None
        status = self._protocol.handshake_status(request.path)
        headers: list[tuple[bytes, bytes]] = []
        if status is None and self._refusal is not None:
            status, headers = self._take_refusal()
        if status is not None:
            self._refused += 1
            self._notify()
            self.log.info("handshake refused", status=status, path=request.path)
            await request.reject(status, extra_headers=headers, body=_reason_phrase(status))
            return
        while (resumed := self._resumed) is not None:
            await resumed.wait()
        ws = await request.accept()
        conn = Connection(self._next_connection_id, ws, stream, request.path, self)
        self._next_connection_id += 1
        self._connections[conn.id] = conn
        self._accepted += 1
        self._notify()
        self.log.info("client connected", connection_id=conn.id, path=request.path)
        try:
            conn.session = self._protocol.session(conn)
            with conn.scope:
                await conn.session.run()
            if not isinstance(conn.ending, Drop):
                code, reason = (
                    (conn.ending.code, conn.ending.reason)
                    if isinstance(conn.ending, Close)
                    else (1000, None)
                )
                with trio.move_on_after(DISCONNECT_TIMEOUT_S):
                    await ws.aclose(code, reason)
        finally:
            del self._connections[conn.id]
            self._notify()
            self.log.info("client disconnected", connection_id=conn.id, ending=repr(conn.ending))

    def _take_refusal(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        refusal = self._refusal
        assert refusal is not None
        if refusal.remaining is not None:
            left = refusal.remaining - 1
            self._refusal = attrs.evolve(refusal, remaining=left) if left > 0 else None
        headers = []
        if refusal.retry_after_s is not None:
            headers.append((b"Retry-After", str(math.ceil(refusal.retry_after_s)).encode()))
        return refusal.status, headers

    def _handle_rest(self, request: HttpRequest) -> HttpResponse:
        assert self._protocol is not None
        self._rest_requests += 1
        self._notify()
        return self._protocol.rest(request)

    # --- hooks called by connections and sessions ----------------------------------------------
    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    def _frame_sent(self) -> None:
        self._frames_sent += 1
        if self._changed is not None:
            self._notify()

    def _log_request(self, connection_id: int, raw: str, message: object) -> None:
        valid = message is not INVALID_JSON
        self._requests.append(
            ClientRequest(
                connection_id, trio.current_time(), raw, message if valid else None, valid
            )
        )
        self._requests_received += 1
        self._notify()

    def _stream_changed(self, stream: Stream, delta: int) -> None:
        count = self._subscribers.get(stream, 0) + delta
        if count > 0:
            self._subscribers[stream] = count
        else:
            self._subscribers.pop(stream, None)
        self._notify()

    def _forget_streams(self, streams: Mapping[Stream, int]) -> None:
        for stream in streams:
            self._stream_changed(stream, -1)

    def _connection_number(self) -> int:
        """A Kraken-style u64 connection id above 2**63 (seeded)."""
        return (1 << 63) + 1 + self._rng.getrandbits(62)

    # --- fault injection -----------------------------------------------------------------------
    def drop_connections(self) -> int:
        """Reset every open connection's TCP socket, no close frame (clients see 1006)."""
        conns = list(self._connections.values())
        for conn in conns:
            conn.end(Drop())
        self.log.info("fault: drop", connections=len(conns))
        return len(conns)

    def close_connections(self, code: int = 1000, reason: str | None = None) -> int:
        """Close every open connection with a close frame carrying ``code`` and ``reason``."""
        conns = list(self._connections.values())
        for conn in conns:
            conn.end(Close(code, reason))
        self.log.info("fault: close", connections=len(conns), code=code, reason=reason)
        return len(conns)

    def stall(self) -> None:
        """Keep sockets open but send nothing (and accept no handshake) until ``resume``."""
        if self._resumed is None:
            self._resumed = trio.Event()
            self.log.info("fault: stall")
            self._notify()

    def stall_open_connections(self) -> int:
        """Half-open fault: the connections open now go silent for good (no data, replies or
        pings, and no answer to a ping or a close frame) with their TCP connections left open,
        while new connections are served normally; unlike ``stall``, which holds the whole
        server. A client only gets out by declaring the socket dead and closing it itself; the
        server then frees the connection. See ``actors/simulator/connection.py``."""
        conns = list(self._connections.values())
        for conn in conns:
            conn.go_half_open()
        self.log.info("fault: half-open", connections=len(conns))
        self._notify()
        return len(conns)

    def resume(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.set()
            self.log.info("fault: resume")
            self._notify()

    def send_garbage(self, frame: str | bytes = GARBAGE_FRAME) -> int:
        """Send one frame that is not valid for the protocol to every open connection."""
        sent = sum(conn.spawn(conn.send, frame) for conn in list(self._connections.values()))
        self.log.info("fault: garbage frame", connections=sent)
        return sent

    def mute_stream(self, stream: Stream, *, for_good: bool = False) -> int:
        """Stop sending ``stream``'s data on every open connection, until that connection
        subscribes it again (the fault a resubscribe repairs) or, ``for_good``, for the
        connection's life. Binance only."""
        muted = 0
        for conn in list(self._connections.values()):
            session = conn.session
            if session is None:
                continue
            if not session.supports_mute:
                raise ValueError(f"the {self.protocol} simulator cannot mute a stream")
            session.muted[stream] = for_good
            muted += 1
        self.log.info("fault: mute", stream=f"{stream.kind}:{stream.symbol}", connections=muted)
        return muted

    async def replay_frames(self, frames: Iterable[str | bytes]) -> int:
        """Send ``frames`` in order to every open connection, as this server's own data would
        go (recorded raw frames, ``actors.recording.raw.market_frames``), so a client's codec
        and connection run on recorded traffic. Start the server with ``rate_hz=0`` so the
        market model adds nothing. Returns the frames sent (summed over connections)."""
        sent = 0
        for frame in frames:
            for conn in list(self._connections.values()):
                await conn.send(frame)
                sent += 1
        return sent

    def send_server_shutdown(self) -> int:
        """Binance only: send the ``serverShutdown`` event to every open connection."""
        if self.protocol != "binance":
            raise ValueError(f"serverShutdown is a Binance event, not {self.protocol}")
        sent = 0
        for conn in list(self._connections.values()):
            if conn.session is not None:
                sent += conn.spawn(conn.session.send_server_shutdown)
        self.log.info("fault: serverShutdown", connections=sent)
        return sent

    def refuse_handshakes(
        self, status: int = 503, count: int | None = None, *, retry_after_s: float | None = None
    ) -> None:
        """Refuse the next ``count`` handshakes (None: all, until ``clear_refusals``) with HTTP
        ``status``; ``retry_after_s`` adds a ``Retry-After`` header."""
        if not 300 <= status <= 599:
            raise ValueError(f"refusal status must be 300..599, got {status}")
        if count is not None and count < 1:
            raise ValueError(f"count must be >= 1 or None, got {count}")
        self._refusal = _Refusal(status, count, retry_after_s)
        self.log.info("fault: refuse handshakes", status=status, count=count)

    def clear_refusals(self) -> None:
        self._refusal = None

    def set_rate(self, rate_hz: float | None) -> None:
        """Market events per second per stream; None = as fast as sends complete; 0 = none."""
        self._rate_hz = _check_rate(rate_hz)
        changed, self._rate_changed = self._rate_changed, trio.Event()
        changed.set()
        self._notify()

    # --- observability -------------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[ExchangeServer], bool]) -> None:
        """Return once ``predicate(self)`` is true; re-checked on every change, never polled.
        Bound it with ``trio.fail_after`` in tests."""
        while not predicate(self):
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()

    def subscribe_count(self, stream: Stream) -> int:
        """How many connections are currently subscribed to ``stream`` (unified symbol)."""
        return self._subscribers.get(stream, 0)

    def requests(self, connection_id: int | None = None) -> tuple[ClientRequest, ...]:
        return tuple(
            r for r in self._requests if connection_id is None or r.connection_id == connection_id
        )

    def connection_ids(self) -> tuple[int, ...]:
        return tuple(self._connections)

    def statistics(self) -> ServerStatistics:
        return ServerStatistics(
            protocol=self.protocol,
            connections_accepted=self._accepted,
            handshakes_refused=self._refused,
            connected=len(self._connections),
            frames_sent=self._frames_sent,
            requests_received=self._requests_received,
            rest_requests=self._rest_requests,
            subscribers=MappingProxyType(dict(self._subscribers)),
            stalled=self._resumed is not None,
            rate_hz=self._rate_hz,
        )


def log_to_stderr() -> None:
    """The standalone tools' logging (``python -m actors.simulator``, ``actors.replay.frames``):
    every other sink replaced by one plain line per record on stderr, INFO and up."""
    logger.remove()
    logger.add(
        sys.stderr,
        level="INFO",
        format="{time:HH:mm:ss.SSS} | {level: <8} | {message} | {extra}",
        diagnose=False,
    )


async def run_exchange_server(
    protocol: str,
    symbols: Sequence[str] | None = None,
    *,
    seed: int = 0,
    rate_hz: float | None = 10.0,
    host: str = "127.0.0.1",
    ws_port: int = 0,
    rest_port: int = 0,
    task_status: trio.TaskStatus[ExchangeServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; for ``nursery.start``, which returns the ``ExchangeServer``.
    ``symbols`` are unified names; None (or empty) means the protocol's defaults."""
    server = ExchangeServer(
        protocol,
        tuple(symbols or ()),
        seed=seed,
        rate_hz=rate_hz,
        host=host,
        ws_port=ws_port,
        rest_port=rest_port,
    )
    await server.run(task_status=task_status)


@asynccontextmanager
async def open_exchange_server(
    protocol: str,
    symbols: Sequence[str] | None = None,
    *,
    seed: int = 0,
    rate_hz: float | None = 10.0,
    host: str = "127.0.0.1",
) -> AsyncIterator[ExchangeServer]:
    """``async with open_exchange_server("binance") as server:`` - listening on entry, stopped
    (all connections cut) on exit."""
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(run_exchange_server, protocol, symbols, seed=seed, rate_hz=rate_hz, host=host)
        )
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel(reason="exchange simulator closed")
