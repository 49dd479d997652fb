"""Shared pieces of the market-data plane tests: configs pointing at local simulators, the
plane (alone, or as a tree whose keepers can be read), and small readers. Every server is an
in-loop ``open_exchange_server`` on 127.0.0.1, port 0."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from actors.market_data.config import TRANSPORT_ENGINES, TransportEngine
from actors.market_data.pool import PoolTuning
from actors.market_data.transport import Connector, connector_for
from actors.messages import FeedState, Ticker, Trade
from actors.simulator import ExchangeServer
from supervisor.config import BackoffPolicy, BreakerPolicy, ExchangeConfig
from supervisor.feeds import (
    MarketData,
    build_feeds,
    connections_child,
    exchange_supervisor,
    open_market_data,
)
from supervisor.otp.keeper import ChildStatistics
from supervisor.otp.tree import Supervisor, open_supervisor_tree

ENGINES: tuple[TransportEngine, ...] = TRANSPORT_ENGINES  # the default engine first
CONNECTORS: dict[str, Connector] = {engine: connector_for(engine) for engine in ENGINES}
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


def _with_transport(
    configs: Sequence[ExchangeConfig], transport: TransportEngine | None
) -> list[ExchangeConfig]:
    if transport is None:
        return list(configs)
    return [attrs.evolve(config, transport=transport) for config in configs]


@asynccontextmanager
async def open_plane(
    configs: Sequence[ExchangeConfig],
    *,
    transport: TransportEngine | None = None,
    backoff: BackoffPolicy = BACKOFF,
    breaker: BreakerPolicy = BREAKER,
    seed: int = 7,
    **tuning: Any,
) -> AsyncIterator[MarketData]:
    async with open_market_data(
        _with_transport(configs, transport),
        backoff=backoff,
        circuit_breaker=breaker,
        rng=random.Random(seed),
        tuning=PoolTuning(**tuning),
    ) as md:
        yield md


@asynccontextmanager
async def open_plane_tree(
    configs: Sequence[ExchangeConfig],
    *,
    transport: TransportEngine | None = None,
    backoff: BackoffPolicy = BACKOFF,
    breaker: BreakerPolicy = BREAKER,
    seed: int = 7,
    **tuning: Any,
) -> AsyncIterator[tuple[MarketData, Supervisor]]:
    """The plane as the daemon runs it: ``build_feeds``' spec in a supervision tree."""
    feeds = build_feeds(
        _with_transport(configs, transport),
        backoff=backoff,
        circuit_breaker=breaker,
        tuning=PoolTuning(**tuning),
    )
    async with open_supervisor_tree(
        feeds.spec, rng=random.Random(seed), observers=(feeds.observer,)
    ) as tree:
        yield feeds.market_data, tree


def connections_keeper(tree: Supervisor, exchange: str) -> ChildStatistics:
    """The keeper of the exchange's connections: restarts, failures, breaker."""
    children = tree.subtree(exchange_supervisor(exchange)).children()
    return next(c for c in children if c.name == connections_child(exchange))


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
