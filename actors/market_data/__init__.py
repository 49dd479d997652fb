"""The market-data plane: pooled exchange connections, subscription actors and their fan-out
buffers. This package runs nothing by itself: ``supervisor.feeds`` puts one ``ExchangePool``
per exchange into the supervision tree (its streams service and its connections)."""
