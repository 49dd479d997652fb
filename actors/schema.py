"""The one schema for structured input: TOML config, strategy params and HTTP bodies.

Input classes are frozen attrs classes whose validators (below) raise ``FieldValueError``.
``structure`` turns plain data (TOML tables, JSON objects) into them with the one ``converter``,
or raises ``ConfigError`` with one ``path: message`` line per problem, every problem at once.
``problems`` is the walker behind it, for callers that merge problems from other checks.

Decisions:

* Scalars are strict: TOML and JSON values already have types, so ``port = "8080"`` or
  ``port = 3.7`` is a mistake to report (cattrs' defaults would call ``int()`` and silently
  accept or truncate). A boolean is never a number (TOML ``true`` is not 1). An int given for a
  float stays an int, so a problem echoes what the user wrote (``got -2``, not ``got -2.0``).
* Money (``Decimal``) comes from a string, an int or a float through ``str()``, so ``0.1`` is
  exactly 0.1, never the binary float's expansion; it must be finite.
* attrs stops at the first failing validator and runs none when a field failed to structure.
  The attrs hook wraps cattrs' generated function: when a class fails, every validator is
  re-run on a stand-in holding the values that did structure, so all problems of a class are
  reported together. A cross-field check that needs a field which failed is skipped (that
  field's own problem is reported). A construction error no validator reproduces
  (``__attrs_post_init__``) is put on the field its ``field`` or ``"name: "`` prefix names, else
  on the class.
* cattrs' ``transform_error`` drops validator messages, so ``problems`` walks the
  ``ClassValidationError``/``IterableValidationError`` tree itself, using the notes cattrs
  attaches to each sub-exception for the path. Within a table, problems come in field order,
  unknown keys last.
* Decimals are echoed as written (``got -5``), not as reprs (``Decimal('-5')``).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator, Mapping
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
from cattrs.gen import make_dict_structure_fn

from actors.errors import ConfigError, FieldTypeError, FieldValueError

__all__ = [
    "ConfigError",
    "FieldPath",
    "FieldTypeError",
    "FieldValueError",
    "Problem",
    "at_least_one",
    "check",
    "converter",
    "env_var_name",
    "format_path",
    "name_like",
    "non_negative",
    "percent",
    "positive",
    "problems",
    "structure",
    "tcp_port",
    "unified_symbol",
    "url_with_scheme",
]

T = TypeVar("T")
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


# --- validators ---------------------------------------------------------------------------------


def check(ok: bool, message: str, value: object) -> None:
    if not ok:
        raise FieldValueError(f"{message}, got {_shown(value)}")


def positive(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    check(_finite(value) and value > 0, "must be > 0", value)


def non_negative(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    check(_finite(value) and value >= 0, "must be >= 0", value)


def at_least_one(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    check(value >= 1, "must be >= 1", value)


def tcp_port(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    check(0 <= value <= 65535, "must be a TCP port in 0..65535 (0 picks a free one)", value)


def name_like(value: str, max_len: int) -> bool:
    return (
        0 < len(value) <= max_len
        and value.isascii()
        and value.replace("-", "").replace("_", "").isalnum()
    )


def percent(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    check(_finite(value) and 0 < value < 100, "must be > 0 and < 100", value)


def unified_symbol(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    base, sep, quote = value.partition("/")
    check(
        bool(sep and value.isascii() and base.isalnum() and quote.isalnum())
        and value == value.upper(),
        "must be a unified BASE/QUOTE symbol like 'BTC/USDT'",
        value,
    )


def url_with_scheme(*schemes: str) -> Validator:
    def validate(_inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None:
            return
        check(
            value.startswith(schemes) and len(value) > len(value.split("//")[0]) + 2,
            f"must be a URL starting with {' or '.join(schemes)}",
            value,
        )

    return validate


def env_var_name(_inst: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
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


def _finite(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return math.isfinite(value)


def _shown(value: object) -> str:
    return str(value) if isinstance(value, Decimal) else repr(value)


# --- scalar hooks -------------------------------------------------------------------------------


def _structure_int(value: object, _type: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldTypeError(f"expected int, got {value!r}")
    return value


def _structure_float(value: object, _type: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldTypeError(f"expected float, got {value!r}")
    return value


def _structure_str(value: object, _type: object) -> str:
    if not isinstance(value, str):
        raise FieldTypeError(f"expected str, got {value!r}")
    return value


def _structure_bool(value: object, _type: object) -> bool:
    if not isinstance(value, bool):
        raise FieldTypeError(f"expected bool (true or false), got {value!r}")
    return value


def _structure_decimal(value: object, _type: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise FieldTypeError(f"expected a decimal number, got {value!r}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise FieldTypeError(f"expected a decimal number, got {value!r}") from None
    if not result.is_finite():
        raise FieldTypeError(f"expected a finite decimal number, got {value!r}")
    return result


def _structure_literal(value: object, type_: object) -> object:
    allowed = get_args(type_)
    # `True in (1,)` holds in Python; compare types too so a bool never matches an int.
    if any(value == a and type(value) is type(a) for a in allowed):
        return value
    raise FieldTypeError(f"must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")


def _is_literal(type_: object) -> bool:
    return get_origin(type_) is Literal


def _is_sequence(type_: object) -> bool:
    """``list[X]`` or ``tuple[X, ...]``: an array of one item type."""
    args = get_args(type_)
    origin = get_origin(type_)
    return (origin is list and len(args) == 1) or (
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    )


def _is_dict(type_: object) -> bool:
    return get_origin(type_) is dict


def _noted(exc: Exception, note: str) -> Exception:
    exc.__notes__ = [*getattr(exc, "__notes__", []), note]
    return exc


# --- the converter ------------------------------------------------------------------------------


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_structure_hook_func(_is_literal, _structure_literal)

    def structure_sequence(value: object, type_: Any) -> list[Any] | tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise FieldTypeError(f"expected an array, got {value!r}")
        item_type = get_args(type_)[0]
        items, errors = [], []
        for index, item in enumerate(value):
            try:
                items.append(conv.structure(item, item_type))
            except Exception as exc:
                where = f"Structuring {type_} @ index {index}"
                errors.append(_noted(exc, IterableValidationNote(where, index, item_type)))
        if errors:
            raise IterableValidationError(f"While structuring {type_}", errors, type_)
        return items if get_origin(type_) is list else tuple(items)

    def structure_dict(value: object, type_: Any) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise FieldTypeError(f"expected a table, got {value!r}")
        key_type, value_type = get_args(type_) or (Any, Any)
        out, errors = {}, []
        for key, item in value.items():
            try:
                out[conv.structure(key, key_type)] = conv.structure(item, value_type)
            except Exception as exc:
                where = f"Structuring {type_} @ key {key!r}"
                errors.append(_noted(exc, IterableValidationNote(where, str(key), value_type)))
        if errors:
            raise IterableValidationError(f"While structuring {type_}", errors, type_)
        return out

    conv.register_structure_hook_func(_is_sequence, structure_sequence)
    conv.register_structure_hook_func(_is_dict, structure_dict)
    conv.register_structure_hook_factory(
        attrs.has, lambda cls: _attrs_hook(conv, attrs.resolve_types(cls))
    )
    return conv


def _attrs_hook(conv: cattrs.Converter, cls: type) -> Callable[[Any, Any], Any]:
    """cattrs' generated structure function, plus "report every problem of the class"."""
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(
        cls, conv, _cattrs_forbid_extra_keys=True
    )
    fields = attrs.fields(cls)
    order = {field.name: i for i, field in enumerate(fields)}

    def structure(value: object, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            raise FieldTypeError(f"expected a table, got {value!r}")
        try:
            return generated(value, type_)
        except ClassValidationError as exc:
            noted, unnoted = exc.group_exceptions()
            extra = [sub for sub in unnoted if isinstance(sub, ForbiddenExtraKeysError)]
            found = _validator_problems(conv, fields, value, {note.name for _, note in noted})
            if not found:
                found = [_located(sub, order) for sub in unnoted if sub not in extra]
            ranked: list[tuple[int, Exception]] = [(order[note.name], sub) for sub, note in noted]
            ranked += [(order.get(p.field or "", len(order)), p) for p in found]
            ranked += [(len(order), sub) for sub in extra]
            ranked.sort(key=lambda pair: pair[0])
            raise ClassValidationError(exc.message, [sub for _, sub in ranked], cls) from None

    return structure


def _validator_problems(
    conv: cattrs.Converter,
    fields: tuple[attrs.Attribute[Any], ...],
    raw: Mapping[str, Any],
    failed: set[str],
) -> list[FieldValueError]:
    """Every validator's complaint, run on a stand-in of the fields that structured."""
    values: dict[str, Any] = {}
    for field in fields:
        if field.name in failed:
            continue
        if field.name in raw:
            field_type: Any = field.type  # resolved by the hook factory
            try:
                values[field.name] = conv.structure(raw[field.name], field_type)
            except Exception:  # reported by cattrs already
                continue
        else:
            default: Any = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                if not default.takes_self:
                    values[field.name] = default.factory()
            elif default is not attrs.NOTHING:
                values[field.name] = default
    stand_in = types.SimpleNamespace(**values)
    found = []
    for field in fields:
        if field.validator is None or field.name not in values:
            continue
        try:
            field.validator(stand_in, field, values[field.name])
        except AttributeError:
            continue  # a cross-field check whose other field failed; that one is reported
        except (ValueError, TypeError) as exc:
            name = getattr(exc, "field", None) or field.name
            found.append(FieldValueError(_message(exc), field=name))
    return found


def _located(exc: Exception, order: Mapping[str, int]) -> FieldValueError:
    """A construction error no validator reproduces, on the field it names if it names one."""
    message = _message(exc)
    field = getattr(exc, "field", None)
    if isinstance(field, str) and field in order:
        return FieldValueError(message, field=field)
    head, sep, rest = message.partition(": ")
    if sep and head in order:
        return FieldValueError(rest, field=head)
    return FieldValueError(message)


converter = _make_converter()


# --- the problem walker -------------------------------------------------------------------------

# Keys and indexes from the root of the structured data: ("bots", 1, "risk", "stop_loss_pct").
FieldPath = tuple[str | int, ...]


@attrs.frozen
class Problem:
    """One problem with the input: where it is and what is wrong."""

    path: FieldPath
    message: str

    def line(self, root: str = "") -> str:
        return f"{format_path(self.path, root)}: {self.message}"


def format_path(path: FieldPath, root: str = "") -> str:
    """``("bots", 1, "risk", "stop_loss_pct")`` -> ``bots[1].risk.stop_loss_pct``."""
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def problems(exc: BaseException, *, name_expected_keys: bool = False) -> list[Problem]:
    """Every problem in a structuring error, in input order.

    ``name_expected_keys`` adds the keys a table takes to each of its unknown keys: strategy
    params are declared in code the user may not have read, while config keys are documented.
    """
    return list(_walk(exc, (), name_expected_keys))


def _walk(exc: BaseException, path: FieldPath, name_keys: bool) -> Iterator[Problem]:
    # Sub-exceptions are visited in their own order (cattrs' group_exceptions() would put the
    # noted ones first); the attrs hook has put them in field order.
    if isinstance(exc, ClassValidationError):
        for sub in exc.exceptions:
            note = _note(sub, AttributeValidationNote)
            yield from _walk(sub, path if note is None else (*path, note.name), name_keys)
    elif isinstance(exc, IterableValidationError):
        for sub in exc.exceptions:
            item = _note(sub, IterableValidationNote)
            yield from _walk(sub, path if item is None else (*path, item.index), name_keys)
    elif isinstance(exc, ForbiddenExtraKeysError):
        expected = ", ".join(a.name for a in attrs.fields(exc.cl)) if name_keys else ""
        suffix = f" (expected one of {expected})" if expected else ""
        for key in sorted(exc.extra_fields):
            yield Problem((*path, key), f"unknown key{suffix}")
    elif isinstance(exc, FieldValueError):
        yield Problem((*path, exc.field) if exc.field else path, str(exc))
    elif isinstance(exc, KeyError) and _note(exc, AttributeValidationNote) is not None:
        yield Problem(path, "required field missing")
    else:
        yield Problem(path, _message(exc))


_N = TypeVar("_N", AttributeValidationNote, IterableValidationNote)


def _note(exc: BaseException, kind: type[_N]) -> _N | None:
    """The path note cattrs attached at this level (the first of its kind, as cattrs reads it)."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, kind):
            return note
    return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, FieldTypeError | ValueError) and str(exc):
        return str(exc)
    return f"invalid value ({type(exc).__name__}: {exc})"


# --- one call -----------------------------------------------------------------------------------


def structure(data: object, cls: type[T], *, at: str = "", name_expected_keys: bool = False) -> T:
    """``data`` structured into ``cls``, or ``ConfigError`` with a line per problem under ``at``
    (``bots[0].params`` -> ``bots[0].params.fast: must be > 0, got 0``)."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # whatever the input made structuring raise is a problem with it
        found = problems(exc, name_expected_keys=name_expected_keys)
        raise ConfigError([p.line(at) for p in found]) from exc
