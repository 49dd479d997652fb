"""The recorder on the real plane: a local Binance simulator, real sockets, real files."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import trio
from prometheus_client import generate_latest

from actors.messages import FeedState, Stream, Ticker, Trade
from actors.recording.config import RecordConfig
from actors.recording.raw import read_raw_frames
from actors.recording.reader import read_events, recorded_streams
from actors.recording.recorder import Recorder
from actors.simulator import open_exchange_server
from supervisor.config import BotConfig, Config, ExchangeConfig, HttpConfig, JournalConfig
from supervisor.metrics import SnapshotCollector, new_registry
from supervisor.system import open_supervisor
from tests.market_data.helpers import config_for, next_of, open_plane
from tests.recording.helpers import trade

BTC = "BTC/USDT"


async def test_the_recording_holds_what_a_subscriber_got(tmp_path: Path) -> None:
    # real time (a worker thread writes), 500 steps/s: a second of a busy feed
    config = RecordConfig(dir=str(tmp_path), flush_s=0.2, bot_streams=False)
    streams = [("binance", "ticker", BTC), ("binance", "trade", BTC)]
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=500.0) as server,
            open_plane([config_for(server)]) as md,
            trio.open_nursery() as nursery,
        ):
            recorder = Recorder(config, md.subscribe_handler, streams)
            await nursery.start(recorder.run)
            async with (
                md.subscribe("binance", "trade", BTC) as trades,
                md.subscribe("binance", "ticker", BTC) as tickers,
            ):
                got = [await next_of(trades, Trade) for _ in range(60)]
                last_ticker = await next_of(tickers, Ticker)
                # flushed while running: readable before the recorder stops
                await trio.sleep(0.5)
                assert len(list(read_events(tmp_path, kinds=("trade",)))) >= 60
                nursery.cancel_scope.cancel()

    recorded = list(read_events(tmp_path))
    trades_recorded = [e for e in recorded if isinstance(e, Trade)]
    ids = [t.trade_id for t in trades_recorded]
    start = ids.index(got[0].trade_id)
    assert trades_recorded[start : start + len(got)] == got  # every trade, in order, exact
    assert last_ticker in recorded
    assert recorded == sorted(recorded, key=lambda e: e.received_ts)
    assert recorded_streams(tmp_path) == [("binance", "ticker", BTC), ("binance", "trade", BTC)]
    assert segments(tmp_path) == []  # a clean stop compacted everything

    stats = recorder.statistics()
    assert stats.rows_written == stats.rows_received == len(recorded)
    assert stats.dropped_rows == 0
    assert stats.parts_written == 2
    assert stats.buffered_rows == 0
    assert stats.flushes >= 2
    assert stats.last_flush_ts is not None

    text = generate_latest(new_registry(SnapshotCollector(recording=recorder.statistics))).decode()
    assert f"botcriptofy_recording_rows_written_total {float(stats.rows_written)}" in text
    assert "botcriptofy_recording_dropped_rows_total 0.0" in text
    assert "botcriptofy_recording_buffered_rows 0.0" in text


async def test_every_ticker_the_server_sent_is_recorded_where_a_mailbox_conflates(
    tmp_path: Path,
) -> None:
    # 1,000 tickers/s (real time): a mailbox subscriber that spends 5 ms per ticker (a bot
    # awaiting its journal) only takes the newest; the recorder's handler, called by the
    # reader as each ticker is published, records every one of them.
    config = RecordConfig(dir=str(tmp_path), flush_s=0.05, bot_streams=False)
    steps = 80  # fewer than the market's history holds (100): every step sent is known
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=0) as server,
            open_plane([config_for(server)]) as md,
            trio.open_nursery() as nursery,
        ):
            recorder = Recorder(config, md.subscribe_handler, [("binance", "ticker", BTC)])
            await nursery.start(recorder.run)
            async with (
                md.subscribe("binance", "ticker", BTC) as busy,
                trio.open_nursery() as bots,
            ):

                async def busy_bot() -> None:
                    async for _ in busy:
                        await trio.sleep(0.005)

                bots.start_soon(busy_bot)
                await md.wait_streaming("binance")
                market = server.markets[BTC]
                first = market.last.index  # the market's warm-up: never sent
                server.set_rate(1000.0)
                await server.wait_for(lambda _: market.last.index >= first + steps)
                server.set_rate(0)
                await trio.sleep(0.3)  # the last steps reach the reader, and the bot
                skipped = busy.statistics().skipped
                bots.cancel_scope.cancel()
            plane = md.statistics().exchanges["binance"]
            nursery.cancel_scope.cancel()

    sent = [s.update_id for s in market.history if s.index > first]
    assert len(sent) >= steps
    recorded = [e.sequence for e in read_events(tmp_path) if isinstance(e, Ticker)]
    # Only what the plane never published is missing: a Binance ticker superseded within one
    # socket read is skipped by the codec (usually none at this rate).
    conflated = sum(c.tickers_conflated for c in plane.connections)
    assert len(recorded) == len(sent) - conflated
    assert recorded[-1] == sent[-1]
    assert is_subsequence(recorded, sent)
    assert skipped > len(sent) // 2  # the mailbox subscriber took fewer than half of them
    stats = recorder.statistics()
    assert stats.rows_written == stats.rows_received == len(recorded)
    assert stats.dropped_rows == 0


def is_subsequence(items: list[object], of: list[object]) -> bool:
    rest = iter(of)
    return all(any(item == other for other in rest) for item in items)


async def test_under_a_flood_every_row_is_written_or_counted(tmp_path: Path) -> None:
    # the simulator as fast as the socket goes, a small buffer: rows received are written or
    # counted as dropped, never held beyond the bound
    config = RecordConfig(dir=str(tmp_path), flush_s=0.05, max_buffer_rows=64, bot_streams=False)
    with trio.fail_after(60):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=None) as server,
            open_plane([config_for(server)]) as md,
            trio.open_nursery() as nursery,
        ):
            recorder = Recorder(config, md.subscribe_handler, [("binance", "trade", BTC)])
            await nursery.start(recorder.run)
            peak = 0
            for _ in range(50):
                await trio.sleep(0.01)
                peak = max(peak, recorder.statistics().buffered_rows)
            nursery.cancel_scope.cancel()
    stats = recorder.statistics()
    assert stats.rows_received > 500
    assert peak <= 64
    assert stats.rows_written + stats.dropped_rows == stats.rows_received
    assert len(list(read_events(tmp_path))) == stats.rows_written


def test_a_full_buffer_drops_and_counts_rather_than_grows(tmp_path: Path) -> None:
    config = RecordConfig(dir=str(tmp_path), max_buffer_rows=40, bot_streams=False)
    recorder = Recorder(config, never_called, [])
    record = recorder._handler("binance", "trade", BTC)  # what the reader calls
    record(FeedState("binance", Stream("trade", BTC), "live"))  # not data: not a row
    for i in range(100):
        record(trade(i))
    stats = recorder.statistics()
    assert (stats.rows_received, stats.buffered_rows, stats.dropped_rows) == (100, 40, 60)
    assert recorder._wake_flusher.is_set()  # a quarter of the buffer waits: flush early


def never_called(*args: object) -> NoReturn:
    raise AssertionError("not subscribed in this test")


async def test_the_daemon_records_its_bots_streams_and_stops_it_before_the_feeds(
    tmp_path: Path,
) -> None:
    bot = BotConfig(id="watcher", exchange="sim", symbol=BTC, strategy="sma_cross")
    with trio.fail_after(60):
        async with open_exchange_server("binance", (BTC,), rate_hz=200.0) as server:
            config = Config(
                exchanges=(ExchangeConfig(name="sim", protocol="binance", url=server.ws_url),),
                journal=JournalConfig(path=str(tmp_path / "journal.sqlite3"), fsync=False),
                http=HttpConfig(enabled=False),
                bots=(bot,),
                record=RecordConfig(dir=str(tmp_path / "rec"), flush_s=0.1, raw_frames=True),
            )
            async with open_supervisor(config) as sup:
                recorder = sup.tree.recorder
                assert recorder is not None
                async with sup.subscribe("sim", "trade", BTC) as trades:
                    seen = [await next_of(trades, Trade) for _ in range(30)]
    stats = recorder.statistics()
    # stopped before the feeds: its last flush has all it received, compacted
    assert stats.rows_written == stats.rows_received >= 30
    assert recorded_streams(tmp_path / "rec") == [
        ("sim", "ticker", BTC),
        ("sim", "trade", BTC),
    ]
    assert segments(tmp_path / "rec") == []
    recorded = list(read_events(tmp_path / "rec"))
    assert len(recorded) == stats.rows_written
    assert all(trade in recorded for trade in seen)
    raw = list(read_raw_frames(tmp_path / "rec", "sim"))
    assert len(raw) == stats.frames_written == stats.frames_received > 0  # every frame


def segments(root: Path) -> list[Path]:
    return list(root.rglob("_seg-*"))


def test_events_go_to_the_utc_day_of_their_receipt(tmp_path: Path) -> None:
    recorder = Recorder(RecordConfig(dir=str(tmp_path)), never_called, [])
    record = recorder._handler("binance", "trade", BTC)
    midnight = 1_780_099_200.0  # 2026-05-30 00:00 UTC
    for ts in (midnight - 0.5, midnight, midnight + 0.5):
        record(trade(0, ts=ts))
    assert sorted(p.date for p in recorder._pending) == ["2026-05-29", "2026-05-30"]
    assert [len(rows) for _, rows in sorted(recorder._pending.items())] == [1, 2]
