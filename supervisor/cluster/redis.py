"""The one module that imports coredis (only ever imported with a ``[cluster]`` section).

Decisions:

* coredis 6 runs on anyio, so it works under ``trio.run``; a client is an async context
  manager (its connection pool's tasks live in it), opened by ``open_redis``.
* coredis runs each blocking command on a connection of its own (measured: a ``PING``
  during two ``XREAD BLOCK`` answers in ~3 ms), so a reader's long poll never delays a renew.
* Every call a caller waits on has a deadline (``redis_timeout_s``): a partitioned Redis
  does not fail a TCP call, it just never answers, and a lease must be judged by time.
  ``RedisDown`` is the one error the cluster's code catches; coredis' own errors and
  timeouts are turned into it at this seam.
* Scripts are registered once per client (``EVALSHA``, loaded again by coredis if Redis
  forgot them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import coredis
import coredis.exceptions
import trio
from coredis import PureToken

from actors.errors import FeedError

__all__ = [
    "REDIS_ERRORS",
    "PureToken",
    "RedisClient",
    "RedisDown",
    "ensure_group",
    "open_redis",
    "run_script",
]

RedisClient = coredis.Redis[bytes]


class RedisDown(FeedError):
    """Redis did not answer in time, or refused the connection."""


REDIS_ERRORS: tuple[type[Exception], ...] = (
    coredis.exceptions.RedisError,
    RedisDown,
    OSError,
    trio.TooSlowError,
    TimeoutError,
)


MAX_BLOCK_S = 5.0
_scripts: dict[tuple[int, str], Any] = {}


@asynccontextmanager
async def open_redis(url: str, *, timeout_s: float) -> AsyncIterator[RedisClient]:
    # The socket timeout leaves room for blocking reads (``XREAD BLOCK``, at most
    # ``MAX_BLOCK_S``); every call's own deadline is the caller's ``trio.fail_after``.
    client: RedisClient = coredis.Redis.from_url(
        url,
        connect_timeout=timeout_s,
        stream_timeout=timeout_s + MAX_BLOCK_S,
        decode_responses=False,
    )
    try:
        async with client:
            yield client
    finally:
        for key in [k for k in _scripts if k[0] == id(client)]:
            del _scripts[key]


async def run_script(
    client: RedisClient, source: str, *, keys: Sequence[str], args: Sequence[object]
) -> Any:
    script = _scripts.get((id(client), source))
    if script is None:
        script = _scripts[id(client), source] = client.register_script(source)
    return await script(keys=list(keys), args=[str(a) for a in args])


async def ensure_group(client: RedisClient, stream: str, group: str) -> None:
    """The consumer group ``group`` on ``stream`` (both created if absent), reading what is
    added from now on. A group that exists already is kept as it is, with its pending entries:
    a consumer that restarts (a Redis timeout, a node back from a partition) goes on where it
    was. coredis raises ``StreamDuplicateConsumerGroupError`` for Redis's ``BUSYGROUP`` and
    drops that word from the message, so the class is what tells it apart."""
    try:
        await client.xgroup_create(stream, group, "$", mkstream=True)
    except coredis.exceptions.StreamDuplicateConsumerGroupError:
        pass
