"""Bots across the cluster, on one node: heartbeat, schedule, own, renew, answer commands.

Every node of a cluster with ``bot_placement = "cluster"`` runs one ``ClusterBots`` (keys
and scripts: ``bot_store.py``). Its tasks, in one nursery:

* **heartbeat**: ``<p>:node:<node>`` with a ``PX`` of one lease ttl, refreshed every ``ttl/3``.
* **scheduler**: every node challenges for the scheduler's lease (``lease.Lease``); the holder
  plans ``bot -> node`` over the live ``bots`` nodes by count (``placement.plan``) every
  ``ttl/3`` and writes what moved through a script that checks its lease first.
* **ownership**: every ``ttl/3`` the node reads the plan. A bot newly assigned to it: acquire
  the bot's lease (epoch = ``INCR``), retrying when the old holder's key expires (``PTTL``),
  then wait out one ttl unless the old owner released it, then start the bot through the
  ``bots`` supervisor with the lease's epoch as the bot's journal ``owner_epoch``: its start
  (``Journal.load_bot``) claims the bot at that epoch, which fences off every write of the old
  owner, and replays the journal before the first tick. A bot no longer assigned to the node
  (a rebalance, a stop): stop it, then release its lease so the next owner need not wait.
* **renew**: all the node's bot leases in one script call every ``ttl/3``. Each bot runs
  inside a cancel scope whose deadline is ``LeaseTiming.valid_until`` of the last renew that
  was *sent* and succeeded: a node cut off from Redis stops its bots' trading at that instant,
  before their keys can expire (before anyone else can acquire them), without needing Redis
  or any other task to tell it. A refused renew stops the bot at once.
* **commands**: pause, resume, halt and stop reach the owner over ``<p>:commands``, a
  stream with one consumer group per node (``XREADGROUP``/``XACK``): every node reads every
  command and the owner acts on it, answering on ``<p>:reply:<id>``. A stream rather than
  pub/sub so a node that reconnects reads what it missed; the sender waits for the answer
  (``COMMAND_TIMEOUT_S``) and a bot between owners answers nothing: the sender says so and
  the command can be sent again. Stop removes the bot from the catalogue first, so the
  scheduler unassigns it and no node takes it again.
* **accounts commands**: ``halt`` and ``resume_trading`` of the live accounts go on the same
  stream with ``scope = accounts`` (``broadcast``): every node but the sender applies them to
  its own accounts (``BotHost.account_command``) and answers; the sender waits for the live
  nodes' answers. The halt is journaled by each, so a node not reached reads it when its
  accounts start. So the commands task runs on every node, ``bots`` role or not.
* **live bots** run only on nodes whose config has their account: the heartbeat lists the
  node's ``[[accounts]]`` and the scheduler gives ``placement.plan`` each live bot's eligible
  nodes. Their start (journal claim at the new epoch, then each order in doubt looked up on
  the venue before the first tick) can outlast a ttl, so renewals move the bot's deadline
  while it starts too.
* **status**: every second the node writes its bots' ``/health`` entries to ``<p>:status``
  and reads back the whole cluster's, for ``/health`` and ``GET /bots`` on any node.

Failover bound after a node dies (``ttl`` = ``[cluster] lease_ttl_s``): its heartbeat and
leases expire within ``ttl``, the scheduler reassigns within ``ttl/3``, the new owner's
ownership pass comes within ``ttl/3`` and its acquire right at the key's expiry, then it waits
out ``ttl`` and starts the bot: at most about ``2.7 ttl`` plus the bot's start (journal
replay). Measured in ``tests/cluster/test_bot_failover.py``.

Decisions:

* Losing Redis is not a crash: every task retries on its own (``retry_s``); the bots stop by
  their deadlines. Whatever else fails ends the child, which stops the node's bots and
  releases their leases on the way out (``_leave``, over a fresh connection).
* Passes are polled every ``ttl/3`` rather than pushed: the failover bound is set by ``ttl``
  either way, and a pass reads one hash.
* The status pass stays O(bots): the node's ``/health`` entries are built once per pass and
  the catalogue's configs are structured again only when their text changes (built per bot
  and decoded every second, 1,000 bots on three nodes handled 0.45x the bot-ticks/s of one
  daemon in ``tests/bench/cluster_bots.py``; now about 1x).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import attrs
import orjson
import trio
from loguru import logger

from actors.errors import BotCriptoFyError, ConfigError
from supervisor.cluster.bot_store import (
    BotKeys,
    decode_config,
    encode_config,
    hgetall,
    live_nodes,
    renew_many,
    text,
    write_assignment,
)
from supervisor.cluster.lease import Acquired, Lease, LeaseTiming, keep_renewed
from supervisor.cluster.placement import changes, plan
from supervisor.cluster.redis import (
    REDIS_ERRORS,
    PureToken,
    RedisClient,
    ensure_group,
    open_redis,
)
from supervisor.config import BotConfig, ClusterConfig

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["BotHost", "ClusterBots", "ClusterBotsView"]

COMMAND_TIMEOUT_S = 5.0
COMMANDS_KEPT = 1000
STATUS_EVERY_S = 1.0
COMMANDS = ("pause", "resume", "stop", "halt")
ACCOUNT_COMMANDS = ("halt", "resume_trading")  # to every node's live accounts
BROADCAST_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, trio.TooSlowError)
# A best-effort release at a stop may find coredis' connection tasks already cancelled.
RELEASE_ERRORS: tuple[type[Exception], ...] = (
    *REDIS_ERRORS,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
)


class BotHost(Protocol):
    """What ``ClusterBots`` needs from the node's running system (``System`` implements it)."""

    async def run_owned_bot(self, config: BotConfig, *, owner_epoch: int, deadline: float) -> None:
        """Start ``config`` here, journaling at ``owner_epoch``, trading until ``deadline``."""

    async def stop_owned_bot(self, bot_id: str) -> None: ...

    def set_bot_deadline(self, bot_id: str, deadline: float) -> None: ...

    async def command_owned_bot(self, bot_id: str, action: str) -> None: ...

    def owned_bots_health(self) -> Mapping[str, Mapping[str, Any]]:
        """The ``/health`` entries of the bots this node runs."""

    async def account_command(self, action: str, reason: str) -> Mapping[str, Any]:
        """Apply ``halt`` or ``resume_trading`` to this node's live accounts."""


@attrs.define(eq=False)
class _Held:
    acquired: Acquired
    valid_until: float
    started: bool = False


@attrs.frozen
class ClusterBotsView:
    """The cluster's bots as this node last read them (refreshed every ``STATUS_EVERY_S``)."""

    configs: Mapping[str, BotConfig]
    assigned: Mapping[str, str]
    status: Mapping[str, Mapping[str, Any]]
    nodes: Mapping[str, Mapping[str, Any]]
    scheduler: str | None


@attrs.define(eq=False)
class ClusterBots:
    host: BotHost
    cluster: ClusterConfig
    redis_url: str = attrs.field(repr=False)
    configured: tuple[BotConfig, ...] = ()
    rng: random.Random = attrs.field(factory=random.Random)
    accounts: tuple[str, ...] = ()  # the node's [[accounts]]: where its live bots may run

    held: dict[str, _Held] = attrs.field(factory=dict, init=False)
    view: ClusterBotsView = attrs.field(init=False)
    takeovers: int = attrs.field(default=0, init=False)
    scheduling: bool = attrs.field(default=False, init=False)
    redis_up: bool = attrs.field(default=False, init=False)
    timing: LeaseTiming = attrs.field(init=False)
    keys: BotKeys = attrs.field(init=False)
    log: Logger = attrs.field(init=False, repr=False)
    _client: RedisClient | None = attrs.field(default=None, init=False)
    _acquiring: set[str] = attrs.field(factory=set, init=False)
    _assigned: set[str] = attrs.field(factory=set, init=False)
    _ready: trio.Event = attrs.field(factory=trio.Event, init=False)
    _scheduler_held: Acquired | None = attrs.field(default=None, init=False)
    _payloads: dict[str, bytes] = attrs.field(factory=dict, init=False)
    _live_accounts: dict[str, tuple[bytes, str | None]] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self.timing = LeaseTiming(self.cluster.lease_ttl_s)
        self.keys = BotKeys(self.cluster.namespace)
        self.view = ClusterBotsView({}, {}, {}, {}, None)
        self.log = logger.bind(actor="cluster_bots", node=self.cluster.node)

    @property
    def node(self) -> str:
        return self.cluster.node

    @property
    def runs_bots(self) -> bool:
        return "bots" in self.cluster.roles

    @property
    def retry_s(self) -> float:
        return min(1.0, self.timing.ttl_s / 2)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.timing.ttl_s * 1000))

    # --- the task ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Ready at once, like an idle exchange: bots come when Redis answers.
        task_status.started()
        while True:
            try:
                async with open_redis(
                    self.redis_url, timeout_s=self.cluster.redis_timeout_s
                ) as client:
                    self._client = client
                    await self._session(client)
            except* REDIS_ERRORS as group:
                self._redis_failed("session", group.exceptions[0])
            finally:
                self._client = None
                self._ready = trio.Event()
                with trio.CancelScope(shield=True):
                    await self._leave()
            await trio.sleep(self.retry_s)

    async def _session(self, client: RedisClient) -> None:
        timeout = self.cluster.redis_timeout_s
        with trio.fail_after(timeout):
            for config in self.configured:  # the same config file on every node: first wins
                await client.hsetnx(self.keys.catalogue, config.id, encode_config(config))
            await self._heartbeat_once(client)
        self.redis_up = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forever, "heartbeat", self._heartbeat, client)
            nursery.start_soon(self._forever, "scheduler", self._schedule, client)
            nursery.start_soon(self._forever, "status", self._status, client)
            # Every node: a halt reaches the accounts of nodes that run no bots too.
            nursery.start_soon(self._forever, "commands", self._commands, client)
            if self.runs_bots:
                nursery.start_soon(self._renew, client)
                nursery.start_soon(self._forever, "ownership", self._own, client, nursery)
            self._ready.set()

    async def _forever(self, what: str, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        while True:
            try:
                await fn(*args)
            except* REDIS_ERRORS as group:
                self._redis_failed(what, group.exceptions[0])
            await trio.sleep(self.retry_s * self.rng.uniform(0.5, 1.0))

    def _redis_failed(self, what: str, error: BaseException) -> None:
        if self.redis_up:
            self.log.warning(
                "cluster bots: redis unreachable", task=what, error=f"{type(error).__name__}"
            )
        self.redis_up = False

    # --- heartbeat ------------------------------------------------------------------------------

    async def _heartbeat_once(self, client: RedisClient) -> None:
        payload = orjson.dumps(
            {
                "roles": list(self.cluster.roles),
                "bots": sorted(self.held),
                "accounts": sorted(self.accounts),
            }
        )
        await client.set(self.keys.node(self.node), payload, px=self._ttl_ms)
        await client.sadd(self.keys.nodes, [self.node])

    async def _heartbeat(self, client: RedisClient) -> None:
        while True:
            with trio.fail_after(self.cluster.redis_timeout_s):
                await self._heartbeat_once(client)
            self.redis_up = True
            await trio.sleep(self.timing.renew_every_s)

    # --- the scheduler ------------------------------------------------------------------------

    async def _schedule(self, client: RedisClient) -> None:
        timeout = self.cluster.redis_timeout_s
        lease = Lease(client, self.keys.scheduler, self.node, self.timing)
        while True:
            sent_at = trio.current_time()
            with trio.fail_after(timeout):
                held = await lease.acquire()
            if held is None:
                await trio.sleep(self.timing.retry_in(self.rng))
                continue
            self.log.info("scheduling bots", epoch=held.epoch)
            self._scheduler_held = held
            try:
                with trio.CancelScope(deadline=self.timing.valid_until(sent_at)) as scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._renew_scheduler, lease, held, scope, sent_at)
                        self.scheduling = True
                        await self._plan_loop(client, held)
            finally:
                self.scheduling = False
                with trio.CancelScope(shield=True), trio.move_on_after(timeout):
                    try:
                        await lease.release(held)
                        self._scheduler_held = None
                    except RELEASE_ERRORS:
                        pass  # released by ``_leave``, or it expires on its own
            self.log.warning("scheduler stepped down", epoch=held.epoch)

    async def _renew_scheduler(
        self, lease: Lease, held: Acquired, scope: trio.CancelScope, sent_at: float
    ) -> None:
        def renewed(sent: float, rtt: float) -> None:
            scope.deadline = self.timing.valid_until(sent)

        await keep_renewed(
            lease, held, sent_at=sent_at, timeout_s=self.cluster.redis_timeout_s, renewed=renewed
        )
        scope.cancel(reason="scheduler lease lost")

    async def _plan_loop(self, client: RedisClient, held: Acquired) -> None:
        keys, timeout = self.keys, self.cluster.redis_timeout_s
        while True:
            with trio.fail_after(timeout):
                nodes = await live_nodes(client, keys)
                catalogue = await hgetall(client, keys.catalogue)
                current = {b: text(n) for b, n in (await hgetall(client, keys.assign)).items()}
            workers = [n for n, info in nodes.items() if "bots" in info.get("roles", ())]
            new = plan(catalogue, workers, current, self._eligible(catalogue, nodes))
            to_set, to_delete = changes(current, new)
            if to_set or to_delete:
                with trio.fail_after(timeout):
                    if not await write_assignment(client, keys, held.token, to_set, to_delete):
                        return  # deposed: the lease is someone else's
                    if to_delete:
                        await client.hdel(keys.status, to_delete)
                self.log.info(
                    "bots assigned", moved=len(to_set), removed=len(to_delete), nodes=workers
                )
            await trio.sleep(self.timing.renew_every_s)

    def _eligible(
        self, catalogue: Mapping[str, bytes], nodes: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, set[str]]:
        """Live bots -> the nodes that have their account (``placement``'s eligibility);
        a config is read again only when its text changed."""
        with_account: dict[str, set[str]] = {}
        for name, info in nodes.items():
            for account in info.get("accounts", ()):
                with_account.setdefault(str(account), set()).add(name)
        out: dict[str, set[str]] = {}
        for bot, payload in catalogue.items():
            known = self._live_accounts.get(bot)
            if known is None or known[0] != payload:
                raw = orjson.loads(payload)
                account = raw.get("account") if raw.get("mode") == "live" else None
                known = self._live_accounts[bot] = (payload, account)
            if known[1] is not None:
                out[bot] = with_account.get(known[1], set())
        for gone in set(self._live_accounts) - set(catalogue):
            del self._live_accounts[gone]
        return out

    # --- ownership ------------------------------------------------------------------------------

    async def _own(self, client: RedisClient, nursery: trio.Nursery) -> None:
        while True:
            with trio.fail_after(self.cluster.redis_timeout_s):
                assign = await hgetall(client, self.keys.assign)
            mine = {bot for bot, node in assign.items() if text(node) == self.node}
            self._assigned = mine
            for bot in sorted(mine - set(self.held) - self._acquiring):
                self._acquiring.add(bot)
                nursery.start_soon(self._take, client, bot)
            for bot in sorted(set(self.held) - mine):
                await self._drop(bot, "no longer assigned here", release=True)
            await trio.sleep(self.timing.renew_every_s)

    async def _take(self, client: RedisClient, bot: str) -> None:
        timeout = self.cluster.redis_timeout_s
        lease = Lease(client, self.keys.lease(bot), self.node, self.timing)
        try:
            while True:
                if bot not in self._assigned:
                    return
                sent_at = trio.current_time()
                with trio.fail_after(timeout):
                    acquired = await lease.acquire()
                    if acquired is None:
                        left_ms = await client.pttl(self.keys.lease(bot))
                if acquired is not None:
                    break
                # The holder's key runs out in left_ms: try again then (it may renew).
                await trio.sleep(min(max(left_ms, 10) / 1000, self.timing.renew_every_s))
            held = self.held[bot] = _Held(acquired, self.timing.valid_until(sent_at))
            wait_s = self.timing.wait_out(acquired.previous_released)
            self.log.info("bot lease won", bot=bot, epoch=acquired.epoch, wait_s=wait_s)
            await trio.sleep(wait_s)  # the old owner's lease runs out first
            with trio.fail_after(timeout):
                payload = await client.hget(self.keys.catalogue, bot)
            if self.held.get(bot) is not held:
                return  # lost meanwhile
            if payload is None:  # stopped meanwhile
                await self._drop(bot, "no longer in the catalogue", release=True)
                return
            try:
                await self.host.run_owned_bot(
                    decode_config(payload), owner_epoch=acquired.epoch, deadline=held.valid_until
                )
            except (BotCriptoFyError, ValueError) as exc:
                self.log.error("bot could not start here", bot=bot, error=str(exc))
                await self._drop(bot, "could not start", release=True)
                return
            held.started = True
            self.takeovers += 1
            self.log.info("bot running here", bot=bot, epoch=acquired.epoch)
        except* REDIS_ERRORS as group:
            self._redis_failed("take", group.exceptions[0])
        finally:
            self._acquiring.discard(bot)

    async def _drop(self, bot: str, reason: str, *, release: bool) -> None:
        held = self.held.pop(bot, None)
        if held is None:
            return
        self.log.info("bot leaves this node", bot=bot, epoch=held.acquired.epoch, reason=reason)
        if held.started:
            try:
                await self.host.stop_owned_bot(bot)
            except KeyError:
                pass  # already stopped
        client = self._client
        if release and client is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(self.cluster.redis_timeout_s):
                try:
                    await Lease(client, self.keys.lease(bot), self.node, self.timing).release(
                        held.acquired
                    )
                except RELEASE_ERRORS:
                    pass  # it expires on its own

    async def _leave(self) -> None:
        """Stop every bot this node runs, then release their leases (and the scheduler's)
        over a fresh connection: the session's own may be cancelled with its tasks. Released
        leases let the next owners start without waiting them out."""
        held = dict(self.held)
        self.held.clear()
        async with trio.open_nursery() as nursery:
            for bot, h in held.items():
                if h.started:
                    nursery.start_soon(self._stop_quietly, bot)
        scheduler, self._scheduler_held = self._scheduler_held, None
        if not held and scheduler is None:
            return
        timeout = self.cluster.redis_timeout_s
        with trio.move_on_after(2 * timeout):
            try:
                async with open_redis(self.redis_url, timeout_s=timeout) as client:
                    for bot, h in held.items():
                        lease = Lease(client, self.keys.lease(bot), self.node, self.timing)
                        await lease.release(h.acquired)
                    if scheduler is not None:
                        lease = Lease(client, self.keys.scheduler, self.node, self.timing)
                        await lease.release(scheduler)
            except* RELEASE_ERRORS:
                pass  # they expire on their own

    async def _stop_quietly(self, bot: str) -> None:
        try:
            await self.host.stop_owned_bot(bot)
        except KeyError:
            pass

    # --- renewing the bots' leases --------------------------------------------------------------

    async def _renew(self, client: RedisClient) -> None:
        timing = self.timing
        next_at = trio.current_time()
        while True:
            await trio.sleep_until(next_at)
            tokens = {bot: h.acquired.token for bot, h in self.held.items()}
            attempt_at = trio.current_time()
            try:
                with trio.fail_after(min(self.cluster.redis_timeout_s, timing.renew_every_s)):
                    result = await renew_many(client, self.keys, tokens, self._ttl_ms)
            except REDIS_ERRORS as exc:
                self._redis_failed("renew", exc)
                next_at = trio.current_time() + timing.renew_every_s / 3
            else:
                done_at = trio.current_time()
                for bot, mine in result.items():
                    held = self.held.get(bot)
                    if held is None or held.acquired.token != tokens[bot]:
                        continue
                    if mine and done_at >= held.valid_until:
                        # The lease ran out before this renewal came back: the bot stopped
                        # trading at that instant (its deadline). Renewing would leave this
                        # node holding a lease for a bot that no longer runs; give it up, so
                        # it is taken again (here or elsewhere) at the next epoch.
                        await self._drop(bot, "lease ran out before its renewal", release=True)
                    elif mine:
                        held.valid_until = timing.valid_until(attempt_at)
                        # Also while the bot starts: a live bot's start resolves its orders in
                        # doubt with the venue first, which can take longer than a ttl.
                        self.host.set_bot_deadline(bot, held.valid_until)
                    else:
                        self.host.set_bot_deadline(bot, -math.inf)
                        await self._drop(bot, "lease renew refused", release=False)
                next_at = attempt_at + timing.renew_every_s
            now = trio.current_time()
            for bot, held in list(self.held.items()):
                if now >= held.valid_until:  # its bot stopped trading at that instant
                    await self._drop(bot, "lease renewal overdue", release=False)

    # --- commands -------------------------------------------------------------------------------

    async def _commands(self, client: RedisClient) -> None:
        keys, timeout = self.keys, self.cluster.redis_timeout_s
        with trio.fail_after(timeout):
            await ensure_group(client, keys.commands, self.node)
        block_s = self.timing.renew_every_s
        while True:
            with trio.fail_after(timeout + block_s):
                reply = await client.xreadgroup(
                    self.node,
                    self.node,
                    {keys.commands: ">"},
                    count=50,
                    block=round(block_s * 1000),
                )
            for entries in (reply or {}).values():
                for entry in entries:
                    fields = {text(k): text(v) for k, v in entry.field_values.items()}
                    if fields.get("scope") == "accounts":
                        if fields.get("from") != self.node:  # the sender applied it already
                            await self._answer_accounts(client, fields)
                    elif fields.get("bot") in self.held:
                        await self._answer(client, fields)
                    with trio.fail_after(timeout):
                        await client.xack(keys.commands, self.node, [entry.identifier])

    async def _answer(self, client: RedisClient, fields: Mapping[str, str]) -> None:
        bot, action = fields["bot"], fields.get("action", "")
        result: dict[str, Any] = {"ok": True, "node": self.node}
        try:
            await self._apply(bot, action)
        except (BotCriptoFyError, KeyError, ValueError) as exc:
            result = {"ok": False, "node": self.node, "error": str(exc)}
        key = self.keys.reply(fields.get("id", ""))
        with trio.fail_after(self.cluster.redis_timeout_s):
            await client.lpush(key, [orjson.dumps(result)])
            await client.pexpire(key, round(COMMAND_TIMEOUT_S * 2000))

    async def _answer_accounts(self, client: RedisClient, fields: Mapping[str, str]) -> None:
        action, reason = fields.get("action", ""), fields.get("reason", "")
        result: dict[str, Any] = {"ok": True, "node": self.node}
        try:
            result["accounts"] = await self.host.account_command(action, reason)
        except (BotCriptoFyError, ValueError) as exc:
            result = {"ok": False, "node": self.node, "error": str(exc)}
        key = self.keys.reply(fields.get("id", ""))
        with trio.fail_after(self.cluster.redis_timeout_s):
            await client.lpush(key, [orjson.dumps(result, default=str)])
            await client.pexpire(key, round(COMMAND_TIMEOUT_S * 2000))

    async def broadcast(
        self, action: str, reason: str = "", *, timeout_s: float = COMMAND_TIMEOUT_S
    ) -> dict[str, Any]:
        """Send an accounts command (``ACCOUNT_COMMANDS``) to every other node; returns
        ``{"reached": {node: answer}, "unreached": [nodes]}`` once every live node answered or
        ``timeout_s`` passed. A node not reached reads the journaled halt when its accounts
        start, and the stream's entry when it reconnects to Redis. Redis unreachable:
        ``{"error": ...}`` (the caller's own accounts are halted and the halt journaled)."""
        if action not in ACCOUNT_COMMANDS:
            raise ValueError(f"unknown accounts command {action!r}")
        result: dict[str, Any] = {}
        try:
            result = await self._broadcast(action, reason, timeout_s)
        except* BotCriptoFyError as group:
            result = {"error": str(group.exceptions[0])}
        except* BROADCAST_ERRORS as group:
            result = {"error": f"the cluster's Redis did not answer: {group.exceptions[0]!r}"}
        return result

    async def _broadcast(self, action: str, reason: str, timeout_s: float) -> dict[str, Any]:
        client = await self._require_client()
        keys, timeout = self.keys, self.cluster.redis_timeout_s
        command_id = uuid.uuid4().hex
        with trio.fail_after(timeout):
            others = sorted(set(await live_nodes(client, keys)) - {self.node})
            await client.xadd(
                keys.commands,
                {
                    "id": command_id,
                    "scope": "accounts",
                    "action": action,
                    "reason": reason,
                    "from": self.node,
                },
                trim_strategy=PureToken.MAXLEN,
                threshold=COMMANDS_KEPT,
                trim_operator=PureToken.APPROXIMATELY,
            )
        reached: dict[str, Any] = {}
        with trio.move_on_after(timeout_s):
            while len(reached) < len(others):
                with trio.fail_after(timeout_s + timeout):
                    answer = await client.blpop([keys.reply(command_id)], timeout=timeout_s)
                if answer is None:
                    break
                result = orjson.loads(answer[1])
                reached[str(result["node"])] = result
        return {"reached": reached, "unreached": [n for n in others if n not in reached]}

    async def _apply(self, bot: str, action: str) -> None:
        if action == "stop":
            await self._drop(bot, "stopped by command", release=True)
        elif action in COMMANDS:
            held = self.held.get(bot)
            if held is None or not held.started:
                raise BotCriptoFyError(f"bot {bot!r} is starting on {self.node}; try again")
            await self.host.command_owned_bot(bot, action)
        else:
            raise ValueError(f"unknown command {action!r}")

    async def command(self, bot: str, action: str, *, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        """Send ``action`` to the bot's owner, wherever it runs; returns the node that applied
        it. ``KeyError`` for a bot not in the cluster; ``BotCriptoFyError`` when no owner
        answered within ``timeout_s`` (the bot is between owners: try again) or it refused."""
        if action not in COMMANDS:
            raise ValueError(f"unknown command {action!r}")
        client = await self._require_client()
        keys = self.keys
        with trio.fail_after(self.cluster.redis_timeout_s):
            if not await client.hexists(keys.catalogue, bot):
                raise KeyError(bot)
            if action == "stop":  # nobody takes it again
                await client.hdel(keys.catalogue, [bot])
        if bot in self.held:
            await self._apply(bot, action)
            return self.node
        if action == "stop" and self.view.assigned.get(bot) is None:
            return ""  # not running anywhere
        command_id = uuid.uuid4().hex
        with trio.fail_after(self.cluster.redis_timeout_s):
            await client.xadd(
                keys.commands,
                {"id": command_id, "bot": bot, "action": action, "from": self.node},
                trim_strategy=PureToken.MAXLEN,
                threshold=COMMANDS_KEPT,
                trim_operator=PureToken.APPROXIMATELY,
            )
        with trio.fail_after(timeout_s + self.cluster.redis_timeout_s):
            answer = await client.blpop([keys.reply(command_id)], timeout=timeout_s)
        if answer is None:
            raise BotCriptoFyError(
                f"bot {bot!r}: no owner answered {action!r} within {timeout_s} s"
                " (the bot is moving between nodes: try again)"
            )
        result = orjson.loads(answer[1])
        if not result.get("ok"):
            raise BotCriptoFyError(str(result.get("error")))
        return str(result["node"])

    async def add(self, config: BotConfig) -> None:
        """Add a bot to the cluster (``ConfigError`` if its id is taken)."""
        client = await self._require_client()
        with trio.fail_after(self.cluster.redis_timeout_s):
            added = await client.hsetnx(self.keys.catalogue, config.id, encode_config(config))
        if not added:
            raise ConfigError([f"bot.id: a bot with id {config.id!r} is already running"])

    async def _require_client(self) -> RedisClient:
        """The session's client; waits for one (a node just started) up to two Redis
        timeouts."""
        with trio.move_on_after(2 * self.cluster.redis_timeout_s):
            await self._ready.wait()
        if self._client is None or not self._ready.is_set():
            raise BotCriptoFyError("the cluster's Redis is unreachable from this node")
        return self._client

    # --- status ---------------------------------------------------------------------------------

    def _config(self, bot: str, payload: bytes) -> BotConfig:
        """The catalogue's config, structured again only when its text changed."""
        known = self.view.configs.get(bot)
        if known is not None and self._payloads.get(bot) == payload:
            return known
        self._payloads[bot] = payload
        return decode_config(payload)

    async def _status(self, client: RedisClient) -> None:
        keys, timeout = self.keys, self.cluster.redis_timeout_s
        while True:
            mine: dict[str, bytes] = {}
            local = self.host.owned_bots_health()
            for bot, held in self.held.items():
                entry = dict(local.get(bot) or {"healthy": False, "state": "starting"})
                entry.update(node=self.node, epoch=held.acquired.epoch)
                mine[bot] = orjson.dumps(entry, default=str)
            with trio.fail_after(timeout):
                if mine:
                    await client.hset(keys.status, mine)
                configs = await hgetall(client, keys.catalogue)
                assigned = await hgetall(client, keys.assign)
                status = await hgetall(client, keys.status)
                nodes = await live_nodes(client, keys)
                scheduler = await client.get(keys.scheduler)
            self.view = ClusterBotsView(
                configs={b: self._config(b, p) for b, p in configs.items()},
                assigned={b: text(n) for b, n in assigned.items()},
                status={b: _decode_status(s) for b, s in status.items() if b in configs},
                nodes=nodes,
                scheduler=None if scheduler is None else text(scheduler).rpartition(":")[0],
            )
            for gone in set(self._payloads) - set(configs):
                del self._payloads[gone]
            await trio.sleep(STATUS_EVERY_S)


MONEY_FIELDS = ("position", "quote_balance", "realized_pnl", "unrealized_pnl")


def _decode_status(payload: bytes) -> dict[str, Any]:
    """A bot's reported ``/health`` entry, its amounts back as ``Decimal`` (sent as text)."""
    entry: dict[str, Any] = orjson.loads(payload)
    for key in MONEY_FIELDS:
        if isinstance(entry.get(key), str):
            entry[key] = Decimal(entry[key])
    return entry
