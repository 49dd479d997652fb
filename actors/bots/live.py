"""Live trading: a bot's orders on a venue account, behind the same seam as paper.

``LiveExecutor`` turns the bot's journaled intents into orders on a ``BinanceAccount`` and the
account's ``VenueReport``s back into the bot's ``ExecutionReport``s. ``reconcile_account``
runs once per account at start, after the journal and before any bot: it deals with what the
venue has that the journal lacks, and checks balances.

Decisions:

* **Ids.** The venue's client order id is ``ids.client_order_id(bot, seq, prefix)``: a
  function of the journaled intent only, so a restart finds the order it may have sent. The
  journal keeps its own ids (``<bot>-<seq>``); the executor maps between them.
* **Commissions** (booked per fill, fee in quote, as the core expects):
  - in the quote asset: the fee is the commission;
  - in the base asset (a buy whose commission is taken from what it bought): the bot booked
    ``quantity - commission`` (what it holds) and a fee of ``commission x price``; the quote
    spent is ``price x quantity`` either way, so the book and the balance agree exactly;
  - in a third asset (BNB discount): the fee is booked as zero and the commission is logged:
    it is paid from a balance the bot does not track, and a guessed price would misstate PnL.
* **Unresolved orders at a bot's start** (journaled, sent or not, outcome unknown; or open)
  are recovered one by one before the bot's first tick (``reconcile``): looked up by client
  id, their missing fills fetched and booked (trade ids the journal already has are skipped),
  and an order the venue never received closed as rejected once the venue's deadline has
  passed. The bot does not trade until each of them is settled.
* **Balances** (``reconcile_account``): the first start of an account records a baseline per
  asset of the bots' symbols (venue balance minus what the journal's fills explain); each
  later start compares ``baseline + fills`` with the venue. A difference is logged; one over
  ``balance_tolerance_pct`` blocks the bots trading that asset (every order refused with the
  reason, visible in ``/health``) until the operator looks, and alerts. Deposits and
  withdrawals show as differences: reset the baseline with ``reset_baseline`` after one.
* **The venue is read before the journal.** Every order is journaled before it is sent and
  every fill before the order is final, so what the venue shows is explained by the journal
  read after it, even while bots trade meanwhile: a cluster's other nodes run the account's
  bots while a node reconciles it (``shared``), and must not see their orders cancelled as
  foreign.
* **Shared accounts** (``shared``: a cluster, one journal, bots on several nodes). Foreign
  orders are orders no journal row explains, whichever node's bot sent them; cancelling one
  is safe from any node. Adopting one is a journal write for its bot at owner epoch 0: a bot a
  node owns (a higher epoch) refuses it, and the order is reported instead (the owner's run
  does not know it; a fenced write must not slip it in behind its back). Balances: a bot's
  orders not final in the journal may be executing on the venue right now (another node's),
  so a difference up to their size (limit: ``size x price``, plus 1 % for fees) is not a
  discrepancy, an asset of a market order in flight (no price to bound it) is not compared
  (``deferred``), and no baseline is recorded for either; the next start compares them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import attrs
from loguru import logger

from actors.bots.config import BotConfig
from actors.bots.executor import (
    ExecutionReport,
    Executor,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderResting,
    OrderUnknown,
    ReportSink,
    live_mode_problem,
    make_executor,
)
from actors.errors import ExecutionError
from actors.exchanges.symbols import split_unified
from actors.journal import Journal
from actors.journal.base import FencedWriteError
from actors.journal.records import TERMINAL_STATUSES
from actors.journal.store import BotRecord, FillRecord, OrderIntent, OrderRecord
from actors.messages import Ticker
from actors.venues.binance.account import BinanceAccount, LiveOrder
from actors.venues.binance.ids import bot_for, client_order_id, parse_client_order_id
from actors.venues.binance.responses import OrderSnapshot
from actors.venues.binance.rest import AssetBalance
from actors.venues.binance.tracker import (
    NEVER_PLACED,
    REFUSED,
    OrderEnded,
    OrderInDoubt,
    OrderRested,
    VenueFillReport,
    VenueReport,
)
from actors.venues.fills import VenueFill

__all__ = [
    "AccountReconciliation",
    "Executors",
    "LiveExecutor",
    "account_state_key",
    "booked_size_and_fee",
    "reconcile_account",
    "reset_baseline",
]

ACCOUNT_STATE_PREFIX = "account:"  # the journal's bot_state rows of an account
BASELINE_KEY = "baseline:"
REJECTED_STATUSES = frozenset({REFUSED, NEVER_PLACED, "REJECTED"})


def booked_size_and_fee(fill: VenueFill, base: str, quote: str) -> tuple[Decimal, Decimal]:
    """What the book records for a venue fill: (size, fee in quote); see the module docstring."""
    if fill.commission == 0 or fill.commission_asset is None:
        return fill.quantity, Decimal(0)
    if fill.commission_asset == quote:
        return fill.quantity, fill.commission
    if fill.commission_asset == base:
        fee = fill.commission * fill.price
        if fill.side == "buy":
            return fill.quantity - fill.commission, fee
        return fill.quantity, fee
    return fill.quantity, Decimal(0)


@attrs.define(eq=False)
class LiveExecutor:
    account: BinanceAccount
    config: BotConfig
    report: ReportSink
    wall_clock: Callable[[], float] = time.time
    blocked: str | None = None  # set by reconciliation: every order is refused with it
    touch: Ticker | None = attrs.field(default=None, init=False)
    _intents: dict[str, OrderIntent] = attrs.field(factory=dict, init=False)  # by venue id
    _booked: dict[str, list[str]] = attrs.field(factory=dict, init=False)  # trade ids by order

    @property
    def base_quote(self) -> tuple[str, str]:
        return split_unified(self.config.symbol)

    def venue_id(self, intent: OrderIntent) -> str:
        return client_order_id(intent.bot_id, intent.seq, self.account.config.client_id_prefix)

    def observe(self, ticker: Ticker, now_ts: float) -> None:
        self.touch = ticker

    def restore(self, record: BotRecord) -> None:
        for fill in record.fills:
            if fill.venue_fill_id is not None:
                trade_id = fill.venue_fill_id.partition(":")[2]
                self._booked.setdefault(fill.client_id, []).append(trade_id)

    def _order(self, intent: OrderIntent) -> LiveOrder:
        cid = self.venue_id(intent)
        self._intents[cid] = intent
        if intent.price is not None:
            reference = intent.price
        elif self.touch is not None:
            reference = self.touch.ask if intent.side == "buy" else self.touch.bid
        else:
            reference = Decimal(0)
        return LiveOrder(
            client_order_id=cid,
            symbol=intent.symbol,
            side=intent.side,
            order_type=intent.order_type,
            quantity=intent.size,
            price=intent.price,
            reference_price=reference,
        )

    async def submit(self, intent: OrderIntent) -> None:
        order = self._order(intent)
        if self.blocked is not None:
            self.report(OrderRejected(intent.client_id, self.blocked))
            return
        await self.account.submit(order, self._on_venue)

    async def cancel(self, intent: OrderIntent) -> None:
        await self.account.cancel(self.venue_id(intent))

    async def reconcile(self, order: OrderRecord) -> None:
        intent = order.intent
        await self.account.recover(
            self._order(intent),
            booked_trade_ids=self._booked.get(intent.client_id, ()),
            sink=self._on_venue,
        )

    def _on_venue(self, report: VenueReport) -> None:
        translated = self._translate(report)
        if translated is not None:
            self.report(translated)

    def _translate(self, report: VenueReport) -> ExecutionReport | None:
        match report:
            case VenueFillReport(fill=fill, final=final):
                intent = self._intents.get(fill.client_order_id)
                if intent is None:
                    return None
                base, quote = self.base_quote
                size, fee = booked_size_and_fee(fill, base, quote)
                if fill.commission and fill.commission_asset not in (base, quote):
                    logger.bind(bot=self.config.id).info(
                        "commission paid in another asset; booked as zero fee",
                        commission=str(fill.commission),
                        asset=fill.commission_asset,
                    )
                return OrderFilled(
                    intent.client_id,
                    fill.price,
                    size,
                    fee,
                    fill.time_ms / 1000,
                    final=final,
                    venue_fill_id=f"{fill.symbol}:{fill.trade_id}",
                )
            case OrderRested(client_order_id=cid):
                intent = self._intents.get(cid)
                return OrderResting(intent.client_id) if intent is not None else None
            case OrderInDoubt(client_order_id=cid, reason=reason):
                intent = self._intents.get(cid)
                return OrderUnknown(intent.client_id, reason) if intent is not None else None
            case OrderEnded(client_order_id=cid, status=status, reason=reason):
                intent = self._intents.get(cid)
                if intent is None:
                    return None
                text = f"{status.lower()}: {reason}" if reason else status.lower()
                if status in REJECTED_STATUSES:
                    return OrderRejected(intent.client_id, text)
                return OrderCancelled(intent.client_id, text)


@attrs.define(eq=False)
class Executors:
    """The executor factory of a daemon with accounts: paper bots get the paper venue, live
    bots their account's ``LiveExecutor``; ``blocked`` (from reconciliation) refuses a bot's
    orders with the reason."""

    accounts: Mapping[str, BinanceAccount]
    blocked: dict[str, str] = attrs.Factory(dict)

    def __call__(
        self, config: BotConfig, report: ReportSink, *, wall_clock: Callable[[], float]
    ) -> Executor:
        if config.mode == "paper":
            return make_executor(config, report, wall_clock=wall_clock)
        account = self.accounts.get(config.account or "")
        if account is None:
            raise ExecutionError(f"bot {config.id!r}: {live_mode_problem(config)}")
        return LiveExecutor(
            account, config, report, wall_clock, blocked=self.blocked.get(config.id)
        )


# --- reconciliation of the account at start ------------------------------------------------------


@attrs.frozen
class AccountReconciliation:
    foreign: tuple[str, ...]  # venue client ids of ours the journal lacked
    action: Literal["cancel", "adopt", "report"]
    differences: Mapping[str, Decimal]  # asset -> venue minus expected
    blocked: Mapping[str, str]  # bot id -> why it may not trade
    baseline_recorded: bool
    deferred: tuple[str, ...] = ()  # assets not compared: a market order in flight (shared)


def account_state_key(name: str) -> str:
    """The journal's state rows of an account are kept under this owner id."""
    return ACCOUNT_STATE_PREFIX + name


def fill_deltas(config: BotConfig, fills: Sequence[FillRecord]) -> dict[str, Decimal]:
    """What a bot's fills changed in its assets' balances."""
    base, quote = split_unified(config.symbol)
    out = {base: Decimal(0), quote: Decimal(0)}
    for fill in fills:
        notional = fill.price * fill.size
        if fill.side == "buy":
            out[base] += fill.size
            out[quote] -= notional + fill.fee
        else:
            out[base] -= fill.size
            out[quote] += notional - fill.fee
    return out


async def reconcile_account(
    account: BinanceAccount,
    journal: Journal,
    bots: Sequence[BotConfig],
    *,
    now_ts: float | None = None,
    shared: bool = False,
) -> AccountReconciliation:
    """Before any of the account's bots trades (``shared``: before this node's do; other
    nodes' may trade meanwhile): the venue's open orders of ours that the journal lacks, then
    balances. Per-order recovery is each bot's own (``reconcile``)."""
    cfg = account.config
    now = time.time() if now_ts is None else now_ts
    log = logger.bind(account=cfg.name)
    bot_ids = [b.id for b in bots]
    by_id = {b.id: b for b in bots}
    # The venue first (module docstring): what it shows, the journal read next explains.
    snapshots = await account.open_orders()
    balances = await account.balances()
    known: set[str] = set()
    records: dict[str, list[OrderRecord]] = {}
    fills: dict[str, list[FillRecord]] = {}
    for bot in bots:
        records[bot.id] = await journal.orders(bot.id)
        fills[bot.id] = await journal.fills(bot.id)
        known.update(
            client_order_id(bot.id, o.intent.seq, cfg.client_id_prefix) for o in records[bot.id]
        )
    known.update(account.orders)  # in flight now (an account restarted while bots trade)
    foreign: list[str] = []
    for snapshot in snapshots:
        parsed = parse_client_order_id(snapshot.client_order_id, cfg.client_id_prefix)
        if parsed is None or snapshot.client_order_id in known:
            continue
        owner = bot_for(parsed, bot_ids, cfg.client_id_prefix)
        foreign.append(snapshot.client_order_id)
        log.warning(
            "open order of ours on the venue that the journal lacks",
            client_order_id=snapshot.client_order_id,
            bot=owner,
            action=cfg.foreign_orders,
        )
        if cfg.foreign_orders == "cancel" or (cfg.foreign_orders == "adopt" and owner is None):
            await account.cancel_foreign(snapshot)
        elif cfg.foreign_orders == "adopt" and owner is not None:
            try:
                await _adopt(journal, by_id[owner], snapshot, parsed.seq, now)
            except FencedWriteError as exc:
                log.warning(
                    "order not adopted: a cluster node owns its bot; reported",
                    client_order_id=snapshot.client_order_id,
                    bot=owner,
                    epoch=exc.current,
                )
    in_flight = _in_flight(bots, records) if shared else ({}, set())
    differences, blocked, recorded = await _check_balances(
        account, journal, bots, fills, balances, now, in_flight
    )
    return AccountReconciliation(
        foreign=tuple(foreign),
        action=cfg.foreign_orders,
        differences=differences,
        blocked=blocked,
        baseline_recorded=recorded,
        deferred=tuple(sorted(in_flight[1])),
    )


FEE_ALLOWANCE = Decimal("1.01")  # an order in flight may also move its fee


def _in_flight(
    bots: Sequence[BotConfig], records: Mapping[str, Sequence[OrderRecord]]
) -> tuple[dict[str, Decimal], set[str]]:
    """What the bots' orders not final in the journal may still move on the venue: an
    allowance per asset (limit orders), and the assets of market orders (no price: deferred)."""
    allowance: dict[str, Decimal] = {}
    deferred: set[str] = set()
    for bot in bots:
        base, quote = split_unified(bot.symbol)
        for order in records[bot.id]:
            if order.status in TERMINAL_STATUSES:
                continue
            left = order.intent.size - order.filled_size
            price = order.intent.price
            if price is None:
                deferred.update((base, quote))
                continue
            allowance[base] = allowance.get(base, Decimal(0)) + left * FEE_ALLOWANCE
            allowance[quote] = allowance.get(quote, Decimal(0)) + left * price * FEE_ALLOWANCE
    return allowance, deferred


async def _adopt(
    journal: Journal, bot: BotConfig, snapshot: OrderSnapshot, seq: int, now: float
) -> None:
    """Journal a venue order for its bot as an unresolved intent: the bot's start recovers it
    like one of its own (its fills booked, its end recorded)."""
    limit = snapshot.order_type.upper() == "LIMIT"
    await journal.load_bot(bot.id, initial_quote=bot.paper.quote_balance, now_ts=now)
    await journal.record_intent(
        OrderIntent(
            client_id=f"{bot.id}-{seq}",
            bot_id=bot.id,
            seq=seq,
            symbol=bot.symbol,
            side=snapshot.side,
            order_type="limit" if limit else "market",
            size=snapshot.orig_qty,
            price=snapshot.price if limit else None,
            tag="adopted",
            position_id=None,
            created_ts=now,
        )
    )


async def _check_balances(
    account: BinanceAccount,
    journal: Journal,
    bots: Sequence[BotConfig],
    fills: Mapping[str, Sequence[FillRecord]],
    balances: Mapping[str, AssetBalance],
    now: float,
    in_flight: tuple[Mapping[str, Decimal], set[str]],
) -> tuple[dict[str, Decimal], dict[str, str], bool]:
    cfg = account.config
    allowance, deferred = in_flight
    expected: dict[str, Decimal] = {}
    for bot in bots:
        for asset, delta in fill_deltas(bot, fills[bot.id]).items():
            expected[asset] = expected.get(asset, Decimal(0)) + delta
    totals = {
        asset: (balances[asset].free + balances[asset].locked) if asset in balances else Decimal(0)
        for asset in expected
    }
    key = account_state_key(cfg.name)
    stored = await journal.load_state(key)
    baseline = {
        k.removeprefix(BASELINE_KEY): Decimal(v)
        for k, v in stored.items()
        if k.startswith(BASELINE_KEY)
    }
    recorded = False
    for asset in expected:
        if asset not in baseline and asset not in deferred and not allowance.get(asset):
            baseline[asset] = totals[asset] - expected[asset]
            await journal.save_state(key, BASELINE_KEY + asset, str(baseline[asset]), now_ts=now)
            recorded = True
    differences: dict[str, Decimal] = {}
    blocked: dict[str, str] = {}
    log = logger.bind(account=cfg.name)
    for asset in expected:
        if asset not in baseline or asset in deferred:
            continue  # (shared: orders in flight elsewhere; the next start compares it)
        want = baseline[asset] + expected[asset]
        diff = totals[asset] - want
        differences[asset] = diff
        if diff == 0:
            continue
        tolerance = abs(want) * Decimal(str(cfg.balance_tolerance_pct)) / 100
        over = abs(diff) > tolerance + allowance.get(asset, Decimal(0))
        log.warning(
            "venue balance differs from the journal",
            asset=asset,
            venue=str(totals[asset]),
            expected=str(want),
            difference=str(diff),
            in_flight=str(allowance.get(asset, Decimal(0))),
            over_tolerance=over,
        )
        if over:
            for bot in bots:
                if asset in split_unified(bot.symbol):
                    blocked[bot.id] = (
                        f"balance check: {asset} on the venue is {totals[asset]}, the journal"
                        f" explains {want} (difference {diff}, over"
                        f" {cfg.balance_tolerance_pct}%); trading stopped until checked"
                    )
    return differences, blocked, recorded


async def reset_baseline(journal: Journal, account_name: str, *, now_ts: float) -> None:
    """Forget the account's balance baseline: the next start records a new one."""
    key = account_state_key(account_name)
    for name in list(await journal.load_state(key)):
        if name.startswith(BASELINE_KEY):
            await journal.save_state(key, name, None, now_ts=now_ts)


def describe(reconciliation: AccountReconciliation) -> dict[str, Any]:
    return {
        "foreign_orders": list(reconciliation.foreign),
        "foreign_action": reconciliation.action,
        "balance_differences": {k: str(v) for k, v in reconciliation.differences.items()},
        "blocked_bots": dict(reconciliation.blocked),
        "baseline_recorded": reconciliation.baseline_recorded,
        "deferred_assets": list(reconciliation.deferred),
    }
