"""``python -m actors.simulator``: a standalone local exchange for running configs by hand."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio

ROOT = Path(__file__).resolve().parents[2]


async def test_the_standalone_server_serves_its_protocol_until_interrupted() -> None:
    with trio.fail_after(20):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "actors.simulator", "binance", "--symbols", "BTC/USDT"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            text = ""
            while "simulator listening" not in text:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, text
                text += chunk.decode()
            rest_url = re.search(r"'rest_url': '(http://127\.0\.0\.1:\d+)'", text).group(1)
            async with httpx.AsyncClient() as client:
                response = await client.get(
                    rest_url + "/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}
                )
            assert response.json()["symbol"] == "BTCUSDT"
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
