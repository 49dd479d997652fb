"""The actors package's public surface: messages and errors, the codecs, and the actors that
a feed or a bot is made of (usable without the daemon; ``supervisor`` supervises them).
"""

from actors.bots import Bot, BotStatistics, Signal, Strategy, StrategyContext
from actors.bots.config import BotConfig
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
from actors.journal import Journal, JournalConfig
from actors.market_data import ExchangePool, FeedConfig, Mailbox, PoolTuning
from actors.messages import FeedState, Lagged, Stream, Ticker, Trade

__all__ = [
    "Bot",
    "BotConfig",
    "BotCriptoFyError",
    "BotStatistics",
    "Codec",
    "ConfigError",
    "ConnectionLostError",
    "DecodeError",
    "ExchangePool",
    "ExecutionError",
    "FeedConfig",
    "FeedError",
    "FeedState",
    "HandshakeRefusedError",
    "Journal",
    "JournalConfig",
    "JournalError",
    "Lagged",
    "Mailbox",
    "PoolTuning",
    "ProtocolError",
    "RestFallbackError",
    "RestartIntensityError",
    "RiskRejectedError",
    "Signal",
    "StaleFeedError",
    "Strategy",
    "StrategyContext",
    "Stream",
    "Ticker",
    "Trade",
    "codec_for",
]
