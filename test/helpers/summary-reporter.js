'use strict';
/**
 * The end of a run: one list of what was skipped and why (the blocks describeSystem skipped,
 * grouped by reason, with how many tests each holds), then a last line in the plain form CI
 * reads ("jest: N passed, N failed, N skipped").
 *
 * describeSystem (test/helpers/system.ts) appends one JSON line per skipped block to the file
 * named by GANETI_OS_SKIP_LOG, which this reporter sets before any test file runs (jest's
 * workers inherit it) and removes at the end.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

class SummaryReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ganeti-os-jest-'));
    this.log = path.join(this.dir, 'skipped.jsonl');
    process.env.GANETI_OS_SKIP_LOG = this.log;
  }

  /** The recorded blocks: [{file, block, reason}], each once. */
  readSkips() {
    let text = '';
    try {
      text = fs.readFileSync(this.log, 'utf8');
    } catch {
      return [];
    }
    const seen = new Set();
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || seen.has(line)) continue;
      seen.add(line);
      try {
        out.push(JSON.parse(line));
      } catch {
        // a line cut short by a killed worker
      }
    }
    return out;
  }

  onRunComplete(_contexts, results) {
    const skips = this.readSkips();
    fs.rmSync(this.dir, { recursive: true, force: true });
    const rel = (f) => (f ? path.relative(this.rootDir, f) : '?');
    // Skipped tests per file and top-level block, from jest's own results.
    const pending = new Map();
    let otherSkipped = 0;
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status !== 'pending' && t.status !== 'todo' && t.status !== 'skipped') continue;
        const key = `${file.testFilePath}\0${t.ancestorTitles[0] ?? ''}`;
        pending.set(key, (pending.get(key) ?? 0) + 1);
      }
    }
    const byReason = new Map();
    for (const s of skips) {
      const key = `${s.file}\0${s.block}`;
      const n = pending.get(key) ?? 0;
      pending.delete(key);
      if (!byReason.has(s.reason)) byReason.set(s.reason, []);
      byReason.get(s.reason).push({ ...s, tests: n });
    }
    for (const n of pending.values()) otherSkipped += n;

    const lines = [];
    if (byReason.size || otherSkipped) {
      lines.push('', 'Skipped on this machine (set it up as .ci/run does; GANETI_OS_SYSTEM_TESTS=required makes these fail instead):');
      for (const [reason, blocks] of [...byReason].sort((a, b) => a[0].localeCompare(b[0]))) {
        const tests = blocks.reduce((a, b) => a + b.tests, 0);
        lines.push(`  ${reason}: ${blocks.length} block${blocks.length === 1 ? '' : 's'}, ${tests} test${tests === 1 ? '' : 's'}`);
        for (const b of blocks.sort((x, y) => rel(x.file).localeCompare(rel(y.file)) || x.block.localeCompare(y.block))) {
          lines.push(`    ${rel(b.file)}: ${b.block} (${b.tests})`);
        }
      }
      if (otherSkipped) lines.push(`  not run for other reasons (it.skip, todo, a -t filter): ${otherSkipped}`);
    }
    const skipped = results.numPendingTests + results.numTodoTests;
    lines.push(`jest: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped`);
    process.stdout.write(lines.join('\n') + '\n');
  }
}

module.exports = SummaryReporter;
