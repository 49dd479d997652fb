"""The reader lets the subscribers it woke run before it reads the socket again
(``connection.py``, "Subscribers before the next read"): the order of events, not a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing

from actors.market_data.transport import Connector, Transport
from actors.messages import Ticker
from actors.simulator import open_exchange_server
from tests.market_data.helpers import CONNECTORS, ENGINES, config_for, open_plane

BTC = "BTC/USDT"


@attrs.define(eq=False)
class RecordingTransport:
    """Writes ``"read"`` to ``log`` when the reader asks for frames and ``"data"`` when what it
    got holds market data (every data frame here is a BTC bookTicker)."""

    inner: Transport
    log: list[str]

    async def send(self, message: str) -> None:
        await self.inner.send(message)

    async def receive_batch(self) -> list[str | bytes]:
        self.log.append("read")
        frames = await self.inner.receive_batch()
        if any('"data"' in str(frame) for frame in frames):
            self.log.append("data")
        return frames

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        await self.inner.aclose(code, reason)

    def abort(self) -> None:
        self.inner.abort()


@attrs.frozen
class RecordingConnector:
    inner: Connector
    log: list[str]

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[RecordingTransport]:
        async with self.inner.connect(url) as transport:
            yield RecordingTransport(transport, self.log)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_woken_subscriber_runs_before_the_reader_reads_again(
    autojump_clock: trio.testing.MockClock, engine: str
) -> None:
    log: list[str] = []
    connector = RecordingConnector(CONNECTORS[engine], log)
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=20.0) as server,
            open_plane([config_for(server)], connector=connector) as md,
            md.subscribe("binance", "ticker", BTC) as events,
        ):
            await md.wait_streaming("binance")
            got = 0
            async for item in events:
                if isinstance(item, Ticker):
                    log.append("got")
                    got += 1
                    if got == 20:
                        break
    # From the second ticker on (the first comes after its "live" notice, a receive later),
    # every read that brought data is followed by the subscriber's ticker, and only then by
    # the reader's next read.
    start = log.index("got") + 1
    tail = log[start:]
    checked = 0
    for index, entry in enumerate(tail):
        if entry == "data" and "read" in tail[index + 1 :]:
            following = tail[index + 1 : tail.index("read", index + 1)]
            assert following == ["got"], tail
            checked += 1
    assert checked >= 15
