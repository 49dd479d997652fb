"""The journal: the bots' durable memory, one writer per process, in SQLite or PostgreSQL."""

from actors.journal.actor import Journal, JournalConfig, JournalStatistics
from actors.journal.base import FencedWriteError, StoreBase
from actors.journal.records import (
    BotRecord,
    FillRecord,
    OrderIntent,
    OrderRecord,
)
from actors.journal.store import JournalStore, WriterLock

__all__ = [
    "BotRecord",
    "FencedWriteError",
    "FillRecord",
    "Journal",
    "JournalConfig",
    "JournalStatistics",
    "JournalStore",
    "OrderIntent",
    "OrderRecord",
    "StoreBase",
    "WriterLock",
]
