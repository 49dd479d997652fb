"""A half-open stall: the socket stays open but nothing comes, and a close frame is never
answered. The connection declares it dead after ``stale_after_s`` and must then close it at
once (``Transport.abort``): waiting ``disconnect_timeout_s`` for a close reply that cannot come
would add that much to every stall's recovery. Real sockets against the local simulator's
half-open fault (``ExchangeServer.stall_open_connections``), in the Trio clock (autojump)."""

from __future__ import annotations

import random
from functools import partial

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from actors.errors import ConnectionLostError
from actors.market_data.config import TransportEngine
from actors.market_data.transport import Transport
from actors.messages import Ticker
from actors.simulator import open_exchange_server
from supervisor.config import BackoffPolicy
from supervisor.feeds import connections_child, open_market_data
from supervisor.otp.events import ChildStateChanged, SupervisionEvent
from tests.market_data.helpers import (
    BREAKER,
    CONNECTORS,
    ENGINES,
    config_for,
    next_of,
    next_state,
)

BTC = "BTC/USDT"
SUBSCRIBE = '{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1}'
STALE_AFTER_S = 1.5
# Small and the same for every restart (multiplier 1): the delay is drawn in [0, 0.25] s.
BACKOFF = BackoffPolicy(initial_s=0.25, multiplier=1.0, max_s=0.25, reset_after_s=5.0)
MARGIN_S = 0.5  # reconnect, resubscribe, first feed step (0.1 s at 10 Hz), with room to spare


async def frames_until(transport: Transport, deadline: float) -> list[float]:
    """When each batch arrived, until ``deadline`` (a lost connection fails the test)."""
    arrivals: list[float] = []
    with trio.move_on_at(deadline):
        while True:
            await transport.receive_batch()
            arrivals.append(trio.current_time())
    return arrivals


async def frames(transport: Transport, count: int) -> list[str | bytes]:
    received: list[str | bytes] = []
    while len(received) < count:
        received += await transport.receive_batch()
    return received


@pytest.mark.parametrize("abort", [False, True], ids=["courteous-close", "abort"])
@pytest.mark.parametrize("engine", ENGINES)
async def test_a_half_open_connection_is_silent_and_new_ones_are_served(
    autojump_clock: trio.testing.MockClock, engine: str, abort: bool
) -> None:
    """The fault itself, and what closing such a socket costs: the courteous close waits the
    whole ``disconnect_timeout_s`` for a reply that never comes; after ``abort()`` it is
    immediate. Either way the server frees the connection once the client has closed it."""
    connector = CONNECTORS[engine]
    with trio.fail_after(120):
        async with open_exchange_server("binance", (BTC,), rate_hz=10.0) as server:
            async with connector.connect(server.ws_url) as old:
                await old.send(SUBSCRIBE)
                await old.receive_batch()
                await server.wait_for(lambda s: s.statistics().frames_sent >= 3)
                cut_at = trio.current_time()
                assert server.stall_open_connections() == 1

                # Only what was already on its way arrives (at the cut's instant, while the
                # next feed step is a period away); then nothing, past a Binance ping period
                # (20 s), and the TCP connection stays open (no ConnectionLostError).
                arrivals = await frames_until(old, cut_at + 25.0)
                assert all(at - cut_at < 0.1 for at in arrivals)
                # New connections are served as usual while the old one stays silent.
                async with connector.connect(server.ws_url) as new:
                    await new.send(SUBSCRIBE)
                    assert any('"u":' in str(m) for m in await frames(new, 3))
                await server.wait_for(lambda s: s.statistics().connected == 1)  # the old one
                assert await frames_until(old, trio.current_time() + 1.0) == []
                if abort:
                    old.abort()
                closing_at = trio.current_time()
            closed_s = trio.current_time() - closing_at
            if abort:
                assert closed_s < 0.01
            else:
                assert closed_s == pytest.approx(2.0, abs=0.01)  # disconnect_timeout_s
            await server.wait_for(lambda s: s.statistics().connected == 0)
            assert server.statistics().connections_accepted == 2


@pytest.mark.parametrize("abort", [False, True], ids=["courteous-close", "abort"])
@pytest.mark.parametrize("engine", ENGINES)
async def test_an_aborted_socket_is_closed_without_a_close_frame(
    autojump_clock: trio.testing.MockClock, engine: str, abort: bool
) -> None:
    """A live peer sees an aborted socket's TCP connection end with no close frame (1006);
    the courteous close still sends one (1000)."""
    codes: list[int] = []
    closed = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed as exc:
            codes.append(exc.reason.code if exc.reason is not None else -1)
            closed.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_websocket, handler, "127.0.0.1", 0, None))
            url = f"ws://127.0.0.1:{server.port}/ws"
            async with CONNECTORS[engine].connect(url) as transport:
                await transport.send("echo")
                assert await transport.receive_batch() == ["echo"]
                if abort:
                    transport.abort()
            with pytest.raises(ConnectionLostError):
                await transport.send("echo")
            await closed.wait()
            assert codes == [1006 if abort else 1000]
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_half_open_stall_is_recovered_in_stale_after_s_plus_the_backoff(
    autojump_clock: trio.testing.MockClock, engine: TransportEngine
) -> None:
    """Through the supervised plane: from the stall to the first ticker of the replacement
    connection takes ``stale_after_s`` + the backoff delay drawn + a reconnect, and not
    ``disconnect_timeout_s`` (2 s) more for a close reply from the dead socket."""
    changes: list[ChildStateChanged] = []

    def observe(event: SupervisionEvent) -> None:
        if isinstance(event, ChildStateChanged) and event.child == connections_child("binance"):
            changes.append(event)

    with trio.fail_after(60):
        async with open_exchange_server("binance", (BTC,), rate_hz=10.0) as server:
            config = config_for(server, stale_after_s=STALE_AFTER_S, transport=engine)
            async with (
                open_market_data(
                    [config],
                    backoff=BACKOFF,
                    circuit_breaker=BREAKER,
                    rng=random.Random(7),
                    observers=(observe,),
                ) as md,
                md.subscribe("binance", "ticker", BTC) as events,
            ):
                await md.wait_streaming("binance")
                await next_of(events, Ticker)
                stalled_at = trio.current_time()
                assert server.stall_open_connections() == 1
                down = await next_state(events, "down")
                reason = down.reason or ""
                assert reason.startswith("connection ended: StaleFeedError: no frame at all")
                await next_of(events, Ticker)  # the old socket is silent: the new one's
                recovery_s = trio.current_time() - stalled_at
                stats = md.statistics().exchanges["binance"]
                assert (stats.stale_replacements, stats.connects) == (1, 2)

            states = [(c.to_state, c.at) for c in changes]
            backoff_at = next(at for state, at in states if state == "backoff")
            restart_at = next(at for state, at in states if state == "starting" and at > backoff_at)
            backoff_s = restart_at - backoff_at
            assert 0.0 <= backoff_s <= BACKOFF.initial_s
            bound_s = STALE_AFTER_S + backoff_s + MARGIN_S
            assert STALE_AFTER_S <= recovery_s < bound_s, (recovery_s, bound_s)
            await server.wait_for(lambda s: s.statistics().connected == 0)
