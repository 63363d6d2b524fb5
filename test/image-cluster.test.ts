/**
 * The image template through a real Ganeti cluster (`ganeti-os cluster` box): installed on the
 * node, judged by gnt-os, an instance added from a fake cloud image, exported, imported (Ganeti
 * runs rename after it), renamed, reinstalled and removed by the gnt-* commands, the cluster
 * verified. No boot here (test/image-boot.test.ts boots the real image): this proves the
 * scripts under Ganeti's daemons, job queue and import-export daemon.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { box, BOX_NEED, onBox, testOnBox } from './helpers/box';
import { REPO, runCliOk, tempDir } from './helpers/cli';
import { fakeImageForBox } from './helpers/images';
import { describeSystem } from './helpers/system';

jest.setTimeout(1800000);

describeSystem('image template through the cluster box', { ...BOX_NEED, commands: [...BOX_NEED.commands, 'qemu-img', 'mkfs.vfat', 'sfdisk'] }, () => {
  let work: string;
  let state: string;
  const cleanups: (() => void)[] = [];

  beforeAll(() => {
    work = tempDir('image-box');
    state = path.join(work, 'box');
    const up = box(['up'], state);
    if (up.code !== 0) throw new Error(`cluster up failed:\n${up.stderr}`);
  });
  afterAll(() => {
    for (const c of cleanups) c();
    if (!work) return;
    box(['down'], state);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('installs, exports, imports, renames, reinstalls and removes an instance with gnt-* commands', () => {
    const img = fakeImageForBox('gpt-ubuntu', 'qcow2', 'fake', cleanups);
    const run = (args: string[], cwd: string) => runCliOk(args, { cwd, env: process.env, timeout: 0 });
    run(['new', 'cloud', '--template', 'image', '--variant', 'fake', '--yes', '-C', work], REPO);
    const dir = path.join(work, 'cloud');
    run(['add-variant', 'fake', '--set', `IMAGE=${img.path}`, '--set', `SHA256=${img.sha256}`], dir);
    const r = testOnBox(dir, ['--hypervisor', 'fake', '--disk-template', 'ext', '--disk-size', '256', '--osparam', 'grow-root=yes'], state);
    // eslint-disable-next-line no-console
    console.log(`image template through the box (s): ${JSON.stringify(Object.fromEntries(r.run.steps.map((s) => [s.step, s.seconds])))}`);
    expect(r.run.steps.filter((s) => s.status === 'failed')).toEqual([]);
    expect(r.code).toBe(0);
    for (const name of ['add', 'export', 'import', 'rename', 'reinstall', 'cluster-verify']) {
      expect([name, r.run.steps.find((s) => s.step === name)?.status]).toEqual([name, 'passed']);
    }
    expect(onBox(state, ['gnt-instance', 'list', '--no-headers', '-o', 'name']).trim()).toBe('');
  });
});
