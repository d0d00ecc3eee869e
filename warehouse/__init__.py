"""Where records land: the DuckDB warehouse, its sink and its read-only SQL endpoint."""
