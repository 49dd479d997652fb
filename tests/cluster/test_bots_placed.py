"""Bots across a cluster, in one Trio run: two nodes (``open_supervisor`` each, with a
``[cluster]`` section) sharing one real Redis (a key prefix per test), one real PostgreSQL
journal (a schema per test) and one local simulator. Real clock: the peers are real servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
import trio

from actors.errors import ConfigError
from actors.journal.base import FencedWriteError
from actors.journal.records import OrderIntent
from actors.simulator import ExchangeServer, open_exchange_server
from supervisor.build import build_tree
from supervisor.cluster.bot_node import ClusterBots
from supervisor.cluster.bot_store import BotKeys
from supervisor.cluster.redis import RedisClient
from supervisor.config import Config
from supervisor.config_loader import parse_config_mapping
from supervisor.system import System, open_supervisor
from tests.cluster.conftest import redis_url
from tests.cluster.helpers import Partition, eventually
from tests.postgres import fresh_schema, require_server

TTL_S = 0.5


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema(require_server()) as url:
        yield url


def bot(bot_id: str) -> dict[str, Any]:
    return {
        "id": bot_id,
        "exchange": "sim",
        "symbol": "BTC/USDT",
        "strategy": "sma_cross",
        "params": {"fast": 2, "slow": 3},
        "order_quote": "50",
    }


def node_config(
    server: ExchangeServer,
    key_prefix: str,
    pg_url: str,
    node: str,
    *,
    bots: int = 4,
    url: str | None = None,
) -> Config:
    return parse_config_mapping(
        {
            "exchanges": [
                {"name": "sim", "protocol": "binance", "url": server.ws_url, "stale_after_s": 2.0}
            ],
            "journal": {"url": pg_url, "fsync": False},
            "http": {"enabled": False},
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
            "cluster": {
                "redis_url": url or redis_url(),
                "namespace": key_prefix,
                "node": node,
                "lease_ttl_s": TTL_S,
                "redis_timeout_s": 0.2,
                "bot_placement": "cluster",
            },
            "bots": [bot(f"b{i}") for i in range(bots)],
        }
    )


def cluster(system: System) -> ClusterBots:
    assert system.cluster_bots is not None
    return system.cluster_bots


def running(system: System) -> set[str]:
    return {b for b, held in cluster(system).held.items() if held.started}


def trading(system: System) -> set[str]:
    """Bots whose actor runs here now (its lease's deadline not passed)."""
    out = set()
    for bot_id in system.bot_ids:
        try:
            state = system.bot(bot_id).statistics().state
        except KeyError:
            continue
        if state in ("running", "paused"):
            out.add(bot_id)
    return out


@asynccontextmanager
async def two_nodes(
    server: ExchangeServer, key_prefix: str, pg_url: str, *, url_a: str | None = None
) -> AsyncIterator[tuple[System, System]]:
    config_a = node_config(server, key_prefix, pg_url, "a", url=url_a)
    config_b = node_config(server, key_prefix, pg_url, "b")
    async with open_supervisor(config_a) as a, open_supervisor(config_b) as b:
        yield a, b


async def placed(a: System, b: System, total: int) -> None:
    """Until every bot runs on one node, balanced by count."""
    await eventually(
        lambda: (
            len(running(a)) + len(running(b)) == total
            and not running(a) & running(b)
            and abs(len(running(a)) - len(running(b))) <= 1
        )
    )


async def test_bots_are_placed_by_count_and_commands_reach_the_owner(
    key_prefix: str, redis: RedisClient, pg_url: str
) -> None:
    with trio.fail_after(20):
        async with (
            open_exchange_server("binance", ("BTC/USDT",), seed=5, rate_hz=20.0) as server,
            two_nodes(server, key_prefix, pg_url) as (a, b),
        ):
            await placed(a, b, 4)
            assert len(running(a)) == len(running(b)) == 2  # by count

            # A command sent to the node that does not run the bot reaches its owner.
            remote = sorted(running(a))[0]
            await b.pause_bot(remote)
            assert a.bot(remote).statistics().state == "paused"
            # Paused, it writes nothing: both nodes read the same orders from the journal.
            assert (await b.bot_orders(remote)) == (await a.bot_orders(remote))
            await b.resume_bot(remote)
            assert a.bot(remote).statistics().state == "running"

            # Every node shows every bot and where it runs.
            await eventually(lambda: len(cluster(b).view.status) == 4)
            health = b.health()
            assert set(health["bots"]) == {"b0", "b1", "b2", "b3"}
            for bot_id, entry in health["bots"].items():
                assert entry["node"] == ("a" if bot_id in running(a) else "b"), entry
                assert entry["epoch"] >= 1
            assert set(b.bot_views()) == {"b0", "b1", "b2", "b3"}
            assert health["cluster_bots"]["nodes"] == ["a", "b"]

            # Spawned on one node, placed by the cluster; an id taken anywhere is refused.
            await b.spawn_bot(bot("b4"))
            with pytest.raises(ConfigError, match="already running"):
                await a.spawn_bot(bot("b4"))
            await placed(a, b, 5)

            # Stopped from a node that does not run it: it leaves the cluster.
            await b.stop_bot(remote)
            assert remote not in running(a)
            await eventually(lambda: remote not in cluster(b).view.configs)
            with pytest.raises(KeyError):
                await b.pause_bot(remote)
            await placed(a, b, 4)

            # The operator's halt on one node reaches every bot, wherever it runs.
            await eventually(lambda: len(cluster(b).view.assigned) == 4)
            result = await b.halt("test")
            assert sorted(result["bots"]) == sorted(running(a) | running(b))
            for bot_id in running(a):
                assert a.bot(bot_id).statistics().state == "paused"


async def test_a_node_joining_takes_its_share_and_leaving_hands_it_back_at_epoch_plus_1(
    key_prefix: str, redis: RedisClient, pg_url: str
) -> None:
    with trio.fail_after(20):
        async with open_exchange_server("binance", ("BTC/USDT",), seed=6, rate_hz=20.0) as server:
            config_b = node_config(server, key_prefix, pg_url, "b")
            async with open_supervisor(config_b) as b:
                await eventually(lambda: len(running(b)) == 4)
                first = dict(cluster(b).held)
                async with open_supervisor(node_config(server, key_prefix, pg_url, "a")) as a:
                    await placed(a, b, 4)  # "a" joined: it took two, the other two stayed
                    assert all(cluster(b).held[bot_id] is first[bot_id] for bot_id in running(b))
                    moved = running(a)
                    epochs = {bot_id: cluster(a).held[bot_id].acquired.epoch for bot_id in moved}
                    stayed = {bot_id: cluster(b).held[bot_id] for bot_id in running(b)}
                # "a" stopped its bots and released their leases: no waiting out.
                await eventually(lambda: running(b) == {"b0", "b1", "b2", "b3"})
                for bot_id in moved:
                    assert cluster(b).held[bot_id].acquired.epoch == epochs[bot_id] + 1
                    assert await b.journal.owner_epoch(bot_id) == epochs[bot_id] + 1
                for bot_id, held in stayed.items():  # the bots that needed not move did not
                    assert cluster(b).held[bot_id] is held


async def test_a_partitioned_node_stops_trading_before_its_leases_can_expire(
    key_prefix: str, redis: RedisClient, pg_url: str
) -> None:
    keys = BotKeys(key_prefix)
    host, port = redis_url().removeprefix("redis://").split("/")[0].split(":")
    partition = Partition(host, int(port))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(partition.run)
            proxied = f"redis://127.0.0.1:{partition.port}/0"
            async with (
                open_exchange_server("binance", ("BTC/USDT",), seed=7, rate_hz=20.0) as server,
                two_nodes(server, key_prefix, pg_url, url_a=proxied) as (a, b),
            ):
                await placed(a, b, 4)
                cut = running(a)
                tokens = {bot_id: cluster(a).held[bot_id].acquired.token for bot_id in cut}
                partition.cut_off()
                checks = 0
                # Until "b" runs them: whenever "a" still trades a bot, its lease is still
                # a's in Redis (a trades only under a lease nobody else can take).
                while running(b) != {"b0", "b1", "b2", "b3"}:
                    still = trading(a) & cut
                    values = {bot_id: await redis.get(keys.lease(bot_id)) for bot_id in still}
                    for bot_id in still & trading(a):
                        assert values[bot_id] == tokens[bot_id].encode(), bot_id
                        checks += 1
                    await trio.sleep(0.01)
                assert checks > 0
                assert not trading(a) & cut
                for bot_id in cut:
                    new_epoch = cluster(b).held[bot_id].acquired.epoch
                    old_epoch = int(tokens[bot_id].rpartition(":")[2])
                    assert new_epoch == old_epoch + 1
                    # The deposed owner's late write is refused by the journal.
                    late = _late_intent(bot_id)
                    with pytest.raises(FencedWriteError):
                        await a.journal.record_intent(late, owner_epoch=old_epoch)
                partition.heal()
            nursery.cancel_scope.cancel()


def _late_intent(bot_id: str) -> OrderIntent:
    return OrderIntent(
        client_id=f"{bot_id}-late-1",
        bot_id=bot_id,
        seq=10_000,
        symbol="BTC/USDT",
        side="buy",
        order_type="market",
        size=Decimal("0.001"),
        price=None,
        tag="late",
        position_id=None,
        created_ts=0.0,
    )


def test_placing_bots_across_a_cluster_needs_the_shared_journal() -> None:
    raw = {
        "exchanges": [{"name": "sim", "protocol": "binance"}],
        "cluster": {"redis_url": "redis://127.0.0.1:1/0", "bot_placement": "cluster"},
        "bots": [bot("b0")],
    }
    with pytest.raises(ConfigError, match=r"journal\.url: bots placed across a cluster"):
        build_tree(parse_config_mapping(raw))
    raw["cluster"] = {**raw["cluster"], "roles": ["feed"]}  # runs no bots: its own journal
    build_tree(parse_config_mapping(raw))
    raw["cluster"] = {"redis_url": "redis://127.0.0.1:1/0"}  # per_node, the default
    assert build_tree(parse_config_mapping(raw)).bots.slots.keys() == {"b0"}


async def test_a_node_back_from_a_short_partition_trades_its_bots_again(
    key_prefix: str, redis: RedisClient, pg_url: str
) -> None:
    """Cut off until none of its bots trades, and back at once, before the leases' keys
    expire: whichever way each lease comes back (renewed in time, or given up and taken again
    at the next epoch when its renewal came back after its deadline), every bot trades again
    and the node's view (``running``) matches what trades: no lease is held for a bot that
    no longer runs."""
    host, port = redis_url().removeprefix("redis://").split("/")[0].split(":")
    partition = Partition(host, int(port))
    with trio.fail_after(25):
        async with trio.open_nursery() as nursery:
            await nursery.start(partition.run)
            proxied = f"redis://127.0.0.1:{partition.port}/0"
            async with (
                open_exchange_server("binance", ("BTC/USDT",), seed=9, rate_hz=20.0) as server,
                open_supervisor(node_config(server, key_prefix, pg_url, "a", url=proxied)) as a,
            ):
                everything = {"b0", "b1", "b2", "b3"}
                await eventually(lambda: trading(a) == everything)
                partition.cut_off()
                await eventually(lambda: not trading(a))  # each stopped at its deadline
                partition.heal()  # at once: the leases' keys outlive their deadlines
                await eventually(lambda: trading(a) == everything == running(a))
            nursery.cancel_scope.cancel()
