"""The daemon: ``open_supervisor`` plus HTTP, signals, ``--duration`` and a live status.

Exit codes: 0 after a clean stop (SIGINT, SIGTERM, ``--duration``), 1 when the system failed
(infrastructure in a crash loop escalated to the root: the journal, the alerts, an account, an
exchange beyond its budget; HTTP could not bind; the journal is held by another daemon), 2 for
configuration problems only found at start (a secret's environment variable is unset). A bot in
a crash loop is no reason to exit: it is given up on alone (``supervisor.build``) and the
daemon runs on. Shutdown is cancellation: the bots
stop first, then the feeds, then the journal is flushed and closed (see ``supervisor.build``).

With no config, ``main`` runs the embedded default (``supervisor.embedded``): local exchange
servers on 127.0.0.1, started before the daemon and stopped after it, and a few paper bots.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TextIO

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry

from actors.errors import ConfigError, JournalError, RestartIntensityError
from supervisor.config import Config
from supervisor.http import run_http_server
from supervisor.metrics import SnapshotCollector, new_registry
from supervisor.system import System, open_supervisor

log = logger.bind(actor="daemon")

STATUS_INTERVAL_S = 5.0


async def main(
    config: Config | None,
    *,
    duration_s: float | None = None,
    http_port: int | None = None,
    status_interval_s: float | None = STATUS_INTERVAL_S,
    status_out: TextIO | None = None,
) -> int:
    """Run until a signal, ``duration_s`` or a fatal error; returns the exit code.

    ``http_port`` overrides ``[http] port`` (``--http-port``; 0 picks a free port, which the
    "http listening" log line reports)."""
    run_config = partial(
        run, duration_s=duration_s, status_interval_s=status_interval_s, status_out=status_out
    )
    # The signal receiver is held for the whole run, embedded exchanges included: the first
    # SIGINT/SIGTERM cancels, later ones (Ctrl-C pressed twice, a wrapper forwarding the signal)
    # are absorbed instead of becoming a KeyboardInterrupt in the middle of the shutdown.
    code = 0
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listening = await nursery.start(_stop_on_signals, signals, nursery.cancel_scope)
            try:
                if config is None:
                    code = await _run_embedded_default(http_port, run_config)
                else:
                    code = await run_config(_with_port(config, http_port))
            finally:
                listening.cancel(reason="daemon finished")
    if code == 0:
        log.info("daemon stopped")
    return code


async def _run_embedded_default(
    http_port: int | None, run_config: Callable[[Config], Awaitable[int]]
) -> int:
    """The daemon on the local exchanges, which run around it: up before it starts, down only
    once it has stopped (``open_embedded_default``)."""
    from supervisor.embedded import open_embedded_default

    try:
        async with open_embedded_default() as default_config:
            return await run_config(_with_port(default_config, http_port))
    except Exception as exc:  # the local exchanges failed
        return _exit_code(exc, None)


def _with_port(config: Config, port: int | None) -> Config:
    return (
        config if port is None else attrs.evolve(config, http=attrs.evolve(config.http, port=port))
    )


async def run(
    config: Config,
    *,
    duration_s: float | None = None,
    status_interval_s: float | None = STATUS_INTERVAL_S,
    status_out: TextIO | None = None,
) -> int:
    """Run ``config`` until cancelled or ``duration_s`` has passed; returns the exit code."""
    try:
        async with trio.open_nursery() as nursery:
            if duration_s is not None:
                nursery.cancel_scope.deadline = trio.current_time() + duration_s
            await _serve(config, nursery, duration_s, status_interval_s, status_out)
    except Exception as exc:  # nurseries raise ExceptionGroups; decide after the try
        return _exit_code(exc, config)
    return 0


async def _serve(
    config: Config,
    nursery: trio.Nursery,
    duration_s: float | None,
    status_interval_s: float | None,
    status_out: TextIO | None,
) -> None:
    """The system, HTTP (bound before any bot trades: a port clash stops us first) and the
    status printer, until cancelled."""
    async with open_supervisor(config, start=False) as system:
        http_url = None
        if config.http.enabled:
            address = await nursery.start(
                run_http_server, config.http, system, metrics_registry(system)
            )
            http_url = address.url
            log.info("http listening", url=http_url)
        await system.start()
        if status_interval_s:
            nursery.start_soon(
                _print_status, system, status_interval_s, status_out or sys.stdout, http_url
            )
        log.info(
            "daemon running",
            exchanges=list(system.market_data.exchanges),
            bots=list(system.bot_ids),
            duration_s=duration_s,
        )
        await trio.sleep_forever()


def _exit_code(failure: Exception, config: Config | None) -> int:
    """Log why the daemon stops and return its exit code (2: configuration, 1: anything else)."""
    cause = _cause(failure)
    invalid = _find(cause, ConfigError)
    if isinstance(invalid, ConfigError):  # found only at start (e.g. an unset url_env)
        for line in invalid.problems:
            print(line, file=sys.stderr)
        return 2
    unbound = _find(cause, OSError)
    if (escalated := _find(cause, RestartIntensityError)) is not None:
        log.critical(
            "restart intensity exceeded: stopping the daemon", error=str(_crash_loop(escalated))
        )
    elif (journal := _find(cause, JournalError)) is not None:
        log.critical("journal unavailable: stopping the daemon", error=str(journal))
    elif isinstance(unbound, OSError) and unbound.errno == errno.EADDRINUSE and config:
        log.critical(
            "http port already in use: set [http] port or pass --http-port",
            host=config.http.host,
            port=config.http.port,
        )
    else:
        log.opt(exception=failure).critical("daemon failed", error=repr(_find(cause, Exception)))
    return 1


def _cause(failure: BaseException) -> BaseException:
    """What stopped the system. The root supervisor restarts nothing, so a child's failure
    leaves it as the root's ``RestartIntensityError``, whose ``__cause__`` is the child's own
    error: a subtree's ``RestartIntensityError`` when that subtree was in a crash loop."""
    root = _find(failure, RestartIntensityError)
    if root is not None and root.__cause__ is not None:
        return root.__cause__
    return failure


def _crash_loop(escalated: BaseException) -> BaseException:
    """The supervisor that really gave up: a subtree's ``RestartIntensityError`` goes up
    through parents that restart nothing (``feeds``), each chaining the one below."""
    while escalated.__cause__ is not None:
        below = _find(escalated.__cause__, RestartIntensityError)
        if below is None:
            break
        escalated = below
    return escalated


def _find(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first leaf of ``error`` (a group or not) that is a ``kind``."""
    if isinstance(error, BaseExceptionGroup):
        for sub in error.exceptions:
            found = _find(sub, kind)
            if found is not None:
                return found
        return None
    return error if isinstance(error, kind) else None


def metrics_registry(system: System) -> CollectorRegistry:
    """What ``/metrics`` serves: the system's snapshots, Trio's run statistics (read on the
    Trio thread, where our handler scrapes) and the process's own collectors."""
    collector = SnapshotCollector(
        exchanges=lambda: system.market_data.statistics().exchanges,
        bots=system.bot_snapshots,
        children=system.child_snapshots,
        uptime_s=lambda: system.uptime_s,
        alerts=system.alerts.statistics,
        accounts=system.account_snapshots,
        runtime=trio.lowlevel.current_statistics,
        cluster=system.market_data.cluster_statistics,
        recording=None if system.tree.recorder is None else system.tree.recorder.statistics,
    )
    return new_registry(collector, process=True)


async def _stop_on_signals(
    signals: AsyncIterator[int],
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The first signal cancels ``scope``; later ones are consumed until the daemon is done
    (trio would otherwise re-raise them as KeyboardInterrupt when the receiver closes). Shielded
    from the cancellation it causes; ``main`` cancels the returned scope at the very end."""
    with trio.CancelScope(shield=True) as listening:
        task_status.started(listening)
        async for signum in signals:
            name = signal.Signals(signum).name
            if scope.cancel_called:
                log.info("signal received again: already shutting down", signal=name)
                continue
            log.info("signal received: shutting down", signal=name)
            scope.cancel(reason=f"signal {name}")


async def _print_status(
    system: System, interval_s: float, out: TextIO, http_url: str | None = None
) -> None:
    """A compact status block every ``interval_s``: rates come from counter deltas.

    The HTTP address is printed here at once, and in every block, not only logged: the status
    output is there whatever ``--log-level`` is, and ``--log-level WARNING`` (for a status view
    that log lines do not scroll away) would hide the ``http listening`` line, which is the one
    place a port picked with ``--http-port 0`` is told."""
    if http_url is not None:
        out.write(
            f"botcriptofy: HTTP on {http_url} (/health, /metrics); status every {interval_s:g}s\n"
        )
        out.flush()
    previous = {
        name: ex.messages_received for name, ex in system.market_data.statistics().exchanges.items()
    }
    last_at = trio.current_time()
    while True:
        await trio.sleep(interval_s)
        now = trio.current_time()
        out.write(format_status(system, previous, now - last_at, http_url))
        out.flush()
        last_at = now


def format_status(
    system: System, previous: dict[str, int], elapsed_s: float, http_url: str | None = None
) -> str:
    http = f"  {http_url}" if http_url is not None else ""
    lines = [f"--- botcriptofy  up {system.uptime_s:,.0f}s{http} ---"]
    for name, ex in system.market_data.statistics().exchanges.items():
        rate = (ex.messages_received - previous.get(name, ex.messages_received)) / max(
            elapsed_s, 1e-9
        )
        previous[name] = ex.messages_received
        age = "-" if ex.last_message_age_s is None else f"{ex.last_message_age_s:.1f}s"
        lines.append(
            f"  {name:<10} {ex.state:<12} {rate:8.1f} msg/s  last {age:>6}  "
            f"reconnects {ex.reconnects}  breaker {ex.breaker_state}"
        )
    health = system.health()["bots"]
    for bot_id, bot in health.items():
        pnl, upnl = bot.get("realized_pnl"), bot.get("unrealized_pnl")
        pnl_text = "-" if pnl is None else f"{pnl:+.2f}"
        upnl_text = "-" if upnl is None else f"{upnl:+.2f}"
        lines.append(
            f"  {bot_id:<14} {bot['state']:<9} pos {bot.get('position', '-')!s:<10} "
            f"pnl {pnl_text:<9} upnl {upnl_text:<9} {bot.get('last_action') or ''}"
        )
    return "\n".join(lines) + "\n"
