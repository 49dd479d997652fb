"""Bots: strategies trading on market data, with risk checks, an executor and a journal.

What the supervisor and users touch is re-exported here; the modules are internal.
"""

from actors.bots.bot import Bot, BotStatistics, Subscribe
from actors.bots.context import BalanceView, PositionView, StrategyContext
from actors.bots.core import BotCore, Now
from actors.bots.events import BotEvent, BotHalted, BotHaltLifted, ExitTriggered
from actors.bots.executor import (
    ExecutionReport,
    Executor,
    ExecutorFactory,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderResting,
    OrderUnknown,
    PaperExecutor,
    ReportSink,
    make_executor,
)
from actors.bots.risk import RejectReason
from actors.bots.strategy import (
    BUILTIN_STRATEGIES,
    Signal,
    Strategy,
    bot_problems,
    build_strategy,
    load_strategy,
    strategy_problems,
)

__all__ = [
    "BUILTIN_STRATEGIES",
    "BalanceView",
    "Bot",
    "BotCore",
    "BotEvent",
    "BotHaltLifted",
    "BotHalted",
    "BotStatistics",
    "ExecutionReport",
    "Executor",
    "ExecutorFactory",
    "ExitTriggered",
    "Now",
    "OrderCancelled",
    "OrderFilled",
    "OrderRejected",
    "OrderResting",
    "OrderUnknown",
    "PaperExecutor",
    "PositionView",
    "RejectReason",
    "ReportSink",
    "Signal",
    "Strategy",
    "StrategyContext",
    "Subscribe",
    "bot_problems",
    "build_strategy",
    "load_strategy",
    "make_executor",
    "strategy_problems",
]
