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
* Strategies and their params are checked from each raw ``[[bots]]`` table, not from the
  structured bot: a bad symbol must not hide an unknown strategy or unknown params. Plugin
  modules named in ``plugins`` are imported too, so a typo or an import error in one is found
  by ``--check-config``, not by the first spawn that needs it.
* Problems are listed in this order: TOML syntax or an empty config (then nothing else),
  literal secrets, structuring (schema order), cross-field checks, plugins, strategies.
* An empty config (no key at all: an empty file, or only comments) is an error, not a daemon
  that starts idle and says nothing: it is the wrong file, or one not written yet. The
  smallest useful config names an exchange.
* Plugins are trusted code, named by the config file only. A spec from the control API
  (``parse_bot_spec``) may name a built-in strategy, or one from a module the config allows:
  those of the configured bots' strategies and those listed in ``plugins``
  (``allowed_plugins``); any other module is refused before it is imported.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import attrs

from actors import schema
from actors.bots.strategy import (
    import_plugin,
    is_module_name,
    strategy_module,
    strategy_problems,
)
from actors.errors import ConfigError
from actors.schema import format_path
from supervisor.config import BotConfig, Config, SecretsConfig

__all__ = [
    "allowed_plugins",
    "load_config",
    "parse_bot_spec",
    "parse_config",
    "parse_config_mapping",
    "resolve_secret",
    "spawn_refusals",
]

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
    record = raw.get("record")
    if isinstance(record, Mapping):
        for i, stream in _tables(record, "streams"):
            wanted = stream.get("exchange")
            if isinstance(wanted, str) and wanted not in exchange_names:
                problems.append(
                    f"record.streams[{i}].exchange: unknown exchange {wanted!r};"
                    f" configured: {configured}"
                )
    return problems


# --- public API -----------------------------------------------------------------------------


def parse_config(text: str, *, source: str = "<string>") -> Config:
    """Structure TOML ``text``; raises ``ConfigError`` listing every problem found.

    ``source`` names the text in problems that belong to no field (TOML syntax errors, an empty
    config).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: invalid TOML: {exc}"]) from None
    if not raw:
        raise ConfigError(
            [
                f"{source}: the config is empty; name at least one [[exchanges]] entry, and"
                " [[bots]] to trade from the start (see docs/examples/)"
            ]
        )
    return _parse_raw(raw, source)


def parse_config_mapping(raw: Mapping[str, Any], *, source: str = "<mapping>") -> Config:
    """Structure an already-parsed TOML document (e.g. a config file with ``backtest --param``
    values set in it); the same checks and ``ConfigError`` as ``parse_config``."""
    return _parse_raw(raw, source)


_DEFAULT_STRATEGY = str(attrs.fields(BotConfig).strategy.default)


def _parse_raw(
    raw: Mapping[str, Any], source: str, *, plugins: Collection[str] | None = None
) -> Config:
    """``plugins``: None for a config file (trusted: it may name any module), else the only
    plugin modules its bots may load (a spec from the control API)."""
    problems: list[str] = []
    cleaned = _strip_secrets(raw, (), problems)
    config: Config | None = None
    try:
        config = schema.converter.structure(cleaned, Config)
    except Exception as exc:  # whatever the input made structuring raise is a problem with it
        problems += [f"{format_path(p.path) or source}: {p.message}" for p in schema.problems(exc)]
    problems += _cross_field_problems(cleaned)
    problems += _plugin_problems(cleaned)
    allowed = None if plugins is None else frozenset(plugins)
    for i, bot in _tables(cleaned, "bots"):
        name = bot.get("strategy", _DEFAULT_STRATEGY)
        params = bot.get("params", {})
        if isinstance(name, str) and isinstance(params, Mapping):  # else: a type problem above
            problems += strategy_problems(name, params, f"bots[{i}]", plugins=allowed)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def _plugin_problems(raw: Mapping[str, Any]) -> list[str]:
    """Each well-formed ``plugins`` entry imported (a malformed one is the schema's problem)."""
    names = raw.get("plugins")
    problems: list[str] = []
    for i, name in enumerate(names if isinstance(names, list) else []):
        if isinstance(name, str) and is_module_name(name):
            try:
                import_plugin(name, f"plugins[{i}]")
            except ConfigError as exc:
                problems += exc.problems
    return problems


def allowed_plugins(config: Config) -> frozenset[str]:
    """The plugin modules a spawned bot may use: ``plugins`` and the modules of the configured
    bots' strategies (the config file already runs those)."""
    configured = (strategy_module(bot.strategy) for bot in config.bots)
    return frozenset(config.plugins) | {module for module in configured if module is not None}


def spawn_refusals(
    bot_id: object, mode: object, *, running: Collection[str], declared: bool = False
) -> list[str]:
    """What a spawn refuses in a bot the config file would take: an id already running, and a
    live bot the config file does not declare (``declared``: its account reconciles it at start,
    before it trades; a bot from elsewhere would skip that)."""
    problems = []
    if isinstance(bot_id, str) and bot_id in running:
        problems.append(f"bot.id: a bot with id {bot_id!r} is already running")
    if mode == "live" and not declared:
        problems.append(
            "bot.mode: live bots are declared in the config file only (their account"
            " reconciles them before they trade); spawn paper bots here"
        )
    return problems


def parse_bot_spec(spec: Any, *, config: Config, running: Collection[str] = ()) -> BotConfig:
    """Structure one bot spec (a ``[[bots]]`` table as a mapping, e.g. JSON from the control
    API) against the running ``config``; ``ConfigError`` lines are prefixed ``bot.``.

    Every problem comes in one answer: the spec's own, its strategy's (plugins limited to
    ``allowed_plugins(config)``) and ``spawn_refusals`` (``running``: the ids of running bots).
    """
    if not isinstance(spec, Mapping):
        raise ConfigError([f"bot: expected a table of bot settings, got {type(spec).__name__}"])
    problems = spawn_refusals(spec.get("id"), spec.get("mode"), running=running)
    bot = dict(spec)
    if bot.get("mode") == "live":  # refused above; not also "bot.account: required ..."
        bot["mode"] = "paper"
    raw = {
        "exchanges": [{"name": ex.name, "protocol": ex.protocol_name} for ex in config.exchanges],
        "bots": [bot],
    }
    parsed: BotConfig | None = None
    try:
        parsed = _parse_raw(raw, "bot", plugins=allowed_plugins(config)).bots[0]
    except ConfigError as exc:
        problems = [
            p.replace("bots[0]", "bot", 1) if p.startswith("bots[0]") else p for p in exc.problems
        ] + problems
    if problems or parsed is None:
        raise ConfigError(problems)
    return parsed


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and structure a TOML config file; ``ConfigError`` if unreadable or invalid. Its
    relative paths are made absolute against the file's directory (``anchor_paths``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{os.fspath(path)}: cannot read config: {_os_reason(exc)}"]) from None
    directory = Path(os.path.abspath(path)).parent  # abspath: no '..' in the paths it makes
    return anchor_paths(parse_config(text, source=os.fspath(path)), directory)


def anchor_paths(config: Config, directory: Path) -> Config:
    """``config`` with its relative file paths (``[journal] path``, ``[secrets] file``,
    ``[logging] file``, ``[record] dir``) taken relative to ``directory``, the config file's:
    a config names the same files whatever directory the daemon is started from, as a
    systemd unit or cron job starts it from ``/``. Defaults count too: a config without
    ``[journal]`` keeps its journal in ``data/`` beside it. Absolute paths and the in-memory
    journal stay as they are."""

    def anchored(file: str) -> str:
        # an absolute ``file`` replaces ``directory``
        return file if file == ":memory:" else os.fspath(directory / file)

    secrets, log = config.secrets.file, config.logging.file
    record = config.record
    return attrs.evolve(
        config,
        record=None if record is None else attrs.evolve(record, dir=anchored(record.dir)),
        journal=attrs.evolve(config.journal, path=anchored(config.journal.path)),
        secrets=attrs.evolve(config.secrets, file=None if secrets is None else anchored(secrets)),
        logging=attrs.evolve(config.logging, file=None if log is None else anchored(log)),
    )


def _os_reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def resolve_secret(
    name: str, secrets: SecretsConfig, *, environ: Mapping[str, str] | None = None
) -> str:
    """The value of secret ``name``: the secrets file first (TOML ``NAME = "value"``), then the
    environment (``environ`` defaults to ``os.environ``; tests pass their own).

    Problems name the variable and the file, never a value. An empty value counts as unset,
    since an empty API key can only fail later, further from the cause. ``load_config`` has
    made a relative secrets-file path absolute against the config file's directory; one still
    relative (a config parsed from text) is relative to the working directory.
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
