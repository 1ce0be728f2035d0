"""Metrics layer: declared indicators and the queries behind them. Never imports Dash."""
