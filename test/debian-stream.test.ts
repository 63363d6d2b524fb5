/**
 * The debian template's export/import streams on disks made up here (no base system needed),
 * through Ganeti 3.0's own import-export command lines: a filesystem in a layout create makes
 * travels as its used blocks and comes back with everything a file-level copy keeps (owners,
 * modes, xattrs, ACLs, hard links, sparse files); every other layout (more partitions, another
 * table, unknown filesystems, LVM) travels whole; import decides before it touches the disk
 * (too small: refused, disk untouched), shrinks onto smaller disks and honours the filesystem
 * parameter; a stream written by the export of main before the block format (a committed
 * fixture) still imports.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, runExport, runImport } from './helpers/ganeti';
import { releaseResources, resources, sh, sparseDisk, withMountedRange as withFs } from './helpers/disks';
import { detachLoop } from '../src/system/kernel';
import { describeSystem } from './helpers/system';
import { runCliOk, tempDir } from './helpers/cli';

const FIXTURE = path.join(__dirname, 'fixtures', 'debian-stream', 'main-eabad16-msdos-ext4.gz.stream');
const MiB = 1024 * 1024;
const NEEDS = ['sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'blkid', 'dumpe2fs', 'debugfs', 'e2image', 'resize2fs', 'setfacl', 'mkfs.vfat', 'pvcreate', 'zstd'];

/** Run fn with SIZE bytes of FILE from OFFSET attached as a loop device; always detached. */
function withRange<T>(file: string, offset: number, size: number, fn: (dev: string) => T, ro = false): T {
  const args = ['--find', '--show', '--offset', String(offset), '--sizelimit', String(size)];
  if (ro) args.push('--read-only');
  const loop = sh('losetup', [...args, file]).trim();
  try {
    return fn(loop);
  } finally {
    detachLoop(loop, { partitions: false });
  }
}

interface Part { nr: number; start: number; size: number }
/** The partitions of a disk image, in bytes. */
function partitions(file: string): Part[] {
  const r = spawnSync('sfdisk', ['--json', file], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.trim()) return [];
  const t = JSON.parse(r.stdout).partitiontable as { partitions: { node: string; start: number; size: number }[] };
  return t.partitions.map((p) => ({ nr: Number(/(\d+)$/.exec(p.node)![1]), start: p.start * 512, size: p.size * 512 }));
}

/** Files a file-level copy must keep, under DIR: owners, modes, xattrs, an ACL, hard links, a sparse file. */
function fillTree(dir: string, seed: string): void {
  const t = path.join(dir, 'srv', 'keep');
  fs.mkdirSync(t, { recursive: true });
  fs.writeFileSync(path.join(t, 'a'), `hard link ${seed}\n`);
  fs.linkSync(path.join(t, 'a'), path.join(t, 'b'));
  fs.writeFileSync(path.join(t, 'owned'), 'owned\n');
  fs.chownSync(path.join(t, 'owned'), 1234, 5678);
  fs.chmodSync(path.join(t, 'owned'), 0o4750);
  sh('sh', ['-c', 'truncate -s 200M "$1" && printf end >> "$1"', 'x', path.join(t, 'sparse')]);
  sh('setfattr', ['-n', 'user.ganeti', '-v', 'kept', path.join(t, 'a')]);
  sh('setfacl', ['-m', 'u:4321:r', path.join(t, 'owned')]);
  fs.symlinkSync('a', path.join(t, 'link'));
  fs.writeFileSync(path.join(t, 'random'), crypto.randomBytes(3 * MiB));
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(t, `small${i}`), `${seed} ${i}\n`.repeat(i));
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
}

/** Everything about a tree a copy must keep: type, mode, owner, size, content, links, xattrs (ACLs too). */
function manifest(dir: string): string {
  return sh('/usr/bin/python3', ['-c', `
import hashlib, os, sys
root = sys.argv[1]; seen = {}; out = []
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        p = os.path.join(d, n); r = os.path.relpath(p, root)
        if r.startswith('lost+found'): continue
        st = os.lstat(p); line = [r, oct(st.st_mode), st.st_uid, st.st_gid]
        if os.path.islink(p): line.append('-> ' + os.readlink(p))
        elif os.path.isfile(p):
            line += [st.st_size, st.st_nlink, int(st.st_mtime), hashlib.sha256(open(p, 'rb').read()).hexdigest()[:16]]
            line.append('same-as ' + seen.setdefault(st.st_ino, r))
            if st.st_size > 100 << 20: line.append('sparse' if st.st_blocks * 512 < 1 << 20 else 'NOT SPARSE')
        for x in sorted(os.listxattr(p, follow_symlinks=False)):
            line.append(x + '=' + os.getxattr(p, x, follow_symlinks=False).hex())
        out.append(' '.join(map(str, line)))
print('\\n'.join(out))
`, dir]);
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describeSystem('debian template: export/import streams of made-up layouts', { root: true, ganeti: true, commands: NEEDS }, () => {
  let work: string;
  let osDir: string;
  let tmp: string;
  let defaults: string;
  let baseDefaults: string;

  const disk = (name: string) => path.join(work, name);
  const instance = (disks: string[], osparams: Record<string, string> = {}): InstanceSpec => ({
    name: 'stream.example.com',
    os: 'debian-os+bookworm',
    os_dir: osDir,
    disks: disks.map((d) => ({ path: d })),
    nics: [{ mac: 'aa:00:00:12:34:56' }],
    hvparams: { kernel_path: '' },
    osparams,
  });
  const setConfig = (lines: string[]) => fs.writeFileSync(defaults, baseDefaults + lines.join('\n') + '\n');
  const expectNoLeaks = () => expect(resources(work, tmp)).toEqual({ loops: [], mounts: [], temps: [] });
  const header = (stream: string) => {
    const head = fs.readFileSync(stream).subarray(0, 512).toString('latin1');
    return head.slice(0, head.indexOf('\nend\n') + 1);
  };
  /** export disk INDEX of DISKS to STREAM; checks it succeeded and announced its size. */
  const exportDisk = (disks: string[], index: number, stream: string) => {
    const r = runExport(instance(disks), index, stream);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.ok).toBe(true);
    return { ok: r.ok, stderr: String(r.stderr ?? ''), announced: String(r.announced ?? ''), header: header(stream) };
  };
  /** An msdos disk as create makes it: partition 1 from 1 MiB to the end, ext4, files from fillTree. */
  const ourDisk = (name: string, mib: number, fstype = 'ext4') => {
    const d = sparseDisk(disk(name), mib);
    sh('sfdisk', ['--quiet', d], 'label: dos\nstart=2048, type=83, bootable\n');
    const p = partitions(d)[0];
    withRange(d, p.start, p.size, (dev) => sh(`mkfs.${fstype}`, ['-q', '-F', '-L', 'root', dev]));
    withFs(d, p.start, p.size, (root) => {
      fillTree(root, name);
      const uuid = sh('findmnt', ['-n', '-o', 'UUID', root]).trim();
      fs.writeFileSync(path.join(root, 'etc', 'fstab'), `UUID=${uuid}\t/\t${fstype}\terrors=remount-ro\t0\t1\n`);
    }, true);
    return d;
  };
  const rootOf = (d: string) => partitions(d)[0] ?? { nr: 1, start: 0, size: fs.statSync(d).size };
  const treeOf = (d: string, p: Part = rootOf(d)) => withFs(d, p.start, p.size, (root) => manifest(root));
  const fsInfo = (d: string, p: Part = rootOf(d)) =>
    withRange(d, p.start, p.size, (dev) => {
      const blk = (k: string) => sh('blkid', ['-p', '-o', 'value', '-s', k, dev]).trim();
      const head = sh('dumpe2fs', ['-h', dev]);
      const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)$`, 'm').exec(head)![1]);
      return { type: blk('TYPE'), uuid: blk('UUID'), clean: spawnSync('e2fsck', ['-fn', dev]).status === 0, bytes: num('Block count') * num('Block size') };
    }, true);

  beforeAll(() => {
    work = tempDir('stream');
    tmp = path.join(work, 'tmp');
    fs.mkdirSync(tmp);
    runCliOk(['new', 'debian-os', '--yes'], { cwd: work, env: process.env, timeout: 0 });
    osDir = path.join(work, 'debian-os');
    defaults = path.join(osDir, 'defaults.conf');
    baseDefaults = fs.readFileSync(defaults, 'utf8') + `TMPDIR=${tmp}\n`;
    setConfig([]);
  });

  afterAll(() => {
    if (!work) return;
    releaseResources(work, tmp);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('moves a second disk holding an msdos table with two ext4 partitions whole: both come back', () => {
    const d1 = sparseDisk(disk('two.img'), 256);
    sh('sfdisk', ['--quiet', d1], 'label: dos\nstart=2048, size=100MiB, type=83\nsize=100MiB, type=83\n');
    const parts = partitions(d1);
    expect(parts.length).toBe(2);
    for (const p of parts) {
      withRange(d1, p.start, p.size, (dev) => sh('mkfs.ext4', ['-q', '-F', dev]));
      withFs(d1, p.start, p.size, (root) => fs.writeFileSync(path.join(root, `file${p.nr}`), `partition ${p.nr}\n`), true);
    }
    const d0 = sparseDisk(disk('d0.img'), 64);
    const stream = disk('two.stream');
    const e = exportDisk([d0, d1], 1, stream);
    expect(e.header).toMatch(/^kind=raw$/m);
    expect(e.stderr).toMatch(/disk 1 travels whole \(raw, zstd\): its msdos table holds more than this definition writes: partition 2/);
    expect(fs.statSync(stream).size).toBeLessThan(16 * MiB);
    const copy = sparseDisk(disk('two-copy.img'), 256);
    const i = runImport(instance([d0, copy], { filesystem: 'ext3' }), 1, stream);
    expect(i.stderr).not.toMatch(/error/);
    expect(i.ok).toBe(true);
    expect(sha(copy)).toBe(sha(d1));
    for (const p of partitions(copy)) {
      expect(withFs(copy, p.start, p.size, (root) => fs.readFileSync(path.join(root, `file${p.nr}`), 'utf8'))).toBe(`partition ${p.nr}\n`);
    }
    // A file-backed disk stays sparse.
    expect(fs.statSync(copy).blocks * 512).toBeLessThan(64 * MiB);
    expectNoLeaks();
  }, 120_000);

  it.each([
    ['an extra partition on disk 0', 'label: dos\nstart=2048, size=200MiB, type=83, bootable\nsize=50MiB, type=83\n', 0],
    ['a gpt table with a third partition', 'label: gpt\n1 : start=4096, size=200MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n2 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n3 : size=40MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n', 0],
    ['partition 1 where create does not put it', 'label: dos\nstart=63, type=83\n', 0],
    ['an extended partition', 'label: dos\nstart=2048, size=200MiB, type=83\ntype=5\nsize=20MiB, type=83\n', 1],
  ])('moves a disk with %s whole', (_what, table, index) => {
    const d = sparseDisk(disk('layout.img'), 300);
    sh('sfdisk', ['--quiet', d], table);
    for (const p of partitions(d).filter((x) => x.size >= 8 * MiB)) {
      withRange(d, p.start, p.size, (dev) => sh('mkfs.ext4', ['-q', '-F', dev]));
      withFs(d, p.start, p.size, (root) => fillTree(root, `p${p.nr}`), true);
    }
    const disks = index === 0 ? [d] : [sparseDisk(disk('other.img'), 64), d];
    const stream = disk('layout.stream');
    const e = exportDisk(disks, index, stream);
    expect(e.header).toMatch(/^kind=raw$/m);
    expect(e.stderr).toMatch(/travels whole/);
    const copy = sparseDisk(disk('layout-copy.img'), 300);
    const target = index === 0 ? [copy] : [disks[0], copy];
    const i = runImport(instance(target), index, stream);
    expect(i.ok).toBe(true);
    expect(sha(copy)).toBe(sha(d));
    expectNoLeaks();
  }, 120_000);

  it.each([
    ['a vfat filesystem', (dev: string) => sh('mkfs.vfat', [dev])],
    ['an LVM physical volume', (dev: string) => sh('pvcreate', ['-ff', '-y', '-qq', dev])],
    ['an ext4 filesystem with an LVM label over it', (dev: string) => {
      sh('mkfs.ext4', ['-q', '-F', dev]);
      sh('pvcreate', ['-ff', '-y', '-qq', dev]);
    }],
  ])('moves a whole disk holding %s raw', (_what, make) => {
    const d = sparseDisk(disk('sig.img'), 64);
    withRange(d, 0, 64 * MiB, (dev) => make(dev));
    fs.writeFileSync(disk('marker'), 'x');
    const stream = disk('sig.stream');
    const e = exportDisk([sparseDisk(disk('other.img'), 64), d], 1, stream);
    expect(e.header).toMatch(/^kind=raw$/m);
    const copy = sparseDisk(disk('sig-copy.img'), 64);
    expect(runImport(instance([disk('other.img'), copy]), 1, stream).ok).toBe(true);
    expect(sha(copy)).toBe(sha(d));
    expectNoLeaks();
  }, 60_000);

  it('moves a filesystem in the layout create makes as its used blocks, size announced, everything kept', () => {
    const d = ourDisk('ours.img', 600);
    const before = treeOf(d);
    expect(before).toMatch(/srv\/keep\/sparse .* sparse/);
    expect(before).toMatch(/system\.posix_acl_access=/);
    const stream = disk('ours.stream');
    const e = exportDisk([d], 0, stream);
    expect(e.header).toMatch(/^kind=fsblocks$/m);
    expect(e.header).toMatch(/^style=msdos$/m);
    const size = fs.statSync(stream).size;
    expect(Number(e.announced.trim())).toBe(size);
    // The data (~4 MiB) and metadata, not the disk, nor the journal's or inode tables' free space.
    expect(size).toBeLessThan(16 * MiB);
    const old = fsInfo(d);

    // A larger disk: the blocks go straight onto the new partition, grown to it, with a new UUID.
    const big = sparseDisk(disk('ours-big.img'), 1024);
    const i = runImport(instance([big]), 0, stream);
    expect(i.stderr).not.toMatch(/error/);
    expect(i.ok).toBe(true);
    expect(treeOf(big).replace(/^etc\/fstab .*$/m, '')).toBe(before.replace(/^etc\/fstab .*$/m, ''));
    const n = fsInfo(big);
    expect(n).toMatchObject({ type: 'ext4', clean: true });
    expect(n.uuid).not.toBe(old.uuid);
    expect(n.bytes).toBeGreaterThan(rootOf(big).size - 4 * MiB);
    withFs(big, rootOf(big).start, rootOf(big).size, (root) =>
      expect(fs.readFileSync(path.join(root, 'etc', 'fstab'), 'utf8')).toBe(`UUID=${n.uuid}\t/\text4\terrors=remount-ro\t0\t1\n`));
    expect(fs.statSync(big).size).toBe(1024 * MiB);
    expectNoLeaks();

    // A smaller disk that holds the files: shrunk through a scratch copy.
    const small = sparseDisk(disk('ours-small.img'), 300);
    const s = runImport(instance([small]), 0, stream);
    expect(s.stderr).not.toMatch(/error/);
    expect(s.ok).toBe(true);
    expect(treeOf(small).replace(/^etc\/fstab .*$/m, '')).toBe(before.replace(/^etc\/fstab .*$/m, ''));
    expect(fsInfo(small)).toMatchObject({ type: 'ext4', clean: true });
    expect(fsInfo(small).bytes).toBeLessThanOrEqual(rootOf(small).size);
    expectNoLeaks();

    // The filesystem parameter is honoured on disk 0: ext3, files copied, fstab says so.
    const e3 = sparseDisk(disk('ours-ext3.img'), 600);
    const c = runImport(instance([e3], { filesystem: 'ext3' }), 0, stream);
    expect(c.ok).toBe(true);
    expect(c.stderr).toMatch(/the stream holds an ext4 filesystem; the instance's filesystem parameter is ext3: disk 0 gets ext3/);
    const c3 = fsInfo(e3);
    expect(c3).toMatchObject({ type: 'ext3', clean: true });
    const strip = (t: string) => t.replace(/^etc\/fstab .*$/m, '').replace(/^(\S+) (0o40\d+) (\d+ \d+).*$/gm, '$1 $2 $3');
    expect(strip(treeOf(e3))).toBe(strip(before));
    withFs(e3, rootOf(e3).start, rootOf(e3).size, (root) =>
      expect(fs.readFileSync(path.join(root, 'etc', 'fstab'), 'utf8')).toBe(`UUID=${c3.uuid}\t/\text3\terrors=remount-ro\t0\t1\n`));
    expectNoLeaks();

    // Another disk keeps its UUID and its type (the instance's fstab names both), and says why.
    const other = sparseDisk(disk('ours-d1.img'), 600);
    const o = runImport(instance([e3, other], { filesystem: 'ext3' }), 1, stream);
    expect(o.ok).toBe(true);
    expect(o.stderr).toMatch(/disk 1 keeps its exported ext4 filesystem/);
    expect(fsInfo(other)).toMatchObject({ type: 'ext4', uuid: old.uuid, clean: true });
    expectNoLeaks();
  }, 180_000);

  it('refuses a disk too small for the data before writing anything', () => {
    const stream = disk('ours.stream');
    const tiny = disk('tiny.img');
    fs.writeFileSync(tiny, crypto.randomBytes(24 * MiB));
    const hash = sha(tiny);
    const r = runImport(instance([tiny]), 0, stream);
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/disk 0 is too small: its root partition would hold 23 MiB, the exported filesystem has \d+ MiB in use .*nothing was written/);
    expect(sha(tiny)).toBe(hash);
    // A raw stream larger than the disk likewise.
    const raw = disk('two.stream');
    const t = runImport(instance([disk('d0.img'), tiny]), 1, raw);
    expect(t.ok).toBe(false);
    expect(t.stderr).toMatch(/smaller \(25165824 bytes\) than the exported disk \(268435456 bytes\): nothing was written/);
    expect(sha(tiny)).toBe(hash);
    expectNoLeaks();
  }, 60_000);

  it('fails on a truncated block stream', () => {
    const stream = disk('ours.stream');
    const cut = disk('cut.stream');
    fs.writeFileSync(cut, fs.readFileSync(stream).subarray(0, Math.floor(fs.statSync(stream).size / 2)));
    const r = runImport(instance([sparseDisk(disk('cut.img'), 600)]), 0, cut);
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/truncated|damaged/);
    expectNoLeaks();
  }, 60_000);

  it('imports a stream written by the export of main before the block format (tar, gzip)', () => {
    expect(header(FIXTURE)).toMatch(/^kind=fs$/m);
    const d = sparseDisk(disk('fixture.img'), 400);
    const r = runImport(instance([d]), 0, FIXTURE);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.ok).toBe(true);
    const info = fsInfo(d);
    expect(info).toMatchObject({ type: 'ext4', clean: true });
    expect(info.uuid).not.toBe('11111111-2222-3333-4444-555555555555');
    const tree = treeOf(d);
    expect(tree).toMatch(/^srv\/keep\/a 0o100644 0 0 11 2 \d+ \w+ same-as srv\/keep\/a .*user\.ganeti=6b657074/m);
    expect(tree).toMatch(/^srv\/keep\/b .* same-as srv\/keep\/a/m);
    expect(tree).toMatch(/^srv\/keep\/owned 0o104750 1234 5678 6 1 /m);
    expect(tree).toMatch(/^srv\/keep\/a .*system\.posix_acl_access=/m);
    expect(tree).toMatch(/^srv\/keep\/sparse 0o100644 0 0 52428803 /m);
    expect(tree).toMatch(/^srv\/keep\/link 0o120777 0 0 -> a$/m);
    expect(tree).toMatch(/^srv\/keep\/random 0o100644 0 0 8192 1 \d+ 34adaa2ee90d3d65 /m);
    withFs(d, rootOf(d).start, rootOf(d).size, (root) => {
      expect(fs.statSync(path.join(root, 'srv/keep/sparse')).blocks * 512).toBeLessThan(MiB);
      expect(fs.readFileSync(path.join(root, 'etc', 'fstab'), 'utf8')).toContain(`UUID=${info.uuid} / ext4`);
    });
    // With another filesystem type asked for, the tar stream is unpacked into it.
    const e3 = sparseDisk(disk('fixture3.img'), 400);
    const c = runImport(instance([e3], { filesystem: 'ext3' }), 0, FIXTURE);
    expect(c.ok).toBe(true);
    expect(fsInfo(e3).type).toBe('ext3');
    expectNoLeaks();
  }, 60_000);

  it('EXPORT_FORMAT=files still writes the file-level stream, which imports', () => {
    setConfig(['EXPORT_FORMAT=files']);
    try {
      const stream = disk('files.stream');
      const e = exportDisk([disk('ours.img')], 0, stream);
      expect(e.header).toMatch(/^kind=fs$/m);
      const d = sparseDisk(disk('files.img'), 600);
      expect(runImport(instance([d]), 0, stream).ok).toBe(true);
      expect(treeOf(d).replace(/^etc\/fstab .*$/m, '')).toBe(treeOf(disk('ours.img')).replace(/^etc\/fstab .*$/m, ''));
    } finally {
      setConfig([]);
    }
    expectNoLeaks();
  }, 60_000);
});
