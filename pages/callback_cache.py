"""Answers of the pages' data callbacks, kept until the warehouse file changes, and warmed after it does.

The data change only when an import switches in a new file, while many people ask the same
questions (this month, the whole region, the default indicator). Serving a repeated callback from
memory keeps the server responsive under a room full of users. The key is the exact request body,
the user's scope (a sector lead never gets a curator's answer) and the warehouse file's identity
(inode and mtime), so a new import is never answered with old data.

After an import switches in a new file every answer is cold at once. Two things keep that moment
smooth: identical requests arriving together are computed once (the others wait for that answer),
and the first request that sees the new file starts a background thread that recomputes the most
asked questions of the old file against the new one (``WARM_TOP``), as the users who asked them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from dash import Dash
from flask import Response, g, request

from metrics.scope import request_scope
from metrics.source import WarehouseMissing, warehouse_identity

# Callbacks whose answer depends only on the request, the scope and the data: the pages' main
# callbacks and the page router. (The navbar's user line, downloads and the wall's clock are not.)
CACHED_OUTPUTS = ("_pages_content.children", "heatmap-map.figure", "rating-grid.rowData", "kpi-trend.figure",
                  "problems-list.children", "heatmap-profile.children",
                  # «Решения»: a measure added by the form replaces the warehouse file, so these go stale
                  # with the file like the others (metrics.roadmap.add_measure)
                  "decisions-workload.children", "decisions-roadmap.children", "decisions-item-chart.figure",
                  "decisions-brief.children")
MAX_ENTRIES = 512
SERVER_ERROR = "ошибка на сервере".encode()  # the pages' wording when a callback caught an exception
MAX_BODY = 2 << 20
WARM_TOP = 40  # questions recomputed in the background after a data switch
WAIT_FOR_TWIN = 30.0  # seconds a request waits for an identical one already being computed
log = logging.getLogger(__name__)
REMEMBERED = 64  # answers a ``per_data`` function keeps (each worker)
P = ParamSpec("P")
R = TypeVar("R")


_remembered: list[OrderedDict] = []


def forget_remembered() -> None:
    """Drop what every ``per_data`` function keeps (bench/callback_bench.py --cold: the cost after a switch)."""
    for kept in _remembered:
        kept.clear()


def per_data(fn: Callable[P, R]) -> Callable[P, R]:
    """Remember a page's piece of an answer that many different requests share, per (arguments, the
    user's scope, the warehouse file): the signals are the same for every period asked, the KPI
    panels by sector the same for every sector chosen. Kept until the file changes (an import), like
    the answers above; callers treat what they get as read-only."""
    kept: OrderedDict[tuple, R] = OrderedDict()
    lock = threading.Lock()
    _remembered.append(kept)

    @functools.wraps(fn)
    def remembered(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            identity = warehouse_identity()
        except WarehouseMissing:
            return fn(*args, **kwargs)
        key = (args, tuple(sorted(kwargs.items())), request_scope(), *identity)
        with lock:
            if key in kept:
                kept.move_to_end(key)
                return kept[key]
        value = fn(*args, **kwargs)
        with lock:
            if kept and next(reversed(kept))[3:] != identity:
                kept.clear()  # another file: nothing kept of the old one is asked again
            kept[key] = value
            while len(kept) > REMEMBERED:
                kept.popitem(last=False)
        return value

    return remembered


class _Lru:
    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()
        self.hits = self.misses = 0
        self.inflight: dict[tuple, threading.Event] = {}
        self.identity: tuple | None = None
        self.asked: Counter = Counter()  # (body digest, scope) -> times asked of the current file
        self.requests: dict[tuple, tuple[bytes, object, object]] = {}  # same key -> (raw body, user, scope)
        self.warmed = self.stored = 0

    def claim(self, key: tuple) -> threading.Event | None:
        """None: the caller computes ``key`` (and must ``release`` it); else an event to wait on."""
        with self.lock:
            event = self.inflight.get(key)
            if event is None:
                self.inflight[key] = threading.Event()
            return event

    def release(self, key: tuple) -> None:
        with self.lock:
            event = self.inflight.pop(key, None)
        if event is not None:
            event.set()

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
            self.stored += 1
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


def _warm(app: Dash, cache: _Lru, wanted: list[tuple[bytes, object, object]], identity: tuple) -> None:
    """Recompute the old file's most asked questions against the new one, as the users who asked."""
    server = app.server
    endpoint = next(r.endpoint for r in server.url_map.iter_rules() if r.rule.endswith("/_dash-update-component"))
    view = server.view_functions[endpoint]
    for raw, user, scope in wanted:
        key = (hashlib.sha256(raw).digest(), scope, *identity)
        if cache.get(key) is not None or cache.claim(key) is not None:
            continue  # already answered, or a user is computing it right now
        try:
            with server.test_request_context("/_dash-update-component", method="POST", data=raw,
                                             content_type="application/json"):
                # the guard already admitted this exact request for this user; the view runs alone,
                # without the request hooks, under the same user and scope
                g.cur_user, g.cur_scope = user, scope
                if request_scope() != scope:  # sign-in was switched off meanwhile: not this user's answer
                    continue
                response = server.make_response(view())
                body = response.get_data()
                if response.status_code == 200 and len(body) <= MAX_BODY and SERVER_ERROR not in body:
                    cache.put(key, body)
                    cache.warmed += 1
        except Exception:  # noqa: BLE001 - warming is best effort; a user's own request will say what is wrong
            log.exception("warming a cached answer failed")
        finally:
            cache.release(key)
        try:
            if warehouse_identity() != identity:
                return  # yet another file: its own first request warms it
        except WarehouseMissing:
            return


def warm_common_views() -> None:
    """Build each page's opening view once, as the server's own work (``system_scope``) at a worker's
    start: the first answers of a process pay for what is then kept for its life (imports, the map's
    label places and name fits, the chart templates) — without this the first users after a start
    waited for it all at once. Nothing is stored as an answer: the answers cache keeps users' own; what
    is kept is the pages' shared pieces (``per_data``: «Решения»'s brief and its measures' effects) and
    the staffing plan, so the first open of «Решения» reads them instead of computing them."""
    from metrics import catalog
    from pages import decisions, heatmap, kpi, problems, rating
    from pages.common import default_period

    period = default_period(catalog.months_with_data(), catalog.as_of())
    if period is None:
        return
    heatmap.update(period, heatmap.ALL, heatmap.ALL, heatmap.DEFAULT_INDICATOR)
    kpi.update(kpi.KPI_INDICATORS[0], kpi.ALL, kpi.ALL, "month")
    rating.update(period, "organisations", rating.ALL)
    problems.update(period, problems.ALL)
    decisions.warm_opening_view(period)  # its pieces are kept per data (the brief, the measures' effects)


def install(app: Dash) -> _Lru:
    """Attach the cache to the app's server; call after sign-in is installed (it must run first)."""
    cache = _Lru(MAX_ENTRIES)
    server = app.server
    server.extensions["callback_cache"] = cache

    def note(key: tuple) -> None:
        """Count the question; on the first question about a new file start warming it."""
        identity, question = key[2:], key[:2]
        wanted: list = []
        with cache.lock:
            if identity != cache.identity:
                if cache.identity is not None:
                    wanted = [cache.requests[q] for q, _ in cache.asked.most_common(WARM_TOP) if q in cache.requests]
                cache.identity, cache.asked, cache.requests = identity, Counter(), {}
            cache.asked[question] += 1
            if question not in cache.requests and len(cache.requests) < 4 * MAX_ENTRIES:
                cache.requests[question] = (request.get_data(cache=True), g.get("cur_user"), key[1])
        if wanted:
            # not a daemon: a worker that exits meanwhile waits for it rather than dying inside DuckDB
            threading.Thread(target=_warm, args=(app, cache, wanted, identity),
                             name="warm-callback-cache").start()

    @server.before_request
    def answer_from_cache() -> Response | None:
        key = _key()
        if key is None:
            return None
        note(key)
        body = cache.get(key)
        if body is None:
            twin = cache.claim(key)
            if twin is not None:  # the same question is being computed: wait for its answer
                twin.wait(WAIT_FOR_TWIN)
                body = cache.get(key)
                if body is not None:
                    return Response(body, mimetype="application/json")
                return None  # it failed or took too long: compute it here (uncached)
            g.callback_cache_key = key
            return None
        return Response(body, mimetype="application/json")

    @server.after_request
    def remember(response: Response) -> Response:
        key = g.get("callback_cache_key")
        if key is not None and response.status_code == 200 and not response.direct_passthrough:
            body = response.get_data()
            # a page's answer after an unexpected failure is not kept: the next request tries again
            if len(body) <= MAX_BODY and SERVER_ERROR not in body:
                cache.put(key, body)
        return response

    @server.teardown_request
    def let_twins_go(_exc: BaseException | None) -> None:
        key = g.pop("callback_cache_key", None)
        if key is not None:
            cache.release(key)

    return cache
