"""Loguru sinks. Only the entry point (run.py) calls ``configure_logging``; library code only
logs, with bound context (``logger.bind``) and constant messages; values go in keyword fields.

Decisions: ``diagnose=False`` by default, since loguru's diagnose prints variable values in
tracebacks, secrets included; ``enqueue`` is not used (one process: it would only add a pipe
and a writer thread per record); the JSON file sink always serializes, whatever the stderr
format, because files are read by tools.

The human format is ``time level message key=value ...``: one short line per event that a person
reads between status blocks, and that ``grep bot=eth-rsi`` or ``grep reason=rate_limit`` finds.
Values are bare unless they contain whitespace (then JSON-quoted, so a line never breaks and can
be read back); ``None``, booleans and containers are written as compact JSON. The
supervision context (``supervisor``, ``child``) is left out of an actor's lines (those that carry
``actor``): the actor's own fields (``bot``, ``exchange``) already say who speaks, and the JSON
records keep everything. A field whose name says it holds a secret is shown as ``***`` in every
sink, JSON included: a secret must not reach a terminal or a log file through a careless field.
"""

from __future__ import annotations

import json as jsonlib
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from loguru import logger

TIME_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS}"
CONTEXT_KEYS = ("supervisor", "child")
REDACTED = "***"
# Names of fields that hold secrets (``api_secret``, ``token``, ``authorization``, ...); a name
# ending in ``_env`` names the variable that holds one, which is not itself secret.
_SECRET_NAME = re.compile(
    r"(^|_)(secret|password|passphrase|token|api_?key|signature|authorization|private_key)($|_)",
    re.IGNORECASE,
)
_NEEDS_QUOTES = re.compile(r'^"|\s')


def is_secret(key: str) -> bool:
    return bool(_SECRET_NAME.search(key)) and not key.lower().endswith("_env")


def format_value(value: Any) -> str:
    """One field's value as the human format shows it (see the module docstring)."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | list | tuple | Mapping):
        text = jsonlib.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    else:  # numbers (Decimal as exact as it is), enums, paths, ...
        text = str(value)
    if not text or _NEEDS_QUOTES.search(text):
        return jsonlib.dumps(text, ensure_ascii=False)
    return text


def format_fields(extra: Mapping[str, Any]) -> str:
    """``key=value`` pairs, space-separated, in the record's order."""
    actor = "actor" in extra
    return " ".join(
        f"{key}={REDACTED if is_secret(key) else format_value(value)}"
        for key, value in extra.items()
        if not (actor and key in CONTEXT_KEYS)
    )


# What loguru's colorizer takes for a color tag, with the backslashes before it (an odd number
# makes the tag literal text, each pair stands for one backslash).
_TAG = re.compile(r"(\\*)(</?(?:[fb]g\s)?[^<>\s]*>)")


def _escape(text: str) -> str:
    """Literal text inside a loguru format template: braces are format fields, and anything
    shaped like a color tag would be one (or an error, unclosed)."""
    text = text.replace("{", "{{").replace("}", "}}")
    return _TAG.sub(lambda tag: tag[1] * 2 + "\\" + tag[2], text)


def human_format(record: Mapping[str, Any]) -> str:
    """Loguru format callable for the human stderr sink."""
    fields = format_fields(record["extra"])
    line = f"<green>{TIME_FORMAT}</green> <level>{{level: <8}}</level> <level>{{message}}</level>"
    if fields:
        line += " " + _escape(fields)
    return line + ("\n{exception}" if record["exception"] is not None else "\n")


def redact_secrets(record: Any) -> None:
    """Loguru patcher: secret-named fields become ``***`` before any sink sees the record."""
    extra = record["extra"]
    for key in extra:
        if is_secret(key):
            extra[key] = REDACTED


def configure_logging(
    level: str = "INFO",
    json: bool = False,
    file: str | os.PathLike[str] | None = None,
    diagnose: bool = False,
    *,
    stream: TextIO | None = None,
) -> list[int]:
    """Replace every loguru sink: stderr (the human format, or JSON lines) plus an optional
    JSON-lines ``file``. Returns the handler ids. ``stream`` replaces stderr (tests)."""
    logger.remove()
    logger.configure(patcher=redact_secrets)
    stream = sys.stderr if stream is None else stream
    if json:
        ids = [logger.add(stream, level=level, serialize=True, diagnose=diagnose)]
    else:
        ids = [logger.add(stream, level=level, format=human_format, diagnose=diagnose)]
    if file is not None:
        ids.append(logger.add(os.fspath(file), level=level, serialize=True, diagnose=diagnose))
    return ids
