"""Crash recovery end to end: kill -9 the daemon while its bots trade, restart it on the same
journal, three times at different points, then stop it cleanly.

The bots trade all the time: a threshold strategy whose ``buy_below`` is far above the market buys
whenever flat, and tight stop-loss / take-profit levels close each position a few ticks later
(the strategy never sells, so every sell is a protective exit placed by the position monitor).
The exchange is a local Binance server in this process; the daemon is a subprocess.

After each kill a copy of the journal (with its WAL) is read through the product's own store and
``Book.replay``: it must be intact, every fill the daemon had logged must be in it, and the
balances it gives must be exactly those the restarted bots report when they have replayed it
("bot restored from journal"). Across all runs: no client order id is ever reused or rewritten,
every fill belongs to a journaled order, no position is exited twice, and every position that was
open at a kill is closed after the restart by a stop-loss or take-profit whose fill really is
beyond its level.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.bots.positions import Book
from actors.journal.store import OrderRecord
from actors.simulator import open_exchange_server
from tests.e2e.helpers import (
    Daemon,
    JournalView,
    Record,
    copy_journal,
    local_exchange,
    log_is,
    open_daemon,
    read_journal,
    write_config,
)

STOP_LOSS_PCT = 0.03
TAKE_PROFIT_PCT = 0.03
QUOTE = Decimal("10000")
# bot id -> symbol, the simulator's tick for it, strategy params beyond buy_below
BOTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "crash-btc": ("BTC/USDT", "0.01", {}),
    "crash-eth": ("ETH/USDT", "0.001", {}),
    "crash-limit": ("BTC/USDT", "0.01", {"limit_offset_pct": 0.01}),  # buys rest a while
}
EXITS = ("stop_loss", "take_profit")
# Where each kill lands: after this many fills in the run, right after the next log line of
# this kind (a position just opened or closed, a limit buy just rested), plus this delay.
KILLS = (
    (4, "order filled", "buy", 0.0),
    (8, "order filled", "sell", 0.003),
    (12, "order resting", "buy", 0.0),
)
SPARE_FILLS = 20
FILLS_AFTER_LAST_RESTART = 6


def bot_table(bot_id: str) -> dict[str, Any]:
    symbol, tick, params = BOTS[bot_id]
    return {
        "id": bot_id,
        "exchange": "sim",
        "symbol": symbol,
        "strategy": "threshold",
        "params": {"buy_below": "100000000", **params},
        "order_quote": "100",
        "risk": {
            "stop_loss_pct": STOP_LOSS_PCT,
            "take_profit_pct": TAKE_PROFIT_PCT,
            "max_orders_per_minute": 100000,
            "daily_loss_limit_quote": "1000000",
        },
        "paper": {"quote_balance": str(QUOTE), "fee_pct": "0.1", "slippage_pct": "0"},
        "market": {"tick_size": tick},  # fills at the exact bid/ask the monitor compared
    }


@attrs.frozen
class BotState:
    """What a bot's journal says at one moment."""

    quote: Decimal
    base: Decimal
    fills: int
    unresolved: int  # intents without an outcome: the restart must cancel them
    resting: int  # limit orders at the venue: the restart must restore them
    open_lots: Mapping[str, Decimal]  # position id -> entry price


def filled(record: Record) -> bool:
    return record["message"] == "order filled"


def check_journal(view: JournalView, acknowledged: list[Record]) -> dict[str, BotState]:
    """The invariants that must hold at any instant, crash or not; returns each bot's state."""
    assert view.integrity == "ok"
    assert view.orphan_fills == 0
    assert set(view.orders) == set(BOTS)
    ids = view.order_ids()
    assert len(ids) == len(set(ids))
    fills_by_id = {f.client_id: f for fills in view.fills.values() for f in fills}
    for record in acknowledged:  # logged after its commit: a fill the daemon acted on is kept
        fill = fills_by_id[record["extra"]["client_id"]]
        assert (fill.side, str(fill.price), str(fill.size)) == (
            record["extra"]["side"],
            record["extra"]["price"],
            record["extra"]["size"],
        )
    states = {}
    for bot, orders in view.orders.items():
        assert view.initial_quote[bot] == QUOTE
        numbered = [f"{bot}-{n}" for n in range(1, len(orders) + 1)]
        assert [o.intent.client_id for o in orders] == numbered  # no gap, no reuse
        orders_by_id = {o.intent.client_id: o for o in orders}
        fills = view.fills[bot]
        for fill in fills:
            order = orders_by_id[fill.client_id]
            assert (order.intent.side, order.status) == (fill.side, "filled")
        assert {o.intent.client_id for o in orders if o.status == "filled"} == {
            f.client_id for f in fills
        }
        assert all(o.status in ("filled", "open", "intent", "cancelled") for o in orders)
        unresolved = sum(o.status == "intent" for o in orders)
        assert unresolved <= 1  # at most the order being placed when the process died
        resting = sum(o.status == "open" for o in orders)
        assert resting <= 1  # a resting buy makes the bot not flat: it never adds a second
        check_exits(orders_by_id, fills)
        book = Book(quote=view.initial_quote[bot])
        for fill in fills:
            book.apply_fill(fill)
            assert len(book.lots) <= 1  # never a second position, restarts included
        signed = sum(
            (f.price * f.size * (1 if f.side == "sell" else -1) - f.fee for f in fills), Decimal(0)
        )
        bought = sum((f.size for f in fills if f.side == "buy"), Decimal(0))
        sold = sum((f.size for f in fills if f.side == "sell"), Decimal(0))
        assert (book.quote, book.base) == (QUOTE + signed, bought - sold)
        states[bot] = BotState(
            quote=book.quote,
            base=book.base,
            fills=len(fills),
            unresolved=unresolved,
            resting=resting,
            open_lots={lot.position_id: lot.entry_price for lot in book.lots.values()},
        )
    return states


def check_exits(orders: Mapping[str, OrderRecord], fills: list) -> None:
    """Every sell is a protective exit of one lot, filled once, beyond its level."""
    entries = {f.client_id: f.price for f in fills if f.side == "buy"}
    exited: set[str] = set()
    for fill in fills:
        if fill.side != "sell":
            continue
        order = orders[fill.client_id]
        assert order.intent.tag in EXITS, order
        assert fill.position_id == order.intent.position_id is not None
        assert fill.position_id not in exited, f"position {fill.position_id} exited twice"
        exited.add(fill.position_id)
        entry = entries[fill.position_id]
        if order.intent.tag == "stop_loss":
            assert fill.price <= entry * (1 - Decimal(str(STOP_LOSS_PCT)) / 100), (fill, entry)
        else:
            assert fill.price >= entry * (1 + Decimal(str(TAKE_PROFIT_PCT)) / 100), (fill, entry)


async def check_restored(daemon: Daemon, expected: Mapping[str, BotState]) -> None:
    """Each bot, once it has replayed the journal, holds exactly what the journal says."""
    for bot, state in expected.items():
        restored = (await daemon.wait_log(log_is("bot restored from journal", bot=bot)))["extra"]
        assert Decimal(restored["quote"]) == state.quote, (bot, restored)
        assert Decimal(restored["base"]) == state.base, (bot, restored)
        assert restored["fills"] == state.fills
        assert restored["reconciled"] == state.unresolved
        assert restored["open_orders"] == state.resting


async def wait_for_exits(daemon: Daemon, expected: Mapping[str, BotState]) -> None:
    """A bot restarted holding a lot closes it before anything else (it buys only when flat)."""
    for bot, state in expected.items():
        if state.open_lots:
            first = await daemon.wait_log(lambda r, bot=bot: filled(r) and r["extra"]["bot"] == bot)
            assert (first["extra"]["side"], first["extra"]["tag"] in EXITS) == ("sell", True), first


async def trade_then_kill(
    daemon: Daemon, fills: int, message: str, side: str, delay_s: float
) -> list[Record]:
    """Let the daemon book ``fills`` fills, then SIGKILL it just after its next ``message`` log
    line for a ``side`` order; returns the fills it had logged (each was committed first).

    A resting limit buy may wait long for the market to come to it (a random walk's hitting
    time has a long tail), so a kill waiting for the next one also goes ahead after
    ``SPARE_FILLS`` more fills: still a kill in mid-trading, never a stalled test."""
    await daemon.wait_logs(filled, fills)
    wanted = log_is(message, side=side)
    seen = 0

    def kill_point(record: Record) -> bool:
        nonlocal seen
        seen += filled(record)
        return wanted(record) or seen > SPARE_FILLS

    await daemon.wait_log(kill_point, after=len(daemon.records))
    await trio.sleep(delay_s)  # a deliberate offset of the kill point, not a wait for anything
    daemon.process.send_signal(signal.SIGKILL)
    assert await daemon.wait_exit() == -signal.SIGKILL
    return daemon.logged(filled)


def note_open_lots(
    expected: Mapping[str, BotState] | None, into: dict[str, tuple[Decimal, float]]
) -> None:
    """Remember the lots open at the last kill, with the time the next run starts."""
    for state in (expected or {}).values():
        for position_id, entry in state.open_lots.items():
            into[position_id] = (entry, time.time())


async def test_kill_9_three_times_then_restart_resumes_exactly(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    snapshots: list[JournalView] = []
    open_at_kill: dict[str, tuple[Decimal, float]] = {}  # position id -> (entry, restart ts)
    acknowledged: list[Record] = []
    expected: dict[str, BotState] | None = None
    with trio.fail_after(45):
        async with open_exchange_server(
            "binance", ("BTC/USDT", "ETH/USDT"), seed=11, rate_hz=200.0
        ) as server:
            config = write_config(
                tmp_path / "crash.toml",
                {
                    "http": {"enabled": False},
                    "backoff": {"initial_s": 0.05, "max_s": 0.5},
                    "journal": {"path": journal},
                    "exchanges": [local_exchange("sim", server)],
                    "bots": [bot_table(bot) for bot in BOTS],
                },
            )
            for run, kill in enumerate(KILLS):
                note_open_lots(expected, open_at_kill)
                async with open_daemon("--config", str(config), cwd=tmp_path) as daemon:
                    if expected is not None:
                        await check_restored(daemon, expected)
                        await wait_for_exits(daemon, expected)
                    acknowledged += await trade_then_kill(daemon, *kill)
                view = read_journal(copy_journal(journal, tmp_path / f"after-kill-{run}"))
                expected = check_journal(view, acknowledged)
                snapshots.append(view)

            note_open_lots(expected, open_at_kill)
            async with open_daemon("--config", str(config), cwd=tmp_path) as daemon:
                await check_restored(daemon, expected)
                await wait_for_exits(daemon, expected)
                await daemon.wait_logs(filled, FILLS_AFTER_LAST_RESTART)
                assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
                acknowledged += daemon.logged(filled)

    final = read_journal(journal)
    check_journal(final, acknowledged)
    final_orders = {o.intent.client_id: o for orders in final.orders.values() for o in orders}
    for view in snapshots:  # nothing journaled before a kill was lost, rewritten or reused
        for bot, fills in view.fills.items():
            assert final.fills[bot][: len(fills)] == fills
        for orders in view.orders.values():
            for order in orders:
                later = final_orders[order.intent.client_id]
                assert later.intent == order.intent
                if order.status == "intent":
                    assert later.status == "cancelled"
                    assert later.status_reason.startswith("reconciled at restart")
                elif order.status == "open":  # restored as resting: filled later, or still open
                    assert later.status in ("open", "filled")
                else:
                    assert later.status == order.status
    # Protection survived every restart: each lot open at a kill was closed afterwards by the
    # monitor (check_journal has checked each exit's fill against its level).
    assert open_at_kill, "no kill landed while a position was open"
    fills_by_id = {f.client_id: f for fills in final.fills.values() for f in fills}
    exits = {
        f.position_id: final_orders[f.client_id] for f in fills_by_id.values() if f.side == "sell"
    }
    for position_id, (entry, restart_ts) in open_at_kill.items():
        assert fills_by_id[position_id].price == entry
        exit_order = exits[position_id]
        assert exit_order.intent.tag in EXITS
        assert exit_order.intent.created_ts >= restart_ts
