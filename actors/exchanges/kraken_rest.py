"""Kraken public REST ticker for the polling fallback, shared by WS v1 and v2.

Kraken answers errors with HTTP 200 and a non-empty ``error`` list, and keys the result by its
own pair name (``XBTUSD`` -> ``XXBTZUSD``), so the decoder checks ``error`` first and takes the
single entry of ``result`` instead of looking the name up.
"""

from __future__ import annotations

import orjson

from actors.errors import DecodeError
from actors.exchanges.codec import RestRequest
from actors.exchanges.parsing import (
    FOREIGN_ERRORS,
    check_book,
    decode_failure,
    expect_dict,
    expect_list,
    price,
    show,
    size,
)
from actors.exchanges.symbols import kraken_rest_pair
from actors.messages import Ticker

DEFAULT_REST_URL = "https://api.kraken.com"


def kraken_rest_ticker_request(symbol: str, base_url: str) -> RestRequest:
    """``GET {base}/0/public/Ticker?pair=XBTUSD``"""
    return RestRequest(
        url=f"{base_url.rstrip('/')}/0/public/Ticker", params=(("pair", kraken_rest_pair(symbol)),)
    )


def decode_kraken_rest_ticker(
    exchange: str, symbol: str, body: bytes | str, received_ts: float
) -> Ticker:
    """``{"error":[],"result":{"XXBTZUSD":{"a":["3537.50000","1","1.000"],
    "b":["3537.40000","2","2.000"],"c":["3537.50000","0.1"],"v":[..],"p":[..],"t":[..],
    "l":[..],"h":[..],"o":"3530.60000"}}}``; ``a``/``b`` = [price, whole-lot volume, lot volume]."""
    try:
        data = expect_dict(orjson.loads(body), "kraken REST ticker")
        errors = expect_list(data["error"], "kraken REST error")
        if errors:
            raise DecodeError(f"kraken REST error: {show(errors, 200)}")
        result = expect_dict(data["result"], "kraken REST result")
        if len(result) != 1:
            raise DecodeError(f"kraken REST ticker: expected one pair in result, got {len(result)}")
        entry = expect_dict(next(iter(result.values())), "kraken REST pair entry")
        ask_row = expect_list(entry["a"], "kraken REST a")
        bid_row = expect_list(entry["b"], "kraken REST b")
        bid = price(bid_row[0], "kraken REST b[0]")
        ask = price(ask_row[0], "kraken REST a[0]")
        check_book(bid, ask, "kraken REST ticker")
        last_row = entry.get("c")
        last = None if not last_row else price(expect_list(last_row, "c")[0], "kraken REST c[0]")
        return Ticker(
            exchange,
            symbol,
            bid,
            ask,
            last,
            size(bid_row[2], "kraken REST b[2]"),
            size(ask_row[2], "kraken REST a[2]"),
            None,
            received_ts,
            "rest",
        )
    except DecodeError:
        raise
    except FOREIGN_ERRORS as exc:
        raise decode_failure("kraken REST", exc) from exc
