"""Cluster nodes in one Trio run: each node is the feeds plane of a daemon (``build_feeds``
with a ``ClusterConfig``) in its own supervision tree, all sharing one local simulator and
one real Redis."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from actors.market_data.pool import PoolTuning
from actors.messages import FeedState, Ticker
from actors.simulator import ExchangeServer
from supervisor.cluster.member import ExchangeMember
from supervisor.config import ClusterConfig, ClusterRole, ExchangeConfig
from supervisor.feeds import MarketData, build_feeds
from supervisor.otp.tree import open_supervisor_tree
from tests.cluster.conftest import redis_url
from tests.market_data.helpers import BACKOFF, BREAKER

TTL_S = 1.0  # with redis_timeout_s 0.3: a loaded machine (GC, a busy core) is not a partition


def cluster_config(
    key_prefix: str, node: str, roles: Sequence[ClusterRole], **kwargs: Any
) -> ClusterConfig:
    kwargs.setdefault("lease_ttl_s", TTL_S)
    kwargs.setdefault("redis_timeout_s", 0.3)
    return ClusterConfig(
        redis_url=redis_url(), node=node, roles=tuple(roles), namespace=key_prefix, **kwargs
    )


def exchange_for(server: ExchangeServer, **kwargs: Any) -> ExchangeConfig:
    return ExchangeConfig(
        name=server.protocol,
        protocol=server.protocol,
        url=server.ws_url,
        rest_url=server.rest_url,
        **kwargs,
    )


@asynccontextmanager
async def open_node(
    exchange: ExchangeConfig, cluster: ClusterConfig, *, url: str | None = None, seed: int = 1
) -> AsyncIterator[MarketData]:
    feeds = build_feeds(
        [exchange],
        backoff=BACKOFF,
        circuit_breaker=BREAKER,
        tuning=PoolTuning(unsubscribe_linger_s=0.2, idle_linger_s=0.2),
        cluster=cluster,
        redis_url=url or cluster.redis_url,
    )
    async with open_supervisor_tree(
        feeds.spec, rng=random.Random(seed), observers=(feeds.observer,)
    ):
        yield feeds.market_data


def member(md: MarketData, exchange: str) -> ExchangeMember:
    return md._members[exchange]


async def eventually(condition: Callable[[], bool], *, poll_s: float = 0.02) -> None:
    """For a condition in another node's actors that no event announces (the caller bounds
    the wait)."""
    while not condition():  # noqa: ASYNC110 - nothing to wait on across nodes
        await trio.sleep(poll_s)


async def next_ticker(events: trio.abc.ReceiveChannel[Any]) -> Ticker:
    async for event in events:
        if isinstance(event, Ticker):
            return event
    raise AssertionError("feed ended")


async def next_state(events: trio.abc.ReceiveChannel[Any], state: str) -> FeedState:
    async for event in events:
        if isinstance(event, FeedState) and event.state == state:
            return event
    raise AssertionError("feed ended")


class Partition:
    """A TCP proxy to Redis that can be cut: while cut, bytes are neither forwarded nor
    answered and new connections hang, as when a network partition hides Redis (no RST, no
    FIN: the client only learns by its own deadlines)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._open = trio.Event()
        self._open.set()

    @property
    def cut(self) -> bool:
        return not self._open.is_set()

    def cut_off(self) -> None:
        self._open = trio.Event()

    def heal(self) -> None:
        self._open.set()

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream) -> None:
        while True:
            await self._open.wait()
            data = await source.receive_some(65536)
            if not data:
                await sink.send_eof()
                return
            await self._open.wait()  # cut meanwhile: the bytes are held, never delivered
            await sink.send_all(data)

    async def _serve(self, client: trio.SocketStream) -> None:
        await self._open.wait()
        try:
            async with client, await trio.open_tcp_stream(*self.target) as upstream:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pipe, client, upstream)
                    nursery.start_soon(self._pipe, upstream, client)
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # either side hung up: so does the proxy

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._serve, listeners)
