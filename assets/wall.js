/* Экран ситуационного центра (/wall): rotation, clock, pause key, watchdog.
 *
 * Loaded on every page (Dash serves all of assets/), it acts only while #wall-root is in the
 * document, so a navigation to /wall without a reload works too. One timer drives everything:
 * a screen left for days must not pile up timers, listeners or DOM nodes. The elements it touches
 * are static in the page layout (React never re-renders them), so classes set here stay.
 *
 * Watchdog: the server's poll answer changes #wall-heartbeat on every refresh. When it has not
 * changed for a while (server restarted, network down, callbacks failing after an update), the
 * screen says so and probes the server; once the server answers, the page reloads. Reloads are
 * spaced out (sessionStorage remembers them), so a server that answers but cannot serve the wall
 * does not cause a reload storm.
 */
(function () {
  "use strict";

  var TICK_MS = 500;
  var STALE_MIN_MS = 10000;       // never call the server lost sooner than this
  var PROBE_FIRST_MS = 3000;
  var PROBE_MAX_MS = 60000;
  var RELOAD_GAP_MS = 30000;      // first gap between watchdog reloads; doubles up to RELOAD_GAP_MAX_MS
  var RELOAD_GAP_MAX_MS = 600000;
  var HISTORY_KEEP = 5;           // undo entries kept in Dash's store (see trimHistory)
  var DESIGN_WIDTH = 1920;        // sizes in the wall's CSS and figures are given for 1920×1080
  var DESIGN_HEIGHT = 1080;

  var state = {
    root: null, index: 0, elapsed: 0, paused: false, last: Date.now(),
    heartbeat: null, build: null, lastOk: Date.now(), offline: false,
    probing: false, nextProbe: 0, probeDelay: PROBE_FIRST_MS,
    clockText: "", dateText: "", titleText: "", staleText: ""
  };

  function seconds(root, name, fallback) {
    var n = parseInt(root.getAttribute(name), 10);
    return n > 0 ? n : fallback;
  }

  function basePath() {
    try {
      var config = JSON.parse(document.getElementById("_dash-config").textContent);
      return config.requests_pathname_prefix || config.url_base_pathname || "/";
    } catch (e) {
      return "/";
    }
  }

  function setText(id, text, key) {
    if (state[key] === text) return;
    var el = document.getElementById(id);
    if (el) { el.textContent = text; state[key] = text; }
  }

  function show(index) {
    var panels = state.root.querySelectorAll(".wall-panel");
    if (!panels.length) return;
    state.index = ((index % panels.length) + panels.length) % panels.length;
    for (var i = 0; i < panels.length; i++) {
      panels[i].classList.toggle("is-active", i === state.index);
    }
    var dots = state.root.querySelectorAll(".wall-dot");
    for (var j = 0; j < dots.length; j++) {
      dots[j].classList.toggle("is-active", j === state.index);
    }
    state.titleText = "";  // force the heading to follow the panel
    setText("wall-panel-title", panels[state.index].getAttribute("data-title") || "", "titleText");
    state.elapsed = 0;
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  /* The shown region's time zone (#wall-timezone, IANA) when the screen shows one region of several:
   * a centre's clock is its region's local time, whatever zone the screen's computer is set to. */
  function zoneOptions() {
    var el = document.getElementById("wall-timezone");
    var zone = el ? el.textContent : "";
    if (!zone) return {};
    try {
      new Intl.DateTimeFormat("ru-RU", { timeZone: zone });
      return { timeZone: zone };
    } catch (e) {
      return {};  // an unknown zone: the screen's own clock rather than none
    }
  }

  function clock(now) {
    var d = new Date(now);
    var zone = zoneOptions();
    var parts = new Intl.DateTimeFormat("ru-RU", Object.assign({ hour: "2-digit", minute: "2-digit",
                                                                 hourCycle: "h23" }, zone)).formatToParts(d);
    var hm = { hour: "", minute: "" };
    parts.forEach(function (p) { if (p.type in hm) hm[p.type] = p.value; });
    setText("wall-clock", pad(parseInt(hm.hour, 10) % 24) + ":" + pad(parseInt(hm.minute, 10)), "clockText");
    setText("wall-date", d.toLocaleDateString("ru-RU", Object.assign({ weekday: "long", day: "numeric",
                                                                      month: "long" }, zone)), "dateText");
  }

  /* «данные устарели: N ч» once the data date (#wall-asof-iso, the region's local time) is older
   * than data-stale-hours by the screen's own clock; checked every tick, so it appears while the
   * server is away too. */
  function staleness(root, now) {
    var iso = document.getElementById("wall-asof-iso");
    var text = "";
    var asOf = iso && iso.textContent ? new Date(iso.textContent).getTime() : NaN;
    if (!isNaN(asOf)) {
      var hours = Math.floor((now - asOf) / 3600000);
      if (hours >= seconds(root, "data-stale-hours", 24)) {
        text = "данные устарели: " + (hours < 72 ? hours + " ч" : Math.floor(hours / 24) + " сут.");
      }
    }
    setText("wall-stale", text, "staleText");
    root.classList.toggle("is-stale", text !== "");
  }

  /* Names wrap, and a box whose text still does not fit (a priority card, the weakest list, the
   * signals table) gets a smaller fit factor (--fit, used by every font size in wall.css) until
   * it does: text on the wall shrinks rather than being cut. New content starts again at 1. */
  var FIT = ".wall-card, .wall-orgs, .wall-signals > div, .wall-map-side, .wall-tile";
  function fitText(root) {
    var boxes = root.querySelectorAll(FIT);
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      var text = box.textContent;
      if (box.getAttribute("data-fit-text") !== text) {
        box.setAttribute("data-fit-text", text);
        box.style.removeProperty("--fit");
      }
      var fit = parseFloat(box.style.getPropertyValue("--fit")) || 1;
      while (fit > 0.55 && (box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1)) {
        fit = Math.round((fit - 0.05) * 100) / 100;
        box.style.setProperty("--fit", String(fit));
      }
    }
    // sibling cards and tiles share the smallest factor: one type size across the panel
    ["wall-card", "wall-tile"].forEach(function (name) {
      var group = root.getElementsByClassName(name);
      var least = 1;
      for (var j = 0; j < group.length; j++) {
        least = Math.min(least, parseFloat(group[j].style.getPropertyValue("--fit")) || 1);
      }
      for (var k = 0; k < group.length; k++) {
        if ((parseFloat(group[k].style.getPropertyValue("--fit")) || 1) !== least) {
          group[k].style.setProperty("--fit", String(least));
        }
      }
    });
  }

  function setOffline(on) {
    if (state.offline === on) return;
    state.offline = on;
    state.root.classList.toggle("is-offline", on);
  }

  function reloadWhenAllowed(now) {
    var store = window.sessionStorage;
    var last = Number(store.getItem("wallReloadAt") || 0);
    var attempts = Number(store.getItem("wallReloadAttempts") || 0);
    var gap = Math.min(RELOAD_GAP_MS * Math.pow(2, attempts), RELOAD_GAP_MAX_MS);
    if (now - last < gap) {
      state.nextProbe = last + gap;
      return;
    }
    store.setItem("wallReloadAt", String(now));
    store.setItem("wallReloadAttempts", String(attempts + 1));
    window.location.reload();
  }

  function probe(now) {
    if (state.probing || now < state.nextProbe) return;
    state.probing = true;
    // the layout route answers only when the Dash app itself is up, not just the web server
    fetch(basePath() + "_dash-layout", { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        state.probing = false;
        if (!response.ok) throw new Error("HTTP " + response.status);
        reloadWhenAllowed(Date.now());
      })
      .catch(function () {
        state.probing = false;
        state.nextProbe = Date.now() + state.probeDelay;
        state.probeDelay = Math.min(state.probeDelay * 2, PROBE_MAX_MS);
      });
  }

  /* The heartbeat is «build:count:time». After an outage, or when the build differs from the one
   * this page was served by (a deploy), the page reloads once the server answers: the server may
   * run other code now, and a fresh page is the one state known to match it. */
  function watchdog(root, now) {
    var beat = document.getElementById("wall-heartbeat");
    var text = beat ? beat.textContent : "";
    if (text && text !== state.heartbeat) {
      var build = text.split(":")[0];
      state.heartbeat = text;
      state.lastOk = now;
      if (state.offline || (state.build && build !== state.build)) {
        reloadWhenAllowed(now);  // the server answers callbacks again: it is safe to reload
        return;
      }
      state.build = build;
      state.probeDelay = PROBE_FIRST_MS;
      state.nextProbe = 0;
      window.sessionStorage.removeItem("wallReloadAttempts");
    }
    var limit = Math.max(3 * seconds(root, "data-refresh", 30) * 1000, STALE_MIN_MS);
    if (now - state.lastOk > limit) {
      setOffline(true);
      probe(now);
    }
  }

  /* Dash records every change of a callback input made in the browser for undo/redo, and a
   * dcc.Interval changes n_intervals on every poll: left for days, that list only grows (and is
   * copied on each poll). The wall has no undo, so all but the last few entries are dropped. */
  function trimHistory() {
    var store = window.store;
    var history = store && store.getState && store.getState().history;
    var past = history && history.past;
    if (past && past.length > HISTORY_KEEP) past.splice(0, past.length - HISTORY_KEEP);
  }

  function tick() {
    var root = document.getElementById("wall-root");
    var now = Date.now();
    var step = now - state.last;
    state.last = now;
    if (!root) {
      if (state.root) { document.documentElement.classList.remove("wall-mode"); state.root = null; }
      return;
    }
    if (root !== state.root) {
      state.root = root;
      state.lastOk = now;
      state.heartbeat = null;
      state.build = null;
      state.offline = false;
      state.clockText = state.dateText = state.titleText = state.staleText = "";
      document.documentElement.classList.add("wall-mode");
      root.classList.toggle("is-paused", state.paused);
      show(0);
    }
    clock(now);
    staleness(root, now);
    fitText(root);
    watchdog(root, now);
    trimHistory();
    if (!state.paused) {
      state.elapsed += step;
      var period = seconds(root, "data-rotate", 20) * 1000;
      if (state.elapsed >= period) show(state.index + 1);
      root.style.setProperty("--wall-progress", String(Math.min(state.elapsed / period, 1)));
    }
  }

  function onKey(event) {
    if (!state.root || event.repeat) return;
    // event.code is the physical key: P works on the Russian layout (where it types «з») too
    if (event.code === "Space" || event.code === "KeyP") {
      event.preventDefault();
      state.paused = !state.paused;
      state.root.classList.toggle("is-paused", state.paused);
    } else if (event.code === "ArrowRight" || event.code === "ArrowLeft") {
      show(state.index + (event.code === "ArrowRight" ? 1 : -1));
    }
  }

  /* Plotly's font sizes are pixels: the map figure arrives sized for 1920×1080 and is scaled to
   * the screen here, once per data change (the HTML around it scales through CSS units). */
  function scaleFigure(figure) {
    if (!figure) return window.dash_clientside.no_update;
    var s = Math.min(window.innerWidth / DESIGN_WIDTH, window.innerHeight / DESIGN_HEIGHT) || 1;
    var layout = Object.assign({}, figure.layout);
    layout.font = Object.assign({}, layout.font, { size: ((layout.font || {}).size || 20) * s });
    var data = (figure.data || []).map(function (trace) {
      if (trace.textfont && trace.textfont.size) {  // the unit names: one size per unit
        var sizes = trace.textfont.size;
        trace = Object.assign({}, trace, { textfont: Object.assign({}, trace.textfont, {
          size: Array.isArray(sizes) ? sizes.map(function (v) { return v * s; }) : sizes * s }) });
      }
      if (!trace.colorbar) return trace;
      var bar = Object.assign({}, trace.colorbar);
      bar.thickness = (bar.thickness || 24) * s;
      bar.tickfont = Object.assign({}, bar.tickfont, { size: ((bar.tickfont || {}).size || 20) * s });
      return Object.assign({}, trace, { colorbar: bar });
    });
    return Object.assign({}, figure, { layout: layout, data: data });
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, { wall: { scaleFigure: scaleFigure } });
  document.addEventListener("keydown", onKey);
  window.setInterval(tick, TICK_MS);
})();
