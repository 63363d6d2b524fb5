/**
 * Issue 21, pack: OS names that share a Debian package name. `a_b`, `A-b` and `a-b` would all be
 * `ganeti-os-a-b`, and installing one would remove the other's OS directory: pack refuses the
 * names with no package name of their own, naming the OS name and the package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageName } from '../src/package/debian';
import { runCli, tempDir, treeHash } from './helpers/cli';

let work: string;
beforeEach(() => {
  work = tempDir('packnames');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describe('package names of OS names', () => {
  it('an OS name already a package name maps to itself', () => {
    expect(packageName('a-b')).toBe('ganeti-os-a-b');
    expect(packageName('debian9')).toBe('ganeti-os-debian9');
  });

  it.each([
    ['a_b', 'a-b'],
    ['A-b', 'a-b'],
    ['My_OS', 'my-os'],
  ])('pack refuses OS %s, whose package would be that of OS %s, and writes nothing', (name, owner) => {
    const r0 = runCli(['new', name, '--template', 'blank', '--yes'], { cwd: work });
    expect(r0.code).toBe(0);
    const d = path.join(work, name);
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    const before = treeHash(d);
    const r = runCli(['pack', '--os-dir', d, '--output', out], { cwd: work });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`OS '${name}'`);
    expect(r.stderr).toContain(`'ganeti-os-${owner}'`);
    expect(r.stderr).toContain(`OS '${owner}'`);
    expect(r.stderr).toMatch(/would remove the other's OS directory/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+|please report/i);
    expect(treeHash(d)).toBe(before);
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
