"""Client order ids for Binance Spot, derived from the journal's intent (pure).

The venue's ``newClientOrderId`` must match ``^[a-zA-Z0-9-_]{1,36}$``. Ours is a function of
the intent's bot id and sequence number only, so a restart that replays the journal computes
the same id for the same intent and can look the order up by it (never sending it again).

Decisions:

* **Form.** ``<prefix>_<bot>_<seq>`` when the bot id fits: the prefix marks the order as ours
  (reconciliation lists open orders and picks ours out of everything else on the account), the
  bot id says whose it is, the decimal ``seq`` which of its intents. The prefix is 1-6 ASCII
  letters or digits (default ``bcf``); give each deployment sharing an account its own.
* **Long bot ids are shortened deterministically**: ``<prefix>-<head><hash>_<seq>``, where
  ``hash`` is the first 10 hex digits of SHA-256 of the bot id and ``head`` as much of the bot
  id as still fits, for people reading the venue's order list. The ``-`` after the prefix
  (instead of ``_``) marks the shortened form, so a full id and a shortened one can never be
  confused. Whether a bot id is shortened depends on the bot id and the prefix only (room is
  reserved for ``SEQ_DIGITS`` = 8 digits of sequence), so all of a bot's ids share one stem.
  Only a sequence longer than the reservation changes that: the id takes the shortened form
  if the full one no longer fits, and the head shrinks to make room; ``ValueError`` only when
  even an empty head leaves too little (a sequence of some 19 digits).
* **Parsing back.** ``parse_client_order_id`` returns the bot's stem part and the sequence;
  mapping a shortened stem back to its bot needs the bot ids (from config or the journal),
  which reconciliation has: ``bot_for`` compares stems. Ids are parsed, never matched by
  ``startswith`` on a stem: bot ``a`` must not claim bot ``a_b``'s orders.
* The venue only keeps client ids unique **among open orders**: an id is not an idempotency
  key once its order is done, so the executor never re-sends an intent; the id is for finding
  the order, not for deduplicating a second send.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import attrs

__all__ = [
    "CLIENT_ORDER_ID_RE",
    "DEFAULT_PREFIX",
    "MAX_CLIENT_ORDER_ID_LEN",
    "ParsedClientOrderId",
    "bot_for",
    "bot_stem",
    "client_order_id",
    "parse_client_order_id",
]

CLIENT_ORDER_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
MAX_CLIENT_ORDER_ID_LEN = 36
DEFAULT_PREFIX = "bcf"
SEQ_DIGITS = 8  # room reserved for the sequence number when deciding whether a bot id fits
HASH_LEN = 10
_PREFIX_RE = re.compile(r"^[A-Za-z0-9]{1,6}$")
_BOT_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_prefix(prefix: str) -> None:
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"client order id prefix must be 1-6 ASCII letters or digits: {prefix!r}")


def _bot_hash(bot_id: str) -> str:
    return hashlib.sha256(bot_id.encode()).hexdigest()[:HASH_LEN]


def _full_fits(prefix: str, bot_id: str) -> bool:
    return len(prefix) + 1 + len(bot_id) + 1 + SEQ_DIGITS <= MAX_CLIENT_ORDER_ID_LEN


def bot_stem(bot_id: str, prefix: str = DEFAULT_PREFIX, *, seq_digits: int = SEQ_DIGITS) -> str:
    """Everything before ``_<seq>``: ``<prefix>_<bot>`` or ``<prefix>-<head><hash>``.

    ``seq_digits`` is the length of the sequence number the id will carry."""
    _check_prefix(prefix)
    if not _BOT_RE.match(bot_id):
        raise ValueError(f"bot id must be ASCII letters, digits, '-' or '_': {bot_id!r}")
    full = f"{prefix}_{bot_id}"
    if _full_fits(prefix, bot_id) and len(full) + 1 + seq_digits <= MAX_CLIENT_ORDER_ID_LEN:
        return full
    room = MAX_CLIENT_ORDER_ID_LEN - len(prefix) - 1 - HASH_LEN - 1 - max(seq_digits, SEQ_DIGITS)
    stem = f"{prefix}-{bot_id[: max(room, 0)]}{_bot_hash(bot_id)}"
    if len(stem) + 1 + seq_digits > MAX_CLIENT_ORDER_ID_LEN:
        raise ValueError(f"a sequence number of {seq_digits} digits does not fit in an id")
    return stem


def client_order_id(bot_id: str, seq: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The venue's ``newClientOrderId`` for the bot's intent number ``seq``."""
    if type(seq) is not int or seq < 0:
        raise ValueError(f"seq must be a non-negative int, got {seq!r}")
    digits = str(seq)
    cid = f"{bot_stem(bot_id, prefix, seq_digits=len(digits))}_{digits}"
    assert CLIENT_ORDER_ID_RE.match(cid), cid
    return cid


@attrs.frozen(slots=True)
class ParsedClientOrderId:
    stem: str  # ``<prefix>_<bot>`` or ``<prefix>-<head><hash>``
    bot_part: str  # the bot id (full form) or ``<head><hash>`` (shortened)
    shortened: bool
    seq: int


def parse_client_order_id(cid: str, prefix: str = DEFAULT_PREFIX) -> ParsedClientOrderId | None:
    """What an id made by ``client_order_id`` with ``prefix`` says; None if it is not one."""
    _check_prefix(prefix)
    if not CLIENT_ORDER_ID_RE.match(cid) or not cid.startswith(prefix):
        return None
    marker = cid[len(prefix) : len(prefix) + 1]
    if marker not in ("_", "-"):
        return None
    stem, sep, digits = cid.rpartition("_")
    bot_part = stem[len(prefix) + 1 :]
    if not sep or not bot_part or not digits.isdigit() or (digits != "0" and digits[0] == "0"):
        return None
    shortened = marker == "-"
    if shortened and (len(bot_part) < HASH_LEN or not _is_hex(bot_part[-HASH_LEN:])):
        return None
    return ParsedClientOrderId(stem=stem, bot_part=bot_part, shortened=shortened, seq=int(digits))


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def bot_for(
    parsed: ParsedClientOrderId, bot_ids: Iterable[str], prefix: str = DEFAULT_PREFIX
) -> str | None:
    """Which of ``bot_ids`` the parsed id belongs to, if any (the id must also be the one
    ``client_order_id`` makes for that bot and sequence)."""
    for bot_id in bot_ids:
        try:
            expected = client_order_id(bot_id, parsed.seq, prefix)
        except ValueError:
            continue
        if expected == f"{parsed.stem}_{parsed.seq}":
            return bot_id
    return None
