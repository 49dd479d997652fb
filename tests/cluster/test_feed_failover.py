"""When the leader's exchange connection fails: the other nodes see the same feed states as a
local connection (``down`` with its reason, then ``fallback`` with the leader's REST prices,
then ``live``), a node in backoff follows whichever node leads meanwhile, and a lease won as
a node stops is released. Real Redis, the local simulator, several nodes in one Trio run."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

import trio

from actors.market_data.pool import PoolTuning
from actors.messages import FeedState, Stream, Ticker
from actors.simulator import open_exchange_server
from supervisor.cluster.lease import Lease, LeaseTiming
from supervisor.cluster.redis import RedisClient
from supervisor.cluster.wire import conflate, decode_entry, encode_entry
from supervisor.config import BackoffPolicy, BreakerPolicy, ClusterConfig, ExchangeConfig
from supervisor.feeds import MarketData, build_feeds
from supervisor.otp.tree import Supervisor, open_supervisor_tree
from tests.cluster.conftest import redis_url
from tests.cluster.helpers import (
    Partition,
    cluster_config,
    eventually,
    exchange_for,
    member,
    next_state,
    next_ticker,
)
from tests.market_data.helpers import connections_keeper

QUICK = BackoffPolicy(initial_s=0.2, multiplier=2.0, max_s=1.0, reset_after_s=5.0)
SLOW = BackoffPolicy(initial_s=30.0, multiplier=2.0, max_s=30.0, reset_after_s=5.0)
ONE_STRIKE = BreakerPolicy(failure_threshold=1, reset_timeout_s=3.0)
PATIENT = BreakerPolicy(failure_threshold=3, reset_timeout_s=30.0)


@asynccontextmanager
async def open_node(
    exchange: ExchangeConfig,
    cluster: ClusterConfig,
    *,
    backoff: BackoffPolicy = QUICK,
    breaker: BreakerPolicy = PATIENT,
    url: str | None = None,
    seed: int = 1,
) -> AsyncIterator[tuple[MarketData, Supervisor]]:
    feeds = build_feeds(
        [exchange],
        backoff=backoff,
        circuit_breaker=breaker,
        tuning=PoolTuning(unsubscribe_linger_s=0.2, idle_linger_s=0.2, rest_timeout_s=1.0),
        cluster=cluster,
        redis_url=url or cluster.redis_url,
    )
    async with open_supervisor_tree(
        feeds.spec, rng=random.Random(seed), observers=(feeds.observer,)
    ) as tree:
        yield feeds.market_data, tree


async def test_the_leaders_rest_fallback_reaches_the_other_nodes(
    redis: RedisClient, key_prefix: str
) -> None:
    async with open_exchange_server("binance", ["BTC/USDT"], rate_hz=50) as server:
        exchange = exchange_for(server, fallback="rest", rest_poll_interval_s=0.3)
        feed = cluster_config(key_prefix, "feed-a", ["feed"])
        bots = cluster_config(key_prefix, "bots-b", ["bots"])
        with trio.fail_after(15):
            async with (
                open_node(exchange, feed, breaker=ONE_STRIKE) as (a, a_tree),
                open_node(exchange, bots) as (b, _),
                b.subscribe("binance", "ticker", "BTC/USDT") as tickers,
                b.subscribe("binance", "trade", "BTC/USDT") as trades,
            ):
                assert (await next_ticker(tickers)).source == "ws"
                server.refuse_handshakes(503)
                server.drop_connections()

                # The leader's streams were told down: so are b's, with the leader's reason
                # (states are latest-wins: a slow reader may first see the circuit's).
                reasons = ("connection ended", "circuit open")
                assert (await next_state(tickers, "down")).reason.startswith(reasons)
                assert (await next_state(trades, "down")).reason.startswith(reasons)

                # a's circuit opens, a leads again in fallback: its REST prices reach b.
                fallback = await next_state(tickers, "fallback")
                assert fallback.reason == "circuit open: REST polling"
                assert (await next_ticker(tickers)).source == "rest"
                await eventually(lambda: member(b, "binance").statistics().epoch == 2)
                assert (await next_ticker(tickers)).source == "rest"
                assert connections_keeper(a_tree, "binance").state == "circuit_open"
                a_view = a.statistics().exchanges["binance"]
                assert (a_view.state, a_view.breaker_state) == ("fallback", "open")
                assert member(a, "binance").role == "leader"
                assert member(b, "binance").statistics().leader == "feed-a"
                b_view = b.statistics().exchanges["binance"]
                assert b_view.streams[0].state == "fallback"
                assert b_view.fallback is not None
                assert b_view.fallback.requests == 0  # b polls nothing itself

                # The half-open trial connects under a's lease; b is live again.
                server.clear_refusals()
                await next_state(tickers, "live")
                assert (await next_ticker(tickers)).source == "ws"
                await next_state(trades, "live")
                assert server.statistics().connections_accepted == 2


async def test_a_node_in_backoff_follows_the_new_leader(
    redis: RedisClient, key_prefix: str
) -> None:
    async with open_exchange_server("binance", ["BTC/USDT"], rate_hz=50) as server:
        exchange = exchange_for(server)
        a_cfg = cluster_config(key_prefix, "feed-a", ["feed", "bots"])
        b_cfg = cluster_config(key_prefix, "feed-b", ["feed"])
        with trio.fail_after(10):
            async with open_node(exchange, a_cfg, backoff=SLOW, seed=3) as (a, a_tree):
                await member(a, "binance").wait_role("leader")
                async with (
                    open_node(exchange, b_cfg) as (b, _),
                    a.subscribe("binance", "ticker", "BTC/USDT") as events,
                ):
                    assert (await next_ticker(events)).source == "ws"
                    server.drop_connections()  # a's connection: a backs off for many seconds
                    await next_state(events, "down")
                    await member(b, "binance").wait_role("leader")
                    await next_state(events, "live")
                    await next_ticker(events)
                    keeper = connections_keeper(a_tree, "binance")
                    assert keeper.state == "backoff"
                    assert keeper.retry_at is not None
                    assert keeper.retry_at > trio.current_time() + 5  # (the seed's jitter)
                    view = member(a, "binance").statistics()
                    assert (view.role, view.leader, view.epoch) == ("follower", "feed-b", 2)
                    stats = a.statistics().exchanges["binance"]
                    assert (stats.session_state, stats.state) == ("backoff", "streaming")
                    assert server.statistics().connections_accepted == 2


async def test_a_leader_that_stops_tells_the_readers_and_releases_its_lease(
    redis: RedisClient, key_prefix: str
) -> None:
    async with open_exchange_server("binance", ["BTC/USDT"], rate_hz=50) as server:
        exchange = exchange_for(server)
        bots = cluster_config(key_prefix, "bots-b", ["bots"])
        with trio.fail_after(20):
            async with (
                open_node(exchange, bots) as (b, _),
                b.subscribe("binance", "ticker", "BTC/USDT") as events,
            ):
                # The stopping leader's last writes get a loaded machine's time (a write
                # that times out is skipped: readers would then go stale instead).
                leader = cluster_config(key_prefix, "feed-a", ["feed"], redis_timeout_s=2.0)
                async with open_node(exchange, leader):
                    await next_ticker(events)
                # the connections stopped first: their down reached b, then the lease went
                assert (await next_state(events, "down")).reason.startswith("connection ended")
                lease_key = f"{key_prefix}:lease:binance"
                assert await redis.get(lease_key) is None
                assert await redis.get(f"{lease_key}:released") == b"1"


class WatchingPartition(Partition):
    """Counts script calls (``EVALSHA``: here, lease acquires) passed, and whether one is
    held by the cut."""

    scripts_passed = 0
    held_script = False

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream) -> None:
        while True:
            await self._open.wait()
            data = await source.receive_some(65536)
            if not data:
                await sink.send_eof()
                return
            script = b"EVALSHA" in data
            if self.cut and script:
                self.held_script = True
            await self._open.wait()
            await sink.send_all(data)
            self.scripts_passed += script


async def test_a_lease_won_as_the_node_stops_is_released(
    redis: RedisClient, key_prefix: str
) -> None:
    url = urlsplit(redis_url())
    partition = WatchingPartition(url.hostname or "127.0.0.1", url.port or 6379)
    lease_key = f"{key_prefix}:lease:binance"
    other = Lease(redis, lease_key, "other", LeaseTiming(30.0))
    held = await other.acquire()
    assert held is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(partition.run)
        proxied = url._replace(netloc=f"127.0.0.1:{partition.port}").geturl()
        async with open_exchange_server("binance", ["BTC/USDT"], rate_hz=50) as server:
            exchange = exchange_for(server)
            # redis_timeout_s 2: the acquire held by the cut is answered before it times out
            cfg = cluster_config(key_prefix, "feed-a", ["feed"], redis_timeout_s=2.0)
            with trio.fail_after(10):
                async with open_node(exchange, cfg, url=proxied) as (a, _):
                    await eventually(lambda: partition.scripts_passed > 0)  # challenging in vain
                    partition.cut_off()
                    await eventually(lambda: partition.held_script)  # an acquire is in flight
                    assert await other.release(held)  # the lease is free: it will win

                    async def heal_soon() -> None:
                        await trio.sleep(0.2)
                        partition.heal()

                    nursery.start_soon(heal_soon)
                # a stopped with its acquire in flight; Redis ran it after the heal
                assert await redis.get(lease_key) is None
                assert await redis.get(f"{lease_key}:released") == b"2"
                assert member(a, "binance").takeovers == 0
        nursery.cancel_scope.cancel()


def test_a_state_ends_the_conflation_of_its_streams_tickers() -> None:
    def ticker(bid: str, source: Literal["ws", "rest"] = "ws") -> Ticker:
        return Ticker("x", "BTC/USDT", Decimal(bid), Decimal(bid), None, None, None, None, 1.0,
                      source)  # fmt: skip

    stream = Stream("ticker", "BTC/USDT")
    down = FeedState("x", stream, "down", "connection failed: 503")
    events = [ticker("1"), ticker("2"), down, ticker("3", "rest"), ticker("4", "rest")]
    batch = conflate(events)
    assert batch == [ticker("2"), down, ticker("4", "rest")]
    fields = {k.encode(): v.encode() for k, v in encode_entry(2, "n", 1.0, batch).items()}
    assert decode_entry("x", fields)[3] == batch
