#!/usr/bin/env node
// Builds the web companion's vendor assets from the Node packages pinned in
// package-lock.json:
//
//   web/assets/harmony.scss  ->  web/static/vendor/harmony.css  (Dart Sass, compressed)
//   govuk-frontend's govuk-frontend.min.js  ->  web/static/vendor/govuk-frontend.min.js
//                                              (without its source-map comment)
//   govuk-frontend's MIT licence  ->  web/static/vendor/GOVUK-FRONTEND-LICENSE.txt
//
// The outputs are COMMITTED: people who install or run Harmony need no Node at all.
// Whoever changes web/assets/ or the pinned versions runs `npm ci` then
// `node scripts/build_assets.mjs` (or `npm run build`) and commits the result;
// tests/browser/test_assets.py rebuilds into a temporary folder and fails if the
// committed files differ by a single byte.
//
// Usage: node scripts/build_assets.mjs [--out DIR]   (default DIR: web/static/vendor)
//
// The output is deterministic: no source map, no timestamps, nothing taken from the
// machine but the pinned packages.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import * as sass from "sass";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NODE_MODULES = join(ROOT, "node_modules");
const GOVUK = join(NODE_MODULES, "govuk-frontend");

// The npm package of govuk-frontend ships no licence file (its package.json says
// "license": "MIT"), so this is LICENSE.txt of github.com/alphagov/govuk-frontend.
const GOVUK_LICENSE = `The MIT License (MIT)

Copyright (C) 2017 Crown Copyright (Government Digital Service)

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`;

function fail(message) {
  console.error(`build_assets: ${message}`);
  process.exit(1);
}

function govukPackage() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(GOVUK, "package.json"), "utf8"));
  } catch {
    fail("node_modules/govuk-frontend is missing: run `npm ci --no-audit --no-fund` first");
  }
  // The licence text above is only right while the package says MIT.
  if (manifest.license !== "MIT") {
    fail(`govuk-frontend ${manifest.version} is no longer MIT ("${manifest.license}"): check its licence`);
  }
  return manifest;
}

function buildCss(govukVersion) {
  const result = sass.compile(join(ROOT, "web", "assets", "harmony.scss"), {
    style: "compressed",
    sourceMap: false,
    loadPaths: [NODE_MODULES],
    // GOV.UK Frontend's own deprecation notices are theirs to fix, not ours.
    quietDeps: true,
    // Sass would mark the (non-ASCII) output with a byte-order mark, which must be the
    // file's very first bytes; our banner comes first, so the encoding is declared by
    // an @charset rule instead (which must itself open the file).
    charset: false,
  });
  const banner =
    `@charset "UTF-8";\n` +
    `/* Harmony's stylesheet: built by scripts/build_assets.mjs from web/assets/harmony.scss, ` +
    `with GOV.UK Frontend ${govukVersion} (MIT; see GOVUK-FRONTEND-LICENSE.txt). ` +
    `Do not edit: change the Sass and rebuild. */\n`;
  return banner + result.css + "\n";
}

// GOV.UK Frontend's script as published, less the last line's pointer to a source map we
// do not ship (browsers' developer tools would ask the companion for it in vain).
function govukScript() {
  const script = readFileSync(join(GOVUK, "dist", "govuk", "govuk-frontend.min.js"), "utf8");
  return script.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, "\n");
}

function main() {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const out = resolve(values.out ?? join(ROOT, "web", "static", "vendor"));
  const manifest = govukPackage();
  mkdirSync(out, { recursive: true });

  const css = buildCss(manifest.version);
  writeFileSync(join(out, "harmony.css"), css);
  writeFileSync(join(out, "govuk-frontend.min.js"), govukScript());
  writeFileSync(
    join(out, "GOVUK-FRONTEND-LICENSE.txt"),
    `GOV.UK Frontend ${manifest.version} (https://github.com/alphagov/govuk-frontend),\n` +
      `used in harmony.css and govuk-frontend.min.js, is under this licence:\n\n` +
      GOVUK_LICENSE,
  );
  console.log(`build_assets: wrote harmony.css (${Buffer.byteLength(css)} bytes), govuk-frontend.min.js and GOVUK-FRONTEND-LICENSE.txt to ${out}`);
}

main();
