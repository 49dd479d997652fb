"""Structure a strategy's ``params`` table into its attrs ``Params`` class, with path errors.

Problems are reported the way the config loader (``supervisor/config_loader.py``) reports them,
one line per problem with its field path and the same wording (``expected int, got 'x'``,
``unknown key``, ``required field missing``, ``must be one of 'mid', 'last', got 'close'``):
``bots[0].params.fast: must be > 0, got 0``. cattrs' own ``transform_error`` loses the messages
of attrs validators (STYLE, checked facts), so this walks the exception tree:

* errors cattrs attributes to a field (type errors, missing keys, nested classes, list items)
  carry ``AttributeValidationNote`` / ``IterableValidationNote`` and give their own path;
* unknown keys (``ForbiddenExtraKeysError``) are reported one per key, with the expected keys;
* validators: cattrs stops at the first failing one (a construction error without a note), and
  runs none if any field failed to structure. So, as the config loader does, every field's
  validator is re-run on a stand-in holding the values that did structure: *every* failing field
  is reported, under its own name (or the exception's ``field``). A construction error no
  validator reproduces (``__attrs_post_init__``) is located by a ``"name: message"`` prefix
  naming a field, else reported at the params path.
* lines come out in field order, unknown keys last.

This module keeps its own converter rather than importing the loader's, so that the loader can
import the bots package to validate strategies without an import cycle.

Decimals are parsed from TOML text or numbers via ``str`` so ``0.1`` means exactly 0.1; booleans
are refused where numbers are expected (TOML ``true`` is not 1); an int given for a float stays
an int so a problem echoes what the user wrote.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
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

from actors.errors import ConfigError

T = TypeVar("T")


class ParamTypeError(TypeError):
    """A value of the wrong type; the message is the whole problem text."""


def _structure_decimal(value: Any, _type: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ParamTypeError(f"expected a decimal number, got {value!r}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ParamTypeError(f"expected a decimal number, got {value!r}") from None
    if not result.is_finite():
        raise ParamTypeError(f"expected a finite decimal number, got {value!r}")
    return result


def _structure_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamTypeError(f"expected int, got {value!r}")
    return value


def _structure_float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamTypeError(f"expected float, got {value!r}")
    return value


def _structure_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ParamTypeError(f"expected str, got {value!r}")
    return value


def _structure_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamTypeError(f"expected bool (true or false), got {value!r}")
    return value


def _structure_literal(value: Any, type_: Any) -> Any:
    allowed = get_args(type_)
    if any(value == a and type(value) is type(a) for a in allowed):
        return value
    raise ParamTypeError(f"must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_structure_hook(Decimal, _structure_decimal)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook_func(lambda t: get_origin(t) is Literal, _structure_literal)


def structure_params(data: Any, cls: type[T], path: str) -> T:
    """``data`` structured into ``cls``, or ConfigError listing every problem under ``path``."""
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}: expected a table of parameters, got {data!r}"])
    attrs.resolve_types(cls)
    try:
        return converter.structure(dict(data), cls)
    except (ClassValidationError, IterableValidationError, ValueError, TypeError) as exc:
        raise ConfigError(problems(exc, cls, path, data)) from exc


def problems(exc: BaseException, cls: Any, path: str, data: Any) -> list[str]:
    lines: list[str] = []
    _walk(exc, cls, path, data, lines)
    return lines or [f"{path}: {_message(exc)}"]


def _walk(exc: BaseException, cls: Any, path: str, data: Any, lines: list[str]) -> None:
    """Append one line per problem, in field order, unknown keys last (as the loader does)."""
    if not isinstance(exc, ClassValidationError | IterableValidationError):
        lines.extend(line for _rank, line in _construction_problems(exc, cls, path, data))
        return
    order = {a.name: i for i, a in enumerate(attrs.fields(cls))} if _is_attrs(cls) else {}
    last = len(order)
    ranked: list[tuple[int, str]] = []
    construction_error = None
    for sub in exc.exceptions:
        if isinstance(sub, ForbiddenExtraKeysError):
            expected = ", ".join(a.name for a in attrs.fields(sub.cl)) if attrs.has(sub.cl) else ""
            for key in sorted(sub.extra_fields):
                suffix = f" (expected one of {expected})" if expected else ""
                ranked.append((last + 1, f"{path}.{key}: unknown key{suffix}"))
        elif (note := _note(sub, AttributeValidationNote)) is not None:
            rank = order.get(note.name, last)
            child_path = f"{path}.{note.name}"
            child_data = data.get(note.name) if isinstance(data, Mapping) else None
            if isinstance(sub, KeyError):
                ranked.append((rank, f"{child_path}: required field missing"))
            elif isinstance(sub, ClassValidationError | IterableValidationError):
                nested: list[str] = []
                _walk(sub, _field_class(cls, note.name), child_path, child_data, nested)
                ranked += [(rank, line) for line in nested]
            else:
                ranked.append((rank, f"{child_path}: {_message(sub)}"))
        elif (item_note := _note(sub, IterableValidationNote)) is not None:
            child_path = f"{path}[{item_note.index}]"
            if isinstance(sub, ClassValidationError | IterableValidationError):
                item = data[item_note.index] if isinstance(data, list | tuple) else None
                nested = []
                # inside an IterableValidationError, ``cls`` is the element class
                _walk(sub, cls, child_path, item, nested)
                ranked += [(item_note.index, line) for line in nested]
            else:
                ranked.append((item_note.index, f"{child_path}: {_message(sub)}"))
        else:
            construction_error = sub
    # Fields that did structure are validated even when others did not, so every problem is
    # reported in one go; a construction error no validator reproduces is kept as it was.
    validated = _validator_problems(cls, path, data, order)
    if construction_error is not None and not validated:
        validated = _construction_problems(construction_error, cls, path, data)
    ranked += validated
    ranked.sort(key=lambda pair: pair[0])
    lines.extend(line for _rank, line in ranked)


def _validator_problems(
    cls: Any, path: str, data: Any, order: Mapping[str, int]
) -> list[tuple[int, str]]:
    """Re-run every field validator on a stand-in holding the values that structured."""
    if not _is_attrs(cls) or not isinstance(data, Mapping):
        return []
    try:
        attrs.resolve_types(cls)
    except NameError:
        return []
    fields = attrs.fields(cls)
    values: dict[str, Any] = {}
    for field in fields:
        if field.alias in data:
            try:
                values[field.name] = converter.structure(data[field.alias], field.type)
            except Exception:  # reported by cattrs already
                continue
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            if not field.default.takes_self:
                values[field.name] = field.default.factory()
        elif field.default is not attrs.NOTHING:
            values[field.name] = field.default
    stand_in = types.SimpleNamespace(**values)
    found = []
    for field in fields:
        if field.validator is None or field.name not in values:
            continue
        try:
            field.validator(stand_in, field, values[field.name])
        except AttributeError:
            continue  # a cross-field check whose other field is missing; that one is reported
        except (ValueError, TypeError) as problem:
            name = getattr(problem, "field", None) or field.name
            found.append((order.get(name, len(order)), f"{path}.{name}: {problem}"))
    return found


def _construction_problems(
    exc: BaseException, cls: Any, path: str, data: Any
) -> list[tuple[int, str]]:
    """A construction error no validator reproduces (``__attrs_post_init__``), located by a
    ``"name: message"`` prefix or the exception's ``field`` where it names a field."""
    order = {a.name: i for i, a in enumerate(attrs.fields(cls))} if _is_attrs(cls) else {}
    message = _message(exc)
    field_name = getattr(exc, "field", None)
    if isinstance(field_name, str) and field_name in order:
        return [(order[field_name], f"{path}.{field_name}: {message}")]
    head, sep, rest = message.partition(": ")
    if sep and head in order:
        return [(order[head], f"{path}.{head}: {rest}")]
    return [(len(order), f"{path}: {message}")]


def _is_attrs(cls: Any) -> bool:
    return cls is not None and isinstance(cls, type) and attrs.has(cls)


def _message(exc: BaseException) -> str:
    if isinstance(exc, ParamTypeError | ValueError) and str(exc):
        return str(exc)
    return f"invalid value ({type(exc).__name__}: {exc})"


def _note(exc: BaseException, kind: type) -> Any:
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, kind):
            return note
    return None


def _field_class(cls: Any, name: str) -> Any:
    """The attrs class a field holds (directly or in a union), for walking nested errors."""
    if cls is None or not attrs.has(cls):
        return None
    for attribute in attrs.fields(cls):
        if attribute.name == name:
            for kind in (attribute.type, *get_args(attribute.type)):
                if isinstance(kind, type) and attrs.has(kind):
                    return kind
    return None
