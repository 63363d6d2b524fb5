/**
 * Issue 21, upgrade: a file it cannot read (EIO, EACCES) is an error naming it -- exit 1 and
 * nothing changed, the record not moved -- never a file skipped while the rest goes on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync } from '../src/system/process';
import { binForOtherUser, runCliAs, treeHash } from './helpers/cli';
import { runWithFault } from './helpers/faults';
import { describeSystem } from './helpers/system';
import { age, fixture, setLine } from './helpers/upgrade';

let dir: string;
let work: string;
beforeEach(() => {
  ({ dir, work } = fixture('blank'));
  age(dir, 'README.md', setLine(0, '# an older title'));
  age(dir, 'create', (t) => t.replace(/\n$/, '\n# older\n'));
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

it.each(['README.md', 'create', 'lib/runtime.sh'])('EIO reading %s: exit 1 naming it, nothing changed', (rel) => {
  const before = treeHash(dir);
  const r = runWithFault(['upgrade', '--os-dir', dir], { cwd: work, scope: work, fault: { cls: 'read', n: 1, action: 'EIO', match: path.join(dir, rel) } });
  expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(path.join(dir, rel))]);
  expect(r.stderr).toContain('EIO');
  expect(treeHash(dir)).toBe(before);
});

describeSystem('upgrade as an ordinary user, one file unreadable', { root: true }, () => {
  let other: ReturnType<typeof binForOtherUser> | undefined;
  afterEach(() => other?.dispose());

  it('exit 1 naming it and EACCES, the record not moved', () => {
    other = binForOtherUser();
    fs.chmodSync(work, 0o755);
    runSync(['chown', '-R', 'nobody:nogroup', dir]);
    const secret = path.join(dir, 'create');
    fs.chownSync(secret, 0, 0);
    fs.chmodSync(secret, 0o700);
    const before = treeHash(dir);
    const r = runCliAs(other, ['upgrade', '--os-dir', dir], { env: { NO_COLOR: '1' } });
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(secret)]);
    expect(r.stderr).toMatch(/EACCES/);
    expect(treeHash(dir)).toBe(before);
  });
});
