/**
 * Issue 21, pack: the release record is read and rewritten under the definition's lock, so two
 * packs at once never drop a release from it (both read the old record, the second rename won).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli, runCliAsync, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';

let work: string;
let d: string;
beforeEach(() => {
  work = tempDir('packlock');
  const r = runCli(['new', 'os', '--template', 'blank', '--yes'], { cwd: work });
  if (r.code !== 0) throw new Error(r.stderr);
  d = path.join(work, 'os');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const packAsync = (args: string[]) => runCliAsync(['pack', '--os-dir', d, ...args], { cwd: work });

const recorded = () => (JSON.parse(fs.readFileSync(path.join(d, '.ganeti-os-package.json'), 'utf8')) as { releases: { version: string }[] }).releases.map((r) => r.version);

describeSystem('pack under the lock', { commands: ['dpkg-deb'] }, () => {
  it('two concurrent packs (--version 2 and 3) keep every release that was packed', async () => {
    const first = runCli(['pack', '--os-dir', d, '--output', path.join(work, 'o1')], { cwd: work });
    expect(first.code).toBe(0);
    for (let round = 0; round < 3; round++) {
      const [a, b] = [2 + 2 * round, 3 + 2 * round];
      fs.appendFileSync(path.join(d, 'README.md'), `round ${round}\n`);
      const before = recorded();
      const [ra, rb] = await Promise.all([packAsync(['--version', String(a), '--output', path.join(work, `o${a}`)]), packAsync(['--version', String(b), '--output', path.join(work, `o${b}`)])]);
      // Whichever went first: b after a is a new release; a after b is refused (not higher).
      expect(rb.code).toBe(0);
      expect([0, 1]).toContain(ra.code);
      if (ra.code === 1) expect(ra.stderr).toMatch(/\b3\b|higher|greater|newer/);
      const packed = [...(ra.code === 0 ? [String(a)] : []), String(b)];
      const now = recorded();
      for (const v of [...packed, ...before]) expect(now).toContain(v);
      expect(now.length).toBe(before.length + packed.length);
    }
  }, 120_000);

  it('waits for a maintenance command holding the lock, and leaves no lock behind', async () => {
    // The lock as a live ganeti-os command holds it: this process, with its start time (lock.ts).
    const stat = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    fs.writeFileSync(path.join(d, '.ganeti-os.lock'), `${process.pid} ${os.hostname()} ${start}\n`);
    const p = packAsync(['--output', path.join(work, 'out')]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(fs.existsSync(path.join(work, 'out'))).toBe(false);
    fs.rmSync(path.join(d, '.ganeti-os.lock'));
    const r = await p;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Waiting for another ganeti-os command/);
    expect(r.stderr).not.toMatch(/working files/);
    expect(fs.existsSync(path.join(d, '.ganeti-os.lock'))).toBe(false);
    expect(recorded()).toEqual(['1']);
  }, 60_000);
});
