"""Shared pieces of the market-data plane tests: configs pointing at local simulators, and
small readers. Every server is an in-loop ``open_exchange_server`` on 127.0.0.1, port 0."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from actors.market_data.pool import PoolTuning
from actors.market_data.transport import Connector, TrioWebsocketConnector, WsprotoConnector
from actors.messages import FeedState, Ticker, Trade
from actors.simulator import ExchangeServer
from supervisor.config import BackoffPolicy, BreakerPolicy, ExchangeConfig
from supervisor.feeds import MarketData, open_market_data

CONNECTORS: dict[str, Connector] = {
    "wsproto": WsprotoConnector(),  # the default engine
    "trio-websocket": TrioWebsocketConnector(),
}
BACKOFF = BackoffPolicy(initial_s=1.0, multiplier=2.0, max_s=8.0, reset_after_s=5.0)
BREAKER = BreakerPolicy(failure_threshold=3, reset_timeout_s=20.0)


def config_for(server: ExchangeServer, name: str | None = None, **kwargs: Any) -> ExchangeConfig:
    return ExchangeConfig(
        name=name or server.protocol,
        protocol=server.protocol,
        url=server.ws_url,
        rest_url=server.rest_url,
        **kwargs,
    )


@asynccontextmanager
async def open_plane(
    configs: Sequence[ExchangeConfig],
    *,
    connector: Connector | None = None,
    backoff: BackoffPolicy = BACKOFF,
    breaker: BreakerPolicy = BREAKER,
    seed: int = 7,
    **tuning: Any,
) -> AsyncIterator[MarketData]:
    async with open_market_data(
        configs,
        backoff=backoff,
        circuit_breaker=breaker,
        rng=random.Random(seed),
        tuning=PoolTuning(connector=connector or WsprotoConnector(), **tuning),
    ) as md:
        yield md


async def next_of(events: trio.abc.ReceiveChannel[Any], cls: type) -> Any:
    """The next item of type ``cls``, skipping others."""
    async for item in events:
        if isinstance(item, cls):
            return item
    raise AssertionError(f"stream ended before a {cls.__name__}")


async def next_state(
    events: trio.abc.ReceiveChannel[Any], state: str, reason: str | None = None
) -> FeedState:
    """The next ``FeedState`` with ``state`` (and exactly ``reason``, if given)."""
    async for item in events:
        if (
            isinstance(item, FeedState)
            and item.state == state
            and (reason is None or item.reason == reason)
        ):
            return item
    raise AssertionError(f"stream ended before FeedState {state!r}")


async def next_data(events: trio.abc.ReceiveChannel[Any]) -> Ticker | Trade:
    async for item in events:
        if isinstance(item, Ticker | Trade):
            return item
    raise AssertionError("stream ended before any data")
