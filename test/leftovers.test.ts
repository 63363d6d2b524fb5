/**
 * Issue 21, leftovers: what a killed `new` leaves in the parent (`.NAME.ganeti-os-stage-*`) and
 * a killed `pack` in the output directory (`.ganeti-os-pack-*`) and in the definition (its
 * temporary release record) is removed by the next command that works there -- `new` in that
 * parent, `pack` into that directory -- when the process that made it is gone, decided as the
 * lock's dead-holder takeover decides it. A live process's stage is left alone.
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli, tempDir } from './helpers/cli';
import { runWithFault } from './helpers/faults';
import { describeSystem } from './helpers/system';

jest.setTimeout(120_000);

let work: string;
let sleeper: ChildProcess | undefined;
beforeEach(() => {
  work = tempDir('leftovers');
});
afterEach(() => {
  sleeper?.kill('SIGKILL');
  sleeper = undefined;
  fs.rmSync(work, { recursive: true, force: true });
});

/** The owner tag ganeti-os puts in its working files' names for process `pid` (pid, start time, host). */
function tagOf(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return `${pid}_${start}_${os.hostname()}`;
}

/** A live process's tag (a sleep, killed after the test). */
function liveTag(): string {
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  return tagOf(sleeper.pid!);
}

/** A gone process's tag: a process that ran and exited (its start time kept). */
function deadTag(): string {
  const r = spawnSync('sh', ['-c', 'echo $$; cat /proc/$$/stat'], { encoding: 'utf8' });
  const [pid, stat] = r.stdout.trim().split('\n');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return `${pid}_${start}_${os.hostname()}`;
}

const NEW = ['new', 'os', '--template', 'blank', '--api', '20,15,10', '--yes'];
const hidden = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('.')).sort();

describe('new: stages of a killed new in the parent', () => {
  it('a new killed half-way leaves its stage; the next new in that parent removes it', () => {
    const killed = runWithFault(NEW, { cwd: work, scope: work, fault: { cls: 'write', n: 5, action: 'kill' } });
    expect(killed.killed).toBe(true);
    const left = hidden(work);
    expect(left).toEqual([expect.stringMatching(/^\.os\.ganeti-os-stage-\d+_\d+_.+-[A-Za-z0-9]{6}$/)]);
    expect(fs.existsSync(path.join(work, 'os'))).toBe(false);
    // Another definition in the same parent: the dead stage goes.
    const r = runCli(['new', 'other', '--template', 'blank', '--yes'], { cwd: work });
    expect([r.code, r.stderr]).toEqual([0, expect.any(String)]);
    expect(hidden(work)).toEqual([]);
    expect(fs.readdirSync(work).sort()).toEqual(['other']);
  });

  it("a live process's stage is kept, a dead one's goes, one without an owner (older ganeti-os) is kept", () => {
    const live = `.os.ganeti-os-stage-${liveTag()}-AbC123`;
    const dead = `.os.ganeti-os-stage-${deadTag()}-XyZ789`;
    const legacy = '.os.ganeti-os-stage-Qw3rTy';
    const otherHost = `.os.ganeti-os-stage-1_1_not-${os.hostname()}-QQQQQQ`;
    for (const n of [live, dead, legacy, otherHost]) {
      fs.mkdirSync(path.join(work, n));
      fs.writeFileSync(path.join(work, n, 'create'), 'partial');
    }
    const r = runCli(NEW, { cwd: work });
    expect(r.code).toBe(0);
    expect(hidden(work)).toEqual([live, legacy, otherHost].sort());
    expect(fs.readFileSync(path.join(work, live, 'create'), 'utf8')).toBe('partial');
  });

  it('--dry-run removes nothing', () => {
    const dead = `.os.ganeti-os-stage-${deadTag()}-XyZ789`;
    fs.mkdirSync(path.join(work, dead));
    expect(runCli([...NEW, '--dry-run'], { cwd: work }).code).toBe(0);
    expect(hidden(work)).toEqual([dead]);
  });
});

describe("validate: the scratch copies of a killed run in TMPDIR", () => {
  it("a dead run's copy goes when validate next copies a definition; a live run's and an untagged one stay", () => {
    expect(runCli(NEW, { cwd: work }).code).toBe(0);
    const tmp = path.join(work, 'tmp');
    fs.mkdirSync(tmp);
    const live = `ganeti-os-first-run-${liveTag()}-AbC123`;
    const dead = `ganeti-os-first-run-${deadTag()}-XyZ789`;
    const legacy = 'ganeti-os-first-run-Qw3rTy';
    for (const n of [live, dead, legacy]) {
      fs.mkdirSync(path.join(tmp, n, 'os'), { recursive: true });
      fs.writeFileSync(path.join(tmp, n, 'os', 'verify'), 'partial');
    }
    const r = runCli(['validate', path.join(work, 'os')], { cwd: work, env: { TMPDIR: tmp } });
    expect([r.code, r.stdout]).toEqual([0, expect.stringMatching(/: valid/)]);
    // Its own copy is gone too.
    expect(fs.readdirSync(tmp).sort()).toEqual([live, legacy].sort());
  });
});

describeSystem('pack: stages and records of a killed pack', { commands: ['dpkg-deb'] }, () => {
  let d: string;
  let out: string;
  beforeEach(() => {
    expect(runCli(NEW, { cwd: work }).code).toBe(0);
    d = path.join(work, 'os');
    out = path.join(work, 'out');
  });
  const pack = () => runCli(['pack', '--os-dir', d, '--output', out, '--maintainer', 'T <t@example.org>'], { cwd: work, env: { SOURCE_DATE_EPOCH: '1700000000' } });

  it('a pack killed half-way leaves its stage; the next pack into that directory removes it', () => {
    fs.mkdirSync(out);
    const killed = runWithFault(['pack', '--os-dir', d, '--output', out, '--maintainer', 'T <t@example.org>'], { cwd: work, scope: out, fault: { cls: 'write', n: 20, action: 'kill' } });
    expect(killed.killed).toBe(true);
    expect(hidden(out)).toEqual([expect.stringMatching(/^\.ganeti-os-pack-\d+_\d+_.+-[A-Za-z0-9]{6}$/)]);
    const r = pack();
    expect([r.code, r.stderr]).toEqual([0, expect.any(String)]);
    expect(fs.readdirSync(out)).toEqual(['ganeti-os-os_1_all.deb']);
  });

  it('a pack killed with its record staged: the next pack removes the temporary record', () => {
    // The record's temporary file is the only file pack writes in the definition: kill at its fsync.
    const killed = runWithFault(['pack', '--os-dir', d, '--output', out, '--maintainer', 'T <t@example.org>'], { cwd: work, scope: d, fault: { cls: 'fsync', n: 1, action: 'kill' } });
    expect(killed.killed).toBe(true);
    expect(hidden(d).filter((n) => n.startsWith('.ganeti-os-package.json'))).toEqual([expect.stringMatching(/^\.ganeti-os-package\.json\.tmp-\d+_\d+_/)]);
    expect(pack().code).toBe(0);
    expect(hidden(d).filter((n) => n.startsWith('.ganeti-os-package.json'))).toEqual(['.ganeti-os-package.json']);
  });

  it("a live pack's stage and record are kept, a dead one's go", () => {
    fs.mkdirSync(out);
    const tag = liveTag();
    const live = `.ganeti-os-pack-${tag}-AbC123`;
    const dead = `.ganeti-os-pack-${deadTag()}-XyZ789`;
    for (const n of [live, dead]) fs.mkdirSync(path.join(out, n));
    const liveRecord = `.ganeti-os-package.json.tmp-${tag}`;
    const deadRecord = `.ganeti-os-package.json.tmp-${deadTag()}`;
    for (const n of [liveRecord, deadRecord]) fs.writeFileSync(path.join(d, n), '{');
    const r = pack();
    expect([r.code, r.stderr]).toEqual([0, expect.any(String)]);
    expect(hidden(out)).toEqual([live]);
    expect(hidden(d).filter((n) => n.startsWith('.ganeti-os-package.json')).sort()).toEqual(['.ganeti-os-package.json', liveRecord].sort());
  });
});
