"""Journal writes/s, SQLite against PostgreSQL, through the Journal actor (a script, not a test).

``python tests/bench/journal.py [--writers 1,100] [--orders 40] [--rounds 3]`` runs, for each
writer count and for fsync on and off, ``--rounds`` interleaved rounds (the order of the two
backends alternates) of ``W`` concurrent writers, each a bot that loads itself and then, per
order, awaits ``record_intent`` and then ``record_fill`` (two writes, each committed before it
returns, as a bot's order path does). Group commit batches whatever the writers have queued.

Prints, per case, the median writes/s of each backend and PostgreSQL's ratio to SQLite (the
same-run baseline), with the machine and the server. SQLite is a file in a temp dir
(``fsync`` on: ``synchronous=FULL``); PostgreSQL is the server at ``BCF_TEST_POSTGRES_URL``
(default ``postgresql://postgres@127.0.0.1:5432/test``), a fresh schema per round (``fsync``
off: ``synchronous_commit=off``). Logging is off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import trio
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.journal import FillRecord, Journal, JournalConfig, OrderIntent
from tests.postgres import fresh_schema, server_url

D = __import__("decimal").Decimal


async def writer(journal: Journal, bot: str, orders: int) -> None:
    await journal.load_bot(bot, initial_quote=D(10000), now_ts=0.0)
    for seq in range(1, orders + 1):
        intent = OrderIntent(
            f"{bot}-{seq}", bot, seq, "BTC/USDT", "buy", "market", D("0.001"), None, "", None, 0.0
        )
        await journal.record_intent(intent)
        fill = FillRecord(intent.client_id, bot, "buy", D("100.25"), D("0.001"), D("0"), None, 0.0)
        await journal.record_fill(fill)


async def one_round(config: JournalConfig, writers: int, orders: int) -> float:
    """Writes per second of ``writers`` bots writing ``orders`` orders each."""
    journal = Journal(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        started = time.perf_counter()
        async with trio.open_nursery() as bots:
            for i in range(writers):
                bots.start_soon(writer, journal, f"w{i}", orders)
        elapsed = time.perf_counter() - started
        writes = journal.statistics().writes
        nursery.cancel_scope.cancel()
    assert writes == writers * (1 + 2 * orders), writes
    return writes / elapsed


def run_case(writers: int, orders: int, fsync: bool, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    for r in range(rounds):
        backends = ["sqlite", "postgres"] if r % 2 == 0 else ["postgres", "sqlite"]
        for backend in backends:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    config = JournalConfig(path=str(Path(tmp) / "j.sqlite3"), fsync=fsync)
                    results[backend].append(trio.run(one_round, config, writers, orders))
            else:
                with fresh_schema(server_url()) as url:
                    config = JournalConfig(url=url, fsync=fsync)
                    results[backend].append(trio.run(one_round, config, writers, orders))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", default="1,100", help="comma-separated writer counts")
    parser.add_argument("--orders", type=int, default=40, help="orders per writer")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logger.remove()
    with psycopg.connect(server_url()) as db:
        version = db.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        server_fsync = db.execute("SHOW fsync").fetchone()[0]  # type: ignore[index]
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start, "
        f"Python {sys.version.split()[0]}; PostgreSQL {version} at {server_url()} "
        f"(server fsync {server_fsync}, local TCP)"
    )
    print(f"{args.rounds} rounds, {args.orders} orders per writer (2 writes each), medians")
    print(f"{'writers':>7} {'fsync':>5} {'sqlite w/s':>11} {'postgres w/s':>13} {'pg/sqlite':>9}")
    for writers in (int(w) for w in args.writers.split(",")):
        for fsync in (True, False):
            results = run_case(writers, args.orders, fsync, args.rounds)
            sqlite = statistics.median(results["sqlite"])
            postgres = statistics.median(results["postgres"])
            print(
                f"{writers:>7} {'on' if fsync else 'off':>5} {sqlite:>11,.0f} {postgres:>13,.0f}"
                f" {postgres / sqlite:>9.2f}"
            )


if __name__ == "__main__":
    main()
