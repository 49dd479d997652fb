"""The status block the daemon prints shows each bot's realized and unrealized PnL. The
daemon's own ``main`` runs in this process against a local Binance, its status written to a
buffer every half second; the bot buys once it trusts the price, then holds (one position at
most), so its unrealized PnL moves."""

from __future__ import annotations

import io
import re
from pathlib import Path

import trio

from actors.journal.store import JournalStore
from actors.simulator import open_exchange_server
from supervisor.config import BotConfig, Config, ExchangeConfig, HttpConfig, JournalConfig
from supervisor.daemon import main

BOT_LINE = re.compile(
    r"^  b1 +running +pos (?P<pos>\S+) +pnl (?P<pnl>[+-]\d+\.\d\d) +upnl (?P<upnl>[+-]\d+\.\d\d) "
)


async def test_the_status_block_shows_realized_and_unrealized_pnl(tmp_path: Path) -> None:
    out = io.StringIO()
    with trio.fail_after(60):
        async with open_exchange_server("binance", ("BTC/USDT",), rate_hz=50.0) as server:
            config = Config(
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                bots=(
                    BotConfig(
                        id="b1",
                        exchange="sim",
                        symbol="BTC/USDT",
                        strategy="tests.bots.strategies:AlwaysBuy",
                        order_quote=100,
                    ),
                ),
                journal=JournalConfig(path=str(tmp_path / "j.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
            )
            code = await main(config, duration_s=3.0, status_interval_s=0.5, status_out=out)
    assert code == 0
    bot_lines = [m for m in map(BOT_LINE.match, out.getvalue().splitlines()) if m]
    assert bot_lines, out.getvalue()
    holding = [m for m in bot_lines if m["pos"] not in ("0", "-")]
    assert holding, out.getvalue()
    # bought with a fee and marked at the bid: a position is never worth exactly its cost
    assert {m["pnl"] for m in holding} == {"+0.00"}
    assert any(m["upnl"] != "+0.00" for m in holding), out.getvalue()
    # every later tick was refused (one position at most): counted in the journal at the stop
    store = JournalStore(tmp_path / "j.sqlite3")
    store.open()
    try:
        refused = {r.reason: r.count for r in store.refusals("b1")}
    finally:
        store.close()
    assert refused.get("max_open_positions", 0) > 10, refused
