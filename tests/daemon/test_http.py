"""The HTTP surface over real sockets: hypercorn on 127.0.0.1:0, httpx as the client.

The control plane is a real in-test implementation of ``ControlPlane`` (bots in a dict, specs
validated with the real ``BotConfig``), so every assertion goes through hypercorn, our ASGI
app, auth and the error mapping.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from actors.errors import ConfigError
from actors.journal.store import FillRecord, OrderRecord
from supervisor.config import BotConfig, HttpConfig
from supervisor.http import (
    ServerAddress,
    bearer_matches,
    health_report,
    match_route,
    parse_bind,
    run_http_server,
)
from supervisor.metrics import SnapshotCollector, new_registry
from supervisor.openapi import openapi_document
from supervisor.read_api import BotView

TOKEN_ENV = "BOTCRIPTOFY_TEST_HTTP_TOKEN"
TOKEN = "t0k3n-for-tests-only"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@attrs.define(eq=False)
class InMemoryPlane:
    """A real ControlPlane: bots live in a dict; specs are checked by the real BotConfig."""

    exchange_healthy: bool = True
    bots: dict[str, str] = attrs.Factory(dict)  # id -> "running" | "paused"
    calls: list[tuple[str, Any]] = attrs.Factory(list)
    health_fails: bool = False
    reads_fail: bool = False

    def health(self) -> Mapping[str, Any]:
        if self.health_fails:
            raise RuntimeError("snapshot broke")
        return {
            "exchanges": {
                "binance": {
                    "healthy": self.exchange_healthy,
                    "state": "live",
                    "breaker": "closed",
                    "last_message_age_s": 0.25,
                    "reconnects": 1,
                },
            },
            "bots": {
                bot_id: {"healthy": True, "state": state, "position": Decimal("0.010")}
                for bot_id, state in self.bots.items()
            },
            "uptime_s": 12.5,
        }

    async def spawn_bot(self, spec: Mapping[str, Any]) -> str:
        await trio.lowlevel.checkpoint()
        self.calls.append(("spawn", dict(spec)))
        known = {a.name for a in attrs.fields(BotConfig)}
        problems = [f"bots.{key}: unknown key" for key in spec if key not in known]
        try:
            bot = BotConfig(**{k: v for k, v in spec.items() if k in known})
        except (TypeError, ValueError) as exc:
            problems.append(f"bots: {exc}")
        else:
            if bot.id in self.bots:
                problems.append(f"bots.id: {bot.id!r} already exists")
        if problems:
            raise ConfigError(problems)
        self.bots[bot.id] = "running"
        return bot.id

    async def stop_bot(self, bot_id: str) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(("stop", bot_id))
        del self.bots[bot_id]

    async def pause_bot(self, bot_id: str) -> None:
        await self._set(bot_id, "paused")

    async def resume_bot(self, bot_id: str) -> None:
        await self._set(bot_id, "running")

    def bot_views(self) -> Mapping[str, BotView]:
        if self.reads_fail:
            raise RuntimeError("views broke")
        entries = self.health()["bots"]
        return {
            bot_id: BotView(BotConfig(bot_id, "binance", "BTC/USDT"), entries[bot_id], None)
            for bot_id in self.bots
        }

    async def bot_orders(self, bot_id: str) -> list[OrderRecord]:
        await trio.lowlevel.checkpoint()
        if bot_id not in self.bots:
            raise KeyError(bot_id)
        return []

    async def bot_fills(self, bot_id: str) -> list[FillRecord]:
        await trio.lowlevel.checkpoint()
        if bot_id not in self.bots:
            raise KeyError(bot_id)
        return []

    async def _set(self, bot_id: str, state: str) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append((state, bot_id))
        if bot_id not in self.bots:
            raise KeyError(bot_id)
        self.bots[bot_id] = state


@asynccontextmanager
async def serving(
    plane: InMemoryPlane, registry: CollectorRegistry | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    config = HttpConfig(port=0, token_env=TOKEN_ENV)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            run_http_server, config, plane, registry or CollectorRegistry()
        )
        assert isinstance(address, ServerAddress)
        assert address.host == "127.0.0.1"
        assert address.port > 0
        try:
            async with httpx.AsyncClient(base_url=address.url) as client:
                yield client
        finally:
            nursery.cancel_scope.cancel(reason="test done")


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)


# --- pure parts -------------------------------------------------------------------------------


def test_match_route() -> None:
    assert match_route("/health").actions == {"GET": "health"}
    assert match_route("/metrics").actions == {"GET": "metrics"}
    assert match_route("/openapi.json").actions == {"GET": "openapi"}
    assert match_route("/bots").actions == {"GET": "bots", "POST": "spawn"}
    one = match_route("/bots/b1")
    assert one is not None
    assert (one.actions, one.bot_id) == ({"GET": "bot", "DELETE": "stop"}, "b1")
    pause = match_route("/bots/b1/pause")
    assert pause is not None
    assert (pause.actions, pause.bot_id) == ({"POST": "pause"}, "b1")
    for read in ("orders", "fills", "positions"):
        route = match_route(f"/bots/b1/{read}")
        assert route is not None
        assert (route.actions, route.bot_id) == ({"GET": read}, "b1")
    page = match_route("/")
    assert page is not None
    assert (page.actions, page.asset) == ({"GET": "asset"}, "index.html")
    script = match_route("/web/app.js")
    assert script is not None
    assert script.asset == "app.js"
    for path in (
        "/bots/",
        "/bots//pause",
        "/bots/b1/kill",
        "/bots/b1/pause/x",
        "/healthz",
        "/web/",
        "/web/index.html",  # served at / only
        "/web/../http.py",
        "/web/__init__.py",
        "/index.html",
    ):
        assert match_route(path) is None, path


def test_bearer_matches() -> None:
    assert bearer_matches(b"Bearer abc", "abc")
    assert bearer_matches(b"bearer  abc ", "abc")
    assert not bearer_matches(None, "abc")
    assert not bearer_matches(b"", "abc")
    assert not bearer_matches(b"Bearer abd", "abc")
    assert not bearer_matches(b"Bearer ab", "abc")
    assert not bearer_matches(b"Basic abc", "abc")
    assert not bearer_matches("Bearer \u00e9".encode(), "abc")


def test_health_report_fails_closed() -> None:
    assert health_report({"exchanges": {}, "bots": {}, "uptime_s": 1.0}) == (
        200,
        {"status": "ok", "exchanges": {}, "bots": {}, "uptime_s": 1.0},
    )
    status, body = health_report({"exchanges": {"x": {"state": "live"}}, "bots": {}})
    assert (status, body["status"]) == (503, "degraded")  # no "healthy": cannot vouch
    status, body = health_report(
        {"exchanges": {"x": {"healthy": True}}, "bots": {"b": {"healthy": False}}}
    )
    assert (status, body["status"]) == (503, "degraded")


def test_parse_bind() -> None:
    assert parse_bind("http://127.0.0.1:8765") == ServerAddress("127.0.0.1", 8765)
    assert parse_bind("http://[::1]:81") == ServerAddress("::1", 81)
    assert ServerAddress("::1", 81).url == "http://[::1]:81"


# --- over sockets -----------------------------------------------------------------------------


async def test_health_ok(autojump_clock: trio.testing.MockClock, no_token: None) -> None:
    plane = InMemoryPlane(bots={"b1": "running"})
    with trio.fail_after(5):
        async with serving(plane) as client:
            response = await client.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "exchanges": {
            "binance": {
                "healthy": True,
                "state": "live",
                "breaker": "closed",
                "last_message_age_s": 0.25,
                "reconnects": 1,
            }
        },
        "bots": {"b1": {"healthy": True, "state": "running", "position": "0.010"}},
        "uptime_s": 12.5,
    }


async def test_health_degraded(autojump_clock: trio.testing.MockClock, no_token: None) -> None:
    plane = InMemoryPlane(exchange_healthy=False)
    with trio.fail_after(5):
        async with serving(plane) as client:
            degraded = await client.get("/health")
            plane.exchange_healthy = True
            recovered = await client.get("/health")
            plane.health_fails = True
            broken = await client.get("/health")
    assert degraded.status_code == 503
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["exchanges"]["binance"]["healthy"] is False
    assert recovered.status_code == 200
    assert broken.status_code == 503
    assert broken.json() == {"status": "degraded", "error": "health snapshot failed"}


async def test_metrics_exposition(autojump_clock: trio.testing.MockClock, no_token: None) -> None:
    collector = SnapshotCollector(
        exchanges=lambda: {
            "binance": {
                "messages_received": 10,
                "bytes_received": 2048,
                "decode_errors": 1,
                "reconnects": 2,
                "breaker_state": "closed",
                "state": "live",
                "skipped": 3,
                "dropped": 0,
                "connection_uptime_s": 5.0,
                "last_message_age_s": 0.5,
            }
        },
        bots=lambda: {
            "b1": {
                "exchange": "binance",
                "symbol": "BTC/USDT",
                "quote": "USDT",
                "ticks": 7,
                "quarantined_ticks": 2,
                "orders": 2,
                "fills": 1,
                "rejections": {"max_position": 1},
                "position": Decimal("0.5"),
                "realized_pnl": Decimal("1.25"),
                "unrealized_pnl": Decimal("-0.5"),
                "quote_balance": Decimal("9000"),
                "position_value": Decimal("1000"),
                "equity": Decimal("10000"),
                "state": "running",
            }
        },
        uptime_s=lambda: 42.0,
    )
    with trio.fail_after(5):
        async with serving(InMemoryPlane(), new_registry(collector)) as client:
            response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert (
        samples[("botcriptofy_exchange_messages_received_total", (("exchange", "binance"),))] == 10
    )
    assert (
        samples[
            ("botcriptofy_exchange_breaker_state", (("exchange", "binance"), ("state", "closed")))
        ]
        == 1
    )
    b1 = {"bot": "b1", "exchange": "binance", "symbol": "BTC/USDT", "quote": "USDT"}
    rejected = tuple(sorted({**b1, "reason": "max_position"}.items()))
    assert samples[("botcriptofy_bot_rejections_total", rejected)] == 1
    assert samples[("botcriptofy_bot_realized_pnl", tuple(sorted(b1.items())))] == 1.25
    assert samples[("botcriptofy_uptime_seconds", ())] == 42.0


async def test_control_lifecycle(autojump_clock: trio.testing.MockClock, token: str) -> None:
    plane = InMemoryPlane()
    spec = {"id": "b7", "exchange": "binance", "symbol": "BTC/USDT", "strategy": "threshold"}
    with trio.fail_after(5):
        async with serving(plane) as client:
            spawned = await client.post("/bots", json=spec, headers=AUTH)
            assert (spawned.status_code, spawned.json()) == (
                201,
                {"bot": "b7", "action": "spawned"},
            )
            assert spawned.headers["location"] == "/bots/b7"
            assert plane.bots == {"b7": "running"}

            paused = await client.post("/bots/b7/pause", headers=AUTH)
            assert (paused.status_code, paused.json()) == (200, {"bot": "b7", "action": "paused"})
            assert plane.bots == {"b7": "paused"}
            assert (await client.get("/health")).json()["bots"]["b7"]["state"] == "paused"

            resumed = await client.post("/bots/b7/resume", headers=AUTH)
            assert resumed.status_code == 200
            assert plane.bots == {"b7": "running"}

            stopped = await client.delete("/bots/b7", headers=AUTH)
            assert (stopped.status_code, stopped.json()) == (
                200,
                {"bot": "b7", "action": "stopped"},
            )
            assert plane.bots == {}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["missing", "wrong", "wrong-scheme", "prefix"],
)
async def test_control_rejects_bad_token(
    autojump_clock: trio.testing.MockClock, token: str, headers: dict[str, str]
) -> None:
    plane = InMemoryPlane(bots={"b1": "running"})
    spec = {"id": "b2", "exchange": "binance", "symbol": "BTC/USDT"}
    with trio.fail_after(5):
        async with serving(plane) as client:
            responses = [
                await client.post("/bots", json=spec, headers=headers),
                await client.delete("/bots/b1", headers=headers),
                await client.post("/bots/b1/pause", headers=headers),
                await client.post("/bots/b1/resume", headers=headers),
            ]
    for response in responses:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": "missing or invalid bearer token"}
    assert plane.calls == []
    assert plane.bots == {"b1": "running"}


async def test_control_disabled_without_token_env(
    autojump_clock: trio.testing.MockClock, no_token: None
) -> None:
    plane = InMemoryPlane(bots={"b1": "running"})
    with trio.fail_after(5):
        async with serving(plane) as client:
            anonymous = await client.delete("/bots/b1")
            bearer = await client.delete("/bots/b1", headers={"authorization": "Bearer x"})
            health = await client.get("/health")
    for response in (anonymous, bearer):
        assert response.status_code == 403
        assert response.json()["error"] == "control endpoints are disabled"
        assert TOKEN_ENV in response.json()["detail"]
    assert health.status_code == 200  # read routes stay open
    assert plane.calls == []
    assert plane.bots == {"b1": "running"}


async def test_bad_spec_is_400_with_problems(
    autojump_clock: trio.testing.MockClock, token: str
) -> None:
    plane = InMemoryPlane(bots={"b1": "running"})
    headers = {**AUTH, "content-type": "application/json"}
    with trio.fail_after(5):
        async with serving(plane) as client:
            not_json = await client.post("/bots", content=b"{id = 'b2'}", headers=headers)
            not_object = await client.post("/bots", content=b"[1, 2]", headers=headers)
            bad_symbol = await client.post(
                "/bots",
                json={"id": "b2", "exchange": "binance", "symbol": "btcusdt", "colour": "red"},
                headers=AUTH,
            )
            duplicate = await client.post(
                "/bots",
                json={"id": "b1", "exchange": "binance", "symbol": "BTC/USDT"},
                headers=AUTH,
            )
    assert not_json.status_code == 400
    assert not_json.json()["problems"][0].startswith("body: invalid JSON")
    assert not_object.status_code == 400
    assert not_object.json()["problems"] == [
        "body: must be a JSON object with the keys of a [[bots]] table"
    ]
    assert bad_symbol.status_code == 400
    problems = bad_symbol.json()["problems"]
    assert problems[0] == "bots.colour: unknown key"
    assert "BASE/QUOTE" in problems[1]
    assert duplicate.status_code == 400
    assert duplicate.json() == {
        "error": "invalid bot spec",
        "problems": ["bots.id: 'b1' already exists"],
    }
    assert plane.bots == {"b1": "running"}


async def test_unknown_bot_is_404(autojump_clock: trio.testing.MockClock, token: str) -> None:
    plane = InMemoryPlane(bots={"b1": "running"})
    with trio.fail_after(5):
        async with serving(plane) as client:
            responses = [
                await client.delete("/bots/nope", headers=AUTH),
                await client.post("/bots/nope/pause", headers=AUTH),
                await client.post("/bots/nope/resume", headers=AUTH),
            ]
    for response in responses:
        assert (response.status_code, response.json()) == (
            404,
            {"error": "unknown bot", "bot": "nope"},
        )
    assert plane.bots == {"b1": "running"}


async def test_routing_errors_and_body_cap(
    autojump_clock: trio.testing.MockClock, token: str
) -> None:
    plane = InMemoryPlane()
    with trio.fail_after(5):
        async with serving(plane) as client:
            missing = await client.get("/nope")
            wrong_method = await client.post("/health")
            delete_all = await client.delete("/bots", headers=AUTH)
            too_big = await client.post("/bots", content=b" " * (64 * 1024 + 1), headers=AUTH)
    assert missing.status_code == 404
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET"
    assert delete_all.status_code == 405
    assert too_big.status_code == 413
    assert plane.calls == []


async def test_token_never_logged(autojump_clock: trio.testing.MockClock, token: str) -> None:
    lines: list[str] = []
    sink = logger.add(
        lambda message: lines.append(str(message) + repr(message.record)), level="DEBUG"
    )
    try:
        plane = InMemoryPlane()
        with trio.fail_after(5):
            async with serving(plane) as client:
                await client.post("/bots/x/pause", headers={"authorization": "Bearer guess"})
                await client.post(
                    "/bots",
                    json={"id": "b1", "exchange": "binance", "symbol": "BTC/USDT"},
                    headers=AUTH,
                )
    finally:
        logger.remove(sink)
    text = "\n".join(lines)
    assert "control request refused" in text  # the sink did see the traffic
    assert "bot spawned" in text
    assert TOKEN not in text
    assert "guess" not in text


async def test_server_stops_on_cancellation(no_token: None) -> None:
    """Real clock: shutdown must be prompt even with a keep-alive connection open."""
    config = HttpConfig(port=0, token_env=TOKEN_ENV)
    with trio.fail_after(2):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(
                run_http_server, config, InMemoryPlane(), CollectorRegistry()
            )
            async with httpx.AsyncClient(base_url=address.url) as client:
                assert (await client.get("/health")).status_code == 200
                started_at = trio.current_time()
                nursery.cancel_scope.cancel(reason="test shutdown")
        assert trio.current_time() - started_at < 0.5
    with pytest.raises(OSError, match="all attempts to connect"):  # nothing listens any more
        await trio.open_tcp_stream("127.0.0.1", address.port)


async def test_port_in_use_fails_before_started(no_token: None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = HttpConfig(port=taken.getsockname()[1], token_env=TOKEN_ENV)
        with trio.fail_after(2), pytest.RaisesGroup(OSError, flatten_subgroups=True):
            async with trio.open_nursery() as nursery:
                await nursery.start(run_http_server, config, InMemoryPlane(), CollectorRegistry())


async def test_disabled_returns_at_once() -> None:
    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            run_http_server, HttpConfig(enabled=False), InMemoryPlane(), CollectorRegistry()
        )
    assert address is None


async def test_dashboard_files_are_served_with_a_strict_policy(
    autojump_clock: trio.testing.MockClock, no_token: None
) -> None:
    with trio.fail_after(5):
        async with serving(InMemoryPlane()) as client:
            page = await client.get("/")
            script = await client.get("/web/app.js")
            plot = await client.get("/web/plot.js")
            style = await client.get("/web/style.css")
            missing = await client.get("/web/nope.js")
            posted = await client.post("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="web/app.js"' in page.text
    assert '<canvas id="chart"' in page.text
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "Authorization" in script.text
    assert "Bearer" in script.text
    assert "localStorage" not in script.text
    assert "document.cookie" not in script.text
    assert "window.Plot" in plot.text
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    for asset in (page, script, plot, style):  # nothing from another origin
        assert "http://" not in asset.text
        assert "https://" not in asset.text
    assert missing.status_code == 404
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET")


async def test_openapi_document_is_served(
    autojump_clock: trio.testing.MockClock, no_token: None
) -> None:
    with trio.fail_after(5):
        async with serving(InMemoryPlane()) as client:
            response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == openapi_document()
    assert response.json()["openapi"].startswith("3.")


async def test_reads_are_open_and_map_errors(
    autojump_clock: trio.testing.MockClock, token: str
) -> None:
    plane = InMemoryPlane(bots={"b1": "running"})
    with trio.fail_after(5):
        async with serving(plane) as client:
            listed = await client.get("/bots")  # no token: reads are open
            one = await client.get("/bots/b1")
            orders = await client.get("/bots/b1/orders", params={"limit": "2"})
            positions = await client.get("/bots/b1/positions")
            unknown = await client.get("/bots/nope/fills")
            bad_query = await client.get("/bots/b1/fills", params={"before": "0", "limit": "x"})
            plane.reads_fail = True
            broken = await client.get("/bots")
    assert listed.status_code == 200
    assert [b["id"] for b in listed.json()["bots"]] == ["b1"]
    bot = one.json()
    assert (bot["state"], bot["healthy"], bot["position"], bot["equity"]) == (
        "running",
        True,
        None,  # no statistics: the book's fields are null, not made up
        None,
    )
    assert bot["config"]["symbol"] == "BTC/USDT"
    assert orders.json() == {"bot": "b1", "total": 0, "items": [], "next_before": None}
    assert positions.json()["lots"] == []
    assert positions.json()["last_price"] is None
    assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown bot", "bot": "nope"})
    assert bad_query.status_code == 400
    assert [p.partition(":")[0] for p in bad_query.json()["problems"]] == ["limit", "before"]
    assert (broken.status_code, broken.json()) == (500, {"error": "internal error"})
    assert plane.calls == []  # reading acted on nothing
