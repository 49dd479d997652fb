"""One exchange on one node of a cluster: follow the feed, challenge for the lease, lead.

With a ``[cluster]`` section an exchange's subtree has three children: ``streams:<exchange>``
(the subscription actors, unchanged), ``cluster:<exchange>`` (``ExchangeMember.run``: Redis,
the feed, the lease) and ``connections:<exchange>`` (``ExchangeMember.run_connections``: the
pool's connections, run only while this node leads). Subscribers, feed states and bots are
the same on every node.

    node with role "feed":   follow + challenge ──won──> wait out ──> lead ──lapsed/lost/failed──┐
                             ^────────────────────────────────────────────────────────────────────┘
    node without it:         follow

* **Follow**: ``FeedReader`` feeds the pool's subscriptions from Redis. **Lead**: the
  connections child runs the pool's own connections (the one wire connection of the
  cluster), every socket read is written to Redis by the fenced ``FeedWriter``, and every
  stream another node wants is held here by a pin (a subscription without a reader: a ticker
  slot or a trade ring cursor costs nothing while nobody reads).
* **Two children, so the exchange's failures keep their supervision and the feed keeps
  flowing.** The connections child keeps its backoff, circuit breaker and restart budget: a
  leader's connection that fails raises there as on a single daemon. The cluster child hears
  it (``_Lead.failed``), writes what its streams were just told (``down`` with the reason),
  releases the lease and follows at once, so while its connections back off the node reads
  whichever node leads next instead of telling its subscribers ``down``. A node challenges
  only while its connections child waits for a lead (not during its backoff), so a node
  whose connection keeps failing stands aside.
* **Fallback is relayed.** With ``fallback = "rest"``, a node whose circuit is open may still
  lead (it challenges one ``ttl`` later than a node that can connect): its pool polls REST
  for every stream any node wants, and each polled ticker (``source = "rest"``) and each
  ``down`` goes into the fenced stream, so readers tell ``fallback`` with the same prices.
  At its half-open trial the connections child connects under the lease it holds.
* **Leading is bounded by the lease**: the lead (the cluster child's and the connections
  child's cancel scopes) has the deadline ``LeaseTiming.valid_until`` of the last successful
  renew. A leader cut off from Redis (renews time out) reaches that deadline, closes its
  exchange connection and stops writing before its key can expire, i.e. before anyone else
  can win. A refused renew or write ends it at once.
* **Losing Redis is not a crash**: the node tells every stream ``down`` (bots do not trade on
  a feed they cannot see) and tries again after ``retry_s``.
* **A lease is never left behind**: the acquire is shielded (bounded by ``redis_timeout_s``),
  so a lease won as the node stops is known, and released with the session.
* Every node publishes its own demand (``demand.py``) whatever its role: after a takeover the
  new leader finds every node's wants already in Redis.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Literal

import attrs
import trio
from loguru import logger

from actors.market_data.pool import ExchangePool
from actors.market_data.subscription import Subscription
from actors.messages import Stream
from supervisor.cluster.demand import DemandKeys, encode_streams, publish_demand, read_union
from supervisor.cluster.feed import FeedReader, FeedWriter, LeaseLost
from supervisor.cluster.lease import Acquired, Lease, LeaseTiming, keep_renewed
from supervisor.cluster.redis import MAX_BLOCK_S, REDIS_ERRORS, RedisClient, open_redis
from supervisor.config import ClusterConfig

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["ClusterExchangeStatistics", "ExchangeMember", "Role"]

Role = Literal["connecting", "follower", "waiting", "leader", "redis_down"]


@attrs.define(eq=False)
class _Lead:
    """The lease as both children see it: lead until ``deadline`` (each renewal moves it) or
    until revoked. ``failed`` is set when the connections end in an error, or are stopped."""

    deadline: float
    scopes: list[trio.CancelScope] = attrs.field(factory=list)
    failed: trio.Event = attrs.field(factory=trio.Event)
    revoked: bool = False

    def extend(self, deadline: float) -> None:
        self.deadline = deadline
        for scope in self.scopes:
            scope.deadline = deadline

    def revoke(self) -> None:
        self.revoked = True
        for scope in self.scopes:
            scope.cancel(reason="lead over")


@attrs.frozen
class ClusterExchangeStatistics:
    """One exchange's cluster view from one node, for ``/health`` and ``/metrics``."""

    node: str
    role: Role
    leader: str | None  # the node whose entries this node last read, or this node
    epoch: int  # this node's lease epoch while it leads, else the highest epoch read
    redis_up: bool
    redis_rtt_s: float | None  # the last demand write's round trip
    takeovers: int  # times this node became the leader
    entries_written: int
    entries_read: int
    events_read: int
    stale_epoch_dropped: int
    remote_streams: int  # streams held on the wire for other nodes (leader only)
    lag_bucket_bounds_s: tuple[float, ...]
    lag_bucket_counts: tuple[int, ...]
    lag_sum_s: float
    lag_count: int
    last_error: str | None


@attrs.define(eq=False)
class ExchangeMember:
    pool: ExchangePool
    cluster: ClusterConfig
    redis_url: str = attrs.field(repr=False)
    rng: random.Random = attrs.field(factory=random.Random)

    role: Role = attrs.field(default="connecting", init=False)
    takeovers: int = attrs.field(default=0, init=False)
    redis_rtt_s: float | None = attrs.field(default=None, init=False)
    last_error: str | None = attrs.field(default=None, init=False)
    _epoch: int = attrs.field(default=0, init=False)
    _reading: bool = attrs.field(default=False, init=False)
    _writer: FeedWriter | None = attrs.field(default=None, init=False)
    _written: int = attrs.field(default=0, init=False)  # by earlier writers
    _pins: dict[Stream, trio.CancelScope] = attrs.field(factory=dict, init=False)
    _demand_changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _role_changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _held: Acquired | None = attrs.field(default=None, init=False)  # won, not yet released
    _granted: _Lead | None = attrs.field(default=None, init=False)
    _lead_changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _connections_waiting: bool = attrs.field(default=False, init=False)
    _challenge_wake: trio.Event = attrs.field(factory=trio.Event, init=False)
    timing: LeaseTiming = attrs.field(init=False)
    lease_key: str = attrs.field(init=False)
    stream_key: str = attrs.field(init=False)
    demand_keys: DemandKeys = attrs.field(init=False)
    _reader: FeedReader = attrs.field(init=False)
    log: Logger = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        prefix, name = self.cluster.namespace, self.pool.name
        self.timing = LeaseTiming(self.cluster.lease_ttl_s)
        self.lease_key = f"{prefix}:lease:{name}"
        self.stream_key = f"{prefix}:feed:{name}"
        self.demand_keys = DemandKeys(prefix, name)
        self.log = logger.bind(actor="cluster", exchange=name, node=self.cluster.node)
        self._reader = FeedReader(self.pool, self.stream_key, self.cluster.redis_timeout_s)
        self.pool.on_wanted = self._on_wanted

    @property
    def node(self) -> str:
        return self.cluster.node

    def _set_role(self, role: Role) -> None:
        if role != self.role:
            self.role = role
            self._role_changed.set()
            self._role_changed = trio.Event()

    async def wait_role(self, role: Role) -> None:
        """Until this node's role for the exchange is ``role`` (tests, embedders)."""
        while self.role != role:
            await self._role_changed.wait()

    @property
    def retry_s(self) -> float:
        return min(1.0, self.timing.ttl_s / 2)

    # --- the connections child ---------------------------------------------------------------

    async def run_connections(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The pool's connections, under each lead this node gets; raises as
        ``ExchangePool.run_connections`` does (the keeper's backoff and breaker)."""
        task_status.started()  # like an idle exchange: it connects when this node leads
        lead: _Lead | None = None
        while True:
            lead = await self._next_lead(lead)
            over = False  # the lead ended (lapsed, lost, revoked), not the connections
            scope = trio.CancelScope(deadline=lead.deadline)
            lead.scopes.append(scope)
            try:
                with scope:
                    if lead.revoked:
                        scope.cancel()
                    await self.pool.run_connections()
                over = True
            finally:
                lead.scopes.remove(scope)
                if not over:
                    lead.failed.set()  # an error, or this child stops: the lease goes

    async def _next_lead(self, previous: _Lead | None) -> _Lead:
        self._connections_waiting = True
        self._challenge_wake.set()
        try:
            while True:
                lead = self._granted
                if lead is not None and lead is not previous and not lead.failed.is_set():
                    return lead
                await self._lead_changed.wait()
        finally:
            self._connections_waiting = False

    def _set_lead(self, lead: _Lead | None) -> None:
        self._granted = lead
        self._lead_changed.set()
        self._lead_changed = trio.Event()

    # --- the cluster child ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # like an idle exchange: streams come when the feed does
        while True:
            try:
                await self._connected_session()
            except* REDIS_ERRORS as group:
                error = _first(group)
                self._redis_lost(error)
            await trio.sleep(self.retry_s * self.rng.uniform(0.5, 1.0))

    async def _connected_session(self) -> None:
        """A Redis client and the session on it. coredis runs its connections in tasks of the
        client's context: cancelled with us, they would fail the session's shielded cleanup
        (release the lease, drop the demand). So the client lives in a shielded scope, the
        session in a scope of its own that our stop cancels, and the shield gets a deadline
        then (the cleanup's calls are bounded by ``redis_timeout_s`` each)."""
        timeout = self.cluster.redis_timeout_s
        session = trio.CancelScope()
        shield = trio.CancelScope(shield=True)

        async def stop_with_us() -> None:
            try:
                await trio.sleep_forever()
            finally:
                session.cancel(reason="stopping")
                shield.deadline = trio.current_time() + 3 * timeout

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_with_us)
            with shield:
                async with open_redis(self.redis_url, timeout_s=timeout) as client:
                    with session:
                        await self._session(client)
            nursery.cancel_scope.cancel()

    def _redis_lost(self, error: BaseException) -> None:
        reason = f"redis unreachable: {type(error).__name__}: {error}"[:300]
        if self.role != "redis_down":
            self.log.warning("redis lost", error=reason)
        self.last_error = reason
        self._set_role("redis_down")
        self._reading = False
        self.pool.set_remote(False)
        for sub in list(self.pool.streams().values()):
            sub.down(reason)

    async def _session(self, client: RedisClient) -> None:
        lease = Lease(client, self.lease_key, self.node, self.timing)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._publish_demand, client)
                if "feed" not in self.cluster.roles:
                    await self._follow(client)
                    return
                while True:
                    held, acquired_at = await self._follow_until_leader(client, lease)
                    await self._lead(client, lease, held, acquired_at)
        finally:
            # A lease won as the session ended goes now (not when it expires), and a node that
            # stops takes its demand with it.
            won, self._held = self._held, None
            with trio.CancelScope(shield=True), trio.move_on_after(self.cluster.redis_timeout_s):
                try:
                    if won is not None:
                        await lease.release(won)
                    await client.delete([self.demand_keys.node(self.node)])
                except REDIS_ERRORS:
                    pass  # they expire on their own

    # --- follow -----------------------------------------------------------------------------------

    async def _follow(
        self, client: RedisClient, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._set_role("follower")
        try:
            self._reading = True
            await self._reader.run(client, task_status=task_status)
        finally:
            self._reading = False

    def _may_lead(self) -> Literal["connect", "fallback"] | None:
        """Whether leading would serve: the connections child waits for a lead, or the
        circuit is open and REST polling would feed the cluster."""
        if self._connections_waiting:
            return "connect"
        if self.pool.breaker_state == "open" and self.pool.config.fallback == "rest":
            return "fallback"
        return None

    async def _follow_until_leader(
        self, client: RedisClient, lease: Lease
    ) -> tuple[Acquired, float]:
        timeout = self.cluster.redis_timeout_s
        async with trio.open_nursery() as nursery:
            await nursery.start(self._follow, client)
            while True:
                wake = self._challenge_wake = trio.Event()
                mode = self._may_lead()
                if mode is not None:
                    sent_at = trio.current_time()
                    # Shielded: a lease won as the node stops is known, so it is released.
                    with trio.CancelScope(shield=True), trio.fail_after(timeout):
                        held = await lease.acquire()
                    if held is not None:
                        self._held = held
                        nursery.cancel_scope.cancel(reason="won the lease")
                        return held, sent_at
                delay = self.timing.retry_in(self.rng)
                if mode == "connect":
                    await trio.sleep(delay)
                    continue
                if mode == "fallback":
                    delay += self.timing.ttl_s  # a node that can connect goes first
                with trio.move_on_after(delay):
                    await wake.wait()  # the connections child came back from its backoff
        raise AssertionError("unreachable")  # pragma: no cover

    # --- lead -------------------------------------------------------------------------------------

    async def _lead(
        self, client: RedisClient, lease: Lease, held: Acquired, acquired_at: float
    ) -> None:
        self.takeovers += 1
        self._epoch = held.epoch
        self._set_role("waiting")
        wait_s = self.timing.wait_out(held.previous_released)
        self.log.info("lease won", epoch=held.epoch, wait_s=wait_s)
        self.pool.set_remote(False)
        for sub in list(self.pool.streams().values()):
            sub.down("feed leader changing")
        lead = _Lead(self.timing.valid_until(acquired_at))
        try:
            with trio.CancelScope(deadline=lead.deadline) as scope:
                lead.scopes.append(scope)
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._renew, lease, held, lead, acquired_at)
                        if wait_s:
                            await trio.sleep(wait_s)  # the old holder's lease runs out first
                        writer = self._writer = FeedWriter(
                            client,
                            self.stream_key,
                            self.lease_key,
                            held.token,
                            held.epoch,
                            self.node,
                            self.cluster.stream_maxlen,
                            self.cluster.redis_timeout_s,
                        )
                        nursery.start_soon(writer.run)
                        nursery.start_soon(self._pin_demand, client)
                        self.pool.set_batch_hook(writer.hook)
                        self.pool.set_remote(None)  # polls REST if the circuit is open
                        self._set_role("leader")
                        self.log.info("leading", epoch=held.epoch)
                        self._set_lead(lead)  # the connections child connects
                        await lead.failed.wait()
                        self.log.info("exchange connections ended: giving up the lease")
                        writer.finish()  # the streams' down states reach the readers first
                        with trio.move_on_after(self.cluster.redis_timeout_s):
                            await writer.done.wait()
                        nursery.cancel_scope.cancel(reason="exchange connection ended")
                except* LeaseLost as group:
                    self.log.warning("lease lost", error=str(_first(group)))
            if scope.cancelled_caught and not lead.failed.is_set():
                self.log.warning("stepped down: lease renewal overdue or refused", epoch=held.epoch)
        finally:
            self._set_lead(None)
            lead.revoke()  # the connections close (at the same deadline, if it lapsed)
            self.pool.set_batch_hook(None)
            if self._writer is not None:
                self._written += self._writer.entries_written
                self._writer = None
            self._pins.clear()
            self._set_role("follower")
            self._held = None
            with trio.CancelScope(shield=True), trio.move_on_after(self.cluster.redis_timeout_s):
                try:
                    await lease.release(held)
                except REDIS_ERRORS:
                    pass  # it expires on its own

    async def _renew(self, lease: Lease, held: Acquired, lead: _Lead, sent_at: float) -> None:
        def renewed(sent: float, rtt: float) -> None:
            self.redis_rtt_s = rtt
            lead.extend(self.timing.valid_until(sent))

        def failed(exc: BaseException) -> None:
            self.log.warning("lease renewal failed", error=f"{type(exc).__name__}: {exc}")

        await keep_renewed(
            lease,
            held,
            sent_at=sent_at,
            timeout_s=self.cluster.redis_timeout_s,
            renewed=renewed,
            failed=failed,
        )
        raise LeaseLost(f"renew refused: the lease is no longer {held.token!r}")

    async def _pin_demand(self, client: RedisClient) -> None:
        """Hold every stream another node wants, until no live node wants it."""
        keys = self.demand_keys
        timeout = self.cluster.redis_timeout_s
        refresh_s = min(self.timing.ttl_s, MAX_BLOCK_S)
        with trio.fail_after(timeout):
            newest = await client.xrevrange(keys.notices, count=1)
        last_id: str | bytes = newest[0].identifier if newest else b"0-0"
        async with trio.open_nursery() as nursery:
            while True:
                with trio.fail_after(timeout):
                    wanted = await read_union(client, keys, exclude=self.node)
                for stream in wanted:
                    if stream not in self._pins:
                        scope = await nursery.start(self._pin, stream)
                        if scope is not None:
                            self._pins[stream] = scope
                for stream in [s for s in self._pins if s not in wanted]:
                    self._pins.pop(stream).cancel()
                with trio.fail_after(refresh_s + timeout):
                    reply = await client.xread(
                        {keys.notices: last_id}, count=100, block=round(refresh_s * 1000)
                    )
                if reply:
                    last_id = next(iter(reply.values()))[-1].identifier

    async def _pin(
        self, stream: Stream, *, task_status: trio.TaskStatus[trio.CancelScope | None]
    ) -> None:
        with trio.CancelScope() as scope:
            try:
                subscription = self.pool.subscribe(stream.kind, stream.symbol)
            except ValueError as exc:
                self.log.warning("demand refused", stream=str(stream), error=str(exc))
                task_status.started(None)
                return
            async with subscription:
                task_status.started(scope)
                await trio.sleep_forever()

    # --- this node's demand -------------------------------------------------------------------

    def _on_wanted(self, sub: Subscription, added: bool) -> None:
        self._demand_changed.set()
        if added and self._reading:
            sub.watch(trio.current_time())

    def local_demand(self) -> set[Stream]:
        """Streams this node's own subscribers hold (a pin alone does not count)."""
        pins = self._pins
        return {
            stream
            for stream, sub in self.pool.streams().items()
            if stream not in pins or sub.subscribers > 1
        }

    async def _publish_demand(
        self, client: RedisClient, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        refresh_s = self.timing.ttl_s
        ttl_ms = round(3 * refresh_s * 1000)
        last: str | None = None
        started = False
        while True:
            self._demand_changed = trio.Event()
            payload = encode_streams(self.local_demand())
            sent_at = trio.current_time()
            with trio.fail_after(self.cluster.redis_timeout_s):
                await publish_demand(
                    client,
                    self.demand_keys,
                    self.node,
                    payload,
                    ttl_ms=ttl_ms,
                    notify=payload != last,
                )
            self.redis_rtt_s = trio.current_time() - sent_at
            last = payload
            if not started:
                started = True
                task_status.started()
            with trio.move_on_after(refresh_s):
                await self._demand_changed.wait()

    # --- statistics -------------------------------------------------------------------------------

    def statistics(self) -> ClusterExchangeStatistics:
        reader = self._reader
        writer = self._writer
        leading = self.role in ("leader", "waiting")
        lag = reader.lag.snapshot()
        return ClusterExchangeStatistics(
            node=self.node,
            role=self.role,
            leader=self.node if leading else reader.leader,
            epoch=self._epoch if leading else reader.max_epoch,
            redis_up=self.role != "redis_down",
            redis_rtt_s=self.redis_rtt_s,
            takeovers=self.takeovers,
            entries_written=self._written + (writer.entries_written if writer else 0),
            entries_read=reader.entries_read,
            events_read=reader.events_read,
            stale_epoch_dropped=reader.stale_epoch_dropped,
            remote_streams=len(self._pins),
            lag_bucket_bounds_s=lag.bucket_bounds_s,
            lag_bucket_counts=lag.bucket_counts,
            lag_sum_s=lag.sum_s,
            lag_count=lag.count,
            last_error=self.last_error,
        )


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
