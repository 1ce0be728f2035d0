"""Warehouse room: DuckDB schema, reference lists, demo data and import. Knows nothing about pages."""
