"""Dash pages: one module per page. Pages ask metrics/ and geo/; they never write SQL."""
