/**
 * The image template end to end: a small bootable Debian cloud image (cloud-init,
 * cloud-guest-utils, the cloud kernel, GRUB written without partition devices) built from the
 * node's own mirror by the committed recipe test/helpers/cloud-image.sh and cached across runs
 * in /var/cache/ganeti-os/test-images, installed through Ganeti's InstanceOsAdd, booted under
 * QEMU TCG until cloud-init has finished with the instance's name and static address; then
 * exported, imported under another name (Ganeti's rename after the import) and booted again:
 * new name, new instance-id, same address. Two boots prove create, export, import and rename.
 *
 * Per release: trixie (Debian's stable release) in CI, bookworm too under FULL_MATRIX
 * (`npm run test:matrix`). Each release takes two TCG boots (~2-4 min) plus, once per recipe
 * version, building its image (~1-2 min).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd, runExport, runImport, runRename } from './helpers/ganeti';
import { releaseResources, resources, sparseDisk } from './helpers/disks';
import { bootableImage } from './helpers/images';
import { bootUntil } from './helpers/qemu';
import { describeSystem, matrixCases } from './helpers/system';
import { runCliOk, tempDir } from './helpers/cli';

const NEEDS = ['mmdebstrap', 'qemu-img', 'qemu-system-x86_64', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'resize2fs', 'zstd'];
const MAC = 'aa:00:00:12:34:56';
const BOOT_TIMEOUT_MS = 600_000;

const RELEASES = [
  { suite: 'trixie', variant: 'debian13' },
  { suite: 'bookworm', variant: 'debian12' },
];

for (const { suite, variant } of matrixCases(RELEASES, (r) => r.suite === 'trixie')) {
  describeSystem(`image template: a Debian ${suite} cloud image installed, booted, exported, imported and renamed`, { root: true, ganeti: true, commands: NEEDS }, () => {
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
      expect(i.stderr).toMatch(/import: grew partition 1 from 2045 MiB to 3069 MiB/);
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
  });
}
