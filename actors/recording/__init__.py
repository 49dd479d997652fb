"""Recording market data to Parquet, reading it back, importing public exchange history."""
