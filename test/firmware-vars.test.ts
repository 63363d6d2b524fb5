/**
 * Issue 24's bad input "a variable store that cannot be copied": `ganeti-os test --firmware uefi`
 * gives each UEFI boot its own copy of OVMF's variable store in the run's log directory. When
 * that copy cannot be made (here: the work directory is a 256 KiB tmpfs, smaller than the 528 KiB
 * store), the boot fails naming the store, where it was going and why, before QEMU starts, and
 * the run exits 1 with nothing left running or mounted. The tmpfs lives in a mount namespace of
 * the CLI's own (unshare -m), so it goes when the CLI ends, whatever happens.
 *
 * A blank definition with kernel_path set to a file of the test's: the boot plan is the node's
 * kernel, so the boot reaches the copy without anything installed on disk 0.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeSystem } from './helpers/system';
import { BIN, newDefinition, tempDir } from './helpers/cli';
import { testDocument } from './helpers/test-run';
import { OVMF } from '../src/boot/firmware';

describeSystem('test --firmware uefi: a variable store that cannot be copied', { root: true, commands: ['unshare', 'mount'], files: [OVMF.uefi.code, OVMF.uefi.vars] }, () => {
  let root: string;
  beforeAll(() => {
    root = tempDir('firmware-vars');
  });
  afterAll(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('fails the boot naming the store, its copy and the cause, starts no QEMU, exits 1', () => {
    const def = newDefinition(root, 'blank-os', ['--template', 'blank']);
    const work = path.join(root, 'work');
    fs.mkdirSync(work);
    const kernel = path.join(root, 'vmlinuz');
    fs.writeFileSync(kernel, 'not a kernel: the boot fails before QEMU reads it\n');
    const script = 'mount -t tmpfs -o size=256k tmpfs "$1" && shift && exec "$@"';
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', work, process.execPath, BIN, 'test', '--os-dir', def, '--work-dir', work, '--json', '--hvparam', `kernel_path=${kernel}`, '--firmware', 'uefi', '--disk-size', '64M'], { encoding: 'utf8', timeout: 120_000 });
    const { doc, step } = testDocument({ code: r.status, stdout: r.stdout, stderr: r.stderr });
    const boot = step('boot');
    expect(boot.status).toBe('failed');
    expect(boot.detail).toMatch(new RegExp(`^UEFI: cannot copy the UEFI variable store ${OVMF.uefi.vars.replace(/\./g, '\\.')} to ${work}/blank-os-\\w+/logs/ovmf-vars-disk0-uefi\\.fd: ENOSPC`));
    expect(r.status).toBe(1);
    expect(doc.ok).toBe(false);
    // No QEMU was started for it, and the tmpfs went with the CLI's namespace.
    expect(spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${work}`]).status).toBe(1);
    expect(fs.readFileSync('/proc/mounts', 'utf8')).not.toContain(work);
  });
});
