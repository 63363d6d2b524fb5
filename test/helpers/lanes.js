'use strict';
/**
 * The two lanes of the test suite (jest projects, see jest.config.js), decided by what a file
 * needs rather than by a list kept by hand:
 *   unit   — no root, no Debian packages: runs in parallel, in seconds, as any user;
 *   system — a file that calls describeSystem or describeReleases (test/helpers/system.ts)
 *            needs root, Ganeti or Debian tools somewhere: its files run one at a time (they share loop devices,
 *            Ganeti's directories and caches), after the unit lane.
 * A new test file lands in the right lane by itself.
 */
const fs = require('node:fs');
const path = require('node:path');

const TEST_DIR = path.join(__dirname, '..');

function testFiles(dir = TEST_DIR) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'fixtures' && e.name !== '__snapshots__') out.push(...testFiles(p));
    } else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

/**
 * True when the file (a path) asks for root, Ganeti or Debian tools: it calls describeSystem or
 * describeReleases, or imports anything else of test/helpers/system.ts (its gates and matrix).
 */
function isSystemFile(file) {
  const text = fs.readFileSync(file, 'utf8');
  return /\bdescribe(System|Releases)\b/.test(text) || /from '\.\/helpers\/system'/.test(text);
}

/** { unit: [...paths], system: [...paths] } of every test file below test/. */
function lanes() {
  const unit = [];
  const system = [];
  for (const f of testFiles()) (isSystemFile(f) ? system : unit).push(f);
  return { unit, system };
}

module.exports = { lanes, isSystemFile, TEST_DIR };
