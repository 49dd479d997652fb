"""``BinanceAccount``: one Binance Spot account's live orders, shared by every bot trading on it.

The account is an actor (``run``) that owns what is per account, not per bot: the signed REST
client with its server clock and rate limits (the venue counts weight per IP and orders per
account), the symbols' rules, the user data stream (one subscription per account), the orders
in flight and the halt. Bots reach it through their ``LiveExecutor`` (``actors/bots/live.py``):
``submit``, ``cancel`` and ``recover`` take one order each and answer through the sink given
with it, with ``VenueReport``s built by the order's ``TrackedOrder`` (fills once each, then
at most one ending).

Decisions:

* **Send once.** An order is sent exactly once. An answer that proves nothing reached the
  venue ends it as refused; any other doubt (timeout after the send, 5xx, ``-1007``, a
  duplicate id) makes it *in doubt*: it keeps its reservations and is resolved, never re-sent,
  by whichever comes first: the user data stream, or lookups by client id every
  ``unknown_poll_s`` where "does not exist" is only believed as ``UnknownOrderResolution``
  allows (after the venue's own deadline, several times in a row).
* **The stream is not trusted alone.** Every working order is also looked up every
  ``order_poll_s``. A lookup that shows more executed than the fills we hold fetches the
  order's trades (``myTrades`` by order id, page by page: ``trades_page_size``, the venue's
  maximum unless a test lowers it) and books the missing ones. A fill found that way
  is then given until ``order_poll_s`` after it happened (venue clock) to show up on the
  stream too; if it does not, although the subscription was up since before the fill, the
  stream missed it (it can go silent while its pings continue): counted (``stream_misses``)
  and resubscribed. (Judged at that time, not when found: a poll finds a fill at most one
  period after it, so "older than the period when found" would almost never hold.) After every
  (re)subscription every working order is looked up once, for what happened while it was down.
  No (re)subscription is attempted while the rate limits hold requests back: a WebSocket
  connection counts against the same address's weight, and one during a 429's ``Retry-After``
  gets the IP banned. The WebSocket API's answers (their ``rateLimits``, a 429/418) feed the
  same ``RateLimitState`` as REST's.
* **An answer lost after the stream spoke** is no doubt: when the user stream already
  reported the order (it exists on the venue), a lost or late answer to its send changes
  nothing, and the order goes on like any other.
* **Fills are deduplicated by trade id** per order (the order's tracker) and, across a restart,
  against the trade ids the journal already booked (``recover``'s ``booked_trade_ids``). A bot
  that restarts while the account runs on finds its orders still tracked: what the tracker
  told the stopped run and its journal lacks is told again (``TrackedOrder.rebase``), once.
* **The venue clock** is needed for deadlines (``recover``); after a ``-1021`` made the REST
  client forget it, it is synced first.
* **Account caps** (``max_order_quote``, ``max_working_quote``) and the halt refuse an order
  before it is sent, like a filter failure: nothing reaches the venue.
* **Rules.** Orders are shaped by the venue's own ``exchangeInfo`` (read at start for the
  account's symbols, refreshed hourly), not by the bot's ``[bots.market]``, which only plans.
* **Failures of the account itself** (the venue unreachable at start, keys refused) end
  ``run`` with an ``ExecutionError`` (inside the ``ExceptionGroup`` of ``run``'s nursery when
  it fails at start: the user stream's subscription refused, say); the supervisor restarts it
  with backoff. The orders in flight live on this object, not in ``run``, so a restart loses
  none of them: the first subscription of the new run looks each of them up.
* **A rate-limit hold outlives a restart.** The ``RateLimitState`` (a 429's ``Retry-After``,
  a 418 ban) lives on this object too and every run's REST client shares it: a new run waits
  out what is left of the hold before its first request (the clock sync), because a client
  that keeps sending during a ban makes the ban longer (2 minutes up to 3 days). Orders
  submitted meanwhile are refused here, unsent. Across a daemon restart the supervisor saves
  and restores the hold (``supervisor/accounts.py``) through ``hold_until``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal

import attrs
import trio
from loguru import logger

from actors.errors import ExecutionError
from actors.venues.binance.config import AccountConfig
from actors.venues.binance.filters import FilterRejection, SymbolRules
from actors.venues.binance.rate_limits import RateLimitState
from actors.venues.binance.resolution import UnknownOrderResolution, Verdict
from actors.venues.binance.responses import (
    Accepted,
    Cancelled,
    OrderArchived,
    OrderSnapshot,
    Refused,
    Unknown,
)
from actors.venues.binance.rest import MAX_TRADES_LIMIT, AssetBalance, BinanceRest
from actors.venues.binance.signing import Signer
from actors.venues.binance.tracker import (
    OrderInDoubt,
    TrackedOrder,
    TradesNeeded,
    VenueFillReport,
    VenueReport,
)
from actors.venues.binance.user_stream import ExecutionEvent
from actors.venues.binance.user_stream_client import run_user_stream
from actors.venues.fills import VenueFill

__all__ = ["BinanceAccount", "LiveOrder", "VenueSink"]

VenueSink = Callable[[VenueReport], None]
RULES_REFRESH_S = 3600.0
STREAM_BACKOFF_S = (0.5, 30.0)  # first and largest wait between user stream attempts
STREAM_FILLS_KEPT = 10_000  # fills the stream delivered, remembered to judge its misses


@attrs.frozen(slots=True)
class LiveOrder:
    client_order_id: str
    symbol: str  # unified, e.g. BTC/USDT
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit"]
    quantity: Decimal
    price: Decimal | None  # limit price
    reference_price: Decimal  # what the bot planned on (a market order's notional check)


@attrs.define(eq=False)
class BinanceAccount:
    config: AccountConfig
    signer: Signer
    symbols: tuple[str, ...]  # unified symbols the account's bots trade
    rest: BinanceRest = attrs.field(init=False)
    limits: RateLimitState = attrs.field(factory=RateLimitState, init=False)  # every run's
    trades_page_size: int = attrs.field(default=MAX_TRADES_LIMIT, init=False)  # myTrades limit
    rules: dict[str, SymbolRules] = attrs.field(factory=dict, init=False)  # by unified symbol
    orders: dict[str, TrackedOrder] = attrs.field(factory=dict, init=False)  # working, by id
    sinks: dict[str, VenueSink] = attrs.field(factory=dict, init=False)
    halted: str | None = attrs.field(default=None, init=False)
    stream_up: bool = attrs.field(default=False, init=False)
    counters: dict[str, int] = attrs.field(init=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, init=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False)
    _resubscribe: trio.CancelScope | None = attrs.field(default=None, init=False)
    _stream_since_s: float = attrs.field(default=0.0, init=False)  # (local) subscribed at
    _stream_fills: set[tuple[str, str]] = attrs.field(factory=set, init=False)
    _stream_fills_order: deque[tuple[str, str]] = attrs.field(factory=deque, init=False)
    _fetching: set[str] = attrs.field(factory=set, init=False)
    # Called with the wait in seconds when the venue's rate limits start holding new orders.
    on_blocked: Callable[[float], None] | None = attrs.field(default=None, init=False)
    _blocked_until: float = attrs.field(default=-math.inf, init=False)

    def __attrs_post_init__(self) -> None:
        self.counters = dict.fromkeys(
            (
                "orders_sent",
                "orders_refused",
                "orders_in_doubt",
                "in_doubt_found",
                "in_doubt_never_placed",
                "fills",
                "stream_reconnects",
                "stream_misses",
                "lookups",
            ),
            0,
        )
        self.rest = self._new_rest()

    def _new_rest(self) -> BinanceRest:
        cfg = self.config
        return BinanceRest(
            cfg.rest_url,
            self.signer,
            recv_window_ms=cfg.recv_window_ms,
            timeout_s=cfg.request_timeout_s,
            limits=self.limits,
        )

    @property
    def ready(self) -> bool:
        return self._nursery is not None

    @property
    def log(self) -> Any:
        return logger.bind(account=self.config.name)

    # --- the actor ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.rest = self._new_rest()
        try:
            async with self.rest, trio.open_nursery() as nursery:
                held = self.limits.request_wait_s(trio.current_time())
                if held > 0:  # a hold the last run (or process) was given: nothing before
                    self.log.warning(
                        "account start waits for the rate limit",
                        wait_s=round(held, 3),
                        reason=self.limits.reason,
                    )
                    await trio.sleep(held)
                await self.rest.sync_time()
                await self._load_rules()
                await nursery.start(self._user_stream)
                self._nursery = nursery
                nursery.start_soon(self._poll_working)
                nursery.start_soon(self._refresh_rules)
                for tracker in list(self.orders.values()):  # in flight across a restart
                    if tracker.unknown:
                        nursery.start_soon(self._resolve, tracker, None)
                if self.orders:  # and what the others did while the stream was down
                    nursery.start_soon(self._look_up_working)
                self.log.info(
                    "account ready",
                    venue=self.config.venue,
                    rest_url=self.config.rest_url,
                    mainnet=self.config.mainnet,
                    symbols=len(self.rules),
                )
                task_status.started()
        finally:
            self._nursery = None
            self.stream_up = False

    async def _load_rules(self) -> None:
        natives = [s.replace("/", "") for s in self.symbols]
        info = await self.rest.exchange_info(natives or None)
        rules = {r.unified: r for r in info.rules.values()}
        missing = [s for s in self.symbols if s not in rules]
        if missing:
            raise ExecutionError(
                f"account {self.config.name!r}: the venue does not list {', '.join(missing)}"
            )
        self.rules = rules

    async def _refresh_rules(self) -> None:
        while True:
            await trio.sleep(RULES_REFRESH_S)
            try:
                await self._load_rules()
            except ExecutionError as exc:
                self.log.warning("exchangeInfo refresh failed; keeping the rules", error=str(exc))

    # --- the user data stream -------------------------------------------------------------------

    async def _user_stream(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Subscribed before the account is ready (so no event of an order sent after start is
        missed), then kept subscribed: each end is followed by a resubscription after a backoff
        that doubles up to 30 s (and never while the REST rate limits hold requests back), and
        a lookup of every working order."""
        first, attempt = True, 0

        def subscribed() -> None:
            nonlocal first, attempt
            self.stream_up, attempt = True, 0
            self._stream_since_s = trio.current_time()
            if first:
                first = False
                task_status.started()
            else:
                self.log.info("user data stream resubscribed")
                self._spawn(self._look_up_working)

        while True:
            # A WebSocket connection counts against the address's request weight: one made
            # while the venue asked us to back off (a 429's Retry-After) gets the IP banned.
            held = self.rest.limits.request_wait_s(trio.current_time())
            if held > 0:
                self.log.warning("user data stream waits for the rate limit", wait_s=held)
                await trio.sleep(held)
            with trio.CancelScope() as scope:
                self._resubscribe = scope
                try:
                    await run_user_stream(
                        self.config.ws_api_url,
                        self.signer,
                        self.rest.clock,
                        self._on_event,
                        recv_window_ms=self.config.recv_window_ms,
                        connect_timeout_s=self.config.request_timeout_s,
                        limits=self.limits,
                        task_status=_OnStarted(subscribed),
                    )
                except ExecutionError as exc:
                    if first:
                        raise
                    self.log.warning("user data stream ended", error=str(exc))
            self.stream_up = False
            self.counters["stream_reconnects"] += 1
            if not scope.cancelled_caught:  # asked to resubscribe: at once
                low, high = STREAM_BACKOFF_S
                await trio.sleep(min(high, low * 2**attempt))
                attempt += 1

    def _on_event(self, event: ExecutionEvent) -> None:
        fill = event.fill()
        if fill is not None:
            self._heard(fill.symbol, fill.trade_id)
        tracker = self.orders.get(event.client_order_id)
        if tracker is None:
            return  # not an order of this run's bots (or already done): recovery finds it
        out = tracker.fills((fill,)) if fill is not None else []
        reason = event.reject_reason if event.reject_reason not in ("", "NONE") else ""
        out += tracker.state(
            event.status,
            event.cumulative_qty,
            order_id=event.order_id,
            reason=reason or (event.expiry_reason or ""),
        )
        self._deliver(tracker, out)

    def _heard(self, symbol: str, trade_id: str) -> None:
        key = (symbol, trade_id)
        if key in self._stream_fills:
            return
        self._stream_fills.add(key)
        self._stream_fills_order.append(key)
        if len(self._stream_fills_order) > STREAM_FILLS_KEPT:
            self._stream_fills.discard(self._stream_fills_order.popleft())

    # --- orders ---------------------------------------------------------------------------------

    def working_notional(self) -> Decimal:
        return sum((t.notional for t in self.orders.values() if not t.done), Decimal(0))

    def _refusal(self, order: LiveOrder, rules: SymbolRules | None) -> str:
        """Why the order must not be sent at all ("" if it may)."""
        if self.halted is not None:
            return f"account {self.config.name!r} is halted: {self.halted}"
        if rules is None:
            return f"account {self.config.name!r} has no rules for {order.symbol}"
        return ""

    async def submit(self, order: LiveOrder, sink: VenueSink) -> None:
        cid = order.client_order_id
        rules = self.rules.get(order.symbol)
        tracker = TrackedOrder(cid, "", order.side, order.order_type, order.quantity)
        self.sinks[cid] = sink
        problem = self._refusal(order, rules)
        if problem or rules is None:
            self._deliver(tracker, tracker.refused(problem))
            return
        tracker.symbol = rules.symbol
        prepared = rules.prepare(
            order.side,
            order.order_type,
            order.quantity,
            order.price,
            reference_price=order.reference_price,
        )
        if isinstance(prepared, FilterRejection):
            self._deliver(tracker, tracker.refused(f"venue rules: {prepared}"))
            return
        notional = prepared.notional or prepared.quantity * order.reference_price
        cap = self._over_cap(notional)
        if cap:
            self._deliver(tracker, tracker.refused(cap))
            return
        tracker.quantity, tracker.notional = prepared.quantity, notional
        self.orders[cid] = tracker
        self.counters["orders_sent"] += 1
        placed = await self.rest.place_order(prepared, cid)
        self._check_blocked()
        match placed.outcome:
            case Accepted() as accepted:
                out = tracker.fills(accepted.fills)
                if accepted.status is not None:
                    out += tracker.state(
                        accepted.status,
                        accepted.executed_qty or Decimal(0),
                        order_id=accepted.order_id,
                        reason=accepted.expiry_reason or "",
                    )
                else:  # an ACK: the stream or a lookup says the rest
                    tracker.order_id = accepted.order_id
                self._deliver(tracker, out)
            case Refused() as refused:
                self.counters["orders_refused"] += 1
                self._deliver(tracker, tracker.refused(str(refused)))
            case Unknown() as unknown:
                if tracker.status is not None or tracker.done:  # the stream spoke first
                    self.log.info(
                        "order answer lost; the user stream already reported the order",
                        client_order_id=cid,
                        reason=str(unknown),
                    )
                    return
                self._in_doubt(tracker, str(unknown))
                resolution = UnknownOrderResolution(
                    cid,
                    placed.timestamp_ms,
                    placed.recv_window_ms,
                    confirmations=self.config.unknown_confirmations,
                    read_lag_ms=int(self.config.query_lag_s * 1000),
                    processing_limit_ms=int(self.config.processing_limit_s * 1000),
                )
                self._spawn(self._resolve, tracker, resolution)

    def _over_cap(self, notional: Decimal) -> str:
        cfg = self.config
        if notional > cfg.max_order_quote:
            return (
                f"account {cfg.name!r}: order notional {notional} is over max_order_quote"
                f" {cfg.max_order_quote}"
            )
        working = self.working_notional()
        if working + notional > cfg.max_working_quote:
            return (
                f"account {cfg.name!r}: {working} already working plus {notional} is over"
                f" max_working_quote {cfg.max_working_quote}"
            )
        return ""

    def _in_doubt(self, tracker: TrackedOrder, reason: str) -> None:
        tracker.unknown = True
        self.counters["orders_in_doubt"] += 1
        self.log.warning(
            "order outcome unknown; resolving it, never re-sending",
            client_order_id=tracker.client_order_id,
            reason=reason,
        )
        self._deliver(tracker, [OrderInDoubt(tracker.client_order_id, reason)])

    async def cancel(self, client_order_id: str) -> None:
        tracker = self.orders.get(client_order_id)
        if tracker is None or tracker.done:
            return
        try:
            outcome = await self.rest.cancel_order(tracker.symbol, client_order_id)
        except ExecutionError as exc:
            self.log.warning("cancel failed", client_order_id=client_order_id, error=str(exc))
            return
        if isinstance(outcome, Cancelled):
            self._deliver(
                tracker,
                tracker.state(outcome.status, outcome.executed_qty, order_id=outcome.order_id),
            )
        else:  # not open (filled meanwhile), refused or unknown: the venue's word settles it
            await self._look_up(tracker)

    async def recover(
        self,
        order: LiveOrder,
        *,
        booked_trade_ids: Iterable[str],
        sink: VenueSink,
    ) -> None:
        """An order the journal did not know to be final, at a bot's start: look it up and
        report what became of it; returns once it is no longer in doubt."""
        cid = order.client_order_id
        rules = self.rules.get(order.symbol)
        tracker = self.orders.get(cid)
        if tracker is None:
            tracker = TrackedOrder(
                cid,
                rules.symbol if rules is not None else order.symbol.replace("/", ""),
                order.side,
                order.order_type,
                order.quantity,
                notional=order.quantity * order.reference_price,
            )
            tracker.seeded.update(booked_trade_ids)
            tracker.unknown = True
            self.orders[cid] = tracker
        else:  # still tracked: what the stopped run was told may not be in its journal
            tracker.rebase(booked_trade_ids)
        self.sinks[cid] = sink
        if not tracker.unknown:
            await self._look_up(tracker)  # tells it again: resting, and what is missing
            if tracker.missing_trades() is not None:
                await self._fetch_trades(tracker)
            return
        await self._resolve(tracker, None)

    async def _resolve(
        self, tracker: TrackedOrder, resolution: UnknownOrderResolution | None
    ) -> None:
        """Until the order is no longer in doubt: the stream may settle it; else look it up.
        ``resolution`` None: the request's timing is not known here (a restart), so the
        latest request the previous run can have sent is assumed."""
        if resolution is None:
            resolution = UnknownOrderResolution.after_restart(
                tracker.client_order_id,
                await self._latest_server_ms(),
                recv_window_ms=self.config.recv_window_ms,
                confirmations=self.config.unknown_confirmations,
                read_lag_ms=int(self.config.query_lag_s * 1000),
                processing_limit_ms=int(self.config.processing_limit_s * 1000),
            )
        first = True
        while _in_doubt(tracker):
            if not first:
                with trio.move_on_after(self.config.unknown_poll_s):
                    while _in_doubt(tracker):
                        await self._wait_changed()
                if not _in_doubt(tracker):
                    break
            first = False
            try:
                result = await self.rest.query_order(tracker.symbol, tracker.client_order_id)
            except ExecutionError as exc:
                self.log.warning(
                    "lookup failed", client_order_id=tracker.client_order_id, error=str(exc)
                )
                resolution.inconclusive()
                continue
            self.counters["lookups"] += 1
            verdict = resolution.observe(result.outcome, result.asked_at_ms)
            match result.outcome:
                case OrderSnapshot() as snap:
                    self.counters["in_doubt_found"] += 1
                    tracker.quantity = snap.orig_qty
                    self._deliver(
                        tracker,
                        tracker.state(snap.status, snap.executed_qty, order_id=snap.order_id),
                    )
                case OrderArchived() as archived:  # existed, ended with nothing executed
                    self.counters["in_doubt_found"] += 1
                    self._deliver(
                        tracker, tracker.state("EXPIRED", Decimal(0), reason=archived.message)
                    )
                case _ if verdict is Verdict.NEVER_PLACED:
                    self.counters["in_doubt_never_placed"] += 1
                    self._deliver(
                        tracker,
                        tracker.never_placed(
                            f"not on the venue {resolution.confirmations} times after its"
                            " deadline: never placed"
                        ),
                    )
        if tracker.missing_trades() is not None:
            await self._fetch_trades(tracker)

    async def _latest_server_ms(self) -> int:
        """The latest the venue clock can read now; the clock is synced first if a ``-1021``
        made it forget (``ExecutionError`` if the venue cannot be asked)."""
        if not self.rest.clock.synced:
            await self.rest.sync_time()
        return self.rest.clock.latest_server_ms(trio.current_time())

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    async def _look_up(self, tracker: TrackedOrder) -> None:
        try:
            result = await self.rest.query_order(tracker.symbol, tracker.client_order_id)
        except ExecutionError as exc:
            self.log.warning(
                "lookup failed", client_order_id=tracker.client_order_id, error=str(exc)
            )
            return
        self.counters["lookups"] += 1
        if isinstance(result.outcome, OrderSnapshot):
            snap = result.outcome
            self._deliver(
                tracker, tracker.state(snap.status, snap.executed_qty, order_id=snap.order_id)
            )

    async def _look_up_working(self) -> None:
        for tracker in list(self.orders.values()):
            if not tracker.done and not tracker.unknown:
                await self._look_up(tracker)

    async def _poll_working(self) -> None:
        while True:
            await trio.sleep(self.config.order_poll_s)
            await self._look_up_working()

    async def _fetch_trades(self, tracker: TrackedOrder) -> None:
        needed = tracker.missing_trades()
        if needed is None or tracker.client_order_id in self._fetching:
            return
        self._fetching.add(tracker.client_order_id)
        try:
            trades = await self.rest.order_trades(
                needed.symbol, needed.order_id, page_size=self.trades_page_size
            )
        except ExecutionError as exc:
            self.log.warning(
                "trades lookup failed; the next lookup retries",
                client_order_id=tracker.client_order_id,
                error=str(exc),
            )
            return
        finally:
            self._fetching.discard(tracker.client_order_id)
        # The trade list has no client ids: name the order the trades belong to.
        mine = [
            attrs.evolve(t, client_order_id=tracker.client_order_id)
            for t in trades
            if t.order_id == str(needed.order_id)
        ]
        out = tracker.fills(mine)
        self._deliver(tracker, out)
        found = [r.fill for r in out if isinstance(r, VenueFillReport)]
        if found and self.stream_up and self._resubscribe is not None:
            self._spawn(self._check_stream, found, self._resubscribe)

    async def _check_stream(self, fills: list[VenueFill], subscription: trio.CancelScope) -> None:
        """Fills the trade list gave us: those the subscription up since before them has not
        delivered ``order_poll_s`` after they happened were missed (module docstring)."""
        clock = self.rest.clock
        grace_ms = int(self.config.order_poll_s * 1000)
        due_ms = max(f.time_ms for f in fills) + grace_ms
        if clock.synced:  # (not after a -1021, until the next request syncs it)
            wait_ms = due_ms - clock.server_ms(trio.current_time())
        else:
            wait_ms = grace_ms
        if wait_ms > 0:
            await trio.sleep(wait_ms / 1000)
        if not self.stream_up or self._resubscribe is not subscription or not clock.synced:
            return  # resubscribed meanwhile (its lookups cover them), or cannot judge
        since_ms = clock.server_ms(self._stream_since_s)
        missed = [
            f
            for f in fills
            if f.time_ms >= since_ms and (f.symbol, f.trade_id) not in self._stream_fills
        ]
        if not missed:
            return
        self.counters["stream_misses"] += 1
        self.log.warning(
            "the user data stream missed fills; resubscribing",
            client_order_id=missed[0].client_order_id,
            missed=len(missed),
        )
        subscription.cancel()

    def _deliver(self, tracker: TrackedOrder, out: Sequence[VenueReport | TradesNeeded]) -> None:
        sink = self.sinks.get(tracker.client_order_id)
        for item in out:
            if isinstance(item, TradesNeeded):
                self._spawn(self._fetch_trades, tracker)
                continue
            if isinstance(item, VenueFillReport):
                self.counters["fills"] += 1
            if sink is not None:
                sink(item)
        if tracker.done:
            self.orders.pop(tracker.client_order_id, None)
            self.sinks.pop(tracker.client_order_id, None)
        if out:
            self._changed.set()
            self._changed = trio.Event()

    def _check_blocked(self) -> None:
        """Tell ``on_blocked`` when the venue's rate limits start holding new orders (a 429 or
        418 answer, or a counter at its limit), or hold them longer than last told (a ban
        after a 429): an operator must know at once, and once per hold, not per order."""
        now = trio.current_time()
        wait = self.rest.limits.order_wait_s(now)
        if wait > 0 and now + wait > self._blocked_until + 1 and self.on_blocked is not None:
            self.on_blocked(wait)
        if wait > 0:
            self._blocked_until = max(self._blocked_until, now + wait)

    def hold_until(self) -> tuple[float, float, str]:
        """Until when (local Trio time) requests and new orders are held, and why: what a
        supervisor saves to restore with ``hold``."""
        limits = self.limits
        return limits.requests_blocked_until, limits.orders_blocked_until, limits.reason

    def hold(self, *, requests_until: float, orders_until: float, reason: str) -> None:
        """Obey a hold the venue gave before (a previous process): local Trio times."""
        self.limits.hold(requests_until=requests_until, orders_until=orders_until, reason=reason)
        self._blocked_until = max(self._blocked_until, requests_until, orders_until)

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
        # else: the account is restarting; its next run looks up every order in doubt

    # --- the account as a whole -----------------------------------------------------------------

    async def open_orders(self) -> list[OrderSnapshot]:
        out: list[OrderSnapshot] = []
        for rules in self.rules.values():
            out += await self.rest.open_orders(rules.symbol)
        return out

    async def cancel_foreign(self, snapshot: OrderSnapshot) -> None:
        """Cancel an order on the venue that no bot tracks (reconciliation, halt)."""
        outcome = await self.rest.cancel_order(snapshot.symbol, snapshot.client_order_id)
        self.log.warning(
            "order cancelled on the venue",
            client_order_id=snapshot.client_order_id,
            outcome=type(outcome).__name__,
        )

    async def balances(self) -> dict[str, AssetBalance]:
        return await self.rest.account()

    async def halt(self, reason: str) -> int:
        """Refuse every new order and cancel every working order of ours; returns how many
        cancels were sent. Stays halted until ``resume_trading``."""
        self.halted = reason
        self.log.warning("account halted", reason=reason)
        sent = 0
        for tracker in list(self.orders.values()):
            if not tracker.done and not tracker.unknown:
                await self.cancel(tracker.client_order_id)
                sent += 1
        return sent

    def resume_trading(self) -> None:
        self.halted = None
        self.log.warning("account trading resumed")

    def statistics(self) -> dict[str, Any]:
        limits = self.rest.limits
        # (not "if now": a Trio clock may read 0.0, and MockClock starts there)
        wait = limits.order_wait_s(trio.current_time()) if _in_trio() else 0.0
        return {
            "venue": self.config.venue,
            "mainnet": self.config.mainnet,
            "ready": self.ready,
            "halted": self.halted,
            "user_stream": "up" if self.stream_up else "down",
            "clock_synced": self.rest.clock.synced,
            "orders_blocked": wait > 0,
            "orders_blocked_s": round(wait, 3) if math.isfinite(wait) else None,
            "working_orders": sum(1 for t in self.orders.values() if not t.done),
            "orders_in_doubt_now": sum(1 for t in self.orders.values() if t.unknown),
            "working_quote": str(self.working_notional()),
            **self.counters,
        }


@attrs.define
class _OnStarted:
    """A ``task_status`` that calls back (the stream runs in this task, not a nursery's, so
    its end is a plain exception here, not an exception group)."""

    callback: Callable[[], None]

    def started(self, value: None = None) -> None:
        self.callback()


def _in_doubt(tracker: TrackedOrder) -> bool:
    return tracker.unknown and not tracker.done


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
