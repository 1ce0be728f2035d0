/* Chart export: an «SVG» button beside Plotly's PNG camera on every chart, and both downloads named
 * after the figure (layout.meta.export_filename, set by charts.figures.mark_export).
 *
 * Dash's graph config is JSON, so a click handler cannot come from Python. dcc.Graph loads plotly.js
 * asynchronously and then calls the global Plotly.react; plotly.js ends with `window.Plotly = Plotly`,
 * so a setter on window.Plotly wraps react/newPlot before the first chart is drawn.
 */
(function () {
  "use strict";
  var MARK = "__curExportPatched";
  var svgButton = null;

  function exportName(layout) {
    var meta = layout && layout.meta;
    return meta && typeof meta === "object" && meta.export_filename ? String(meta.export_filename) : null;
  }

  function imageOptions(gd, format) {
    var context = gd._context || {};
    var options = Object.assign({}, context.toImageButtonOptions || {});
    options.format = format;
    var name = exportName(gd.layout);
    if (name) options.filename = name;
    return options;
  }

  function button(Plotly) {
    if (!svgButton) {
      svgButton = {
        name: "downloadSvg",
        title: "Сохранить в формате SVG",
        icon: Plotly.Icons.disk,
        click: function (gd) { Plotly.downloadImage(gd, imageOptions(gd, "svg")); }
      };
    }
    return svgButton;
  }

  function withExport(Plotly, config, layout) {
    var out = Object.assign({}, config || {});
    var name = exportName(layout);
    out.toImageButtonOptions = Object.assign({}, out.toImageButtonOptions || {}, name ? {filename: name} : {});
    var extra = (out.modeBarButtonsToAdd || []).filter(function (b) { return !(b && b.name === "downloadSvg"); });
    out.modeBarButtonsToAdd = extra.concat([button(Plotly)]);
    return out;
  }

  function patch(Plotly) {
    if (!Plotly || Plotly[MARK] || typeof Plotly.react !== "function") return;
    ["react", "newPlot"].forEach(function (fn) {
      var original = Plotly[fn];
      Plotly[fn] = function (gd, data, layout, config) {
        if (data && !Array.isArray(data) && typeof data === "object") {  // figure form: react(gd, {data, layout, config})
          var figure = Object.assign({}, data);
          figure.config = withExport(Plotly, figure.config, figure.layout);
          return original.call(this, gd, figure);
        }
        return original.call(this, gd, data, layout, withExport(Plotly, config, layout));
      };
    });
    Plotly[MARK] = true;
  }

  if (window.Plotly) {
    patch(window.Plotly);
  } else {
    var current;
    Object.defineProperty(window, "Plotly", {
      configurable: true,
      enumerable: true,
      get: function () { return current; },
      set: function (value) { current = value; patch(value); }
    });
  }
})();
