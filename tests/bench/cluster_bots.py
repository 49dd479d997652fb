"""Bots across a cluster (a script, not a test): ``python tests/bench/cluster_bots.py``.

``--bots`` paper bots (default 1,000) on ``--symbols`` Binance tickers of a simulator in a child
process, the journal in PostgreSQL (``BCF_TEST_POSTGRES_URL``, a fresh schema per phase):

* **single** (the baseline): one ``run.py`` daemon runs every bot, no ``[cluster]``.
* **cluster**: four ``run.py`` daemons from one config with ``bot_placement = "cluster"``: one
  ``feed`` node (leads the exchange, runs no bots) and three ``bots`` nodes, sharing the feed
  and the bots through Redis (``BCF_TEST_REDIS_URL``, a fresh key prefix).

Once every bot runs (``/health``), each phase measures over ``--window`` seconds: bot-ticks/s
(the bots' ``botcriptofy_bot_ticks`` counters from every node's ``/metrics``), the p50/p99 of
the tick-to-decision latency (the ``botcriptofy_bot_decision_latency_seconds`` histograms summed
over the bots; the bucket's upper bound is reported, so it is a ceiling), orders/s, and journal
writes/s in PostgreSQL (rows inserted and updated in the phase's schema, from
``pg_stat_user_tables``). Then the cluster's figures as ratios to the single daemon's.

The bots run ``sma_cross`` (fast 3, slow 8 ticks), which trades on every cross of the two, so
the journal is busy (the per-bot order cap is raised so that the strategy sets the pace).
Logging at WARNING. Machine state is printed before and after: on 2 shared cores the four
daemons, the simulator and the two servers share the two cores the single daemon had.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bots import machine  # noqa: E402
from tests.cluster.conftest import redis_url  # noqa: E402
from tests.e2e.helpers import write_config  # noqa: E402
from tests.postgres import fresh_schema, require_server  # noqa: E402

SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "TRX", "DOT", "LTC", "LINK", "AVAX"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(args: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def bots(count: int, symbols: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"bot{i:04d}",
            "exchange": "sim",
            "symbol": f"{symbols[i % len(symbols)]}/USDT",
            "strategy": "sma_cross",
            "params": {"fast": 3, "slow": 8},
            "order_quote": "10",
            "risk": {"max_orders_per_minute": 600},  # the strategy sets the pace, not the cap
        }
        for i in range(count)
    ]


def wait_running(url: str, expected: int, limit_s: float) -> float:
    started = time.monotonic()
    deadline = started + limit_s
    seen = 0
    while time.monotonic() < deadline:
        try:
            body = httpx.get(f"{url}/health", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            time.sleep(0.5)
            continue
        states = [e.get("state") for e in body.get("bots", {}).values()]
        seen = sum(1 for s in states if s == "running")
        if seen >= expected:
            return time.monotonic() - started
        time.sleep(0.5)
    raise SystemExit(f"only {seen} of {expected} bots running after {limit_s} s")


def scrape(urls: Sequence[str]) -> dict[str, Any]:
    ticks = orders = 0.0
    buckets: dict[float, float] = {}
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=30).text
        for family in text_string_to_metric_families(text):
            if family.name == "botcriptofy_bot_ticks":
                ticks += sum(s.value for s in family.samples if s.name.endswith("_total"))
            elif family.name == "botcriptofy_bot_orders":
                orders += sum(s.value for s in family.samples if s.name.endswith("_total"))
            elif family.name == "botcriptofy_bot_decision_latency_seconds":
                for sample in family.samples:
                    if sample.name.endswith("_bucket"):
                        bound = float(sample.labels["le"])
                        buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return {"ticks": ticks, "orders": orders, "buckets": buckets}


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]  # cumulative
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return float("nan")
    for bound, count in zip(bounds, counts, strict=True):
        if count >= q * total:
            return bound
    return float("inf")


def pg_writes(url: str) -> float:
    with psycopg.connect(url) as db:
        db.execute("SELECT pg_stat_force_next_flush()")
        (value,) = db.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema()"
        ).fetchone() or (0,)
    return float(value)


def pg_writes_settled(url: str) -> float:
    time.sleep(1.0)  # statistics reach pg_stat_* when a backend is idle, at most once a second
    return pg_writes(url)


WARM_UP_S = 5.0  # after the last bot started: the first orders, the cluster's first passes


def measure(name: str, bot_urls: Sequence[str], pg_url: str, window_s: float) -> dict[str, Any]:
    time.sleep(WARM_UP_S)
    first, writes_0, at_0 = scrape(bot_urls), pg_writes_settled(pg_url), time.monotonic()
    time.sleep(window_s)
    last, writes_1, at_1 = scrape(bot_urls), pg_writes_settled(pg_url), time.monotonic()
    elapsed = at_1 - at_0
    out = {
        "ticks_s": (last["ticks"] - first["ticks"]) / elapsed,
        "orders_s": (last["orders"] - first["orders"]) / elapsed,
        "p50_s": quantile(first["buckets"], last["buckets"], 0.50),
        "p99_s": quantile(first["buckets"], last["buckets"], 0.99),
        "writes_s": (writes_1 - writes_0) / elapsed,
    }
    print(
        f"{name:>8}: {out['ticks_s']:9.0f} bot-ticks/s  {out['orders_s']:7.1f} orders/s  "
        f"decision p50 <= {out['p50_s'] * 1000:.0f} ms  p99 <= {out['p99_s'] * 1000:.0f} ms  "
        f"journal {out['writes_s']:7.0f} row writes/s (PostgreSQL)",
        flush=True,
    )
    return out


def base_config(args: argparse.Namespace, ws_port: int, pg_url: str) -> dict[str, Any]:
    return {
        "logging": {"level": "WARNING"},
        "journal": {"url": pg_url, "fsync": False},
        "exchanges": [
            {"name": "sim", "protocol": "binance", "url": f"ws://127.0.0.1:{ws_port}/stream"}
        ],
        "bots": bots(args.bots, SYMBOLS[: args.symbols]),
    }


def daemon(config: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable, str(ROOT / "run.py"), "--config", str(config), "--http-port", str(port),
        "--log-level", "WARNING", *extra,
    ]  # fmt: skip


def single(args: argparse.Namespace, ws_port: int, tmp: Path, server: str) -> dict[str, Any]:
    with fresh_schema(server) as pg_url, ExitStack() as stack:
        config = write_config(tmp / "single.toml", base_config(args, ws_port, pg_url))
        port = free_port()
        stack.enter_context(process(daemon(config, port), tmp / "single.log"))
        url = f"http://127.0.0.1:{port}"
        took = wait_running(url, args.bots, args.limit)
        print(f"  single: {args.bots} bots running after {took:.1f} s", flush=True)
        return measure("single", [url], pg_url, args.window)


def cluster(args: argparse.Namespace, ws_port: int, tmp: Path, server: str) -> dict[str, Any]:
    with fresh_schema(server) as pg_url, ExitStack() as stack:
        raw = base_config(args, ws_port, pg_url)
        raw["cluster"] = {
            "redis_url": redis_url(),
            "namespace": f"bcf-bench:{uuid.uuid4().hex[:12]}",
            "bot_placement": "cluster",
            "lease_ttl_s": args.ttl,
        }
        config = write_config(tmp / "cluster.toml", raw)
        nodes = {"feed": "feed", "n1": "bots", "n2": "bots", "n3": "bots"}
        urls = {}
        for name, roles in nodes.items():
            port = free_port()
            extra = ("--node", name, "--roles", roles)
            stack.enter_context(process(daemon(config, port, *extra), tmp / f"{name}.log"))
            urls[name] = f"http://127.0.0.1:{port}"
        took = wait_running(urls["feed"], args.bots, args.limit)
        print(f"  cluster: {args.bots} bots running after {took:.1f} s", flush=True)
        health = httpx.get(f"{urls['feed']}/health", timeout=10).json()
        per_node: dict[str, int] = {}
        for entry in health["bots"].values():
            per_node[entry["node"]] = per_node.get(entry["node"], 0) + 1
        print(f"  cluster: bots per node {dict(sorted(per_node.items()))}", flush=True)
        bot_urls = [u for n, u in urls.items() if nodes[n] == "bots"]
        return measure("cluster", bot_urls, pg_url, args.window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bots", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5.0, help="tickers/s per symbol")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--ttl", type=float, default=3.0, help="[cluster] lease_ttl_s")
    parser.add_argument("--limit", type=float, default=180.0, help="seconds to start the bots")
    parser.add_argument("--logs", metavar="DIR", help="keep the daemons' logs and configs here")
    args = parser.parse_args()
    server = require_server_or_exit()
    print(f"machine: {machine()}", flush=True)
    print(
        f"{args.bots} paper bots, {args.symbols} symbols x {args.rate:g} tickers/s,"
        f" window {args.window:g} s",
        flush=True,
    )
    ws_port, rest_port = free_port(), free_port()
    symbols = ",".join(f"{s}/USDT" for s in SYMBOLS[: args.symbols])
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(args.logs or tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        stack.enter_context(
            process(
                [
                    sys.executable, "-m", "actors.simulator", "binance", "--ws-port",
                    str(ws_port), "--rest-port", str(rest_port), "--symbols", symbols,
                    "--rate", str(args.rate), "--seed", "1",
                ],
                tmp / "simulator.log",
            )
        )  # fmt: skip
        time.sleep(1.0)
        base = single(args, ws_port, tmp, server)
        spread = cluster(args, ws_port, tmp, server)
    print(
        "cluster / single: "
        f"bot-ticks/s x{spread['ticks_s'] / base['ticks_s']:.2f}, "
        f"p99 x{spread['p99_s'] / base['p99_s']:.2f}, "
        f"journal writes/s x{spread['writes_s'] / max(base['writes_s'], 1e-9):.2f}"
    )
    print(f"machine: {machine()}", flush=True)


def require_server_or_exit() -> str:
    try:
        return require_server()
    except BaseException as exc:  # pytest.fail outside pytest: say it and stop
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
