"""The market-data plane: pooled exchange connections, subscription actors and their fan-out
buffers. This package runs nothing by itself: ``supervisor.feeds`` puts one ``ExchangePool``
per exchange into the supervision tree (its streams service and its connections)."""

from actors.market_data.config import FeedConfig
from actors.market_data.mailbox import Mailbox, MailboxItem, MailboxStatistics, Waker
from actors.market_data.pool import ExchangePool, ExchangeState, ExchangeStatistics, PoolTuning

__all__ = [
    "ExchangePool",
    "ExchangeState",
    "ExchangeStatistics",
    "FeedConfig",
    "Mailbox",
    "MailboxItem",
    "MailboxStatistics",
    "PoolTuning",
    "Waker",
]
