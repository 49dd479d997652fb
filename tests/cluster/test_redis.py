"""The cluster's Redis helpers against a real Redis."""

from __future__ import annotations

import trio

from supervisor.cluster.redis import RedisClient, ensure_group


async def test_a_consumer_group_made_again_is_kept_with_its_pending_entries(
    redis: RedisClient, key_prefix: str
) -> None:
    """What a restarted command consumer does: the group exists already (Redis says BUSYGROUP,
    which coredis turns into an exception whose text no longer says so)."""
    stream = f"{key_prefix}:commands"
    with trio.fail_after(10):
        await ensure_group(redis, stream, "node-a")
        await redis.xadd(stream, {"command": "pause"})
        first = await redis.xreadgroup("node-a", "node-a", streams={stream: ">"}, count=10)
        assert first is not None
        await ensure_group(redis, stream, "node-a")  # a second start: no error
        again = await redis.xreadgroup("node-a", "node-a", streams={stream: "0"}, count=10)
        assert again is not None
        [entries] = again.values()
        assert [entry.field_values for entry in entries] == [{b"command": b"pause"}]
