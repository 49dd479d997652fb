"""The cluster's bots in Redis: keys, scripts and the small operations on them.

Keys (``<p>`` is ``<namespace>:bots``):

* ``<p>:catalogue`` (hash ``bot -> config JSON``): every bot the cluster runs, configured or
  spawned on any node; removing a bot's entry is what stops it for good.
* ``<p>:assign`` (hash ``bot -> node``): the scheduler's plan, written only through
  ``FENCED_ASSIGN`` (a deposed scheduler cannot write).
* ``<p>:lease:<bot>`` (+ ``:epoch``, ``:released``): the bot's lease (``lease.Lease``); its
  epoch is the owner epoch of every journal write the bot makes.
* ``<p>:scheduler``: the scheduler's lease. ``<p>:node:<node>`` (``PX``) and ``<p>:nodes``
  (set): node heartbeats. ``<p>:status`` (hash ``bot -> JSON``): each owner's last report of
  its bots, for ``/health`` and ``GET /bots`` on every node.
* ``<p>:commands`` (stream, one consumer group per node) and ``<p>:reply:<id>`` (list, short
  expiry): commands to the owner and their answers.

Decisions:

* **One renew for all of a node's bots** (``RENEW_MANY``, one script call): a thousand bots
  cost one round trip per ``ttl/3``, and every bot of the node is judged by the send time of
  the same call.
* Heartbeats, like demand (``demand.py``), are keys with an expiry: no clocks are compared
  across machines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from actors.schema import converter
from supervisor.cluster.redis import RedisClient, run_script
from supervisor.config import BotConfig

__all__ = ["FENCED_ASSIGN", "RENEW_MANY", "BotKeys", "decode_config", "encode_config"]

RENEW_MANY = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    out[i] = redis.call('PEXPIRE', key, ARGV[1])
  else
    out[i] = 0
  end
end
return out
"""

FENCED_ASSIGN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[2], ARGV[3 + 2 * i], ARGV[4 + 2 * i])
end
for i = 3 + 2 * n, #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
end
return 1
"""


class BotKeys:
    def __init__(self, namespace: str) -> None:
        base = self.base = f"{namespace}:bots"
        self.catalogue = f"{base}:catalogue"
        self.assign = f"{base}:assign"
        self.scheduler = f"{base}:scheduler"
        self.nodes = f"{base}:nodes"
        self.status = f"{base}:status"
        self.commands = f"{base}:commands"

    def lease(self, bot_id: str) -> str:
        return f"{self.base}:lease:{bot_id}"

    def node(self, node: str) -> str:
        return f"{self.base}:node:{node}"

    def reply(self, command_id: str) -> str:
        return f"{self.base}:reply:{command_id}"


def encode_config(config: BotConfig) -> bytes:
    return orjson.dumps(converter.unstructure(config), default=str)


def decode_config(payload: bytes | str) -> BotConfig:
    return converter.structure(orjson.loads(payload), BotConfig)


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def hgetall(client: RedisClient, key: str) -> dict[str, bytes]:
    raw: Mapping[Any, Any] = await client.hgetall(key)
    return {text(k): v for k, v in raw.items()}


async def renew_many(
    client: RedisClient, keys: BotKeys, held: Mapping[str, str], ttl_ms: int
) -> dict[str, bool]:
    """Renew every ``bot -> token`` lease in one call; which are still ours."""
    bots = list(held)
    if not bots:
        return {}
    result = await run_script(
        client,
        RENEW_MANY,
        keys=[keys.lease(b) for b in bots],
        args=[ttl_ms, *(held[b] for b in bots)],
    )
    return {bot: bool(int(r)) for bot, r in zip(bots, result, strict=True)}


async def write_assignment(
    client: RedisClient,
    keys: BotKeys,
    token: str,
    to_set: Mapping[str, str],
    to_delete: Iterable[str],
) -> bool:
    """The scheduler's fenced write; False if its lease is no longer ``token``."""
    args: list[object] = [token, len(to_set)]
    for bot, node in to_set.items():
        args += [bot, node]
    args += list(to_delete)
    result = await run_script(client, FENCED_ASSIGN, keys=[keys.scheduler, keys.assign], args=args)
    return bool(int(result))


async def live_nodes(client: RedisClient, keys: BotKeys) -> dict[str, dict[str, Any]]:
    """Every node whose heartbeat has not expired, with what it reported; forgets the others."""
    names = sorted(text(n) for n in await client.smembers(keys.nodes))
    if not names:
        return {}
    values = await client.mget([keys.node(n) for n in names])
    out: dict[str, dict[str, Any]] = {}
    gone: list[str] = []
    for name, value in zip(names, values, strict=True):
        if value is None:
            gone.append(name)
        else:
            out[name] = orjson.loads(value)
    if gone:
        await client.srem(keys.nodes, gone)
    return out
