/**
 * The Ganeti harness (test/ganeti/harness.py) itself: it runs as any user, so it never writes
 * Ganeti's OS logs into /var/log/ganeti/os (root's, and absent until Ganeti's daemons make it),
 * a call it cannot set up fails with its reason instead of a bare "ok": false, and a failed call's
 * log comes back in its answer (nothing is left in TMPDIR).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InstanceSpec, ganeti, instanceOsAdd } from './helpers/ganeti';
import { runInProcess, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';

const GANETI_OS_LOGS = '/var/log/ganeti/os';

/** The files in Ganeti's OS log directory, or [] when it is absent or unreadable (a user's case). */
function ganetiLogs(): string[] {
  try {
    return fs.readdirSync(GANETI_OS_LOGS).sort();
  } catch {
    return [];
  }
}

/** The harness's temporary log directories in TMPDIR. */
function harnessLogDirs(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('ganeti-os-harness-log-')).sort();
}

describeSystem('the Ganeti harness', { ganeti: true }, () => {
  let work: string;
  let dir: string;
  beforeAll(async () => {
    work = tempDir();
    const r = await runInProcess(['new', 'harnessos', '--template', 'blank', '--yes'], { cwd: work });
    if (r.code !== 0) throw new Error(r.stderr);
    dir = path.join(work, 'harnessos');
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  const instance = (disk: string): InstanceSpec => ({ name: 'harness1.example.com', os: 'harnessos+default', os_dir: dir, disks: [{ path: disk, size: 8 }] });
  const disk = (name: string) => {
    const p = path.join(work, name);
    fs.writeFileSync(p, '');
    fs.truncateSync(p, 8 * 1024 * 1024);
    return p;
  };

  it("runs create without a log directory, writing nothing into Ganeti's own", () => {
    const before = ganetiLogs();
    expect(instanceOsAdd(instance(disk('ok.img')))).toEqual({ ok: true });
    expect(ganetiLogs()).toEqual(before);
  });

  it('returns the log of a failed create in its answer, and leaves no log directory behind', () => {
    // A create that fails: Ganeti points at its log, which the answer carries.
    const broken = path.join(work, 'brokenos');
    fs.cpSync(dir, broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'create'), '#!/bin/sh\necho "no disk for you" >&2\nexit 3\n', { mode: 0o755 });
    const before = ganetiLogs();
    const tmpBefore = harnessLogDirs();
    const r = instanceOsAdd({ ...instance(disk('bad.img')), os: 'brokenos+default', os_dir: broken });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/OS create script failed/);
    const logs = Object.entries(r.log as Record<string, string>);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toEqual([expect.stringMatching(/^add-brokenos\+default-/), expect.stringContaining('no disk for you')]);
    expect(ganetiLogs()).toEqual(before);
    expect(harnessLogDirs()).toEqual(tmpBefore);
  });

  it('throws with its reason when it cannot set a call up', () => {
    const blocked = path.join(work, 'a-file');
    fs.writeFileSync(blocked, '');
    expect(() => instanceOsAdd(instance(disk('x.img')), { logdir: path.join(blocked, 'log') })).toThrow(/cannot make the OS log directory .*a-file\/log/);
    // An action Ganeti has no answer for is the harness's failure too, with Python's traceback.
    expect(() => ganeti({ action: 'no-such-action' })).toThrow(/harness failed.*unknown action/s);
  });
});
