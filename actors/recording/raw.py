"""Raw frames: what each connection received, recorded with ``[record] raw_frames = true`` and
read back for a replay through a local exchange server, so the codecs and connections run on
recorded traffic too (``ExchangeServer.replay_frames``).

Decisions:

* **Recorded at the reader, before decoding**: the connection hands each socket read's frames
  and its receipt time to a hook (``Connection.on_frames``; None costs one test per read).
  Every frame is kept: data, subscription replies, errors, pings' payloads are not frames.
* **One stream per exchange** (``kind=raw/exchange=NAME/date=D``), columns ``received_ts``,
  ``connection`` (the shard index: frames of one connection are in wire order), ``text`` or
  ``data`` (binary frames). Same segments, flushes and compaction as the events.
* **Replay sends the market-data frames only** (``market_frames``): the recorded replies
  answered the recorded connection's requests, and the replaying client sends its own, which
  the server answers itself. Which frames are data is the codec's verdict: a frame that
  decodes to a ticker or trade.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from actors.exchanges import codec_for
from actors.messages import Ticker, Trade
from actors.recording.format import RawFrame, day_of, file_id_of, list_dates, raw_dir
from actors.recording.reader import _batches, _files

__all__ = ["RawFrame", "market_frames", "market_raw_frames", "read_raw_frames"]


def read_raw_frames(
    root: Path,
    exchange: str,
    *,
    connection: int | None = None,
    start: float | None = None,
    end: float | None = None,
) -> Iterator[RawFrame]:
    """The recorded frames of ``exchange`` in recording order (``connection``: that one's
    only); ``start`` inclusive, ``end`` exclusive on ``received_ts``."""
    base = raw_dir(Path(root), exchange)
    if not base.is_dir():
        return
    first_day = None if start is None else day_of(start)
    for date, day in list_dates(base):
        if first_day is not None and date < first_day:
            continue
        for path in _files(day):
            assert file_id_of(path.name) is not None
            for batch in _batches(path):
                cols = batch.to_pydict()
                for ts, conn, text, data in zip(
                    cols["received_ts"], cols["connection"], cols["text"], cols["data"], strict=True
                ):
                    if connection is not None and conn != connection:
                        continue
                    if start is not None and ts < start:
                        continue
                    if end is not None and ts >= end:
                        return
                    yield RawFrame(ts, conn, text if text is not None else data)


def market_frames(frames: Iterable[RawFrame], protocol: str) -> Iterator[str | bytes]:
    """The frames that carry market data (a ticker or a trade for ``protocol``'s codec)."""
    for raw in market_raw_frames(frames, protocol):
        yield raw.frame


def market_raw_frames(frames: Iterable[RawFrame], protocol: str) -> Iterator[RawFrame]:
    """``market_frames`` with their receipt times, for a replay paced as recorded."""
    codec = codec_for(protocol)
    for raw in frames:
        batch = codec.decode_batch([raw.frame], raw.received_ts)
        if any(type(event) in (Ticker, Trade) for event in batch.events):
            yield raw
