"""Live bots placed across a cluster, in one Trio run: two nodes (``open_supervisor`` each)
sharing one real Redis (a key prefix per test), one real PostgreSQL journal (a schema per
test), the market-data simulator and the local Binance venue attached to it (real sockets).
Real clock: the peers are real servers.

The failover test: node "a" runs the live bot; its first order executes on the venue but the
answer is lost (and "a"'s user stream is silent, and the venue's lookups lag), so the order is
in doubt when "a" is cut off from Redis. Node "b" takes the bot at epoch + 1, waits out the
old lease, and the bot's start resolves the order with the venue (lookups by client id) before
its first tick; no client order id is sent twice, the journal's fills are the venue's trades,
and "a"'s late write is refused by the journal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import trio

from actors.journal.base import FencedWriteError
from actors.journal.records import OrderIntent
from actors.simulator import BinanceVenue, ExchangeServer, open_binance_venue
from actors.simulator import open_exchange_server as open_server
from actors.venues.binance.account import BinanceAccount
from supervisor.cluster.bot_node import ClusterBots
from supervisor.cluster.bot_store import encode_config
from supervisor.cluster.placement import plan
from supervisor.cluster.redis import RedisClient
from supervisor.config import BotConfig, ClusterConfig, Config
from supervisor.config_loader import parse_config_mapping
from supervisor.daemon import metrics_registry
from supervisor.http import ServerAddress, run_http_server
from supervisor.system import System, open_supervisor
from tests.cluster.conftest import redis_url
from tests.cluster.helpers import Partition, eventually
from tests.postgres import fresh_schema, require_server

TTL_S = 0.5
LAG_S = 5.0  # the venue's lookups say "does not exist" for this long after an order
KEY_ENV, SECRET_ENV = "BCF_LIVE_CLUSTER_KEY", "BCF_LIVE_CLUSTER_SECRET"
TOKEN_ENV, TOKEN = "BCF_LIVE_CLUSTER_TOKEN", "live-cluster-token"
ORDER_PATH = "/api/v3/order"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema(require_server()) as url:
        yield url


def live_bot(bot_id: str, strategy: str, **params: Any) -> dict[str, Any]:
    return {
        "id": bot_id,
        "exchange": "sim",
        "symbol": "BTC/USDT",
        "strategy": f"tests.bots.strategies:{strategy}",
        "params": params,
        "mode": "live",
        "account": "main",
        "order_quote": "200",
        "risk": {"price_confirm_ticks": 1, "max_tick_move_pct": 20.0, "max_open_positions": 5},
    }


def node_config(
    server: ExchangeServer,
    venue: BinanceVenue,
    key_prefix: str,
    pg_url: str,
    node: str,
    bots: list[dict[str, Any]],
    *,
    url: str | None = None,
    http: bool = False,
) -> Config:
    return parse_config_mapping(
        {
            "exchanges": [
                {"name": "sim", "protocol": "binance", "url": server.ws_url, "stale_after_s": 2.0}
            ],
            "accounts": [
                {
                    "name": "main",
                    "api_key_env": KEY_ENV,
                    "api_secret_env": SECRET_ENV,
                    "rest_url": venue.rest_url,
                    "ws_api_url": venue.ws_api_url,
                    "unknown_poll_s": 0.5,
                }
            ],
            "journal": {"url": pg_url, "fsync": False},
            "http": {"port": 0, "token_env": TOKEN_ENV} if http else {"enabled": False},
            "backoff": {"initial_s": 0.05, "max_s": 0.2},
            "cluster": {
                "redis_url": url or redis_url(),
                "namespace": key_prefix,
                "node": node,
                "lease_ttl_s": TTL_S,
                "redis_timeout_s": 0.2,
                "bot_placement": "cluster",
            },
            "bots": bots,
        }
    )


def cluster(system: System) -> ClusterBots:
    assert system.cluster_bots is not None
    return system.cluster_bots


def running(system: System) -> set[str]:
    return {b for b, held in cluster(system).held.items() if held.started}


def account(system: System) -> BinanceAccount:
    return system.tree.accounts.accounts["main"]


@asynccontextmanager
async def market(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[ExchangeServer, Any]]:
    async with (
        open_server("binance", ("BTC/USDT",), seed=9, rate_hz=20.0) as server,
        open_binance_venue(("BTC/USDT",), market_server=server) as venue,
    ):
        monkeypatch.setenv(KEY_ENV, venue.api_key)
        monkeypatch.setenv(SECRET_ENV, venue.secret)
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        yield server, venue


def late_intent() -> OrderIntent:
    return OrderIntent(
        client_id="lv-late-1",
        bot_id="lv",
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


async def test_a_live_bot_in_doubt_moves_and_its_new_owner_resolves_the_order_first(
    key_prefix: str, redis: RedisClient, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = redis_url().removeprefix("redis://").split("/")[0].split(":")
    partition = Partition(host, int(port))
    bots = [live_bot("lv", "BuyOnce")]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, market(monkeypatch) as (server, venue):
            await nursery.start(partition.run)
            proxied = f"redis://127.0.0.1:{partition.port}/0"
            config_a = node_config(server, venue, key_prefix, pg_url, "a", bots, url=proxied)
            async with open_supervisor(config_a, start=False) as a:
                venue.silence_user_streams()  # a's account subscribed at its start
                venue.set_query_lag(LAG_S)
                venue.drop_responses()  # a's first order executes; its answer is lost
                await a.start()
                await eventually(lambda: account(a).counters["orders_in_doubt"] == 1)
                assert running(a) == {"lv"}
                epoch_a = cluster(a).held["lv"].acquired.epoch
                assert venue.order("bcf_lv_1").status == "FILLED"

                config_b = node_config(server, venue, key_prefix, pg_url, "b", bots)
                async with open_supervisor(config_b) as b:
                    # b reconciled the shared account while a's order was in flight: not
                    # foreign, no balance verdict on what a market order in flight moves.
                    found = b.tree.accounts.reconciliations["main"]
                    assert (found.foreign, dict(found.blocked)) == ((), {})
                    assert found.deferred == ("BTC", "USDT")
                    assert await b.journal.orders("lv") == await a.journal.orders("lv")
                    assert (await b.journal.orders("lv"))[0].status == "intent"

                    partition.cut_off()  # a can no longer renew: its bot stops, b takes it
                    await eventually(lambda: running(b) == {"lv"})
                    epoch_b = cluster(b).held["lv"].acquired.epoch
                    assert epoch_b == epoch_a + 1
                    assert await b.journal.owner_epoch("lv") == epoch_b
                    # The bot's start resolved the order by lookups before it traded; then
                    # it bought again (a new run of BuyOnce), through b's account.
                    bot = b.bot("lv")
                    while len(await b.journal.fills("lv")) < 2:
                        await bot.wait_processed(bot.statistics().events + 1)
                    assert account(b).counters["in_doubt_found"] == 1
                    assert account(b).counters["orders_sent"] == 1

                    # a's late write is refused: the journal is b's at epoch + 1.
                    with pytest.raises(FencedWriteError):
                        await a.journal.record_intent(late_intent(), owner_epoch=epoch_a)
                    partition.heal()
            nursery.cancel_scope.cancel()
    _check_venue_and_journal(venue, pg_url, epoch_b)


def _check_venue_and_journal(venue: BinanceVenue, pg_url: str, epoch_b: int) -> None:
    requests = list(venue.requests())
    posts = [r for r in requests if r.path == ORDER_PATH and r.method == "POST"]
    sent = [str(r.params["newClientOrderId"]) for r in posts]
    assert sent == ["bcf_lv_1", "bcf_lv_2"]  # no client order id POSTed twice
    lookups = [
        i
        for i, r in enumerate(requests)
        if r.path == ORDER_PATH
        and r.method == "GET"
        and r.params.get("origClientOrderId") == "bcf_lv_1"
    ]
    not_found = [i for i in lookups if requests[i].code == -2013]
    found = [i for i in lookups if requests[i].status == 200]
    assert not_found  # in doubt (the venue's read lag), never taken for "never placed"
    assert found  # then found by client id
    assert requests.index(posts[1]) > found[0]  # resolved before the new owner traded
    ours = {o.order_id for o in venue.orders() if o.client_order_id.startswith("bcf_")}
    trades = sorted(f"{t.symbol}:{t.trade_id}" for t in venue.trades() if t.order_id in ours)
    with psycopg.connect(pg_url) as db:
        orders = db.execute(
            "SELECT seq, status, owner_epoch, updated_epoch FROM orders WHERE bot_id = 'lv'"
            " ORDER BY seq"
        ).fetchall()
        fills = db.execute(
            "SELECT venue_fill_id, owner_epoch FROM fills WHERE bot_id = 'lv' ORDER BY fill_id"
        ).fetchall()
    assert sorted(f for f, _ in fills) == trades  # every venue trade booked, once
    assert {epoch for _, epoch in fills} == {epoch_b}  # booked by the new owner
    (seq1, status1, _, updated1), (seq2, status2, owner2, _) = orders
    assert (seq1, status1, updated1) == (1, "filled", epoch_b)
    assert (seq2, status2, owner2) == (2, "filled", epoch_b)


async def test_a_halt_on_any_node_halts_every_node_s_accounts_and_resume_lifts_it(
    key_prefix: str, redis: RedisClient, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bots = [live_bot("rest", "LimitOnce", offset="500")]
    with trio.fail_after(20):
        async with market(monkeypatch) as (server, venue):
            config_a = node_config(server, venue, key_prefix, pg_url, "a", bots)
            config_b = node_config(server, venue, key_prefix, pg_url, "b", bots, http=True)
            async with (
                open_supervisor(config_a) as a,
                open_supervisor(config_b) as b,
                trio.open_nursery() as nursery,
            ):
                await eventually(lambda: len(running(a) | running(b)) == 1)
                owner, other = (a, b) if running(a) else (b, a)
                await venue.wait_for(lambda v: any(o.status == "NEW" for o in v.orders()))
                await eventually(lambda: len(cluster(b).view.nodes) == 2)
                address = await nursery.start(
                    run_http_server, config_b.http, b, metrics_registry(b)
                )
                assert isinstance(address, ServerAddress)
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with httpx.AsyncClient(base_url=address.url, headers=headers) as http:
                    response = await http.post("/control/halt")
                    assert response.status_code == 200, response.text
                    body = response.json()
                    assert body["bots"] == ["rest"]
                    assert set(body["nodes"]) == {"a"}  # the other node answered
                    for node in (a, b):
                        halted = account(node).halted
                        assert halted is not None
                        assert halted.startswith("halted by the operator")
                    await venue.wait_for(lambda v: v.order("bcf_rest_1").status == "CANCELED")
                    assert owner.bot("rest").statistics().state == "paused"
                    state = await other.journal.load_state("account:main")
                    assert state["halted"].startswith("halted by the operator")

                    # resume-trading from the other node lifts it everywhere
                    result = await other.resume_trading()
                    assert result["accounts"] == ["main"]
                    assert set(result["nodes"]) == {"b" if other is a else "a"}
                    for node in (a, b):
                        assert account(node).halted is None
                    assert "halted" not in await a.journal.load_state("account:main")
                nursery.cancel_scope.cancel()


def test_live_bots_are_placed_only_on_nodes_with_their_account() -> None:
    bots = [f"p{i}" for i in range(4)] + ["live1", "live2"]
    eligible = {"live1": {"n2"}, "live2": {"n2", "n3"}}
    assignment = plan(bots, ["n1", "n2", "n3"], {}, eligible)
    assert assignment["live1"] == "n2"
    assert assignment["live2"] in ("n2", "n3")
    counts = sorted(list(assignment.values()).count(n) for n in ("n1", "n2", "n3"))
    assert counts == [2, 2, 2]  # still balanced by count among the eligible nodes
    # The node with the account dies: the live bot is left out, not placed elsewhere.
    after = plan(bots, ["n1", "n3"], assignment, eligible)
    assert "live1" not in after
    assert after["live2"] == "n3"
    # A live bot on a node that lost eligibility moves, even if the node lives.
    assert plan(["live1"], ["n1", "n2"], {"live1": "n1"}, eligible) == {"live1": "n2"}


def test_the_scheduler_reads_which_nodes_have_a_live_bot_s_account() -> None:
    config = ClusterConfig(redis_url="redis://127.0.0.1:1/0")
    node = ClusterBots(host=None, cluster=config, redis_url="redis://127.0.0.1:1/0")  # type: ignore[arg-type]
    live = BotConfig(id="lv", exchange="sim", symbol="BTC/USDT", mode="live", account="main")
    paper = BotConfig(id="pp", exchange="sim", symbol="BTC/USDT")
    catalogue = {"lv": encode_config(live), "pp": encode_config(paper)}
    nodes = {
        "n1": {"roles": ["bots"], "accounts": []},
        "n2": {"roles": ["bots"], "accounts": ["main"]},
        "n3": {"roles": ["bots"]},  # (a node of an older version: no accounts listed)
    }
    assert node._eligible(catalogue, nodes) == {"lv": {"n2"}}
    assert node._eligible({"pp": catalogue["pp"]}, nodes) == {}
