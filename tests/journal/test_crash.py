"""kill -9 a process writing batches back to back, on both backends: every batch it was told
had committed is there, no batch is there in part, and a restarted writer carries on.

The child writes batches of ``BATCH`` orders, each an intent and its fill, and prints the last
seq of each batch after ``run_batch`` returned. It is killed while it writes (it does nothing
else), so the kill lands inside a transaction almost every time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.journal.postgres import PostgresJournalStore
from actors.journal.store import JournalStore
from tests.bots.helpers import T0, D
from tests.journal.test_store import fill_of, intent

ROOT = Path(__file__).resolve().parents[2]
BATCH = 25

CHILD = rf"""
import sys
from decimal import Decimal
from actors.journal.postgres import PostgresJournalStore
from actors.journal.store import FillRecord, JournalStore, OrderIntent

kind, where = sys.argv[1:3]
store = (JournalStore if kind == "sqlite" else PostgresJournalStore)(where, fsync=False)
store.open()
seq = store.load_bot("b1", Decimal(1000), 0.0).next_seq
while True:
    ops = []
    for _ in range({BATCH}):
        intent = OrderIntent(f"b1-{{seq}}", "b1", seq, "BTC/USDT", "buy", "market",
                             Decimal(1), None, "", None, 0.0)
        fill = FillRecord(intent.client_id, "b1", "buy", Decimal(100), Decimal(1), Decimal(0),
                          None, 0.0)
        ops += [("record_intent", (intent,)), ("record_fill", (fill, "filled"))]
        seq += 1
    for result in store.run_batch(ops):
        result.unwrap()
    print(seq - 1, flush=True)
"""


def run_and_kill(kind: str, where: str, after_orders: int) -> int:
    """Run the child until it reports ``after_orders`` more committed orders, SIGKILL it;
    returns the last count it reported."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, where], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    reported: list[int] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            reported.append(int(line))
            if reported[-1] - reported[0] >= after_orders:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL, "the child stopped by itself"
    return reported[-1]


def check(kind: str, where: str, acknowledged: int, allow_single: int = 0) -> int:
    store = (JournalStore if kind == "sqlite" else PostgresJournalStore)(where)
    store.open()
    try:
        orders = store.orders("b1")
        fills = store.fills("b1")
    finally:
        store.close()
    seqs = [o.intent.seq for o in orders]
    assert seqs == list(range(1, len(orders) + 1))
    assert len(orders) >= acknowledged  # nothing acknowledged was lost
    assert len(orders) % BATCH in (0, allow_single)  # whole batches only
    assert all(o.status == "filled" for o in orders)
    assert [f.client_id for f in fills] == [o.intent.client_id for o in orders]
    return len(orders)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_9_while_writing_batches(kind, request, tmp_path):
    where = (
        str(tmp_path / "crash.sqlite3") if kind == "sqlite" else request.getfixturevalue("pg_url")
    )
    acknowledged = run_and_kill(kind, where, after_orders=4 * BATCH)
    written = check(kind, where, acknowledged)
    # a restarted writer replays what the killed one left and writes on
    store = (JournalStore if kind == "sqlite" else PostgresJournalStore)(where)
    store.open()
    try:
        record = store.load_bot("b1", D(1000), T0)
        assert (record.next_seq, len(record.fills), record.unresolved) == (written + 1, written, ())
        nxt = intent(written + 1)
        store.record_intent(nxt)
        store.record_fill(fill_of(nxt, "100"))
    finally:
        store.close()
    assert check(kind, where, written + 1, allow_single=1) == written + 1
