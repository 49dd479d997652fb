"""Pure exchange protocol codecs (no I/O), and the one registry of exchange protocols.

Adding an exchange is a codec module here, a simulator module named after the protocol
(``actors/simulator/<protocol>.py``, found by that name) and its codec class in ``CODECS``.
``codec_for(protocol, exchange=None)`` returns a *new* codec: each connection owns its own
(``codec.py``). ``exchange`` labels the events (defaults to the protocol name). A codec class
carries its protocol's defaults (production URLs, limits): ``codec_class(name).default_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from actors.errors import DecodeError
from actors.exchanges.binance import BinanceCodec
from actors.exchanges.codec import Codec, RestRequest
from actors.exchanges.coinbase import CoinbaseCodec
from actors.exchanges.coinbase_advanced import CoinbaseAdvancedCodec
from actors.exchanges.kraken import KrakenCodec
from actors.exchanges.kraken_v1 import KrakenV1Codec

__all__ = [
    "CODECS",
    "PROTOCOLS",
    "Codec",
    "DecodeError",
    "RestRequest",
    "codec_class",
    "codec_for",
]

CODECS: Mapping[str, type[Codec]] = MappingProxyType(
    {
        cls.protocol: cls
        for cls in (
            BinanceCodec,
            CoinbaseCodec,
            CoinbaseAdvancedCodec,
            KrakenCodec,
            KrakenV1Codec,
        )
    }
)
PROTOCOLS: tuple[str, ...] = tuple(CODECS)


def codec_class(protocol: str) -> type[Codec]:
    cls = CODECS.get(protocol)
    if cls is None:
        raise ValueError(f"unknown exchange protocol {protocol!r}; expected one of {PROTOCOLS}")
    return cls


def codec_for(protocol: str, exchange: str | None = None) -> Codec:
    return codec_class(protocol)(exchange=exchange or protocol)
