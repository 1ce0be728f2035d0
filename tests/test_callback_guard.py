"""Crafted callback requests: a body must match its declared callback exactly, by position, and the
role is judged by that callback's page (issue 18, the page-guard hole)."""

from __future__ import annotations

import copy
import logging

import dash
import pytest

from auth.web import role_allows_page
from tests.dash_requests import callback_body
from tests.test_auth import app_for, sign_in, users_file  # noqa: F401 - fixtures

ROLES = {"curator": "curator", "sector": "zhkh", "municipal": "yartsevo"}
ROUTER = "_pages_content"


def _client(dash_app, role: str, users):
    client = dash_app.server.test_client()
    if role == "wall":
        assert client.get(f"/wall?token={users[1]}").status_code == 302
    else:
        assert sign_in(client, ROLES[role]).status_code == 302
    client.get("/_dash-dependencies")  # Dash declares the page router on its first request
    return client


def _pages() -> list[str]:
    out = []
    for page in dash.page_registry.values():
        path = page.get("path_template") or page["path"]
        out.append(path.replace("<municipality_id>", "1"))
    return out


def _router(dash_app, pathname: str, search: str = "") -> dict:
    body = callback_body(dash_app.callback_map, ROUTER, {})
    body["inputs"][0]["value"], body["inputs"][1]["value"] = pathname, search
    return body


def _server_callbacks(dash_app) -> list[str]:
    return [k for k, v in dash_app.callback_map.items()
            if getattr(v.get("callback"), "__module__", None) and ROUTER not in k]


@pytest.fixture
def roles(app_for, users_file):  # noqa: F811 - the fixture
    dash_app = app_for()
    return dash_app, {role: _client(dash_app, role, users_file) for role in [*ROLES, "wall"]}


def test_the_router_is_judged_by_the_pathname_it_renders(roles):
    dash_app, clients = roles
    pages = _pages()
    assert "/status" in pages and "/wall" in pages
    for role, client in clients.items():
        for page in pages:
            answer = client.post("/_dash-update-component", json=_router(dash_app, page))
            expected = 200 if role_allows_page(role, page) else 403
            assert answer.status_code == expected, (role, page, answer.get_data(as_text=True)[:200])


def test_swapped_router_inputs_are_refused_for_every_role_and_page(roles, caplog):
    dash_app, clients = roles
    caplog.set_level(logging.INFO)
    for role, client in clients.items():
        for page in _pages():
            body = _router(dash_app, "/", page)  # search set to the page, pathname to "/"
            body["inputs"].reverse()  # Dash passes by position: the page would be rendered
            answer = client.post("/_dash-update-component", json=body)
            assert answer.status_code == 400, (role, page)
            assert answer.get_data(as_text=True) == "Неверный запрос."
    # nothing was rendered, so nothing of the region reached the log
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Смоленск" not in logged and "Traceback" not in logged


def test_wrapped_and_reordered_outputs_and_foreign_parts_are_refused(roles):
    dash_app, clients = roles
    for key in [*_server_callbacks(dash_app), ROUTER]:
        good = callback_body(dash_app.callback_map, key, {})
        variants = []
        wrapped = copy.deepcopy(good)
        wrapped["outputs"] = [[o] for o in good["outputs"]] if isinstance(good["outputs"], list) else [good["outputs"]]
        variants.append(wrapped)
        if isinstance(good["outputs"], list) and len(good["outputs"]) > 1:
            reordered = copy.deepcopy(good)
            reordered["outputs"].reverse()
            variants.append(reordered)
        renamed = copy.deepcopy(good)
        renamed["inputs"][0]["id"] = "_pages_location"
        renamed["inputs"][0]["property"] = "search" if good["inputs"][0]["property"] != "search" else "pathname"
        variants.append(renamed)
        extra_input = copy.deepcopy(good)
        extra_input["inputs"].append({"id": "_pages_location", "property": "pathname", "value": "/status"})
        variants.append(extra_input)
        extra_key = copy.deepcopy(good)
        extra_key["sql"] = "SELECT 1"
        variants.append(extra_key)
        foreign_trigger = copy.deepcopy(good)
        foreign_trigger["changedPropIds"] = ["heatmap-secret.value"]
        variants.append(foreign_trigger)
        for body in variants:
            for role, client in clients.items():
                answer = client.post("/_dash-update-component", json=body)
                assert answer.status_code == 400, (role, key, body)


def test_malformed_bodies_get_a_clear_refusal_not_a_server_error(roles):
    _, clients = roles
    client = clients["curator"]
    for body in ([], "x", {"output": 5}, {"output": "nothing.here"}, {"output": "navbar-status.children"},
                 {"output": "navbar-status.children", "outputs": {"id": "navbar-status", "property": "children"},
                  "inputs": "/"}):
        answer = client.post("/_dash-update-component", json=body)
        assert answer.status_code == 400, body
    assert client.post("/_dash-update-component", data="{not json",
                       content_type="application/json").status_code == 400


def test_each_role_runs_exactly_the_callbacks_of_its_pages(roles):
    dash_app, clients = roles
    pages = {p["module"]: p.get("path_template") or p["path"] for p in dash.page_registry.values()}
    wall_shell = {"navbar-status.children", "navbar-user.children", "pack-area.style"}
    for key in _server_callbacks(dash_app):
        module = dash_app.callback_map[key]["callback"].__module__
        page = pages.get(module)
        body = callback_body(dash_app.callback_map, key, {})
        for role, client in clients.items():
            status = client.post("/_dash-update-component", json=body).status_code
            allowed = (role != "wall" or key in wall_shell) if page is None else role_allows_page(role, page)
            # an allowed call reaches the callback (which may refuse empty values itself with a message)
            assert (status != 403) == allowed, (role, key, status)
            assert status in (200, 204, 403), (role, key, status)
