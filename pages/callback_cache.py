"""Answers of the pages' data callbacks, kept until the warehouse file changes.

The data change only when an import switches in a new file, while many people ask the same
questions (this month, the whole region, the default indicator). Serving a repeated callback from
memory keeps the server responsive under a room full of users. The key is the exact request body,
the user's scope (a sector lead never gets a curator's answer) and the warehouse file's identity
(inode and mtime), so a new import is never answered with old data.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from dash import Dash
from flask import Response, g, request

from metrics.scope import request_scope
from metrics.source import WarehouseMissing, warehouse_identity

# Callbacks whose answer depends only on the request, the scope and the data: the pages' main
# callbacks and the page router. (The navbar's user line, downloads and the wall's clock are not.)
CACHED_OUTPUTS = ("_pages_content.children", "heatmap-map.figure", "rating-grid.rowData", "kpi-trend.figure",
                  "problems-list.children", "heatmap-profile.children")
MAX_ENTRIES = 512
SERVER_ERROR = "ошибка на сервере".encode()  # the pages' wording when a callback caught an exception
MAX_BODY = 2 << 20


class _Lru:
    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> bytes | None:
        with self.lock:
            body = self.items.get(key)
            if body is None:
                self.misses += 1
                return None
            self.items.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: tuple, body: bytes) -> None:
        with self.lock:
            self.items[key] = body
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


def _key() -> tuple | None:
    if request.path != "/_dash-update-component" or request.method != "POST":
        return None
    body = request.get_json(silent=True)
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, str) or not any(out in output for out in CACHED_OUTPUTS):
        return None
    raw = request.get_data(cache=True)
    try:
        identity = warehouse_identity()
    except WarehouseMissing:
        return None
    return (hashlib.sha256(raw).digest(), request_scope(), *identity)


def install(app: Dash) -> _Lru:
    """Attach the cache to the app's server; call after sign-in is installed (it must run first)."""
    cache = _Lru(MAX_ENTRIES)
    server = app.server
    server.extensions["callback_cache"] = cache

    @server.before_request
    def answer_from_cache() -> Response | None:
        key = _key()
        if key is None:
            return None
        body = cache.get(key)
        if body is None:
            g.callback_cache_key = key
            return None
        return Response(body, mimetype="application/json")

    @server.after_request
    def remember(response: Response) -> Response:
        key = g.pop("callback_cache_key", None)
        if key is not None and response.status_code == 200 and not response.direct_passthrough:
            body = response.get_data()
            # a page's answer after an unexpected failure is not kept: the next request tries again
            if len(body) <= MAX_BODY and SERVER_ERROR not in body:
                cache.put(key, body)
        return response

    return cache
