"""``[record]``: what to record and where (see ``actors.recording.recorder``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

from actors.schema import at_least_one, positive, unified_symbol

__all__ = ["RecordConfig", "RecordStream", "record_streams"]


@attrs.frozen
class RecordStream:
    """One stream to record: ``{exchange = "binance", kind = "trade", symbol = "BTC/USDT"}``."""

    exchange: str
    symbol: str = attrs.field(validator=unified_symbol)
    kind: Literal["ticker", "trade"] = "ticker"


@attrs.frozen
class RecordConfig:
    """Recording is on when ``[record]`` is present. ``streams`` are recorded, and with
    ``bot_streams`` also the ticker and trade streams of every configured bot's symbol.
    Segments are flushed every ``flush_s`` (a crash loses at most that much) and compacted
    into Parquet every ``rotate_s``; at most ``max_buffer_rows`` wait for the disk, beyond
    which rows are dropped and counted. ``raw_frames`` also records every received frame."""

    dir: str = "data/record"
    streams: tuple[RecordStream, ...] = ()
    bot_streams: bool = True
    flush_s: float = attrs.field(default=1.0, validator=positive)
    rotate_s: float = attrs.field(default=3600.0, validator=positive)
    max_buffer_rows: int = attrs.field(default=200_000, validator=at_least_one)
    raw_frames: bool = False


def record_streams(
    config: RecordConfig, bot_markets: Iterable[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """(exchange, kind, symbol) to record: the explicit streams, then, with ``bot_streams``,
    the ticker and trade streams of each (exchange, symbol) a bot trades; each once, in that
    order."""
    wanted = [(s.exchange, s.kind, s.symbol) for s in config.streams]
    if config.bot_streams:
        for exchange, symbol in bot_markets:
            wanted += [(exchange, "ticker", symbol), (exchange, "trade", symbol)]
    return list(dict.fromkeys(wanted))
