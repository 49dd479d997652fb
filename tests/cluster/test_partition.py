"""A leader cut off from Redis (not from the exchange, not the others from Redis) stops
publishing and closes its exchange connection before another node leads; its later writes
are refused, and readers drop what an older epoch wrote."""

from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlsplit

import trio

from actors.messages import Ticker
from actors.simulator import open_exchange_server
from supervisor.cluster.feed import FENCED_XADD
from supervisor.cluster.redis import RedisClient, run_script
from supervisor.cluster.wire import decode_entry, encode_entry
from tests.cluster.conftest import redis_url
from tests.cluster.helpers import (
    TTL_S,
    Partition,
    cluster_config,
    exchange_for,
    member,
    next_ticker,
    open_node,
)


def streaming_spans(md: object, exchange: str) -> list[tuple[float, float | None]]:
    """(from, to) trio-clock spans during which the node's exchange state was streaming."""
    spans: list[tuple[float, float | None]] = []
    for t in md.statistics().exchanges[exchange].transitions:  # type: ignore[attr-defined]
        if t.to_state == "streaming":
            spans.append((t.at, None))
        elif t.from_state == "streaming" and spans:
            spans[-1] = (spans[-1][0], t.at)
    return spans


async def test_partitioned_leader_steps_down_before_a_new_leader_starts(
    redis: RedisClient, key_prefix: str
) -> None:
    url = urlsplit(redis_url())
    partition = Partition(url.hostname or "127.0.0.1", url.port or 6379)
    async with trio.open_nursery() as nursery:
        await nursery.start(partition.run)
        proxied = url._replace(netloc=f"127.0.0.1:{partition.port}").geturl()
        async with open_exchange_server("binance", ["BTC/USDT"], rate_hz=50) as server:
            exchange = exchange_for(server, stale_after_s=1.0)
            a_cfg = cluster_config(key_prefix, "feed-a", ["feed"])
            b_cfg = cluster_config(key_prefix, "feed-b", ["feed"])
            c_cfg = cluster_config(key_prefix, "bots-c", ["bots"])
            with trio.fail_after(15):
                async with open_node(exchange, a_cfg, url=proxied) as a:
                    a_member = member(a, "binance")
                    await a_member.wait_role("leader")  # a leads first, alone
                    async with open_node(exchange, b_cfg) as b, open_node(exchange, c_cfg) as c:
                        async with c.subscribe("binance", "ticker", "BTC/USDT") as events:
                            await next_ticker(events)
                            assert member(c, "binance").statistics().leader == "feed-a"
                            cut_at = trio.current_time()
                            partition.cut_off()
                            await member(b, "binance").wait_role("leader")
                            led_at = trio.current_time()
                            ticker = await next_ticker(events)
                            assert member(c, "binance").statistics().leader == "feed-b"
                            assert member(c, "binance").statistics().epoch == 2

                            # a stopped streaming (and writing) before b's connection opened
                            (a_span,) = streaming_spans(a, "binance")
                            b_spans = streaming_spans(b, "binance")
                            assert a_span[1] is not None
                            assert a_span[1] <= cut_at + TTL_S  # valid_until: ttl - margin
                            assert a_span[1] < b_spans[0][0]
                            assert led_at - cut_at < 2.75 * TTL_S + 0.5
                            assert server.statistics().connections_accepted == 2

                            # every feed-a entry precedes every feed-b entry in the stream
                            entries = await redis.xrange(f"{key_prefix}:feed:binance")
                            epochs = [int(e.field_values[b"e"]) for e in entries]
                            assert epochs == sorted(epochs)
                            assert set(epochs) == {1, 2}

                            # the deposed leader's token is refused by the fenced write
                            partition.heal()
                            stale_write = encode_entry(1, "feed-a", 0.0, [ticker])
                            refused = await run_script(
                                redis,
                                FENCED_XADD,
                                keys=[f"{key_prefix}:lease:binance",
                                      f"{key_prefix}:feed:binance"],
                                args=["feed-a:1", 1000, *stale_write.values()],
                            )  # fmt: skip
                            assert refused is None

                            # an entry of epoch 1 that reaches the stream anyway is dropped
                            bogus = Ticker("binance", "BTC/USDT", Decimal(1), Decimal(2), None,
                                           None, None, None, 0.0)  # fmt: skip
                            await redis.xadd(
                                f"{key_prefix}:feed:binance",
                                encode_entry(1, "feed-a", 0.0, [bogus]),
                            )
                            injected_at = time.time()
                            while True:  # until entries written after the injected one arrive
                                later = await next_ticker(events)
                                assert later.bid != Decimal(1)
                                if later.received_ts > injected_at:
                                    break
                            assert member(c, "binance").statistics().stale_epoch_dropped == 1
        nursery.cancel_scope.cancel()


def test_entries_round_trip_exactly() -> None:
    ticker = Ticker("x", "BTC/USDT", Decimal("1.10"), Decimal("1.20"), None, Decimal("3"),
                    None, 5.0, 6.0, "ws", 7)  # fmt: skip
    fields = {k.encode(): v.encode() for k, v in encode_entry(4, "n1", 6.5, [ticker]).items()}
    assert decode_entry("x", fields) == (4, "n1", 6.5, [ticker])
