"""Trading venues: what it takes to place, follow and reconcile live orders on an exchange.

This layer sits beside the market-data plane and the journal: it may use the exchange codecs'
parsers, the schema, messages and errors, and the bots build on it. Each venue is a package
(``binance/``) whose modules are pure, like the codecs: signing, symbol rules, client order
ids, response classification, rate limits, the "does not exist" rule and the user data
stream take their inputs (times included) as arguments and do no I/O, so every rule is tested
without a network. ``fills.py`` is shared by all venues: a fill is booked once, whichever way
it arrives first.

Next in this package: each venue's I/O client (signed REST and the WebSocket API under Trio,
built from these pieces), then a live executor in ``actors/bots/executor.py``'s seam that uses
it, and a local fake venue speaking the same protocol for the tests.
"""
