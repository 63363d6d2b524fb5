/**
 * Issue 21, the lock: it covers the file a command really writes (a variants.list two
 * definitions share through symlinks), and a lock path that is not a lock file ganeti-os made
 * (a directory, a file the user cannot read) ends the command at once with exit 1 naming it,
 * instead of spinning.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { binForOtherUser, newDefinition, runCli, runCliAs, runCliAsync, tempDir, treeHash } from './helpers/cli';
import { describeSystem } from './helpers/system';

let work: string;
beforeEach(() => {
  work = tempDir('locks');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

const newDef = (name: string): string => newDefinition(work, name, ['--template', 'blank', '--api', '20,15,10']);

function addVariant(d: string, v: string): Promise<{ code: number; err: string }> {
  // --force: editing a variants.list another definition reads too is refused without it (issue 22).
  return runCliAsync(['add-variant', v, '--os-dir', d, '--force'], { cwd: work, timeout: 110_000, env: { HOME: undefined, NO_COLOR: '1' } }).then((r) => ({ code: r.code, err: r.stderr }));
}

describe('two definitions sharing one variants.list through symlinks', () => {
  it('parallel add-variant on both: every variant is in the shared file', async () => {
    const a = newDef('a');
    const b = newDef('b');
    const shared = path.join(work, 'shared');
    fs.mkdirSync(shared);
    fs.copyFileSync(path.join(a, 'variants.list'), path.join(shared, 'variants.list'));
    for (const d of [a, b]) {
      fs.rmSync(path.join(d, 'variants.list'));
      fs.symlinkSync(path.join(shared, 'variants.list'), path.join(d, 'variants.list'));
    }
    for (let round = 0; round < 3; round++) {
      const jobs = [0, 1, 2].flatMap((i) => [addVariant(a, `a${round}x${i}`), addVariant(b, `b${round}x${i}`)]);
      const results = await Promise.all(jobs);
      for (const r of results) expect([r.code, r.err]).toEqual([0, expect.anything()]);
    }
    const listed = fs.readFileSync(path.join(shared, 'variants.list'), 'utf8');
    for (const d of ['a', 'b']) for (let round = 0; round < 3; round++) for (const i of [0, 1, 2]) expect(listed).toMatch(new RegExp(`^${d}${round}x${i}$`, 'm'));
    // The links still point at the shared file, and no lock is left anywhere.
    for (const d of [a, b]) expect(fs.lstatSync(path.join(d, 'variants.list')).isSymbolicLink()).toBe(true);
    expect(fs.readdirSync(shared)).toEqual(['variants.list']);
  }, 120_000);
});

describe('a lock path that is no lock file', () => {
  it('a directory: exit 1 at once, naming it', () => {
    const d = newDef('a');
    fs.mkdirSync(path.join(d, '.ganeti-os.lock'));
    const before = treeHash(d);
    const t0 = Date.now();
    const r = runCli(['add-variant', 'x', '--os-dir', d], { cwd: work, timeout: 20_000 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(path.join(d, '.ganeti-os.lock'));
    expect(r.stderr).toContain('a directory');
    expect(treeHash(d)).toBe(before);
  });
});

describeSystem('a lock file the user cannot read', { root: true }, () => {
  let other: ReturnType<typeof binForOtherUser> | undefined;
  afterEach(() => other?.dispose());

  it('exit 1 at once naming it and the cause', () => {
    other = binForOtherUser();
    const d = newDef('a');
    fs.chmodSync(work, 0o755);
    for (const f of [d, ...fs.readdirSync(d, { recursive: true }).map((e) => path.join(d, String(e)))]) fs.chownSync(f, 65534, 65534);
    const lock = path.join(d, '.ganeti-os.lock');
    fs.writeFileSync(lock, `1 ${require('node:os').hostname()} 1\n`);
    fs.chmodSync(lock, 0o600);
    const before = treeHash(d);
    const t0 = Date.now();
    const r = runCliAs(other, ['add-variant', 'x', '--os-dir', d], { timeout: 20_000, env: { NO_COLOR: '1' } });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(lock);
    expect(r.stderr).toMatch(/EACCES|permission denied/i);
    expect(treeHash(d)).toBe(before);
  });
});
