"""Shutdown order is the reverse of start order, even when the whole system is cancelled from
outside as SIGTERM does: bots stop while their feed still runs, then the feeds, then the journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from loguru import logger
from trio.testing import MockClock

from actors.simulator import open_exchange_server
from supervisor.config import BotConfig, Config, ExchangeConfig, HttpConfig, JournalConfig
from supervisor.otp.events import ChildStateChanged, SupervisionEvent
from supervisor.system import open_supervisor


async def test_an_outside_cancel_stops_bots_then_feeds_then_the_journal(
    tmp_path: Path, thread_clock: MockClock
) -> None:
    records: list[dict[str, Any]] = []
    events: list[SupervisionEvent] = []
    sink = logger.add(lambda m: records.append(m.record), level="DEBUG")
    try:
        with trio.fail_after(60):
            async with open_exchange_server("binance", ("BTC/USDT",), rate_hz=10.0) as server:
                config = Config(
                    exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                    bots=tuple(
                        BotConfig(id=f"b{i}", exchange="sim", symbol="BTC/USDT") for i in (1, 2)
                    ),
                    journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
                    http=HttpConfig(enabled=False),
                )
                with trio.CancelScope() as everything:  # what SIGTERM cancels in the daemon
                    async with open_supervisor(config, observers=[events.append]) as sup:
                        await sup.market_data.wait_streaming("sim")
                        await trio.sleep(2)
                        everything.cancel(reason="like SIGTERM")
                        await trio.sleep_forever()
    finally:
        logger.remove(sink)

    def first(message: str, **extra: Any) -> int:
        return next(
            i
            for i, r in enumerate(records)
            if r["message"] == message and all(r["extra"].get(k) == v for k, v in extra.items())
        )

    downs = [r for r in records if r["message"] == "feed state changed"]
    assert not [r for r in downs if r["extra"]["state"] == "down"]  # no bot saw its feed go
    assert [r["level"].name for r in records if r["level"].no >= 30] == []
    bots_stopped = max(first("bot stopped", bot=b) for b in ("b1", "b2"))
    feed_stopped = first("exchange state", exchange="sim", from_state="streaming")
    journal_closed = first("journal closed")
    assert bots_stopped < feed_stopped < journal_closed
    # One at a time, in reverse start order: each child of the root was stopped only once the
    # one started after it had finished stopping.
    stopped = [
        e.child
        for e in events
        if isinstance(e, ChildStateChanged) and e.supervisor == "root" and e.to_state == "stopped"
    ]
    assert stopped == ["bots", "feeds", "bot_events", "alerts", "journal"]
