"""Two nodes in one process against one simulator and a real Redis: one wire connection, the
follower's subscribers fed through Redis, demand flowing to the leader."""

from __future__ import annotations

from urllib.parse import urlsplit

import trio

from actors.simulator import open_exchange_server
from tests.cluster.conftest import redis_url
from tests.cluster.helpers import (
    Partition,
    cluster_config,
    eventually,
    exchange_for,
    member,
    next_state,
    next_ticker,
    open_node,
)


async def test_follower_is_fed_through_redis_over_one_connection(
    redis: object, key_prefix: str
) -> None:
    async with open_exchange_server("binance", ["BTC/USDT", "ETH/USDT"], rate_hz=50) as server:
        exchange = exchange_for(server)
        feed = cluster_config(key_prefix, "feed-1", ["feed"])
        bots = cluster_config(key_prefix, "bots-1", ["bots"])
        with trio.fail_after(10):
            async with open_node(exchange, feed) as leader_md, open_node(exchange, bots) as md:
                async with md.subscribe("binance", "ticker", "BTC/USDT") as events:
                    first = await next_ticker(events)
                    assert first.symbol == "BTC/USDT"
                    assert member(leader_md, "binance").role == "leader"
                    view = member(md, "binance").statistics()
                    assert view.role == "follower"
                    assert view.leader == "feed-1"
                    assert view.epoch == 1
                    await next_ticker(events)
                    assert member(md, "binance").statistics().lag_count >= 1
                    assert server.statistics().connections_accepted == 1
                    streams = leader_md.statistics().exchanges["binance"].streams
                    assert [(s.kind, s.symbol) for s in streams] == [("ticker", "BTC/USDT")]


async def test_demand_from_every_node_and_the_last_subscriber_anywhere_unsubscribes(
    redis: object, key_prefix: str
) -> None:
    async with open_exchange_server("binance", ["BTC/USDT", "ETH/USDT"], rate_hz=50) as server:
        exchange = exchange_for(server)
        feed = cluster_config(key_prefix, "feed-1", ["feed", "bots"])
        with trio.fail_after(10):
            async with open_node(exchange, feed) as leader_md:
                wire = leader_md.statistics

                def on_wire() -> set[str]:
                    streams = wire().exchanges["binance"].streams
                    return {s.symbol for s in streams}

                async with leader_md.subscribe("binance", "ticker", "BTC/USDT") as mine:
                    await next_ticker(mine)
                    for node in ("bots-1", "bots-2"):
                        async with open_node(
                            exchange, cluster_config(key_prefix, node, ["bots"])
                        ) as md:
                            async with md.subscribe("binance", "ticker", "ETH/USDT") as theirs:
                                assert (await next_ticker(theirs)).symbol == "ETH/USDT"
                                assert on_wire() == {"BTC/USDT", "ETH/USDT"}
                                assert member(leader_md, "binance").statistics().remote_streams == 1
                            # their linger, their demand, then the leader's linger
                            await eventually(lambda: "ETH/USDT" not in on_wire())
                    assert on_wire() == {"BTC/USDT"}  # the leader's own subscriber stays
                    assert server.statistics().connections_accepted == 1


async def test_a_node_that_loses_redis_tells_its_streams_down(
    redis: object, key_prefix: str
) -> None:
    url = urlsplit(redis_url())
    partition = Partition(url.hostname or "127.0.0.1", url.port or 6379)
    async with trio.open_nursery() as nursery:
        await nursery.start(partition.run)
        proxied = url._replace(netloc=f"127.0.0.1:{partition.port}").geturl()
        async with open_exchange_server("binance", ["BTC/USDT"], rate_hz=50) as server:
            exchange = exchange_for(server, stale_after_s=5.0)
            feed = cluster_config(key_prefix, "feed-1", ["feed"])
            bots = cluster_config(key_prefix, "bots-1", ["bots"])
            with trio.fail_after(10):
                async with open_node(exchange, feed), open_node(exchange, bots, url=proxied) as md:
                    async with md.subscribe("binance", "ticker", "BTC/USDT") as events:
                        await next_ticker(events)
                        partition.cut_off()
                        down = await next_state(events, "down")
                        assert down.reason.startswith("redis unreachable")
                        view = member(md, "binance").statistics()
                        assert (view.role, view.redis_up) == ("redis_down", False)
                        assert md.statistics().exchanges["binance"].state == "connecting"
                        partition.heal()
                        await next_state(events, "live")
                        await next_ticker(events)
                        assert member(md, "binance").statistics().redis_up
        nursery.cancel_scope.cancel()
