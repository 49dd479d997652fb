"""Structure a strategy's ``params`` table into its attrs ``Params`` class.

The one schema (``actors.schema``) does it, so params follow the config's rules and wording:
``bots[0].params.fast: must be > 0, got 0``, every problem at once. Unknown keys also name the
keys the class takes, since a strategy's params are declared in code the user may not have read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from actors.errors import ConfigError
from actors.schema import structure

T = TypeVar("T")


def structure_params(data: object, cls: type[T], path: str) -> T:
    """``data`` structured into ``cls``, or ConfigError listing every problem under ``path``."""
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path}: expected a table of parameters, got {data!r}"])
    return structure(dict(data), cls, at=path, name_expected_keys=True)
