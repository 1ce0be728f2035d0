"""Which callback a request to ``/_dash-update-component`` runs, and whether the role may run it.

Dash picks the function by the body's ``output`` string and passes inputs and state to it *by
position*. So the only sound check is the one Dash itself would need: the body must match the
declared callback exactly — the same outputs, inputs and state in the same order, with the same
ids and properties — and the decision is then taken for that callback's declared page. A body
that matches nothing (swapped or missing inputs, outputs wrapped in lists, extra keys) is refused
before Dash or any data function sees it, so nothing is computed for a refused request.

Pages declare themselves with ``dash.register_page``; a callback belongs to the page of the module
that defines it. Callbacks of the shell (navbar, pack menu) belong to no page and are listed in
``SHELL_CALLBACKS`` with the roles that may run them. The page router (``_pages_content``) is
judged by the address it is asked to render, read from its declared ``pathname`` input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dash

ROUTER_OUTPUT = "_pages_content"
# body keys the Dash renderer sends (dash-renderer's callback payload); anything else is not ours
BODY_KEYS = frozenset({"output", "outputs", "inputs", "state", "changedPropIds", "parsedChangedPropsIds"})
ITEM_KEYS = frozenset({"id", "property", "value"})
WILDCARDS = ('["ALL"]', '["MATCH"]', '["ALLSMALLER"]')
ALL_ROLES = frozenset({"curator", "sector", "municipal", "wall"})
PEOPLE = ALL_ROLES - {"wall"}
# shell callbacks (no page of their own) by their output string -> roles that may run them; the
# wall display renders the shell too (hidden navbar), but may not download a pack
SHELL_CALLBACKS: dict[str, frozenset[str]] = {
    "navbar-status.children": ALL_ROLES,
    "navbar-user.children": ALL_ROLES,
    "pack-area.style": ALL_ROLES,
    "..pack-download.data...pack-status.children..": PEOPLE,
}


class Refused(Exception):
    """The request is not a call of a declared callback, or the role may not run it."""

    def __init__(self, status: int, message: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Declared:
    output: str
    outputs: tuple[tuple[str, str], ...]
    multi_output: bool
    inputs: tuple[tuple[str, str], ...]
    state: tuple[tuple[str, str], ...]
    page: str | None  # None: a shell callback or the router
    router: bool
    clientside: bool


def _pair(item: Mapping) -> tuple[str, str]:
    return str(item["id"]), str(item["property"])


def _outputs_of(key: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    if key.startswith(".."):
        parts = key[2:-2].split("...")
        return tuple(tuple(p.rsplit(".", 1)) for p in parts), True  # type: ignore[misc]
    return (tuple(key.rsplit(".", 1)),), False  # type: ignore[return-value]


def declared_callbacks(app: dash.Dash) -> dict[str, Declared]:
    """Every server-side callback of the app by its output string, with the page it belongs to."""
    pages = {p["module"]: p.get("path_template") or p["path"] for p in dash.page_registry.values()}
    out: dict[str, Declared] = {}
    for key, spec in app.callback_map.items():
        function = spec.get("callback")
        module = getattr(getattr(function, "__wrapped__", function), "__module__", None)
        outputs, multi = _outputs_of(key)
        router = any(cid == ROUTER_OUTPUT for cid, _ in outputs)
        page = pages.get(module) if module else None
        out[key] = Declared(
            output=key, outputs=outputs, multi_output=multi,
            inputs=tuple(_pair(i) for i in spec.get("inputs", [])),
            state=tuple(_pair(s) for s in spec.get("state", [])),
            page=page, router=router, clientside=function is None or module is None,
        )
    return out


def _id_matches(declared: str, actual: object) -> bool:
    """An id as sent equals the declared one; a pattern-matching id matches its pattern."""
    if not declared.startswith("{"):
        return isinstance(actual, str) and actual == declared
    if not isinstance(actual, dict):
        return False
    pattern = json.loads(declared)
    if set(pattern) != set(actual):
        return False
    for k, v in pattern.items():
        if json.dumps(v) in WILDCARDS:
            if not isinstance(actual[k], str | int | float | bool):
                return False
        elif actual[k] != v:
            return False
    return True


def _item_matches(item: object, declared: tuple[str, str], with_value: bool) -> bool:
    if isinstance(item, list):  # a pattern-matching ALL dependency: one entry per matched component
        return declared[0].startswith("{") and all(_item_matches(i, declared, with_value) for i in item)
    if not isinstance(item, dict):
        return False
    allowed = ITEM_KEYS if with_value else ITEM_KEYS - {"value"}
    return (set(item) <= allowed and {"id", "property"} <= set(item)
            and _id_matches(declared[0], item["id"]) and item["property"] == declared[1])


def _list_matches(items: object, declared: tuple[tuple[str, str], ...], with_value: bool) -> bool:
    return (isinstance(items, list) and len(items) == len(declared)
            and all(_item_matches(i, d, with_value) for i, d in zip(items, declared, strict=True)))


def _prop_ids_match(ids: object, declared: tuple[tuple[str, str], ...]) -> bool:
    if not isinstance(ids, list) or len(ids) > len(declared):
        return False
    for text in ids:
        if not isinstance(text, str) or "." not in text:
            return False
        cid, prop = text.rsplit(".", 1)
        if cid.startswith("{"):
            try:
                parsed: object = json.loads(cid)
            except ValueError:
                return False
        else:
            parsed = cid
        if not any(prop == p and _id_matches(d, parsed) for d, p in declared):
            return False
    return True


def match(body: object, callbacks: Mapping[str, Declared]) -> Declared:
    """The declared callback ``body`` calls, or ``Refused`` when it is not exactly one."""
    if not isinstance(body, dict) or not set(body) <= BODY_KEYS or not isinstance(body.get("output"), str):
        raise Refused(400, "Неверный запрос.", "malformed callback body")
    spec = callbacks.get(body["output"])
    if spec is None or spec.clientside:
        raise Refused(400, "Неверный запрос.", f"no server callback for {body['output'][:80]!r}")
    outputs = body.get("outputs")
    if spec.multi_output:
        ok = _list_matches(outputs, spec.outputs, with_value=False)
    else:
        ok = _item_matches(outputs, spec.outputs[0], with_value=False) and not isinstance(outputs, list)
    ok = ok and _list_matches(body.get("inputs"), spec.inputs, with_value=True)
    state = body.get("state")
    ok = ok and (_list_matches(state, spec.state, with_value=True) if spec.state or state is not None else True)
    ok = ok and _prop_ids_match(body.get("changedPropIds", []), spec.inputs)
    ok = ok and _prop_ids_match(body.get("parsedChangedPropsIds", []), spec.inputs)
    if not ok:
        raise Refused(400, "Неверный запрос.", f"body does not match the declared callback {spec.output[:80]!r}")
    return spec


def decide(spec: Declared, body: Mapping, role: str, page_allowed: Callable[[str, str], bool]) -> None:
    """Raise ``Refused`` unless ``role`` may run the matched callback ``spec`` with this body."""
    if spec.router:
        where = spec.inputs.index(("_pages_location", "pathname"))
        pathname = body["inputs"][where].get("value")
        if not isinstance(pathname, str) or not page_allowed(role, pathname):
            raise Refused(403, "Нет доступа к странице.", f"router to {str(pathname)[:80]!r}")
        return
    if spec.page is None:
        roles = SHELL_CALLBACKS.get(spec.output)
        if roles is None or role not in roles:
            raise Refused(403, "Нет доступа.", f"shell callback {spec.output[:80]!r}")
        return
    if not page_allowed(role, spec.page):
        raise Refused(403, "Нет доступа.", f"callback of page {spec.page} ({spec.output[:60]!r})")
