"""The market-data plane: pooled exchange connections, reference-counted subscriptions and
their fan-out buffers. ``supervisor.open_market_data`` runs one pool per exchange under
supervision; this package is the plane itself."""
