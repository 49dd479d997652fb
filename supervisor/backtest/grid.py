"""``--param PATH=V1,V2,...``: a parameter grid over a config file; pure.

Decisions:

* **Paths are the config's own** (``bots[0].params.fast``, ``bots[1].risk.stop_loss_pct``):
  the syntax of every ``path: message`` line the config checker prints, so a problem it
  reports can be pasted back as a ``--param``.
* **Values are TOML scalars** (``5``, ``0.5``, ``"10.5"``, ``true``), parsed by ``tomllib``
  exactly as the same value written in the file would be; a string needs its quotes.
* **Each variant is the raw TOML with the values set, then checked as a whole file** (the
  schema, the cross-field checks, the strategy's params): a value the config would refuse is
  refused here with the same message, before any process starts. A missing table on the way
  (``params`` of a bot that has none) is created; a missing array entry is an error.
* The grid is the cartesian product, in the order the ``--param`` options and their values
  were given, so variant numbers are stable for the same command line.
"""

from __future__ import annotations

import copy
import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from actors.errors import ConfigError
from actors.schema import format_path

__all__ = ["ParamAxis", "Variant", "apply_values", "expand", "parse_param"]

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")

PathPart = str | int


@attrs.frozen
class ParamAxis:
    path: str  # as written
    parts: tuple[PathPart, ...]
    values: tuple[Any, ...]


@attrs.frozen
class Variant:
    number: int  # 0-based, in grid order
    values: tuple[tuple[str, Any], ...]  # (path, value) per axis

    @property
    def label(self) -> str:
        """``bots[0].params.fast=5 bots[0].params.slow=20`` (empty without a grid)."""
        return " ".join(f"{path}={_toml(value)}" for path, value in self.values)

    @property
    def dirname(self) -> str:
        """The variant's sub-directory: its number and its values, filesystem-safe."""
        words = [f"{parts_name(path)}={_toml(value)}" for path, value in self.values]
        safe = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", "_".join(words))[:80]
        return f"{self.number:03d}_{safe}" if safe else f"{self.number:03d}"


def parts_name(path: str) -> str:
    """The last name in a path: ``fast`` of ``bots[0].params.fast``."""
    return path.rsplit(".", 1)[-1]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def parse_path(path: str) -> tuple[PathPart, ...]:
    """``bots[0].params.fast`` -> ``("bots", 0, "params", "fast")``; ValueError if malformed."""
    parts: list[PathPart] = []
    for word in path.split("."):
        match = _PART.fullmatch(word)
        if match is None:
            raise ValueError(
                "not a config field path (expected names and [index], e.g. bots[0].params.fast)"
            )
        parts.append(match.group(1))
        parts.extend(int(index) for index in _INDEX.findall(match.group(2)))
    return tuple(parts)


def parse_param(text: str) -> ParamAxis:
    """One ``--param PATH=V1,V2,...``; ``ConfigError`` with one ``path: message`` line."""
    path, sep, values_text = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ConfigError([f"--param {text}: expected PATH=VALUE[,VALUE...]"])
    try:
        parts = parse_path(path)
    except ValueError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    values = []
    for raw in _split_values(values_text):
        try:
            values.append(tomllib.loads(f"v = {raw}")["v"])
        except tomllib.TOMLDecodeError:
            raise ConfigError(
                [
                    f"{path}: {raw!r} is not a TOML value (numbers as 5 or 0.5, booleans"
                    f' as true, strings quoted: "{raw}")'
                ]
            ) from None
        if isinstance(values[-1], (dict, list)):
            raise ConfigError([f"{path}: {raw!r} is not a scalar (one number, string or boolean)"])
    if not values:
        raise ConfigError([f"{path}: no value given (PATH=V1,V2,...)"])
    return ParamAxis(format_path(parts), parts, tuple(values))


def _split_values(text: str) -> list[str]:
    """Commas separate values, except inside a quoted string."""
    values, current, quote = [], "", ""
    for char in text:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current += char
        elif char == ",":
            values.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip() or values:
        values.append(current.strip())
    return [value for value in values if value]


def expand(axes: Sequence[ParamAxis]) -> list[Variant]:
    """The cartesian grid; one variant with no values when there is no axis. The same path
    twice is a ``ConfigError``."""
    seen: set[str] = set()
    for axis in axes:
        if axis.path in seen:
            raise ConfigError([f"{axis.path}: given twice; list all its values in one --param"])
        seen.add(axis.path)
    combos = itertools.product(*(axis.values for axis in axes))
    return [
        Variant(i, tuple((axis.path, value) for axis, value in zip(axes, combo, strict=True)))
        for i, combo in enumerate(combos)
    ]


def apply_values(
    raw: Mapping[str, Any], axes: Sequence[ParamAxis], variant: Variant
) -> dict[str, Any]:
    """A deep copy of ``raw`` with the variant's values set; ``ConfigError`` for a path that
    leads nowhere (an array entry that does not exist, a value where a table should be)."""
    out = copy.deepcopy(dict(raw))
    problems: list[str] = []
    for axis, (_, value) in zip(axes, variant.values, strict=True):
        problem = _set(out, axis.parts, value)
        if problem:
            problems.append(f"{axis.path}: {problem}")
    if problems:
        raise ConfigError(problems)
    return out


def _set(node: Any, parts: tuple[PathPart, ...], value: Any) -> str | None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = format_path(parts[:depth]) or "the config"
        if isinstance(part, int):
            if not isinstance(node, list):
                return f"{where} is not an array"
            if part >= len(node):
                return f"{where} has {len(node)} entries, no [{part}]"
            if last:
                node[part] = value
                return None
            node = node[part]
        else:
            if not isinstance(node, dict):
                return f"{where} is not a table"
            if last:
                node[part] = value
                return None
            if part not in node:
                if isinstance(parts[depth + 1], int):
                    return f"{format_path(parts[: depth + 1])} is not in the config"
                node[part] = {}
            node = node[part]
    return None
