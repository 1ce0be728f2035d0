"""Static images of Plotly figures through kaleido and the system Chromium, one browser per process.

kaleido 1.5 finds ``/usr/bin/chromium`` itself (``BROWSER_PATH`` overrides it). Starting a browser
costs ~2 s, so the first call starts kaleido's sync server and every later image reuses that
browser (~0.2–0.5 s an image): a meeting pack renders all its charts in one session, and the
dashboard's pack button reuses the same browser for every request of the worker.

Offline: the page kaleido renders in gets plotly.js from the plotly package, no MathJax (its default
is a CDN address), the Russian locale from assets/locale, and maps read world_110m.json from
assets/topojson through a file:// URL.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TOPOJSON_URL = (ASSETS / "topojson").as_uri() + "/"
_lock = threading.Lock()  # kaleido's sync server answers one caller at a time
_started = False


def _locale_script() -> Path:
    """A script registering plotly.js's Russian locale and making it the default (kaleido ignores a
    figure's config). ASCII-escaped: the page loads scripts without a declared charset."""
    locale = json.loads((ASSETS / "locale" / "plotly_ru.json").read_text(encoding="utf-8"))
    folder = Path(tempfile.mkdtemp(prefix="cur-kaleido-"))
    script = folder / "plotly_locale_ru.js"
    script.write_text(f"Plotly.register({json.dumps(locale, ensure_ascii=True)});\n"
                      "Plotly.setPlotConfig({locale: 'ru'});\n", encoding="ascii")
    return script


def _ensure_server() -> None:
    global _started
    if _started:
        return
    import kaleido
    import plotly.io as pio

    pio.defaults.topojson = TOPOJSON_URL  # also for fig.write_image elsewhere in the process
    page = kaleido.PageGenerator(mathjax=False, others=[str(_locale_script())])
    kaleido.start_sync_server(page_generator=page, silence_warnings=True)
    _started = True


def render(figures: Sequence[go.Figure | dict], width: int = 1600, height: int = 900, scale: float = 2,
           fmt: str = "png") -> list[bytes]:
    """Images of the figures, in order, at ``width`` × ``height`` layout pixels times ``scale``."""
    import kaleido

    out = []
    with _lock:
        _ensure_server()
        for fig in figures:
            opts = {"format": fmt, "width": width, "height": height, "scale": scale}
            out.append(kaleido.calc_fig_sync(fig, opts=opts, topojson=TOPOJSON_URL))
    return out


def stop() -> None:
    """Close the browser (a command-line run does it at exit anyway)."""
    global _started
    import kaleido

    with _lock:
        if _started:
            kaleido.stop_sync_server(silence_warnings=True)
            _started = False
