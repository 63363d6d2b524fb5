/**
 * Issue 9, section 2: a failure at any step of any write -- ENOSPC, EIO, EACCES, a kill --
 * rolls back completely and exits 1 naming the cause, never 70; two maintenance commands on
 * one definition at once serialise instead of failing as "edited".
 *
 * Failures are injected at every filesystem call a command makes (one run per call), on a real
 * tmpfs sized from the definition at every fill level, with a file the command cannot read, and with SIGKILL at
 * every step of a child process. After each: either the command succeeded and the tree is what
 * an undisturbed run gives, or it exited 1 and the tree is as before (after a kill: once the
 * next command has rolled the journal back).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../src/context';
import { runAddVariant } from '../src/commands/add-variant';
import { runBumpApi } from '../src/commands/bump-api';
import { runNew } from '../src/commands/new';
import { ownerTag } from '../src/definition/lock';
import { mount, unmount } from '../src/system/kernel';
import { runSync } from '../src/system/process';
import { BIN, REPO, runCliAs, runCliAsync, runCommand, tempDir, treeHash } from './helpers/cli';
import { describeSystem } from './helpers/system';

// The module object the code under test calls through (ts-jest's import wrappers read it at call time).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const realFs = require('node:fs') as typeof fs;

const MUTATING = [
  'openSync',
  'writeSync',
  'writeFileSync',
  'fsyncSync',
  'fchmodSync',
  'chmodSync',
  'renameSync',
  'rmSync',
  'unlinkSync',
  'mkdirSync',
  'rmdirSync',
  'linkSync',
  'mkdtempSync',
  'readFileSync',
] as const;

type Cmd = (ctx: Context, opts: never) => Promise<void>;

let work: string;
beforeEach(() => {
  work = tempDir('wfail');
});
afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(work, { recursive: true, force: true });
  // A failure injected into first-run's own clean-up (its rmSync) leaves its scratch copy in
  // TMPDIR, named with this process's owner tag. A CLI's next run removes a dead run's copies,
  // but this process lives on, so it removes its own.
  const mine = `ganeti-os-first-run-${ownerTag()}-`;
  for (const n of fs.readdirSync(os.tmpdir())) if (n.startsWith(mine)) fs.rmSync(path.join(os.tmpdir(), n), { recursive: true, force: true });
});

async function blank(name: string, api: string, parent = work): Promise<string> {
  const r = await runCommand(runNew, parent, { name, template: 'blank', api, yes: true });
  if (r.code !== 0) throw new Error(r.err);
  return path.join(parent, name);
}

/** A tree hash without its first line (the root's path). */
const body = (hash: string) => hash.split('\n').slice(1).join('\n');

/** Make the n-th call (0-based) to any of MUTATING fail with `code`; returns a counter. */
function inject(n: number, code: string): { calls: () => number; fired: () => boolean } {
  let calls = 0;
  let fired = false;
  for (const name of MUTATING) {
    const orig = (realFs[name] as (...a: unknown[]) => unknown).bind(realFs);
    jest.spyOn(realFs, name as never).mockImplementation(((...args: unknown[]) => {
      if (calls++ === n) {
        fired = true;
        throw Object.assign(new Error(`${code}: injected failure, ${name} '${String(args[0])}'`), { code, syscall: name.replace(/Sync$/, '') });
      }
      return orig(...args);
    }) as never);
  }
  return { calls: () => calls, fired: () => fired };
}

const CASES: [string, Cmd, Record<string, unknown>, string][] = [
  ['bump-api 20 --force on an API-10 definition (new variants/, verify, lists)', runBumpApi as Cmd, { version: '20', force: true }, '10'],
  ['add-variant with --set', runAddVariant as Cmd, { variant: 'bookworm', set: ['SUITE=bookworm'] }, '20,15,10'],
];

describe.each(CASES)('%s: a failure at any filesystem call', (_name, cmd, opts, api) => {
  it('EIO, ENOSPC, EACCES in turn: exit 1 naming it and nothing changed, or done completely', async () => {
    // The undisturbed result, from a definition of the same name.
    fs.mkdirSync(path.join(work, 'ref'));
    const ref = await blank('os', api, path.join(work, 'ref'));
    expect((await runCommand(cmd, ref, opts as never)).code).toBe(0);
    const want = body(treeHash(ref));
    const d = await blank('os', api);
    const before = treeHash(d);
    fs.cpSync(d, path.join(work, 'os-pristine'), { recursive: true });
    let n = 0;
    let failures = 0;
    for (;;) {
      const code = ['EIO', 'ENOSPC', 'EACCES'][n % 3];
      const probe = inject(n, code);
      const r = await runCommand(cmd, d, opts as never);
      jest.restoreAllMocks();
      if (!probe.fired()) {
        // Every call has had its failure: the last run went through.
        expect(r.code).toBe(0);
        break;
      }
      // A second command rolls back anything a failure left for it (as after a kill).
      expect([n, r.code]).toEqual([n, r.code === 0 ? 0 : 1]);
      if (r.code === 1) {
        failures++;
        expect([n, r.err]).toEqual([n, expect.stringContaining(code)]);
        expect([n, treeHash(d)]).toEqual([n, before]);
      } else {
        expect([n, body(treeHash(d))]).toEqual([n, want]);
        // Back to the start for the next call.
        fs.rmSync(d, { recursive: true, force: true });
        fs.cpSync(path.join(work, 'os-pristine'), d, { recursive: true });
      }
      n++;
    }
    expect(failures).toBeGreaterThan(5);
  });
});

describe('new: a failure at any filesystem call', () => {
  it('exit 1 naming it and no directory (or stage) left, or the whole definition', async () => {
    const ref = path.join(work, 'ref');
    fs.mkdirSync(ref);
    const want = body(treeHash(await blank('os', '20,15,10', ref)));
    const parent = path.join(work, 'p');
    fs.mkdirSync(parent);
    let n = 0;
    for (;;) {
      const code = ['EIO', 'ENOSPC', 'EACCES'][n % 3];
      const probe = inject(n, code);
      const r = await runCommand(runNew, parent, { name: 'os', template: 'blank', api: '20,15,10', yes: true });
      jest.restoreAllMocks();
      if (r.code === 0) {
        expect([n, body(treeHash(path.join(parent, 'os')))]).toEqual([n, want]);
        fs.rmSync(path.join(parent, 'os'), { recursive: true });
      } else {
        expect([n, r.code, r.err]).toEqual([n, 1, expect.stringContaining(code)]);
      }
      expect([n, fs.readdirSync(parent)]).toEqual([n, []]);
      if (!probe.fired()) break;
      n++;
    }
    expect(n).toBeGreaterThan(5);
  });
});

/** Bytes a tree takes on tmpfs: every file rounded up to whole 4 KiB pages. */
function pagesOf(dir: string): number {
  let pages = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) pages += pagesOf(p);
    else pages += Math.ceil(fs.statSync(p).size / 4096);
  }
  return pages;
}

describeSystem('a small tmpfs fills up at every step', { root: true }, () => {
  let mnt: string | undefined;
  afterEach(() => {
    if (mnt) unmount(mnt);
    mnt = undefined;
  });

  it('bump-api 20 --force: exit 1 with ENOSPC and the tree as before, or done; never 70, never an empty variants/', async () => {
    fs.mkdirSync(path.join(work, 'src'));
    fs.mkdirSync(path.join(work, 'ref'));
    const src = await blank('osdef', '10', path.join(work, 'src'));
    const ref = await blank('osdef', '10', path.join(work, 'ref'));
    expect((await runCommand(runBumpApi, ref, { version: '20', force: true })).code).toBe(0);
    const want = body(treeHash(ref));
    // Sized from the definition: room for it, a second copy (the stage and the moved-aside
    // files at their peak) and a margin, so every fill level up to success is reached.
    const pages = pagesOf(src);
    mnt = path.join(work, 'mnt');
    fs.mkdirSync(mnt);
    mount('gos-test', mnt, { type: 'tmpfs', options: [`size=${(2 * pages + 16) * 4}k`, 'nr_inodes=200'] });
    const d = path.join(mnt, 'osdef');
    let sawEnospc = 0;
    let sawSuccess = false;
    // Leave 0, 1, 2, ... pages free beside the definition, until the command succeeds.
    for (let freePages = 0; freePages <= 2 * pages + 16 && !sawSuccess; freePages++) {
      fs.rmSync(d, { recursive: true, force: true });
      for (const f of fs.readdirSync(mnt)) fs.rmSync(path.join(mnt, f), { recursive: true, force: true });
      fs.cpSync(src, d, { recursive: true });
      const before = treeHash(d);
      const fill = path.join(mnt, 'fill');
      const fd = fs.openSync(fill, 'w');
      const page = Buffer.alloc(4096, 1);
      try {
        for (;;) fs.writeSync(fd, page);
      } catch {
        // full
      }
      fs.closeSync(fd);
      fs.truncateSync(fill, Math.max(0, fs.statSync(fill).size - freePages * 4096));
      const r = await runCommand(runBumpApi, d, { version: '20', force: true });
      expect([freePages, r.code]).toEqual([freePages, r.code === 0 ? 0 : 1]);
      if (r.code === 1) {
        sawEnospc++;
        expect([freePages, r.err]).toEqual([freePages, expect.stringMatching(/ENOSPC|no space left/)]);
        expect([freePages, treeHash(d)]).toEqual([freePages, before]);
      } else {
        sawSuccess = true;
        expect(body(treeHash(d))).toBe(want);
      }
    }
    expect(sawEnospc).toBeGreaterThan(0);
    expect(sawSuccess).toBe(true);
  });
});

describeSystem('a file the command cannot read or write (EACCES, as an unprivileged user)', { root: true }, () => {
  it('exit 1 naming the file and EACCES, nothing changed', async () => {
    const d = await blank('os', '20,15,10');
    fs.chmodSync(work, 0o755);
    runSync(['chown', '-R', 'nobody', d]);
    // A file the plan must compare, unreadable to the user running the command.
    fs.chownSync(path.join(d, 'lib', 'parameters.sh'), 0, 0);
    fs.chmodSync(path.join(d, 'lib', 'parameters.sh'), 0o600);
    const before = treeHash(d);
    const r = runCliAs({ bin: BIN }, ['add-param', 'size', 'Root size', '--os-dir', d], { env: { NO_COLOR: '1' } });
    expect(r.stderr).toMatch(/EACCES|permission denied/i);
    expect(r.stderr).toContain('parameters.sh');
    expect(r.code).toBe(1);
    expect(treeHash(d)).toBe(before);
  });
});

describe('a kill at any step', () => {
  /**
   * Run bump-api in a child that SIGKILLs itself at its n-th filesystem call (n < 0: never);
   * returns whether it died, and how many calls it made.
   */
  function killedAt(d: string, n: number): { killed: boolean; calls: number } {
    const script = `
      const fs = require('node:fs');
      const names = ${JSON.stringify(MUTATING)};
      let calls = 0;
      for (const name of names) {
        const orig = fs[name].bind(fs);
        fs[name] = (...a) => { if (calls++ === ${n}) process.kill(process.pid, 'SIGKILL'); return orig(...a); };
      }
      const { main } = require(${JSON.stringify(path.join(REPO, 'dist', 'main.js'))});
      const ctx = { cwd: ${JSON.stringify(d)}, env: {}, interactive: false, prompter: {}, log: { info() {}, warn() {} }, out: { write() {} } };
      main(['bump-api', '20', '--force'], ctx).then((code) => { process.stdout.write(String(calls)); process.exit(code); });
    `;
    const r = runSync([process.execPath, '-e', script]);
    if (r.signal !== 'SIGKILL' && r.status !== 0) throw new Error(`child failed at ${n}: ${r.status} ${r.stderr}`);
    return { killed: r.signal === 'SIGKILL', calls: Number(r.stdout || '0') };
  }

  it('the next command leaves the definition as before or as after, never in between', async () => {
    fs.mkdirSync(path.join(work, 'ref'));
    fs.mkdirSync(path.join(work, 'pristine'));
    const ref = await blank('os', '10', path.join(work, 'ref'));
    const { calls } = killedAt(ref, -1);
    const want = body(treeHash(ref));
    const pristine = await blank('os', '10', path.join(work, 'pristine'));
    const before = body(treeHash(pristine));
    // About 15 kill points spread over every call the command makes (~12 s).
    const stride = Math.max(1, Math.floor(calls / 15));
    let kills = 0;
    for (let n = 0; n < calls; n += stride) {
      const d = path.join(work, 'os');
      fs.rmSync(d, { recursive: true, force: true });
      fs.cpSync(pristine, d, { recursive: true });
      expect(killedAt(d, n).killed).toBe(true);
      kills++;
      // The next command rolls back (or finishes) what the kill left before it plans. This one
      // changes nothing itself: refused on the old state (API 10), a no-op on the new one.
      const r = await runCommand(runAddVariant, d, { variant: 'default' });
      expect([n, r.code]).toEqual([n, r.code === 0 ? 0 : 1]);
      const got = body(treeHash(d));
      expect([n, got === before || got === want, got]).toEqual([n, true, got]);
    }
    expect(kills).toBeGreaterThan(5);
  });
});

describe('two maintenance commands at once', () => {
  it('serialise: every one succeeds and every change is there', async () => {
    const d = await blank('os', '20,15,10');
    const names = ['v1', 'v2', 'v3', 'v4'];
    for (let round = 0; round < 3; round++) {
      const batch = names.map((v) => `${v}r${round}`);
      const results = await Promise.all(
        batch.map(
          (v) =>
            runCliAsync(['add-variant', v], { cwd: d, timeout: 110_000, env: { HOME: undefined, NO_COLOR: '1' } }).then((r) => ({ code: r.code, err: r.stderr })),
        ),
      );
      for (const r of results) expect([r.code, r.err]).toEqual([0, expect.anything()]);
      const listed = fs.readFileSync(path.join(d, 'variants.list'), 'utf8');
      for (const v of batch) expect(listed).toMatch(new RegExp(`^${v}$`, 'm'));
    }
  });
});
