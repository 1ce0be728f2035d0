// The dashboard's plotly.js: the core plus the trace types charts/figures.py draws in the browser.
// Adding a trace type to charts/figures.py means adding it here and rebuilding (tools/build_plotly_bundle.sh).
'use strict';

var Plotly = require('plotly.js/lib/core');

Plotly.register([
    require('plotly.js/lib/scatter'),
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/heatmap'),
    require('plotly.js/lib/choropleth'),
    require('plotly.js/lib/scattergeo'),
]);

module.exports = Plotly;
