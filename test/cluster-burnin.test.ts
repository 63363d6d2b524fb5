/**
 * `ganeti-os test --cluster --burnin` (src/lifecycle/burnin.ts): Ganeti's own burnin with the
 * definition on the box after the lifecycle, each of its phases a step of the same verdict table
 * and --json. The blank, debian and image templates on fake (CI: 2-3 minutes each here), a box of
 * the other Ganeti release with GANETI_OS_MATRIX=full (it may build a node root first);
 * a definition whose create or rename fails makes the burnin phase fail, named; Ctrl-C during
 * burnin leaves nothing in the box.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { box, BOX_NEED, LifecycleRun, onBox, testOnBox } from './helpers/box';
import { BIN, newDefinition, REPO, runCli, tempDir } from './helpers/cli';
import { fakeImageForBox } from './helpers/images';
import { describeSystem, FULL_MATRIX } from './helpers/system';
import { GANETI_RELEASES, GanetiRelease, installedRelease } from '../src/ganeti/releases';

/** The release this node does not run: its box runs from a cached node root (mmdebstrap). */
const OTHER = GANETI_RELEASES.map((r) => r.release).find((r) => r !== installedRelease()) as GanetiRelease;

jest.setTimeout(3600000);

/** The burnin steps on the fake hypervisor, in order. */
const ON_FAKE = ['burnin-create', 'burnin-stop-start', 'burnin-grow', 'burnin-reinstall', 'burnin-reboot', 'burnin-rename-same', 'burnin-confd', 'burnin-nics', 'burnin-activate-disks', 'burnin-add-disks', 'burnin-remove-disks', 'burnin-rename', 'burnin-remove'];

describeSystem('test --cluster --burnin (Ganeti\'s burnin through the box)', { ...BOX_NEED, commands: [...BOX_NEED.commands, 'mmdebstrap', 'qemu-img', 'mkfs.vfat', 'sfdisk'] }, () => {
  let work: string;
  let state: string;
  const timings: Record<string, number> = {};
  const cleanups: (() => void)[] = [];

  const newDef = (name: string, template: string, extra: string[] = []) => newDefinition(work, name, ['--template', template, ...extra]);
  /** The blank definition (made by the first test, or now when it was filtered out). */
  const blankDef = () => (fs.existsSync(path.join(work, 'blank-os')) ? path.join(work, 'blank-os') : newDef('blank-os', 'blank'));
  const step = (r: LifecycleRun, name: string) => r.steps.find((s) => s.step === name);
  const failures = (r: LifecycleRun) => r.steps.filter((s) => s.status === 'failed').map((s) => `${s.step}: ${s.detail}`);
  const instances = () => onBox(state, ['gnt-instance', 'list', '--no-headers', '-o', 'name']).trim();
  const burnin = (dir: string, args: string[]) => {
    const t0 = Date.now();
    const r = testOnBox(dir, ['--hypervisor', 'fake', '--burnin', ...args], state, 3600000);
    timings[path.basename(dir)] = (Date.now() - t0) / 1000;
    return r;
  };
  /** Every burnin step passed (the disk phases skipped on fake, saying why), and nothing stays in the box. */
  const burninPassed = (r: LifecycleRun) => {
    expect(r.steps.filter((s) => s.step.startsWith('burnin-')).map((s) => s.step)).toEqual(ON_FAKE);
    for (const name of ON_FAKE) {
      const s = step(r, name);
      if (name === 'burnin-add-disks' || name === 'burnin-remove-disks') expect([name, s?.status, s?.detail]).toEqual([name, 'skipped', expect.stringMatching(/^not on fake: no hotplug/)]);
      else expect([name, s?.status]).toEqual([name, 'passed']);
    }
    expect(step(r, 'cluster-verify')?.status).toBe('passed');
    expect(instances()).toBe('');
  };

  beforeAll(() => {
    work = tempDir('burnin');
    state = path.join(work, 'box');
    const up = box(['up'], state);
    if (up.code !== 0) throw new Error(`cluster up failed:\n${up.stderr}`);
  });
  afterAll(() => {
    for (const c of cleanups) c();
    if (!work) return;
    box(['down'], state);
    // eslint-disable-next-line no-console
    console.log(`test --cluster --burnin wall-clock seconds: ${JSON.stringify(timings)}`);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('blank on fake: the lifecycle, then every burnin phase passes; the disk phases are left out on fake and say so', () => {
    const { code, run } = burnin(blankDef(), ['--disk-size', '64']);
    expect(failures(run)).toEqual([]);
    expect(code).toBe(0);
    burninPassed(run);
    expect(step(run, 'burnin-create')?.command).toEqual(expect.arrayContaining(['/usr/lib/ganeti/tools/burnin', '-o', 'blank-os+default', '-t', 'file', '--rename']));
    expect(step(run, 'burnin-reinstall')?.detail).toMatch(/reinstall without passing the OS; reinstall specifying the OS/);
    expect(step(run, 'burnin-rename')?.detail).toMatch(/^instance\d+\.example\.com/);
  });

  it('a create that fails: burnin-create fails with the script\'s words, exit 1 naming the phase; the instance burnin leaves is removed', () => {
    const dir = newDef('bad-create', 'blank');
    fs.writeFileSync(path.join(dir, 'create'), '#!/bin/sh\necho "create fails on purpose" >&2\nexit 1\n', { mode: 0o755 });
    const r = runCli(['test', '--cluster', '--state', state, '--os-dir', dir, '--hypervisor', 'fake', '--disk-size', '16', '--burnin'], { env: process.env, timeout: 0 });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^burnin: Creating instances +failed /m);
    expect(r.stdout).toMatch(/^burnin: Stopping and starting instances +skipped +needs burnin-create, which did not pass$/m);
    expect(r.stderr).toMatch(/burnin: Creating instances failed: burnin failed in "Creating instances": ganeti\.errors\.OpExecError: Could not add os for instance .*OS create script failed/);
    expect(r.stderr).toContain('create fails on purpose');
    // Burnin removes only the instances it created: the admin-down one is the cleanup's.
    expect(r.stdout).toMatch(/^cleanup \(instances left behind\) +passed .*removed instance\d+\.example\.com/m);
    expect(instances()).toBe('');
  });

  it('a rename that fails: burnin-rename fails naming the phase and the script (Ganeti only warns); its instance is removed', () => {
    const dir = newDef('bad-rename', 'blank');
    // Renaming to another name fails; Ganeti also runs rename with equal names (after an import, burnin's rename to the same name).
    fs.writeFileSync(path.join(dir, 'rename'), '#!/bin/sh\nif [ "$OLD_INSTANCE_NAME" != "$INSTANCE_NAME" ]; then echo "rename fails on purpose" >&2; exit 1; fi\n', { mode: 0o755 });
    const { code, run } = burnin(dir, ['--disk-size', '16']);
    expect(code).toBe(1);
    const s = step(run, 'burnin-rename');
    expect(s?.status).toBe('failed');
    // Ganeti renames anyway and only warns (LUInstanceRename), so burnin goes on: the step fails on the warning.
    expect(s?.detail).toMatch(/^burnin went on, but in "Renaming instances" Ganeti warned that an OS script failed: Could not run OS rename script .*rename fails on purpose/s);
    for (const name of ['burnin-create', 'burnin-reinstall', 'burnin-rename-same']) expect([name, step(run, name)?.status]).toEqual([name, 'passed']);
    // The lifecycle's own import (Ganeti runs rename after it) and rename read the same warning.
    expect(step(run, 'import')?.detail).toMatch(/^exit 0, but Ganeti warned that an OS script failed: Failed to run rename script .*rename fails on purpose/s);
    expect(step(run, 'rename')?.detail).toMatch(/^exit 0, but Ganeti warned that an OS script failed: Could not run OS rename script .*rename fails on purpose/s);
    expect(step(run, 'burnin-remove')?.status).toBe('passed');
    expect(instances()).toBe('');
  });

  it('Ctrl-C during burnin: exit 130, burnin stopped, its instance removed', async () => {
    const dir = blankDef();
    const child = spawn(process.execPath, [BIN, 'test', '--cluster', '--state', state, '--os-dir', dir, '--hypervisor', 'fake', '--disk-size', '64', '--burnin', '--json'], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    let sent = false;
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      // Burnin's instance exists and its next job runs.
      if (!sent && /✓ burnin: Creating instances/.test(stderr)) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(sent).toBe(true);
    expect(code).toBe(130);
    const doc = JSON.parse(stdout) as { interrupted: boolean; runs: LifecycleRun[] };
    expect(doc.interrupted).toBe(true);
    expect(step(doc.runs[0], 'burnin-remove')?.detail).toBe('interrupted');
    expect(spawnSync('pgrep', ['-f', 'tools/burnin']).stdout.toString().trim()).toBe('');
    expect(instances()).toBe('');
  });

  (FULL_MATRIX ? it : it.skip)(`blank on a Ganeti ${OTHER} box (GANETI_OS_MATRIX=full): the same phases pass, the run names the release`, () => {
    const other = path.join(work, 'box-other');
    try {
      const up = box(['up', '--ganeti', OTHER], other, {}, 1200000);
      if (up.code !== 0) throw new Error(`cluster up --ganeti ${OTHER} failed:\n${up.stderr}`);
      const t0 = Date.now();
      const { code, run } = testOnBox(blankDef(), ['--hypervisor', 'fake', '--disk-size', '64', '--burnin'], other, 3600000);
      timings[`blank-os on ${OTHER}`] = (Date.now() - t0) / 1000;
      expect(failures(run)).toEqual([]);
      expect(code).toBe(0);
      expect(run.ganeti).toBe(OTHER);
      expect(run.steps.filter((s) => s.step.startsWith('burnin-') && s.status !== 'skipped').map((s) => s.step)).toEqual(ON_FAKE.filter((n) => !/-disks$/.test(n) || n === 'burnin-activate-disks'));
      expect(onBox(other, ['gnt-instance', 'list', '--no-headers', '-o', 'name']).trim()).toBe('');
    } finally {
      box(['down'], other);
    }
  });

  // Burnin runs create three times more (create, two reinstalls): with the prefilled cache the
  // whole run took 2.5 minutes here.
  it('debian on fake: the lifecycle and every burnin phase pass', () => {
    const { code, run } = burnin(newDef('debian-os', 'debian'), []);
    expect(failures(run)).toEqual([]);
    expect(code).toBe(0);
    expect(step(run, 'prefill')?.status).toBe('passed');
    burninPassed(run);
  });

  it('image on fake (file disks): the lifecycle and every burnin phase pass', () => {
    const img = fakeImageForBox('gpt-ubuntu', 'qcow2', 'burnin', cleanups);
    const dir = newDef('cloud', 'image', ['--variant', 'fake']);
    const add = runCli(['add-variant', 'fake', '--set', `IMAGE=${img.path}`, '--set', `SHA256=${img.sha256}`], { cwd: dir, env: process.env, timeout: 0 });
    if (add.code !== 0) throw new Error(add.stderr);
    const { code, run } = burnin(dir, ['--disk-size', '256', '--osparam', 'grow-root=yes']);
    expect(failures(run)).toEqual([]);
    expect(code).toBe(0);
    burninPassed(run);
  });
});
