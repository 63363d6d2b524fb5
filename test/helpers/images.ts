/**
 * Cloud images for the image template's tests: small fake ones built from the committed recipe
 * test/helpers/fake-images.sh (well under a second each) in the formats the template reads, a
 * bootable Debian one (test/helpers/cloud-image.sh) cached across runs by the recipe's hash,
 * and partition-level inspection of instance disks (mounts released on every path).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSync } from '../../src/system/process';
import { mustRun, withMountedRange } from './disks';
import { tempDir } from './trees';

const HELPERS = __dirname;
const REPO = path.join(__dirname, '..', '..');

export type FakeKind = 'gpt-ubuntu' | 'gpt-root3' | 'msdos' | 'xfs-root' | 'no-linux';
export type ImageFormat = 'raw' | 'qcow2' | 'xz' | 'zst';

export interface BuiltImage {
  path: string;
  sha256: string;
  /** Virtual (raw) size in bytes. */
  size: number;
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A fake image of `kind` in `format`, built in `dir` (file named kind.format). */
export function fakeImage(kind: FakeKind, format: ImageFormat, dir: string): BuiltImage {
  const raw = path.join(dir, `${kind}.raw`);
  if (!fs.existsSync(raw)) mustRun(['bash', path.join(HELPERS, 'fake-images.sh'), kind, raw], { stdout: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TMPDIR: dir } });
  const size = fs.statSync(raw).size;
  let out = raw;
  if (format !== 'raw') {
    out = path.join(dir, `${kind}.${format}`);
    if (!fs.existsSync(out)) {
      if (format === 'qcow2') mustRun(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, out], { stdin: 'pipe' });
      else if (format === 'xz') mustRun(['sh', '-c', 'xz -0 -T0 -c "$1" > "$2"', 'sh', raw, out], { stdin: 'pipe' });
      else mustRun(['sh', '-c', 'zstd -q -1 -c "$1" > "$2"', 'sh', raw, out], { stdin: 'pipe' });
    }
  }
  return { path: out, sha256: sha256(out), size };
}

/** Test images kept across runs; also where a cluster box's nodes see the host's files (they have their own /tmp). */
export const TEST_IMAGES = '/var/cache/ganeti-os/test-images';

/**
 * fakeImage in a new directory under TEST_IMAGES, for definitions a cluster box's nodes install
 * from; the directory's removal is pushed onto `cleanups` (the suite runs them in afterAll).
 */
export function fakeImageForBox(kind: FakeKind, format: ImageFormat, tag: string, cleanups: (() => void)[]): BuiltImage {
  fs.mkdirSync(TEST_IMAGES, { recursive: true });
  const images = tempDir(tag, TEST_IMAGES);
  cleanups.push(() => fs.rmSync(images, { recursive: true, force: true }));
  return fakeImage(kind, format, images);
}

export interface Partition {
  nr: number;
  start: number;
  sectors: number;
  type: string;
}

/** The partition table of a disk or image file, from sfdisk --json. */
export function partitions(disk: string): { label: string; lastlba?: number; partitions: Partition[] } {
  const t = JSON.parse(mustRun(['sfdisk', '--json', disk], { stderr: 'ignore' })).partitiontable;
  return {
    label: t.label,
    lastlba: t.lastlba,
    partitions: (t.partitions as { node: string; start: number; size: number; type: string }[]).map((p) => ({
      nr: Number(/(\d+)$/.exec(p.node)![1]),
      start: p.start,
      sectors: p.size,
      type: p.type,
    })),
  };
}

/** Run fn with partition nr of disk mounted read-only (or rw); always released. */
export function withPartition<T>(disk: string, nr: number, fn: (root: string) => T, rw = false): T {
  const p = partitions(disk).partitions.find((x) => x.nr === nr);
  if (!p) throw new Error(`${disk}: no partition ${nr}`);
  return withMountedRange(disk, p.start * 512, p.sectors * 512, fn, rw);
}

/** Filesystem facts of partition nr (blkid by offset, no loop device). */
export function partitionFs(disk: string, nr: number): Record<string, string> {
  const p = partitions(disk).partitions.find((x) => x.nr === nr)!;
  const out = runSync(['blkid', '-p', '-o', 'export', '-O', String(p.start * 512), '-S', String(p.sectors * 512), disk], { stdin: 'pipe' }).stdout;
  return Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Bytes of an ext2/3/4 filesystem on partition nr (block count x block size, from dumpe2fs). */
export function extSize(disk: string, nr: number): number {
  const p = partitions(disk).partitions.find((x) => x.nr === nr)!;
  const out = mustRun(['dumpe2fs', '-h', `${disk}?offset=${p.start * 512}`], { stderr: 'ignore' });
  const count = Number(/^Block count:\s+(\d+)/m.exec(out)![1]);
  const size = Number(/^Block size:\s+(\d+)/m.exec(out)![1]);
  return count * size;
}

/** Is the first `bytes` of file all zeros? */
export function isZero(file: string, bytes: number): boolean {
  return runSync(['cmp', '-s', '-n', String(bytes), file, '/dev/zero'], { stdin: 'pipe' }).status === 0;
}

/**
 * The bootable Debian cloud image (qcow2) of release `suite` (bookworm, trixie), built once per
 * recipe version and release and kept in cacheDir.
 */
export function bootableImage(suite = 'bookworm', cacheDir = TEST_IMAGES): BuiltImage {
  const recipe = path.join(HELPERS, 'cloud-image.sh');
  const key = createHash('sha256')
    .update(fs.readFileSync(recipe))
    .update(fs.readFileSync(path.join(REPO, 'templates', 'debian', 'lib', 'debian-disk.sh')))
    .digest('hex')
    .slice(0, 16);
  fs.mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `debian-cloud-${suite}-${key}.qcow2`);
  if (!fs.existsSync(file)) {
    // One builder at a time (flock); the recipe renames its result into place.
    mustRun(['flock', path.join(cacheDir, '.lock'), 'sh', '-c', '[ -f "$1" ] || bash "$2" "$1" "$3" "$4"', 'sh', file, recipe, REPO, suite], { stdout: 'ignore', stderr: 'inherit' });
  }
  const info = JSON.parse(mustRun(['qemu-img', 'info', '--output=json', file], { stdin: 'pipe' }));
  return { path: file, sha256: sha256(file), size: info['virtual-size'] };
}
