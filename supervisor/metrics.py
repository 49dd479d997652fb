"""Prometheus metrics read from plain-data snapshots at scrape time.

Why a custom collector instead of ``Counter.inc()`` calls in the hot path: the market-data plane
and the bots already keep their own counters and expose them through ``statistics()``. Reading
those frozen snapshots only when Prometheus scrapes costs nothing per message and keeps
prometheus_client (and its locks) out of the actors.

``SnapshotCollector`` is given zero-argument callables; each returns plain data. A snapshot may
be any object with the attributes listed below *or* a ``Mapping`` with the same keys, so the
coordinator can adapt the plane's statistics classes with ``attrs.asdict`` or a small view
without this module importing them. Fields marked *optional* may be missing or ``None``.

``exchanges() -> Mapping[str, ExchangeSnapshot]`` keyed by exchange name:
    messages_received: int          frames received (monotonic over the daemon's life)
    bytes_received: int             payload bytes received (monotonic)
    decode_errors: int              frames rejected by the codec (monotonic)
    reconnects: int                 reconnects so far (monotonic)
    stream_repairs: int             optional: resubscribes of streams that went quiet on a
                                    live connection (monotonic)
    breaker_state: str              "closed" | "open" | "half_open"
    breaker_transitions: int        optional: breaker transitions so far (monotonic)
    state: str                      the exchange pool's state: "idle" | "connecting" |
                                    "streaming" | "backoff" | "circuit_open" | "fallback" |
                                    "stopped" (any other value is exported as well)
    skipped: int                    tickers conflated away, summed over all subscribers, ever
    dropped: int                    trades dropped on overflow, summed over all subscribers, ever
    connection_uptime_s: float      optional: seconds since the current connection opened
    last_message_age_s: float       optional: seconds since the last data frame
    latency: LatencySnapshot        optional: exchange_ts -> received_ts latency histogram
    streams: Sequence[StreamSnapshot]  optional: live streams on this exchange

``LatencySnapshot``:
    bucket_bounds_s: Sequence[float]  ascending upper bounds, without +Inf
    bucket_counts: Sequence[int]      per-bucket (NOT cumulative) counts, one more than bounds:
                                      the last one counts values above the highest bound
    sum_s: float                      sum of all observed latencies

``StreamSnapshot``: kind: str, symbol: str, subscribers: int, stale: bool

``bots() -> Mapping[str, BotSnapshot]`` keyed by bot id; every bot family is labelled
``{bot, exchange, symbol, quote}``, so money can be summed per quote currency and joined with
the exchange's families:
    exchange, symbol, quote: str    where the bot trades, and the currency its money is in
    ticks, orders, fills: int       monotonic counts
    quarantined_ticks: int          tickers the price guard did not trust (monotonic)
    rejections: Mapping[str, int]   risk/executor rejections by reason code (monotonic)
    position: Decimal | float       base-currency position
    realized_pnl, unrealized_pnl: Decimal | float   in the quote currency
    quote_balance: Decimal | float  in the quote currency
    position_value, equity          optional: the base held valued at the bid, and the quote
                                    balance plus it; None (not exported) until a price is known
    decision_latency: LatencySnapshot  optional: ticker local receipt -> the bot's decision
                                    (per actor: it starts again when the bot restarts)
    state: str                      the bot's state ("running", "paused", "halted", ...)

``children() -> Mapping[str, ChildSnapshot]`` keyed by supervised child name:
    restarts: int, state: str

``accounts() -> Mapping[str, Mapping[str, Any]]`` keyed by live account name, as
``BinanceAccount.statistics()`` returns: the monotonic counts in ``ACCOUNT_COUNTERS`` and the
gauges in ``ACCOUNT_GAUGES`` (booleans as 0/1).

``cluster() -> Mapping[str, ClusterSnapshot]`` keyed by exchange, only on a ``[cluster]`` node
(``supervisor.cluster.member.ClusterExchangeStatistics``): node, role, leader (node name or
None), epoch, redis_up, redis_rtt_s (optional), entries_written, entries_read,
stale_epoch_dropped, takeovers, and the leader-receipt -> mailbox lag histogram as
lag_bucket_bounds_s, lag_bucket_counts, lag_sum_s.

``recording() -> RecorderSnapshot``, only with ``[record]`` (``Recorder.statistics()``):
monotonic rows_received, rows_written, frames_received, frames_written, parts_written,
dropped_rows, flushes; gauges buffered_rows, open_segments, last_flush_ts (None before the
first flush).

``uptime_s() -> float``; ``alerts() -> AlertsSnapshot`` (attributes sent, suppressed, failed,
dropped, as ``Alerts.statistics()`` returns); ``runtime() -> RuntimeSnapshot`` (attributes
tasks_living and tasks_runnable, as ``trio.lowlevel.current_statistics()`` returns: a task count
that only grows is a leak, runnable tasks that stay high a loop that cannot keep up).

The process itself (CPU, memory, open files, start time, the Python version and its garbage
collector) comes from prometheus_client's own collectors: ``new_registry(..., process=True)``.

Counters must be monotonic (that is what ``_total`` promises Prometheus): the plane keeps the
counts of subscribers that left in its ``skipped``/``dropped`` totals.

A source whose callable raises, or whose snapshot lacks a required field, is skipped for that
scrape and counted in ``botcriptofy_metrics_snapshot_errors_total{source}``; one broken source
must not blank out the whole ``/metrics`` page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import attrs
from loguru import logger
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

PREFIX = "botcriptofy_"
RECORDING_COUNTERS = {
    "rows_received": "Tickers and trades the recorder's handlers were given.",
    "rows_written": "Recorded events handed to the OS.",
    "frames_received": "Raw frames handed to the recorder (raw_frames).",
    "frames_written": "Recorded raw frames handed to the OS.",
    "parts_written": "Parquet files the recorder completed.",
    "dropped_rows": "Rows dropped because the recording buffer was full.",
    "flushes": "Recording flushes.",
}
RECORDING_GAUGES = {
    "buffered_rows": "Rows waiting for the next recording flush.",
    "open_segments": "Recording segments not yet compacted to Parquet.",
    "last_flush_ts": "Wall-clock time of the last recording flush.",
}
BREAKER_STATES = ("closed", "open", "half_open")
EXCHANGE_STATES = (
    "idle",
    "connecting",
    "streaming",
    "backoff",
    "circuit_open",
    "fallback",
    "stopped",
)
ALERT_OUTCOMES = ("sent", "suppressed", "failed", "dropped")
CLUSTER_ROLES = ("connecting", "follower", "waiting", "leader", "redis_down")

log = logger.bind(actor="metrics")


class LatencySnapshot(Protocol):
    bucket_bounds_s: Sequence[float]
    bucket_counts: Sequence[int]
    sum_s: float


class StreamSnapshot(Protocol):
    kind: str
    symbol: str
    subscribers: int
    stale: bool


class ExchangeSnapshot(Protocol):
    messages_received: int
    bytes_received: int
    decode_errors: int
    reconnects: int
    breaker_state: str
    breaker_transitions: int | None
    state: str
    skipped: int
    dropped: int
    connection_uptime_s: float | None
    last_message_age_s: float | None
    latency: LatencySnapshot | None
    streams: Sequence[StreamSnapshot]


class BotSnapshot(Protocol):
    exchange: str
    symbol: str
    quote: str
    ticks: int
    quarantined_ticks: int
    orders: int
    fills: int
    rejections: Mapping[str, int]
    position: Any
    realized_pnl: Any
    unrealized_pnl: Any
    quote_balance: Any
    position_value: Any
    equity: Any
    decision_latency: LatencySnapshot | None
    state: str


class ChildSnapshot(Protocol):
    restarts: int
    state: str


class AlertsSnapshot(Protocol):
    sent: int
    suppressed: int
    failed: int
    dropped: int


class RuntimeSnapshot(Protocol):
    tasks_living: int
    tasks_runnable: int


_MISSING = object()


def _field(snapshot: Any, name: str, default: Any = _MISSING) -> Any:
    """Read one field from an attrs-style object or a mapping (see the module docstring)."""
    if isinstance(snapshot, Mapping):
        value = snapshot.get(name, default)
    else:
        value = getattr(snapshot, name, default)
    if value is _MISSING:
        raise KeyError(name)
    return value


def _empty() -> Mapping[str, Any]:
    return {}


def histogram_buckets(bounds_s: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Turn per-bucket counts into the cumulative ``(le, count)`` pairs Prometheus wants.

    Raises ``ValueError`` on a malformed snapshot rather than exporting a wrong histogram.
    """
    if len(counts) != len(bounds_s) + 1:
        raise ValueError("bucket_counts must have one more entry than bucket_bounds_s")
    if any(b >= a for a, b in zip(bounds_s[1:], bounds_s, strict=False)):
        raise ValueError("bucket_bounds_s must be strictly ascending")
    pairs: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip(bounds_s, counts, strict=False):
        total += count
        pairs.append((repr(float(bound)), total))
    total += counts[-1]
    pairs.append(("+Inf", total))
    return pairs


def _add_states(
    family: GaugeMetricFamily, labels: list[str], known: Sequence[str], current: str
) -> None:
    """One sample per state, 1 for the current one: the Prometheus enum idiom.

    Known states are always exported (as 0) so ``== 1`` queries and alert rules have a series to
    look at; an unexpected current state is exported too rather than hidden.
    """
    for state in known:
        family.add_metric([*labels, state], 1.0 if state == current else 0.0)
    if current not in known:
        family.add_metric([*labels, str(current)], 1.0)


@attrs.define(eq=False)
class SnapshotCollector:
    """A prometheus_client collector over snapshot callables (see the module docstring).

    Each callable defaults to "nothing to report", so the coordinator wires only what exists.
    ``collect()`` runs in whatever thread scrapes; our ``/metrics`` handler calls it on the Trio
    thread, so the callables may read ``statistics()`` of actors safely.
    """

    exchanges: Callable[[], Mapping[str, Any]] = _empty
    bots: Callable[[], Mapping[str, Any]] = _empty
    children: Callable[[], Mapping[str, Any]] = _empty
    uptime_s: Callable[[], float] | None = None
    alerts: Callable[[], Any] | None = None
    accounts: Callable[[], Mapping[str, Any]] = _empty
    runtime: Callable[[], Any] | None = None
    cluster: Callable[[], Mapping[str, Any]] = _empty
    recording: Callable[[], Any] | None = None
    _errors: dict[str, int] = attrs.field(factory=dict, init=False)

    def collect(self) -> Iterator[Metric]:
        sections: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("exchanges", self._exchange_families),
            ("bots", self._bot_families),
            ("children", self._child_families),
            ("uptime", self._uptime_families),
            ("alerts", self._alert_families),
            ("accounts", self._account_families),
            ("runtime", self._runtime_families),
            ("cluster", self._cluster_families),
            ("recording", self._recording_families),
        ]
        for source, build in sections:
            try:
                families = build()
            except Exception as exc:  # a broken source must not break the scrape
                self._errors[source] = self._errors.get(source, 0) + 1
                log.warning("metrics snapshot failed", source=source, error=repr(exc)[:200])
                continue
            yield from families
        errors = CounterMetricFamily(
            PREFIX + "metrics_snapshot_errors",
            "Scrapes where a snapshot source failed and was skipped.",
            labels=["source"],
        )
        for source, _ in sections:
            errors.add_metric([source], self._errors.get(source, 0))
        yield errors

    def _exchange_families(self) -> list[Metric]:
        snapshots = self.exchanges()
        lx = ["exchange"]

        def counter(name: str, doc: str, labels: list[str] = lx) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, doc, labels=labels)

        def gauge(name: str, doc: str, labels: list[str] = lx) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=labels)

        messages = counter("exchange_messages_received", "Frames received from the exchange.")
        bytes_ = counter("exchange_bytes_received", "Payload bytes received from the exchange.")
        decode = counter("exchange_decode_errors", "Frames the codec rejected.")
        reconnects = counter("exchange_reconnects", "Reconnects to the exchange.")
        repairs = counter(
            "exchange_stream_repairs", "Resubscribes of streams that went quiet on a live socket."
        )
        skipped = counter(
            "exchange_subscriber_skipped", "Tickers conflated away in subscriber mailboxes."
        )
        dropped = counter(
            "exchange_subscriber_dropped", "Trades dropped on subscriber buffer overflow."
        )
        uptime = gauge(
            "exchange_connection_uptime_seconds", "Seconds since the current connection opened."
        )
        age = gauge("exchange_last_message_age_seconds", "Seconds since the last data frame.")
        breaker = gauge(
            "exchange_breaker_state", "Circuit breaker state (1 = current).", [*lx, "state"]
        )
        transitions = counter("exchange_breaker_transitions", "Circuit breaker state changes.")
        state = gauge("exchange_state", "Feed state (1 = current).", [*lx, "state"])
        latency = HistogramMetricFamily(
            PREFIX + "exchange_message_latency_seconds",
            "Exchange timestamp to receive time latency.",
            labels=lx,
        )
        sl = [*lx, "kind", "symbol"]
        subscribers = gauge("stream_subscribers", "Subscribers of a live stream.", sl)
        stale = gauge("stream_stale", "1 when a stream has had no data for stale_after_s.", sl)

        for name, snap in snapshots.items():
            labels = [name]
            messages.add_metric(labels, _field(snap, "messages_received"))
            bytes_.add_metric(labels, _field(snap, "bytes_received"))
            decode.add_metric(labels, _field(snap, "decode_errors"))
            reconnects.add_metric(labels, _field(snap, "reconnects"))
            stream_repairs = _field(snap, "stream_repairs", None)
            if stream_repairs is not None:
                repairs.add_metric(labels, stream_repairs)
            skipped.add_metric(labels, _field(snap, "skipped"))
            dropped.add_metric(labels, _field(snap, "dropped"))
            up = _field(snap, "connection_uptime_s", None)
            uptime.add_metric(labels, 0.0 if up is None else float(up))
            last_age = _field(snap, "last_message_age_s", None)
            if last_age is not None:
                age.add_metric(labels, float(last_age))
            _add_states(breaker, labels, BREAKER_STATES, _field(snap, "breaker_state"))
            moves = _field(snap, "breaker_transitions", None)
            if moves is not None:
                transitions.add_metric(labels, moves)
            _add_states(state, labels, EXCHANGE_STATES, _field(snap, "state"))
            lat = _field(snap, "latency", None)
            if lat is not None:
                buckets = histogram_buckets(
                    _field(lat, "bucket_bounds_s"), _field(lat, "bucket_counts")
                )
                latency.add_metric(labels, buckets, float(_field(lat, "sum_s")))
            for stream in _field(snap, "streams", None) or ():
                stream_labels = [name, _field(stream, "kind"), _field(stream, "symbol")]
                subscribers.add_metric(stream_labels, _field(stream, "subscribers"))
                stale.add_metric(stream_labels, 1.0 if _field(stream, "stale") else 0.0)
        return [
            messages,
            bytes_,
            decode,
            reconnects,
            repairs,
            skipped,
            dropped,
            uptime,
            age,
            breaker,
            transitions,
            state,
            latency,
            subscribers,
            stale,
        ]

    def _recording_families(self) -> list[Metric]:
        if self.recording is None:
            return []
        snap = self.recording()
        families: list[Metric] = []
        for key, doc in RECORDING_COUNTERS.items():
            family = CounterMetricFamily(PREFIX + "recording_" + key, doc)
            family.add_metric([], _field(snap, key))
            families.append(family)
        for key, doc in RECORDING_GAUGES.items():
            value = _field(snap, key, None)
            if value is not None:
                families.append(GaugeMetricFamily(PREFIX + "recording_" + key, doc, value=value))
        return families

    def _cluster_families(self) -> list[Metric]:
        snapshots = self.cluster()
        if not snapshots:
            return []
        lx = ["exchange", "node"]
        leader = GaugeMetricFamily(
            PREFIX + "cluster_leader",
            "1 for the node this node sees leading the exchange's feed.",
            labels=[*lx, "leader"],
        )
        role = GaugeMetricFamily(
            PREFIX + "cluster_role", "This node's role for the exchange (1 = current).",
            labels=[*lx, "role"],
        )  # fmt: skip
        epoch = GaugeMetricFamily(
            PREFIX + "cluster_lease_epoch", "Lease epoch led, or the highest read.", labels=lx
        )
        redis_up = GaugeMetricFamily(
            PREFIX + "cluster_redis_up", "1 while Redis answers.", labels=lx
        )
        rtt = GaugeMetricFamily(
            PREFIX + "cluster_redis_rtt_seconds", "Last Redis round trip.", labels=lx
        )
        written = CounterMetricFamily(
            PREFIX + "cluster_entries_written", "Feed entries written as leader.", labels=lx
        )
        read = CounterMetricFamily(
            PREFIX + "cluster_entries_read", "Feed entries read from Redis.", labels=lx
        )
        dropped = CounterMetricFamily(
            PREFIX + "cluster_stale_epoch_dropped",
            "Feed entries dropped: written under an older lease epoch.",
            labels=lx,
        )
        takeovers = CounterMetricFamily(
            PREFIX + "cluster_takeovers", "Times this node became the leader.", labels=lx
        )
        lag = HistogramMetricFamily(
            PREFIX + "cluster_feed_lag_seconds",
            "Leader's receipt of an event to its publish into this node's mailboxes.",
            labels=lx,
        )
        for name, snap in snapshots.items():
            labels = [name, _field(snap, "node")]
            current = _field(snap, "leader")
            if current is not None:
                leader.add_metric([*labels, current], 1.0)
            _add_states(role, labels, CLUSTER_ROLES, _field(snap, "role"))
            epoch.add_metric(labels, _field(snap, "epoch"))
            redis_up.add_metric(labels, 1.0 if _field(snap, "redis_up") else 0.0)
            seconds = _field(snap, "redis_rtt_s", None)
            if seconds is not None:
                rtt.add_metric(labels, float(seconds))
            written.add_metric(labels, _field(snap, "entries_written"))
            read.add_metric(labels, _field(snap, "entries_read"))
            dropped.add_metric(labels, _field(snap, "stale_epoch_dropped"))
            takeovers.add_metric(labels, _field(snap, "takeovers"))
            buckets = histogram_buckets(
                _field(snap, "lag_bucket_bounds_s"), _field(snap, "lag_bucket_counts")
            )
            lag.add_metric(labels, buckets, float(_field(snap, "lag_sum_s")))
        return [leader, role, epoch, redis_up, rtt, written, read, dropped, takeovers, lag]

    def _bot_families(self) -> list[Metric]:
        snapshots = self.bots()
        lb = ["bot", "exchange", "symbol", "quote"]

        def counter(name: str, doc: str, labels: list[str] = lb) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, doc, labels=labels)

        def gauge(name: str, doc: str, labels: list[str] = lb) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, labels=labels)

        ticks = counter("bot_ticks", "Tickers seen by the bot.")
        quarantined = counter(
            "bot_quarantined_ticks",
            "Tickers the price guard did not trust (jumps, and each run's warm-up).",
        )
        orders = counter("bot_orders", "Orders sent.")
        fills = counter("bot_fills", "Fills booked.")
        rejections = counter("bot_rejections", "Orders refused, by reason code.", [*lb, "reason"])
        position = gauge("bot_position", "Position in the base currency.")
        realized = gauge("bot_realized_pnl", "Realized PnL in the quote currency.")
        unrealized = gauge("bot_unrealized_pnl", "Unrealized PnL in the quote currency.")
        balance = gauge("bot_quote_balance", "Quote currency held by the bot.")
        value = gauge(
            "bot_position_value", "The base currency held, valued at the bid, in the quote."
        )
        equity = gauge("bot_equity", "Quote balance plus the position's value at the bid.")
        latency = HistogramMetricFamily(
            PREFIX + "bot_decision_latency_seconds",
            "Ticker local receipt to the bot's decision on it.",
            labels=lb,
        )
        state = gauge("bot_state", "Bot state (1 = current).", [*lb, "state"])
        for bot_id, snap in snapshots.items():
            labels = [
                bot_id,
                _field(snap, "exchange"),
                _field(snap, "symbol"),
                _field(snap, "quote"),
            ]
            ticks.add_metric(labels, _field(snap, "ticks"))
            quarantined.add_metric(labels, _field(snap, "quarantined_ticks"))
            orders.add_metric(labels, _field(snap, "orders"))
            fills.add_metric(labels, _field(snap, "fills"))
            for reason, count in (_field(snap, "rejections", None) or {}).items():
                rejections.add_metric([*labels, reason], count)
            # Decimal money becomes float only here, at the export boundary.
            position.add_metric(labels, float(_field(snap, "position")))
            realized.add_metric(labels, float(_field(snap, "realized_pnl")))
            unrealized.add_metric(labels, float(_field(snap, "unrealized_pnl")))
            balance.add_metric(labels, float(_field(snap, "quote_balance")))
            for family, key in ((value, "position_value"), (equity, "equity")):
                amount = _field(snap, key, None)
                if amount is not None:
                    family.add_metric(labels, float(amount))
            lat = _field(snap, "decision_latency", None)
            if lat is not None:
                buckets = histogram_buckets(
                    _field(lat, "bucket_bounds_s"), _field(lat, "bucket_counts")
                )
                latency.add_metric(labels, buckets, float(_field(lat, "sum_s")))
            _add_states(state, labels, (), _field(snap, "state"))
        return [
            ticks,
            quarantined,
            orders,
            fills,
            rejections,
            position,
            realized,
            unrealized,
            balance,
            value,
            equity,
            latency,
            state,
        ]

    def _child_families(self) -> list[Metric]:
        snapshots = self.children()
        restarts = CounterMetricFamily(
            PREFIX + "child_restarts", "Restarts of a supervised child.", labels=["child"]
        )
        state = GaugeMetricFamily(
            PREFIX + "child_state",
            "Supervised child state (1 = current).",
            labels=["child", "state"],
        )
        for name, snap in snapshots.items():
            restarts.add_metric([name], _field(snap, "restarts"))
            _add_states(state, [name], (), _field(snap, "state"))
        return [restarts, state]

    def _uptime_families(self) -> list[Metric]:
        if self.uptime_s is None:
            return []
        return [
            GaugeMetricFamily(
                PREFIX + "uptime_seconds",
                "Seconds since the daemon started.",
                value=float(self.uptime_s()),
            )
        ]

    def _alert_families(self) -> list[Metric]:
        if self.alerts is None:
            return []
        stats = self.alerts()
        family = CounterMetricFamily(PREFIX + "alerts", "Alerts by outcome.", labels=["outcome"])
        for outcome in ALERT_OUTCOMES:
            family.add_metric([outcome], _field(stats, outcome))
        return [family]

    def _runtime_families(self) -> list[Metric]:
        if self.runtime is None:
            return []
        stats = self.runtime()
        return [
            GaugeMetricFamily(
                PREFIX + "trio_tasks",
                "Trio tasks alive in the daemon.",
                value=_field(stats, "tasks_living"),
            ),
            GaugeMetricFamily(
                PREFIX + "trio_tasks_runnable",
                "Trio tasks ready to run, waiting for the loop.",
                value=_field(stats, "tasks_runnable"),
            ),
        ]

    def _account_families(self) -> list[Metric]:
        snapshots = self.accounts()
        families: list[Metric] = []
        for key, doc in ACCOUNT_COUNTERS.items():
            family = CounterMetricFamily(PREFIX + "account_" + key, doc, labels=["account"])
            for name, snap in snapshots.items():
                family.add_metric([name], _field(snap, key))
            families.append(family)
        for key, doc in ACCOUNT_GAUGES.items():
            gauge = GaugeMetricFamily(PREFIX + "account_" + key, doc, labels=["account"])
            for name, snap in snapshots.items():
                gauge.add_metric([name], float(_field(snap, key)))
            families.append(gauge)
        return families


ACCOUNT_COUNTERS = {
    "orders_sent": "Orders sent to the venue (each once).",
    "orders_refused": "Orders the venue refused with nothing placed.",
    "orders_in_doubt": "Orders whose answer was lost (resolved, never re-sent).",
    "in_doubt_found": "Orders in doubt that the venue had.",
    "in_doubt_never_placed": "Orders in doubt proven never placed.",
    "fills": "Venue fills booked.",
    "stream_reconnects": "User data stream ends (each followed by a resubscription).",
    "stream_misses": "Fills the user data stream missed, found by the order poll.",
    "lookups": "Order lookups by client id.",
}
ACCOUNT_GAUGES = {
    "working_orders": "Orders sent and not yet final.",
    "orders_in_doubt_now": "Orders whose outcome is being resolved now.",
    "halted": "1 while the operator's halt stands.",
    "orders_blocked": "1 while the venue's rate limits block new orders.",
}


def new_registry(collector: SnapshotCollector, *, process: bool = False) -> CollectorRegistry:
    """A dedicated registry, so /metrics never mixes in the process-global default one (which
    a library may fill, or a test register into). ``process``: prometheus_client's process,
    platform and garbage-collector collectors too (``process_*``, ``python_*``), registered here
    rather than taken from the default registry for the same reason; only the daemon asks for
    them, since a daemon is one process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry
