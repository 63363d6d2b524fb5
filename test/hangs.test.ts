/**
 * Issue 21, hangs: a FIFO where a definition has a file, a log directory in /proc, a log
 * directory the user cannot write. Each command ends quickly with exit 1 naming the file and
 * what is wrong (info, which reports, names it and exits 0), never waits forever.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync } from '../src/system/process';
import { binForOtherUser, newDefinition, runCli, runCliAs, tempDir, treeHash } from './helpers/cli';
import { describeSystem } from './helpers/system';

let work: string;
beforeEach(() => {
  work = tempDir('hangs');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function newDef(name: string): string {
  newDefinition(work, name, ['--template', 'blank', '--api', '20,15,10']);
  expect(runCli(['add-variant', 'bookworm', '--os-dir', path.join(work, name)], { cwd: work }).code).toBe(0);
  return path.join(work, name);
}

/** The CLI with a 20 s limit; the result and how long it took. */
function timed(args: string[]) {
  const t0 = Date.now();
  const r = runCli(args, { cwd: work, timeout: 20_000 });
  return { ...r, ms: Date.now() - t0 };
}

describe.each([['README.md'], ['variants/bookworm.conf']])('%s is a FIFO', (rel) => {
  let d: string;
  let before: string;
  beforeEach(() => {
    d = newDef('os');
    fs.rmSync(path.join(d, rel));
    expect(runSync(['mkfifo', path.join(d, rel)]).status).toBe(0);
    before = treeHash(d);
  });

  it('validate: exit 1 naming it', () => {
    const r = timed(['validate', '--os-dir', d]);
    expect(r.ms).toBeLessThan(15_000);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(`${rel} is a FIFO`);
  });

  it('info: ends, naming it', () => {
    const r = timed(['info', '--os-dir', d]);
    expect(r.ms).toBeLessThan(15_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${rel} is a FIFO`);
  });

  it('add-variant: exit 1 naming it (when it must read it), or done without reading it; nothing waits', () => {
    const r = timed(['add-variant', 'bookworm', '--set', 'SUITE=bookworm', '--os-dir', d]);
    expect(r.ms).toBeLessThan(15_000);
    if (rel.endsWith('.conf')) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(path.join(d, rel));
      expect(r.stderr).toContain('not a regular file');
      expect(treeHash(d)).toBe(before);
    }
    const r2 = timed(['add-variant', 'trixie', '--os-dir', d]);
    expect(r2.ms).toBeLessThan(15_000);
    expect([0, 1]).toContain(r2.code);
    if (r2.code === 1) expect(r2.stderr).toContain(path.join(d, rel));
    expect(fs.lstatSync(path.join(d, rel)).isFIFO()).toBe(true);
  });
});

describe('run --log-dir in /proc', () => {
  it('exit 1 at once naming the directory', () => {
    const d = newDef('os');
    const r = timed(['run', 'verify', '--os-dir', d, '--log-dir', '/proc/ganeti-os-test']);
    expect(r.ms).toBeLessThan(15_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/proc/ganeti-os-test');
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  });
});

describeSystem('run --log-dir a directory the user cannot write', { root: true }, () => {
  let other: ReturnType<typeof binForOtherUser> | undefined;
  afterEach(() => other?.dispose());

  it('exit 1 naming it and why, not 70', () => {
    other = binForOtherUser();
    const d = newDef('os');
    fs.chmodSync(work, 0o755);
    const logs = path.join(work, 'logs');
    fs.mkdirSync(logs, { mode: 0o755 });
    const r = runCliAs(other, ['run', 'verify', '--os-dir', d, '--log-dir', logs], { timeout: 20_000, env: { NO_COLOR: '1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(logs);
    expect(r.stderr).toMatch(/cannot write|EACCES/);
    expect(fs.readdirSync(logs)).toEqual([]);
  });
});
