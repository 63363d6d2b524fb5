/**
 * Instances of the image template through Ganeti 3.0's own code (InstanceOsAdd with
 * OSEnvironment, the import-export daemon's command lines, RunRenameInstance, ValidateOS) on
 * sparse file disks, from small fake images built by the committed recipe
 * (test/helpers/fake-images.sh): GPT with BIOS boot, ESP and root (root last, or root on
 * partition 3), msdos, an xfs root, no Linux partition; as qcow2, raw, xz and zst. Checks the
 * seed, the grown table, the untouched disk size, the refusals (nothing written, nothing left
 * attached or mounted), export/import/rename and the instance-id rules of issue 16.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd, runExport, runImport, runRename, validateOs } from './helpers/ganeti';
import { releaseResources, resources, sh, sparseDisk } from './helpers/disks';
import { BuiltImage, extSize, fakeImage, isZero, partitionFs, partitions, withPartition } from './helpers/images';
import { ganetiAsync } from './helpers/ganeti-async';
import { detachLoop } from '../src/system/kernel';
import { describeSystem } from './helpers/system';
import { newDefinition, runCli, runCliOk, tempDir } from './helpers/cli';
import { testDocument } from './helpers/test-run';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGanetiOsTestKeyOnlyForTestsXXXXXXXXXXXXXXXX test@ganeti-os';
const NEEDS = ['qemu-img', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'mkfs.vfat', 'mcopy', 'xorriso', 'zstd', 'xz', 'mkfs.xfs', 'blkid', 'dumpe2fs', 'curl', 'python3'];
const MiB = 1024 * 1024;

describeSystem('image template: instances through Ganeti', { root: true, ganeti: true, commands: NEEDS }, () => {
  let work: string;
  let tmp: string;
  let cache: string;
  let logdir: string;
  let osDir: string;
  let defaults: string;
  let baseDefaults: string;
  let userData: string;
  const img: Record<string, BuiltImage> = {};
  let server: ChildProcess | undefined;

  /** A local HTTP server for the images directory; resolves to its port. */
  const serve = (dir: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const code = [
        'import functools, http.server, sys',
        'h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])',
        'h.log_message = lambda *a: None',
        "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)",
        'print(s.server_address[1], flush=True)',
        's.serve_forever()',
      ].join('\n');
      server = spawn('python3', ['-c', code, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      server.on('error', reject);
      server.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    });

  const disk = (name: string) => path.join(work, name);
  const cli = (...args: string[]) => runCliOk(args, { cwd: osDir ?? work, env: process.env, timeout: 0 });
  const instance = (name: string, variant: string, disks: string[], extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
    name,
    os: `cloud+${variant}`,
    os_dir: osDir,
    disks: disks.map((d) => ({ path: d })),
    nics: [
      { mac: 'aa:00:00:12:34:56', ip: '192.0.2.10', network: { subnet: '192.0.2.0/24', gateway: '192.0.2.1' } },
      { mac: 'aa:00:00:12:34:57' },
    ],
    osparams: { 'ssh-authorized-keys': KEY, 'dns-servers': '192.0.2.53' },
    ...extra,
  });
  const setConfig = (lines: string[]) => fs.writeFileSync(defaults, baseDefaults + lines.join('\n') + '\n');
  const expectNoLeaks = () => expect(resources(work, tmp)).toEqual({ loops: [], mounts: [], temps: [] });
  const seedOf = (d: string, nr: number): Record<string, string> =>
    withPartition(d, nr, (root) => {
      const dir = path.join(root, 'var/lib/cloud/seed/nocloud');
      return Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
    });
  const instanceId = (meta: string) => /^instance-id: '(iid-[0-9a-f-]+)'$/m.exec(meta)?.[1];
  /** Import/export answers carry the script's stderr, not an error. */
  const ieError = (r: { ok: boolean; stderr?: unknown }) => (r.ok ? undefined : String(r.stderr));
  /** A file of an ISO seed volume. */
  const isoFile = (iso: string, name: string) => {
    const out = path.join(work, 'iso-extract');
    fs.rmSync(out, { force: true });
    sh('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', `/${name}`, out]);
    return fs.readFileSync(out, 'utf8');
  };
  const cacheEntries = () => fs.readdirSync(cache).filter((f) => !f.startsWith('.lock') && !f.endsWith('.lock'));

  beforeAll(async () => {
    work = tempDir('image');
    tmp = path.join(work, 'tmp');
    cache = path.join(work, 'cache');
    logdir = path.join(work, 'log');
    const images = path.join(work, 'images');
    for (const d of [tmp, images]) fs.mkdirSync(d);
    img.gpt = fakeImage('gpt-ubuntu', 'qcow2', images);
    img.msdos = fakeImage('msdos', 'raw', images);
    img.zst = fakeImage('gpt-root3', 'zst', images);
    img.xz = fakeImage('gpt-root3', 'xz', images);
    img.xfs = fakeImage('xfs-root', 'qcow2', images);
    img.nolinux = fakeImage('no-linux', 'raw', images);
    img.http = fakeImage('gpt-root3', 'raw', images);
    const port = await serve(images);
    const junk = path.join(images, 'junk.img');
    fs.writeFileSync(junk, Buffer.alloc(MiB, 0x5a));
    img.junk = { path: junk, sha256: sh('sha256sum', [junk]).split(' ')[0], size: MiB };
    userData = path.join(work, 'user-data.yaml');
    fs.writeFileSync(userData, '#cloud-config\nruncmd:\n  - [touch, /run/ganeti-os-test]\n');

    osDir = newDefinition(work, 'cloud', ['--template', 'image', '--variant', 'gpt']);
    const add = (v: string, i: BuiltImage, ...set: string[]) => cli('add-variant', v, '--set', `IMAGE=${i.path}`, '--set', `SHA256=${i.sha256}`, ...set.flatMap((s) => ['--set', s]));
    add('gpt', img.gpt, 'FORMAT=qcow2');
    add('msdos', img.msdos);
    add('zst', img.zst, 'FORMAT=zst');
    add('xz', img.xz);
    add('xfs', img.xfs);
    add('nolinux', img.nolinux);
    add('junk', img.junk);
    add('badsum', img.msdos);
    cli('add-variant', 'badsum', '--set', `SHA256=${'0'.repeat(64)}`);
    add('wrongformat', img.gpt, 'FORMAT=raw');
    add('url', img.msdos);
    cli('add-variant', 'url', '--set', `IMAGE=file://${img.msdos.path}`);
    add('http', img.http);
    cli('add-variant', 'http', '--set', `IMAGE=http://127.0.0.1:${port}/gpt-root3.raw`);
    cli('add-variant', 'http404', '--set', `IMAGE=http://127.0.0.1:${port}/missing.raw`, '--set', `SHA256=${'2'.repeat(64)}`);
    defaults = path.join(osDir, 'defaults.conf');
    baseDefaults = fs.readFileSync(defaults, 'utf8') + `CACHE_DIR=${cache}\nTMPDIR=${tmp}\n`;
    setConfig([]);
  });

  afterAll(() => {
    server?.kill();
    if (!work) return;
    releaseResources(work, tmp);
    fs.rmSync(work, { recursive: true, force: true });
  });

  describe('refusals: nothing written, nothing cached, nothing left attached', () => {
    const cases: [string, number, RegExp][] = [
      ['badsum', 64, /checksum mismatch for .*msdos\.raw: its SHA-256 is [0-9a-f]{64}, variant 'badsum' expects 0{64}/],
      ['junk', 64, /the image .*junk\.img has an unknown format/],
      ['wrongformat', 64, /variant 'wrongformat' says FORMAT=raw but the image .* is qcow2/],
      ['gpt', 40, /disk 0 \(.*\) is too small: 40 MiB, the image needs 48 MiB/],
      ['xfs', 512, /root filesystem of the image \(partition 3\) is xfs: .* name it with parameter seed-disk/],
      ['nolinux', 64, /found no ext2\/3\/4, xfs or btrfs root partition in the image .* \(partitions: 1\)/],
      ['http404', 64, /could not download http:\/\/127\.0\.0\.1:\d+\/missing\.raw \(curl\)/],
    ];
    it.each(cases)('variant %s on a %d MiB disk', (variant, mib, message) => {
      const d = sparseDisk(disk(`refused-${variant}.img`), mib);
      const r = instanceOsAdd(instance('refused.example.com', variant, [d]), { logdir });
      expect(r.ok).toBe(false);
      expect(String(r.error)).toMatch(message);
      expect(fs.statSync(d).size).toBe(mib * MiB);
      expect(isZero(d, mib * MiB)).toBe(true);
      expect(fs.readdirSync(cache).filter((f) => f.includes('.tmp.'))).toEqual([]);
      expectNoLeaks();
    });

    it('never caches an image whose checksum or format is wrong', () => {
      const cached = fs.readdirSync(cache).filter((f) => f.endsWith('.image')).map((f) => f.slice(0, 64));
      expect(cached).not.toContain('0'.repeat(64));
      expect(cached).not.toContain(img.junk.sha256);
    });

    it('refuses a default-route-nic the instance does not have, and a missing seed disk', () => {
      const d = sparseDisk(disk('refused-nic.img'), 64);
      const r = instanceOsAdd(instance('x.example.com', 'gpt', [d], { osparams: { 'default-route-nic': '2' } }), { logdir });
      expect(String(r.error)).toMatch(/parameter default-route-nic is 2 but the instance has 2 NIC\(s\)/);
      const s = instanceOsAdd(instance('x.example.com', 'gpt', [d], { osparams: { 'seed-disk': '1' } }), { logdir });
      expect(String(s.error)).toMatch(/parameter seed-disk is 1 but the instance has only 1 disk/);
      expect(isZero(d, 64 * MiB)).toBe(true);
      expectNoLeaks();
    });
  });

  describe('create', () => {
    let firstId: string | undefined;

    it('installs a qcow2 GPT image (BIOS boot, ESP, root last): root grown, GPT backup at the end, seed in the root', () => {
      const d = sparseDisk(disk('gpt.img'), 256);
      const r = instanceOsAdd(instance('inst1.example.com', 'gpt', [d], { osparams: { 'ssh-authorized-keys': KEY, 'dns-servers': '192.0.2.53', 'user-data': userData } }), { logdir });
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      expectNoLeaks();
      expect(fs.statSync(d).size).toBe(256 * MiB);
      const t = partitions(d);
      expect(t.label).toBe('gpt');
      // Root (partition 1) now ends at the last usable sector of the 256 MiB disk; the others as they were.
      const p1 = t.partitions.find((p) => p.nr === 1)!;
      expect(t.lastlba).toBe(256 * 2048 - 34);
      expect(p1.start + p1.sectors - 1).toBe(t.lastlba);
      expect(t.partitions.find((p) => p.nr === 14)).toMatchObject({ start: 2048, sectors: 2048 });
      expect(t.partitions.find((p) => p.nr === 15)).toMatchObject({ start: 4096, sectors: 16384 });
      expect(sh('sfdisk', ['--verify', d])).not.toMatch(/backup|corrupt|mismatch/i);
      expect(extSize(d, 1)).toBeGreaterThan(200 * MiB);
      expect(partitionFs(d, 15).TYPE).toBe('vfat');
      // The image's files are there; the seed beside them.
      withPartition(d, 1, (root) => expect(fs.readFileSync(path.join(root, 'etc/fake-image'), 'utf8')).toBe('gpt-ubuntu\n'));
      const seed = seedOf(d, 1);
      expect(Object.keys(seed).sort()).toEqual(['meta-data', 'network-config', 'user-data', 'vendor-data']);
      firstId = instanceId(seed['meta-data']);
      expect(firstId).toBeDefined();
      expect(seed['meta-data']).toMatch(/^local-hostname: 'inst1\.example\.com'$/m);
      expect(seed['meta-data']).toContain(`public-keys:\n  - '${KEY}'\n`);
      expect(seed['user-data']).toBe(fs.readFileSync(userData, 'utf8'));
      expect(seed['vendor-data']).toMatch(/^#cloud-config\n/);
      expect(seed['network-config']).toContain(
        [
          'version: 2',
          'ethernets:',
          '  eth0:',
          '    match:',
          "      macaddress: 'aa:00:00:12:34:56'",
          '    set-name: eth0',
          '    dhcp4: false',
          '    addresses:',
          "      - '192.0.2.10/24'",
          "    gateway4: '192.0.2.1'",
          '    nameservers:',
          '      addresses:',
          "        - '192.0.2.53'",
          '      search:',
          "        - 'example.com'",
          '  eth1:',
          '    match:',
          "      macaddress: 'aa:00:00:12:34:57'",
          '    set-name: eth1',
          '    dhcp4: true',
        ].join('\n'),
      );
      // Cached once: the image and its probe, nothing temporary.
      expect(cacheEntries().filter((f) => f.startsWith(img.gpt.sha256)).sort()).toEqual([`${img.gpt.sha256}.image`, `${img.gpt.sha256}.info`]);
      expect(fs.readdirSync(cache).filter((f) => f.includes('.tmp.'))).toEqual([]);
    });

    it('reinstall gives a new instance-id; grow-root=no leaves the partition and tells cloud-init', () => {
      const d = disk('gpt.img');
      const r = instanceOsAdd(instance('inst1.example.com', 'gpt', [d], { osparams: { 'grow-root': 'no' } }), { reinstall: true, logdir });
      expect(r.error).toBeUndefined();
      const seed = seedOf(d, 1);
      expect(instanceId(seed['meta-data'])).toBeDefined();
      expect(instanceId(seed['meta-data'])).not.toBe(firstId);
      expect(seed['meta-data']).not.toContain('public-keys');
      expect(seed['vendor-data']).toContain('growpart:\n  mode: "off"\nresize_rootfs: false\n');
      expect(partitions(d).partitions.find((p) => p.nr === 1)!.sectors).toBe(75776);
      expect(sh('sfdisk', ['--verify', d])).not.toMatch(/backup|corrupt/i);
      expect(fs.statSync(d).size).toBe(256 * MiB);
      expectNoLeaks();
    });

    it.each([
      ['msdos', 1],
      ['zst', 3],
      ['xz', 3],
      ['url', 1],
      ['http', 3],
    ])('installs variant %s (root on partition %d), grown, seed in the root', (variant, nr) => {
      const d = sparseDisk(disk(`${variant}.img`), 128);
      const r = instanceOsAdd(instance(`${variant}.example.com`, variant, [d]), { logdir });
      expect(r.error).toBeUndefined();
      expectNoLeaks();
      expect(fs.statSync(d).size).toBe(128 * MiB);
      const t = partitions(d);
      const root = t.partitions.find((p) => p.nr === nr)!;
      expect(root.start + root.sectors).toBe(t.label === 'dos' ? 128 * 2048 : 128 * 2048 - 33);
      expect(extSize(d, nr)).toBeGreaterThan(100 * MiB);
      expect(seedOf(d, nr)['meta-data']).toContain(`local-hostname: '${variant}.example.com'`);
      // Holes stay holes: far less allocated than the disk's size.
      expect(Number(sh('stat', ['-c', '%b', d]).trim()) * 512).toBeLessThan(64 * MiB);
    });

    it.each([
      ['vfat', 'vfat', 'CIDATA'],
      ['iso', 'iso9660', 'cidata'],
    ])('puts the seed of an xfs root on the disk named by seed-disk (%s)', (format, type, label) => {
      const d0 = sparseDisk(disk(`xfs-${format}.img`), 512);
      const d1 = sparseDisk(disk(`xfs-${format}-seed.img`), 4);
      const r = instanceOsAdd(instance('xfs.example.com', 'xfs', [d0, d1], { osparams: { 'seed-disk': '1', 'seed-format': format } }), { logdir });
      expect(r.error).toBeUndefined();
      expectNoLeaks();
      expect(fs.statSync(d1).size).toBe(4 * MiB);
      expect(sh('blkid', ['-p', '-o', 'value', '-s', 'TYPE', d1]).trim()).toBe(type);
      expect(sh('blkid', ['-p', '-o', 'value', '-s', 'LABEL', d1]).trim()).toBe(label);
      const meta =
        format === 'vfat'
          ? sh('mtype', ['-i', d1, '::meta-data'])
          : isoFile(d1, 'meta-data');
      expect(meta).toContain("local-hostname: 'xfs.example.com'");
      // The root partition grew (xfs_growfs); /boot (ext4, partition 2) is not the root.
      const t = partitions(d0);
      expect(t.partitions.find((p) => p.nr === 3)!.sectors).toBe(512 * 2048 - 34 - 36864 + 1);
      expect(t.partitions.find((p) => p.nr === 2)!.sectors).toBe(32768);
      withPartition(d0, 2, (boot) => expect(fs.existsSync(path.join(boot, 'var/lib/cloud/seed'))).toBe(false));
    });

    it('installs an image without a Linux root when a seed disk is named: GPT backup moved, nothing grown', () => {
      const d0 = sparseDisk(disk('nolinux.img'), 64);
      const d1 = sparseDisk(disk('nolinux-seed.img'), 2);
      const r = instanceOsAdd(instance('esp.example.com', 'nolinux', [d0, d1], { osparams: { 'seed-disk': '1' } }), { logdir });
      expect(r.error).toBeUndefined();
      expectNoLeaks();
      const t = partitions(d0);
      expect(t.lastlba).toBe(64 * 2048 - 34);
      expect(t.partitions).toEqual([expect.objectContaining({ nr: 1, start: 2048, sectors: 16384 })]);
      expect(sh('sfdisk', ['--verify', d0])).not.toMatch(/backup|corrupt/i);
      expect(sh('mtype', ['-i', d1, '::meta-data'])).toContain("local-hostname: 'esp.example.com'");
    });

    it('fetches an uncached image once while two creates want it', async () => {
      setConfig([`CACHE_DIR=${path.join(work, 'cache2')}`]);
      try {
        const a = sparseDisk(disk('c1.img'), 64);
        const b = sparseDisk(disk('c2.img'), 64);
        const [ra, rb] = await Promise.all([
          ganetiAsync({ action: 'add', instance: instance('c1.example.com', 'msdos', [a]), reinstall: false, debug: 0, logdir }),
          ganetiAsync({ action: 'add', instance: instance('c2.example.com', 'msdos', [b]), reinstall: false, debug: 0, logdir }),
        ]);
        expect(ra.error).toBeUndefined();
        expect(rb.error).toBeUndefined();
        const logs = fs.readdirSync(logdir).filter((f) => /^add-.*c[12]\.example\.com/.test(f));
        const copies = logs.map((f) => fs.readFileSync(path.join(logdir, f), 'utf8')).join('').match(/copying .* into the image cache/g) ?? [];
        expect(copies.length).toBe(1);
        expect(fs.readdirSync(path.join(work, 'cache2')).filter((f) => !f.startsWith('.')).sort()).toEqual([`${img.msdos.sha256}.image`, `${img.msdos.sha256}.info`]);
        expectNoLeaks();
      } finally {
        setConfig([]);
      }
    });

    it('ages out cache entries nobody used for CACHE_MAX_AGE_DAYS', () => {
      const old = path.join(cache, `${'a'.repeat(64)}.image`);
      fs.writeFileSync(old, 'x');
      fs.writeFileSync(path.join(cache, `${'a'.repeat(64)}.info`), 'format=raw\n');
      const past = new Date(Date.now() - 40 * 86400_000);
      fs.utimesSync(old, past, past);
      const d = sparseDisk(disk('age.img'), 64);
      expect(instanceOsAdd(instance('age.example.com', 'msdos', [d]), { logdir }).error).toBeUndefined();
      expect(fs.existsSync(old)).toBe(false);
      expect(fs.existsSync(path.join(cache, `${img.msdos.sha256}.image`))).toBe(true);
    });

    const faults = ['check', 'write', 'grow', 'grow-fs', 'seed', 'finish'];
    it.each(faults)('releases everything when create fails at %s', (step) => {
      setConfig([`FAULT_AT=${step}`]);
      try {
        const d = sparseDisk(disk('fault.img'), 128);
        const r = instanceOsAdd(instance('fault.example.com', 'gpt', [d]), { logdir });
        expect(String(r.error)).toContain(`injected failure at step '${step}'`);
        expectNoLeaks();
        expect(fs.statSync(d).size).toBe(128 * MiB);
      } finally {
        setConfig([]);
      }
    });
  });

  describe('export, import, rename', () => {
    let stream: string;
    let origId: string | undefined;
    const src = () => disk('gpt.img');

    beforeAll(() => {
      // A fresh instance inst1 with its seed in the root.
      const d = sparseDisk(disk('gpt.img'), 256);
      const r = instanceOsAdd(instance('inst1.example.com', 'gpt', [d]), { logdir });
      if (!r.ok) throw new Error(String(r.error));
      origId = instanceId(seedOf(d, 1)['meta-data']);
    });

    it('exports disk 0 as a compressed raw stream far smaller than the disk', () => {
      stream = path.join(work, 'inst1.stream');
      const r = runExport(instance('inst1.example.com', 'gpt', [src()]), 0, stream);
      expect(ieError(r)).toBeUndefined();
      // Nothing announced on EXP_SIZE_FD: the compressed stream's size is known only once it is
      // written (an estimate made Ganeti's progress, and ganeti-os test's export check, wrong).
      expect(r.announced).toBe('');
      const size = fs.statSync(stream).size;
      expect(fs.readFileSync(stream).subarray(0, 60).toString()).toMatch(/^GANETI-OS-RAW 2 size=268435456 compress=zstd\n/);
      expect(size).toBeLessThan(8 * MiB);
      expectNoLeaks();
    });

    it('refuses a smaller disk, a truncated and a foreign stream, leaving the disk untouched', () => {
      const small = sparseDisk(disk('small.img'), 128);
      const r = runImport(instance('inst1.example.com', 'gpt', [small]), 0, stream);
      expect(ieError(r)).toMatch(/is smaller \(\d+ bytes\) than the exported disk \(268435456 bytes\): nothing was written/);
      expect(isZero(small, 128 * MiB)).toBe(true);
      const d = sparseDisk(disk('trunc.img'), 256);
      const cut = path.join(work, 'cut.stream');
      fs.writeFileSync(cut, fs.readFileSync(stream).subarray(0, Math.floor(fs.statSync(stream).size / 2)));
      expect(ieError(runImport(instance('inst1.example.com', 'gpt', [d]), 0, cut))).toMatch(/damaged or truncated|ended before/);
      const foreign = path.join(work, 'foreign.stream');
      fs.writeFileSync(foreign, 'GANETI-OS-DEBIAN-EXPORT 1\nkind=fs\n');
      expect(ieError(runImport(instance('inst1.example.com', 'gpt', [d]), 0, foreign))).toMatch(/not a raw disk stream of this definition/);
      expectNoLeaks();
    });

    it('imports onto a larger disk: same data, GPT fixed, root grown, seed marked as imported', () => {
      const d = sparseDisk(disk('imported.img'), 512);
      const r = runImport(instance('inst2.example.com', 'gpt', [d]), 0, stream);
      expect(ieError(r)).toBeUndefined();
      expectNoLeaks();
      expect(fs.statSync(d).size).toBe(512 * MiB);
      const t = partitions(d);
      const p1 = t.partitions.find((p) => p.nr === 1)!;
      expect(p1.start + p1.sectors - 1).toBe(512 * 2048 - 34);
      expect(sh('sfdisk', ['--verify', d])).not.toMatch(/backup|corrupt/i);
      expect(extSize(d, 1)).toBeGreaterThan(400 * MiB);
      const meta = seedOf(d, 1)['meta-data'];
      expect(meta).toContain('# ganeti-os: imported');
      expect(instanceId(meta)).toBe(origId);
    });

    it('imports onto a block device holding old data: the data where the stream has it, zeros elsewhere', () => {
      const file = sparseDisk(disk('blockdev.img'), 300);
      // Old data where the exported disk has zeros (200 MiB in) and past its end (280 MiB).
      for (const mib of [200, 280]) sh('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', 'count=1', `seek=${mib}`, 'conv=notrunc', 'status=none']);
      const loop = sh('losetup', ['--find', '--show', file]).trim();
      try {
        const r = runImport({ ...instance('inst1.example.com', 'gpt', [loop]), disks: [{ path: loop, template: 'plain' }] }, 0, stream);
        expect(ieError(r)).toBeUndefined();
      } finally {
        detachLoop(loop, { partitions: false });
      }
      expect(sh('sh', ['-c', 'dd if="$1" bs=1M skip=200 count=1 status=none | cmp -s - /dev/zero -n 1048576 && echo zero', 'sh', file])).toContain('zero');
      // Beyond the exported disk's 256 MiB nothing is written.
      expect(sh('sh', ['-c', 'dd if="$1" bs=1M skip=280 count=1 status=none | cmp -s - /dev/zero -n 1048576 || echo data', 'sh', file])).toContain('data');
      expect(partitions(file).partitions.find((p) => p.nr === 1)!.start).toBe(20480);
      expectNoLeaks();
    });

    it('renames an imported copy to another name with a new instance-id (issue 16), and the guest files', () => {
      const d = disk('imported.img');
      const r = runRename(instance('inst2.example.com', 'gpt', [d]), 'inst1.example.com', logdir);
      expect(r.error).toBeUndefined();
      expectNoLeaks();
      const meta = seedOf(d, 1)['meta-data'];
      expect(meta).not.toContain('imported');
      expect(meta).toMatch(/^local-hostname: 'inst2\.example\.com'$/m);
      expect(instanceId(meta)).toBeDefined();
      expect(instanceId(meta)).not.toBe(origId);
      withPartition(d, 1, (root) => {
        expect(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe('inst2\n');
        expect(fs.existsSync(path.join(root, 'var/lib/cloud/instances/iid-old/obj.pkl'))).toBe(false);
      });
    });

    it('keeps the instance-id on a restore under the same name, and on a plain rename', () => {
      const d = sparseDisk(disk('restored.img'), 256);
      expect(ieError(runImport(instance('inst1.example.com', 'gpt', [d]), 0, stream))).toBeUndefined();
      expect(runRename(instance('inst1.example.com', 'gpt', [d]), 'inst1.example.com', logdir).error).toBeUndefined();
      let meta = seedOf(d, 1)['meta-data'];
      expect(meta).not.toContain('imported');
      expect(instanceId(meta)).toBe(origId);
      expect(meta).toMatch(/^local-hostname: 'inst1\.example\.com'$/m);
      // A later rename of that restored instance is a plain rename.
      expect(runRename(instance('inst3.example.com', 'gpt', [d]), 'inst1.example.com', logdir).error).toBeUndefined();
      meta = seedOf(d, 1)['meta-data'];
      expect(instanceId(meta)).toBe(origId);
      expect(meta).toMatch(/^local-hostname: 'inst3\.example\.com'$/m);
      withPartition(d, 1, (root) => expect(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe('inst3\n'));
      expectNoLeaks();
    });

    it('renames the seed on a seed disk (iso), also after an import of it', () => {
      const d0 = disk('xfs-iso.img');
      const d1 = disk('xfs-iso-seed.img');
      const spec = (name: string) => instance(name, 'xfs', [d0, d1], { osparams: { 'seed-disk': '1', 'seed-format': 'iso' } });
      const meta = () => isoFile(d1, 'meta-data');
      const before = instanceId(meta());
      expect(runRename(spec('xfs2.example.com'), 'xfs.example.com', logdir).error).toBeUndefined();
      expect(meta()).toContain("local-hostname: 'xfs2.example.com'");
      expect(instanceId(meta())).toBe(before);
      const s = path.join(work, 'seed.stream');
      expect(ieError(runExport(spec('xfs2.example.com'), 1, s))).toBeUndefined();
      const d1b = sparseDisk(disk('xfs-iso-seed2.img'), 8);
      const spec2 = instance('xfs3.example.com', 'xfs', [d0, d1b], { osparams: { 'seed-disk': '1', 'seed-format': 'iso' } });
      expect(ieError(runImport(spec2, 1, s))).toBeUndefined();
      expect(isoFile(d1b, 'meta-data')).toContain('# ganeti-os: imported');
      expect(runRename(spec2, 'xfs2.example.com', logdir).error).toBeUndefined();
      const after = isoFile(d1b, 'meta-data');
      expect(after).toContain("local-hostname: 'xfs3.example.com'");
      expect(instanceId(after)).not.toBe(before);
      expectNoLeaks();
    });

    it.each(['import', 'import-finish', 'rename', 'rename-write'])('releases everything when it fails at %s', (step) => {
      setConfig([`FAULT_AT=${step}`]);
      try {
        const d = sparseDisk(disk('fault-ie.img'), 256);
        const error = step.startsWith('import')
          ? ieError(runImport(instance('inst1.example.com', 'gpt', [d]), 0, stream))
          : String(runRename(instance('inst9.example.com', 'gpt', [disk('restored.img')]), 'inst3.example.com', logdir).error);
        expect(error).toContain(`injected failure at step '${step}'`);
        expectNoLeaks();
      } finally {
        setConfig([]);
      }
    });
  });

  describe('verify (ValidateOS)', () => {
    it('accepts good parameters when the image is cached or reachable', () => {
      for (const v of ['gpt', 'msdos', 'url']) {
        const r = validateOs(osDir, `cloud+${v}`, { 'ssh-authorized-keys': KEY, 'user-data': userData, 'seed-disk': '1', 'default-route-nic': '0', network: 'dhcp', 'grow-root': 'no' });
        expect(r.error).toBeUndefined();
        expect(r.ok).toBe(true);
      }
    });

    const bad: [Record<string, string>, string][] = [
      [{ 'ssh-authorized-keys': 'not a key' }, 'ssh-authorized-keys'],
      [{ 'user-data': '/nonexistent/user-data' }, 'user-data'],
      [{ 'user-data': 'relative' }, 'user-data'],
      [{ network: 'static' }, 'network'],
      [{ 'default-route-nic': 'eth0' }, 'default-route-nic'],
      [{ 'dns-servers': 'ns1.example.com' }, 'dns-servers'],
      [{ 'grow-root': 'maybe' }, 'grow-root'],
      [{ 'seed-disk': '0' }, 'seed-disk'],
      [{ 'seed-format': 'udf' }, 'seed-format'],
    ];
    it.each(bad)('refuses %j, naming the parameter', (params, name) => {
      const r = validateOs(osDir, 'cloud+gpt', params);
      expect(r.ok).toBe(false);
      expect(String(r.error)).toContain(`parameter ${name}`);
    });

    it("refuses a variant without an image, or whose image is neither cached nor reachable", () => {
      cli('add-variant', 'empty');
      const r = validateOs(osDir, 'cloud+empty', {});
      expect(r.ok).toBe(false);
      expect(String(r.error)).toMatch(/variant 'empty' has no IMAGE: set one with 'ganeti-os add-variant empty --set IMAGE=/);
      cli('add-variant', 'gone', '--set', `IMAGE=${path.join(work, 'gone.qcow2')}`, '--set', `SHA256=${'1'.repeat(64)}`);
      const g = validateOs(osDir, 'cloud+gone', {});
      expect(g.ok).toBe(false);
      expect(String(g.error)).toMatch(/the image of variant 'gone' is neither in the cache .* nor reachable at .*gone\.qcow2/);
      const h = validateOs(osDir, 'cloud+http404', {});
      expect(String(h.error)).toMatch(/the image of variant 'http404' is neither in the cache .* nor reachable at http:\/\/127\.0\.0\.1:\d+\/missing\.raw/);
    });
  });

  describe('ganeti-os test (issue 24)', () => {
    const testRun = (variant: string, args: string[]) => {
      const w = tempDir('test-run', work);
      const r = runCli(['test', '--os-dir', osDir, '--variant', variant, '--work-dir', w, '--json', '--keep', '--disk-size', '256', '--hvparam', 'kernel_path=', ...args], { cwd: work, env: process.env, timeout: 300_000 });
      const { status, step } = testDocument(r);
      return { code: r.code, stderr: r.stderr, work: w, status, step };
    };

    // The image decides what disk 0 boots under, not the definition: --firmware uefi on an image
    // without a UEFI boot loader is reported as such, the other steps run, and the run passes.
    it.each([
      ['msdos', /it has an msdos partition table and no EFI system partition \(BIOS only\)/, /disk 0 boots under no firmware by itself, as the image is: no boot code in its MBR, and the image has no EFI system partition/],
      ['gpt', /its EFI system partition \(partition 15\) has no \/EFI\/BOOT\/BOOTX64\.EFI/, /disk 0 boots under no firmware by itself, as the image is: no boot code in its MBR, and the EFI system partition of the image \(partition 15\) has no \/EFI\/BOOT\/BOOTX64\.EFI/],
    ])('--firmware uefi on the %s image, which has no UEFI boot loader: "not made to boot under UEFI", not a failure of the definition', (variant, why, logged) => {
      const t = testRun(variant as string, ['--firmware', 'uefi']);
      expect({ code: t.code, status: t.status }).toEqual({
        code: 0,
        status: { verify: 'passed', create: 'passed', boot: 'skipped', export: 'passed', import: 'passed', grow: 'passed', 'boot-import': 'skipped', rename: 'passed', reinstall: 'passed' },
      });
      for (const n of ['boot', 'boot-import']) {
        expect(t.step(n).detail).toMatch(/^disk \S+\.img is not made to boot under UEFI: /);
        expect(t.step(n).detail).toMatch(why as RegExp);
        expect(t.step(n).detail).toMatch(/the definition declares no firmware, so disk 0 boots under what was written onto it \(a cloud image brings its own boot loaders\): not a failure of the definition\)$/);
        expect(t.step(n).checks).toEqual([{ name: 'boot under UEFI', ok: null, detail: expect.stringMatching(/is not made to boot under UEFI/) }]);
      }
      // The create log says what the image boots under; the disk names the instance before its first boot.
      expect(fs.readFileSync(t.step('create').logs[0], 'utf8')).toMatch(logged as RegExp);
      expect(t.step('rename').checks!.find((c) => c.name === 'hostname')).toMatchObject({ ok: true, detail: expect.stringMatching(/^\/etc\/hostname "instance1" → "instance1-renamed"$/) });
      expect(spawnSync('pgrep', ['-f', `qemu-system-x86_64.*${t.work}`]).status).toBe(1);
      expect(resources(t.work, tmp)).toEqual({ loops: [], mounts: [], temps: [] });
      fs.rmSync(t.work, { recursive: true, force: true });
    });
  });
});
