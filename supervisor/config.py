"""The daemon's configuration: TOML structured by cattrs into frozen attrs classes.

Every field has a default except what only the user can know (an exchange's name, a bot's id,
exchange and symbol). Units live in names (``_s`` seconds, ``_pct`` percent, ``_quote`` amounts
in the quote currency). Money is ``Decimal``: write it as a TOML string (``"1000"``) or number.
Secrets never appear here: config names the *environment variable* (``api_key_env``) or the key
in the secrets file (``[secrets] file``) that holds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import attrs

from actors.exchanges import PROTOCOLS


class FieldValueError(ValueError):
    """A validator's complaint about one field; the loader prefixes the field path.

    The loader knows which attribute's validator raised, so ``field`` is only needed when a
    check reports on a *different* field than the one it validates (e.g. the protocol check
    that falls back to the exchange's ``name``).
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def _check(ok: bool, message: str, value: Any) -> None:
    if not ok:
        # Decimals are echoed as written ("-5"), not as Python reprs ("Decimal('-5')").
        shown = str(value) if isinstance(value, Decimal) else repr(value)
        raise FieldValueError(f"{message}, got {shown}")


def positive(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    _check(_finite(value) and value > 0, "must be > 0", value)


def non_negative(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    _check(_finite(value) and value >= 0, "must be >= 0", value)


def at_least_one(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    _check(value >= 1, "must be >= 1", value)


def tcp_port(_inst: Any, attribute: attrs.Attribute, value: int) -> None:
    _check(0 <= value <= 65535, "must be a TCP port in 0..65535 (0 picks a free one)", value)


def _name_like(value: str, max_len: int) -> bool:
    return (
        0 < len(value) <= max_len
        and value.isascii()
        and value.replace("-", "").replace("_", "").isalnum()
    )


def percent(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    _check(_finite(value) and 0 < value < 100, "must be > 0 and < 100", value)


def _finite(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return math.isfinite(value)


def unified_symbol(_inst: Any, attribute: attrs.Attribute, value: str) -> None:
    base, sep, quote = value.partition("/")
    _check(
        bool(sep and value.isascii() and base.isalnum() and quote.isalnum())
        and value == value.upper(),
        "must be a unified BASE/QUOTE symbol like 'BTC/USDT'",
        value,
    )


def url_with_scheme(*schemes: str) -> Callable[[Any, attrs.Attribute, str | None], None]:
    def check(_inst: Any, attribute: attrs.Attribute, value: str | None) -> None:
        if value is None:
            return
        _check(
            value.startswith(schemes) and len(value) > len(value.split("//")[0]) + 2,
            f"must be a URL starting with {' or '.join(schemes)}",
            value,
        )

    return check


def env_var_name(_inst: Any, attribute: attrs.Attribute, value: str | None) -> None:
    """The value is not echoed: a user who pasted the secret itself here must not see it
    printed to the terminal or the logs."""
    if value is None:
        return
    ok = (
        value.isascii()
        and value.replace("_", "").isalnum()
        and value.upper() == value
        and not value[0].isdigit()
    )
    if not ok:
        raise FieldValueError(
            "must be the NAME of an environment variable (UPPER_CASE letters, digits, '_'),"
            " not a secret (value not shown)"
        )


@attrs.frozen
class SupervisorConfig:
    """Restart intensity (OTP): more than max_restarts within period_s escalates."""

    max_restarts: int = attrs.field(default=5, validator=at_least_one)
    period_s: float = attrs.field(default=60.0, validator=positive)
    shutdown_grace_s: float = attrs.field(default=5.0, validator=positive)


@attrs.frozen
class BackoffConfig:
    """Exponential backoff with full jitter; resets after a healthy run of reset_after_s."""

    initial_s: float = attrs.field(default=0.5, validator=positive)
    multiplier: float = attrs.field(default=2.0)
    max_s: float = attrs.field(default=30.0)
    reset_after_s: float = attrs.field(default=60.0, validator=positive)

    # Cross-field checks are validators, not __attrs_post_init__: attrs runs validators after
    # every field is set, and the loader can re-run each one to report all problems at once.
    @multiplier.validator
    def _multiplier(self, attribute: attrs.Attribute, value: float) -> None:
        _check(math.isfinite(value) and value >= 1, "must be >= 1", value)

    @max_s.validator
    def _max_s(self, attribute: attrs.Attribute, value: float) -> None:
        positive(self, attribute, value)
        _check(value >= self.initial_s, f"must be >= initial_s ({self.initial_s})", value)


@attrs.frozen
class CircuitBreakerConfig:
    failure_threshold: int = attrs.field(default=5, validator=at_least_one)
    reset_timeout_s: float = attrs.field(default=30.0, validator=positive)


@attrs.frozen
class ExchangeConfig:
    """One exchange connection (pool). ``protocol`` defaults to ``name``."""

    name: str = attrs.field()
    protocol: str | None = attrs.field(default=None)
    # WebSocket URL override (default: the codec's production URL)
    url: str | None = attrs.field(default=None, validator=url_with_scheme("ws://", "wss://"))
    # REST base URL override for the fallback
    rest_url: str | None = attrs.field(
        default=None, validator=url_with_scheme("http://", "https://")
    )
    stale_after_s: float = attrs.field(default=10.0, validator=positive)
    fallback: Literal["none", "rest"] = "none"
    rest_poll_interval_s: float = attrs.field(default=2.0, validator=positive)
    backoff: BackoffConfig | None = None  # overrides the top-level [backoff]
    circuit_breaker: CircuitBreakerConfig | None = None  # overrides [circuit_breaker]

    @name.validator
    def _name(self, attribute: attrs.Attribute, value: str) -> None:
        _check(_name_like(value, 32), "must be 1-32 letters, digits, '-' or '_'", value)

    @protocol.validator
    def _protocol(self, attribute: attrs.Attribute, value: str | None) -> None:
        if value is None:
            if self.name not in PROTOCOLS:
                raise FieldValueError(
                    f"not set and the exchange name {self.name!r} is not a protocol;"
                    f" set it to one of {', '.join(PROTOCOLS)}"
                )
            return
        _check(value in PROTOCOLS, f"must be one of {', '.join(PROTOCOLS)}", value)

    @property
    def protocol_name(self) -> str:
        return self.protocol or self.name


@attrs.frozen
class RiskConfig:
    """Checked before every order (DESIGN §6). Optional exits are off when unset."""

    max_order_quote: Decimal = attrs.field(default=Decimal("1000"), validator=positive)
    max_position_quote: Decimal = attrs.field(default=Decimal("5000"), validator=positive)
    max_open_positions: int = attrs.field(default=1, validator=at_least_one)
    daily_loss_limit_quote: Decimal = attrs.field(default=Decimal("500"), validator=positive)
    max_orders_per_minute: int = attrs.field(default=10, validator=at_least_one)
    max_price_age_s: float = attrs.field(default=5.0, validator=positive)
    max_tick_move_pct: float = attrs.field(default=5.0, validator=percent)
    stop_loss_pct: float | None = attrs.field(default=None, validator=percent)
    take_profit_pct: float | None = attrs.field(default=None, validator=positive)
    trailing_stop_pct: float | None = attrs.field(default=None, validator=percent)


@attrs.frozen
class PaperConfig:
    """Paper executor: fills at bid/ask with fee and slippage; starting balance in quote."""

    quote_balance: Decimal = attrs.field(default=Decimal("10000"), validator=positive)
    fee_pct: Decimal = attrs.field(default=Decimal("0.1"), validator=non_negative)
    slippage_pct: Decimal = attrs.field(default=Decimal("0"), validator=non_negative)


@attrs.frozen
class MarketConfig:
    """The market's trading rules; orders are rounded to these steps."""

    tick_size: Decimal = attrs.field(default=Decimal("0.01"), validator=positive)
    lot_size: Decimal = attrs.field(default=Decimal("0.00001"), validator=positive)
    min_notional: Decimal = attrs.field(default=Decimal("5"), validator=non_negative)


@attrs.frozen
class CredentialsConfig:
    """Where live-trading secrets come from: environment variable names or secrets-file keys."""

    api_key_env: str | None = attrs.field(default=None, validator=env_var_name)
    api_secret_env: str | None = attrs.field(default=None, validator=env_var_name)


@attrs.frozen
class BotConfig:
    id: str = attrs.field()
    exchange: str = attrs.field()
    symbol: str = attrs.field(validator=unified_symbol)
    strategy: str = attrs.field(default="sma_cross")  # built-in name or "package.module:Class"
    params: dict[str, Any] = attrs.field(factory=dict)
    mode: Literal["paper", "live"] = "paper"
    order_quote: Decimal = attrs.field(default=Decimal("100"), validator=positive)
    close_on_fallback: bool = True  # may close (never open) positions on REST-fallback prices
    risk: RiskConfig = attrs.field(factory=RiskConfig)
    paper: PaperConfig = attrs.field(factory=PaperConfig)
    market: MarketConfig = attrs.field(factory=MarketConfig)
    credentials: CredentialsConfig = attrs.field(factory=CredentialsConfig)

    @id.validator
    def _id(self, attribute: attrs.Attribute, value: str) -> None:
        _check(_name_like(value, 24), "must be 1-24 letters, digits, '-' or '_'", value)


@attrs.frozen
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = attrs.field(default=8765, validator=tcp_port)
    token_env: str = attrs.field(default="BOTCRIPTOFY_TOKEN", validator=env_var_name)


@attrs.frozen
class JournalConfig:
    path: str = "data/journal.sqlite3"
    fsync: bool = True  # PRAGMA synchronous=FULL: a fill survives power loss, not only kill -9


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
    def _one_source(self, attribute: attrs.Attribute, value: str | None) -> None:
        if (value is None) == (self.url_env is None):
            raise FieldValueError("set exactly one of url and url_env", field="url")


@attrs.frozen
class AlertsConfig:
    webhooks: tuple[WebhookConfig, ...] = ()
    min_interval_s: float = attrs.field(default=60.0, validator=non_negative)  # per alert key


@attrs.frozen
class SecretsConfig:
    file: str | None = None  # TOML file of NAME = "value"; looked up before the environment


@attrs.frozen
class Config:
    supervisor: SupervisorConfig = attrs.field(factory=SupervisorConfig)
    backoff: BackoffConfig = attrs.field(factory=BackoffConfig)
    circuit_breaker: CircuitBreakerConfig = attrs.field(factory=CircuitBreakerConfig)
    exchanges: tuple[ExchangeConfig, ...] = ()
    bots: tuple[BotConfig, ...] = ()
    http: HttpConfig = attrs.field(factory=HttpConfig)
    journal: JournalConfig = attrs.field(factory=JournalConfig)
    logging: LoggingConfig = attrs.field(factory=LoggingConfig)
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)
    secrets: SecretsConfig = attrs.field(factory=SecretsConfig)

    def exchange(self, name: str) -> ExchangeConfig:
        for ex in self.exchanges:
            if ex.name == name:
                return ex
        raise KeyError(name)
