"""The feed over Redis Streams: the leader's fenced writer and every other node's reader.

One stream per exchange (``<prefix>:feed:<exchange>``), trimmed by length (``MAXLEN ~``).

Decisions:

* **The leader writes per socket read.** The connection hands each read's events to
  ``FeedWriter.hook`` synchronously (``Connection.on_batch``: no task hop, no await on the
  reader's path); the writer task turns what piled up since its last write into one entry
  (``wire.conflate``) and writes it while the next reads pile up. A slow Redis therefore
  costs entries, never the reader's pace, and tickers a reader would skip never travel.
* **Fenced writes.** Every entry goes through ``FENCED_XADD``, which compares the lease key
  with the writer's token first: a leader whose lease expired or was taken cannot write,
  even if its own clock has not noticed yet. A refusal raises ``LeaseLost``.
* **Readers** ``XREAD`` from the stream's end when they start (old ticks are not news),
  ``BLOCK`` up to ``BLOCK_S`` at a time, and publish every event into the same
  ``Subscription``s a local connection would (``sub.publish``): conflation, the stale timer,
  feed states and the bots' jump guard see no difference. An entry whose epoch is below the
  highest seen comes from a deposed leader and is dropped (counted). A relayed ``down`` is
  told as such; a relayed REST ticker is published as ``fallback`` with the stale clock
  running (``Subscription.publish_rest(ticker, now)``: a relaying leader that dies shows as
  ``stale``); data after another state restarts the stale clock (``watch``), as a wire
  subscribe does.
* **A leader that gives up** (its exchange connection failed) ``finish``es its writer first:
  the ``down`` states its streams were just told reach the readers before the lease goes.
* Lag is measured from the leader's receipt (``t``, wall clock) to the reader's publish: on
  one machine it is exact; across machines it includes their clock offset (NTP).
"""

from __future__ import annotations

import time

import attrs
import trio
from loguru import logger

from actors.market_data.connection import LatencyHistogram
from actors.market_data.pool import ExchangePool
from actors.messages import FeedState, Ticker
from supervisor.cluster.redis import RedisClient, run_script
from supervisor.cluster.wire import Batch, conflate, decode_entry, encode_entry

__all__ = ["BLOCK_S", "FENCED_XADD", "FeedReader", "FeedWriter", "LeaseLost"]

BLOCK_S = 1.0
READ_COUNT = 500
# Lag from the leader's receipt to a reader's mailbox: finer than the wire latency buckets.
LAG_BUCKETS_S: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip

FENCED_XADD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
                  'e', ARGV[3], 'n', ARGV[4], 't', ARGV[5], 'd', ARGV[6])
"""


class LeaseLost(Exception):
    """Redis refused a write: the lease is no longer this node's."""


@attrs.define(eq=False)
class FeedWriter:
    client: RedisClient
    stream_key: str
    lease_key: str
    token: str
    epoch: int
    node: str
    maxlen: int
    timeout_s: float

    entries_written: int = attrs.field(default=0, init=False)
    events_written: int = attrs.field(default=0, init=False)
    _pending: list[object] = attrs.field(factory=list, init=False)
    _received_ts: float = attrs.field(default=0.0, init=False)
    _wake: trio.Event = attrs.field(factory=trio.Event, init=False)
    _finishing: bool = attrs.field(default=False, init=False)
    done: trio.Event = attrs.field(factory=trio.Event, init=False)  # finished: all written

    def hook(self, events: list[object], received_ts: float) -> None:
        """A socket read's events (``Connection.on_batch``): kept for the next write."""
        self._pending.extend(events)
        self._received_ts = received_ts
        self._wake.set()

    def finish(self) -> None:
        """Write what piled up, then let ``run`` return."""
        self._finishing = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            pending, self._pending = self._pending, []
            batch = conflate(pending)
            if batch:
                await self._write(batch)
            if self._finishing and not self._pending:
                self.done.set()
                return

    async def _write(self, batch: Batch) -> None:
        fields = encode_entry(self.epoch, self.node, self._received_ts, batch)
        with trio.fail_after(self.timeout_s):
            written = await run_script(
                self.client,
                FENCED_XADD,
                keys=[self.lease_key, self.stream_key],
                args=[self.token, self.maxlen, fields["e"], fields["n"], fields["t"],
                      fields["d"]],
            )  # fmt: skip
        if written is None:
            raise LeaseLost(f"write refused: the lease is no longer {self.token!r}")
        self.entries_written += 1
        self.events_written += len(batch)


@attrs.define(eq=False)
class FeedReader:
    pool: ExchangePool
    stream_key: str
    timeout_s: float

    max_epoch: int = attrs.field(default=0, init=False)
    leader: str | None = attrs.field(default=None, init=False)
    entries_read: int = attrs.field(default=0, init=False)
    events_read: int = attrs.field(default=0, init=False)
    stale_epoch_dropped: int = attrs.field(default=0, init=False)
    malformed: int = attrs.field(default=0, init=False)
    _flowing: bool = attrs.field(default=False, init=False)  # an entry arrived since run began
    lag: LatencyHistogram = attrs.field(factory=lambda: LatencyHistogram(LAG_BUCKETS_S))

    async def run(
        self, client: RedisClient, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Feed the pool's subscriptions from the stream until cancelled. The reader outlives
        its runs: the highest epoch seen and the counters carry over."""
        key = self.stream_key
        with trio.fail_after(self.timeout_s):
            newest = await client.xrevrange(key, count=1)
        last_id: bytes | str = newest[0].identifier if newest else b"0-0"
        now = trio.current_time()
        for sub in list(self.pool.streams().values()):
            sub.watch(now)  # the stale clock runs from here, as after a wire subscribe
        self._flowing = False
        self.pool.set_remote(False)  # "connecting" until the first entry arrives
        task_status.started()
        block_ms = round(BLOCK_S * 1000)
        while True:
            with trio.fail_after(BLOCK_S + self.timeout_s):
                reply = await client.xread({key: last_id}, count=READ_COUNT, block=block_ms)
            if not reply:
                continue
            for entry in next(iter(reply.values())):
                last_id = entry.identifier
                self._apply(entry.field_values)
                # Subscribers between entries, as a connection lets them run between socket
                # reads: a reader catching up with 500 entries must not overflow trade rings.
                await trio.lowlevel.cancel_shielded_checkpoint()

    def _apply(self, fields: object) -> None:
        try:
            epoch, node, received_ts, events = decode_entry(
                self.pool.name,
                fields,  # type: ignore[arg-type]
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            self.malformed += 1
            logger.warning("malformed feed entry", exchange=self.pool.name, error=str(exc)[:200])
            return
        if epoch < self.max_epoch:
            self.stale_epoch_dropped += 1
            return
        if epoch > self.max_epoch and self.max_epoch:
            logger.info("new feed leader", exchange=self.pool.name, node=node, epoch=epoch)
        self.max_epoch = epoch
        self.leader = node
        self.entries_read += 1
        if not self._flowing:
            self._flowing = True
            self.pool.set_remote(True)
        now = trio.current_time()
        streams = self.pool.streams()
        for event in events:
            sub = streams.get(event.stream)
            if sub is None or sub.closed:
                continue
            if isinstance(event, FeedState):
                if event.state == "down":
                    sub.down(event.reason)
                continue
            self.events_read += 1
            if type(event) is Ticker and event.source == "rest":
                sub.publish_rest(event, now)
                continue
            if not sub.live:
                sub.watch(now)  # data after another state: the stale clock runs from here
            sub.publish(event, now)
        self.lag.observe(time.time() - received_ts)
