/**
 * Issue 15, "cold create twice as fast": the debian template builds a new base system in a
 * tmpfs (BUILD_TMPFS) and makes the cached filesystem image from that tree instead of unpacking
 * the tarball again. What is cached must not depend on where it was built (owners, modes, file
 * capabilities, ACLs), a build that does not fit in the tmpfs is done again on disk, and no path
 * (success, a failing build, Ctrl-C, a bad setting) leaves a mount or a temporary file behind.
 *
 * Small base systems (INSTALL_VARIANT=essential with apt, passwd and iputils-ping, whose ping has
 * a file capability: an xattr), each in a private cache, through Ganeti's InstanceOsAdd.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd } from './helpers/ganeti';
import { resources, sh, sparseDisk, withMountedRange } from './helpers/disks';
import { DebianWorkspace, debianWorkspace, releaseWorkspace } from './helpers/debian';
import { describeSystem } from './helpers/system';
import { loopDevices, mountTable } from '../src/system/kernel';
import { BIN } from './helpers/cli';

const NEEDS = ['mmdebstrap', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'e2image', 'getfattr', 'mountpoint'];
const SMALL = ['INSTALL_VARIANT=essential', 'BASE_PACKAGES="apt passwd iputils-ping"'];

/** Mounts of the template's build tmpfs anywhere on this machine. */
const buildMounts = () => mountTable().filter((m) => m.source === 'ganeti-os-build');

/** Every entry of an unpacked tree: path, owner, group, mode, type, link target, and its xattrs. */
function describeTree(dir: string): { entries: string[]; xattrs: string } {
  const entries = sh('find', [dir, '-printf', '%P %U %G %m %y %l\\n']).split('\n').filter(Boolean).sort();
  const dump = spawnSync('getfattr', ['-R', '-P', '-d', '-m', '-', '--absolute-names', '.'], { cwd: dir, encoding: 'utf8' }).stdout;
  // getfattr lists files in directory order: sort the blocks.
  const xattrs = dump.split('\n\n').map((b) => b.trim()).filter(Boolean).sort().join('\n\n');
  return { entries, xattrs };
}

describeSystem('debian template: building the base system in memory', { root: true, ganeti: true, commands: NEEDS }, () => {
  let ws: DebianWorkspace;
  let defaults: string;
  let base: string;

  const instance = (name: string, disk: string): InstanceSpec => ({
    name,
    os: 'debian-os+bookworm',
    os_dir: ws.osDir,
    disks: [{ path: disk }],
    nics: [{ mac: 'aa:00:00:12:34:56' }],
    hvparams: { kernel_path: '/boot/vmlinuz' },
    osparams: { 'install-kernel': 'no', 'partition-style': 'none' },
  });
  const setConfig = (lines: string[]) => fs.writeFileSync(defaults, base + [...SMALL, ...lines, ''].join('\n'));
  const cacheOf = (name: string) => path.join(ws.work, `cache-${name}`);
  const tarIn = (cache: string) => {
    const tars = fs.readdirSync(cache).filter((f) => f.endsWith('.tar'));
    expect(tars).toHaveLength(1);
    return path.join(cache, tars[0]);
  };
  const unpack = (tar: string, name: string) => {
    const dir = path.join(ws.work, name);
    fs.mkdirSync(dir);
    sh('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls', '-xpf', tar, '-C', dir]);
    return dir;
  };
  /** The newest create log of the instance `name` (Ganeti names logs add-<os>-<instance>-<time>.log). */
  const logOf = (name: string) => {
    const f = fs.readdirSync(ws.logdir).filter((n) => n.startsWith('add-') && n.includes(`-${name}-`)).sort().pop();
    if (!f) throw new Error(`no create log of ${name} in ${ws.logdir}`);
    return fs.readFileSync(path.join(ws.logdir, f), 'utf8');
  };
  const expectNoLeaks = () => {
    expect(resources(ws.work, ws.tmp)).toEqual({ loops: [], mounts: [], temps: [] });
    expect(buildMounts()).toEqual([]);
  };

  beforeAll(() => {
    ws = debianWorkspace('debian-build');
    defaults = path.join(ws.osDir, 'defaults.conf');
    base = fs.readFileSync(defaults, 'utf8');
  });

  afterAll(() => {
    // A tmpfs a failed test left inside the workspace is unmounted by the release.
    releaseWorkspace(ws);
  });

  it('builds in a tmpfs, caches the same system as a build on disk, and makes the image from that tree', () => {
    setConfig([`CACHE_DIR=${cacheOf('ram')}`, 'BUILD_TMPFS=2048']);
    const d1 = sparseDisk(path.join(ws.work, 'ram.img'), 1024);
    const r1 = instanceOsAdd(instance('ram.example.com', d1), { logdir: ws.logdir });
    expect(r1.error).toBeUndefined();
    const log1 = logOf('ram.example.com');
    expect(log1).toMatch(/building the base system in memory \(a tmpfs of at most 2048 MiB; BUILD_TMPFS\)/);
    expect(log1).toMatch(/cached the base system as a ext4 image/);
    expectNoLeaks();

    setConfig([`CACHE_DIR=${cacheOf('disk')}`, 'BUILD_TMPFS=no']);
    const d2 = sparseDisk(path.join(ws.work, 'disk.img'), 1024);
    const r2 = instanceOsAdd(instance('disk.example.com', d2), { logdir: ws.logdir });
    expect(r2.error).toBeUndefined();
    expect(logOf('disk.example.com')).toMatch(/building the base system on disk in \S+ \(BUILD_TMPFS=no\)/);
    expectNoLeaks();

    const inRam = describeTree(unpack(tarIn(cacheOf('ram')), 'tree-ram'));
    const onDisk = describeTree(unpack(tarIn(cacheOf('disk')), 'tree-disk'));
    expect(inRam.entries.length).toBeGreaterThan(3000);
    expect(inRam.entries).toEqual(onDisk.entries);
    // ping's capability (security.capability) is kept through the tmpfs.
    expect(inRam.xattrs).toMatch(/# file: \.\/usr\/bin\/ping\nsecurity\.capability=/);
    expect(inRam.xattrs).toEqual(onDisk.xattrs);

    // The image made from the in-memory tree holds what the tarball holds, file capabilities too.
    const img = fs.readdirSync(cacheOf('ram')).filter((f) => f.endsWith('.ext4.img')).map((f) => path.join(cacheOf('ram'), f))[0];
    expect(spawnSync('e2fsck', ['-fn', img]).status).toBe(0);
    const fromImage = withMountedRange(img, 0, fs.statSync(img).size, (root) => describeTree(root));
    expect(fromImage.entries.filter((e) => !e.startsWith('lost+found '))).toEqual(inRam.entries);
    expect(fromImage.xattrs).toEqual(inRam.xattrs);
  }, 600_000);

  it('builds again on disk when the system does not fit in the tmpfs', () => {
    // 32 MiB: apt's index does not fit (apt deletes what it could not write, so the tmpfs is not
    // left full: the installer's 'No space left on device' tells).
    setConfig([`CACHE_DIR=${cacheOf('small')}`, 'BUILD_TMPFS=32']);
    const d = sparseDisk(path.join(ws.work, 'small.img'), 1024);
    const r = instanceOsAdd(instance('small.example.com', d), { logdir: ws.logdir });
    expect(r.error).toBeUndefined();
    const log = logOf('small.example.com');
    expect(log).toMatch(/a tmpfs of at most 32 MiB/);
    expect(log).toMatch(/did not fit in the tmpfs; building it again on disk/);
    expect(log).not.toMatch(/the build with eatmydata failed/);
    expect(log).toMatch(/cached the base system as a ext4 image/);
    expectNoLeaks();
  }, 600_000);

  it('a failing build and a bad BUILD_TMPFS fail create, leave the disk untouched and nothing mounted', () => {
    const d = sparseDisk(path.join(ws.work, 'fail.img'), 1024);
    setConfig([`CACHE_DIR=${cacheOf('fail')}`, 'BUILD_TMPFS=2048', 'EXTRA_PKGS="no-such-package-gos"']);
    const r = instanceOsAdd(instance('fail.example.com', d), { logdir: ws.logdir });
    expect(r.ok).toBe(false);
    const log = logOf('fail.example.com');
    expect(log).toMatch(/building the base system in memory/);
    expect(log).toMatch(/the installation of the base system failed/);
    expect(log).not.toMatch(/did not fit/);
    expect(sh('du', ['--block-size=1', d]).split('\t')[0]).toBe('0');
    expectNoLeaks();

    setConfig([`CACHE_DIR=${cacheOf('fail')}`, 'BUILD_TMPFS=lots']);
    const bad = instanceOsAdd(instance('bad.example.com', d), { logdir: ws.logdir });
    expect(bad.ok).toBe(false);
    expect(logOf('bad.example.com')).toMatch(/BUILD_TMPFS must be auto, no or a size in MiB, not 'lots'/);
    expect(sh('du', ['--block-size=1', d]).split('\t')[0]).toBe('0');
    expectNoLeaks();
  }, 600_000);

  /**
   * `ganeti-os run create` on a new 1 GiB disk `d` in its own process group, Ctrl-C'd (SIGINT to
   * the group) once `ready()` says so (polled every 100 ms), or sent `signal` alone; its exit code
   * and standard error.
   */
  const interruptCreate = async (d: string, style: string, ready: () => boolean, signal: NodeJS.Signals = 'SIGINT') => {
    const child = spawn(process.execPath, [BIN, 'run', 'create', '--os-dir', ws.osDir, '--disk', `${d}:1G`, '--osparam', 'install-kernel=no', '--osparam', `partition-style=${style}`], {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let interrupted = false;
    const poll = setInterval(() => {
      if (interrupted || !ready()) return;
      interrupted = true;
      if (signal === 'SIGINT') process.kill(-child.pid!, 'SIGINT');
      else child.kill(signal);
    }, 100);
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearInterval(poll);
    return { interrupted, code, err };
  };

  it.each([
    ['in a tmpfs', '2048'],
    ['on disk', 'no'],
  ])('Ctrl-C during a build %s exits 130 and leaves nothing mounted (the chroot\'s proc, sys, dev too)', async (_where, setting) => {
    const cache = cacheOf(`int-${setting}`);
    setConfig([`CACHE_DIR=${cache}`, `BUILD_TMPFS=${setting}`]);
    // Interrupt once the installer is at work in its chroot: dpkg is unpacked and the chroot has
    // its proc mounted (mmdebstrap mounts it to run the maintainer scripts).
    const inChroot = () => {
      const proc = mountTable()
        .map((m) => m.target)
        .find((m) => m.startsWith(ws.tmp) && m.endsWith('/root/proc'));
      return !!proc && fs.existsSync(path.join(path.dirname(proc), 'usr', 'bin', 'dpkg'));
    };
    const r = await interruptCreate(path.join(ws.work, `int-${setting}.img`), 'none', inChroot);
    expect(r.interrupted).toBe(true);
    expect(r.code).toBe(130);
    // The shell Ganeti's command line starts ends by the signal; the script, after its cleanup.
    expect(r.err).toMatch(/interrupted: sent SIGTERM to create, which ended with (signal 15|exit code 130), its disks released/);
    expect(r.err).not.toMatch(/ left disk /);
    expectNoLeaks();
    expect(fs.existsSync(cache) ? fs.readdirSync(cache).filter((f) => f.endsWith('.tar')) : []).toEqual([]);
  }, 600_000);

  it.each([['Ctrl-C', 'SIGINT'], ['the terminal closing', 'SIGHUP']] as [string, NodeJS.Signals][])('%s while the new system is mounted (a site hook running): exit 130, the disk released', async (_what, signal) => {
    // The base system cached by the first test; a site hook holds create while disk 0 is mounted.
    const hooks = path.join(ws.work, 'hooks-wait');
    const marker = path.join(ws.work, `hook-started-${signal}`);
    fs.mkdirSync(hooks, { recursive: true });
    fs.writeFileSync(path.join(hooks, '50-wait'), `#!/bin/sh\ncd "$TARGET" && touch ${marker} && sleep 60\n`, { mode: 0o755 });
    setConfig([`CACHE_DIR=${cacheOf('ram')}`, `HOOKS_DIR=${hooks}`]);
    const d = path.join(ws.work, `hook-${signal}.img`);
    const r = await interruptCreate(d, 'msdos', () => fs.existsSync(marker), signal);
    expect(r.interrupted).toBe(true);
    expect(r.code).toBe(130);
    expect(r.err).toMatch(/its disks released/);
    expect(r.err).not.toMatch(/ left disk /);
    expectNoLeaks();
    expect(loopDevices().some((l) => l.backFile.includes(d))).toBe(false);
  }, 600_000);
});
