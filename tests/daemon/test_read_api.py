"""The read API and the OpenAPI document, against a real trading system over real sockets.

``tests/daemon/serving.py`` runs the daemon's pieces in this test's Trio loop (a local Binance
simulator, ``open_supervisor`` with a bot that trades on every tick, ``run_http_server``). The
clock is real: a worker thread (the journal, the schemathesis walk) and a subprocess (the
schemathesis CLI) are peers, and virtual time must not jump while they work.

The document is checked twice, both times with schemathesis and against the live daemon:

* a walk that calls every documented operation with real values (the running bot's id, the
  control token) and validates each response; an operation the walk misses fails the test,
  so a route added to the document without being exercised is caught;
* schemathesis' own generation (``st run``: the examples, coverage and fuzzing phases, all
  checks), unauthenticated: boundary and invalid parameters, unknown ids, and control calls
  that must be refused with the documented 401.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
import trio
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from supervisor.openapi import openapi_document
from supervisor.read_api import Page, QueryError, paged, parse_page
from supervisor.web import ASSETS, INDEX
from tests.daemon.serving import BOT, TOKEN, TOKEN_ENV, serving_system, wait_for_fills

AUTH = {"authorization": f"Bearer {TOKEN}"}
SPAWNED = "spawned-idle"
SPAWN_SPEC = {
    "id": SPAWNED,
    "exchange": "sim",
    "symbol": "BTC/USDT",
    "strategy": "threshold",
    "params": {"buy_below": "1"},  # far under the market: never trades
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
]
GENERATED_CHECKS = [negative_data_rejection, positive_data_acceptance]
GENERATED_PER_OPERATION = 6


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


# --- pure parts -------------------------------------------------------------------------------


def test_parse_page() -> None:
    assert parse_page(b"") == Page(100, None)
    assert parse_page(b"limit=5&before=0012&other=x") == Page(5, 12)
    assert parse_page(b"limit=1000&before=9223372036854775807") == Page(1000, 2**63 - 1)
    for query, problem in [
        (b"limit=0", "limit: must be an integer in 1..1000, got '0'"),
        (b"limit=1001", "limit: must be an integer in 1..1000, got '1001'"),
        (b"limit=-1", "limit: must be an integer in 1..1000, got '-1'"),
        (b"limit=", "limit: must be an integer in 1..1000, got ''"),
        # "²" is a digit to str.isdigit(), not an ASCII one
        (b"limit=%C2%B2", "limit: must be an integer in 1..1000, got '\u00b2'"),
        (b"before=9223372036854775808", "before: must be an integer in 1..9223372036854775807"),
        (b"before=1e3", "before: must be an integer in 1..9223372036854775807, got '1e3'"),
    ]:
        with pytest.raises(QueryError) as bad:
            parse_page(query)
        assert len(bad.value.problems) == 1
        assert bad.value.problems[0].startswith(problem), (query, bad.value.problems)
    with pytest.raises(QueryError) as both:
        parse_page(b"limit=x&before=y")
    assert [p.partition(":")[0] for p in both.value.problems] == ["limit", "before"]


def test_pages_are_newest_first_and_keyed_by_seq() -> None:
    items = [(seq, {"seq": seq}) for seq in range(1, 6)]
    first = paged("b", items, Page(limit=2))
    assert first == {
        "bot": "b",
        "total": 5,
        "items": [{"seq": 5}, {"seq": 4}],
        "next_before": 4,
    }
    second = paged("b", items, Page(limit=2, before=4))
    assert [i["seq"] for i in second["items"]] == [3, 2]
    last = paged("b", items, Page(limit=2, before=2))
    assert (last["items"], last["next_before"]) == ([{"seq": 1}], None)
    exact = paged("b", items, Page(limit=5))
    assert (len(exact["items"]), exact["next_before"]) == (5, None)
    assert paged("b", [], Page())["items"] == []


# --- over sockets -----------------------------------------------------------------------------


async def _walk_pages(client: httpx.AsyncClient, path: str, limit: int) -> list[dict[str, Any]]:
    """Every item of a paged route, following ``next_before`` to the end."""
    items: list[dict[str, Any]] = []
    params: dict[str, int] = {"limit": limit}
    while True:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        if page["next_before"] is None:
            return items
        params = {"limit": limit, "before": page["next_before"]}


async def test_read_api_shows_the_bot_its_journal_and_its_position(
    tmp_path: Path, token: str
) -> None:
    with trio.fail_after(30):
        async with (
            serving_system(tmp_path / "journal.sqlite3") as served,
            httpx.AsyncClient(base_url=served.url) as client,
        ):
            sup = served.system
            await wait_for_fills(sup, BOT, 7)
            await sup.pause_bot(BOT)  # its book stops changing: exact comparisons from here
            stats = sup.bot(BOT).statistics()
            journal_orders = await sup.journal.orders(BOT)
            journal_fills = await sup.journal.fills(BOT)

            listed = await client.get("/bots")
            assert listed.status_code == 200
            assert listed.headers["cache-control"] == "no-store"
            (bot,) = listed.json()["bots"]
            one = await client.get(f"/bots/{BOT}")
            assert one.status_code == 200
            for view in (bot, one.json()):
                assert (view["id"], view["exchange"], view["symbol"]) == (BOT, "sim", "BTC/USDT")
                assert (view["state"], view["healthy"], view["mode"]) == ("paused", True, "paper")
                assert view["strategy"] == "tests.bots.strategies:Churn"
                assert Decimal(view["position"]) == stats.position_size
                assert Decimal(view["realized_pnl"]) == stats.realized_pnl
                assert Decimal(view["quote_balance"]) == stats.quote_balance
                assert (view["orders"], view["fills"]) == (stats.orders, stats.fills)
                assert view["last_action"] == "paused"
                assert view["config"]["risk"]["max_orders_per_minute"] == 1000
                price = Decimal(view["last_price"])
                equity = Decimal(view["quote_balance"]) + Decimal(view["base_balance"]) * price
                assert Decimal(view["equity"]) == equity

            orders = await _walk_pages(client, f"/bots/{BOT}/orders", limit=3)
            assert [o["seq"] for o in orders] == [o.intent.seq for o in journal_orders][::-1]
            newest = journal_orders[-1]
            assert orders[0] == {
                "seq": newest.intent.seq,
                "client_id": newest.intent.client_id,
                "symbol": "BTC/USDT",
                "side": newest.intent.side,
                "type": "market",
                "size": str(newest.intent.size),
                "price": None,
                "tag": newest.intent.tag,
                "position_id": newest.intent.position_id,
                "status": newest.status,
                "status_reason": newest.status_reason,
                "filled_size": str(newest.filled_size),
                "created_ts": newest.intent.created_ts,
            }
            fills = await _walk_pages(client, f"/bots/{BOT}/fills", limit=2)
            assert len(fills) == len(journal_fills) == stats.fills >= 7
            assert [f["seq"] for f in fills] == list(range(len(journal_fills), 0, -1))
            assert [(f["client_id"], Decimal(f["price"])) for f in fills] == [
                (f.client_id, f.price) for f in reversed(journal_fills)
            ]

            positions = (await client.get(f"/bots/{BOT}/positions")).json()
            assert Decimal(positions["size"]) == stats.position_size
            assert len(positions["lots"]) == stats.open_positions
            if stats.open_positions:  # the churn holds every other tick
                (lot,) = positions["lots"]
                assert Decimal(lot["entry_price"]) == stats.entry_price
                assert lot["position_id"] == journal_fills[-1].client_id

            # Spawning answers Location: /bots/ID, and GET reads it (finding 9 of issue 13).
            spawned = await client.post("/bots", json=SPAWN_SPEC, headers=AUTH)
            assert spawned.status_code == 201, spawned.text
            location = spawned.headers["location"]
            assert location == f"/bots/{SPAWNED}"
            followed = await client.get(location)
            assert followed.status_code == 200
            assert (followed.json()["id"], followed.json()["strategy"]) == (SPAWNED, "threshold")
            assert [b["id"] for b in (await client.get("/bots")).json()["bots"]] == [BOT, SPAWNED]
            empty = (await client.get(f"{location}/orders")).json()
            assert (empty["total"], empty["items"], empty["next_before"]) == (0, [], None)

            for path in ("/bots/nope", "/bots/nope/orders", "/bots/nope/fills"):
                missing = await client.get(path)
                assert (missing.status_code, missing.json()) == (
                    404,
                    {"error": "unknown bot", "bot": "nope"},
                )
            bad = await client.get(f"/bots/{BOT}/orders", params={"limit": "0"})
            assert bad.status_code == 400
            assert bad.json()["problems"] == ["limit: must be an integer in 1..1000, got '0'"]

            await sup.stop_bot(SPAWNED)
            assert (await client.get(location)).status_code == 404


def documented_operations() -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in the document (read from it, not from a loader
    that may leave some out: schemathesis skips the route that served the document)."""
    return {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in ("get", "post", "delete")
    }


def _walk_every_operation(url: str) -> None:
    """Call every documented operation with real values; validate each response against the
    document the daemon serves. Runs in a worker thread (schemathesis' client is blocking)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = documented_operations()
    bot = {"bot_id": BOT}
    spawned = {"bot_id": SPAWNED}
    control = {"headers": AUTH}
    # (method, path, expected status, Case arguments); state-changing calls come last.
    calls: list[tuple[str, str, int, dict[str, Any]]] = [
        ("GET", "/", 200, {}),
        *[
            ("GET", "/web/{asset}", 200, {"path_parameters": {"asset": name}})
            for name in sorted(ASSETS)
            if name != INDEX
        ],
        ("GET", "/openapi.json", 200, {}),
        ("GET", "/health", 200, {}),
        ("GET", "/metrics", 200, {}),
        ("GET", "/bots", 200, {}),
        ("GET", "/bots/{bot_id}", 200, {"path_parameters": bot}),
        ("GET", "/bots/{bot_id}", 404, {"path_parameters": {"bot_id": "nope"}}),
        ("GET", "/bots/{bot_id}/orders", 200, {"path_parameters": bot, "query": {"limit": 2}}),
        ("GET", "/bots/{bot_id}/orders", 400, {"path_parameters": bot, "query": {"limit": 0}}),
        ("GET", "/bots/{bot_id}/fills", 200, {"path_parameters": bot, "query": {"before": 3}}),
        ("GET", "/bots/{bot_id}/positions", 200, {"path_parameters": bot}),
        ("POST", "/bots", 201, {**control, "body": SPAWN_SPEC, "media_type": "application/json"}),
        ("POST", "/bots", 400, {**control, "body": SPAWN_SPEC, "media_type": "application/json"}),
        ("POST", "/bots/{bot_id}/pause", 401, {"path_parameters": spawned}),
        ("POST", "/bots/{bot_id}/pause", 200, {**control, "path_parameters": spawned}),
        ("POST", "/bots/{bot_id}/resume", 200, {**control, "path_parameters": spawned}),
        ("POST", "/bots/{bot_id}/resume", 404, {**control, "path_parameters": {"bot_id": "x"}}),
        ("POST", "/control/halt", 200, control),
        ("POST", "/control/resume-trading", 200, control),
        ("DELETE", "/bots/{bot_id}", 200, {**control, "path_parameters": spawned}),
        ("DELETE", "/bots/{bot_id}", 404, {**control, "path_parameters": spawned}),
    ]
    called = set()
    for method, path, status, arguments in calls:
        case = schema[path][method].Case(**arguments)
        response = case.call(base_url=url)
        assert response.status_code == status, (method, path, response.text)
        case.validate_response(response, checks=CHECKS)
        called.add((method, path))
    assert called == operations, called ^ operations  # every documented operation, no other


def _generate_against(url: str) -> int:
    """Schemathesis' generated cases, sent unauthenticated (control routes must answer the
    documented 401) and deterministically (``derandomize``: CI sends the same cases every run).
    Every operation gets valid cases (answered as documented); the paged reads, for the running
    bot, also invalid ones (limit 0, before "x"...: refused with a 4xx). Returns how many."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    sent = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            modes = [GenerationMode.POSITIVE]
            fixed: dict[str, Any] = {}
            if operation.query:
                modes.append(GenerationMode.NEGATIVE)
                fixed["path_parameters"] = {"bot_id": BOT}
            for mode in modes:

                @hypothesis.settings(
                    max_examples=GENERATED_PER_OPERATION,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(hypothesis.HealthCheck),
                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                )
                @hypothesis.given(case=operation.as_strategy(generation_mode=mode, **fixed))
                def check(case: schemathesis.Case) -> None:
                    nonlocal sent
                    case.call_and_validate(
                        base_url=url, session=session, checks=[*CHECKS, *GENERATED_CHECKS]
                    )
                    sent += 1

                check()
    return sent


async def test_the_live_daemon_conforms_to_its_openapi_document(tmp_path: Path, token: str) -> None:
    with trio.fail_after(60):
        async with serving_system(tmp_path / "journal.sqlite3") as served:
            await wait_for_fills(served.system, BOT, 2)
            await served.system.pause_bot(BOT)  # its book stays; this loop's CPU serves HTTP
            sent = await trio.to_thread.run_sync(_generate_against, served.url)
            assert sent >= 2 * len(documented_operations())  # several cases per operation
            await trio.to_thread.run_sync(_walk_every_operation, served.url)
