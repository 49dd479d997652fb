"""Wire time formats of the simulated exchanges (pure).

Input is always wall-clock epoch seconds (float). The servers derive it from the Trio clock
(see ``ExchangeServer.now_ts``), so under ``autojump_clock`` exchange times advance with virtual
time.
"""

from __future__ import annotations

import time


def _split(ts: float, digits: int) -> tuple[str, int]:
    scale = 10**digits
    whole = int(ts)
    frac = min(round((ts - whole) * scale), scale - 1)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)), frac


def rfc3339_us(ts: float) -> str:
    """``2024-01-07T22:55:34.347040Z`` (Coinbase Exchange WS, Kraken v2)."""
    head, frac = _split(ts, 6)
    return f"{head}.{frac:06d}Z"


def rfc3339_ns(ts: float) -> str:
    """``2026-08-09T21:05:48.229198328Z`` (Coinbase Advanced envelope, Coinbase REST)."""
    head, frac = _split(ts, 9)
    return f"{head}.{frac:09d}Z"


def go_time(ts: float, uptime_s: float) -> str:
    """Go's ``time.Time.String()`` with a monotonic reading, as in the Coinbase Advanced
    ``heartbeats`` channel: ``2026-08-09 21:05:48.854840045 +0000 UTC m=+41691.260000001``."""
    head, frac = _split(ts, 9)
    return f"{head.replace('T', ' ')}.{frac:09d} +0000 UTC m=+{uptime_s:.9f}"


def seconds_micros(ts: float) -> str:
    """Kraken v1 trade/spread time: ``"1534614057.321597"``."""
    return f"{ts:.6f}"
