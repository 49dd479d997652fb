"""Binance Spot (testnet first): the pure foundations of live trading.

* ``signing``: REST and WebSocket API request signing (HMAC-SHA256, Ed25519), the server clock.
* ``filters``: ``exchangeInfo`` symbol rules; orders rounded and checked before sending.
* ``ids``: client order ids derived from the journal's intent, and parsed back.
* ``responses``: an order answer is accepted, refused (nothing on the venue) or unknown.
* ``rate_limits``: request weight, order counts, 429/418 and ``Retry-After``.
* ``resolution``: when "Order does not exist" may be believed.
* ``user_stream``: the WebSocket API user data subscription and its ``executionReport``s.
"""
