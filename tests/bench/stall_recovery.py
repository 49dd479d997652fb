"""Half-open stall recovery benchmark (a script, not a test), run by path.

``python tests/bench/stall_recovery.py [--stalls N] [--no-abort]`` runs ``--stalls`` half-open
stalls (default 20) per transport engine, in real time, against the local Binance simulator:
the supervised market-data plane carries one ticker stream at 10 Hz with ``stale_after_s =
1.5`` and a small backoff (full jitter, drawn in ``[0, 0.1]`` s); each stall is
``ExchangeServer.stall_open_connections`` (the socket stays open, nothing comes, a close frame
is never answered). Recovery is the time from the stall to the first ticker of the replacement
connection. Prints, per engine, its p50 / p99 / max; the bound ``stale_after_s + backoff
ceiling + 0.5 s`` and p99 / bound; and the part the watchdog and the backoff do not explain,
``recovery - stale_after_s - the backoff delay actually drawn`` (reconnect, resubscribe, the
feed's first step one period later, and, without ``Transport.abort``, the
``disconnect_timeout_s`` spent waiting for a close reply).

Decisions:

* The server runs **in process**: the stall is a method call on it, and what is measured is
  seconds of waiting, not CPU, so sharing the loop costs nothing that matters here.
* ``--no-abort`` makes ``abort()`` a no-op on both engines: the courteous close on a dead
  socket, i.e. the behaviour before the fix, for comparison.
* The backoff delay drawn is read from the supervisor's own events (``backoff`` -> ``starting``
  of the connections child), so the excess figure does not depend on the jitter.
* The breaker and the restart intensity are set out of reach: every stall is a failure by
  design, and the run measures recovery, not the breaker. Logging is off.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import trio
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.market_data.config import TRANSPORT_ENGINES, TransportEngine
from actors.market_data.transport import TrioWebsocketTransport, WsprotoTransport
from actors.messages import FeedState, Ticker
from actors.simulator import ExchangeServer, open_exchange_server
from supervisor.config import BackoffPolicy, BreakerPolicy, ExchangeConfig
from supervisor.feeds import connections_child, open_market_data
from supervisor.otp.events import ChildStateChanged, SupervisionEvent

SYMBOL = "BTC/USDT"
RATE_HZ = 10.0
STALE_AFTER_S = 1.5
BACKOFF = BackoffPolicy(initial_s=0.1, multiplier=1.0, max_s=0.1, reset_after_s=1.0)
MARGIN_S = 0.5
STALL_LIMIT_S = 15.0  # one stall's recovery; far above the ~4 s of the courteous close


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def next_ticker(events: Any, *, after_down: bool) -> None:
    """The next ticker; with ``after_down``, the first one after the stream was told down
    (the old socket is silent, so it comes from the replacement)."""
    down = not after_down
    async for item in events:
        if isinstance(item, FeedState) and item.state == "down":
            down = True
        elif down and isinstance(item, Ticker):
            return
    raise RuntimeError("the subscription ended")


async def measure(engine: TransportEngine, stalls: int) -> list[tuple[float, float]]:
    """``(recovery_s, backoff_drawn_s)`` per stall."""
    changes: list[ChildStateChanged] = []

    def observe(event: SupervisionEvent) -> None:
        if isinstance(event, ChildStateChanged) and event.child == connections_child("binance"):
            changes.append(event)

    results: list[tuple[float, float]] = []
    async with open_exchange_server("binance", (SYMBOL,), rate_hz=RATE_HZ) as server:
        config = ExchangeConfig(
            name="binance", url=server.ws_url, stale_after_s=STALE_AFTER_S, transport=engine
        )
        async with (
            open_market_data(
                [config],
                backoff=BACKOFF,
                circuit_breaker=BreakerPolicy(failure_threshold=10_000, reset_timeout_s=1.0),
                restart_limits=(10_000, 60.0),
                rng=random.Random(1),
                observers=(observe,),
            ) as md,
            md.subscribe("binance", "ticker", SYMBOL) as events,
        ):
            await md.wait_streaming("binance")
            for _ in range(stalls):
                await next_ticker(events, after_down=False)
                changes.clear()
                stalled_at = trio.current_time()
                with trio.fail_after(STALL_LIMIT_S):
                    server.stall_open_connections()
                    await next_ticker(events, after_down=True)
                    recovery_s = trio.current_time() - stalled_at
                    await server.wait_for(_one_connection)  # the dead one was closed and freed
                backoff_at = next(c.at for c in changes if c.to_state == "backoff")
                restart_at = next(
                    c.at for c in changes if c.to_state == "starting" and c.at > backoff_at
                )
                results.append((recovery_s, restart_at - backoff_at))
    return results


def _one_connection(server: ExchangeServer) -> bool:
    return server.statistics().connected == 1


def without_abort() -> None:
    """The behaviour before ``Transport.abort``: a dead socket gets the courteous close."""

    def ignore(self: object) -> None:
        pass

    WsprotoTransport.abort = ignore  # type: ignore[method-assign]
    TrioWebsocketTransport.abort = ignore  # type: ignore[method-assign]


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stalls", type=int, default=20, help="stalls per engine (default 20)")
    parser.add_argument(
        "--no-abort", action="store_true", help="courteous close on dead sockets (before the fix)"
    )
    args = parser.parse_args()
    logger.remove()
    if args.no_abort:
        without_abort()

    bound_s = STALE_AFTER_S + BACKOFF.max_s + MARGIN_S
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    for engine in TRANSPORT_ENGINES:
        results = trio.run(measure, engine, args.stalls)
        recovery = [r for r, _ in results]
        excess = [r - STALE_AFTER_S - b for r, b in results]
        p99 = percentile(recovery, 99)
        figures[engine] = {
            "recovery_s": {
                "p50": percentile(recovery, 50),
                "p99": p99,
                "max": max(recovery),
            },
            "excess_s": {
                "p50": percentile(excess, 50),
                "p99": percentile(excess, 99),
                "max": max(excess),
            },
            "bound_s": bound_s,
            "p99_over_bound": p99 / bound_s,
        }
        rows.append(
            [
                engine,
                str(len(results)),
                f"{percentile(recovery, 50):.3f}",
                f"{p99:.3f}",
                f"{max(recovery):.3f}",
                f"{bound_s:.2f}",
                f"{p99 / bound_s:.2f}",
                f"{percentile(excess, 50):.3f}",
                f"{percentile(excess, 99):.3f}",
                f"{max(excess):.3f}",
            ]
        )
    print(
        f"Half-open stall recovery (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs),"
        f" real time: stall -> first ticker of the replacement connection;"
        f" stale_after_s={STALE_AFTER_S}, backoff drawn in [0, {BACKOFF.max_s}] s,"
        f" {RATE_HZ:.0f} Hz feed{', abort() disabled (before the fix)' if args.no_abort else ''}."
        "\n"
    )
    print(
        table(
            [
                "engine",
                "stalls",
                "p50 s",
                "p99 s",
                "max s",
                "bound s",
                "p99/bound",
                "excess p50 s",
                "excess p99 s",
                "excess max s",
            ],
            rows,
        )
    )
    print(
        f"\nbound = stale_after_s + backoff ceiling + {MARGIN_S} s; excess = recovery -"
        " stale_after_s - the backoff delay drawn for that stall."
    )
    print(f"(total {time.perf_counter() - started:.0f} s)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
