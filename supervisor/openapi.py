"""The OpenAPI 3.1 document of the HTTP surface, served at ``GET /openapi.json``.

Decisions:

* Written by hand as data, next to the code it describes, rather than generated from it: there
  is no framework to generate it, and a hand-written document is one a client can trust only
  if it is checked. ``tests/daemon/test_read_api.py`` checks it, with schemathesis, against a
  live daemon: every documented route's responses must validate against it.
* Money is a string (``Decimal``'s exact text, the journal's own format), never a float.
* Reads declare ``security: []`` (open, like ``/health``); control routes declare the bearer
  scheme. Error bodies share one shape: ``error`` plus optional details.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from supervisor import web
from supervisor.read_api import DEFAULT_LIMIT, MAX_LIMIT, MAX_SEQ

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


CLUSTER_NODES: Schema = {
    "type": "object",
    "description": "Bots placed across a cluster: what each other node's accounts answered"
    " (null: not reached in time; or an error when Redis was unreachable).",
}


def _json(description: str, schema: Schema, headers: dict[str, Any] | None = None) -> Schema:
    out: Schema = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str) -> Schema:
    return _json(description, _ref("Error"))


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
DECIMAL = _ref("Decimal")
SIDE: Schema = {"type": "string", "enum": ["buy", "sell"]}
FILES = sorted(name for name in web.ASSETS if name != web.INDEX)

SCHEMAS: dict[str, Schema] = {
    "Decimal": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$",
        "description": "An exact decimal number as text (Python's str(Decimal)).",
        "examples": ["0.00512", "-1.25", "10000"],
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": STRING,
            "detail": STRING,
            "problems": {"type": "array", "items": STRING},
            "bot": STRING,
            "max_bytes": INTEGER,
        },
    },
    "Health": _object(
        {"status": {"type": "string", "enum": ["ok", "degraded"]}},
        {
            "exchanges": {"type": "object", "additionalProperties": _ref("HealthEntry")},
            "bots": {"type": "object", "additionalProperties": _ref("HealthEntry")},
            "accounts": {"type": "object", "additionalProperties": _ref("HealthEntry")},
            "uptime_s": _nullable(NUMBER),
            "error": STRING,
        },
    ),
    "HealthEntry": {
        "type": "object",
        "description": "One exchange, bot or account; further details vary by kind.",
        "required": ["healthy"],
        "properties": {"healthy": BOOLEAN, "state": STRING},
    },
    "Bot": _object(
        {
            "id": STRING,
            "exchange": STRING,
            "symbol": STRING,
            "strategy": STRING,
            "mode": {"type": "string", "enum": ["paper", "live"]},
            "state": {
                "type": "string",
                "description": "The bot's own state (starting, running, paused, halted, "
                "degraded, stopped) or, while its actor is not running, its supervised "
                "child's (backoff, circuit_open, failed).",
            },
            "healthy": BOOLEAN,
            "restarts": INTEGER,
            "last_error": _nullable(STRING),
            "blocked": _nullable(STRING),
            "node": _nullable(STRING),
            "epoch": _nullable(INTEGER),
            "feed": _nullable(STRING),
            "price_status": _nullable(
                {"type": "string", "enum": ["confirming", "trusted", "quarantined"]}
            ),
            "last_price": _nullable(DECIMAL),
            "position": _nullable(DECIMAL),
            "entry_price": _nullable(DECIMAL),
            "quote_balance": _nullable(DECIMAL),
            "base_balance": _nullable(DECIMAL),
            "equity": _nullable(DECIMAL),
            "realized_pnl": _nullable(DECIMAL),
            "realized_pnl_today": _nullable(DECIMAL),
            "unrealized_pnl": _nullable(DECIMAL),
            "fees": _nullable(DECIMAL),
            "last_action": _nullable(STRING),
            "orders": _nullable(INTEGER),
            "fills": _nullable(INTEGER),
            "open_orders": _nullable(INTEGER),
            "open_positions": _nullable(INTEGER),
            "config": {
                "type": "object",
                "description": "The bot's spec, with the keys of a [[bots]] config table.",
                "required": ["id", "exchange", "symbol", "strategy", "params"],
            },
        }
    )
    | {
        "description": "A bot with its book. The book's fields are null while its actor is "
        "not running (starting or restarting); equity = quote + base x last price."
    },
    "BotList": _object({"bots": {"type": "array", "items": _ref("Bot")}}),
    "Order": _object(
        {
            "seq": {"type": "integer", "minimum": 1},
            "client_id": STRING,
            "symbol": STRING,
            "side": SIDE,
            "type": {"type": "string", "enum": ["market", "limit"]},
            "size": DECIMAL,
            "price": _nullable(DECIMAL),
            "tag": STRING,
            "position_id": _nullable(STRING),
            "status": {
                "type": "string",
                "enum": ["intent", "open", "filled", "cancelled", "rejected"],
            },
            "status_reason": STRING,
            "filled_size": DECIMAL,
            "created_ts": NUMBER,
        }
    ),
    "Fill": _object(
        {
            "seq": {"type": "integer", "minimum": 1},
            "client_id": STRING,
            "side": SIDE,
            "price": DECIMAL,
            "size": DECIMAL,
            "fee": DECIMAL,
            "position_id": _nullable(STRING),
            "ts": NUMBER,
            "venue_fill_id": _nullable(STRING),
        }
    ),
    "OrderPage": _object(
        {
            "bot": STRING,
            "total": INTEGER,
            "items": {"type": "array", "items": _ref("Order")},
            "next_before": _nullable(INTEGER),
        }
    ),
    "FillPage": _object(
        {
            "bot": STRING,
            "total": INTEGER,
            "items": {"type": "array", "items": _ref("Fill")},
            "next_before": _nullable(INTEGER),
        }
    ),
    "Lot": _object(
        {
            "position_id": STRING,
            "size": DECIMAL,
            "entry_price": DECIMAL,
            "cost": DECIMAL,
            "opened_ts": NUMBER,
            "unrealized_pnl": _nullable(DECIMAL),
        }
    ),
    "Positions": _object(
        {
            "bot": STRING,
            "symbol": STRING,
            "size": DECIMAL,
            "entry_price": _nullable(DECIMAL),
            "last_price": _nullable(DECIMAL),
            "unrealized_pnl": _nullable(DECIMAL),
            "lots": {"type": "array", "items": _ref("Lot")},
        }
    ),
    "BotSpec": {
        "type": "object",
        "description": "The keys of a [[bots]] config table (see the config reference).",
        "required": ["id", "exchange", "symbol"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,24}$"},
            "exchange": STRING,
            "symbol": {"type": "string", "examples": ["BTC/USDT"]},
            "strategy": STRING,
            "params": {"type": "object"},
            "order_quote": DECIMAL,
        },
    },
    "BotAction": _object(
        {
            "bot": STRING,
            "action": {"type": "string", "enum": ["spawned", "stopped", "paused", "resumed"]},
        }
    ),
    "Halted": _object(
        {
            "action": {"type": "string", "const": "halted"},
            "reason": STRING,
            "bots": {"type": "array", "items": STRING, "description": "The bots paused."},
            "accounts": {
                "type": "object",
                "additionalProperties": INTEGER,
                "description": "Orders cancelled on the venue, per live account.",
            },
        },
        {"nodes": CLUSTER_NODES},
    ),
    "TradingResumed": _object(
        {
            "action": {"type": "string", "const": "trading resumed"},
            "accounts": {"type": "array", "items": STRING, "description": "Live accounts."},
        },
        {"nodes": CLUSTER_NODES},
    ),
}

NO_STORE = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}}

BOT_ID: Schema = {
    "name": "bot_id",
    "in": "path",
    "required": True,
    "description": "The bot's id.",
    "schema": STRING,
}
PAGE_PARAMETERS: list[Schema] = [
    {
        "name": "limit",
        "in": "query",
        "description": "Items per page, newest first.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "before",
        "in": "query",
        "description": "Only items whose seq is below this (the previous page's next_before).",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ},
    },
]
UNKNOWN_BOT = _error("No bot with this id runs here.")
NOT_RUNNING = _error("The bot exists but its actor is not running (gave up, restarting).")
BAD_QUERY = _error("Invalid query parameters (problems lists them).")
UNAUTHORIZED = _error("Missing or wrong bearer token.")
DISABLED = _error("Control is disabled: the token's environment variable is unset.")


def _read(summary: str, response: Schema, *extra: tuple[str, Schema]) -> Schema:
    return {
        "summary": summary,
        "security": [],
        "responses": {"200": response, **dict(extra)},
    }


def _control(
    summary: str,
    ok: tuple[str, Schema],
    *extra: tuple[str, Schema],
    body: Schema | None = None,
) -> Schema:
    out: Schema = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {ok[0]: ok[1], "401": UNAUTHORIZED, "403": DISABLED, **dict(extra)},
    }
    if body is not None:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return out


def _text(description: str, media_type: str) -> Schema:
    return {"description": description, "content": {media_type: {"schema": STRING}}}


PATHS: dict[str, Schema] = {
    "/": {
        "get": _read("The web dashboard (HTML).", _text("The dashboard page.", "text/html")),
    },
    "/web/{asset}": {
        "get": {
            **_read(
                "The dashboard's static files.",
                {
                    "description": "The file.",
                    "content": {
                        "text/javascript": {"schema": STRING},
                        "text/css": {"schema": STRING},
                    },
                },
                ("404", _error("No such file.")),
            ),
            "parameters": [
                {
                    "name": "asset",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": FILES},
                }
            ],
        }
    },
    "/openapi.json": {"get": _read("This document.", _json("OpenAPI 3.1.", {"type": "object"}))},
    "/health": {
        "get": _read(
            "Every exchange, bot and account with a healthy verdict.",
            _json("All healthy.", _ref("Health"), NO_STORE),
            ("503", _json("Something is not healthy (fail closed).", _ref("Health"), NO_STORE)),
        )
    },
    "/metrics": {
        "get": _read("Prometheus exposition.", _text("Metrics, text format.", "text/plain"))
    },
    "/bots": {
        "get": _read("Every bot this system runs.", _json("The bots.", _ref("BotList"), NO_STORE)),
        "post": _control(
            "Spawn a paper bot.",
            (
                "201",
                _json(
                    "Spawned.",
                    _ref("BotAction"),
                    {"Location": {"schema": STRING, "description": "/bots/{id}"}},
                ),
            ),
            ("400", _error("Invalid spec (problems lists them), or a duplicate id.")),
            ("413", _error("Body too large.")),
            body=_ref("BotSpec"),
        ),
    },
    "/bots/{bot_id}": {
        "parameters": [BOT_ID],
        "get": _read("One bot.", _json("The bot.", _ref("Bot"), NO_STORE), ("404", UNKNOWN_BOT)),
        "delete": _control(
            "Stop a bot (its journal stays: spawning it again resumes it).",
            ("200", _json("Stopped.", _ref("BotAction"))),
            ("404", UNKNOWN_BOT),
        ),
    },
    "/bots/{bot_id}/orders": {
        "parameters": [BOT_ID],
        "get": {
            **_read(
                "The bot's orders from the journal, newest first.",
                _json("A page of orders.", _ref("OrderPage"), NO_STORE),
                ("400", BAD_QUERY),
                ("404", UNKNOWN_BOT),
            ),
            "parameters": PAGE_PARAMETERS,
        },
    },
    "/bots/{bot_id}/fills": {
        "parameters": [BOT_ID],
        "get": {
            **_read(
                "The bot's fills from the journal, newest first.",
                _json("A page of fills.", _ref("FillPage"), NO_STORE),
                ("400", BAD_QUERY),
                ("404", UNKNOWN_BOT),
            ),
            "parameters": PAGE_PARAMETERS,
        },
    },
    "/bots/{bot_id}/positions": {
        "parameters": [BOT_ID],
        "get": _read(
            "The bot's open lots (its journal's fills folded), marked at its last price.",
            _json("The open position.", _ref("Positions"), NO_STORE),
            ("404", UNKNOWN_BOT),
        ),
    },
    "/bots/{bot_id}/pause": {
        "parameters": [BOT_ID],
        "post": _control(
            "Pause a bot: it keeps its position and stops deciding.",
            ("200", _json("Paused.", _ref("BotAction"))),
            ("404", UNKNOWN_BOT),
            ("409", NOT_RUNNING),
        ),
    },
    "/bots/{bot_id}/resume": {
        "parameters": [BOT_ID],
        "post": _control(
            "Resume a paused bot.",
            ("200", _json("Resumed.", _ref("BotAction"))),
            ("404", UNKNOWN_BOT),
            ("409", NOT_RUNNING),
        ),
    },
    "/control/halt": {
        "post": _control(
            "Halt all trading: accounts refuse orders and cancel ours; every bot pauses.",
            ("200", _json("Halted.", _ref("Halted"))),
        )
    },
    "/control/resume-trading": {
        "post": _control(
            "Lift the accounts' halt (bots stay paused until each is resumed).",
            ("200", _json("Trading resumed.", _ref("TradingResumed"))),
        )
    },
}


def _version() -> str:
    try:
        return version("botcriptofy")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0.0.0"


@cache
def openapi_document() -> dict[str, Any]:
    """The document (built once; callers must not mutate it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "BotCriptoFy daemon",
            "version": _version(),
            "description": "Health, metrics, the read API (open) and bot control (bearer "
            "token from the environment variable named by [http] token_env).",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
