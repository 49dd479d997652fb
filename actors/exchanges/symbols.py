"""Unified ``BASE/QUOTE`` symbols to and from each protocol's native names (pure).

Binance glues base and quote (``BTCUSDT``), so a native name can only be split with a list of
known quote assets; codecs first look up the names they subscribed to and use the split only as
a fallback for names they never asked for.
"""

from __future__ import annotations

# Longest first, so that "BTCFDUSD" splits as BTC/FDUSD and not BTCFD/USD.
BINANCE_QUOTES: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT",
            "USDC",
            "FDUSD",
            "TUSD",
            "BUSD",
            "DAI",
            "BTC",
            "ETH",
            "BNB",
            "EUR",
            "GBP",
            "TRY",
            "BRL",
            "JPY",
            "AUD",
            "USD",
            "XRP",
            "DOGE",
            "SOL",
            "TRX",
            "PLN",
            "RON",
            "ARS",
            "MXN",
            "COP",
            "ZAR",
            "UAH",
            "IDR",
            "CZK",
        ),
        key=len,
        reverse=True,
    )
)

# Kraken WS v1 (and REST wsname) use legacy asset codes for a few assets.
KRAKEN_V1_ALIASES: dict[str, str] = {"BTC": "XBT", "DOGE": "XDG"}
KRAKEN_V1_UNALIASES: dict[str, str] = {v: k for k, v in KRAKEN_V1_ALIASES.items()}


def split_unified(symbol: str) -> tuple[str, str]:
    """``"BTC/USDT"`` -> ``("BTC", "USDT")``; raises ValueError naming the bad symbol."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote or symbol != symbol.upper():
        raise ValueError(f"symbol {symbol!r} is not in unified BASE/QUOTE form (e.g. 'BTC/USDT')")
    return base, quote


def binance_native(symbol: str) -> str:
    base, quote = split_unified(symbol)
    return base + quote


def binance_unified(native: str) -> str:
    native = native.upper()
    for quote in BINANCE_QUOTES:
        if native.endswith(quote) and len(native) > len(quote):
            return f"{native[: -len(quote)]}/{quote}"
    raise ValueError(f"cannot split Binance symbol {native!r} into base and quote")


def coinbase_native(symbol: str) -> str:
    base, quote = split_unified(symbol)
    return f"{base}-{quote}"


def coinbase_unified(native: str) -> str:
    base, sep, quote = native.partition("-")
    if not sep or not base or not quote:
        raise ValueError(f"Coinbase product id {native!r} is not BASE-QUOTE")
    return f"{base}/{quote}"


def kraken_native(symbol: str) -> str:
    """Kraken WS v2 uses the unified form itself (``BTC/USD``, ``DOGE/USD``)."""
    split_unified(symbol)
    return symbol


def kraken_unified(native: str) -> str:
    base, quote = split_unified(native)
    return f"{KRAKEN_V1_UNALIASES.get(base, base)}/{KRAKEN_V1_UNALIASES.get(quote, quote)}"


def kraken_v1_native(symbol: str) -> str:
    base, quote = split_unified(symbol)
    return f"{KRAKEN_V1_ALIASES.get(base, base)}/{KRAKEN_V1_ALIASES.get(quote, quote)}"


def kraken_v1_unified(native: str) -> str:
    return kraken_unified(native)


def kraken_rest_pair(symbol: str) -> str:
    """REST ``pair=`` parameter: v1 asset codes without the slash (``XBTUSD``)."""
    return kraken_v1_native(symbol).replace("/", "")
