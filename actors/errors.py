"""The project's one exception tree.

Foreign exceptions (trio-websocket, OSError, httpx, sqlite3) are mapped into it once, at the
boundary that sees them, with ``raise ... from exc``.

    BotCriptoFyError
    ├── FeedError                     a market-data feed cannot be trusted right now
    │   ├── ConnectionLostError       the socket closed or failed (records the close code)
    │   ├── HandshakeRefusedError     the server refused the WebSocket handshake (HTTP status)
    │   ├── StaleFeedError            no data for longer than stale_after_s
    │   ├── ProtocolError             the peer broke its protocol beyond one bad frame
    │   └── RestFallbackError         the REST fallback could not get a ticker
    ├── DecodeError (ValueError)      one frame is not valid for its protocol
    ├── ConfigError (ValueError)      the configuration is invalid (every problem listed)
    ├── FieldValueError (ValueError)  a validator refused one field's value (one ConfigError line)
    ├── FieldTypeError (TypeError)    one field's value has the wrong type (one ConfigError line)
    ├── RiskRejectedError             an order was refused by a risk rule (reason code)
    ├── BookError (ValueError)        a fill that would corrupt a bot's position book
    ├── ExecutionError                an executor could not place or confirm an order
    ├── JournalError                  the journal could not be read or written
    └── RestartIntensityError         a supervisor's children crashed too often: escalate
"""

from __future__ import annotations

from collections.abc import Iterator


class BotCriptoFyError(Exception):
    """Root of every error this project raises on purpose."""


class FeedError(BotCriptoFyError):
    """A market-data feed cannot be trusted right now; the keeper restarts it with backoff."""


class ConnectionLostError(FeedError):
    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason


class HandshakeRefusedError(FeedError):
    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class StaleFeedError(FeedError):
    pass


class ProtocolError(FeedError):
    pass


class RestFallbackError(FeedError):
    pass


class DecodeError(BotCriptoFyError, ValueError):
    """A frame that is not valid for its protocol. The connection counts it and goes on."""


class ConfigError(BotCriptoFyError, ValueError):
    """Invalid configuration. ``problems`` holds one ``path: message`` line per problem."""

    def __init__(self, problems: list[str] | tuple[str, ...]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class FieldValueError(BotCriptoFyError, ValueError):
    """A validator's complaint about one field; the schema prefixes the field's path.

    The schema knows which attribute's validator raised, so ``field`` is only needed when a
    check reports on a *different* field than the one it validates (e.g. the protocol check
    that falls back to the exchange's ``name``).
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class FieldTypeError(BotCriptoFyError, TypeError):
    """A value of the wrong type for its field; the message is the whole problem text."""


class RiskRejectedError(BotCriptoFyError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BookError(BotCriptoFyError, ValueError):
    """A fill the position book cannot apply: malformed, or selling more than is held or from
    an unknown position."""


class ExecutionError(BotCriptoFyError):
    pass


class JournalError(BotCriptoFyError):
    pass


class HandlerError(BotCriptoFyError):
    """A market-data handler (``subscribe_handler``) raised: it was detached from its stream,
    and its exception is this one's ``__cause__``."""


class RestartIntensityError(BotCriptoFyError):
    """Raised by a keeper when its child exceeded max_restarts within period_s (OTP escalation)."""


ERROR_TEXT_LIMIT = 300


def error_leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for sub in error.exceptions:
            yield from error_leaves(sub)
    else:
        yield error


def describe_error(error: BaseException) -> str:
    """One line naming every leaf of a group, for ``last_error`` and logs (display only; the
    group itself is never unwrapped)."""
    text = "; ".join(
        f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__
        for leaf in error_leaves(error)
    )
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"
