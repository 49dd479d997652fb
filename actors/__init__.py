"""The actors package's public surface: messages, errors and codecs.

The actors themselves are reached through their subpackages (``actors.market_data``,
``actors.bots``, ``actors.journal``, ``actors.simulator``) and, for whole systems, through
``supervisor.open_supervisor``; importing them here would make ``import actors`` pull in the
supervisor package, which itself builds on ``actors``.
"""

from actors.errors import (
    BotCriptoFyError,
    ConfigError,
    ConnectionLostError,
    DecodeError,
    ExecutionError,
    FeedError,
    HandshakeRefusedError,
    JournalError,
    ProtocolError,
    RestartIntensityError,
    RestFallbackError,
    RiskRejectedError,
    StaleFeedError,
)
from actors.exchanges import Codec, codec_for
from actors.messages import FeedState, Lagged, Stream, Ticker, Trade

__all__ = [
    "BotCriptoFyError",
    "Codec",
    "ConfigError",
    "ConnectionLostError",
    "DecodeError",
    "ExecutionError",
    "FeedError",
    "FeedState",
    "HandshakeRefusedError",
    "JournalError",
    "Lagged",
    "ProtocolError",
    "RestFallbackError",
    "RestartIntensityError",
    "RiskRejectedError",
    "StaleFeedError",
    "Stream",
    "Ticker",
    "Trade",
    "codec_for",
]
