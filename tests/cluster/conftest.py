"""A real Redis for the cluster tests: ``BCF_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). Unreachable is a failure, never a skip: ``.ci/run`` starts
one, and the README says how to start one by hand. Every test gets its own key prefix, and
its keys are deleted after it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import trio

from supervisor.cluster.redis import REDIS_ERRORS, RedisClient, open_redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("BCF_TEST_REDIS_URL") or DEFAULT_REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    return f"bcf-test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(key_prefix: str) -> AsyncIterator[RedisClient]:
    url = redis_url()
    async with AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(open_redis(url, timeout_s=2.0))
            with trio.fail_after(2.0):
                await client.ping()
        except* REDIS_ERRORS as group:
            pytest.fail(
                f"no Redis at {url} ({group.exceptions[0]!r}): the cluster tests need a real"
                " one. Start one with `redis-server --port 6379 --save '' --daemonize yes` (or"
                " run `.ci/run`, which starts one itself), or point BCF_TEST_REDIS_URL at yours.",
                pytrace=False,
            )
        yield client
        with trio.CancelScope(shield=True), trio.fail_after(5.0):
            keys = [key async for key in client.scan_iter(match=f"{key_prefix}:*")]
            if keys:
                await client.delete(keys)
