#!/bin/sh
# Rebuilds assets/vendor/plotly/ (the dashboard's partial plotly.js and its licences) from the pinned
# npm packages in tools/plotly_bundle/package-lock.json. Needs node >= 20 and the npm registry only.
# Same lock file, same output: compare `sha256sum assets/vendor/plotly/plotly-cur.min.js` with the README.
set -eu
cd "$(dirname "$0")/plotly_bundle"
# --ignore-scripts: nothing from the registry runs here; esbuild's binary comes as @esbuild/<platform>
npm ci --ignore-scripts --no-audit --no-fund
node build.js
sha256sum ../../assets/vendor/plotly/plotly-cur.min.js
