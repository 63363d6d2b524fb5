#!/usr/bin/env node
'use strict';
/**
 * The fault sweep (`npm run test:faults`): every maintenance command, with one filesystem call
 * failing or the process SIGKILLed just before it, for every call it makes (test/faults/preload.js).
 * After each run and one more command (which rolls back or finishes what was left), the
 * definition must be exactly as before or exactly as after an undisturbed run, a failure must
 * exit 1 naming the errno (never 70), and nothing may be left beside it (staged files, partial
 * backups, journals).
 *
 *   npm run test:faults                       every command, classes and actions; a stride keeps it to minutes
 *   npm run test:faults -- --full             every call (no stride)
 *   npm run test:faults -- --commands add-variant,upgrade --actions kill
 *
 * Prints one line per command and fault class, then the violations; exit 1 when there is one.
 */
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const BIN = path.join(REPO, 'bin', 'ganeti-os.js');
const PRELOAD = path.join(__dirname, 'preload.js');
const CLASSES = ['write', 'rename', 'fsync', 'unlink', 'mkdir', 'read'];

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  return args[i].includes('=') ? args[i].split('=')[1] : args[i + 1];
};
const full = args.includes('--full');
const actions = (opt('actions') ?? 'kill,EIO,ENOSPC').split(',');
const onlyCommands = opt('commands')?.split(',');

function cli(argv, cwd, env = {}) {
  const r = spawnSync(process.execPath, [BIN, ...argv], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1', ...env }, timeout: 60_000 });
  return { code: r.status, signal: r.signal, stderr: r.stderr ?? '' };
}

function must(r, what) {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}`);
}

/** Every entry below `root` (its .ganeti-os/ state dir apart) with type, mode and hash. */
function tree(root) {
  const out = [];
  const walk = (rel) => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(root, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${r} link ${fs.readlinkSync(path.join(root, r))}`);
      else if (st.isDirectory()) {
        out.push(`${r} dir ${mode}`);
        walk(r);
      } else out.push(`${r} ${mode} ${crypto.createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}
const state = (root) => tree(root).filter((l) => !l.startsWith('.ganeti-os/') && !l.startsWith('.ganeti-os ')).join('\n');

/** Make `rel` look written by an older template (so upgrade has a file to replace and back up). */
function age(dir, rel) {
  const abs = path.join(dir, rel);
  const old = fs.readFileSync(abs, 'utf8').replace(/^[^\n]*/, '# an older title');
  fs.writeFileSync(abs, old);
  const recFile = path.join(dir, '.ganeti-os.json');
  const rec = JSON.parse(fs.readFileSync(recFile, 'utf8'));
  rec.files[rel].sha256 = crypto.createHash('sha256').update(old).digest('hex');
  if (rec.base) rec.base[rel] = old;
  fs.writeFileSync(recFile, JSON.stringify(rec, null, 2) + '\n');
}

/** The commands swept, each on a fresh definition made by `prepare`. */
const COMMANDS = [
  { name: 'add-variant', argv: ['add-variant', 'bookworm'] },
  { name: 'remove-variant', argv: ['remove-variant', 'extra'], prepare: (d, w) => must(cli(['add-variant', 'extra', '--os-dir', d], w), 'prepare') },
  { name: 'add-param', argv: ['add-param', 'size', 'Root size', '--default', '10G'] },
  { name: 'remove-param', argv: ['remove-param', 'keep'], prepare: (d, w) => must(cli(['add-param', 'keep', 'Kept', '--os-dir', d], w), 'prepare') },
  { name: 'bump-api', argv: ['bump-api', '15', '--force'] },
  { name: 'upgrade', argv: ['upgrade'], prepare: (d) => age(d, 'README.md') },
];
/** Run after each fault: changes nothing itself, but rolls back or finishes what was left. */
const SETTLE = ['add-variant', 'default'];

const violations = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ganeti-os-faults-'));
try {
  for (const c of COMMANDS.filter((x) => !onlyCommands || onlyCommands.includes(x.name))) {
    const base = path.join(work, c.name);
    fs.mkdirSync(base);
    must(cli(['new', 'os', '--template', 'blank', '--api', '20,15,10', '--yes'], base), 'new');
    const pristine = path.join(base, 'os');
    c.prepare?.(pristine, base);
    const copy = (to) => {
      fs.rmSync(path.join(base, to), { recursive: true, force: true });
      fs.mkdirSync(path.join(base, to));
      fs.cpSync(pristine, path.join(base, to, 'os'), { recursive: true });
      return path.join(base, to, 'os');
    };
    const settle = (d) => cli([...SETTLE, '--os-dir', d], base);
    // References: as before and as after, each with the settling command run on it.
    const b = copy('before');
    must(settle(b), 'settle before');
    const before = state(b);
    const a = copy('after');
    const countsFile = path.join(base, 'counts.json');
    const scope = path.join(base, 'after');
    must(cli([...c.argv, '--os-dir', a], base, { NODE_OPTIONS: `--require ${PRELOAD}`, GANETI_OS_FAULT_SCOPE: scope, GANETI_OS_FAULT_COUNTS: countsFile }), c.name);
    must(settle(a), 'settle after');
    const after = state(a);
    const counts = JSON.parse(fs.readFileSync(countsFile, 'utf8'));
    for (const cls of CLASSES) {
      const total = counts[cls];
      if (!total) continue;
      const stride = full ? 1 : Math.max(1, Math.ceil(total / 8));
      for (const action of actions) {
        let runs = 0;
        let bad = 0;
        for (let n = 1; n <= total; n += stride) {
          const d = copy('run');
          const r = cli([...c.argv, '--os-dir', d], base, {
            NODE_OPTIONS: `--require ${PRELOAD}`,
            GANETI_OS_FAULT_SCOPE: path.join(base, 'run'),
            GANETI_OS_FAULT: `${cls}:${n}:${action}`,
          });
          runs++;
          const where = `${c.name} ${cls}:${n}:${action}`;
          const fail = (why) => {
            bad++;
            violations.push(`${where}: ${why}`);
          };
          if (action !== 'kill' && r.signal === null && r.code !== 0 && r.code !== 1) fail(`exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
          if (action !== 'kill' && r.code === 1 && !r.stderr.includes(action)) fail(`exit 1 without naming ${action}: ${r.stderr.trim().split('\n')[0]}`);
          const s = settle(d);
          if (s.code !== 0) {
            fail(`the next command failed (${s.code}): ${s.stderr.trim().split('\n').slice(-2).join(' | ')}`);
            continue;
          }
          const got = state(d);
          if (got !== before && got !== after) fail('the definition is neither as before nor as after');
          if (action !== 'kill' && r.code === 1 && got !== before) fail('exit 1, but the definition changed');
          const left = tree(d).filter((l) => /\.ganeti-os-(new|old)|\.partial-|\.journal|\.lock|\.tmp/.test(l.split(' ')[0]));
          if (left.length) fail(`left behind: ${left.map((l) => l.split(' ')[0]).join(', ')}`);
          const backups = path.join(d, '.ganeti-os', 'backups');
          if (got === before && fs.existsSync(backups) && fs.readdirSync(backups).length) fail('a backup of a change that did not happen');
        }
        console.log(`${c.name.padEnd(15)} ${cls.padEnd(7)} ${action.padEnd(7)} ${String(runs).padStart(3)} runs of ${String(total).padStart(3)} calls  ${bad ? `${bad} VIOLATIONS` : 'ok'}`);
      }
    }
    fs.rmSync(base, { recursive: true, force: true });
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
if (violations.length) {
  console.log(`\n${violations.length} violations:`);
  for (const v of violations) console.log(`  ${v}`);
  process.exitCode = 1;
} else {
  console.log('\nno violations');
}
