/**
 * Issue 21: an EIO from fsync on a directory (the sync that puts a rename or a new file on the
 * disk) is never ignored: the command exits 1 naming EIO and the directory, and leaves the
 * definition (and pack's output directory) as before. The fault lands on each directory sync
 * of the command in turn (preload.js's fsyncdir class).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tempDir, treeHash } from './helpers/cli';
import { FaultClass, runWithFault } from './helpers/faults';
import { describeSystem } from './helpers/system';

jest.setTimeout(180_000);

const FSYNC_DIR = 'fsyncdir' as FaultClass;
const NEW = ['new', 'os', '--template', 'blank', '--api', '20,15,10', '--yes'];

let work: string;
beforeEach(() => {
  work = tempDir('dirsync');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

function expectEio(r: { code: number; stderr: string }, n: number): void {
  expect([n, r.code]).toEqual([n, 1]);
  expect(r.stderr).toMatch(/EIO/);
  expect(r.stderr).toMatch(/cannot sync the directory \//);
  expect(r.stderr).not.toMatch(/please report|at .*\.js:\d+/);
}

it('new: EIO syncing the parent after the rename: exit 1, no definition, nothing in the parent', () => {
  const counted = runWithFault(NEW, { cwd: work, scope: work });
  expect(counted.code).toBe(0);
  expect(counted.counts![FSYNC_DIR]).toBeGreaterThan(0);
  fs.rmSync(path.join(work, 'os'), { recursive: true });
  for (let n = 1; n <= counted.counts![FSYNC_DIR]; n++) {
    const r = runWithFault(NEW, { cwd: work, scope: work, fault: { cls: FSYNC_DIR, n, action: 'EIO' } });
    expectEio(r, n);
    expect(r.stderr).toContain(work);
    expect([n, fs.readdirSync(work)]).toEqual([n, []]);
  }
});

it.each([
  ['add-variant', ['add-variant', 'bookworm']],
  ['add-param', ['add-param', 'size', 'Root size', '--default', '10G']],
  ['bump-api', ['bump-api', '15', '--force']],
])('%s: EIO at each directory sync: exit 1, the definition as before', (_name, argv) => {
  expect(runCli(NEW, { cwd: work }).code).toBe(0);
  const d = path.join(work, 'os');
  const before = treeHash(d);
  const copy = path.join(work, 'copy');
  fs.cpSync(d, copy, { recursive: true });
  const counted = runWithFault([...argv, '--os-dir', copy], { cwd: work, scope: copy });
  expect(counted.code).toBe(0);
  const total = counted.counts![FSYNC_DIR];
  expect(total).toBeGreaterThan(1);
  for (let n = 1; n <= total; n++) {
    const r = runWithFault([...argv, '--os-dir', d], { cwd: work, scope: d, fault: { cls: FSYNC_DIR, n, action: 'EIO' } });
    expectEio(r, n);
    expect([n, treeHash(d)]).toEqual([n, before]);
  }
});

describeSystem('pack: EIO syncing a directory', { commands: ['dpkg-deb'] }, () => {
  it('at each directory sync (output directory, definition): exit 1, no package, no record', () => {
    expect(runCli(NEW, { cwd: work }).code).toBe(0);
    const d = path.join(work, 'os');
    const out = path.join(work, 'out');
    const argv = ['pack', '--os-dir', d, '--output', out, '--maintainer', 'T <t@example.org>'];
    const before = treeHash(d);
    const counted = runWithFault(argv, { cwd: work, scope: work });
    expect(counted.code).toBe(0);
    const total = counted.counts![FSYNC_DIR];
    // The output directory after the package's rename, the definition after the record's.
    expect(total).toBe(2);
    fs.rmSync(out, { recursive: true });
    fs.rmSync(path.join(d, '.ganeti-os-package.json'));
    for (let n = 1; n <= total; n++) {
      const r = runWithFault(argv, { cwd: work, scope: work, fault: { cls: FSYNC_DIR, n, action: 'EIO' } });
      expectEio(r, n);
      expect([n, treeHash(d)]).toEqual([n, before]);
      expect([n, fs.readdirSync(out)]).toEqual([n, []]);
    }
  });
});
