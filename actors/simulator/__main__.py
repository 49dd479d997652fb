"""A local exchange server on fixed ports, for running a config such as
``docs/examples/local.toml`` by hand:

    python -m actors.simulator binance --ws-port 9001 --rest-port 9011 --symbols BTC/USDT,ETH/USDT
    python -m actors.simulator kraken --ws-port 9002 --rest-port 9012 --symbols BTC/USD,ETH/USD

It serves until Ctrl-C. Bound to 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from actors.exchanges import PROTOCOLS
from actors.simulator.server import ExchangeServer, log_to_stderr, run_exchange_server


def _parser(prog: str = "python -m actors.simulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.partition("\n")[0])
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("--symbols", default="", help="comma-separated, e.g. BTC/USDT,ETH/USDT")
    parser.add_argument("--ws-port", type=int, default=0, help="WebSocket port (0: any free)")
    parser.add_argument("--rest-port", type=int, default=0, help="REST port (0: any free)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=4.0, help="events per second per stream")
    return parser


def main(argv: list[str] | None = None, *, prog: str = "python -m actors.simulator") -> int:
    """``prog``: the usage line's command (``botcriptofy simulator`` from the CLI)."""
    args = _parser(prog).parse_args(argv)
    log_to_stderr()  # a standalone tool: its own plain stderr sink
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    serve = partial(
        run_exchange_server,
        args.protocol,
        symbols,
        seed=args.seed,
        rate_hz=args.rate,
        host=args.host,
        ws_port=args.ws_port,
        rest_port=args.rest_port,
    )
    try:
        ExchangeServer(args.protocol, symbols, rate_hz=args.rate)  # checks symbols and rate
    except ValueError as exc:
        print(f"python -m actors.simulator: {exc}", file=sys.stderr)
        return 2
    trio.run(_serve_until_signalled, serve)
    return 0


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
