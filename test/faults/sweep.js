#!/usr/bin/env node
'use strict';
/**
 * The fault sweep (`npm run test:faults`): every writing command -- new, the maintenance
 * commands, upgrade, pack -- with one filesystem call failing or the process SIGKILLed just
 * before it, for every call it makes (test/faults/preload.js: every write, rename, fsync,
 * unlink, mkdir and read). Each run has a timeout: one that runs out is a hang.
 *
 * After each run and one more command (which rolls back, finishes or removes what was left):
 *  - a maintenance command or upgrade: the definition is exactly as before or exactly as after
 *    an undisturbed run;
 *  - new: no definition directory and nothing in the parent, or a complete definition equal to
 *    an undisturbed new's (the next command: new again, or a maintenance command on it);
 *  - pack: the output directory holds nothing new, or exactly the package an undisturbed pack
 *    makes, and the release record is absent or exactly the undisturbed one; at no point does
 *    the record name a package that is missing or differs (the next command: pack again).
 * A failure must exit 1 naming the errno (never 70 or any other status), change nothing and
 * leave nothing behind (staged files or directories, temporary records, journals); exit 0
 * must mean the full result (else: a lost update).
 *
 *   npm run test:faults                       every command, class and action; at most 8 points a class
 *   npm run test:faults -- --full             every call (no stride)
 *   npm run test:faults -- --commands new,pack --actions kill,EIO --points 3
 *
 * Prints one line per command, class and action, a table per command (trials, mixed states,
 * exit 70s and other statuses, hangs, lost updates, leftovers and other violations), then the
 * violations; exit 1 when there is one.
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
/** Seconds a run may take before it counts as a hang. */
const TIMEOUT_S = 30;

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  return args[i].includes('=') ? args[i].split('=')[1] : args[i + 1];
};
const full = args.includes('--full');
const points = Number(opt('points') ?? 8);
const actions = (opt('actions') ?? 'kill,EIO,ENOSPC').split(',');
const onlyCommands = opt('commands')?.split(',');
const started = Date.now();

/** The CLI in `cwd`; `hang` when it outlived the timeout (then SIGKILLed). */
function cli(argv, cwd, env = {}) {
  const r = spawnSync(process.execPath, [BIN, ...argv], {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1', SOURCE_DATE_EPOCH: '1700000000', ...env },
    timeout: TIMEOUT_S * 1000,
    killSignal: 'SIGKILL',
  });
  const hang = r.error?.code === 'ETIMEDOUT';
  return { code: r.status, signal: hang ? null : r.signal, hang, stderr: r.stderr ?? '' };
}

function must(r, what) {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}`);
}

/** Every entry below `root` (absent: none) with type, mode and hash. */
function tree(root) {
  const out = [];
  if (!fs.existsSync(root)) return out;
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
/** The working files ganeti-os may leave only while it runs. */
const LEFTOVER = /\.ganeti-os-(new|old|stage-|pack-)|\.partial-|\.journal|\.lock|\.tmp|\.json\.old-/;
const isLeftover = (line) => LEFTOVER.test(line.split(' ')[0]);
/** The top-level names of tree() lines. */
const names = (lines) => lines.map((l) => l.split(' ')[0]).filter((n) => !n.includes('/')).join(', ');
/** A definition's content (its .ganeti-os/ state dir and working files apart). */
const state = (root) =>
  tree(root)
    .filter((l) => !l.startsWith('.ganeti-os/') && !l.startsWith('.ganeti-os ') && !isLeftover(l))
    .join('\n');
const leftovers = (root) => tree(root).filter(isLeftover).map((l) => l.split(' ')[0]);

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

const NEW_ARGV = ['new', 'os', '--template', 'blank', '--api', '20,15,10', '--yes'];
/** Run after a maintenance command's fault: changes nothing itself, but rolls back or finishes what was left. */
const SETTLE = ['add-variant', 'default'];

/**
 * The commands swept. `kind` decides the judge; a maintenance command runs on a fresh
 * definition made by `prepare`.
 */
const COMMANDS = [
  { name: 'new', kind: 'new', argv: NEW_ARGV },
  { name: 'add-variant', argv: ['add-variant', 'bookworm'] },
  { name: 'remove-variant', argv: ['remove-variant', 'extra'], prepare: (d, w) => must(cli(['add-variant', 'extra', '--os-dir', d], w), 'prepare') },
  { name: 'add-param', argv: ['add-param', 'size', 'Root size', '--default', '10G'] },
  { name: 'remove-param', argv: ['remove-param', 'keep'], prepare: (d, w) => must(cli(['add-param', 'keep', 'Kept', '--os-dir', d], w), 'prepare') },
  { name: 'bump-api', argv: ['bump-api', '15', '--force'] },
  { name: 'upgrade', argv: ['upgrade'], prepare: (d) => age(d, 'README.md') },
  { name: 'pack', kind: 'pack', argv: ['pack', '--maintainer', 'Sweep <sweep@example.org>'] },
];

/**
 * One command's judge: `setup(base)` makes the references, `trial(dir)` prepares a run in the
 * fresh directory `dir` and returns how to run, settle and judge it.
 */
function maintainJudge(c) {
  let pristine;
  let before;
  let after;
  return {
    setup(base, counted) {
      must(cli(NEW_ARGV, base), 'new');
      pristine = path.join(base, 'os');
      c.prepare?.(pristine, base);
      const settle = (d) => cli([...SETTLE, '--os-dir', d], base);
      const b = copyInto(pristine, path.join(base, 'before'));
      must(settle(b), 'settle before');
      before = state(b);
      const a = copyInto(pristine, path.join(base, 'after'));
      must(counted([...c.argv, '--os-dir', a], base, path.join(base, 'after')), c.name);
      must(settle(a), 'settle after');
      after = state(a);
    },
    trial(dir) {
      const d = copyInto(pristine, dir);
      return {
        argv: [...c.argv, '--os-dir', d],
        cwd: path.dirname(dir),
        settle: () => cli([...SETTLE, '--os-dir', d], path.dirname(dir)),
        now: () => ({}),
        judge(r, v) {
          const got = state(d);
          if (got !== before && got !== after) v.mixed('the definition is neither as before nor as after');
          if (r.code === 1 && got !== before) v.other('exit 1, but the definition changed');
          if (r.code === 0 && got !== after) v.lost('exit 0, but the definition is not as after an undisturbed run');
          const left = leftovers(d);
          if (left.length) v.left(left.join(', '));
          const backups = path.join(d, '.ganeti-os', 'backups');
          if (got === before && fs.existsSync(backups) && fs.readdirSync(backups).length) v.left('a backup of a change that did not happen');
        },
      };
    },
  };
}

function newJudge(c) {
  let after;
  return {
    setup(base, counted) {
      const p = path.join(base, 'after');
      fs.mkdirSync(p);
      must(counted(c.argv, p, p), c.name);
      must(cli([...SETTLE, '--os-dir', path.join(p, 'os')], p), 'settle after');
      after = state(path.join(p, 'os'));
    },
    trial(dir) {
      fs.mkdirSync(dir);
      const d = path.join(dir, 'os');
      return {
        argv: c.argv,
        cwd: dir,
        // new again when there is no definition; else a maintenance command on it.
        settle: () => (fs.existsSync(d) ? cli([...SETTLE, '--os-dir', d], dir) : cli(c.argv, dir)),
        now(r) {
          // Right after the run: the definition is there complete or not at all (checked after the settle).
          const v = { existed: fs.existsSync(d), parent: fs.readdirSync(dir).sort() };
          if (r.code === 1 && v.parent.length) v.failedLeft = v.parent.join(', ');
          return v;
        },
        judge(r, v, early) {
          if (early.failedLeft) v.left(`exit 1, but the parent holds ${early.failedLeft}`);
          if (r.code === 0 && !early.existed) v.lost('exit 0, but no definition');
          const parent = fs.readdirSync(dir).sort();
          const extra = parent.filter((n) => n !== 'os');
          if (extra.length) v.left(`in the parent after the next command: ${extra.join(', ')}`);
          if (!parent.includes('os')) v.other('no definition after the next command');
          else if (state(d) !== after) (early.existed ? v.mixed : v.other)(`the definition differs from an undisturbed new's${early.existed ? '' : ' (made by the next new)'}`);
          const left = leftovers(d);
          if (left.length) v.left(left.join(', '));
        },
      };
    },
  };
}

function packJudge(c) {
  let pristine;
  let before;
  let afterDef;
  let afterOut;
  let record;
  const RECORD = '.ganeti-os-package.json';
  /** The output directory's entries, stages apart (a killed pack's stage goes with the next pack). */
  const outOf = (out) => tree(out).filter((l) => !/^\.ganeti-os-pack-/.test(l.split(' ')[0]));
  return {
    setup(base, counted) {
      must(cli(NEW_ARGV, base), 'new');
      pristine = path.join(base, 'os');
      before = state(pristine);
      const a = copyInto(pristine, path.join(base, 'after'));
      const out = path.join(base, 'after', 'out');
      must(counted([...c.argv, '--os-dir', a, '--output', out], base, path.join(base, 'after')), c.name);
      must(cli([...c.argv, '--os-dir', a, '--output', out], base), 'settle after');
      afterDef = state(a);
      afterOut = tree(out);
      record = JSON.parse(fs.readFileSync(path.join(a, RECORD), 'utf8'));
      if (afterOut.length !== 1) throw new Error(`an undisturbed pack made ${afterOut.join(', ')}`);
    },
    trial(dir) {
      const d = copyInto(pristine, dir);
      const out = path.join(dir, 'out');
      const argv = [...c.argv, '--os-dir', d, '--output', out];
      const deb = `ganeti-os-os_${record.releases[0].version}_all.deb`;
      return {
        argv,
        cwd: path.dirname(dir),
        settle: () => cli(argv, path.dirname(dir)),
        now(r) {
          const v = { problems: [], failed: [] };
          const recText = fs.existsSync(path.join(d, RECORD)) ? fs.readFileSync(path.join(d, RECORD), 'utf8') : undefined;
          const got = outOf(out);
          if (recText !== undefined) {
            if (JSON.stringify(JSON.parse(recText)) !== JSON.stringify(record)) v.problems.push('the record differs from an undisturbed pack\'s');
            // After a kill between its two renames the record is there without its package:
            // the next pack must build exactly that package (judged below). Otherwise a record
            // naming a missing package is a mixed state.
            if (!got.some((l) => l.startsWith(`${deb} `))) {
              if (r.signal === 'SIGKILL' && !got.length) v.pending = true;
              else v.problems.push(`the record names ${deb}, which is missing`);
            }
          } else if (got.length) v.problems.push(`the output directory holds ${names(got)}, a package the definition's record does not know`);
          if (got.length && JSON.stringify(got) !== JSON.stringify(afterOut)) v.problems.push(`the output directory holds ${names(got)}, not the undisturbed package`);
          if (r.code === 1) {
            if (state(d) !== before) v.failed.push('exit 1, but the definition changed (a record)');
            if (tree(out).length) v.failed.push(`exit 1, but ${out} holds ${names(tree(out))}`);
            const left = leftovers(d);
            if (left.length) v.failed.push(`exit 1, but left ${left.join(', ')}`);
          }
          if (r.code === 0 && (state(d) !== afterDef || JSON.stringify(tree(out)) !== JSON.stringify(afterOut))) v.lost = true;
          return v;
        },
        judge(r, v, early) {
          for (const p of early.problems) v.mixed(p);
          for (const p of early.failed) v.other(p);
          if (early.lost) v.lost('exit 0, but the package or the record is not as after an undisturbed pack');
          if (early.pending) v.note('pending');
          if (state(d) !== afterDef) v.mixed('after the next pack, the definition (its record) is not as after an undisturbed pack');
          if (JSON.stringify(outOf(out)) !== JSON.stringify(afterOut)) v.mixed(`after the next pack, ${out} holds ${names(outOf(out))}`);
          const stages = tree(out).filter((l) => !l.split(' ')[0].includes('/') && /^\.ganeti-os-pack-/.test(l));
          if (stages.length) v.left(`after the next pack, in ${out}: ${names(stages)}`);
          const left = leftovers(d);
          if (left.length) v.left(left.join(', '));
        },
      };
    },
  };
}

/** A fresh copy of definition `pristine` as `<to>/os`. */
function copyInto(pristine, to) {
  fs.rmSync(to, { recursive: true, force: true });
  fs.mkdirSync(to, { recursive: true });
  fs.cpSync(pristine, path.join(to, 'os'), { recursive: true });
  return path.join(to, 'os');
}

const violations = [];
const summary = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ganeti-os-faults-'));
try {
  for (const c of COMMANDS.filter((x) => !onlyCommands || onlyCommands.includes(x.name))) {
    const base = path.join(work, c.name);
    fs.mkdirSync(base);
    const judge = (c.kind === 'new' ? newJudge : c.kind === 'pack' ? packJudge : maintainJudge)(c);
    const countsFile = path.join(base, 'counts.json');
    judge.setup(base, (argv, cwd, scope) => cli(argv, cwd, { NODE_OPTIONS: `--require ${PRELOAD}`, GANETI_OS_FAULT_SCOPE: scope, GANETI_OS_FAULT_COUNTS: countsFile }));
    const counts = JSON.parse(fs.readFileSync(countsFile, 'utf8'));
    const tally = { command: c.name, trials: 0, mixed: 0, exit70: 0, hangs: 0, lost: 0, leftovers: 0, other: 0, pending: 0 };
    for (const cls of CLASSES) {
      const total = counts[cls];
      if (!total) continue;
      const stride = full ? 1 : Math.max(1, Math.ceil(total / points));
      for (const action of actions) {
        let runs = 0;
        let bad = 0;
        for (let n = 1; n <= total; n += stride) {
          const dir = path.join(base, 'run');
          fs.rmSync(dir, { recursive: true, force: true });
          const t = judge.trial(dir);
          const r = cli(t.argv, t.cwd, { NODE_OPTIONS: `--require ${PRELOAD}`, GANETI_OS_FAULT_SCOPE: dir, GANETI_OS_FAULT: `${cls}:${n}:${action}` });
          runs++;
          tally.trials++;
          const where = `${c.name} ${cls}:${n}:${action}`;
          let failed = false;
          const count = (key) => (why) => {
            tally[key]++;
            failed = true;
            violations.push(`${where}: ${key === 'other' ? '' : `${key}: `}${why}`);
          };
          const v = { mixed: count('mixed'), lost: count('lost'), left: count('leftovers'), other: count('other'), note: (k) => (k === 'pending' ? tally.pending++ : undefined) };
          if (r.hang) count('hangs')(`no exit within ${TIMEOUT_S} s`);
          else if (r.signal === null && r.code !== 0 && r.code !== 1) count('exit70')(`exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
          else if (r.signal !== null && r.signal !== 'SIGKILL') count('other')(`ended by ${r.signal}`);
          if (action !== 'kill' && r.code === 1 && !r.stderr.includes(action)) count('other')(`exit 1 without naming ${action}: ${r.stderr.trim().split('\n')[0]}`);
          const early = t.now(r);
          const s = t.settle();
          if (s.hang) count('hangs')(`the next command: no exit within ${TIMEOUT_S} s`);
          else if (s.code !== 0) count('other')(`the next command failed (${s.code}): ${s.stderr.trim().split('\n').slice(-2).join(' | ')}`);
          else t.judge(r, v, early);
          if (failed) bad++;
        }
        console.log(`${c.name.padEnd(15)} ${cls.padEnd(7)} ${action.padEnd(7)} ${String(runs).padStart(3)} runs of ${String(total).padStart(3)} calls  ${bad ? `${bad} VIOLATIONS` : 'ok'}`);
      }
    }
    summary.push(tally);
    fs.rmSync(base, { recursive: true, force: true });
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
const cols = ['command', 'trials', 'mixed', 'exit70', 'hangs', 'lost', 'leftovers', 'other', 'pending'];
console.log(`\n${full ? 'full sweep (every call)' : `at most ${points} points per class and action`}; actions ${actions.join(', ')}; ${Math.round((Date.now() - started) / 1000)} s`);
console.log(cols.map((k) => k.padStart(k === 'command' ? 15 : 10)).join(''));
for (const t of summary) console.log(cols.map((k) => String(t[k]).padStart(k === 'command' ? 15 : 10)).join(''));
console.log('(exit70: any status other than 0 and 1; pending: a pack killed between its two renames left its record without the package, which the next pack built byte for byte; not a violation)');
if (violations.length) {
  console.log(`\n${violations.length} violations:`);
  for (const v of violations) console.log(`  ${v}`);
  process.exitCode = 1;
} else {
  console.log('\nno violations');
}
