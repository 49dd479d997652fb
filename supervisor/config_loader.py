"""TOML text -> ``Config``, or a ``ConfigError`` listing every problem as ``path: message`` lines.

Pure apart from ``load_config`` (reads one file) and ``resolve_secret`` (reads the secrets file
and the environment).

Decisions:

* One ``cattrs.Converter(forbid_extra_keys=True)`` does the structuring, with strict hooks for
  the scalar types: TOML already has typed values, so ``port = "8080"`` or ``port = 3.7`` is a
  mistake to report (cattrs' defaults would call ``int()`` and silently accept or truncate).
  Money (``Decimal``) is accepted from a string, an integer or a float; a float goes through
  ``str()`` so ``0.1`` becomes ``Decimal("0.1")``, not the binary float's expansion.
* cattrs' ``transform_error`` drops validator messages (STYLE, checked facts), so ``_problems``
  walks the ``ClassValidationError``/``IterableValidationError`` tree itself, using the
  attribute/index notes cattrs attaches to each sub-exception for the path.
* attrs stops at the first failing validator of a class, so the attrs structure hook wraps
  cattrs' generated function: when a class fails, every validator of every field that did
  structure is re-run against a stand-in of the structured values, so all value problems of a
  class are reported together, next to its type errors. A cross-field check that needs a
  field which itself failed to structure is skipped (that field's own problem is reported).
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
  structuring (schema order), cross-field checks.
"""

from __future__ import annotations

import os
import tomllib
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from actors.errors import ConfigError
from supervisor.config import BotConfig, Config, ExchangeConfig, FieldValueError, SecretsConfig

__all__ = ["load_config", "parse_config", "resolve_secret"]

_SECRET_WORDS = ("key", "secret", "password", "token", "passphrase")

PathPart = str | int
_N = TypeVar("_N", AttributeValidationNote, IterableValidationNote)


class _TypeMismatch(TypeError):
    """A TOML value of the wrong type; the message is the whole problem text."""


def _got(value: Any) -> str:
    return repr(value)


# --- scalar hooks ---------------------------------------------------------------------------


def _structure_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _TypeMismatch(f"expected int, got {_got(value)}")
    return value


def _structure_float(value: Any, _type: Any) -> float:
    """An int stays an int (PEP 484's numeric tower), so problems echo what the user wrote:
    ``got -2``, not ``got -2.0``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _TypeMismatch(f"expected float, got {_got(value)}")
    return value


def _structure_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise _TypeMismatch(f"expected str, got {_got(value)}")
    return value


def _structure_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise _TypeMismatch(f"expected bool (true or false), got {_got(value)}")
    return value


def _structure_decimal(value: Any, _type: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _TypeMismatch(f"expected a decimal number, got {_got(value)}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise _TypeMismatch(f"expected a decimal number, got {_got(value)}") from None


def _structure_literal(value: Any, type_: Any) -> Any:
    allowed = get_args(type_)
    # `True in (1,)` holds in Python; compare types too so a bool never matches an int.
    if any(value == a and type(value) is type(a) for a in allowed):
        return value
    choices = ", ".join(repr(a) for a in allowed)
    raise _TypeMismatch(f"must be one of {choices}, got {_got(value)}")


def _is_homogeneous_tuple(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_dict(type_: Any) -> bool:
    return get_origin(type_) is dict


def _is_literal(type_: Any) -> bool:
    return get_origin(type_) is Literal


# --- the converter --------------------------------------------------------------------------


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_structure_hook_func(_is_literal, _structure_literal)

    def structure_tuple(value: Any, type_: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise _TypeMismatch(f"expected an array, got {_got(value)}")
        item_type = get_args(type_)[0]
        items, errors = [], []
        for index, item in enumerate(value):
            try:
                items.append(converter.structure(item, item_type))
            except Exception as exc:
                note = IterableValidationNote(
                    f"Structuring {type_} @ index {index}", index, item_type
                )
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {type_}", errors, type_)
        return tuple(items)

    def structure_dict(value: Any, type_: Any) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise _TypeMismatch(f"expected a table, got {_got(value)}")
        key_type, value_type = get_args(type_) or (Any, Any)
        return {
            converter.structure(k, key_type): converter.structure(v, value_type)
            for k, v in value.items()
        }

    converter.register_structure_hook_func(_is_homogeneous_tuple, structure_tuple)
    converter.register_structure_hook_func(_is_dict, structure_dict)
    converter.register_structure_hook_factory(
        attrs.has, lambda cls: _attrs_hook(converter, attrs.resolve_types(cls))
    )
    return converter


def _attrs_hook(converter: cattrs.Converter, cls: type) -> Callable[[Any, Any], Any]:
    """cattrs' generated structure function, plus "report every validator problem"."""
    generated = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)
    fields = attrs.fields(cls)
    order = {field.name: i for i, field in enumerate(fields)}

    def structure(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _TypeMismatch(f"expected a table, got {_got(value)}")
        try:
            return generated(value, type_)
        except ClassValidationError as exc:
            with_notes, without_notes = exc.group_exceptions()
            failed = {note.name for _sub, note in with_notes}
            value_problems = _validator_problems(converter, fields, value, failed)
            if not value_problems:
                raise
            # Keep structuring errors (noted ones and unknown keys); the construction error, if
            # any, is replaced by the full list of validator problems it was the first of.
            # Problems are put back in field order, unknown keys last.
            ranked: list[tuple[int, Exception]] = [
                (order[note.name], sub) for sub, note in with_notes
            ]
            ranked += [(order.get(p.field or "", len(order)), p) for p in value_problems]
            ranked += [
                (len(order), sub)
                for sub in without_notes
                if isinstance(sub, ForbiddenExtraKeysError)
            ]
            ranked.sort(key=lambda pair: pair[0])
            problems = [sub for _rank, sub in ranked]
            raise ClassValidationError(exc.message, problems, cls) from None

    return structure


def _validator_problems(
    converter: cattrs.Converter,
    fields: tuple[attrs.Attribute, ...],
    raw: Mapping[str, Any],
    failed: set[str],
) -> list[FieldValueError]:
    values: dict[str, Any] = {}
    for field in fields:
        if field.name in failed:
            continue
        if field.alias in raw:
            values[field.name] = converter.structure(raw[field.alias], field.type)
        elif isinstance(field.default, attrs.Factory):
            if field.default.takes_self:
                continue
            values[field.name] = field.default.factory()
        elif field.default is not attrs.NOTHING:
            values[field.name] = field.default
    stand_in = types.SimpleNamespace(**values)
    problems = []
    for field in fields:
        if field.validator is None or field.name not in values:
            continue
        try:
            field.validator(stand_in, field, values[field.name])
        except FieldValueError as exc:
            problems.append(FieldValueError(str(exc), field=exc.field or field.name))
        except AttributeError:
            continue  # a cross-field check whose other field failed; that one is reported
    return problems


_converter = _make_converter()


# --- the error walker -----------------------------------------------------------------------


def format_path(path: tuple[PathPart, ...]) -> str:
    """``("bots", 1, "risk", "stop_loss_pct")`` -> ``bots[1].risk.stop_loss_pct``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


Problem = tuple[tuple[PathPart, ...], str]


def _walk(exc: BaseException, path: tuple[PathPart, ...]) -> Iterator[Problem]:
    # Sub-exceptions are visited in their own order (cattrs' group_exceptions() would put the
    # noted ones first), so problems come out in field order.
    if isinstance(exc, ClassValidationError):
        for sub in exc.exceptions:
            note = _note(sub, AttributeValidationNote)
            yield from _walk(sub, path if note is None else (*path, note.name))
    elif isinstance(exc, IterableValidationError):
        for sub in exc.exceptions:
            note = _note(sub, IterableValidationNote)
            yield from _walk(sub, path if note is None else (*path, note.index))
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield (*path, key), "unknown key"
    elif isinstance(exc, FieldValueError):
        yield ((*path, exc.field) if exc.field else path), str(exc)
    elif isinstance(exc, _TypeMismatch):
        yield path, str(exc)
    elif isinstance(exc, KeyError) and _has_attribute_note(exc):
        yield path, "required field missing"
    else:
        yield path, f"invalid value ({type(exc).__name__}: {exc})"


def _has_attribute_note(exc: BaseException) -> bool:
    return _note(exc, AttributeValidationNote) is not None


def _note(exc: BaseException, kind: type[_N]) -> _N | None:
    """The path note cattrs attached at this level (the first of its kind, as cattrs reads it)."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, kind):
            return note
    return None


# --- raw-TOML checks ------------------------------------------------------------------------


def _looks_secret(key: str, value: Any) -> bool:
    name = key.lower()
    if name.endswith("_env") or not any(word in name for word in _SECRET_WORDS):
        return False
    if isinstance(value, str):
        return True
    return isinstance(value, list) and any(isinstance(v, str) for v in value)


def _strip_secrets(
    table: Mapping[str, Any], path: tuple[PathPart, ...], problems: list[str]
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
    bot_ids: set[str] = set()
    for i, bot in _tables(raw, "bots"):
        bot_id = bot.get("id")
        if isinstance(bot_id, str):
            if bot_id in bot_ids:
                problems.append(f"bots[{i}].id: duplicate bot id {bot_id!r}")
            bot_ids.add(bot_id)
        exchange = bot.get("exchange")
        if isinstance(exchange, str) and exchange not in exchange_names:
            problems.append(
                f"bots[{i}].exchange: unknown exchange {exchange!r}; configured: {configured}"
            )
        if bot.get("mode") == "live":
            credentials = bot.get("credentials")
            credentials = credentials if isinstance(credentials, Mapping) else {}
            for field in ("api_key_env", "api_secret_env"):
                if credentials.get(field) is None:
                    problems.append(f'bots[{i}].credentials.{field}: required when mode = "live"')
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
        config = _converter.structure(cleaned, Config)
    except Exception as exc:
        problems += [f"{format_path(path) or source}: {msg}" for path, msg in _walk(exc, ())]
    problems += _cross_field_problems(cleaned)
    # Strategies and their params are checked here too, so --check-config catches them; a bot
    # that structures on its own is checked even when another part of the config did not.
    from actors.bots.strategy import bot_problems

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
            bots.append(_converter.structure(table, BotConfig))
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
