"""Events a bot tells observers (alerts, /health): facts, sent without ever blocking the bot.

The bot sends them with ``send_nowait`` to an optional bounded channel given at construction; if
the observer is slow the event is dropped and counted (``BotStatistics.events_dropped``); the log
line is written regardless, so nothing is only in the event.
"""

from __future__ import annotations

from decimal import Decimal

import attrs


@attrs.frozen(slots=True)
class BotHalted:
    """The daily loss limit was reached: no opening orders until ``resumes_day`` (UTC)."""

    bot_id: str
    day: str
    resumes_day: str
    loss_quote: Decimal
    limit_quote: Decimal
    ts: float


@attrs.frozen(slots=True)
class BotHaltLifted:
    """A new UTC day began; the bot may open positions again."""

    bot_id: str
    day: str
    ts: float


@attrs.frozen(slots=True)
class ExitTriggered:
    """A protective exit (stop_loss, take_profit or trailing_stop) fired for a position."""

    bot_id: str
    reason: str
    position_id: str
    trigger_price: Decimal
    bid: Decimal
    ts: float


BotEvent = BotHalted | BotHaltLifted | ExitTriggered
