/**
 * The image template end to end: a small bootable Debian cloud image (cloud-init,
 * cloud-guest-utils, the cloud kernel; one disk that boots under BIOS and UEFI, as Debian's
 * genericcloud images do: GRUB in a BIOS boot partition, Debian's signed shim and GRUB on an EFI
 * system partition at the removable-media path, root last) built from the node's own mirror by
 * the committed recipe test/helpers/cloud-image.sh and cached across runs in
 * /var/cache/ganeti-os/test-images, installed through Ganeti's InstanceOsAdd, booted under QEMU
 * TCG (BIOS) until cloud-init has finished with the instance's name and static address; then
 * exported, imported under another name (Ganeti's rename after the import) and booted again:
 * new name, new instance-id, same address. Two boots prove create, export, import and rename.
 * Then `ganeti-os test` on the same definition (issue 24): the firmware disk 0 is made for is
 * read from it (BIOS and UEFI), the created disk and the import boot under UEFI, and the
 * import's disk grows before its boot, which cloud-init's growpart and resizefs must fill.
 *
 * Per release: trixie (Debian's stable release) in CI, bookworm too under FULL_MATRIX
 * (`npm run test:matrix`). Each release takes two TCG boots (~2-4 min) plus, once per recipe
 * version, building its image (~2-3 min); `test` two more boots beside each other (~3 min; under
 * FULL_MATRIX the created disk boots under BIOS too: one more).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd, runExport, runImport, runRename } from './helpers/ganeti';
import { releaseResources, resources, sparseDisk } from './helpers/disks';
import { bootableImage } from './helpers/images';
import { bootUntil } from './helpers/qemu';
import { describeSystem, FULL_MATRIX, matrixCases } from './helpers/system';
import { consoleText } from '../src/boot/console';
import { runCli, runCliOk, tempDir } from './helpers/cli';
import { testDocument } from './helpers/test-run';

const NEEDS = ['mmdebstrap', 'qemu-img', 'qemu-system-x86_64', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'resize2fs', 'zstd', 'mkfs.vfat', 'mcopy', 'mtype', 'debugfs'];
const OVMF_FILES = ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'];
const MAC = 'aa:00:00:12:34:56';
const BOOT_TIMEOUT_MS = 600_000;

const RELEASES = [
  { suite: 'trixie', variant: 'debian13' },
  { suite: 'bookworm', variant: 'debian12' },
];

for (const { suite, variant } of matrixCases(RELEASES, (r) => r.suite === 'trixie')) {
  describeSystem(`image template: a Debian ${suite} cloud image installed, booted, exported, imported and renamed`, { root: true, ganeti: true, commands: NEEDS, files: OVMF_FILES }, () => {
    let work: string;
    let osDir: string;
    let tmp: string;
    let logdir: string;
    let firstId = '';

    const disk = (name: string) => path.join(work, name);
    const instance = (name: string, d: string): InstanceSpec => ({
      name,
      os: `cloud+${variant}`,
      os_dir: osDir,
      disks: [{ path: d }],
      // QEMU's user network: 10.0.2.0/24, gateway 10.0.2.2, name server 10.0.2.3.
      nics: [{ mac: MAC, ip: '10.0.2.15', network: { subnet: '10.0.2.0/24', gateway: '10.0.2.2' } }],
      hvparams: { kernel_path: '', serial_console: true },
      osparams: { 'dns-servers': '10.0.2.3', 'user-data': path.join(work, 'user-data') },
    });
    const expectNoLeaks = () => expect(resources(work, tmp)).toEqual({ loops: [], mounts: [], temps: [] });
    /** Every sign of a finished first boot, in any order. */
    const booted = (short: string) =>
      new RegExp(`^(?=[^]*Cloud-init v\\. \\S+ finished at)(?=[^]*GOS-TEST host=${short} id=iid-)(?=[^]*${short} login:)`);

    beforeAll(() => {
      work = tempDir('image-boot');
      tmp = path.join(work, 'tmp');
      logdir = path.join(work, 'log');
      fs.mkdirSync(tmp);
      const image = bootableImage(suite);
      // Runs once per instance: a new instance-id shows as a second line with another id.
      fs.writeFileSync(
        path.join(work, 'user-data'),
        '#cloud-config\nruncmd:\n  - [sh, -c, \'echo "GOS-TEST host=$(hostname) id=$(cat /var/lib/cloud/data/instance-id)" > /dev/ttyS0\']\n',
      );
      const run = (args: string[], cwd: string) => runCliOk(args, { cwd, env: process.env, timeout: 0 });
      run(['new', 'cloud', '--template', 'image', '--variant', variant, '--yes'], work);
      osDir = path.join(work, 'cloud');
      run(['add-variant', variant, '--set', `IMAGE=${image.path}`, '--set', `SHA256=${image.sha256}`], osDir);
      fs.appendFileSync(path.join(osDir, 'defaults.conf'), `CACHE_DIR=${path.join(work, 'cache')}\nTMPDIR=${tmp}\n`);
    }, 1_200_000);

    afterAll(() => {
      if (!work) return;
      releaseResources(work, tmp);
      fs.rmSync(work, { recursive: true, force: true });
    });

    it('installs through Ganeti and boots: cloud-init finishes with the name, the static address and the default route', async () => {
      const d = sparseDisk(disk('inst1.img'), 2048);
      const r = instanceOsAdd(instance('inst1.example.com', d), { logdir });
      expect(r.error).toBeUndefined();
      expectNoLeaks();
      const b = await bootUntil(d, booted('inst1'), { log: path.join(work, 'boot1.log'), timeoutMs: BOOT_TIMEOUT_MS, mac: MAC });
      if (!b.matched) throw new Error(`no finished cloud-init after ${b.seconds}s; console tail:\n${b.console.slice(-4000)}`);
      // eslint-disable-next-line no-console
      console.log(`image template, ${suite}: first boot to cloud-init finished in ${b.seconds.toFixed(0)} s`);
      expect(b.console).toMatch(/ci-info: \|\s+eth0\s+\|\s+True\s+\|\s+10\.0\.2\.15\s+\|\s+255\.255\.255\.0\s+\|/);
      expect(b.console).toMatch(/ci-info: \|\s+0\s+\|\s+0\.0\.0\.0\s+\|\s+10\.0\.2\.2\s+\|/);
      expect(b.console).toMatch(/DataSourceNoCloud \[seed=\/var\/lib\/cloud\/seed\/nocloud\]/);
      // The root filled the 2 GiB disk (cloud-init found nothing left to grow).
      expect(b.console).not.toMatch(/growpart.*(FAILED|failed)/);
      firstId = /GOS-TEST host=inst1 id=(iid-[0-9a-f-]+)/.exec(b.console)![1];
    }, BOOT_TIMEOUT_MS + 120_000);

    it('exports, imports under another name onto a larger disk, renames, and boots as a new instance', async () => {
      const stream = disk('inst1.stream');
      const e = runExport(instance('inst1.example.com', disk('inst1.img')), 0, stream);
      expect(e.ok).toBe(true);
      const d = sparseDisk(disk('inst2.img'), 3072);
      const i = runImport(instance('inst2.example.com', d), 0, stream);
      expect(i.ok).toBe(true);
      // Root from 34 MiB (after the BIOS boot and EFI system partitions) to the GPT backup.
      expect(i.stderr).toMatch(/import: grew partition 1 from 2013 MiB to 3037 MiB/);
      // Ganeti runs rename after an import, from the exported instance's name.
      const r = runRename(instance('inst2.example.com', d), 'inst1.example.com', logdir);
      expect(r.error).toBeUndefined();
      expectNoLeaks();
      const b = await bootUntil(d, booted('inst2'), { log: path.join(work, 'boot2.log'), timeoutMs: BOOT_TIMEOUT_MS, mac: MAC });
      if (!b.matched) throw new Error(`no finished cloud-init after ${b.seconds}s; console tail:\n${b.console.slice(-4000)}`);
      // eslint-disable-next-line no-console
      console.log(`image template, ${suite}: boot of the imported, renamed copy in ${b.seconds.toFixed(0)} s`);
      const id = /GOS-TEST host=inst2 id=(iid-[0-9a-f-]+)/.exec(b.console)![1];
      expect(firstId).not.toBe('');
      expect(id).not.toBe(firstId);
      expect(b.console).toMatch(/ci-info: \|\s+eth0\s+\|\s+True\s+\|\s+10\.0\.2\.15\s+\|/);
      expect(b.console).not.toMatch(/inst1 login:/);
    }, BOOT_TIMEOUT_MS + 120_000);

    // CI boots the created disk under UEFI only (the flow above boots this image under BIOS);
    // the matrix lets `test` read the firmware from the disk: BIOS, then UEFI.
    const firmwareArgs = FULL_MATRIX ? [] : ['--firmware', 'uefi'];
    it(`ganeti-os test${firmwareArgs.length ? ' --firmware uefi' : ''}: disk 0 is made for BIOS and UEFI, boots under ${FULL_MATRIX ? 'both' : 'UEFI'}, and the grown import's root fills its disk (cloud-init's growpart)`, () => {
      const testWork = path.join(work, 'test-run');
      fs.mkdirSync(testWork);
      const r = runCli(['test', '--os-dir', osDir, '--variant', variant, '--work-dir', testWork, '--json', '--keep', '--hvparam', 'kernel_path=', '--disk-size', '2G', ...firmwareArgs], {
        cwd: work,
        env: process.env,
        timeout: 2 * BOOT_TIMEOUT_MS + 600_000,
        killSignal: 'SIGINT',
      });
      const { run, step } = testDocument(r);
      // eslint-disable-next-line no-console
      console.log(`image template, ${suite}: ganeti-os test in ${run.seconds.toFixed(0)} s; ${run.steps.map((x) => `${x.step} ${x.status} ${x.seconds.toFixed(0)} s (from ${x.start.toFixed(0)} s)`).join(', ')}; boot: ${step('boot').detail}; boot-import: ${step('boot-import').detail}`);
      if (r.code !== 0) throw new Error(`ganeti-os test failed (exit ${r.code}):\n${JSON.stringify(run.steps.filter((x) => x.status !== 'passed'), null, 1)}\n${r.stderr.slice(-4000)}`);
      expect(run.steps.map((x) => [x.step, x.status])).toEqual(['verify', 'create', 'boot', 'export', 'import', 'grow', 'boot-import', 'rename', 'reinstall'].map((n) => [n, 'passed']));
      // What disk 0 is made for comes from the disk: the image's MBR boot code and its ESP.
      expect(step('create').detail).toMatch(/^ext4 root \(gpt\), kernel \S+, GRUB in the MBR, signed shim and GRUB on the EFI system partition: boots by itself under BIOS and UEFI \(Secure Boot: signed shim\)$/);
      const createLog = fs.readFileSync(step('create').logs[0], 'utf8');
      expect(createLog).toMatch(/disk 0 boots under BIOS and UEFI, as the image does \(boot code in its MBR; \/EFI\/BOOT\/BOOTX64\.EFI on its EFI system partition, partition 3\)/);
      const firmwares = FULL_MATRIX ? ['BIOS', 'UEFI'] : ['UEFI'];
      expect(step('boot').detail).toMatch(new RegExp(`^ready under ${firmwares.map((f) => `${f} after \\d+ s`).join(', ')}$`));
      for (const c of step('boot').checks!) expect(c.ok).not.toBe(false);
      // The import's disk grew after import (as gnt-instance grow-disk leaves it): its boot under
      // UEFI filled it (nothing but the guest's cloud-init, growpart and resizefs at every boot,
      // touched the disk in between).
      expect(step('grow').detail).toMatch(/^2560 MiB → 3072 MiB/);
      expect(step('boot-import').detail).toMatch(/^ready under UEFI after \d+ s; root filesystem \d+ MiB of the 3038 MiB from its start at 34 MiB to the end of the 3072 MiB disk after the boot$/);
      expect(step('boot-import').checks!.find((c) => c.name === 'clean shutdown')).toMatchObject({ ok: true });
      const consoles = (n: string) => step(n).logs.filter((l) => /console-/.test(l)).map((l) => consoleText(fs.readFileSync(l, 'latin1')));
      const created = consoles('boot');
      expect(created).toHaveLength(firmwares.length);
      created.forEach((text, i) => (firmwares[i] === 'UEFI' ? expect(text).toMatch(/efi: EFI v\d/) : expect(text).not.toMatch(/efi: EFI v\d/)));
      const grown = consoles('boot-import')[0];
      expect(grown).toMatch(/efi: EFI v\d/);
      // Nothing of the run is left running or attached.
      expect(spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${testWork}`]).status).toBe(1);
      expect(resources(testWork, tmp)).toEqual({ loops: [], mounts: [], temps: [] });
      fs.rmSync(testWork, { recursive: true, force: true });
    }, 2 * BOOT_TIMEOUT_MS + 660_000);
  });
}
