"""The snapshot collector, read back through the real text exposition and parser."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.metrics import SnapshotCollector, histogram_buckets, new_registry


@attrs.frozen
class Latency:
    bucket_bounds_s: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    sum_s: float


@attrs.frozen
class StreamStats:
    kind: str
    symbol: str
    subscribers: int
    stale: bool


@attrs.frozen
class ExchangeStats:
    """Shaped like the ExchangeSnapshot protocol, as the coordinator's adapter will be."""

    messages_received: int = 120
    bytes_received: int = 64_000
    decode_errors: int = 2
    reconnects: int = 3
    breaker_state: str = "half_open"
    breaker_transitions: int | None = 7
    state: str = "backoff"
    skipped: int = 40
    dropped: int = 5
    connection_uptime_s: float | None = 12.5
    last_message_age_s: float | None = 0.75
    latency: Latency | None = Latency((0.01, 0.1, 1.0), (5, 3, 1, 2), 4.5)
    streams: tuple[StreamStats, ...] = (
        StreamStats("ticker", "BTC/USDT", 2, False),
        StreamStats("trade", "ETH/USDT", 1, True),
    )


BOT = {
    "exchange": "kraken",
    "symbol": "BTC/USD",
    "quote": "USD",
    "ticks": 500,
    "quarantined_ticks": 6,
    "orders": 4,
    "fills": 3,
    "rejections": {"max_position": 2, "stale_price": 1},
    "position": Decimal("0.015"),
    "realized_pnl": Decimal("12.34"),
    "unrealized_pnl": Decimal("-1.5"),
    "quote_balance": Decimal("9000.25"),
    "position_value": Decimal("975.5"),
    "equity": Decimal("9975.75"),
    "decision_latency": Latency((0.001, 0.01), (7, 2, 1), 2.5),
    "state": "halted",
}


def scrape(collector: SnapshotCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(new_registry(collector)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families(collector: SnapshotCollector) -> dict[str, str]:
    text = generate_latest(new_registry(collector)).decode()
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def ex(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"exchange": "binance", **labels}.items()))


def test_exchange_metrics() -> None:
    samples = scrape(SnapshotCollector(exchanges=lambda: {"binance": ExchangeStats()}))
    assert samples[("botcriptofy_exchange_messages_received_total", ex())] == 120
    assert samples[("botcriptofy_exchange_bytes_received_total", ex())] == 64_000
    assert samples[("botcriptofy_exchange_decode_errors_total", ex())] == 2
    assert samples[("botcriptofy_exchange_reconnects_total", ex())] == 3
    assert samples[("botcriptofy_exchange_subscriber_skipped_total", ex())] == 40
    assert samples[("botcriptofy_exchange_subscriber_dropped_total", ex())] == 5
    assert samples[("botcriptofy_exchange_connection_uptime_seconds", ex())] == 12.5
    assert samples[("botcriptofy_exchange_last_message_age_seconds", ex())] == 0.75
    breaker = {
        state: samples[("botcriptofy_exchange_breaker_state", ex(state=state))]
        for state in ("closed", "open", "half_open")
    }
    assert breaker == {"closed": 0, "open": 0, "half_open": 1}
    assert samples[("botcriptofy_exchange_breaker_transitions_total", ex())] == 7
    states = {
        state: samples[("botcriptofy_exchange_state", ex(state=state))]
        for state in (
            "idle",
            "connecting",
            "streaming",
            "backoff",
            "circuit_open",
            "fallback",
            "stopped",
        )
    }
    assert states == {
        "idle": 0,
        "connecting": 0,
        "streaming": 0,
        "backoff": 1,
        "circuit_open": 0,
        "fallback": 0,
        "stopped": 0,
    }
    stream = ex(kind="ticker", symbol="BTC/USDT")
    assert samples[("botcriptofy_stream_subscribers", stream)] == 2
    assert samples[("botcriptofy_stream_stale", stream)] == 0
    assert samples[("botcriptofy_stream_stale", ex(kind="trade", symbol="ETH/USDT"))] == 1


def test_latency_histogram_is_cumulative() -> None:
    samples = scrape(SnapshotCollector(exchanges=lambda: {"binance": ExchangeStats()}))
    name = "botcriptofy_exchange_message_latency_seconds"
    buckets = {le: samples[(name + "_bucket", ex(le=le))] for le in ("0.01", "0.1", "1.0", "+Inf")}
    assert buckets == {"0.01": 5, "0.1": 8, "1.0": 9, "+Inf": 11}
    assert samples[(name + "_count", ex())] == 11
    assert samples[(name + "_sum", ex())] == 4.5
    assert (
        families(SnapshotCollector(exchanges=lambda: {"binance": ExchangeStats()}))[name]
        == "histogram"
    )


def test_histogram_buckets_rejects_malformed_snapshots() -> None:
    assert histogram_buckets([0.5], [1, 2]) == [("0.5", 1), ("+Inf", 3)]
    with pytest.raises(ValueError, match="one more entry"):
        histogram_buckets([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="ascending"):
        histogram_buckets([0.2, 0.1], [1, 2, 3])


def test_optional_exchange_fields_may_be_missing() -> None:
    minimal = {
        "messages_received": 0,
        "bytes_received": 0,
        "decode_errors": 0,
        "reconnects": 0,
        "breaker_state": "open",
        "state": "circuit_open",
        "skipped": 0,
        "dropped": 0,
    }
    samples = scrape(SnapshotCollector(exchanges=lambda: {"kraken": minimal}))
    labels = (("exchange", "kraken"),)
    assert samples[("botcriptofy_exchange_connection_uptime_seconds", labels)] == 0
    assert ("botcriptofy_exchange_last_message_age_seconds", labels) not in samples
    assert ("botcriptofy_exchange_breaker_transitions_total", labels) not in samples
    assert not any(name.startswith("botcriptofy_stream_") for name, _ in samples)
    assert (
        samples[("botcriptofy_exchange_breaker_state", (("exchange", "kraken"), ("state", "open")))]
        == 1
    )


def bot(**labels: str) -> tuple[tuple[str, str], ...]:
    base = {"bot": "b1", "exchange": "kraken", "symbol": "BTC/USD", "quote": "USD"}
    return tuple(sorted({**base, **labels}.items()))


def test_bot_metrics() -> None:
    samples = scrape(SnapshotCollector(bots=lambda: {"b1": BOT}))
    b1 = bot()
    assert samples[("botcriptofy_bot_ticks_total", b1)] == 500
    assert samples[("botcriptofy_bot_quarantined_ticks_total", b1)] == 6
    assert samples[("botcriptofy_bot_orders_total", b1)] == 4
    assert samples[("botcriptofy_bot_fills_total", b1)] == 3
    assert samples[("botcriptofy_bot_rejections_total", bot(reason="max_position"))] == 2
    assert samples[("botcriptofy_bot_rejections_total", bot(reason="stale_price"))] == 1
    assert samples[("botcriptofy_bot_position", b1)] == pytest.approx(0.015)
    assert samples[("botcriptofy_bot_realized_pnl", b1)] == pytest.approx(12.34)
    assert samples[("botcriptofy_bot_unrealized_pnl", b1)] == -1.5
    assert samples[("botcriptofy_bot_quote_balance", b1)] == 9000.25
    assert samples[("botcriptofy_bot_position_value", b1)] == 975.5
    assert samples[("botcriptofy_bot_equity", b1)] == 9975.75
    assert samples[("botcriptofy_bot_state", bot(state="halted"))] == 1


def test_bot_money_is_labelled_with_its_quote_currency() -> None:
    usdt = {**BOT, "exchange": "binance", "symbol": "BTC/USDT", "quote": "USDT"}
    samples = scrape(SnapshotCollector(bots=lambda: {"b1": BOT, "b2": usdt}))
    equity = {
        dict(labels)["quote"]: value
        for (name, labels), value in samples.items()
        if name == "botcriptofy_bot_equity"
    }
    assert equity == {"USD": 9975.75, "USDT": 9975.75}
    assert (
        "botcriptofy_bot_equity",
        bot(bot="b2", exchange="binance", symbol="BTC/USDT", quote="USDT"),
    ) in samples


def test_bot_decision_latency_is_a_cumulative_histogram() -> None:
    samples = scrape(SnapshotCollector(bots=lambda: {"b1": BOT}))
    name = "botcriptofy_bot_decision_latency_seconds"
    buckets = {le: samples[(name + "_bucket", bot(le=le))] for le in ("0.001", "0.01", "+Inf")}
    assert buckets == {"0.001": 7, "0.01": 9, "+Inf": 10}
    assert samples[(name + "_count", bot())] == 10
    assert samples[(name + "_sum", bot())] == 2.5
    assert families(SnapshotCollector(bots=lambda: {"b1": BOT}))[name] == "histogram"


def test_a_bot_without_a_price_has_no_position_value_or_equity() -> None:
    unpriced = {**BOT, "position_value": None, "equity": None}
    del unpriced["decision_latency"]  # optional too
    samples = scrape(SnapshotCollector(bots=lambda: {"b1": unpriced}))
    assert samples[("botcriptofy_bot_quote_balance", bot())] == 9000.25
    names = {name for name, _ in samples}
    assert not names & {
        "botcriptofy_bot_position_value",
        "botcriptofy_bot_equity",
        "botcriptofy_bot_decision_latency_seconds_count",
    }


def test_runtime_metrics_read_trio_statistics() -> None:
    @attrs.frozen
    class RunStats:
        tasks_living: int = 42
        tasks_runnable: int = 3

    samples = scrape(SnapshotCollector(runtime=RunStats))
    assert samples[("botcriptofy_trio_tasks", ())] == 42
    assert samples[("botcriptofy_trio_tasks_runnable", ())] == 3


def test_the_process_collectors_are_registered_only_when_asked() -> None:
    def names(registry: Any) -> set[str]:
        text = generate_latest(registry).decode()
        return {family.name for family in text_string_to_metric_families(text)}

    with_process = names(new_registry(SnapshotCollector(), process=True))
    assert {
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "python_info",
        "python_gc_collections",
    } <= with_process
    assert not any(
        name.startswith(("process_", "python_"))
        for name in names(new_registry(SnapshotCollector()))
    )


def test_children_uptime_and_alerts() -> None:
    @attrs.frozen
    class AlertStats:
        sent: int = 4
        suppressed: int = 9
        failed: int = 1
        dropped: int = 0

    samples = scrape(
        SnapshotCollector(
            children=lambda: {"exchange:binance": {"restarts": 6, "state": "backoff"}},
            uptime_s=lambda: 3600.0,
            alerts=AlertStats,
        )
    )
    assert samples[("botcriptofy_child_restarts_total", (("child", "exchange:binance"),))] == 6
    assert (
        samples[("botcriptofy_child_state", (("child", "exchange:binance"), ("state", "backoff")))]
        == 1
    )
    assert samples[("botcriptofy_uptime_seconds", ())] == 3600
    outcomes = {
        outcome: samples[("botcriptofy_alerts_total", (("outcome", outcome),))]
        for outcome in ("sent", "suppressed", "failed", "dropped")
    }
    assert outcomes == {"sent": 4, "suppressed": 9, "failed": 1, "dropped": 0}


def test_family_types() -> None:
    types = families(
        SnapshotCollector(
            exchanges=lambda: {"binance": ExchangeStats()},
            bots=lambda: {"b1": BOT},
            uptime_s=lambda: 1.0,
        )
    )
    assert types["botcriptofy_exchange_messages_received"] == "counter"
    assert types["botcriptofy_bot_rejections"] == "counter"
    assert types["botcriptofy_exchange_breaker_state"] == "gauge"
    assert types["botcriptofy_bot_position"] == "gauge"
    assert types["botcriptofy_uptime_seconds"] == "gauge"
    assert all(name.startswith("botcriptofy_") for name in types)


def test_broken_source_is_skipped_and_counted() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("plane gone")

    collector = SnapshotCollector(
        exchanges=lambda: {"binance": {"messages_received": 1}},  # required fields missing
        bots=broken,
        uptime_s=lambda: 5.0,
    )
    scrape(collector)
    samples = scrape(collector)
    assert samples[("botcriptofy_uptime_seconds", ())] == 5  # the rest still exported
    assert not any(
        name.startswith(("botcriptofy_exchange_", "botcriptofy_bot_")) for name, _ in samples
    )
    errors = {
        source: samples[("botcriptofy_metrics_snapshot_errors_total", (("source", source),))]
        for source in ("exchanges", "bots", "children", "uptime", "alerts")
    }
    assert errors == {"exchanges": 2, "bots": 2, "children": 0, "uptime": 0, "alerts": 0}


def test_snapshots_are_read_at_scrape_time() -> None:
    state = {"ticks": 0}
    collector = SnapshotCollector(bots=lambda: {"b1": {**BOT, "ticks": state["ticks"]}})
    assert scrape(collector)[("botcriptofy_bot_ticks_total", bot())] == 0
    state["ticks"] = 99
    assert scrape(collector)[("botcriptofy_bot_ticks_total", bot())] == 99
