'use strict';
/**
 * Part upgrade: `ganeti-os upgrade` on a debian-template definition, against writing the same
 * definition anew (`ganeti-os new`). Three cases, each on a fresh copy per run:
 *  - legacy: the definition as ganeti-os wrote it at the fixtures' commit (hashes only), untouched;
 *  - merge: a definition with a recorded base whose template output changed in 4 files, 2 of
 *    them also edited by the admin (two three-way merges, two replacements, a backup);
 *  - dry run of the merge case (renders the unified diff).
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('../lib');

const FIXTURE = path.join(lib.ROOT, 'test', 'fixtures', 'upgrade', 'debian', 'debianos');

/** Make `rel` look written by an older template (as test/helpers/upgrade.ts `age` does). */
function age(dir, rel, edit) {
  const abs = path.join(dir, rel);
  const lines = fs.readFileSync(abs, 'utf8').split('\n');
  lines[1] = `# ${rel}: line 2 of an older template`;
  const old = lines.join('\n');
  fs.writeFileSync(abs, old + (edit ? '# admin edit\n' : ''));
  const file = path.join(dir, '.ganeti-os.json');
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  p.files[rel].sha256 = crypto.createHash('sha256').update(old).digest('hex');
  p.base[rel] = old;
  fs.writeFileSync(file, JSON.stringify(p, null, 2) + '\n');
}

async function runUpgrade(ctx) {
  const o = ctx.opts;
  if (!lib.cliCommands().has('upgrade')) return { rows: [{ part: 'upgrade', item: 'ganeti-os upgrade', unavailable: 'no upgrade command on this branch' }], details: {} };
  if (!fs.existsSync(FIXTURE)) return { rows: [{ part: 'upgrade', item: 'ganeti-os upgrade', unavailable: 'no debian fixture (test/fixtures/upgrade)' }], details: {} };
  const work = lib.tempDir('upgrade');
  const env = { ...process.env, CI: '1' };
  delete env.NODE_OPTIONS;
  const cli = (args, allowFail) => lib.run(process.execPath, [lib.CLI, ...args], { env, allowFail }).seconds;
  const recorded = path.join(work, 'recorded', 'debianos');
  fs.cpSync(FIXTURE, recorded, { recursive: true });
  cli(['upgrade', '--os-dir', recorded]);
  const prepare = (kind, i) => {
    const dir = path.join(work, `${kind}-${i}`, 'debianos');
    fs.cpSync(kind === 'legacy' ? FIXTURE : recorded, dir, { recursive: true });
    if (kind !== 'legacy') {
      age(dir, 'lib/steps.sh', true);
      age(dir, 'create', true);
      age(dir, 'lib/runtime.sh', false);
      age(dir, 'README.md', false);
    }
    return dir;
  };
  const times = { new: [], legacy: [], merge: [], dry: [] };
  const runs = o.defRuns;
  for (let i = 0; i < runs; i++) {
    const parent = path.join(work, `new-${i}`);
    fs.mkdirSync(parent);
    times.new.push(cli(['new', 'debianos', '--yes', '-C', parent]));
    times.legacy.push(cli(['upgrade', '--os-dir', prepare('legacy', i)]));
    const m = prepare('merge', i);
    times.merge.push(cli(['upgrade', '--os-dir', m]));
    if (!fs.readFileSync(path.join(m, 'lib/steps.sh'), 'utf8').includes('# admin edit')) throw new Error('upgrade lost the admin edit');
    times.dry.push(cli(['upgrade', '--dry-run', '--os-dir', prepare('dry', i)]));
  }
  const base = lib.median(times.new);
  const row = (item, xs, note) => ({ part: 'upgrade', item, value: lib.median(xs), unit: 's', baseline: 'ganeti-os new (debian)', baselineValue: base, ratio: lib.ratio(lib.median(xs), base), note });
  return {
    rows: [
      { part: 'upgrade', item: 'ganeti-os new debianos (baseline)', value: base, unit: 's', note: `median of ${runs}` },
      row('upgrade, definition from the fixtures\' commit (hashes only)', times.legacy, 'records the base render'),
      row('upgrade, 4 template changes, 2 merged with admin edits', times.merge, 'backup + one journaled write'),
      row('upgrade --dry-run, same', times.dry, 'unified diff printed'),
    ],
    details: { times },
  };
}

module.exports = { runUpgrade };
