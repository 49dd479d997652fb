"""The schema toolkit shared by every configuration class: field-aware validators.

A validator raises ``FieldValueError``; the config loader (and the strategy-params check) turn it
into a ``path: message`` line. Money is ``Decimal``; a Decimal is echoed as written ("-5").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs


class FieldValueError(ValueError):
    """A validator's complaint about one field; the loader prefixes the field path.

    The loader knows which attribute's validator raised, so ``field`` is only needed when a
    check reports on a *different* field than the one it validates (e.g. the protocol check
    that falls back to the exchange's ``name``).
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def check(ok: bool, message: str, value: Any) -> None:
    if not ok:
        # Decimals are echoed as written ("-5"), not as Python reprs ("Decimal('-5')").
        shown = str(value) if isinstance(value, Decimal) else repr(value)
        raise FieldValueError(f"{message}, got {shown}")


def positive(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    check(_finite(value) and value > 0, "must be > 0", value)


def non_negative(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    check(_finite(value) and value >= 0, "must be >= 0", value)


def at_least_one(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    check(value >= 1, "must be >= 1", value)


def tcp_port(_inst: Any, attribute: attrs.Attribute, value: int) -> None:
    check(0 <= value <= 65535, "must be a TCP port in 0..65535 (0 picks a free one)", value)


def name_like(value: str, max_len: int) -> bool:
    return (
        0 < len(value) <= max_len
        and value.isascii()
        and value.replace("-", "").replace("_", "").isalnum()
    )


def percent(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    check(_finite(value) and 0 < value < 100, "must be > 0 and < 100", value)


def _finite(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return math.isfinite(value)


def unified_symbol(_inst: Any, attribute: attrs.Attribute, value: str) -> None:
    base, sep, quote = value.partition("/")
    check(
        bool(sep and value.isascii() and base.isalnum() and quote.isalnum())
        and value == value.upper(),
        "must be a unified BASE/QUOTE symbol like 'BTC/USDT'",
        value,
    )


def url_with_scheme(*schemes: str) -> Callable[[Any, attrs.Attribute, str | None], None]:
    def validate(_inst: Any, attribute: attrs.Attribute, value: str | None) -> None:
        if value is None:
            return
        check(
            value.startswith(schemes) and len(value) > len(value.split("//")[0]) + 2,
            f"must be a URL starting with {' or '.join(schemes)}",
            value,
        )

    return validate


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
