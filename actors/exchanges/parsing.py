"""Strict, cheap parsers for the numbers, times and ids inside exchange frames (pure).

Every codec funnels wire values through these so that one set of rules decides what a valid
price is. They raise ``DecodeError`` naming the field and the offending value, and nothing else.

Decisions:

* Prices and sizes are ``Decimal`` built from the exchange's own text, so no digit is lost.
  String protocols (Binance, Coinbase, Kraken v1, all REST) must send strings: a JSON number
  where the protocol documents a string is a wrong type. Kraken v2 sends JSON numbers, which its
  codec parses with ``parse_float=Decimal``; ``number_price``/``number_size`` accept those.
* A decimal string may only contain ``0-9 . e E + -`` and at most ``MAX_NUMBER_CHARS``
  characters. ``Decimal()`` alone would also accept ``NaN``, ``Infinity``, ``1_000``, padding
  whitespace and non-ASCII digits; none of those is exchange text.
* "Absurd" numbers are refused: a price must lie in ``[1e-30, 1e30)`` and a non-zero size too.
  ``1e400`` is a finite ``Decimal``, but the first ``float()`` downstream would turn it into
  ``inf``, so it is a protocol violation here rather than a surprise in a strategy.
* Prices must be > 0; sizes must be >= 0 (a quote can show an empty level; trades use
  ``trade_size`` which requires > 0).
* Times become epoch seconds as ``float`` (µs resolution is what a float keeps at 1.7e9 s).
  RFC 3339 parsing caches the epoch of each ``YYYY-MM-DDTHH:MM`` prefix, so the per-frame cost
  is a dict hit and one ``float()`` of the seconds; up to 9 fractional digits are accepted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Container, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import orjson

from actors.errors import DecodeError
from actors.messages import Stream

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

# A decoded JSON object or array: its values are checked by the parsers below, one by one.
JsonObject = dict[str, Any]
JsonArray = list[Any]

__all__ = [
    "FOREIGN_ERRORS",
    "MAX_NUMBER_CHARS",
    "JsonArray",
    "JsonObject",
    "book_quote",
    "check_book",
    "decode_failure",
    "dumps",
    "expect_dict",
    "expect_list",
    "expect_str",
    "ms_ts",
    "number_price",
    "number_size",
    "price",
    "remember",
    "rfc3339_ts",
    "show",
    "size",
    "trade_id",
    "trade_size",
    "unique",
    "unix_str_ts",
]

MAX_NUMBER_CHARS = 64
_NUMBER_CHARS = "0123456789.eE+-"
# Plain fixed-point text short enough to lie in [1e-29, 1e30) unless zero (``book_quote``).
_FIXED_CHARS = "0123456789."
_FIXED_MAX_CHARS = 30
_UPPER = Decimal("1e30")
_LOWER = Decimal("1e-30")
_ZERO = Decimal(0)
# Year 10000: anything later is not a time an exchange sends.
_MAX_EPOCH_S = 253402300800
_MAX_EPOCH_MS = _MAX_EPOCH_S * 1000


def show(value: object, limit: int = 60) -> str:
    """A bounded repr for error messages: frames can be huge and are untrusted."""
    try:
        text = repr(value)
    except RecursionError:  # a deeply nested JSON value
        return f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dumps(obj: object) -> str:
    """Compact JSON text for client frames (key order as written)."""
    return orjson.dumps(obj).decode()


# --- numbers ------------------------------------------------------------------------------------


def _decimal_text(value: object, field: str) -> Decimal:
    if (
        type(value) is not str
        or not value
        or len(value) > MAX_NUMBER_CHARS
        or value.strip(_NUMBER_CHARS)
    ):
        raise DecodeError(f"{field}: expected a decimal string, got {show(value)}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise DecodeError(f"{field}: {show(value)} is not a decimal number") from None


def _decimal_any(value: object, field: str) -> Decimal:
    """Kraken v2: a Decimal (JSON float parsed with parse_float=Decimal), an int or a string."""
    if type(value) is Decimal:
        if not value.is_finite():
            raise DecodeError(f"{field}: {show(value)} is not finite")
        return value
    if type(value) is int:
        if abs(value) >= 10**31:
            raise DecodeError(f"{field}: {show(value)} is absurdly large")
        return Decimal(value)
    if type(value) is str:
        return _decimal_text(value, field)
    raise DecodeError(f"{field}: expected a number, got {show(value)}")


def _check_price(d: Decimal, field: str, value: object) -> Decimal:
    if _LOWER <= d < _UPPER:
        return d
    if d <= 0:
        raise DecodeError(f"{field}: price must be > 0, got {show(value)}")
    raise DecodeError(f"{field}: price {show(value)} is outside [1e-30, 1e30)")


def _check_size(d: Decimal, field: str, value: object) -> Decimal:
    if _LOWER <= d < _UPPER:
        return d
    if d == 0:
        return _ZERO
    if d < 0:
        raise DecodeError(f"{field}: size must be >= 0, got {show(value)}")
    raise DecodeError(f"{field}: size {show(value)} is outside [1e-30, 1e30)")


def price(value: object, field: str) -> Decimal:
    """A price sent as a decimal string: finite, > 0, not absurd.

    The checks of ``_decimal_text`` and ``_check_price`` are written out here for the value
    that passes them all, so a valid price costs one call instead of three (a bookTicker has
    four such fields, decoded on the reader's path to the subscribers); anything else takes
    the two functions, for their verdict and their message."""
    if (
        type(value) is str
        and value
        and len(value) <= MAX_NUMBER_CHARS
        and not value.strip(_NUMBER_CHARS)
    ):
        try:
            d = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if _LOWER <= d < _UPPER:
                return d
    return _check_price(_decimal_text(value, field), field, value)


def size(value: object, field: str) -> Decimal:
    """A quantity sent as a decimal string: finite, >= 0, not absurd (inlined like
    ``price``; zero, and anything refused, takes ``_check_size``)."""
    if (
        type(value) is str
        and value
        and len(value) <= MAX_NUMBER_CHARS
        and not value.strip(_NUMBER_CHARS)
    ):
        try:
            d = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if _LOWER <= d < _UPPER:
                return d
    return _check_size(_decimal_text(value, field), field, value)


def book_quote(
    bid: object,
    ask: object,
    bid_size: object,
    ask_size: object,
    what: str,
    names: tuple[str, str, str, str],
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """``(bid, ask, bid_size, ask_size)`` of a quote: ``price`` twice, ``check_book``, ``size``
    twice, in that order, as one call. Why: a bookTicker is decoded on the reader's path to its
    subscribers, and at a few thousand messages a second each one arrives alone, its code cold:
    there, every Python call and comparison costs several times its warm cost
    (``tests/bench/market_data.py --only latency``).

    The fast path takes what exchanges send, plain fixed-point text (digits and a point, at
    most ``_FIXED_MAX_CHARS`` characters), where the range checks need no comparison: such a
    number is below 1e30 (at most 30 integer digits) and, unless it is zero, at least 1e-29.
    So a valid quote costs four ``Decimal`` and one comparison (the book's order). Anything
    else takes the five functions, for their verdict and their message (``names``: the
    fields' keys, each error names ``f"{what} {key}"``); a zero size comes back as the ``size``
    function returns it."""
    if (
        type(bid) is str
        and type(ask) is str
        and type(bid_size) is str
        and type(ask_size) is str
        and 0 < len(bid) <= _FIXED_MAX_CHARS
        and 0 < len(ask) <= _FIXED_MAX_CHARS
        and 0 < len(bid_size) <= _FIXED_MAX_CHARS
        and 0 < len(ask_size) <= _FIXED_MAX_CHARS
        and not bid.strip(_FIXED_CHARS)
        and not ask.strip(_FIXED_CHARS)
        and not bid_size.strip(_FIXED_CHARS)
        and not ask_size.strip(_FIXED_CHARS)
    ):
        try:
            b, a, bs, az = Decimal(bid), Decimal(ask), Decimal(bid_size), Decimal(ask_size)
        except InvalidOperation:
            pass
        else:
            if b and b <= a and bs and az:  # prices > 0, not crossed; sizes not zero
                return b, a, bs, az
    b = price(bid, f"{what} {names[0]}")
    a = price(ask, f"{what} {names[1]}")
    check_book(b, a, what)
    return b, a, size(bid_size, f"{what} {names[2]}"), size(ask_size, f"{what} {names[3]}")


def trade_size(value: object, field: str) -> Decimal:
    """A trade's quantity: a trade of nothing is not a trade, so > 0."""
    d = _decimal_text(value, field)
    if d == 0:
        raise DecodeError(f"{field}: trade size must be > 0, got {show(value)}")
    return _check_size(d, field, value)


def number_price(value: object, field: str) -> Decimal:
    """Kraken v2 price: JSON number (as Decimal/int) or decimal string."""
    return _check_price(_decimal_any(value, field), field, value)


def number_size(value: object, field: str) -> Decimal:
    """Kraken v2 quantity: JSON number (as Decimal/int) or decimal string."""
    return _check_size(_decimal_any(value, field), field, value)


# --- ids ----------------------------------------------------------------------------------------


def trade_id(value: object, field: str) -> str:
    """Trade ids arrive as ints (Binance, Coinbase Exchange, Kraken v2) or strings (Advanced)."""
    if type(value) is int:
        return str(value)
    if type(value) is str and 0 < len(value) <= 128:
        return value
    raise DecodeError(f"{field}: expected a trade id (int or string), got {show(value)}")


# --- times --------------------------------------------------------------------------------------


def ms_ts(value: object, field: str) -> float:
    """Binance epoch milliseconds (int) -> epoch seconds."""
    if type(value) is not int or not 0 <= value < _MAX_EPOCH_MS:
        raise DecodeError(f"{field}: expected epoch milliseconds, got {show(value)}")
    return value / 1000


def unix_str_ts(value: object, field: str) -> float:
    """Kraken v1 ``"1534614057.321597"`` (seconds.micros as a string) -> epoch seconds."""
    if (
        type(value) is not str
        or not 0 < len(value) <= 32
        or not value.isascii()
        or not value.replace(".", "", 1).isdigit()
    ):
        raise DecodeError(f"{field}: expected a 'seconds.micros' string, got {show(value)}")
    seconds = float(value)
    if seconds >= _MAX_EPOCH_S:
        raise DecodeError(f"{field}: time {show(value)} is absurd")
    return seconds


@functools.lru_cache(maxsize=512)
def _minute_epoch(prefix: str) -> float:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM`` (UTC); raises ValueError for anything else."""
    if (
        len(prefix) != 16
        or prefix[4] != "-"
        or prefix[7] != "-"
        or prefix[10] not in "Tt "
        or prefix[13] != ":"
    ):
        raise ValueError(prefix)
    digits = prefix[0:4] + prefix[5:7] + prefix[8:10] + prefix[11:13] + prefix[14:16]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(prefix)
    return datetime(
        int(prefix[0:4]),
        int(prefix[5:7]),
        int(prefix[8:10]),
        int(prefix[11:13]),
        int(prefix[14:16]),
        tzinfo=UTC,
    ).timestamp()


def _offset_s(text: str) -> int | None:
    """``+HH:MM`` / ``-HH:MM`` -> seconds east of UTC, or None when malformed."""
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    hh, mm = text[1:3], text[4:6]
    if not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()):
        return None
    hours, minutes = int(hh), int(mm)
    if hours > 23 or minutes > 59:
        return None
    offset = hours * 3600 + minutes * 60
    return -offset if text[0] == "-" else offset


def rfc3339_ts(value: object, field: str) -> float:
    """RFC 3339 ``2026-06-19T16:43:33.016274911Z`` (0-9 fractional digits) -> epoch seconds."""
    if type(value) is not str or not 20 <= len(value) <= 40 or value[16] != ":":
        raise DecodeError(f"{field}: expected an RFC 3339 time, got {show(value)}")
    rest = value[17:]
    offset: int | None
    if rest[-1] in "Zz":
        seconds_text, offset = rest[:-1], 0
    else:
        seconds_text, offset = rest[:-6], _offset_s(rest[-6:])
        if offset is None:
            raise DecodeError(f"{field}: RFC 3339 time {show(value)} has no valid UTC offset")
    n = len(seconds_text)
    if (
        n < 2
        or not seconds_text.isascii()
        or not seconds_text[:2].isdigit()
        or (n > 2 and (seconds_text[2] != "." or n > 12 or not seconds_text[3:].isdigit()))
    ):
        raise DecodeError(f"{field}: RFC 3339 time {show(value)} has malformed seconds")
    seconds = float(seconds_text)
    if seconds >= 61:  # 60 is a leap second
        raise DecodeError(f"{field}: RFC 3339 time {show(value)} has seconds >= 61")
    try:
        base = _minute_epoch(value[:16])
    except ValueError:
        raise DecodeError(f"{field}: RFC 3339 time {show(value)} has a malformed date") from None
    return base + seconds - offset


# --- the decode boundary ------------------------------------------------------------------------

# What malformed input can make plain Python raise inside a decoder. Codecs catch exactly these
# at ``decode`` and re-raise them as DecodeError, so callers only ever see DecodeError.
FOREIGN_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ValueError,  # includes JSONDecodeError, UnicodeDecodeError, int() digit limits
    ArithmeticError,  # InvalidOperation, OverflowError
    RecursionError,
)


def decode_failure(protocol: str, exc: Exception) -> DecodeError:
    """Turn an exception from malformed input into a DecodeError that says what was wrong."""
    if isinstance(exc, orjson.JSONDecodeError) or type(exc).__name__ == "JSONDecodeError":
        return DecodeError(f"{protocol}: invalid JSON: {exc}")
    if isinstance(exc, UnicodeError):
        return DecodeError(f"{protocol}: frame is not UTF-8: {exc}")
    if isinstance(exc, KeyError):
        return DecodeError(f"{protocol}: missing field {show(exc.args[0] if exc.args else None)}")
    if isinstance(exc, TypeError | AttributeError | IndexError):
        return DecodeError(f"{protocol}: unexpected frame structure ({type(exc).__name__}: {exc})")
    if isinstance(exc, RecursionError):
        return DecodeError(f"{protocol}: frame nests too deeply")
    return DecodeError(f"{protocol}: malformed frame ({type(exc).__name__}: {exc})")


def expect_dict(value: object, what: str) -> JsonObject:
    if type(value) is not dict:
        raise DecodeError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def expect_list(value: object, what: str) -> JsonArray:
    if type(value) is not list:
        raise DecodeError(f"{what}: expected a JSON array, got {type(value).__name__}")
    return value


def expect_int(value: object, what: str) -> int:
    if type(value) is not int:
        raise DecodeError(f"{what}: expected an integer, got {show(value)}")
    return value


def expect_bool(value: object, what: str) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"{what}: expected true or false, got {show(value)}")
    return value


def expect_str(value: object, what: str) -> str:
    if type(value) is not str:
        raise DecodeError(f"{what}: expected a string, got {show(value)}")
    return value


def check_book(bid: Decimal, ask: Decimal, what: str) -> None:
    """A bid above the ask is garbage, not a market: refuse it (equal is a locked book, allowed)."""
    if bid > ask:
        raise DecodeError(f"{what}: crossed book, bid {bid} > ask {ask}")


def unique(items: Iterable[T]) -> list[T]:
    """Order-preserving de-duplication (callers may pass the same stream twice)."""
    return list(dict.fromkeys(items))


# A server that never answers must not grow a codec without bound: past this many requests
# awaiting a reply, the oldest is forgotten (its ack then resolves to no streams).
MAX_PENDING = 1024


def remember(pending: dict[K, V], key: K, value: V) -> None:
    pending[key] = value
    if len(pending) > MAX_PENDING:
        del pending[next(iter(pending))]


class SymbolTable:
    """Native names -> unified symbols for one connection.

    Names we subscribed to map back exactly to what was asked for (so ``BTCFDUSD`` is never
    re-split by guesswork); names we never asked for fall back to the protocol's rule.
    """

    __slots__ = ("_known", "_label", "_to_native", "_to_unified", "_what")

    def __init__(
        self,
        label: str,
        to_native: Callable[[str], str],
        to_unified: Callable[[str], str],
        what: str = "symbol",
    ) -> None:
        self._label = label
        self._to_native = to_native
        self._to_unified = to_unified
        self._what = what
        self._known: dict[str, str] = {}

    def native(self, symbol: str) -> str:
        return self._to_native(symbol)

    def remember(self, symbol: str) -> str:
        """The native name of ``symbol``, remembered so frames naming it map back exactly."""
        native = self._to_native(symbol)
        self._known[native] = symbol
        return native

    def unified(self, native: str) -> str:
        known = self._known.get(native)
        return known if known is not None else self._to_unified(native)

    def group_by_kind(
        self, streams: Iterable[Stream], kinds: Container[str]
    ) -> dict[str, dict[str, Stream]]:
        """``{kind: {native name: stream}}`` for per-channel requests, remembering each name;
        ``ValueError`` for a kind the protocol does not carry."""
        by_kind: dict[str, dict[str, Stream]] = {}
        for stream in unique(streams):
            if stream.kind not in kinds:
                raise ValueError(f"{self._label}: unsupported stream kind {stream.kind!r}")
            by_kind.setdefault(stream.kind, {})[self.remember(stream.symbol)] = stream
        return by_kind

    def stream_or_none(self, kind: str | None, native: object) -> Stream | None:
        """The stream a reply names, if it names one readably (errors may echo bad names such
        as ``XBT-USDT``)."""
        if kind is None:
            return None
        try:
            return Stream(kind, self.decode(native))  # type: ignore[arg-type]
        except DecodeError:
            return None

    def decode(self, native: object) -> str:
        """``unified`` for a value taken from a frame: anything wrong is a ``DecodeError``."""
        if type(native) is not str:
            raise DecodeError(f"{self._label}: {self._what} must be a string, got {show(native)}")
        known = self._known.get(native)
        if known is not None:
            return known
        try:
            return self._to_unified(native)
        except ValueError as exc:
            raise DecodeError(f"{self._label}: {exc}") from None


def rest_symbol(symbol: str | None, label: str) -> str:
    """The symbol a REST ticker body is for, where the body does not name it (Coinbase,
    Kraken): the caller must say."""
    if symbol is None:
        raise DecodeError(f"{label} REST ticker: the body does not name its symbol; pass symbol=")
    return symbol
