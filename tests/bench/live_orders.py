"""Live order round trip against the local Binance venue (a script, not a test), run by path.

``python tests/bench/live_orders.py [--orders N] [--rounds R]`` places ``N`` small MARKET buys
per round, ``R`` interleaved rounds, two ways, on 127.0.0.1:

* **bare**: one signed ``POST /api/v3/order`` with httpx and the HMAC signer, timed from the
  call to the parsed FULL answer: the floor of any client of this venue on this machine;
* **account**: ``BinanceAccount.submit`` (venue rules, account caps, the order's tracker,
  signing, the same POST, the answer classified, fills deduplicated and reported), timed
  from the call to the report of its final fill.

Prints p50 / p99 of each and the ratios account / bare, with the machine. The venue runs in
process on the same Trio loop as both clients (it is the same work for both), with the
prices still (``rate_hz = 0``): each buy fills at once. The user data stream is subscribed in
the account case, so its copy of every fill is received and dropped as a duplicate during
the measurement, as in production. Logging is off.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import trio
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.simulator import BinanceVenue, open_binance_venue
from actors.venues.binance.account import BinanceAccount, LiveOrder
from actors.venues.binance.config import AccountConfig
from actors.venues.binance.signing import HmacSigner, sign_request
from actors.venues.binance.tracker import VenueFillReport, VenueReport

SYMBOL = "BTC/USDT"
QUANTITY = Decimal("0.001")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def bare(venue: BinanceVenue, orders: int, start: int) -> list[float]:
    signer = HmacSigner(venue.api_key, venue.secret)
    out = []
    async with httpx.AsyncClient(base_url=venue.rest_url) as http:
        for i in range(orders):
            params = [
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "MARKET"),
                ("quantity", str(QUANTITY)),
                ("newClientOrderId", f"bare_{start + i}"),
                ("newOrderRespType", "FULL"),
            ]
            t0 = time.perf_counter()
            signed = sign_request(signer, body=params, timestamp_ms=venue.server_time_ms())
            response = await http.post(
                "/api/v3/order",
                content=signed.body,
                headers={
                    "X-MBX-APIKEY": venue.api_key,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            body = orjson.loads(response.content)
            out.append(time.perf_counter() - t0)
            if response.status_code != 200 or body["status"] != "FILLED":
                raise RuntimeError(f"bare order failed: {response.status_code} {body}")
    return out


async def through_account(account: BinanceAccount, orders: int, start: int) -> list[float]:
    out = []
    for i in range(orders):
        done = trio.Event()

        def sink(report: VenueReport, done: trio.Event = done) -> None:
            if isinstance(report, VenueFillReport) and report.final:
                done.set()

        order = LiveOrder(
            f"bcf_bench_{start + i}", SYMBOL, "buy", "market", QUANTITY, None, Decimal("70000")
        )
        t0 = time.perf_counter()
        await account.submit(order, sink)
        await done.wait()
        out.append(time.perf_counter() - t0)
    return out


async def main(orders: int, rounds: int) -> None:
    balances = {"USDT": Decimal("100000000"), "BTC": Decimal("0")}
    async with open_binance_venue((SYMBOL,), seed=3, rate_hz=0.0, balances=balances) as venue:
        # The venue's own limits (orders per 10 s, weight per minute) are not what is measured.
        venue.set_order_limits(per_10s=10**9, per_day=10**9)
        venue.set_request_weight_limit(10**9)
        config = AccountConfig(
            name="bench",
            api_key_env="UNUSED",
            api_secret_env="UNUSED",
            rest_url=venue.rest_url,
            ws_api_url=venue.ws_api_url,
            max_order_quote=Decimal("1000000"),
            max_working_quote=Decimal("1000000"),
        )
        account = BinanceAccount(config, HmacSigner(venue.api_key, venue.secret), (SYMBOL,))
        async with trio.open_nursery() as nursery:
            await nursery.start(account.run)
            await bare(venue, 20, 10_000_000)  # warm both paths up
            await through_account(account, 20, 10_000_000)
            results: dict[str, list[float]] = {"bare": [], "account": []}
            for r in range(rounds):
                results["bare"] += await bare(venue, orders, r * orders)
                results["account"] += await through_account(account, orders, r * orders)
            nursery.cancel_scope.cancel()
    b, a = results["bare"], results["account"]
    print(f"{len(b)} orders each way, {rounds} interleaved rounds")
    for name, values in results.items():
        print(
            f"  {name:8s} p50 {percentile(values, 50) * 1e3:7.2f} ms"
            f"   p99 {percentile(values, 99) * 1e3:7.2f} ms"
        )
    print(
        f"  account / bare: p50 {percentile(a, 50) / percentile(b, 50):.2f}x"
        f"   p99 {percentile(a, 99) / percentile(b, 99):.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logger.remove()
    load = os.getloadavg()
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average at start"
        f" {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    trio.run(main, args.orders, args.rounds)
