"""The daemon's configuration: frozen attrs classes, structured from TOML by ``actors.schema``.

Every field has a default except what only the user can know (an exchange's name, a bot's id,
exchange and symbol). The feed, bot and journal sections are the actors' own classes; this
module adds what exists because the daemon runs (supervision, HTTP, logging, alerts, secrets).
Secrets never appear here: config names the *environment variable* (``api_key_env``) or the
key in the secrets file (``[secrets] file``) that holds them.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from actors.bots.config import (
    BotConfig,
    MarketConfig,
    PaperConfig,
    RiskConfig,
)
from actors.bots.strategy import is_module_name
from actors.journal import JournalConfig
from actors.market_data.config import FeedConfig
from actors.recording.config import RecordConfig, RecordStream
from actors.schema import (
    FieldValueError,
    at_least_one,
    env_var_name,
    name_like,
    non_negative,
    positive,
    tcp_port,
    url_with_scheme,
)
from actors.venues.binance.config import AccountConfig
from supervisor.otp.backoff import BackoffPolicy
from supervisor.otp.breaker import BreakerPolicy

__all__ = [
    "AccountConfig",
    "AlertsConfig",
    "BackoffPolicy",
    "BotConfig",
    "BreakerPolicy",
    "ClusterConfig",
    "Config",
    "ExchangeConfig",
    "FeedConfig",
    "FieldValueError",
    "HttpConfig",
    "JournalConfig",
    "LoggingConfig",
    "MarketConfig",
    "PaperConfig",
    "RecordConfig",
    "RecordStream",
    "RiskConfig",
    "SecretsConfig",
    "SupervisorConfig",
    "WebhookConfig",
]


@attrs.frozen
class SupervisorConfig:
    """Restart intensity (OTP): more than max_restarts within period_s escalates."""

    max_restarts: int = attrs.field(default=5, validator=at_least_one)
    period_s: float = attrs.field(default=60.0, validator=positive)
    shutdown_grace_s: float = attrs.field(default=5.0, validator=positive)


@attrs.frozen
class ExchangeConfig(FeedConfig):
    """One ``[[exchanges]]`` entry: the feed, plus how the daemon supervises it."""

    backoff: BackoffPolicy | None = None  # overrides the top-level [backoff]
    circuit_breaker: BreakerPolicy | None = None  # overrides [circuit_breaker]


@attrs.frozen
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = attrs.field(default=8765, validator=tcp_port)
    token_env: str = attrs.field(default="BOTCRIPTOFY_TOKEN", validator=env_var_name)


@attrs.frozen
class LoggingConfig:
    level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    json: bool = False
    file: str | None = None  # optional JSON-lines file sink


@attrs.frozen
class WebhookConfig:
    """A webhook sink. Slack and Discord URLs embed their secret, so prefer ``url_env`` (the
    environment variable or secrets-file key holding the URL) to a literal ``url``."""

    url: str | None = attrs.field(default=None, repr=False)
    url_env: str | None = attrs.field(default=None, validator=env_var_name)
    format: Literal["json", "slack", "discord"] = "json"

    @url.validator
    def _one_source(self, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if (value is None) == (self.url_env is None):
            raise FieldValueError("set exactly one of url and url_env", field="url")


@attrs.frozen
class AlertsConfig:
    webhooks: tuple[WebhookConfig, ...] = ()
    min_interval_s: float = attrs.field(default=60.0, validator=non_negative)  # per alert key


@attrs.frozen
class SecretsConfig:
    file: str | None = None  # TOML file of NAME = "value"; looked up before the environment


ClusterRole = Literal["feed", "bots"]


def _node_name(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not name_like(value, 64):
        raise FieldValueError(f"must be a short name (letters, digits, '-', '_'), got {value!r}")


def _roles(_inst: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value or len(set(value)) != len(value):
        raise FieldValueError("must name each of 'feed' and 'bots' at most once, and one at least")


@attrs.frozen
class ClusterConfig:
    """Several daemons sharing one connection per exchange through Redis (see
    ``supervisor.cluster``). ``node`` must differ per process (``run.py --node NAME``);
    ``roles``: ``feed`` may lead exchanges' connections, ``bots`` runs the configured bots.
    A URL with a password belongs in ``redis_url_env`` (the variable or secrets-file key)."""

    redis_url: str | None = attrs.field(
        default=None, repr=False, validator=url_with_scheme("redis://", "rediss://", "unix://")
    )
    redis_url_env: str | None = attrs.field(default=None, validator=env_var_name)
    node: str = attrs.field(default="node", validator=_node_name)
    roles: tuple[ClusterRole, ...] = attrs.field(default=("feed", "bots"), validator=_roles)
    namespace: str = "botcriptofy"  # prefix of every Redis key; one per cluster
    lease_ttl_s: float = attrs.field(default=3.0, validator=positive)
    stream_maxlen: int = attrs.field(default=10_000, validator=at_least_one)
    redis_timeout_s: float = attrs.field(default=1.0, validator=positive)
    # "cluster": the bots (configured or spawned on any node) are placed on the nodes with the
    # "bots" role, one owner per bot (supervisor.cluster.bot_node; needs [journal] url);
    # "per_node": every "bots" node runs the configured bots itself, as one daemon would.
    bot_placement: Literal["cluster", "per_node"] = "per_node"

    @redis_url_env.validator
    def _one_source(self, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if (value is None) == (self.redis_url is None):
            raise FieldValueError(
                "set exactly one of redis_url and redis_url_env", field="redis_url"
            )


def module_names(_inst: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    bad = [name for name in value if not is_module_name(name)]
    if bad:
        raise FieldValueError(
            "must be module names like 'mypkg.strategies' (the module, not 'module:Class'),"
            f" got {', '.join(repr(name) for name in bad)}"
        )


@attrs.frozen
class Config:
    # Strategy modules the control API may load for a spawned bot, besides the built-ins and
    # the modules of the configured bots' strategies (plugins are trusted code; see
    # actors.bots.strategy).
    plugins: tuple[str, ...] = attrs.field(default=(), validator=module_names)
    supervisor: SupervisorConfig = attrs.field(factory=SupervisorConfig)
    backoff: BackoffPolicy = attrs.field(factory=BackoffPolicy)
    circuit_breaker: BreakerPolicy = attrs.field(factory=BreakerPolicy)
    exchanges: tuple[ExchangeConfig, ...] = ()
    bots: tuple[BotConfig, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    http: HttpConfig = attrs.field(factory=HttpConfig)
    journal: JournalConfig = attrs.field(factory=JournalConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)
    secrets: SecretsConfig = attrs.field(factory=SecretsConfig)
    record: RecordConfig | None = None  # no [record]: nothing is recorded
    cluster: ClusterConfig | None = None  # no [cluster]: one process, no Redis
