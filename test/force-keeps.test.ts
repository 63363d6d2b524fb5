/**
 * Issue 21: --force may replace, never lose. bump-api --force removing an edited `verify` keeps
 * it in .ganeti-os/backups/<time>/ and says where; an upgrade killed at any step leaves either
 * the definition as before with no backup, or as after with its backup -- never a backup of a
 * change that did not happen, never a change without its backup.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tempDir, treeHash } from './helpers/cli';
import { runWithFault } from './helpers/faults';
import { age, fixture, setLine } from './helpers/upgrade';

const body = (hash: string) => hash.split('\n').slice(1).join('\n');

describe('bump-api 15 --force on a debian definition with an edited verify', () => {
  let work: string;
  beforeEach(() => {
    work = tempDir('forcekeep');
  });
  afterEach(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('removes verify, keeps the edited one in a backup and names it', () => {
    expect(runCli(['new', 'deb', '--template', 'debian', '--yes'], { cwd: work, timeout: 120_000 }).code).toBe(0);
    const d = path.join(work, 'deb');
    const edited = fs.readFileSync(path.join(d, 'verify'), 'utf8') + '# my own check\n';
    fs.writeFileSync(path.join(d, 'verify'), edited);
    const r = runCli(['bump-api', '15', '--force', '--os-dir', d], { cwd: work });
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(d, 'verify'))).toBe(false);
    const backups = path.join(d, '.ganeti-os', 'backups');
    const [stamp] = fs.readdirSync(backups);
    expect(fs.readFileSync(path.join(backups, stamp, 'verify'), 'utf8')).toBe(edited);
    expect(fs.statSync(path.join(backups, stamp, 'verify')).mode & 0o777).toBe(0o755);
    expect(r.stderr).toContain(path.join(backups, stamp));
    expect(r.stderr).toContain('verify');
  });

  it('nothing of the user\'s replaced: no backup', () => {
    expect(runCli(['new', 'deb', '--template', 'debian', '--yes'], { cwd: work, timeout: 120_000 }).code).toBe(0);
    const d = path.join(work, 'deb');
    const r = runCli(['bump-api', '15', '--force', '--os-dir', d], { cwd: work });
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(d, '.ganeti-os'))).toBe(false);
    // README.md changes (it lists the API versions) but was never edited: an ordinary update.
    expect(r.stderr + r.stdout).toMatch(/update\s+README\.md/);
    expect(r.stderr + r.stdout).not.toContain('replaced (--force)');
  });
});

describe('upgrade killed at any step', () => {
  it('the next command finds it as before without a backup, or as after with it', () => {
    const { dir: pristine, work } = fixture('blank');
    try {
      // README.md as an older template wrote it: the upgrade replaces it, so it backs it up.
      age(pristine, 'README.md', setLine(0, '# an older title'));
      const ref = path.join(work, 'ref', path.basename(pristine));
      fs.cpSync(pristine, ref, { recursive: true });
      const full = runWithFault(['upgrade', '--os-dir', ref], { cwd: work, scope: path.dirname(ref) });
      expect(full.code).toBe(0);
      // The command run after each kill (it may restore a file the template now has): the
      // references are what it leaves on the definition before and after the upgrade.
      const settle = (d: string) => runCli(['add-variant', 'default', '--os-dir', d], { cwd: work });
      expect(settle(ref).code).toBe(0);
      const stateOf = (d: string) => body(treeHash(d)).split('\n').filter((l) => !l.startsWith('.ganeti-os ') && !l.startsWith('.ganeti-os/')).join('\n');
      const after = stateOf(ref);
      const old = path.join(work, 'old', path.basename(pristine));
      fs.cpSync(pristine, old, { recursive: true });
      expect(settle(old).code).toBe(0);
      const beforeState = stateOf(old);
      const calls = Object.values(full.counts!).reduce((a, b) => a + b, 0);
      expect(calls).toBeGreaterThan(20);
      const d = path.join(work, 'run', path.basename(pristine));
      let kills = 0;
      const stride = Math.max(1, Math.floor(calls / 25));
      for (let n = 1; n <= calls; n += stride) {
        fs.rmSync(path.join(work, 'run'), { recursive: true, force: true });
        fs.mkdirSync(path.join(work, 'run'));
        fs.cpSync(pristine, d, { recursive: true });
        const k = runWithFault(['upgrade', '--os-dir', d], { cwd: work, scope: path.dirname(d), fault: { cls: 'any', n, action: 'kill' } });
        if (!k.killed) continue;
        kills++;
        // The next command settles what the kill left (this one changes nothing itself).
        const r = settle(d);
        expect([n, r.code, r.stderr]).toEqual([n, 0, expect.anything()]);
        const got = stateOf(d);
        const backups = path.join(d, '.ganeti-os', 'backups');
        const kept = fs.existsSync(backups) ? fs.readdirSync(backups) : [];
        expect([n, kept.filter((b) => b.startsWith('.'))]).toEqual([n, []]);
        if (got === beforeState) {
          expect([n, 'before', kept]).toEqual([n, 'before', []]);
        } else {
          expect([n, got]).toEqual([n, after]);
          expect([n, kept.length]).toEqual([n, 1]);
          expect(fs.readFileSync(path.join(backups, kept[0], 'README.md'), 'utf8')).toMatch(/^# an older title/);
        }
      }
      expect(kills).toBeGreaterThan(5);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 300_000);
});
