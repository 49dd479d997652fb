"""Local exchange servers speaking the real public market-data protocols (Binance, Coinbase
Exchange, Coinbase Advanced Trade, Kraken v2 and v1), for tests, benchmarks and the daemon's
embedded default. See ``server.py`` for the API and decisions, one module per protocol for the
wire details, ``model.py`` for the seeded price model.

    async with open_exchange_server("binance", ("BTC/USDT",), seed=1, rate_hz=10.0) as server:
        async with trio_websocket.open_websocket_url(server.ws_url) as ws: ...
"""

from actors.exchanges import PROTOCOLS
from actors.simulator.model import Market, MarketSpec, Step
from actors.simulator.server import (
    DEFAULT_SYMBOLS,
    GARBAGE_FRAME,
    ClientRequest,
    ExchangeServer,
    ServerStatistics,
    open_exchange_server,
    run_exchange_server,
)

__all__ = [
    "DEFAULT_SYMBOLS",
    "GARBAGE_FRAME",
    "PROTOCOLS",
    "ClientRequest",
    "ExchangeServer",
    "Market",
    "MarketSpec",
    "ServerStatistics",
    "Step",
    "open_exchange_server",
    "run_exchange_server",
]
