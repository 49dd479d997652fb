"""Print docs/config-reference.md, generated from the config's attrs classes.

    python docs/gen_config_reference.py > docs/config-reference.md

Types, defaults and checks come from the classes themselves (``supervisor.config`` and the
built-in strategies' ``Params``), so they cannot drift; meanings come from ``MEANINGS`` below.
A field without a meaning, or a meaning for a field that no longer exists, is an error:
``tests/docs/test_config_reference.py`` runs this script and compares its output with the
committed file.
"""

from __future__ import annotations

import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors import schema
from actors.bots.strategy import BUILTIN_STRATEGIES, resolve_strategy_class
from supervisor import config as cfg

# (TOML header, class, note). Headers with "[[...]]" are arrays of tables.
TABLES: tuple[tuple[str, type, str], ...] = (
    ("[supervisor]", cfg.SupervisorConfig, "Restart intensity and shutdown grace."),
    (
        "[backoff]",
        cfg.BackoffPolicy,
        "Restart delays of exchange connections and bots: exponential with full jitter, the "
        "delay before restart *n* (0-based, counted since the last reset) is drawn uniformly "
        "from `[0, min(max_s, initial_s * multiplier**n)]`.",
    ),
    (
        "[circuit_breaker]",
        cfg.BreakerPolicy,
        "One breaker per exchange: `closed` -> `open` after `failure_threshold` consecutive "
        "failures; after `reset_timeout_s` one trial attempt (`half_open`) closes it again "
        "(once it has run healthily for `backoff.reset_after_s`) or re-opens it.",
    ),
    (
        "[[exchanges]]",
        cfg.ExchangeConfig,
        "One entry per exchange connection pool. Several entries may use the same protocol "
        "under different names (then set `protocol`).",
    ),
    (
        "[exchanges.backoff]",
        cfg.BackoffPolicy,
        "Optional, per exchange: replaces `[backoff]` for this exchange. It is a whole table: "
        "fields left out take the defaults below, not the values of the top-level `[backoff]`.",
    ),
    (
        "[exchanges.circuit_breaker]",
        cfg.BreakerPolicy,
        "Optional, per exchange: replaces `[circuit_breaker]` for this exchange (a whole "
        "table, like `[exchanges.backoff]`).",
    ),
    ("[[bots]]", cfg.BotConfig, "One entry per bot: one strategy on one symbol of one exchange."),
    (
        "[bots.risk]",
        cfg.RiskConfig,
        "Checked before every order. Sells are reduce-only: the size caps, "
        "`max_open_positions` and the daily-loss halt apply to buys only.",
    ),
    ("[bots.paper]", cfg.PaperConfig, 'The paper executor (`mode = "paper"`).'),
    ("[bots.market]", cfg.MarketConfig, "The market's trading rules; orders are rounded to them."),
    (
        "[[accounts]]",
        cfg.AccountConfig,
        'One entry per live venue account (Binance Spot); bots with `mode = "live"` name one. '
        "Keys are named, never written here (see `[secrets]`). Testnet by default.",
    ),
    ("[http]", cfg.HttpConfig, "The daemon's HTTP server (`run.py` only, not `open_supervisor`)."),
    (
        "[journal]",
        cfg.JournalConfig,
        "The journal of orders, fills and bot state: a SQLite file, or PostgreSQL with `url`.",
    ),
    ("[logging]", cfg.LoggingConfig, "Log sinks (`run.py` only). Command-line flags win."),
    ("[alerts]", cfg.AlertsConfig, "Operator alerts: always logged, and posted to webhooks."),
    ("[[alerts.webhooks]]", cfg.WebhookConfig, "One entry per webhook sink."),
    (
        "[record]",
        cfg.RecordConfig,
        "Recording of market data to Parquet (present: on). See the user guide's"
        ' "Recording market data".',
    ),
    (
        "[[record.streams]]",
        cfg.RecordStream,
        "A stream to record besides the bots' (or instead, with `bot_streams = false`).",
    ),
    (
        "[cluster]",
        cfg.ClusterConfig,
        "Optional: several daemons share one connection per exchange through Redis (the user"
        ' guide\'s "Run a cluster"). Absent: one process, no Redis. `run.py --node NAME'
        " --roles feed,bots` overrides `node` and `roles`, so every node can run one file.",
    ),
    (
        "[secrets]",
        cfg.SecretsConfig,
        "Where the secrets named by `url_env` and `[[accounts]]` are looked up: the "
        "secrets file first, then the environment. (`[http] token_env` is read from the "
        "environment only.)",
    ),
)

# Top-level keys that are not tables; TOML wants them above the first table.
TOP_LEVEL: tuple[str, ...] = ("plugins",)

MEANINGS: dict[str, str] = {
    # top level
    "Config.plugins": (
        "Strategy modules (`package.module`) that bots spawned over the control API "
        "(`POST /bots`, `System.spawn_bot` with a mapping) may use, besides the built-ins and "
        "the modules of the configured bots' strategies. Plugins are trusted code: a spawn "
        "naming any other module is refused before it is imported. Each module is imported "
        "when the config is checked and at start; exact names (a package does not allow its "
        "submodules)."
    ),
    # [supervisor]
    "SupervisorConfig.max_restarts": (
        "Restart intensity, a budget per bot and per exchange. A bot restarted more often than "
        "this within `period_s` is given up on alone (state `failed`, a `crash_loop` alert) and "
        "the other bots go on; an exchange beyond it stops the daemon (exit code 1). Restarts "
        "that wait on an open circuit breaker do not count."
    ),
    "SupervisorConfig.period_s": "The sliding window for `max_restarts`, in seconds.",
    "SupervisorConfig.shutdown_grace_s": (
        "How long a stopping bot may take to clean up before the next one is stopped."
    ),
    # [backoff]
    "BackoffPolicy.initial_s": "Upper bound of the first restart delay.",
    "BackoffPolicy.multiplier": "Growth of the delay bound per consecutive failure (>= 1).",
    "BackoffPolicy.max_s": "Cap on the delay bound (>= `initial_s`).",
    "BackoffPolicy.reset_after_s": (
        "A child that has run this long since it was ready is healthy: its backoff and "
        "failure count reset and a half-open circuit breaker closes."
    ),
    # [circuit_breaker]
    "BreakerPolicy.failure_threshold": "Consecutive failures that open the breaker.",
    "BreakerPolicy.reset_timeout_s": (
        "Time the breaker stays open before its one trial attempt. No connection is tried "
        "while it is open."
    ),
    # [[exchanges]]
    "ExchangeConfig.name": (
        "The name bots use for this exchange; unique; 1-32 letters, digits, `-` or `_`."
    ),
    "ExchangeConfig.protocol": (
        "Wire protocol: `binance`, `coinbase`, `coinbase_advanced`, `kraken` (v2) or "
        "`kraken_v1`. Unset: `name`, which must then be one of these."
    ),
    "ExchangeConfig.url": "WebSocket URL. Unset: the protocol's public production URL.",
    "ExchangeConfig.rest_url": (
        "REST base URL of the fallback poller. Unset: the protocol's production REST URL."
    ),
    "ExchangeConfig.stale_after_s": (
        "A stream with no data for this long is told `stale` and, if it brought data on its "
        "connection before, resubscribed (twice at most, this long apart; then the connection "
        "is replaced); a connection with no frame at all (or only stale streams) for this "
        "long, or that has not restored every subscription this long after connecting, is "
        "replaced. Set it above the quietest stream's normal gap."
    ),
    "ExchangeConfig.fallback": (
        '`"rest"`: while the breaker is not closed, poll REST tickers (bots may only close '
        'positions on them). `"none"`: subscribers are told `down`.'
    ),
    "ExchangeConfig.rest_poll_interval_s": "Interval of the REST fallback poller.",
    "ExchangeConfig.transport": (
        'WebSocket engine. `"wsproto"` hands subscribers every message of one socket read at '
        'once, which keeps the feed rate with many subscribers; `"trio-websocket"` moves one '
        "message per scheduler round."
    ),
    "ExchangeConfig.backoff": "Override of `[backoff]` (see `[exchanges.backoff]`).",
    "ExchangeConfig.circuit_breaker": "Override of `[circuit_breaker]`.",
    # [[bots]]
    "BotConfig.id": (
        "Unique bot id, 1-24 letters, digits, `-` or `_`. It keys the bot's journal: a bot "
        "started again with the same id resumes its balances and positions."
    ),
    "BotConfig.exchange": "The `name` of an `[[exchanges]]` entry.",
    "BotConfig.symbol": "Unified `BASE/QUOTE` symbol, upper case (`BTC/USDT`, `BTC/USD`).",
    "BotConfig.strategy": (
        "A built-in (`rsi_reversion`, `sma_cross`, `threshold`) or your own class as "
        '`"package.module:Class"`. Over the control API, only built-ins and modules the '
        "config allows (see `plugins`)."
    ),
    "BotConfig.params": (
        "The strategy's parameters, structured into its `Params` class (built-ins below); "
        "unknown keys are errors."
    ),
    "BotConfig.mode": (
        '`"paper"` trades on the paper executor; `"live"` sends real orders through the '
        "bot's `account` (config file only: the HTTP API spawns paper bots)."
    ),
    "BotConfig.order_quote": "Size of a buy, in quote currency, when the signal names none.",
    "BotConfig.close_on_fallback": (
        "On REST-fallback prices the bot may close (never open) positions; `false` forbids "
        "even that."
    ),
    "BotConfig.risk": "See `[bots.risk]`.",
    "BotConfig.paper": "See `[bots.paper]`.",
    "BotConfig.market": "See `[bots.market]`.",
    "BotConfig.account": 'The `[[accounts]]` entry that trades a `mode = "live"` bot.',
    # [bots.risk]
    "RiskConfig.max_order_quote": "Largest buy, as notional in quote currency.",
    "RiskConfig.max_position_quote": (
        "Largest position after a buy: held base at the bid plus resting buys, in quote."
    ),
    "RiskConfig.max_open_positions": "Open lots plus resting buy orders (1: no adding).",
    "RiskConfig.daily_loss_limit_quote": (
        "When today's (UTC) realized PnL plus unrealized PnL reaches minus this, the bot "
        "halts buying until the next UTC day (alert `bot_halted`)."
    ),
    "RiskConfig.max_orders_per_minute": (
        "Orders in any sliding 60 s window. Protective exits are never refused by it, but count."
    ),
    "RiskConfig.max_price_age_s": (
        "No order, exits included, on a ticker received longer ago than this."
    ),
    "RiskConfig.max_tick_move_pct": (
        "Price jump guard: a tick whose mid is further than this from the last accepted mid "
        "is quarantined (no order, no exit, no indicator); a new level is accepted on its "
        "`price_confirm_ticks`-th consecutive tick."
    ),
    "RiskConfig.price_confirm_ticks": (
        "Consecutive ticks, each within `max_tick_move_pct` of the one before, that establish "
        "a price: at every start of the bot (no single print is trusted; nothing trades and "
        "no exit fires until then) and after a jump."
    ),
    "RiskConfig.stop_loss_pct": (
        "Sell a lot at market when the bid falls this far below its entry price. Unset: off."
    ),
    "RiskConfig.take_profit_pct": (
        "Sell a lot at market when the bid rises this far above its entry price. Unset: off."
    ),
    "RiskConfig.trailing_stop_pct": (
        "Sell a lot at market when the bid falls this far below its highest bid since entry. "
        "Unset: off."
    ),
    # [bots.paper]
    "PaperConfig.quote_balance": (
        "Starting quote balance of a bot with no journal history (afterwards the journal wins)."
    ),
    "PaperConfig.fee_pct": "Fee in percent of the notional, paid in quote on every fill.",
    "PaperConfig.slippage_pct": (
        "Market orders fill this much worse than the touch: buys at ask x (1 + s), sells at "
        "bid x (1 - s)."
    ),
    # [bots.market]
    "MarketConfig.tick_size": "Price step; fill and limit prices are rounded to it.",
    "MarketConfig.lot_size": "Size step; order sizes are rounded down to it.",
    "MarketConfig.min_notional": "Orders worth less than this (quote) are refused.",
    # [[accounts]]
    "AccountConfig.name": "The account's name, which live bots give as `account`.",
    "AccountConfig.api_key_env": (
        "Name of the environment variable (or secrets-file key) holding the API key."
    ),
    "AccountConfig.api_secret_env": (
        'Same, for the secret: the HMAC secret, or the PEM private key with `signing = "ed25519"`.'
    ),
    "AccountConfig.venue": "The venue's protocol; only Binance Spot so far.",
    "AccountConfig.signing": "The API key's type: HMAC-SHA256 or Ed25519.",
    "AccountConfig.rest_url": "REST base URL (without `/api`). Default: the Spot testnet.",
    "AccountConfig.ws_api_url": "WebSocket API URL (the user data stream). Default: testnet.",
    "AccountConfig.allow_mainnet": (
        "Required for any URL that is not the testnet, the demo venue or loopback: real money."
    ),
    "AccountConfig.client_id_prefix": (
        "Starts every client order id of ours (`<prefix>_<bot>_<seq>`); give each deployment "
        "sharing an account its own."
    ),
    "AccountConfig.recv_window_ms": (
        "`recvWindow` of signed requests: how late the venue may still act on one. Also bounds "
        "how long an order whose answer was lost stays in doubt."
    ),
    "AccountConfig.request_timeout_s": "Timeout of one REST request and of the stream connect.",
    "AccountConfig.max_order_quote": "Account cap on one order's notional, across its bots.",
    "AccountConfig.max_working_quote": (
        "Account cap on the notional of all its orders sent and not yet final."
    ),
    "AccountConfig.foreign_orders": (
        "At start, an open order with our prefix and a bot's id that the journal lacks: "
        "`cancel` it, `adopt` it (journal it for its bot) or only `report` it."
    ),
    "AccountConfig.balance_tolerance_pct": (
        "At start, a venue balance further than this from what the journal explains stops "
        "the bots trading that asset (alert `bot_halted`)."
    ),
    "AccountConfig.order_poll_s": (
        "Every working order is also looked up this often; a fill the user stream missed "
        "for longer resubscribes it."
    ),
    "AccountConfig.unknown_poll_s": "Lookups of an order whose outcome is unknown, this often.",
    "AccountConfig.unknown_confirmations": (
        'Consecutive "does not exist" answers, after the venue\'s deadline, that prove an '
        "order in doubt was never placed."
    ),
    "AccountConfig.processing_limit_s": (
        "The venue's longest wait for its matching engine (Binance documents 10 s): part of "
        "the deadline after which a lost order can no longer appear. Lower it only for a venue "
        "that re-checks `recvWindow` at its engine and waits no longer (the local venue: 0)."
    ),
    "AccountConfig.query_lag_s": (
        'Extra wait after the venue\'s deadline before "does not exist" counts (its lookups '
        "lag its engine)."
    ),
    # [http]
    "HttpConfig.enabled": "Serve `/health`, `/metrics` and the control routes.",
    "HttpConfig.host": "Address to bind.",
    "HttpConfig.port": "Port to bind; 0 picks a free one (`--http-port` overrides).",
    "HttpConfig.token_env": (
        "Environment variable holding the bearer token of the control routes, read at "
        "start; unset or empty: control routes answer 403."
    ),
    # [cluster]
    "ClusterConfig.redis_url": (
        "The Redis every node of the cluster uses (`redis://`, `rediss://` or `unix://`). Set"
        " this or `redis_url_env`."
    ),
    "ClusterConfig.redis_url_env": (
        "Name of the secret (secrets file, then environment) holding the Redis URL, for a URL"
        " with a password."
    ),
    "ClusterConfig.node": (
        "This node's name, unique in the cluster (`--node` overrides it). On a cluster node"
        " `{node}` in `[journal] path` is replaced by it."
    ),
    "ClusterConfig.roles": (
        "`feed`: may lead exchanges (hold their one connection and publish the feed);"
        " `bots`: runs the configured bots. A node without `feed` only reads the feed."
    ),
    "ClusterConfig.namespace": (
        "Prefix of every Redis key the cluster uses; clusters sharing a Redis need different ones."
    ),
    "ClusterConfig.lease_ttl_s": (
        "Lifetime of an exchange's leadership lease, renewed every third of it. A dead or"
        " cut-off leader is replaced within about 2.75 x this plus a connect."
    ),
    "ClusterConfig.stream_maxlen": "Entries kept per exchange's feed stream (`MAXLEN ~`).",
    "ClusterConfig.redis_timeout_s": (
        "Deadline of each Redis call; a node whose calls miss it tells its streams `down` and"
        " tries again."
    ),
    "ClusterConfig.bot_placement": (
        "`cluster`: the bots (configured, or spawned on any node) run on the `bots` nodes, one"
        " node per bot, balanced by count, moved when a node dies (needs `[journal] url`);"
        " `per_node`: every `bots` node runs the configured bots itself."
    ),
    # [journal]
    "JournalConfig.path": "SQLite file (its directory is created if missing).",
    "JournalConfig.fsync": (
        "`PRAGMA synchronous=FULL`: a committed fill survives power loss, not only kill -9. "
        "PostgreSQL: off is `synchronous_commit=off` (a server crash may lose the last commits)."
    ),
    "JournalConfig.url": (
        "PostgreSQL instead of the SQLite file: `postgresql://user@host:5432/db` (tables in the "
        "URL's `search_path`, e.g. `?options=-csearch_path%3Dname`). No password here: a URL "
        "with one is refused."
    ),
    "JournalConfig.password_env": (
        "Environment variable (or secrets-file key) holding PostgreSQL's password; unset: "
        "libpq's `PGPASSWORD` or `~/.pgpass`, or none."
    ),
    # [logging]
    "LoggingConfig.level": "Minimum level (`--log-level` overrides).",
    "LoggingConfig.json": "Log JSON lines to stderr instead of text (`--log-json` sets it).",
    "LoggingConfig.file": "Also write JSON lines to this file.",
    # [alerts]
    "AlertsConfig.webhooks": "Webhook sinks (see `[[alerts.webhooks]]`).",
    "AlertsConfig.min_interval_s": (
        "An alert of the same kind and key within this many seconds of the last one sent is "
        "suppressed (and counted)."
    ),
    "WebhookConfig.url": (
        "Where to POST each alert. Set exactly one of `url` and `url_env`; Slack and Discord "
        "URLs embed their secret, so prefer `url_env`."
    ),
    "WebhookConfig.url_env": (
        "Name of the environment variable (or secrets-file key) holding the URL; a missing "
        "one stops the daemon at start with exit code 2."
    ),
    "WebhookConfig.format": (
        '`"json"`: `{kind, key, severity, message, fields, ts}`; `"slack"`: `{"text": ...}`; '
        '`"discord"`: `{"content": ..., "allowed_mentions": {"parse": []}}`.'
    ),
    # [record]
    "RecordConfig.dir": "Directory of the recording (relative: to the config file's).",
    "RecordConfig.streams": "Streams to record (`[[record.streams]]`).",
    "RecordConfig.bot_streams": "Also the ticker and trade streams of every configured bot.",
    "RecordConfig.flush_s": "Seconds between flushes to disk: a crash loses at most this much.",
    "RecordConfig.rotate_s": "Seconds of data per Parquet file (a file also ends with its day).",
    "RecordConfig.max_buffer_rows": (
        "Rows that may wait for the disk; beyond, rows are dropped and counted."
    ),
    "RecordConfig.raw_frames": "Also record every frame received, for replay through codecs.",
    "RecordStream.exchange": "A configured exchange's `name`.",
    "RecordStream.symbol": "Unified symbol, `BASE/QUOTE`.",
    "RecordStream.kind": "`ticker` or `trade`.",
    # [secrets]
    "SecretsConfig.file": (
        'TOML file of `NAME = "value"` lines, looked up before the environment.'
    ),
    # built-in strategies
    "SmaCrossParams.fast": "Fast moving-average length (points).",
    "SmaCrossParams.slow": "Slow moving-average length (points, > `fast`).",
    "SmaCrossParams.price": "Price of a tick: mid of bid/ask, or last trade (mid where none).",
    "SmaCrossParams.bar_s": "0: every accepted tick is a point; > 0: closes of bars this long.",
    "RsiReversionParams.period": "Price changes in the RSI window.",
    "RsiReversionParams.oversold": "Buy (when flat) below this RSI.",
    "RsiReversionParams.overbought": "Close (when holding) above this RSI (> `oversold`).",
    "RsiReversionParams.price": "As for `sma_cross`.",
    "RsiReversionParams.bar_s": "As for `sma_cross`.",
    "ThresholdParams.buy_below": (
        "Buy (when flat) while the price is below this. Set this, `sell_above` or both."
    ),
    "ThresholdParams.sell_above": (
        "Close (when holding) while the price is above this (> 0, > `buy_below`)."
    ),
    "ThresholdParams.price": "As for `sma_cross`.",
    "ThresholdParams.limit_offset_pct": (
        "Unset: market orders. Set: limit orders this far inside the price."
    ),
}

# Field checks the classes declare as plain validator functions.
CHECKS: dict[Any, str] = {
    schema.positive: "> 0",
    schema.non_negative: ">= 0",
    schema.at_least_one: ">= 1",
    schema.percent: "> 0 and < 100",
    schema.tcp_port: "0..65535",
    schema.unified_symbol: "`BASE/QUOTE`",
    schema.env_var_name: "an `UPPER_CASE` variable name",
    cfg.module_names: "module names",
}


def _validators(field: attrs.Attribute) -> list[Any]:
    validator = field.validator
    if validator is None:
        return []
    # attrs combines several validators of one field into an ``and_`` validator.
    return list(getattr(validator, "_validators", (validator,)))


def _check_text(field: attrs.Attribute) -> str:
    found = [CHECKS[v] for v in _validators(field) if v in CHECKS]
    return ", ".join(found)


def type_text(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' for a in get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        text = " \\| ".join(type_text(a) for a in args)
        return f"{text} (optional)" if len(args) < len(get_args(tp)) else text
    if origin is tuple:
        item = get_args(tp)[0]
        return "array of tables" if attrs.has(item) else f"array of {type_text(item)}s"
    if origin is dict:
        return "table"
    if attrs.has(tp):
        return "table"
    names = {int: "integer", float: "float", str: "string", bool: "boolean", Decimal: "decimal"}
    if tp in names:
        return names[tp]
    raise TypeError(f"no TOML name for type {tp!r}")


def default_text(field: attrs.Attribute) -> str:
    default = field.default
    if default is attrs.NOTHING:
        return "**required**"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        value = default.factory()
        if attrs.has(type(value)):
            return "(table)"
    else:
        value = default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str | Decimal):
        return f'`"{value}"`'
    if isinstance(value, tuple | list):
        return "`[]`" if not value else f"`{list(value)!r}`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value!r}`"
    return f"`{value!r}`"


def table_rows(cls: type, used: set[str], only: tuple[str, ...] | None = None) -> list[str]:
    attrs.resolve_types(cls)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for field in attrs.fields(cls):
        if only is not None and field.name not in only:
            continue
        key = f"{cls.__name__}.{field.name}"
        meaning = MEANINGS.get(key)
        if meaning is None:
            raise KeyError(f"MEANINGS has no entry for {key}")
        used.add(key)
        kind = type_text(field.type)
        check = _check_text(field)
        if check:
            kind = f"{kind}, {check}"
        rows.append(f"| `{field.alias}` | {kind} | {default_text(field)} | {meaning} |")
    return rows


INTRO = """\
# Configuration reference

<!-- Generated by `python docs/gen_config_reference.py > docs/config-reference.md`; do not
edit by hand. tests/docs/test_config_reference.py fails when this file is out of date. -->

A config is one TOML file: `python run.py --config FILE`. Validate it with
`python run.py --check-config FILE` (exit 0, or 2 with one `path: problem` line per problem).
Every field is optional except those marked **required**; unknown keys are errors. Units are in
the names: `_s` seconds, `_pct` percent (`0.5` means 0.5 %), `_quote` an amount in the quote
currency. A *decimal* (money) may be written as a string (`"0.1"`, exact) or a number. A float
field accepts an integer. Literal secrets (a key other than `*_env` whose name contains key,
secret, password, token or passphrase, with a string value) are refused: name an environment
variable instead. An empty config (no key at all) is refused too: name at least one
`[[exchanges]]` entry.

Examples: [docs/examples/](examples/). Sub-tables of an array entry (`[bots.risk]`) belong to
the `[[bots]]` entry above them.
"""


def render() -> str:
    used: set[str] = set()
    out = [INTRO]
    out += [
        "## Top level",
        "",
        "Keys outside any table, written above the first one.",
        "",
        *table_rows(cfg.Config, used, only=TOP_LEVEL),
        "",
    ]
    for header, cls, note in TABLES:
        out += [f"## `{header}`", "", note, "", *table_rows(cls, used), ""]
    out += [
        "## Built-in strategies: `params`",
        "",
        "Every built-in buys only when flat and closes only when holding.",
        "",
    ]
    for name, target in sorted(BUILTIN_STRATEGIES.items()):
        strategy = resolve_strategy_class(name, "strategy")
        doc = (sys.modules[strategy.__module__].__doc__ or "").strip().split("\n\n")[0]
        out += [
            f'### `strategy = "{name}"`',
            "",
            f"`{target}`: {' '.join(doc.split()).replace('``', '`')}",
            "",
            *table_rows(strategy.Params, used),
            "",
        ]
    stale = sorted(set(MEANINGS) - used)
    if stale:
        raise KeyError(f"MEANINGS has entries for fields that do not exist: {stale}")
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
