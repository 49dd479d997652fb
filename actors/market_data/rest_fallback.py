"""REST polling fallback: tickers from the exchange's public REST API while its circuit is open.

Decisions:

* One ``httpx.AsyncClient`` per polling period (opened when the breaker opens, closed when it
  closes): connection reuse for the poll rounds, nothing held while the WebSocket is healthy.
  httpx runs on Trio through anyio.
* A round polls every ticker subscription whose source is REST (``Subscription.wants_rest``:
  a stream that a half-open WebSocket trial already restored is fed by the WebSocket, and not
  contradicted by older REST prices), one request after the other, and the next round starts
  ``interval_s`` after the previous one started. Sequential requests keep us far below every
  exchange's public REST limit (Kraken: ~1 request/s).
* Published tickers carry ``source="rest"`` (the codec sets it) and their subscribers are told
  ``FeedState("fallback")`` first (``Subscription.publish_rest``). ``on_published`` hears each
  one after its subscribers (a cluster's leader relays them to the other nodes).
* **REST errors are counted, never raised**: transport errors, HTTP errors (the status and the
  start of the body are logged), and bodies the codec rejects. Each is logged at most once per
  ``LogThrottle`` interval. An unexpected exception (a bug) is counted and logged with its
  traceback, but does not take the market-data plane down with it: the fallback exists for
  when things are already going wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import httpx
import trio
from loguru import logger

from actors.errors import DecodeError
from actors.exchanges import Codec
from actors.market_data.connection import LogThrottle
from actors.market_data.subscription import Subscription
from actors.messages import Ticker

__all__ = ["RestPoller", "RestPollerStatistics"]


@attrs.frozen
class RestPollerStatistics:
    active: bool
    rounds: int
    requests: int
    tickers: int
    errors: int
    last_error: str | None


@attrs.define(eq=False)
class RestPoller:
    exchange: str
    codec: Codec
    base_url: str | None
    interval_s: float
    targets: Callable[[], Iterable[Subscription]]
    timeout_s: float = 5.0
    on_published: Callable[[Ticker], None] | None = None

    active: bool = attrs.field(default=False, init=False)
    rounds: int = attrs.field(default=0, init=False)
    requests: int = attrs.field(default=0, init=False)
    tickers: int = attrs.field(default=0, init=False)
    errors: int = attrs.field(default=0, init=False)
    last_error: str | None = attrs.field(default=None, init=False)
    _log_throttle: LogThrottle = attrs.field(factory=LogThrottle, init=False)
    log: Any = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.log = logger.bind(actor="rest_fallback", exchange=self.exchange)

    async def run(self) -> None:
        """Poll until cancelled."""
        timeout = httpx.Timeout(min(self.timeout_s, self.interval_s))
        self.active = True
        self.log.info("rest fallback polling", interval_s=self.interval_s)
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                while True:
                    round_at = trio.current_time()
                    self.rounds += 1
                    for sub in list(self.targets()):
                        if sub.wants_rest:
                            await self._poll(client, sub)
                    await trio.sleep_until(round_at + self.interval_s)
        finally:
            self.active = False
            self.log.info("rest fallback stopped", rounds=self.rounds, errors=self.errors)

    async def _poll(self, client: httpx.AsyncClient, sub: Subscription) -> None:
        symbol = sub.stream.symbol
        try:
            request = self.codec.rest_ticker_request(symbol, self.base_url)
            self.requests += 1
            response = await client.get(
                request.url, params=dict(request.params), headers=dict(request.headers)
            )
            if response.status_code >= 400:
                self._failed(symbol, f"HTTP {response.status_code}: {response.text[:200]}")
                return
            ticker = self.codec.decode_rest_ticker(response.content, symbol, time.time())
        except (httpx.HTTPError, httpx.InvalidURL, DecodeError) as exc:
            self._failed(symbol, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            self._failed(symbol, f"{type(exc).__name__}: {exc}", exc)
            return
        # The subscription may have ended, or the WebSocket come back, during the request.
        if sub.wants_rest:
            self.tickers += 1
            sub.publish_rest(ticker)
            if self.on_published is not None:
                self.on_published(ticker)

    def _failed(self, symbol: str, error: str, bug: Exception | None = None) -> None:
        self.errors += 1
        self.last_error = error[:300]
        if bug is not None:
            self.log.opt(exception=bug).error("rest fallback bug", symbol=symbol)
            return
        suppressed = self._log_throttle.due(trio.current_time())
        if suppressed is not None:
            self.log.warning(
                "rest poll failed", symbol=symbol, error=self.last_error, suppressed=suppressed
            )

    def statistics(self) -> RestPollerStatistics:
        return RestPollerStatistics(
            active=self.active,
            rounds=self.rounds,
            requests=self.requests,
            tickers=self.tickers,
            errors=self.errors,
            last_error=self.last_error,
        )
