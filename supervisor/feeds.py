"""The market-data plane's facade: every configured exchange's pool, under one nursery.

    async with open_market_data(config.exchanges, backoff=config.backoff,
                                circuit_breaker=config.circuit_breaker) as md:
        async with md.subscribe("binance", "ticker", "BTC/USDT") as events:
            async for event in events:      # Ticker | Trade | FeedState | Lagged
                ...

Decisions:

* Each exchange runs under its own keeper (``pool.py``) with its own backoff and circuit
  breaker: the exchange's override if it has one, the top-level settings otherwise.
* Restart intensity: by default each exchange has its own ``RestartIntensity`` built from
  ``restart_limits`` (``[supervisor] max_restarts, period_s``), i.e. each exchange pool is a
  supervisor of its own. A network outage
  fails every exchange at once; with one shared budget, three exchanges each restarting twice
  would escalate and stop the daemon while every breaker is doing its job. Pass
  ``intensity`` to share one budget instead (e.g. the embedding supervisor's). When it is
  exceeded, ``RestartIntensityError`` leaves ``open_market_data`` (escalation, DESIGN §5).
* ``open_market_data`` returns once every pool's first attempt has settled (streaming, idle
  with nothing subscribed yet, or backing off): an exchange that is down at boot does not
  block the others, or the program.
* ``subscribe`` checks its arguments before anything else: an unknown exchange, an unknown
  kind or a malformed symbol is a ``ValueError`` saying which, raised by ``subscribe()``
  itself rather than on entering the context.
* ``observers`` receive every supervision event of the plane's keepers (metrics, alerts).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import trio

from actors.market_data.mailbox import Mailbox
from actors.market_data.pool import ExchangePool, ExchangeStatistics, PoolTuning
from supervisor.config import ExchangeConfig
from supervisor.otp.backoff import BackoffPolicy
from supervisor.otp.breaker import BreakerPolicy
from supervisor.otp.events import Observer
from supervisor.otp.intensity import RestartIntensity

__all__ = ["MarketData", "MarketDataStatistics", "open_market_data"]


@attrs.frozen
class MarketDataStatistics:
    exchanges: Mapping[str, ExchangeStatistics]


@attrs.define(eq=False)
class MarketData:
    """Handle on a running plane. Only ``open_market_data`` creates one."""

    _pools: dict[str, ExchangePool]

    def _pool(self, exchange: str) -> ExchangePool:
        pool = self._pools.get(exchange)
        if pool is None:
            known = ", ".join(sorted(self._pools)) or "none"
            raise ValueError(f"unknown exchange {exchange!r}; configured exchanges: {known}")
        return pool

    def subscribe(
        self, exchange: str, kind: str, symbol: str
    ) -> AbstractAsyncContextManager[Mailbox]:
        """``async with md.subscribe(exchange, kind, symbol) as events:``; ``events`` is a
        ``trio.abc.ReceiveChannel`` of ``Ticker``/``Trade``/``FeedState``/``Lagged``."""
        pool = self._pool(exchange)
        pool.validate(kind, symbol)
        return pool.subscribe(kind, symbol)

    async def wait_streaming(self, exchange: str) -> None:
        """Block until ``exchange`` streams every wanted stream (for startup and tests)."""
        await self._pool(exchange).wait_streaming()

    @property
    def exchanges(self) -> tuple[str, ...]:
        return tuple(self._pools)

    def statistics(self) -> MarketDataStatistics:
        return MarketDataStatistics(
            exchanges={name: pool.statistics() for name, pool in self._pools.items()}
        )


@asynccontextmanager
async def open_market_data(
    exchanges: Sequence[ExchangeConfig],
    *,
    backoff: BackoffPolicy,
    circuit_breaker: BreakerPolicy,
    rng: random.Random | None = None,
    intensity: RestartIntensity | None = None,
    restart_limits: tuple[int, float] = (5, 60.0),
    observers: Sequence[Observer] = (),
    tuning: PoolTuning | None = None,
) -> AsyncIterator[MarketData]:
    names = [ex.name for ex in exchanges]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate exchange names: {', '.join(duplicates)}")
    rng = rng if rng is not None else random.Random()
    tuning = tuning if tuning is not None else PoolTuning()
    pools = {
        ex.name: ExchangePool(
            config=ex,
            backoff=ex.backoff or backoff,
            breaker=ex.circuit_breaker or circuit_breaker,
            rng=rng,
            intensity=intensity if intensity is not None else RestartIntensity(*restart_limits),
            observers=observers,
            tuning=tuning,
        )
        for ex in exchanges
    }
    async with trio.open_nursery() as nursery:
        for pool in pools.values():
            await nursery.start(pool.run)
        try:
            yield MarketData(pools)
        finally:
            nursery.cancel_scope.cancel(reason="market data closed")
