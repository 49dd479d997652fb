"""Local exchange servers speaking the real public market-data protocols (Binance, Coinbase
Exchange, Coinbase Advanced Trade, Kraken v2 and v1), for tests, benchmarks and the daemon's
embedded default. See ``server.py`` for the API and decisions, one module per protocol for the
wire details, ``model.py`` for the seeded price model.

    async with open_exchange_server("binance", ("BTC/USDT",), seed=1, rate_hz=10.0) as server:
        async with trio_websocket.open_websocket_url(server.ws_url) as ws: ...

And a local Binance Spot *trading* venue (REST orders and account, WebSocket API user data
stream, fault knobs), alone or on a market-data server's price path: ``binance_venue.py``.

    async with open_binance_venue(market_server=server) as venue:
        venue.rest_url, venue.ws_api_url, venue.api_key, venue.secret
"""

from actors.exchanges import PROTOCOLS
from actors.simulator.binance_venue import (
    BinanceVenue,
    VenueOrder,
    VenueRequest,
    open_binance_venue,
    run_binance_venue,
)
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
from actors.simulator.venue_auth import EXAMPLE_API_KEY, EXAMPLE_SECRET, ApiKey
from actors.simulator.venue_matching import Balance, Fill

__all__ = [
    "DEFAULT_SYMBOLS",
    "EXAMPLE_API_KEY",
    "EXAMPLE_SECRET",
    "GARBAGE_FRAME",
    "PROTOCOLS",
    "ApiKey",
    "Balance",
    "BinanceVenue",
    "ClientRequest",
    "ExchangeServer",
    "Fill",
    "Market",
    "MarketSpec",
    "ServerStatistics",
    "Step",
    "VenueOrder",
    "VenueRequest",
    "open_binance_venue",
    "open_exchange_server",
    "run_binance_venue",
    "run_exchange_server",
]
