/**
 * Issue 21, pack: ordinary mistakes and failures end with exit 1 and the cause, never 70, and
 * leave nothing behind (no stage, no half record, no package the release record does not know):
 * an --output that is a file or a directory the user cannot write, a huge (sparse) or unreadable
 * file in the definition, a read error of .ganeti-os.json (an error, not "foreign"), a full disk
 * at any write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync } from '../src/system/process';
import { binForOtherUser, runCli, runCliAs, tempDir, treeHash } from './helpers/cli';
import { runWithFault } from './helpers/faults';
import { describeSystem } from './helpers/system';

let work: string;
let d: string;
beforeEach(() => {
  work = tempDir('packfail');
  const r = runCli(['new', 'os', '--template', 'blank', '--api', '20,15,10', '--yes'], { cwd: work });
  if (r.code !== 0) throw new Error(r.stderr);
  d = path.join(work, 'os');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function expectClean(r: { code: number; stderr: string }, out: string, before: string, cause: RegExp): void {
  expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(cause)]);
  expect(r.stderr).not.toMatch(/at .*\.js:\d+|please report/i);
  expect(treeHash(d)).toBe(before);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) expect(fs.readdirSync(out)).toEqual([]);
}

describeSystem('pack failures', { commands: ['dpkg-deb'] }, () => {
  it('--output naming an existing file: exit 1, the file untouched', () => {
    const out = path.join(work, 'a-file');
    fs.writeFileSync(out, 'mine\n');
    const before = treeHash(d);
    const r = runCli(['pack', '--os-dir', d, '--output', out], { cwd: work });
    expectClean(r, out, before, /not a directory/);
    expect(r.stderr).toContain(out);
    expect(fs.readFileSync(out, 'utf8')).toBe('mine\n');
  });

  it('a 3 GiB sparse file in the definition: exit 1 naming it', () => {
    const before = treeHash(d);
    const big = path.join(d, 'disk.img');
    fs.closeSync(fs.openSync(big, 'w'));
    fs.truncateSync(big, 3 * 2 ** 30);
    const out = path.join(work, 'out');
    const r = runCli(['pack', '--os-dir', d, '--output', out], { cwd: work });
    expect(r.stderr).toContain(big);
    expect(fs.statSync(big).size).toBe(3 * 2 ** 30);
    fs.rmSync(big);
    expectClean(r, out, before, /too large/);
  });

  it('EIO reading .ganeti-os.json: exit 1 naming it, not packed as a foreign definition', () => {
    const before = treeHash(d);
    const out = path.join(work, 'out');
    const r = runWithFault(['pack', '--os-dir', d, '--output', out], { cwd: work, scope: work, fault: { cls: 'read', n: 1, action: 'EIO', match: '.ganeti-os.json' } });
    expectClean(r, out, before, /EIO/);
    expect(r.stderr).toContain('.ganeti-os.json');
  });

  it.each(['ENOSPC', 'EIO'])('%s at any write, rename or fsync: exit 1, nothing left, or the package and its record', (code) => {
    const out = path.join(work, 'out');
    const ok = runWithFault(['pack', '--os-dir', d, '--output', out], { cwd: work, scope: work });
    expect(ok.code).toBe(0);
    const packed = treeHash(d);
    const debs = fs.readdirSync(out);
    fs.rmSync(out, { recursive: true });
    fs.rmSync(path.join(d, '.ganeti-os-package.json'));
    const before = treeHash(d);
    let failures = 0;
    for (const cls of ['write', 'rename', 'fsync'] as const) {
      for (let n = 1; n <= ok.counts![cls]; n++) {
        const r = runWithFault(['pack', '--os-dir', d, '--output', out], { cwd: work, scope: work, fault: { cls, n, action: code } });
        if (r.code === 0) {
          // The fault fell on a call whose failure does not matter: the full result.
          expect([cls, n, treeHash(d)]).toEqual([cls, n, packed]);
          expect([cls, n, fs.readdirSync(out)]).toEqual([cls, n, debs]);
          fs.rmSync(path.join(d, '.ganeti-os-package.json'));
        } else {
          failures++;
          expectClean(r, out, before, new RegExp(code));
        }
        fs.rmSync(out, { recursive: true, force: true });
      }
    }
    expect(failures).toBeGreaterThan(2);
  }, 300_000);
});

describeSystem('pack as an ordinary user', { root: true, commands: ['dpkg-deb'] }, () => {
  let other: ReturnType<typeof binForOtherUser> | undefined;
  afterEach(() => other?.dispose());

  const asNobody = (args: string[]) => runCliAs(other!, args, { timeout: 60_000, env: { NO_COLOR: '1' } });

  it('--output a directory the user cannot write; a file in the definition the user cannot read', () => {
    other = binForOtherUser();
    fs.chmodSync(work, 0o755);
    runSync(['chown', '-R', 'nobody:nogroup', d]);
    const closed = path.join(work, 'closed');
    fs.mkdirSync(closed, { mode: 0o755 });
    let before = treeHash(d);
    let r = asNobody(['pack', '--os-dir', d, '--output', closed]);
    expectClean(r, closed, before, /EACCES|permission denied/i);
    expect(r.stderr).toContain(closed);

    const secret = path.join(d, 'lib', 'secret.sh');
    fs.writeFileSync(secret, 'x=1\n', { mode: 0o600 });
    before = treeHash(d);
    const out = path.join(work, 'out');
    fs.mkdirSync(out, { mode: 0o777 });
    fs.chmodSync(out, 0o777);
    r = asNobody(['pack', '--os-dir', d, '--output', out]);
    expectClean(r, out, before, /EACCES|permission denied/i);
    expect(r.stderr).toContain(secret);
  });
});
