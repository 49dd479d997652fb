"""Raw frames: recorded at the connection, replayed through a local Binance server, they give
the events the plane delivered when they were recorded (real sockets, codecs, connections)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.messages import Ticker, Trade
from actors.recording.config import RecordConfig
from actors.recording.raw import market_frames, read_raw_frames
from actors.recording.reader import read_events
from actors.recording.recorder import Recorder
from actors.simulator import open_exchange_server
from supervisor.config import ExchangeConfig
from tests.market_data.helpers import config_for, next_of, open_plane

ROOT = Path(__file__).resolve().parents[2]

BTC = "BTC/USDT"
STREAMS = [("binance", "ticker", BTC), ("binance", "trade", BTC)]


def timeless(event: Ticker | Trade) -> Ticker | Trade:
    return attrs.evolve(event, received_ts=0.0)


async def record(root: Path) -> None:
    config = RecordConfig(dir=str(root), flush_s=0.2, bot_streams=False, raw_frames=True)
    sink: list[Recorder] = []

    def on_frames(*args: Any) -> None:
        sink[0].take_frames(*args)

    async with (
        open_exchange_server("binance", (BTC,), rate_hz=300.0) as server,
        open_plane([config_for(server)], on_frames=on_frames) as md,
        trio.open_nursery() as nursery,
    ):
        recorder = Recorder(config, md.subscribe_handler, STREAMS)
        sink.append(recorder)
        await nursery.start(recorder.run)
        async with md.subscribe("binance", "trade", BTC) as trades:
            for _ in range(60):
                await next_of(trades, Trade)
        nursery.cancel_scope.cancel()
    assert recorder.statistics().frames_received >= 60


async def test_raw_frames_replayed_through_the_local_server_give_the_recorded_events(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        await record(tmp_path)
    raw = list(read_raw_frames(tmp_path, "binance"))
    assert any(isinstance(f.frame, str) and '"result"' in f.frame for f in raw)  # replies too
    frames = list(market_frames(raw, "binance"))
    recorded = [timeless(e) for e in read_events(tmp_path)]
    recorded_trades = [e for e in recorded if isinstance(e, Trade)]

    replayed_trades: list[Trade] = []
    with trio.fail_after(30):
        async with (
            open_exchange_server("binance", (BTC,), rate_hz=0.0) as server,
            open_plane([config_for(server)]) as md,
            md.subscribe("binance", "ticker", BTC) as tickers,
            md.subscribe("binance", "trade", BTC) as trades,
        ):
            await md.wait_streaming("binance")
            sent = await server.replay_frames(frames)
            assert sent == len(frames)
            wanted = sum('@trade"' in f for f in frames if isinstance(f, str))
            while len(replayed_trades) < wanted:
                replayed_trades.append(timeless(await next_of(trades, Trade)))
            last_ticker = timeless(await next_of(tickers, Ticker))
            while True:  # the newest ticker after the replay
                try:
                    item = tickers.receive_nowait()
                except trio.WouldBlock:
                    break
                if isinstance(item, Ticker):
                    last_ticker = timeless(item)

    # the recorder's trades are those of the frames, decoded again by a live codec: equal
    first = replayed_trades.index(recorded_trades[0])
    overlap = recorded_trades[: len(replayed_trades) - first]
    assert len(overlap) >= 50
    assert replayed_trades[first : first + len(overlap)] == overlap
    # the newest ticker was recorded, unless it came after the recorder's handlers were detached
    recorded_tickers = [e for e in recorded if isinstance(e, Ticker)]
    assert last_ticker in recorded_tickers or recorded_tickers[-1].sequence < (
        last_ticker.sequence or 0
    )


async def test_recorded_frames_replayed_from_the_command_line_reach_a_client(
    tmp_path: Path,
) -> None:
    """``python -m actors.replay.frames binance DIR``: what a daemon would get."""
    with trio.fail_after(30):
        await record(tmp_path)
    frames = list(market_frames(read_raw_frames(tmp_path, "binance"), "binance"))
    wanted = sum('@trade"' in f for f in frames if isinstance(f, str))
    recorded_trades = [timeless(e) for e in read_events(tmp_path) if isinstance(e, Trade)]
    got: list[Trade] = []
    enough = trio.Event()

    def on_trade(item: object) -> None:
        if isinstance(item, Trade):
            got.append(timeless(item))
            if len(got) >= wanted:
                enough.set()

    command = [sys.executable, "-m", "actors.replay.frames", "binance", str(tmp_path)]
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            [*command, "--symbols", BTC, "--speed", "0"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            log = ""
            while "simulator listening" not in log:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, log
                log += chunk.decode()
            ws_url = re.search(r"'ws_url': '(ws://127\.0\.0\.1:\d+[^']*)'", log)
            assert ws_url is not None, log
            config = ExchangeConfig(name="binance", protocol="binance", url=ws_url.group(1))
            async with (
                open_plane([config]) as md,
                md.subscribe_handler("binance", "trade", BTC, on_trade),
            ):
                await enough.wait()
            while "replay done" not in log:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, log
                log += chunk.decode()
            assert f"'frames': {len(frames)}" in log
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    first = got.index(recorded_trades[0])
    overlap = recorded_trades[: len(got) - first]
    assert len(overlap) >= 50
    assert got[first : first + len(overlap)] == overlap


def test_a_replay_with_nothing_to_replay_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "actors.replay.frames", "binance", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"no raw frames of 'binance' under {tmp_path}" in done.stderr
