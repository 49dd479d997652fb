"""Loguru sinks. Only the entry point (run.py) calls ``configure_logging``; library code only
logs, with bound context (``logger.bind``) and constant messages; values go in keyword fields.

Decisions: ``diagnose=False`` by default, since loguru's diagnose prints variable values in
tracebacks, secrets included; ``enqueue`` is not used (one process: it would only add a pipe
and a writer thread per record); the JSON file sink always serializes, whatever the stderr
format, because files are read by tools.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from loguru import logger

HUMAN_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<level>{message}</level> | <cyan>{extra}</cyan> | <dim>{name}:{line}</dim>"
)


def configure_logging(
    level: str = "INFO",
    json: bool = False,
    file: str | os.PathLike[str] | None = None,
    diagnose: bool = False,
    *,
    stream: TextIO | None = None,
) -> list[int]:
    """Replace every loguru sink: stderr (human-readable with ``{extra}``, or JSON lines) plus
    an optional JSON-lines ``file``. Returns the handler ids. ``stream`` replaces stderr (tests).
    """
    logger.remove()
    stream = sys.stderr if stream is None else stream
    if json:
        ids = [logger.add(stream, level=level, serialize=True, diagnose=diagnose)]
    else:
        ids = [logger.add(stream, level=level, format=HUMAN_FORMAT, diagnose=diagnose)]
    if file is not None:
        ids.append(logger.add(os.fspath(file), level=level, serialize=True, diagnose=diagnose))
    return ids
