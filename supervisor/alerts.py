"""Operator alerts: logged always, posted to webhooks, never a burden on the caller.

Decisions:

* ``emit()`` is sync and never blocks: breaker and feed code call it from their hot paths and
  must not wait on a webhook. The inbox is bounded (``inbox_size``); when it is full the alert is
  dropped, counted and logged, and the caller goes on.
* Deduplication and rate limiting happen *in* ``emit()``, per ``(kind, key)``: an alert whose
  key was accepted less than ``min_interval_s`` ago (``trio.current_time()``) is suppressed and
  counted. Doing it at the door means a flapping feed can never fill the inbox and push out
  other alerts. ``emit`` runs in the caller's task but is sync, so it is atomic; only the
  window of *accepted* alerts counts, so a steady flood still gets one alert per interval
  instead of being muted for ever. A dropped alert does not open a window.
* Every accepted alert is logged through loguru at its severity, in the caller's context
  (so ``logger.contextualize(child=...)`` from the keeper shows up); suppressed ones at DEBUG.
* The actor delivers one alert at a time, to all sinks concurrently, so alerts arrive in order
  and a slow sink delays at most ``max_attempts`` request timeouts. Transport errors, 429 and
  5xx are retried ``max_attempts`` times in all with exponential backoff; other statuses are
  final. A sink that still fails is logged and counted in ``failed``; the alert is not requeued.
* Webhook URLs of Slack and Discord are bearer secrets: logs name a sink by index and host
  only, never the URL.
* On cancellation, the alert whose delivery was interrupted and those still queued
  (``daemon_stopped`` in particular) are delivered under a shielded scope bounded by
  ``shutdown_grace_s``. The interrupted one is sent again from the start, so a sink may see it
  twice at shutdown: at-least-once there beats losing the last alert.
* Counters (``statistics()``): ``sent`` and ``failed`` count webhook deliveries (one per sink),
  ``suppressed`` and ``dropped`` count alerts, ``accepted`` counts alerts queued.
* What becomes an alert is decided here too: ``supervision_alerts`` (an observer of the
  supervision tree) and ``forward_bot_events`` (a child of the tree reading the bots' events).
  A root that passes a failure up (it restarts nothing) is not a crash loop: the daemon reports
  why it stopped, and no ``crash_loop`` alert is sent for it. A ``crash_loop`` alert says which
  way it went in ``fields["outcome"]``: ``given_up`` (a contained child, a bot, was given up on
  and the daemon runs on: someone must look at that bot) or ``escalated`` (its supervisor gives
  up and, for infrastructure, the daemon stops).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs
import httpx
import orjson
import trio
from loguru import logger

from actors.bots import BotEvent, BotHalted, BotHaltLifted, ExitTriggered
from supervisor.config import AlertsConfig, SecretsConfig, WebhookConfig
from supervisor.config_loader import resolve_secret
from supervisor.otp.events import (
    BreakerTransitioned,
    ChildCrashed,
    ChildGaveUp,
    Escalated,
    Observer,
    SupervisionEvent,
)

ALERT_KINDS = (
    "breaker_opened",
    "breaker_half_open",
    "breaker_closed",
    "feed_stale",
    "bot_halted",
    "crash_loop",
    "stop_loss_hit",
    "venue_rate_limited",
    "daemon_started",
    "daemon_stopped",
)
SEVERITIES = ("info", "warning", "critical")
_LOG_LEVEL = {"info": "INFO", "warning": "WARNING", "critical": "CRITICAL"}
# Slack accepts ~40k characters; Discord rejects content over 2000.
_TEXT_LIMIT = {"slack": 3000, "discord": 2000}
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_WINDOW_PRUNE_AT = 1024

Severity = Literal["info", "warning", "critical"]


@attrs.frozen
class Alert:
    """One alert. ``key`` names what it is about (an exchange, a bot id, a child name).

    ``kind`` is checked against ``ALERT_KINDS`` so a typo fails where it is written, not
    silently in someone's Slack filter.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(ALERT_KINDS))
    key: str
    severity: Severity = attrs.field(validator=attrs.validators.in_(SEVERITIES))
    message: str
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    ts: float = attrs.field(factory=time.time)  # wall clock, for the payload only


@attrs.frozen
class AlertsStatistics:
    accepted: int
    sent: int
    suppressed: int
    failed: int
    dropped: int
    queued: int


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # booked money stays exact
    return repr(value)


def alert_text(alert: Alert) -> str:
    """The one-line human form used by chat sinks."""
    text = f"[{alert.severity.upper()}] {alert.kind} {alert.key}: {alert.message}"
    if alert.fields:
        details = ", ".join(f"{k}={v}" for k, v in alert.fields.items())
        text = f"{text} ({details})"
    return text


def render_payload(alert: Alert, fmt: Literal["json", "slack", "discord"]) -> bytes:
    """The webhook body for one sink format (pure, so the shapes are unit-tested)."""
    if fmt == "json":
        body: dict[str, Any] = {
            "kind": alert.kind,
            "key": alert.key,
            "severity": alert.severity,
            "message": alert.message,
            "fields": dict(alert.fields),
            "ts": alert.ts,
        }
    else:
        text = alert_text(alert)
        limit = _TEXT_LIMIT[fmt]
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        if fmt == "slack":
            body = {"text": text}
        else:
            # Alert text can carry exchange- or user-provided strings: never let it ping people.
            body = {"content": text, "allowed_mentions": {"parse": []}}
    return orjson.dumps(body, default=_json_default)


@attrs.define(eq=False)
class Alerts:
    """The alerts actor: ``emit()`` from anywhere in the Trio thread, ``run()`` in a nursery."""

    config: AlertsConfig
    # Resolved, one per webhook; by default each webhook's literal ``url``.
    urls: tuple[str, ...] = attrs.field(
        default=attrs.Factory(
            lambda self: tuple(sink.url or "" for sink in self.config.webhooks), takes_self=True
        ),
        repr=False,
    )
    inbox_size: int = 64
    max_attempts: int = 3
    retry_initial_s: float = 0.5
    request_timeout_s: float = 5.0
    shutdown_grace_s: float = 2.0
    _send: trio.MemorySendChannel[Alert] = attrs.field(init=False)
    _inbox: trio.MemoryReceiveChannel[Alert] = attrs.field(init=False)
    _accepted_at: dict[tuple[str, str], float] = attrs.field(factory=dict, init=False)
    _accepted: int = attrs.field(default=0, init=False)
    _sent: int = attrs.field(default=0, init=False)
    _suppressed: int = attrs.field(default=0, init=False)
    _failed: int = attrs.field(default=0, init=False)
    _dropped: int = attrs.field(default=0, init=False)
    log: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if len(self.urls) != len(self.config.webhooks):
            raise ValueError("one resolved url per webhook is required")
        if self.inbox_size < 1 or self.max_attempts < 1:
            raise ValueError("inbox_size and max_attempts must be >= 1")
        # Created here, not in run(), so alerts emitted during startup wait for the actor.
        self._send, self._inbox = trio.open_memory_channel[Alert](self.inbox_size)
        self.log = logger.bind(actor="alerts")

    @classmethod
    def from_config(
        cls, config: AlertsConfig, secrets: SecretsConfig | None = None, **kwargs: Any
    ) -> Alerts:
        """Resolves ``url_env`` webhooks (``ConfigError`` naming a missing variable)."""
        secrets = secrets if secrets is not None else SecretsConfig()
        urls = tuple(
            sink.url if sink.url is not None else resolve_secret(sink.url_env or "", secrets)
            for sink in config.webhooks
        )
        return cls(config, urls, **kwargs)

    def emit(self, alert: Alert) -> bool:
        """Queue an alert without blocking. Returns False if it was suppressed or dropped."""
        now = trio.current_time()
        window_key = (alert.kind, alert.key)
        last = self._accepted_at.get(window_key)
        if last is not None and now - last < self.config.min_interval_s:
            self._suppressed += 1
            self.log.debug("alert suppressed", kind=alert.kind, key=alert.key)
            return False
        try:
            self._send.send_nowait(alert)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._dropped += 1
            self.log.warning(
                "alert dropped", kind=alert.kind, key=alert.key, inbox_size=self.inbox_size
            )
            return False
        self._accepted += 1
        self._remember(window_key, now)
        self.log.log(
            _LOG_LEVEL[alert.severity],
            "alert",
            kind=alert.kind,
            key=alert.key,
            severity=alert.severity,
            alert_message=alert.message,
            fields=dict(alert.fields),
        )
        return True

    def _remember(self, window_key: tuple[str, str], now: float) -> None:
        if len(self._accepted_at) >= _WINDOW_PRUNE_AT:
            horizon = now - self.config.min_interval_s
            self._accepted_at = {k: t for k, t in self._accepted_at.items() if t > horizon}
        self._accepted_at[window_key] = now

    def statistics(self) -> AlertsStatistics:
        return AlertsStatistics(
            accepted=self._accepted,
            sent=self._sent,
            suppressed=self._suppressed,
            failed=self._failed,
            dropped=self._dropped,
            queued=self._inbox.statistics().current_buffer_used,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with httpx.AsyncClient(timeout=self.request_timeout_s) as client:
            self.log.info("alerts started", sinks=len(self.config.webhooks))
            task_status.started()
            in_flight: Alert | None = None
            try:
                async for alert in self._inbox:
                    in_flight = alert
                    await self._deliver(client, alert)
                    in_flight = None
            finally:
                with trio.move_on_after(self.shutdown_grace_s, shield=True) as flush:
                    if in_flight is not None:
                        await self._deliver(client, in_flight)
                    await self._flush(client)
                if flush.cancelled_caught:
                    queued = self._inbox.statistics().current_buffer_used
                    self.log.warning("alerts flush timed out", queued=queued)

    async def _flush(self, client: httpx.AsyncClient) -> None:
        while True:
            try:
                alert = self._inbox.receive_nowait()
            except trio.WouldBlock:
                return
            await self._deliver(client, alert)

    async def _deliver(self, client: httpx.AsyncClient, alert: Alert) -> None:
        if not self.config.webhooks:
            return
        async with trio.open_nursery() as nursery:
            for index, sink in enumerate(self.config.webhooks):
                nursery.start_soon(self._post, client, index, sink, alert)

    async def _post(
        self, client: httpx.AsyncClient, index: int, sink: WebhookConfig, alert: Alert
    ) -> None:
        """One sink, bounded retries; never raises, so one bad sink cannot cancel the others."""
        body = render_payload(alert, sink.format)
        url = self.urls[index]
        log = self.log.bind(sink=index, host=httpx.URL(url).host, kind=alert.kind)
        delay_s = self.retry_initial_s
        outcome: dict[str, Any] = {}
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:  # the transport failed: retryable
                outcome = {"error": type(exc).__name__}
                retry = True
            else:
                if response.is_success:
                    self._sent += 1
                    log.debug("alert delivered", attempt=attempt, status=response.status_code)
                    return
                outcome = {"status": response.status_code}
                retry = response.status_code in _RETRYABLE_STATUS
            if not retry or attempt == self.max_attempts:
                break
            log.debug("alert delivery retry scheduled", attempt=attempt, delay_s=delay_s, **outcome)
            await trio.sleep(delay_s)
            delay_s *= 2
        self._failed += 1
        log.error("alert delivery failed", attempts=attempt, **outcome)


# --- what becomes an alert ----------------------------------------------------------------------


def supervision_alerts(alerts: Alerts, *, keys: Mapping[str, str] | None = None) -> Observer:
    """An observer turning the supervision events an operator must hear about into alerts.

    An alert's key is the child's name, or ``keys[child]`` (e.g. an exchange's name for the
    child that keeps its connections)."""
    names = dict(keys or {})

    def observe(event: SupervisionEvent) -> None:
        alert = _supervision_alert(event, names.get(event.child, event.child))
        if alert is not None:
            alerts.emit(alert)
        elif isinstance(event, ChildCrashed) and event.programming_error:
            # Once per distinct error, as the keeper logs its traceback; the keeper's own line
            # counts the repeats.
            if event.occurrences == 1:
                alerts.log.error(
                    "child crashed with a programming error", child=event.child, error=event.error
                )

    return observe


def _supervision_alert(event: SupervisionEvent, key: str) -> Alert | None:
    if isinstance(event, BreakerTransitioned):
        child, transition = event.child, event.transition
        if transition.to_state == "open":
            return Alert(
                "breaker_opened",
                key,
                "critical",
                "circuit breaker opened",
                {"child": child, "from": transition.from_state},
            )
        if transition.to_state == "half_open":
            return Alert(
                "breaker_half_open",
                key,
                "info",
                "circuit breaker half-open: one trial connection",
                {"child": child},
            )
        return Alert("breaker_closed", key, "info", "circuit breaker closed", {"child": child})
    if isinstance(event, Escalated) and event.max_restarts > 0:
        return Alert(
            "crash_loop",
            key,
            "critical",
            "restart intensity exceeded",
            {
                "child": event.child,
                "outcome": "escalated",
                "restarts": event.restarts,
                "max_restarts": event.max_restarts,
                "period_s": event.period_s,
            },
        )
    if isinstance(event, ChildGaveUp):
        return Alert(
            "crash_loop",
            key,
            "critical",
            "crash loop: given up on, not restarted (the rest runs on)",
            {
                "child": event.child,
                "outcome": "given_up",
                "restarts": event.restarts,
                "max_restarts": event.max_restarts,
                "period_s": event.period_s,
                "error": event.error,
            },
        )
    if isinstance(event, ChildCrashed) and "StaleFeedError" in event.error_types:
        return Alert(
            "feed_stale",
            key,
            "warning",
            "feed went stale: connection replaced",
            {"child": event.child, "error": event.error},
        )
    return None


async def forward_bot_events(
    events: trio.MemoryReceiveChannel[BotEvent],
    alerts: Alerts,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Turn bot events into alerts until cancelled or every sender is closed; what is already
    queued when it is cancelled is still alerted (``emit`` never waits)."""
    task_status.started()
    try:
        async for event in events:
            _alert_bot_event(event, alerts)
    finally:
        while True:
            try:
                event = events.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            _alert_bot_event(event, alerts)


def _alert_bot_event(event: BotEvent, alerts: Alerts) -> None:
    if isinstance(event, BotHalted):
        alerts.emit(
            Alert(
                "bot_halted",
                event.bot_id,
                "critical",
                "daily loss limit reached: bot halted",
                {
                    "bot": event.bot_id,
                    "loss_quote": str(event.loss_quote),
                    "limit_quote": str(event.limit_quote),
                    "resumes_day": event.resumes_day,
                },
            )
        )
    elif isinstance(event, ExitTriggered):
        if event.reason in ("stop_loss", "trailing_stop"):
            alerts.emit(
                Alert(
                    "stop_loss_hit",
                    f"{event.bot_id}:{event.position_id}",
                    "warning",
                    f"{event.reason} hit",
                    {
                        "bot": event.bot_id,
                        "reason": event.reason,
                        "trigger_price": str(event.trigger_price),
                        "bid": str(event.bid),
                    },
                )
            )
    elif isinstance(event, BotHaltLifted):
        alerts.log.info("bot halt lifted", bot=event.bot_id, day=event.day)
