"""The browser gets the project's partial plotly.js (assets/vendor/plotly), never Dash's full bundle,
and every trace type the figure builders produce is in it and draws; dropdowns speak Russian."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs_version

from tests.conftest import console_errors, wait_js

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "assets" / "vendor" / "plotly" / "plotly-cur.min.js"
ENTRY = ROOT / "tools" / "plotly_bundle" / "entry.js"
DASH_PLOTLY = "/_dash-component-suites/plotly/"  # where dcc.Graph fetches its own bundle from


def _builder_trace_types() -> set[str]:
    """Trace types charts/figures.py constructs, read from its source: plain figure data
    (``{"type": "choropleth", ...}``, keeping the literals that name a Plotly trace type) and graph
    objects (go.Scatter → "scatter")."""
    from plotly.basedatatypes import BaseTraceType

    source = (ROOT / "charts" / "figures.py").read_text(encoding="utf-8")
    known = {getattr(go, n)().type for n in dir(go)
             if isinstance(getattr(go, n), type) and issubclass(getattr(go, n), BaseTraceType)}
    traces = set(re.findall(r'"type":\s*"(\w+)"', source)) & known
    tree = ast.parse(source)
    names = {node.func.attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "go"}
    return traces | {getattr(go, n)().type for n in names if n != "Figure" and hasattr(getattr(go, n)(), "type")}


def test_bundle_is_the_plotly_version_dash_would_load_and_registers_every_builder_trace() -> None:
    header = BUNDLE.read_text(encoding="utf-8")[:400]
    assert f"plotly.js v{get_plotlyjs_version()} " in header
    registered = set(re.findall(r"require\('plotly\.js/lib/(\w+)'\)", ENTRY.read_text(encoding="utf-8"))) - {"core"}
    traces = _builder_trace_types()
    assert {"choropleth", "heatmap", "bar", "scatter", "scattergeo"} <= traces  # the parser sees the builders
    missing = traces - registered
    assert not missing, f"trace types missing from tools/plotly_bundle/entry.js (rebuild the bundle): {missing}"
    listed = re.search(r"partial bundle for ЦУР Heatmap: ([a-z, ]+)\)", header).group(1).split(", ")
    assert set(listed) == registered  # the committed file was built from the committed entry
    assert (BUNDLE.parent / "LICENSE").exists() and (BUNDLE.parent / "THIRD-PARTY-LICENSES.txt").exists()


# what each trace type leaves in the DOM once drawn
DRAWN = {
    "choropleth": ".choroplethlayer path.choroplethlocation",
    "heatmap": ".heatmaplayer image",
    "bar": ".barlayer .point path",
    "scatter": ".scatterlayer .trace path.js-line",
    "scattergeo": ".geolayer .trace.scattergeo text",  # the unit names on maps
}
PAGE_STATE = """return [...document.querySelectorAll('.js-plotly-plot')].filter(g => g._fullData).map(g => ({
    types: g._fullData.filter(t => t.visible !== false).map(t => t.type),
    drawn: Object.fromEntries(Object.entries(arguments[0]).map(([k, css]) => [k, g.querySelectorAll(css).length])),
    modebar: [...g.querySelectorAll('.modebar-btn')].map(b => b.getAttribute('data-title')),
}));"""
SCRIPTS = """return performance.getEntriesByType('resource').filter(e => e.initiatorType === 'script')
    .map(e => new URL(e.name).pathname);"""


@pytest.mark.browser
def test_pages_load_the_partial_bundle_and_draw_every_trace_type(served_app, browser, small_demo: Path) -> None:
    base = served_app(small_demo)
    pages = {"/?period=2025-10&sector=housing": 2, "/rating?period=2025-10": 1, "/kpi": 2}
    seen: set[str] = set()
    for path, graphs in pages.items():
        browser.get(base + path)
        wait_js(browser, f"return document.querySelectorAll('.js-plotly-plot .main-svg').length >= {graphs}"
                         " && [...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullData"
                         " && g._fullData.length)")
        scripts = browser.execute_script(SCRIPTS)
        assert "/assets/vendor/plotly/plotly-cur.min.js" in scripts
        assert not [s for s in scripts if s.startswith(DASH_PLOTLY)], scripts
        assert browser.execute_script("return window.Plotly.version") == get_plotlyjs_version()
        # a map's shapes come from a URL fetched after the figure: wait until every trace has drawn
        # (or the time runs out, and the assertion below says which did not)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
                graph["drawn"].get(t, 0) > 0 for graph in browser.execute_script(PAGE_STATE, DRAWN)
                for t in graph["types"]):
            time.sleep(0.1)
        for graph in browser.execute_script(PAGE_STATE, DRAWN):
            for trace in graph["types"]:
                assert trace in DRAWN, f"{path}: a trace type the test does not know: {trace}"
                assert graph["drawn"][trace] > 0, f"{path}: {trace} is in the figure but not drawn"
                seen.add(trace)
            # Russian modebar (the locale in the graph config) and the SVG button of chart_export.js
            assert "Сохранить в формате PNG" in graph["modebar"] and "Сохранить в формате SVG" in graph["modebar"]
        assert console_errors(browser) == [], path  # a CSP refusal (eval, outside script) would be one
    assert seen == set(DRAWN) == _builder_trace_types()


@pytest.mark.browser
def test_every_dropdowns_search_box_says_poisk(served_app, browser, small_demo: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base = served_app(small_demo)
    checked = 0
    for path in ("/", "/rating", "/kpi", "/problems", "/decisions"):
        browser.get(base + path)
        wait_js(browser, "return document.querySelectorAll('.dash-dropdown').length > 0")
        ids = browser.execute_script("return [...document.querySelectorAll('.dash-dropdown[id]')]"
                                     ".filter(d => d.offsetParent !== null).map(d => d.id)")
        assert ids, path
        for dropdown_id in ids:
            button = browser.find_element(By.ID, dropdown_id)
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", button)
            placeholder = wait_js(browser, "const s = document.querySelector('input.dash-dropdown-search');"
                                           " return s && s.placeholder;")
            assert placeholder == "Поиск", f"{path} #{dropdown_id}: {placeholder!r}"
            browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
            wait_js(browser, "return !document.querySelector('input.dash-dropdown-search')")
            checked += 1
        assert console_errors(browser) == [], path
    assert checked >= 12  # 4 on the map, 3 on the rating, 3 on KPI, 2 on problems, and the decisions page's
