#!/usr/bin/env node
'use strict';
/**
 * Regenerate templates/history/<release>.json: the templates of a ganeti-os release that did
 * not record template versions or base renders in the definitions it wrote (the 2026-11-25
 * release), read from git history. `upgrade` rebuilds that release's render of a definition
 * from it (src/definition/upgrade-release.ts), so its three-way merge has a base.
 *
 * Only what that release rendered from is kept: each template's manifest (template.json) and
 * the sources its files name (static files such as lib/steps.sh, and the .hbs sources), as the
 * commit has them. Nothing is written by hand.
 *
 *     node scripts/release-bases.js          (rewrite the data files)
 *     node scripts/release-bases.js --check  (exit 1 if a data file differs from git history)
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT_DIR = path.join(ROOT, 'templates', 'history');

/** The releases without recorded template versions: the last commit of the 2026-11-25 wave. */
const RELEASES = [{ release: '2026-11-25', commit: 'a882e4dfa3f85a2165e535bc6a7ade5522dea961' }];

const git = (...args) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

function releaseData({ release, commit }) {
  const full = git('rev-parse', '--verify', `${commit}^{commit}`).trim();
  const templates = {};
  const names = git('ls-tree', '--name-only', `${full}:templates`).split('\n').filter(Boolean).sort();
  for (const name of names) {
    let manifestText;
    try {
      manifestText = git('show', `${full}:templates/${name}/template.json`);
    } catch {
      continue;
    }
    const manifest = JSON.parse(manifestText);
    const sources = {};
    for (const f of manifest.files) if (f.source) sources[f.source] = git('show', `${full}:templates/${name}/${f.source}`);
    templates[name] = { manifest, sources };
  }
  return { release, commit: full, templates };
}

function main() {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const r of RELEASES) {
    const file = path.join(OUT_DIR, `${r.release}.json`);
    const text = JSON.stringify(releaseData(r), null, 1) + '\n';
    if (check) {
      let have = '';
      try {
        have = fs.readFileSync(file, 'utf8');
      } catch {
        // missing: stale
      }
      if (have !== text) {
        console.error(`${path.relative(ROOT, file)} is not what git history holds: run node scripts/release-bases.js`);
        stale++;
      }
      continue;
    }
    fs.mkdirSync(OUT_DIR, { recursive: true });
    fs.writeFileSync(file, text);
    console.log(`wrote ${path.relative(ROOT, file)}`);
  }
  process.exitCode = stale ? 1 : 0;
}

main();
