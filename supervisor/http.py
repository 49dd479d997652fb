"""The daemon's HTTP surface: ``/health``, ``/metrics``, the read API, the web dashboard, its
OpenAPI document and bearer-token bot control.

Routes (``GET /openapi.json`` describes them all, and ``tests/daemon/test_read_api.py`` checks
the live daemon against that document):

* open reads: ``/health``, ``/metrics``, ``/openapi.json``, ``/`` (the dashboard) and its files
  ``/web/*``, ``GET /bots``, ``GET /bots/ID``, ``GET /bots/ID/orders``, ``/fills`` (paged:
  ``?limit=&before=``) and ``/positions`` (``supervisor.read_api``);
* control, bearer token: ``POST /bots`` (201 with ``Location: /bots/ID``, which ``GET`` reads),
  ``DELETE /bots/ID``, ``POST /bots/ID/pause`` and ``/resume``, ``POST /control/halt`` and
  ``/control/resume-trading``.

Decisions:

* Plain ASGI on hypercorn's Trio worker, no web framework: a dozen fixed routes do not justify a
  dependency, and a bare ASGI callable is easy to test end to end.
* **Reads are open, like** ``/health``: they show what ``/health`` and ``/metrics`` already
  show (states, positions, PnL) plus the journal's orders and fills, nothing that moves money
  or reveals a secret, and monitoring (a dashboard on the same host, scrapers) should need no
  credential. The server binds 127.0.0.1 by default; whoever exposes it further puts it behind
  their own proxy and auth. Only what acts is token-protected.
* **The dashboard** (``/``) is static files from ``supervisor/web`` (package data; vanilla JS
  and a canvas chart of our own, no CDN, no build step) that poll ``/health`` and ``GET /bots``
  every second. Polling rather than Server-Sent Events: one request per second per open page
  is nothing for this server, it survives a daemon restart without reconnect logic, and a
  long-lived stream would have to be cancelled on shutdown. The user types the control token
  into the page; it stays in a JS variable (no storage, no cookie) and is sent as a bearer
  header, so no other site can make the browser act (no ambient credential: nothing to
  forge). Pages carry a strict ``Content-Security-Policy`` (same-origin only).
* The app reaches the system only through ``ControlPlane`` (below), so tests drive it with a
  real in-test implementation and the coordinator composes it over ``open_supervisor``.
* ``/health`` policy: the control plane knows what "healthy" means for each exchange and bot and
  says so per entry (``"healthy": true``); this module only aggregates. Overall status is
  ``ok`` (200) only when every entry says ``healthy: true``; an entry that does not vouch for
  itself counts as degraded (503). Fail closed: a load balancer must not route to a daemon
  whose feeds are down. A ``health()`` that raises is reported as degraded, not as a crash.
* Control auth: the token is read once, when the server starts, from the environment variable
  named by ``HttpConfig.token_env`` (rotating it means a restart, like any secret in env). If the
  variable is unset or empty, control is disabled: every control request gets 403 with a JSON
  error naming the variable (never a value). With a token, a missing or wrong
  ``Authorization: Bearer`` gets 401 and nothing is called. Comparison is
  ``hmac.compare_digest`` on bytes. The token never appears in logs, reprs or responses.
* Auth is checked before the body is read or parsed, so an unauthenticated client learns
  nothing about spec validation. Bodies are capped at ``max_body_bytes`` (413).
* Errors from the control plane map once, here: ``ConfigError`` -> 400 with ``problems``,
  ``KeyError`` -> 404, anything else -> 500 with a generic body (the traceback is logged).
* ``run_http_server`` binds to ``HttpConfig.host`` (default 127.0.0.1), reports the bound
  address through ``task_status.started`` only once hypercorn listens, and stops on
  cancellation (cancellation is the shutdown path). Hypercorn's own error log goes to
  the stdlib logger ``hypercorn.error`` untouched; the access log is off.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs
import hypercorn.config
import hypercorn.trio
import orjson
import trio
from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from actors.errors import BotCriptoFyError, ConfigError
from supervisor import web
from supervisor.config import HttpConfig
from supervisor.openapi import openapi_document
from supervisor.read_api import READ_ACTIONS, QueryError, ReadPlane, read

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

JSON = "application/json"
MAX_BODY_BYTES = 64 * 1024
# Same-origin only: the page loads its own script and style and talks to this server alone.
PAGE_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none';"
        b" frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]
NO_STORE = (b"cache-control", b"no-store")

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class ControlPlane(ReadPlane, Protocol):
    """What the HTTP surface needs from the running system (the read API's ``ReadPlane``, too).

    ``health()`` is a sync snapshot (it reads ``statistics()``), shaped as:
    ``{"exchanges": {name: {"healthy": bool, ...}}, "bots": {id: {"healthy": bool, ...}},
    "accounts": {name: {"healthy": bool, ...}} (only with live accounts),
    "uptime_s": float}``; the ``...`` details (state, breaker, last_message_age_s, reconnects,
    position) are passed through to the JSON as they are (``Decimal`` becomes a string).

    The async methods raise ``KeyError`` for an unknown bot id and ``actors.errors.ConfigError``
    (with ``.problems``) for an invalid spec, including a duplicate id. ``spawn_bot`` takes the
    same keys as a ``[[bots]]`` config table and returns the new bot's id.
    """

    def health(self) -> Mapping[str, Any]: ...

    async def spawn_bot(self, spec: Mapping[str, Any]) -> str: ...

    async def stop_bot(self, bot_id: str) -> None: ...

    async def pause_bot(self, bot_id: str) -> None: ...

    async def resume_bot(self, bot_id: str) -> None: ...

    async def halt(self, reason: str) -> Mapping[str, Any]: ...

    async def resume_trading(self) -> Mapping[str, Any]: ...


@attrs.frozen
class ServerAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@attrs.frozen
class Route:
    """A matched path: the action per allowed method, and the bot id or file name if the path
    has one."""

    actions: Mapping[str, str]
    bot_id: str | None = None
    asset: str | None = None


FIXED_ROUTES = {
    "/": Route({"GET": "asset"}, asset=web.INDEX),
    "/openapi.json": Route({"GET": "openapi"}),
    "/health": Route({"GET": "health"}),
    "/metrics": Route({"GET": "metrics"}),
    "/bots": Route({"GET": "bots", "POST": "spawn"}),
    "/control/halt": Route({"POST": "halt"}),
    "/control/resume-trading": Route({"POST": "resume_trading"}),
}
BOT_SUBROUTES = {
    "pause": {"POST": "pause"},
    "resume": {"POST": "resume"},
    "orders": {"GET": "orders"},
    "fills": {"GET": "fills"},
    "positions": {"GET": "positions"},
}


def match_route(path: str) -> Route | None:
    fixed = FIXED_ROUTES.get(path)
    if fixed is not None:
        return fixed
    parts = path.split("/")
    if len(parts) == 3 and parts[1] == "web" and parts[2] in web.ASSETS and parts[2] != web.INDEX:
        return Route({"GET": "asset"}, asset=parts[2])
    if len(parts) == 3 and parts[1] == "bots" and parts[2]:
        return Route({"GET": "bot", "DELETE": "stop"}, parts[2])
    if len(parts) == 4 and parts[1] == "bots" and parts[2] and parts[3] in BOT_SUBROUTES:
        return Route(BOT_SUBROUTES[parts[3]], parts[2])
    return None


def bearer_matches(authorization: bytes | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        return False
    scheme, _, credentials = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(credentials.strip(), token.encode())


def _healthy(entry: Any) -> bool:
    return isinstance(entry, Mapping) and entry.get("healthy") is True


def health_report(snapshot: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """Aggregate a ``ControlPlane.health()`` snapshot into (HTTP status, JSON body)."""
    exchanges = dict(snapshot.get("exchanges") or {})
    bots = dict(snapshot.get("bots") or {})
    accounts = dict(snapshot.get("accounts") or {})
    entries = (*exchanges.values(), *bots.values(), *accounts.values())
    ok = all(_healthy(entry) for entry in entries)
    body: dict[str, Any] = {"status": "ok" if ok else "degraded", "exchanges": exchanges}
    body["bots"] = bots
    if accounts:
        body["accounts"] = accounts
    body["uptime_s"] = snapshot.get("uptime_s")
    return (200 if ok else 503), body


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # booked money stays exact
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(body: Any) -> bytes:
    return orjson.dumps(body, default=_json_default)


class _BodyTooLargeError(Exception):
    pass


class _ClientGoneError(Exception):
    pass


@attrs.define(eq=False)
class HttpApp:
    """The ASGI application. ``token`` None means control endpoints are disabled."""

    control: ControlPlane
    registry: CollectorRegistry
    token: str | None = attrs.field(default=None, repr=False)
    token_env: str = "BOTCRIPTOFY_TOKEN"
    max_body_bytes: int = MAX_BODY_BYTES
    log: Any = attrs.field(init=False, repr=False)
    _openapi: bytes = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.log = logger.bind(actor="http")
        # Read and rendered once, here: no file I/O on the event loop per request, and an
        # install that lost the dashboard's files fails at start, not at the first page view.
        for name in web.ASSETS:
            web.asset(name)
        self._openapi = dumps(openapi_document())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        route = match_route(scope["path"])
        if route is None:
            await _send_json(send, 404, {"error": "not found"})
            return
        action = route.actions.get(method)
        if action is None:
            allow = ", ".join(route.actions).encode()
            await _send_json(send, 405, {"error": "method not allowed"}, [(b"allow", allow)])
            return
        if action == "health":
            await self._health(send)
        elif action == "metrics":
            await self._metrics(send)
        elif action == "asset":
            assert route.asset is not None  # match_route names the file of every asset route
            page = web.asset(route.asset)
            await _send(send, 200, page.body, page.content_type.encode(), PAGE_HEADERS)
        elif action == "openapi":
            await _send(send, 200, self._openapi, JSON.encode())
        elif action in READ_ACTIONS:
            await self._read(action, route.bot_id, scope, send)
        else:
            refusal = self._refusal(scope, action, route.bot_id)
            if refusal is None:
                await self._control(action, route.bot_id, scope, receive, send)
                return
            status, body = refusal
            headers = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await _send_json(send, status, body, headers)

    async def _health(self, send: Send) -> None:
        try:
            status, body = health_report(self.control.health())
        except Exception:
            self.log.exception("health snapshot failed")
            status, body = 503, {"status": "degraded", "error": "health snapshot failed"}
        await _send_json(send, status, body, [NO_STORE])

    async def _read(self, action: str, bot_id: str | None, scope: Scope, send: Send) -> None:
        try:
            body = await read(self.control, action, bot_id, scope.get("query_string") or b"")
        except QueryError as exc:
            await _send_json(send, 400, {"error": "invalid query", "problems": list(exc.problems)})
        except KeyError:
            await _send_json(send, 404, {"error": "unknown bot", "bot": bot_id})
        except Exception:
            self.log.bind(action=action, bot=bot_id).exception("read request failed")
            await _send_json(send, 500, {"error": "internal error"})
        else:
            await _send_json(send, 200, body, [NO_STORE])

    async def _metrics(self, send: Send) -> None:
        try:
            payload = generate_latest(self.registry)
        except Exception:
            self.log.exception("metrics exposition failed")
            await _send_json(send, 500, {"error": "metrics exposition failed"})
            return
        await _send(send, 200, payload, CONTENT_TYPE_LATEST.encode())

    def _refusal(
        self, scope: Scope, action: str, bot_id: str | None
    ) -> tuple[int, dict[str, Any]] | None:
        """None when the request may proceed, else the refusal (status, body)."""
        client = (scope.get("client") or ("?",))[0]
        if self.token is None:
            self.log.warning(
                "control request refused",
                reason="disabled",
                action=action,
                bot=bot_id,
                client=client,
            )
            return 403, {
                "error": "control endpoints are disabled",
                "detail": f"set the environment variable {self.token_env} and restart",
            }
        authorization = None
        for name, value in scope.get("headers") or ():
            if name.lower() == b"authorization":
                authorization = value
                break
        if not bearer_matches(authorization, self.token):
            self.log.warning(
                "control request refused",
                reason="bad token",
                action=action,
                bot=bot_id,
                client=client,
            )
            return 401, {"error": "missing or invalid bearer token"}
        return None

    async def _control(
        self, action: str, bot_id: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        log = self.log.bind(action=action, bot=bot_id)
        try:
            if action == "spawn":
                try:
                    spec = _parse_spec(await self._read_body(scope, receive))
                except _BodyTooLargeError:
                    await _send_json(
                        send, 413, {"error": "body too large", "max_bytes": self.max_body_bytes}
                    )
                    return
                bot_id = await self.control.spawn_bot(spec)
                log.info("bot spawned", bot=bot_id)
                await _send_json(
                    send,
                    201,
                    {"bot": bot_id, "action": "spawned"},
                    [(b"location", f"/bots/{bot_id}".encode())],
                )
                return
            if action in ("halt", "resume_trading"):
                if action == "halt":
                    result = await self.control.halt("halted by the operator (POST /control/halt)")
                else:
                    result = await self.control.resume_trading()
                log.warning("trading control applied", outcome=result.get("action"))
                await _send_json(send, 200, dict(result))
                return
            assert bot_id is not None  # match_route gives every other control route an id
            if action == "stop":
                await self.control.stop_bot(bot_id)
                done = "stopped"
            elif action == "pause":
                await self.control.pause_bot(bot_id)
                done = "paused"
            else:
                await self.control.resume_bot(bot_id)
                done = "resumed"
            log.info("bot control applied", outcome=done)
            await _send_json(send, 200, {"bot": bot_id, "action": done})
        except _ClientGoneError:
            log.info("control request abandoned by client")
        except ConfigError as exc:
            log.info("control request invalid", problems=list(exc.problems))
            await _send_json(
                send, 400, {"error": "invalid bot spec", "problems": list(exc.problems)}
            )
        except KeyError:
            await _send_json(send, 404, {"error": "unknown bot", "bot": bot_id})
        except BotCriptoFyError as exc:  # e.g. pausing a bot that gave up or is restarting
            await _send_json(send, 409, {"error": str(exc), "bot": bot_id})
        except Exception:
            log.exception("control request failed")
            await _send_json(send, 500, {"error": "internal error"})

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope.get("headers") or ():
            if name.lower() == b"content-length" and value.isdigit():
                if int(value) > self.max_body_bytes:
                    raise _BodyTooLargeError
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGoneError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _parse_spec(body: bytes) -> dict[str, Any]:
    try:
        spec = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError([f"body: invalid JSON ({exc})"]) from exc
    if not isinstance(spec, dict):
        raise ConfigError(["body: must be a JSON object with the keys of a [[bots]] table"])
    return spec


async def _send(
    send: Send,
    status: int,
    payload: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _send_json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send(send, status, dumps(body), JSON.encode(), headers)


def hypercorn_config(config: HttpConfig) -> hypercorn.config.Config:
    hc = hypercorn.config.Config()
    host = f"[{config.host}]" if ":" in config.host else config.host
    hc.bind = [f"{host}:{config.port}"]
    hc.accesslog = None
    # A Logger instance is used as is; a string would make hypercorn install its own handler.
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.include_server_header = False
    return hc


def parse_bind(bind: str) -> ServerAddress:
    """``http://127.0.0.1:8765`` or ``http://[::1]:8765`` (hypercorn's started value)."""
    _, _, hostport = bind.partition("://")
    host, _, port = hostport.rpartition(":")
    return ServerAddress(host.strip("[]"), int(port))


async def run_http_server(
    config: HttpConfig,
    control: ControlPlane,
    registry: CollectorRegistry,
    *,
    task_status: trio.TaskStatus[ServerAddress | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; ``task_status.started(ServerAddress)`` once listening.

    With ``config.enabled`` false it reports ``None`` and returns at once; the tree should not
    declare the HTTP child then (a permanent child that returns would be restarted).
    """
    log = logger.bind(actor="http")
    if not config.enabled:
        log.info("http server disabled")
        task_status.started(None)
        return
    token = os.environ.get(config.token_env) or None
    app = HttpApp(control, registry, token=token, token_env=config.token_env)

    def started(binds: list[str]) -> None:
        address = parse_bind(binds[0])
        log.info(
            "http server listening",
            host=address.host,
            port=address.port,
            control_enabled=token is not None,
            token_env=config.token_env,
        )
        task_status.started(address)

    # Hypercorn reports its binds through task_status; translating them in place (rather than
    # via a nursery of our own) keeps its errors unwrapped by one more group level.
    await hypercorn.trio.serve(
        cast("ASGIFramework", app),  # a plain ASGI callable; hypercorn types its own events
        hypercorn_config(config),
        mode="asgi",
        task_status=_StartedHook(started),
    )


@attrs.frozen
class _StartedHook:
    """A ``task_status`` stand-in that hands hypercorn's started value to a callback."""

    callback: Callable[[list[str]], None]

    def started(self, value: list[str] | None = None) -> None:
        self.callback(value or [])
