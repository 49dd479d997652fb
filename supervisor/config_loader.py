"""TOML text -> ``Config``, or a ``ConfigError`` listing every problem as ``path: message`` lines.

Structuring, type and value problems are the schema's (``actors.schema``); this module adds what
exists because the daemon runs: reading TOML files, refusing literal secrets, cross-field checks
over the whole config, and resolving secrets. Pure apart from ``load_config`` (reads one file) and
``resolve_secret`` (reads the secrets file and the environment).

Decisions:

* Literal secrets are looked for in the raw TOML before structuring: a key that is not a
  ``*_env`` name, whose name contains key/secret/password/token/passphrase and whose value
  is a string (or an array holding strings), is reported as a literal secret and removed
  before structuring, so it is reported once (not also as "unknown key") and its value can
  never be echoed by a type error. Tables are walked (``[secrets]`` is a table, not a secret);
  numbers and booleans are not secrets (``max_tokens = 5`` is fine).
* Cross-field checks (duplicate exchange names and bot ids, unknown exchange, live mode
  without credentials) run on the raw TOML too, defensively, so they are reported alongside
  type and value errors instead of only once everything else is fixed.
* Problems are listed in this order: TOML syntax (then nothing else), literal secrets,
  structuring (schema order), cross-field checks, strategies.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actors import schema
from actors.bots.strategy import bot_problems
from actors.errors import ConfigError
from actors.schema import format_path
from supervisor.config import BotConfig, Config, ExchangeConfig, SecretsConfig

__all__ = ["load_config", "parse_bot_spec", "parse_config", "resolve_secret"]

_SECRET_WORDS = ("key", "secret", "password", "token", "passphrase")


# --- raw-TOML checks ------------------------------------------------------------------------


def _looks_secret(key: str, value: Any) -> bool:
    name = key.lower()
    if name.endswith("_env") or not any(word in name for word in _SECRET_WORDS):
        return False
    if isinstance(value, str):
        return True
    return isinstance(value, list) and any(isinstance(v, str) for v in value)


def _strip_secrets(
    table: Mapping[str, Any], path: schema.FieldPath, problems: list[str]
) -> dict[str, Any]:
    """A copy of ``table`` without literal secrets, each reported in ``problems``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        here = (*path, key)
        if _looks_secret(key, value):
            problems.append(
                f"{format_path(here)}: literal secrets are not allowed in config;"
                f" name an environment variable with {key}_env"
            )
        elif isinstance(value, Mapping):
            out[key] = _strip_secrets(value, here, problems)
        elif isinstance(value, list):
            out[key] = [
                _strip_secrets(item, (*here, i), problems) if isinstance(item, Mapping) else item
                for i, item in enumerate(value)
            ]
        else:
            out[key] = value
    return out


def _tables(raw: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    value = raw.get(key)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _cross_field_problems(raw: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    exchange_names: list[str] = []
    for i, exchange in _tables(raw, "exchanges"):
        name = exchange.get("name")
        if not isinstance(name, str):
            continue
        if name in exchange_names:
            problems.append(f"exchanges[{i}].name: duplicate exchange name {name!r}")
        else:
            exchange_names.append(name)

    configured = ", ".join(exchange_names) or "none"
    account_names: list[str] = []
    for i, account in _tables(raw, "accounts"):
        name = account.get("name")
        if isinstance(name, str):
            if name in account_names:
                problems.append(f"accounts[{i}].name: duplicate account name {name!r}")
            account_names.append(name)
    bot_ids: set[str] = set()
    for i, bot in _tables(raw, "bots"):
        bot_id = bot.get("id")
        if isinstance(bot_id, str):
            if bot_id in bot_ids:
                problems.append(f"bots[{i}].id: duplicate bot id {bot_id!r}")
            bot_ids.add(bot_id)
        wanted = bot.get("exchange")
        if isinstance(wanted, str) and wanted not in exchange_names:
            problems.append(
                f"bots[{i}].exchange: unknown exchange {wanted!r}; configured: {configured}"
            )
        if bot.get("mode") == "live":
            account_name = bot.get("account")
            if account_name is None:
                problems.append(
                    f'bots[{i}].account: required when mode = "live"; configured accounts:'
                    f" {', '.join(account_names) or 'none'}"
                )
            elif isinstance(account_name, str) and account_name not in account_names:
                problems.append(
                    f"bots[{i}].account: unknown account {account_name!r}; configured:"
                    f" {', '.join(account_names) or 'none'}"
                )
    return problems


# --- public API -----------------------------------------------------------------------------


def parse_config(text: str, *, source: str = "<string>") -> Config:
    """Structure TOML ``text``; raises ``ConfigError`` listing every problem found.

    ``source`` names the text in problems that belong to no field (TOML syntax errors).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: invalid TOML: {exc}"]) from None

    return _parse_raw(raw, source)


def _parse_raw(raw: Mapping[str, Any], source: str) -> Config:
    problems: list[str] = []
    cleaned = _strip_secrets(raw, (), problems)
    config: Config | None = None
    try:
        config = schema.converter.structure(cleaned, Config)
    except Exception as exc:  # whatever the input made structuring raise is a problem with it
        problems += [f"{format_path(p.path) or source}: {p.message}" for p in schema.problems(exc)]
    problems += _cross_field_problems(cleaned)
    # Strategies and their params are checked here too, so --check-config catches them; a bot
    # that structures on its own is checked even when another part of the config did not.
    bots = config.bots if config is not None else _bots_that_structure(cleaned)
    for i, bot in enumerate(bots):
        if bot is not None:
            problems += bot_problems(bot, f"bots[{i}]")
    if problems or config is None:
        raise ConfigError(problems)
    return config


def _bots_that_structure(raw: Mapping[str, Any]) -> list[BotConfig | None]:
    bots: list[BotConfig | None] = []
    tables = raw.get("bots")
    for table in tables if isinstance(tables, list) else []:
        try:
            bots.append(schema.converter.structure(table, BotConfig))
        except Exception:  # its problems are already reported by the whole-config pass
            bots.append(None)
    return bots


def parse_bot_spec(spec: Any, *, exchanges: Sequence[ExchangeConfig]) -> BotConfig:
    """Structure one bot spec (a ``[[bots]]`` table as a mapping, e.g. JSON from the control
    API) against the running exchanges; ``ConfigError`` lines are prefixed ``bot.``."""
    if not isinstance(spec, Mapping):
        raise ConfigError([f"bot: expected a table of bot settings, got {type(spec).__name__}"])
    raw = {
        "exchanges": [{"name": ex.name, "protocol": ex.protocol_name} for ex in exchanges],
        "bots": [dict(spec)],
    }
    try:
        return _parse_raw(raw, "bot").bots[0]
    except ConfigError as exc:
        raise ConfigError(
            [p.replace("bots[0]", "bot", 1) if p.startswith("bots[0]") else p for p in exc.problems]
        ) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and structure a TOML config file; ``ConfigError`` if unreadable or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{os.fspath(path)}: cannot read config: {_os_reason(exc)}"]) from None
    return parse_config(text, source=os.fspath(path))


def _os_reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def resolve_secret(
    name: str, secrets: SecretsConfig, *, environ: Mapping[str, str] | None = None
) -> str:
    """The value of secret ``name``: the secrets file first (TOML ``NAME = "value"``), then the
    environment (``environ`` defaults to ``os.environ``; tests pass their own).

    Problems name the variable and the file, never a value. An empty value counts as unset,
    since an empty API key can only fail later, further from the cause. A relative secrets-file
    path is relative to the working directory, like every other path in the config.
    """
    environ = os.environ if environ is None else environ
    if secrets.file is not None:
        try:
            with open(secrets.file, "rb") as f:
                table = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(
                [f"secrets.file: cannot read secrets file {secrets.file!r}: {_os_reason(exc)}"]
            ) from None
        except tomllib.TOMLDecodeError as exc:
            # The decoder's message names a position, never the file's content.
            raise ConfigError(
                [f"secrets.file: secrets file {secrets.file!r} is not valid TOML: {exc}"]
            ) from None
        if name in table:
            value = table[name]
            if not isinstance(value, str):
                raise ConfigError(
                    [f"secrets.file: {name} in secrets file {secrets.file!r} must be a string"]
                )
            if value:
                return value
    value = environ.get(name, "")
    if value:
        return value
    where = "the environment"
    if secrets.file:
        where += f" and secrets file {secrets.file!r}"
    raise ConfigError([f"{name}: secret is not set (looked in {where})"])
