"""The read API: bots, their orders, fills and positions as JSON (``GET /bots...``).

This module turns what the running system knows into the documents ``supervisor.http`` serves
(their schemas are in ``supervisor.openapi``); it does no I/O of its own.

Decisions:

* **Orders and fills come from the journal**, the record that survives restarts, not from the
  bot's memory: a page shows exactly what replay would rebuild.
* **Newest first, keyset-paged.** ``?limit=`` (1..1000, default 100) and ``?before=SEQ`` (items
  whose ``seq`` is below it). Every item carries a ``seq`` that never changes: an order's is its
  sequence number in the bot, a fill's its 1-based position in the bot's fills (the journal only
  appends). A page answers ``next_before`` (None on the last page). Keyset rather than offset,
  so the next page does not shift while the bot keeps trading.
* **Positions are the journal's fills folded by the bot's own ``Book``** (the fold the bot
  replays at start), marked at the bot's last price: a lot's cost, entry and unrealized PnL are
  the numbers the bot trades on, also while its actor is restarting.
* Bad query parameters are a ``QueryError`` with one ``name: message`` line per problem (400);
  an unknown bot is ``KeyError`` (404): only bots this system runs are readable, so ``GET
  /bots/ID/orders`` and ``GET /bots/ID`` agree on which ids exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qsl

import attrs

from actors.bots import BotStatistics
from actors.bots.positions import Book
from actors.journal.store import FillRecord, OrderRecord
from supervisor.config import BotConfig

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SEQ = 2**63 - 1  # SQLite's largest integer: no seq can be above it
READ_ACTIONS = frozenset({"bots", "bot", "orders", "fills", "positions"})


@attrs.frozen
class BotView:
    """One bot as the read API shows it: what it trades, its ``/health`` entry, and its book
    (``statistics`` is None while its actor is not running: starting, restarting)."""

    config: BotConfig
    health: Mapping[str, Any]
    statistics: BotStatistics | None


class ReadPlane(Protocol):
    """What the read API needs from the running system (``System`` implements it).

    ``bot_orders`` and ``bot_fills`` return the journal's records oldest first and raise
    ``KeyError`` for a bot the system does not run."""

    def bot_views(self) -> Mapping[str, BotView]: ...

    async def bot_orders(self, bot_id: str) -> Sequence[OrderRecord]: ...

    async def bot_fills(self, bot_id: str) -> Sequence[FillRecord]: ...


class QueryError(Exception):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@attrs.frozen
class Page:
    limit: int = DEFAULT_LIMIT
    before: int | None = None


def parse_page(query: bytes) -> Page:
    """``limit`` and ``before`` from a query string; other parameters are ignored."""
    params = dict(parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True))
    problems: list[str] = []
    limit = _integer(params, "limit", 1, MAX_LIMIT, problems)
    before = _integer(params, "before", 1, MAX_SEQ, problems)
    if problems:
        raise QueryError(problems)
    return Page(DEFAULT_LIMIT if limit is None else limit, before)


def _integer(
    params: Mapping[str, str], name: str, low: int, high: int, problems: list[str]
) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    # ASCII digits only (no sign, no spaces); the length cap keeps int() cheap on hostile input.
    digits = raw.lstrip("0") or "0"
    value = int(digits) if raw.isascii() and raw.isdigit() and len(digits) <= 20 else None
    if value is None or not low <= value <= high:
        problems.append(f"{name}: must be an integer in {low}..{high}, got {raw[:40]!r}")
        return None
    return value


def paged(bot_id: str, items: Sequence[tuple[int, dict[str, Any]]], page: Page) -> dict[str, Any]:
    """``items`` oldest first as (seq, JSON); the page newest first."""
    eligible = [item for seq, item in items if page.before is None or seq < page.before]
    chosen = eligible[::-1][: page.limit]
    more = len(eligible) > len(chosen)
    return {
        "bot": bot_id,
        "total": len(items),
        "items": chosen,
        "next_before": chosen[-1]["seq"] if more else None,
    }


def order_json(order: OrderRecord) -> dict[str, Any]:
    intent = order.intent
    return {
        "seq": intent.seq,
        "client_id": intent.client_id,
        "symbol": intent.symbol,
        "side": intent.side,
        "type": intent.order_type,
        "size": intent.size,
        "price": intent.price,
        "tag": intent.tag,
        "position_id": intent.position_id,
        "status": order.status,
        "status_reason": order.status_reason,
        "filled_size": order.filled_size,
        "created_ts": intent.created_ts,
    }


def fill_json(seq: int, fill: FillRecord) -> dict[str, Any]:
    return {
        "seq": seq,
        "client_id": fill.client_id,
        "side": fill.side,
        "price": fill.price,
        "size": fill.size,
        "fee": fill.fee,
        "position_id": fill.position_id,
        "ts": fill.ts,
        "venue_fill_id": fill.venue_fill_id,
    }


def positions_json(view: BotView, fills: Sequence[FillRecord]) -> dict[str, Any]:
    # The starting balance only moves the quote side, which this document does not show.
    book = Book.replay(Decimal(0), fills)
    mark = view.statistics.last_price if view.statistics is not None else None
    lots = [
        {
            "position_id": lot.position_id,
            "size": lot.size,
            "entry_price": lot.entry_price,
            "cost": lot.cost_quote,
            "opened_ts": lot.opened_ts,
            "unrealized_pnl": None if mark is None else mark * lot.size - lot.cost_quote,
        }
        for lot in book.lots.values()
    ]
    return {
        "bot": view.config.id,
        "symbol": view.config.symbol,
        "size": book.size,
        "entry_price": book.entry_price(),
        "last_price": mark,
        "unrealized_pnl": None if mark is None else book.unrealized(mark),
        "lots": lots,
    }


def bot_json(view: BotView) -> dict[str, Any]:
    config, health, s = view.config, view.health, view.statistics
    equity = None
    if s is not None and s.last_price is not None:
        equity = s.quote_balance + s.base_balance * s.last_price
    return {
        "id": config.id,
        "exchange": config.exchange,
        "symbol": config.symbol,
        "strategy": config.strategy,
        "mode": config.mode,
        "state": health.get("state"),
        "healthy": health.get("healthy") is True,
        "restarts": health.get("restarts", 0),
        "last_error": health.get("last_error"),
        "blocked": health.get("blocked"),
        "node": health.get("node"),  # a cluster's bot: the node running it, and its epoch
        "epoch": health.get("epoch"),
        "feed": None if s is None else s.feed_state,
        "price_status": None if s is None else s.price_status,
        "last_price": None if s is None else s.last_price,
        "position": None if s is None else s.position_size,
        "entry_price": None if s is None else s.entry_price,
        "quote_balance": None if s is None else s.quote_balance,
        "base_balance": None if s is None else s.base_balance,
        "equity": equity,
        "realized_pnl": None if s is None else s.realized_pnl,
        "realized_pnl_today": None if s is None else s.realized_pnl_today,
        "unrealized_pnl": None if s is None else s.unrealized_pnl,
        "fees": None if s is None else s.fees_quote,
        "last_action": None if s is None else s.last_action,
        "orders": None if s is None else s.orders,
        "fills": None if s is None else s.fills,
        "open_orders": None if s is None else s.open_orders,
        "open_positions": None if s is None else s.open_positions,
        "config": attrs.asdict(config),
    }


async def read(plane: ReadPlane, action: str, bot_id: str | None, query: bytes) -> Any:
    """The JSON body for a read route (``READ_ACTIONS``); ``KeyError``/``QueryError`` else."""
    if action == "bots":
        return {"bots": [bot_json(view) for view in plane.bot_views().values()]}
    if bot_id is None:
        raise KeyError(bot_id)
    if action == "bot":
        return bot_json(plane.bot_views()[bot_id])
    if action == "orders":
        page = parse_page(query)
        orders = await plane.bot_orders(bot_id)
        return paged(bot_id, [(o.intent.seq, order_json(o)) for o in orders], page)
    if action == "fills":
        page = parse_page(query)
        fills = await plane.bot_fills(bot_id)
        return paged(bot_id, [(n, fill_json(n, f)) for n, f in enumerate(fills, 1)], page)
    if action == "positions":
        view = plane.bot_views()[bot_id]
        return positions_json(view, await plane.bot_fills(bot_id))
    raise ValueError(f"not a read action: {action!r}")
