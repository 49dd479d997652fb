"""A local exchange server on fixed ports, for running a config such as
``docs/examples/local.toml`` by hand:

    python -m actors.simulator binance --ws-port 9001 --rest-port 9011 --symbols BTC/USDT,ETH/USDT
    python -m actors.simulator kraken --ws-port 9002 --rest-port 9012 --symbols BTC/USD,ETH/USD

It serves until Ctrl-C. Bound to 127.0.0.1 unless ``--host`` says otherwise.

``--replay-frames DIR`` serves recorded traffic instead of the market model: the raw frames a
daemon recorded under DIR (``[record] raw_frames = true``), the market-data ones
(``actors.recording.raw.market_frames``), sent to every client once one has subscribed, paced
as recorded (``--speed``: 10 is ten times faster, 0 as fast as the sockets take them). The
client's own subscriptions are answered by the server, not replayed. The server then goes on
serving, with no data, until Ctrl-C; the log says how many frames went out.

    python -m actors.simulator binance --ws-port 9001 --replay-frames data/rec --speed 0
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import trio
from loguru import logger

from actors.exchanges import PROTOCOLS
from actors.simulator.server import ExchangeServer, run_exchange_server


def _parser(prog: str = "python -m actors.simulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.partition("\n")[0])
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("--symbols", default="", help="comma-separated, e.g. BTC/USDT,ETH/USDT")
    parser.add_argument("--ws-port", type=int, default=0, help="WebSocket port (0: any free)")
    parser.add_argument("--rest-port", type=int, default=0, help="REST port (0: any free)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=4.0, help="events per second per stream")
    parser.add_argument(
        "--replay-frames",
        metavar="DIR",
        help="send the raw frames recorded under DIR instead of simulated data",
    )
    parser.add_argument(
        "--exchange", help="with --replay-frames: the recorded exchange's name (default: PROTOCOL)"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="with --replay-frames: 1 as recorded, 10 ten times faster, 0 as fast as possible",
    )
    return parser


def main(argv: list[str] | None = None, *, prog: str = "python -m actors.simulator") -> int:
    """``prog``: the usage line's command (``botcriptofy simulator`` from the CLI)."""
    args = _parser(prog).parse_args(argv)
    logger.remove()  # a standalone tool: its own plain stderr sink
    logger.add(
        sys.stderr,
        level="INFO",
        format="{time:HH:mm:ss.SSS} | {level: <8} | {message} | {extra}",
        diagnose=False,
    )
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    rate = 0.0 if args.replay_frames else args.rate  # a replay sends recorded data only
    serve: Callable[..., Awaitable[None]] = partial(
        run_exchange_server,
        args.protocol,
        symbols,
        seed=args.seed,
        rate_hz=rate,
        host=args.host,
        ws_port=args.ws_port,
        rest_port=args.rest_port,
    )
    try:
        ExchangeServer(args.protocol, symbols, rate_hz=rate)  # checks symbols and rate
        if args.replay_frames:
            serve = _replayed(serve, args)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    trio.run(_serve_until_signalled, serve)
    return 0


def _replayed(
    serve: Callable[..., Awaitable[None]], args: argparse.Namespace
) -> Callable[[], Awaitable[None]]:
    """``serve``, and the recorded frames sent once a client has subscribed. ValueError (for
    the usage line) if there is nothing to replay."""
    from actors.recording.raw import market_raw_frames, read_raw_frames  # pyarrow: only here

    if args.speed < 0:
        raise ValueError(f"--speed must be >= 0, got {args.speed}")
    root = Path(args.replay_frames)
    exchange = args.exchange or args.protocol
    if next(iter(read_raw_frames(root, exchange)), None) is None:
        raise ValueError(
            f"no raw frames of {exchange!r} under {root} (recorded with [record] raw_frames = true;"
            " --exchange names another recorded exchange)"
        )

    async def serve_and_replay() -> None:
        log = logger.bind(actor="replay")
        async with trio.open_nursery() as nursery:
            server: ExchangeServer = await nursery.start(serve)
            log.info("waiting for a client to subscribe", dir=str(root), exchange=exchange)
            await server.wait_for(lambda s: bool(s.statistics().subscribers))
            frames = market_raw_frames(read_raw_frames(root, exchange), args.protocol)
            sent = 0
            first: float | None = None
            started = trio.current_time()
            for raw in frames:
                if args.speed > 0:
                    first = raw.received_ts if first is None else first
                    await trio.sleep_until(started + (raw.received_ts - first) / args.speed)
                sent += await server.replay_frames([raw.frame])
            log.info("replay done", frames=sent)

    return serve_and_replay


async def _serve_until_signalled(serve: Callable[..., Awaitable[None]]) -> None:
    """Ctrl-C and SIGTERM stop the server by cancellation, like the daemon."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            async for _ in signals:
                nursery.cancel_scope.cancel(reason="signal")
                return


if __name__ == "__main__":
    sys.exit(main())
