// Builds assets/vendor/plotly/plotly-cur.min.js with the esbuild settings plotly.js itself uses for
// its dist bundles (plotly.js/esbuild-config.js: iife, global `Plotly`, global -> window, es2016),
// plus the licences of everything that went into it. Run through tools/build_plotly_bundle.sh,
// which installs the pinned versions (package-lock.json) first.
'use strict';

const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');

const version = require('plotly.js/package.json').version;
const out = path.resolve(__dirname, '..', '..', 'assets', 'vendor', 'plotly');
const traces = fs.readFileSync(path.join(__dirname, 'entry.js'), 'utf8')
    .match(/lib\/(\w+)'\)/g).map((s) => s.slice(4, -2)).filter((s) => s !== 'core');

const result = esbuild.buildSync({
    entryPoints: [path.join(__dirname, 'entry.js')],
    outfile: path.join(out, 'plotly-cur.min.js'),
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    sourcemap: false,
    metafile: true,
    // registry.js requires maplibre-gl's stylesheet for the tile-map traces, which are not in this
    // bundle (and tiles are not allowed here): drop it instead of shipping 80 KB of unused CSS.
    loader: {'.css': 'empty'},
    legalComments: 'none',  // the licences travel beside the file (LICENSE, THIRD-PARTY-LICENSES.txt)
    define: {global: 'window', 'define.amd': 'false'},
    target: 'es2016',
    banner: {js: `/**\n* plotly.js v${version} (partial bundle for ЦУР Heatmap: ${traces.join(', ')})\n` +
        '* Copyright 2012-2026, Plotly, Inc.\n* All rights reserved.\n* Licensed under the MIT license\n*/'},
    charset: 'utf8',
    logLevel: 'info',
});

// Every npm package with code in the bundle, with its version and licence text.
const packages = new Map();
const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint);
for (const [input, info] of Object.entries(output.inputs)) {
    if (!info.bytesInOutput) continue;  // e.g. the dropped stylesheet
    const m = input.match(/^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//);
    if (m && !packages.has(m[2])) packages.set(m[2], m[1]);
}
const sections = [...packages.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, dir]) => {
    const meta = JSON.parse(fs.readFileSync(path.join(__dirname, dir, 'package.json'), 'utf8'));
    const file = fs.readdirSync(path.join(__dirname, dir)).find((f) => /^(licen[cs]e|copying)/i.test(f));
    const text = file ? fs.readFileSync(path.join(__dirname, dir, file), 'utf8').trim()
        : `(no licence file in the package; package.json says: ${meta.license})`;
    return `${name} ${meta.version} — ${meta.license}\n\n${text}\n`;
});
fs.writeFileSync(path.join(out, 'THIRD-PARTY-LICENSES.txt'),
    `Packages bundled into plotly-cur.min.js (plotly.js ${version})\n\n` + sections.join('\n' + '='.repeat(72) + '\n\n'));
fs.copyFileSync(require.resolve('plotly.js/LICENSE'), path.join(out, 'LICENSE'));
console.log(`${packages.size} packages; licences in ${path.relative(process.cwd(), out)}`);
