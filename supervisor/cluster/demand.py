"""What each node wants of an exchange, and the union the leader carries on the wire.

Keys (``<p>`` is ``<prefix>:demand:<exchange>``): ``<p>:node:<node>`` holds the node's
wanted streams (a JSON list of ``kind:symbol``) with a ``PX`` expiry, ``<p>:nodes`` the set of
node names, ``<p>:notices`` a short stream with one entry per change.

Decisions:

* **Reference counts stay per node.** Subscribers enter and leave a node's own pool (which
  counts them synchronously and lingers as it always did); only the set of streams the pool
  carries crosses to Redis, when it changes. The leader holds one reference per stream that
  any other node wants (``member.py`` pins it): the last subscriber anywhere leaving, then
  each linger, takes the stream off the wire.
* **Liveness is the key's expiry**: a node refreshes its key every ``refresh_s`` and the key
  lives three times that; a dead node's key vanishes and the leader drops it from the set
  when it next reads. No clocks are compared across machines.
* **Changes are pushed, not polled**: a node that changes its set adds a notice; the leader
  blocks on the notices stream (``XREAD BLOCK``) and reads the union on each, and at least
  once per ``refresh_s`` (to notice expiries).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from actors.messages import STREAM_KINDS, Stream
from supervisor.cluster.redis import PureToken, RedisClient

NOTICES_KEPT = 100

__all__ = ["DemandKeys", "decode_streams", "encode_streams", "publish_demand", "read_union"]


class DemandKeys:
    def __init__(self, prefix: str, exchange: str) -> None:
        base = f"{prefix}:demand:{exchange}"
        self.nodes = f"{base}:nodes"
        self.notices = f"{base}:notices"
        self._base = base

    def node(self, node: str) -> str:
        return f"{self._base}:node:{node}"


def encode_streams(streams: Iterable[Stream]) -> str:
    return orjson.dumps(sorted(f"{s.kind}:{s.symbol}" for s in streams)).decode()


def decode_streams(payload: bytes | str) -> set[Stream]:
    out: set[Stream] = set()
    for item in orjson.loads(payload):
        kind, _, symbol = str(item).partition(":")
        if kind in STREAM_KINDS and symbol:
            out.add(Stream(kind, symbol))  # type: ignore[arg-type]
    return out


async def publish_demand(
    client: RedisClient, keys: DemandKeys, node: str, payload: str, *, ttl_ms: int, notify: bool
) -> None:
    await client.set(keys.node(node), payload, px=ttl_ms)
    await client.sadd(keys.nodes, [node])
    if notify:
        await client.xadd(
            keys.notices,
            {"n": node},
            trim_strategy=PureToken.MAXLEN,
            threshold=NOTICES_KEPT,
            trim_operator=PureToken.APPROXIMATELY,
        )


async def read_union(client: RedisClient, keys: DemandKeys, *, exclude: str) -> set[Stream]:
    """Every live node's streams but ``exclude``'s; forgets nodes whose key expired."""
    nodes = sorted(n.decode() for n in await client.smembers(keys.nodes))
    nodes = [n for n in nodes if n != exclude]
    if not nodes:
        return set()
    values = await client.mget([keys.node(n) for n in nodes])
    union: set[Stream] = set()
    gone: list[str] = []
    for name, value in zip(nodes, values, strict=True):
        if value is None:
            gone.append(name)
        else:
            union |= decode_streams(value)
    if gone:
        await client.srem(keys.nodes, gone)
    return union
