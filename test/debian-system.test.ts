/**
 * Instances of the debian template, end to end through Ganeti 3.0's own code (InstanceOsAdd
 * with OSEnvironment, the import-export daemon's command lines, RunRenameInstance) on sparse
 * file disks: create and inspect, export, import into a larger disk and boot it under qemu,
 * rename, reinstall, more disks, and failures injected at every step with a leak check.
 *
 * The base system is cached in the definition's default cache (/var/cache/ganeti-os/debian), so
 * only the first create of a run (or of a fortnight) downloads anything.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd, runExport, runImport, runRename } from './helpers/ganeti';
import { locateRoot, releaseResources, resources, sh, sparseDisk, withMounted } from './helpers/disks';
import { bootUntil } from './helpers/qemu';
import { detachLoop } from '../src/system/kernel';
import { describeSystem } from './helpers/system';
import { ganetiAsync } from './helpers/ganeti-async';
import { runCliOk, tempDir } from './helpers/cli';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGanetiOsTestKeyOnlyForTestsXXXXXXXXXXXXXXXX test@ganeti-os';
const NEEDS = ['mmdebstrap', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'blkid', 'qemu-system-x86_64', 'run-parts'];

describeSystem('debian template: instances through Ganeti', { root: true, ganeti: true, commands: NEEDS }, () => {
  let work: string;
  let osDir: string;
  let tmp: string;
  let logdir: string;
  let defaults: string;
  let baseDefaults: string;

  const disk = (name: string) => path.join(work, name);
  const instance = (name: string, disks: string[], extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
    name,
    os: 'debian-os+bookworm',
    os_dir: osDir,
    disks: disks.map((d) => ({ path: d })),
    nics: [{ mac: 'aa:00:00:12:34:56', ip: '192.0.2.10', network: { subnet: '192.0.2.0/24', gateway: '192.0.2.1' } }],
    // The hypervisor boots from the disk (no host kernel), with a serial console.
    hvparams: { kernel_path: '', serial_console: true, serial_speed: 115200 },
    osparams: { 'ssh-authorized-keys': KEY, swap: disks.length > 1 ? 'yes' : 'no' },
    ...extra,
  });
  /** Settings for the next runs (Ganeti clears the environment: the scripts read config files). */
  const setConfig = (lines: string[]) => fs.writeFileSync(defaults, baseDefaults + lines.join('\n') + '\n');
  const read = (root: string, f: string) => fs.readFileSync(path.join(root, f), 'utf8');
  const fsUuid = (d: string) => {
    const r = locateRoot(d);
    return sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', '-O', String(r.offset), d]).trim();
  };
  const expectNoLeaks = () => expect(resources(work, tmp)).toEqual({ loops: [], mounts: [], temps: [] });

  beforeAll(() => {
    work = tempDir('debian');
    tmp = path.join(work, 'tmp');
    logdir = path.join(work, 'log');
    fs.mkdirSync(tmp);
    fs.mkdirSync(path.join(work, 'hooks'));
    runCliOk(['new', 'debian-os', '--yes'], { cwd: work, env: process.env, timeout: 0 });
    osDir = path.join(work, 'debian-os');
    defaults = path.join(osDir, 'defaults.conf');
    // The scripts' temporary directories go to a directory of this test, for the leak check.
    baseDefaults = fs.readFileSync(defaults, 'utf8') + `TMPDIR=${tmp}\nHOOKS_DIR=${path.join(work, 'hooks')}\n`;
    setConfig([]);
  });

  afterAll(() => {
    if (!work) return;
    // Never delete through a mount left behind by a failed test.
    releaseResources(work, tmp);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('refuses a disk that is too small, leaving it untouched', () => {
    const small = sparseDisk(disk('small.img'), 256);
    const r = instanceOsAdd(instance('small.example.com', [small]), { logdir });
    expect(r.ok).toBe(false);
    expect(String(r.error)).toMatch(/disk 0 is too small: 256 MiB/);
    expect(sh('sh', ['-c', `cmp -n 4194304 "$1" /dev/zero && echo zero`, 'x', small])).toContain('zero');
    expectNoLeaks();
  });

  it('refuses network=static when NIC 0 has no address, and swap without a second disk', () => {
    const d = sparseDisk(disk('d0.img'), 2048);
    const r = instanceOsAdd(instance('x.example.com', [d], { nics: [{ mac: 'aa:00:00:00:00:02' }], osparams: { network: 'static' } }), { logdir });
    expect(r.ok).toBe(false);
    expect(String(r.error)).toMatch(/parameter network is static but NIC 0 has no IP address/);
    const s = instanceOsAdd(instance('x.example.com', [d], { osparams: { swap: 'yes' } }), { logdir });
    expect(s.ok).toBe(false);
    expect(String(s.error)).toMatch(/parameter swap=yes needs a second disk/);
    expectNoLeaks();
  });

  it('creates an instance on a 2 GiB disk (with swap on disk 1) that is configured as asked', () => {
    fs.writeFileSync(path.join(work, 'hooks', '10-mark'), '#!/bin/sh\nset -e\nprintf "%s %s %s\\n" "$INSTANCE_NAME" "$BLOCKDEV" "$FSYSDEV" > "$TARGET/etc/ganeti-hook"\n', { mode: 0o755 });
    const d0 = sparseDisk(disk('d0.img'), 2048);
    const d1 = sparseDisk(disk('d1.img'), 128);
    const nics = [...instance('x', []).nics!, { mac: 'aa:00:00:12:34:57' }];
    const r = instanceOsAdd(instance('inst1.example.com', [d0, d1], { nics }), { logdir });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expectNoLeaks();

    const where = locateRoot(d0);
    expect(where.style).toBe('msdos');
    expect(where.offset).toBe(1024 * 1024);
    const uuid = fsUuid(d0);
    const swapUuid = sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', d1]).trim();
    // GRUB's boot code in the MBR, its core image right after it.
    const mbr = Buffer.alloc(2048 * 512);
    const fd = fs.openSync(d0, 'r');
    try {
      fs.readSync(fd, mbr, 0, mbr.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    expect(mbr.subarray(0, 440).includes(Buffer.from('GRUB'))).toBe(true);
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);

    withMounted(d0, (root) => {
      expect(read(root, 'etc/hostname')).toBe('inst1.example.com\n');
      expect(read(root, 'etc/mailname')).toBe('inst1.example.com\n');
      expect(read(root, 'etc/hosts')).toMatch(/^192\.0\.2\.10\tinst1\.example\.com inst1$/m);
      expect(read(root, 'etc/hosts')).toMatch(/^127\.0\.0\.1\s+localhost$/m);
      const fstab = read(root, 'etc/fstab');
      expect(fstab).toMatch(new RegExp(`^UUID=${uuid}\\s+/\\s+ext4\\s`, 'm'));
      expect(fstab).toMatch(new RegExp(`^UUID=${swapUuid}\\s+none\\s+swap\\s`, 'm'));
      const net = read(root, 'etc/systemd/network/10-ganeti-nic0.network');
      expect(net).toContain('MACAddress=aa:00:00:12:34:56');
      expect(net).toContain('Address=192.0.2.10/24');
      expect(net).toContain('Gateway=192.0.2.1');
      const dhcp = read(root, 'etc/systemd/network/10-ganeti-nic1.network');
      expect(dhcp).toContain('MACAddress=aa:00:00:12:34:57');
      expect(dhcp).toContain('DHCP=yes');
      expect(dhcp).not.toMatch(/^Address=/m);
      expect(fs.existsSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/systemd-networkd.service'))).toBe(true);
      expect(fs.readlinkSync(path.join(root, 'etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service'))).toMatch(/serial-getty@\.service$/);
      // A quiet console once the system runs: only critical kernel messages after systemd-sysctl.
      expect(read(root, 'etc/sysctl.d/90-ganeti-os-console.conf')).toMatch(/^kernel\.printk = 3 4 1 7$/m);
      // The serial getty waits for its device however slow the boot is.
      expect(read(root, 'etc/systemd/system/dev-ttyS0.device.d/90-ganeti-os.conf')).toMatch(/^JobRunningTimeoutSec=15min$/m);
      // Root: locked password, our key.
      const shadowRoot = read(root, 'etc/shadow').split('\n').find((l) => l.startsWith('root:'))!.split(':')[1];
      expect(shadowRoot).toMatch(/^[!*]/);
      expect(read(root, 'root/.ssh/authorized_keys')).toBe(KEY + '\n');
      expect(fs.statSync(path.join(root, 'root/.ssh/authorized_keys')).mode & 0o777).toBe(0o600);
      // Host keys made for this instance; an empty machine-id for systemd's first boot.
      expect(read(root, 'etc/ssh/ssh_host_ed25519_key.pub')).toContain('root@inst1.example.com');
      expect(read(root, 'etc/machine-id')).toBe('');
      // Sources from the node's mirror, never a hard-coded one; no downloaded packages left.
      expect(read(root, 'etc/apt/sources.list')).toMatch(/^deb \S+ bookworm main$/m);
      expect(sh('find', [path.join(root, 'var/cache/apt/archives'), '-name', '*.deb'])).toBe('');
      // Kernel and boot loader configuration for this filesystem, serial console on.
      expect(fs.readdirSync(path.join(root, 'boot')).some((f) => f.startsWith('vmlinuz-'))).toBe(true);
      const grub = read(root, 'boot/grub/grub.cfg');
      expect(grub).toContain(`root=UUID=${uuid}`);
      expect(grub).toContain('console=ttyS0,115200n8');
      expect(read(root, 'etc/ganeti-hook')).toMatch(new RegExp(`^inst1\\.example\\.com ${d0.replace(/[.]/g, '\\.')} /dev/loop\\d+\\n$`));
    });
  }, 1200_000);

  /** e2fsck -fn of the disk's root filesystem, and its size in bytes (dumpe2fs). */
  const checkRootFs = (d: string) => {
    const where = locateRoot(d);
    const loop = sh('losetup', ['--find', '--show', '--read-only', '--offset', String(where.offset), '--sizelimit', String(where.size), d]).trim();
    try {
      const fsck = spawnSync('e2fsck', ['-fn', loop], { encoding: 'utf8' });
      const head = sh('dumpe2fs', ['-h', loop]);
      const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)$`, 'm').exec(head)![1]);
      return { clean: fsck.status === 0, bytes: num('Block count') * num('Block size'), partition: where.size };
    } finally {
      detachLoop(loop, { partitions: false });
    }
  };
  const logOf = (name: string) => fs.readdirSync(logdir).filter((f) => f.includes(name)).map((f) => fs.readFileSync(path.join(logdir, f), 'utf8')).join('');

  it('copies the cached filesystem image (no host keys in it), grown to the partition with its own UUID; CACHE_IMAGES=no unpacks the tarball', () => {
    const cache = '/var/cache/ganeti-os/debian';
    const d = sparseDisk(disk('img.img'), 3072);
    const r = instanceOsAdd(instance('img.example.com', [d], { osparams: { 'partition-style': 'gpt', filesystem: 'ext3', 'install-kernel': 'no' } }), { logdir });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expectNoLeaks();
    expect(logOf('img.example.com')).toMatch(/(using the cached|cached the base system as a) ext3 image/);
    expect(fs.statSync(d).size).toBe(3072 * 1024 * 1024);
    const images = fs.readdirSync(cache).filter((f) => f.endsWith('.ext3.img')).map((f) => path.join(cache, f));
    expect(images.length).toBeGreaterThan(0);
    const uuid = fsUuid(d);
    for (const img of images) {
      // Small in the cache, grown on the disk; never the instance's UUID; no SSH host keys.
      expect(fs.statSync(img).size).toBeLessThan(1536 * 1024 * 1024);
      expect(sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', img]).trim()).not.toBe(uuid);
      expect(sh('debugfs', ['-R', 'ls /etc/ssh', img])).not.toMatch(/ssh_host_/);
    }
    const check = checkRootFs(d);
    expect(check.clean).toBe(true);
    expect(check.bytes).toBeGreaterThan(check.partition - 4 * 1024 * 1024);
    withMounted(d, (root) => {
      expect(read(root, 'etc/fstab')).toMatch(new RegExp(`^UUID=${uuid}\\s+/\\s+ext3\\s`, 'm'));
      expect(read(root, 'etc/ssh/ssh_host_ed25519_key.pub')).toContain('root@img.example.com');
    });

    setConfig(['CACHE_IMAGES=no']);
    try {
      const t = instanceOsAdd(instance('tar.example.com', [d], { osparams: { 'partition-style': 'msdos', 'install-kernel': 'no' } }), { logdir });
      expect(t.error).toBeUndefined();
      expect(t.ok).toBe(true);
      expectNoLeaks();
    } finally {
      setConfig([]);
    }
    expect(logOf('tar.example.com')).not.toMatch(/ image/);
    expect(fs.statSync(d).size).toBe(3072 * 1024 * 1024);
    expect(checkRootFs(d).clean).toBe(true);
    const tarUuid = fsUuid(d);
    expect(tarUuid).not.toBe(uuid);
    withMounted(d, (root) => expect(read(root, 'etc/fstab')).toMatch(new RegExp(`^UUID=${tarUuid}\\s+/\\s+ext4\\s`, 'm')));
  }, 1200_000);

  it('exports disk 0 as a stream proportional to the data, with its size announced', () => {
    // Files a file-level copy must keep: ownership, modes, xattrs, hard links, sparse files.
    withMounted(disk('d0.img'), (root) => {
      const t = path.join(root, 'srv/keep');
      fs.mkdirSync(t, { recursive: true });
      fs.writeFileSync(path.join(t, 'a'), 'hard link\n');
      fs.linkSync(path.join(t, 'a'), path.join(t, 'b'));
      fs.writeFileSync(path.join(t, 'owned'), 'owned\n');
      fs.chownSync(path.join(t, 'owned'), 1234, 5678);
      fs.chmodSync(path.join(t, 'owned'), 0o4750);
      sh('sh', ['-c', 'truncate -s 200M "$1" && printf end >> "$1"', 'x', path.join(t, 'sparse')]);
      sh('/usr/bin/python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.ganeti", b"kept")', path.join(t, 'a')]);
      fs.symlinkSync('a', path.join(t, 'link'));
    }, true);
    const stream = path.join(work, 'disk0.stream');
    const r = runExport(instance('inst1.example.com', [disk('d0.img'), disk('d1.img')]), 0, stream);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.ok).toBe(true);
    const size = fs.statSync(stream).size;
    expect(Number(String(r.announced).trim())).toBe(size);
    expect(size).toBeLessThan(1024 * 1024 * 1024); // a 2 GiB disk, ~0.5 GiB in use
    expect(fs.readFileSync(stream).subarray(0, 26).toString()).toBe('GANETI-OS-DEBIAN-EXPORT 1\n');
    expectNoLeaks();

    const s1 = path.join(work, 'disk1.stream');
    const r1 = runExport(instance('inst1.example.com', [disk('d0.img'), disk('d1.img')]), 1, s1);
    expect(r1.ok).toBe(true);
    expect(fs.readFileSync(s1, 'utf8')).toMatch(/^kind=swap$/m);
    expect(fs.statSync(s1).size).toBeLessThan(4096);
  }, 300_000);

  it('refuses to import a stream it does not know, leaving the disk untouched', () => {
    const bad = path.join(work, 'bad.stream');
    fs.writeFileSync(bad, 'this is a dump, not ours\n' + 'x'.repeat(5000));
    const target = sparseDisk(disk('bad.img'), 1024);
    const r = runImport(instance('inst1.example.com', [target]), 0, bad);
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/not a stream written by the export script of a 'debian' ganeti-os definition \(it starts with 'this is a dump, not ours/);
    // Zeros (no newline, only NUL bytes) are refused at once too.
    fs.writeFileSync(bad, Buffer.alloc(16 * 1024 * 1024));
    const z = runImport(instance('inst1.example.com', [target]), 0, bad);
    expect(z.ok).toBe(false);
    expect(z.stderr).toMatch(/not a stream written by the export script .* \(it is empty or starts with NUL bytes\)/);
    expect(sh('sh', ['-c', `cmp -n 4194304 "$1" /dev/zero && echo zero`, 'x', target])).toContain('zero');
    expectNoLeaks();
  });

  it('imports into a larger disk: same files, fstab and boot loader for the new filesystem', () => {
    const d0 = sparseDisk(disk('i0.img'), 3072);
    const d1 = sparseDisk(disk('i1.img'), 128);
    const inst = instance('inst1.example.com', [d0, d1]);
    const r = runImport(inst, 0, path.join(work, 'disk0.stream'));
    expect(r.stderr).not.toMatch(/error/);
    expect(r.ok).toBe(true);
    expect(runImport(inst, 1, path.join(work, 'disk1.stream')).ok).toBe(true);
    expectNoLeaks();
    const oldUuid = fsUuid(disk('d0.img'));
    const uuid = fsUuid(d0);
    expect(uuid).not.toBe(oldUuid);
    expect(locateRoot(d0).size).toBeGreaterThan(3000 * 1024 * 1024);
    expect(sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', d1]).trim()).toBe(sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', disk('d1.img')]).trim());
    withMounted(d0, (root) => {
      const t = path.join(root, 'srv/keep');
      const a = fs.statSync(path.join(t, 'a'));
      expect(a.nlink).toBe(2);
      expect(fs.statSync(path.join(t, 'b')).ino).toBe(a.ino);
      const owned = fs.statSync(path.join(t, 'owned'));
      expect([owned.uid, owned.gid, owned.mode & 0o7777]).toEqual([1234, 5678, 0o4750]);
      const sparse = fs.statSync(path.join(t, 'sparse'));
      expect(sparse.size).toBe(200 * 1024 * 1024 + 3);
      expect(sparse.blocks * 512).toBeLessThan(1024 * 1024);
      expect(sh('/usr/bin/python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], "user.ganeti").decode())', path.join(t, 'a')]).trim()).toBe('kept');
      expect(fs.readlinkSync(path.join(t, 'link'))).toBe('a');
      expect(read(root, 'etc/fstab')).toMatch(new RegExp(`^UUID=${uuid}\\s+/\\s`, 'm'));
      expect(read(root, 'etc/fstab')).not.toContain(oldUuid);
      expect(read(root, 'boot/grub/grub.cfg')).toContain(`root=UUID=${uuid}`);
      expect(read(root, 'etc/ssh/ssh_host_ed25519_key.pub')).toContain('root@inst1.example.com');
    });
    // Ganeti runs rename after every import, with equal names.
    expect(runRename(inst, 'inst1.example.com', logdir)).toEqual({ ok: true });
  }, 300_000);

  it('boots the imported disk under qemu to a login prompt with the instance name', async () => {
    const log = path.join(work, 'console.log');
    const r = await bootUntil(disk('i0.img'), /inst1(\.example\.com)? login:/, { log, timeoutMs: 420_000, mac: 'aa:00:00:12:34:56' });
    if (!r.matched) throw new Error(`no login prompt after ${r.seconds}s; console ends with:\n${r.console.slice(-3000)}`);
    expect(r.console).toContain('inst1.example.com');
    expect(r.console).not.toMatch(/Give root password for maintenance|emergency mode/);
  }, 480_000);

  it('renames: hostname, /etc/hosts, mailname and the static address from the NICs', () => {
    const renamed = instance('web2.example.org', [disk('d0.img'), disk('d1.img')], {
      nics: [{ mac: 'aa:00:00:12:34:56', ip: '198.51.100.7', network: { subnet: '198.51.100.0/25', gateway: '198.51.100.1' } }],
    });
    const r = runRename(renamed, 'inst1.example.com', logdir);
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expectNoLeaks();
    withMounted(disk('d0.img'), (root) => {
      expect(read(root, 'etc/hostname')).toBe('web2.example.org\n');
      expect(read(root, 'etc/mailname')).toBe('web2.example.org\n');
      const hosts = read(root, 'etc/hosts');
      expect(hosts).toMatch(/^198\.51\.100\.7\tweb2\.example\.org web2$/m);
      expect(hosts).not.toContain('inst1');
      expect(hosts).toMatch(/^127\.0\.0\.1\s+localhost$/m);
      const net = read(root, 'etc/systemd/network/10-ganeti-nic0.network');
      expect(net).toContain('Address=198.51.100.7/25');
      expect(net).toContain('Gateway=198.51.100.1');
    });
    // Equal names succeed; a disk that is neither the old nor the new name is refused.
    expect(runRename(renamed, 'web2.example.org', logdir)).toEqual({ ok: true });
    const other = runRename(instance('third.example.com', [disk('d0.img')]), 'second.example.com', logdir);
    expect(other.ok).toBe(false);
    expect(String(other.error)).toMatch(/hostname is 'web2\.example\.org', neither the old name second\.example\.com nor the new name third\.example\.com/);
    expectNoLeaks();
  });

  it('keeps the SSH host keys on reinstall', () => {
    const keyOf = (d: string) => withMounted(d, (root) => read(root, 'etc/ssh/ssh_host_ed25519_key.pub'));
    const before = keyOf(disk('d0.img'));
    const r = instanceOsAdd(instance('web2.example.org', [disk('d0.img'), disk('d1.img')], { osparams: { 'partition-style': 'gpt', filesystem: 'ext3', swap: 'yes' } }), { logdir, reinstall: true });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expectNoLeaks();
    expect(keyOf(disk('d0.img'))).toBe(before);
    expect(locateRoot(disk('d0.img')).style).toBe('gpt');
    withMounted(disk('d0.img'), (root) => {
      expect(fs.existsSync(path.join(root, 'srv/keep'))).toBe(false);
      expect(read(root, 'etc/fstab')).toMatch(/\s\/\s+ext3\s/);
      expect(fs.existsSync(path.join(root, 'root/.ssh/authorized_keys'))).toBe(false);
    });
    // GPT (firmware auto: BIOS and UEFI on amd64): BIOS boot partition 2 holds GRUB's core image
    // at 1 MiB, the EFI system partition 3 follows at 2 MiB, root (partition 1) starts at 34 MiB.
    const parts = JSON.parse(sh('sfdisk', ['--json', disk('d0.img')])).partitiontable.partitions as { start: number; type: string }[];
    expect(parts.map((p) => [p.start, p.type])).toEqual([
      [69632, '0FC63DAF-8483-4772-8E79-3D69D8477DE4'],
      [2048, '21686148-6449-6E6F-744E-656564454649'],
      [4096, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'],
    ]);
  }, 300_000);

  const createSteps = ['check', 'reinstall', 'reinstall-mounted', 'install', 'partition', 'attach', 'mkfs', 'mount', 'extract', 'configure', 'bootloader', 'hooks', 'finish'];
  it.each(createSteps)('create failing at step %s leaves no loop device, mount or temporary directory', (step) => {
    setConfig([`FAULT_AT=${step}`]);
    try {
      const r = instanceOsAdd(instance('web2.example.org', [disk('d0.img')]), { logdir, reinstall: step.startsWith('reinstall') });
      expect(r.ok).toBe(false);
      expect(String(r.error)).toContain(`injected failure at step '${step}'`);
      expectNoLeaks();
    } finally {
      setConfig([]);
    }
  }, 300_000);

  it('a failing site hook fails create, without leaks', () => {
    fs.writeFileSync(path.join(work, 'hooks', '20-fail'), '#!/bin/sh\necho hook says no >&2\nexit 3\n', { mode: 0o755 });
    try {
      const r = instanceOsAdd(instance('web2.example.org', [disk('d0.img')]), { logdir });
      expect(r.ok).toBe(false);
      expect(String(r.error)).toMatch(/a site hook in .* failed/);
      expectNoLeaks();
    } finally {
      fs.rmSync(path.join(work, 'hooks', '20-fail'));
    }
  }, 300_000);

  const ieSteps: [string, 'export' | 'import' | 'rename'][] = [
    ['export-locate', 'export'], ['export-mount', 'export'], ['export-stream', 'export'],
    ['import-check', 'import'], ['import-partition', 'import'], ['import-extract', 'import'], ['import-bootloader', 'import'], ['import-finish', 'import'],
    ['rename-locate', 'rename'], ['rename-write', 'rename'], ['rename-identity', 'rename'],
  ];
  it.each(ieSteps)('%s: a failure leaves no loop device, mount or temporary directory', (step, what) => {
    setConfig([`FAULT_AT=${step}`]);
    try {
      const inst = instance('inst1.example.com', [disk('i0.img')]);
      const r =
        what === 'export' ? runExport(inst, 0, path.join(work, 'fault.stream'))
        : what === 'import' ? runImport(inst, 0, path.join(work, 'disk0.stream'))
        : runRename(inst, 'inst1.example.com', logdir);
      expect(r.ok).toBe(false);
      expect(String(r.stderr ?? r.error) + String(r.error ?? '')).toContain(`injected failure at step '${step}'`);
      expectNoLeaks();
    } finally {
      setConfig([]);
    }
  }, 300_000);

  it('runs two creates at once, waiting for a cache entry another create holds, and ages out old entries', async () => {
    const cache = '/var/cache/ganeti-os/debian';
    const old = path.join(cache, 'bookworm-amd64-0000000000000000.tar');
    fs.writeFileSync(old, 'stale');
    fs.utimesSync(old, new Date('2020-01-01'), new Date('2020-01-01'));
    // Hold every lock of the cache for a few seconds, as a create building an entry would.
    const locks = fs.readdirSync(cache).filter((f) => f.endsWith('.lock')).map((f) => path.join(cache, f));
    expect(locks.length).toBeGreaterThan(0);
    const held = locks.map((l) => spawn('flock', [l, 'sleep', '6'], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 500));
    const a = sparseDisk(disk('c0.img'), 2048);
    const b = sparseDisk(disk('c1.img'), 2048);
    const start = Date.now();
    try {
      const [ra, rb] = await Promise.all([
        ganetiAsync({ action: 'add', instance: instance('conc-a.example.com', [a]), reinstall: false, debug: 0, logdir }),
        ganetiAsync({ action: 'add', instance: instance('conc-b.example.com', [b]), reinstall: false, debug: 0, logdir }),
      ]);
      expect(ra.error).toBeUndefined();
      expect(rb.error).toBeUndefined();
      expect(Date.now() - start).toBeGreaterThan(5000);
    } finally {
      for (const p of held) if (p.exitCode === null) p.kill();
    }
    expect(fs.existsSync(old)).toBe(false);
    const logs = fs.readdirSync(logdir).filter((f) => f.includes('conc-a')).map((f) => fs.readFileSync(path.join(logdir, f), 'utf8')).join('');
    expect(logs).toMatch(/another create is building the bookworm base system; waiting for it/);
    withMounted(a, (root) => expect(read(root, 'etc/hostname')).toBe('conc-a.example.com\n'));
    withMounted(b, (root) => expect(read(root, 'etc/hostname')).toBe('conc-b.example.com\n'));
    expectNoLeaks();
  }, 300_000);

  it('moves a disk the template did not format as raw bytes', () => {
    const raw = disk('raw.img');
    fs.writeFileSync(raw, Buffer.concat([Buffer.from('not a filesystem\n'), Buffer.alloc(4 * 1024 * 1024 - 17, 7)]));
    const stream = path.join(work, 'raw.stream');
    const inst = instance('inst1.example.com', [disk('i0.img'), raw]);
    const e = runExport(inst, 1, stream);
    expect(e.ok).toBe(true);
    expect(fs.readFileSync(stream).subarray(0, 40).toString()).toMatch(/kind=raw/);
    const copy = sparseDisk(disk('raw2.img'), 4);
    expect(runImport(instance('inst1.example.com', [disk('i0.img'), copy]), 1, stream).ok).toBe(true);
    expect(fs.readFileSync(copy).equals(fs.readFileSync(raw))).toBe(true);
    expectNoLeaks();
  });
  it('with a host kernel (Ganeti\'s default kernel_path) installs no kernel; partition-style none fills the disk', () => {
    const d0 = sparseDisk(disk('n0.img'), 2048);
    const inst = instance('hostkernel.example.com', [d0], { hvparams: { serial_console: true }, osparams: { 'partition-style': 'none', filesystem: 'ext2' } });
    const r = instanceOsAdd(inst, { logdir });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expectNoLeaks();
    expect(locateRoot(d0).style).toBe('none');
    expect(sh('blkid', ['-p', '-o', 'value', '-s', 'TYPE', d0]).trim()).toBe('ext2');
    withMounted(d0, (root) => {
      expect(fs.readdirSync(path.join(root, 'boot')).filter((f) => f.startsWith('vmlinuz'))).toEqual([]);
      expect(fs.existsSync(path.join(root, 'boot/grub/grub.cfg'))).toBe(false);
      expect(read(root, 'etc/fstab')).toMatch(/\s\/\s+ext2\s/);
      expect(fs.existsSync(path.join(root, 'etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service'))).toBe(true);
    });
    const stream = path.join(work, 'n0.stream');
    const e = runExport(inst, 0, stream);
    expect(e.ok).toBe(true);
    expect(fs.readFileSync(stream).subarray(0, 200).toString()).toMatch(/style=none\nfstype=ext2\n[^]*bootloader=none\n/);
    // EXPORT_COMPRESS compresses the payload; import reads the method from the header.
    const gz = path.join(work, 'n0.stream.gz');
    setConfig(['EXPORT_COMPRESS=gzip']);
    try {
      expect(runExport(inst, 0, gz).ok).toBe(true);
    } finally {
      setConfig([]);
    }
    expect(fs.readFileSync(gz).subarray(0, 200).toString()).toMatch(/\ncompress=gzip\n/);
    expect(fs.statSync(gz).size).toBeLessThan(fs.statSync(stream).size / 2);
    const copy = sparseDisk(disk('n1.img'), 2048);
    expect(runImport({ ...inst, disks: [{ path: copy }] }, 0, gz).ok).toBe(true);
    const renamed = runRename({ ...inst, name: 'hk2.example.com', disks: [{ path: copy }] }, 'hostkernel.example.com', logdir);
    expect(renamed.ok).toBe(true);
    withMounted(copy, (root) => {
      expect(read(root, 'etc/hostname')).toBe('hk2.example.com\n');
      expect(read(root, 'etc/fstab')).toContain(`UUID=${sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', copy]).trim()}`);
    });
    expectNoLeaks();
  }, 1200_000);
});
