/** `ganeti-os cluster` and `ganeti-os test --cluster`: the command line's refusals, which need no box (and no root). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runInProcess, tempDir } from './helpers/cli';

describe('ganeti-os cluster (command line)', () => {
  let work: string;
  beforeAll(() => {
    work = tempDir('cluster-cli');
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const state = () => path.join(work, 'no-box');

  it.each([
    [['cluster', 'up', '--nodes', 'three'], /--nodes wants a number from 1 to 8, not 'three'/],
    [['cluster', 'up', '--nodes', '0'], /--nodes wants a number from 1 to 8/],
    [['cluster', 'up', '--nodes', '9'], /--nodes wants a number from 1 to 8/],
    // Only the releases ganeti-os follows (src/ganeti/releases.ts), named in the refusal.
    [['cluster', 'up', '--ganeti', '2.16'], /--ganeti 2\.16: not a supported Ganeti release; supported: 3\.0, 3\.1/],
    [['test', '--cluster', '--ganeti', '2.16'], /--ganeti 2\.16: not a supported Ganeti release; supported: 3\.0, 3\.1/],
    [['test', '--cluster', '--hypervisor', 'xen-pvm'], /--hypervisor must be kvm or fake with --cluster/],
    [['test', '--cluster', '--disk-template', 'plain'], /--disk-template must be file or ext/],
    [['test', '--cluster', '--memory', '1G'], /--memory wants a positive whole number of MiB/],
    [['test', '--cluster', '--osparam', 'a=b,c=d'], /'a=b,c=d' is not name=value/],
    [['test', '--cluster', '--keep', '--accel', 'kvm'], /--accel, --keep: not with --cluster/],
    [['test', '--disk-template', 'ext', '--no-prefill'], /--disk-template, --prefill only with --cluster/],
    [['test', '--burnin'], /--burnin only with --cluster/],
    // burnin.py gives its disks no ExtStorage provider ("Missing provider for template 'ext'").
    [['test', '--cluster', '--burnin', '--disk-template', 'ext'], /--burnin runs on file disks only \(Ganeti's burnin gives ext disks no provider\), not with --disk-template ext/],
    // Ganeti's fake hypervisor (hv_fake.py) has only migration_mode: no kernel_path to set.
    [['test', '--cluster', '--hypervisor', 'fake', '--hvparam', 'kernel_path='], /Unknown parameter 'kernel_path' \(fake hypervisor parameters: migration_mode\)/],
    [['test', '--hypervisor', 'fake', '--hvparam', 'kernel_path='], /Unknown parameter 'kernel_path' \(fake hypervisor parameters: migration_mode\)/],
    // --firmware with --cluster is proven by a boot on kvm's serial console (issue 24).
    [['test', '--cluster', '--hypervisor', 'fake', '--firmware', 'uefi'], /--firmware uefi: not with --hypervisor fake \(the fake hypervisor boots nothing; --firmware needs kvm\)/],
    [['test', '--cluster', '--firmware', 'uefi', '--no-boot'], /--firmware uefi: not with --no-boot/],
    [['test', '--cluster', '--firmware', 'uefi', '--firmware', 'bios'], /--firmware bios, --firmware uefi: --cluster starts its instance under one firmware; give --firmware once/],
    [['test', '--cluster', '--firmware', 'efi'], /--firmware 'efi': use bios, uefi, secureboot/],
  ])('%j is a usage error, before anything is touched', async (args, message) => {
    const local = args[0] === 'test' && !args.includes('--cluster');
    const r = await runInProcess([...args, ...(args[0] === 'test' ? ['--os-dir', work] : []), ...(local ? [] : ['--state', state()])], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(fs.existsSync(state())).toBe(false);
  });

  it('exec without a command is a usage error', async () => {
    const r = await runInProcess(['cluster', 'exec', '--state', state()], { cwd: work });
    expect(r.code).toBe(2);
  });

  it('exec, test --cluster and status name the missing box and how to start one', async () => {
    for (const args of [['cluster', 'exec', '--state', state(), '--', 'true'], ['test', '--cluster', '--state', state(), '--os-dir', work]]) {
      const r = await runInProcess(args, { cwd: work });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no cluster box runs at ${state()} ('ganeti-os cluster up --state ${state()}' starts one)`);
    }
    const s = await runInProcess(['cluster', 'status', '--state', state(), '--json'], { cwd: work });
    expect(s.code).toBe(1);
    expect(JSON.parse(s.stdout)).toMatchObject({ state: 'absent', stateDir: state() });
  });

  it('cluster test is gone: the lifecycle through the box is test --cluster', async () => {
    const r = await runInProcess(['cluster', 'test', '--state', state()], { cwd: work });
    expect(r.code).toBe(2);
  });
});
