/**
 * The Debian releases the debian template knows besides its default pair (trixie, bookworm):
 * forky (testing) and sid (unstable) build and install through Ganeti's InstanceOsAdd from the
 * node's mirror, with the apt sources each release has (sid has no -updates or security
 * archive). In CI a small base system (INSTALL_VARIANT=essential with apt and passwd) in a
 * private cache, about 15-30 s per release; under FULL_MATRIX (`npm run test:matrix`) also the
 * template's whole default package set. A frozen mirror's expired sid or forky Release file is
 * first refused (create names CHECK_VALID_UNTIL) and then accepted with CHECK_VALID_UNTIL=no.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd } from './helpers/ganeti';
import { resources, sparseDisk, withMounted } from './helpers/disks';
import { DebianWorkspace, debianWorkspace, newestLog, releaseExpired, releaseWorkspace } from './helpers/debian';
import { describeSystem, matrixCases } from './helpers/system';
import { runCli } from './helpers/cli';

const NEEDS = ['mmdebstrap', 'sfdisk', 'losetup', 'mkfs.ext4', 'e2image'];
const SMALL = ['INSTALL_VARIANT=essential', 'BASE_PACKAGES="apt passwd"'];

const CASES = [
  { release: 'forky', packages: 'small' },
  { release: 'sid', packages: 'small' },
  { release: 'forky', packages: 'default' },
  { release: 'sid', packages: 'default' },
] as const;

describeSystem('debian template: forky and sid build', { root: true, ganeti: true, commands: NEEDS }, () => {
  let ws: DebianWorkspace;
  let defaults: string;
  let base: string;
  beforeAll(() => {
    ws = debianWorkspace('releases');
    defaults = path.join(ws.osDir, 'defaults.conf');
    base = fs.readFileSync(defaults, 'utf8');
    for (const v of ['forky', 'sid']) {
      const r = runCli(['add-variant', v], { cwd: ws.osDir });
      if (r.code !== 0 || /not a release/.test(r.stderr)) throw new Error(`add-variant ${v}: ${r.stderr}`);
    }
  });
  afterAll(() => releaseWorkspace(ws));

  it.each(matrixCases(CASES, (c) => c.packages === 'small'))('$release ($packages packages): create installs it, with its own apt sources', ({ release, packages }) => {
    const cache = path.join(ws.work, `cache-${release}-${packages}`);
    const settings = [...(packages === 'small' ? SMALL : []), `CACHE_DIR=${cache}`];
    fs.writeFileSync(defaults, base + [...settings, ''].join('\n'));
    const disk = sparseDisk(path.join(ws.work, `${release}-${packages}.img`), 2048);
    const inst: InstanceSpec = {
      name: `${release}.example.com`,
      os: `debian-os+${release}`,
      os_dir: ws.osDir,
      disks: [{ path: disk }],
      nics: [{ mac: 'aa:00:00:12:34:56' }],
      hvparams: { kernel_path: '/boot/vmlinuz' },
      osparams: { 'install-kernel': 'no', 'partition-style': 'none' },
    };
    if (releaseExpired(release)) {
      // A frozen mirror (this registry is one): apt refuses the expired Release file, create says
      // which setting accepts it, and nothing is left behind.
      const refused = instanceOsAdd(inst, { logdir: ws.logdir });
      expect(refused.error).toBeTruthy();
      expect(newestLog(ws.logdir, 'add-')).toMatch(new RegExp(`Release file for ${release} has expired.*CHECK_VALID_UNTIL=no`));
      expect(resources(ws.work, ws.tmp)).toEqual({ loops: [], mounts: [], temps: [] });
      fs.writeFileSync(defaults, base + [...settings, 'CHECK_VALID_UNTIL=no', ''].join('\n'));
    }
    const r = instanceOsAdd(inst, { logdir: ws.logdir });
    if (r.error) throw new Error(`${r.error}\n${newestLog(ws.logdir, 'add-')}`);
    expect(newestLog(ws.logdir, 'add-')).toMatch(new RegExp(`installed ${release} \\(amd64\\) on ${release}\\.example\\.com`));
    expect(resources(ws.work, ws.tmp)).toEqual({ loops: [], mounts: [], temps: [] });
    withMounted(disk, (root) => {
      const sources = fs.readFileSync(path.join(root, 'etc/apt/sources.list'), 'utf8');
      expect(sources).toMatch(new RegExp(`^deb \\S+ ${release} main$`, 'm'));
      if (release === 'sid') expect(sources).not.toMatch(/-updates|-security/);
      else expect(sources).toMatch(/^deb \S+ forky-updates main$/m);
      // Debian after trixie: testing and unstable both say forky/sid until forky is released.
      expect(fs.readFileSync(path.join(root, 'etc/os-release'), 'utf8')).toMatch(/^ID=debian$/m);
      expect(fs.readFileSync(path.join(root, 'etc/debian_version'), 'utf8')).toMatch(/^(forky\/sid|1[4-9])/);
      expect(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe(`${release}.example.com\n`);
    });
    fs.rmSync(disk, { force: true });
  }, 900_000);
});
