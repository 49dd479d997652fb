"""Recorded raw frames served by a local exchange server, for any client (a daemon included):

    python -m actors.replay.frames binance data/recording --ws-port 9001 --speed 0

The server (``actors.simulator``, with its market model silent) waits for a client to
subscribe, then sends the market-data frames recorded under the directory
(``[record] raw_frames = true``; ``actors.recording.raw.market_frames``) to every client,
paced as recorded (``--speed``: 10 is ten times faster, 0 as fast as the sockets take them),
and logs ``replay done`` with the count. The client's own subscriptions are answered by the
server, not replayed. It then goes on serving, with no data, until Ctrl-C or SIGTERM.

Why here and not in the simulator's command line: the simulator and the recording are
siblings that do not import each other; replay sits above both.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterable
from pathlib import Path

import trio
from loguru import logger

from actors.exchanges import PROTOCOLS
from actors.recording.format import RawFrame
from actors.recording.raw import market_raw_frames, read_raw_frames
from actors.simulator.server import ExchangeServer, log_to_stderr, run_exchange_server

__all__ = ["main", "replay_frames"]

PROG = "python -m actors.replay.frames"


async def replay_frames(server: ExchangeServer, frames: Iterable[RawFrame], speed: float) -> int:
    """Send ``frames`` through ``server`` to its clients, paced by their receipt times divided
    by ``speed`` (0: no pacing); returns the frames sent (summed over connections)."""
    sent = 0
    first: float | None = None
    started = trio.current_time()
    for raw in frames:
        if speed > 0:
            first = raw.received_ts if first is None else first
            await trio.sleep_until(started + (raw.received_ts - first) / speed)
        sent += await server.replay_frames([raw.frame])
    return sent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.partition("\n")[0])
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("dir", help="the [record] dir the frames were recorded under")
    parser.add_argument("--exchange", help="the recorded exchange's name (default: PROTOCOL)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="1 as recorded, 10 ten times faster, 0 no pacing"
    )
    parser.add_argument("--symbols", default="", help="comma-separated, e.g. BTC/USDT,ETH/USDT")
    parser.add_argument("--ws-port", type=int, default=0, help="WebSocket port (0: any free)")
    parser.add_argument("--rest-port", type=int, default=0, help="REST port (0: any free)")
    parser.add_argument("--host", default="127.0.0.1")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log_to_stderr()  # a standalone tool: its own plain stderr sink
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    root = Path(args.dir)
    exchange = args.exchange or args.protocol
    try:
        if args.speed < 0:
            raise ValueError(f"--speed must be >= 0, got {args.speed}")
        ExchangeServer(args.protocol, symbols, rate_hz=0.0)  # checks the symbols
        if next(iter(read_raw_frames(root, exchange)), None) is None:
            raise ValueError(
                f"no raw frames of {exchange!r} under {root} (recorded with [record]"
                " raw_frames = true; --exchange names another recorded exchange)"
            )
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    trio.run(_serve, args, symbols, root, exchange)
    return 0


async def _serve(
    args: argparse.Namespace, symbols: tuple[str, ...], root: Path, exchange: str
) -> None:
    """Serve and replay until Ctrl-C or SIGTERM, which stop it by cancellation."""
    log = logger.bind(actor="replay")
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server: ExchangeServer = await nursery.start(
                lambda task_status: run_exchange_server(
                    args.protocol,
                    symbols,
                    rate_hz=0.0,
                    host=args.host,
                    ws_port=args.ws_port,
                    rest_port=args.rest_port,
                    task_status=task_status,
                )
            )

            async def replay() -> None:
                log.info("waiting for a client to subscribe", dir=str(root), exchange=exchange)
                await server.wait_for(lambda s: bool(s.statistics().subscribers))
                frames = market_raw_frames(read_raw_frames(root, exchange), args.protocol)
                log.info("replay done", frames=await replay_frames(server, frames, args.speed))

            nursery.start_soon(replay)
            async for _ in signals:
                nursery.cancel_scope.cancel(reason="signal")
                return


if __name__ == "__main__":
    sys.exit(main())
