"""The journal: one SQLite writer per journal file, the bots' durable memory."""

from actors.journal.actor import Journal, JournalConfig, JournalStatistics
from actors.journal.store import (
    BotRecord,
    FillRecord,
    JournalStore,
    OrderIntent,
    OrderRecord,
    WriterLock,
)

__all__ = [
    "BotRecord",
    "FillRecord",
    "Journal",
    "JournalConfig",
    "JournalStatistics",
    "JournalStore",
    "OrderIntent",
    "OrderRecord",
    "WriterLock",
]
