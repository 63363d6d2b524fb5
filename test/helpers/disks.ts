/**
 * Disk images for system tests: sparse files, partitions reached by offset (as the debian
 * template does it), read-only inspection mounts released on every path, and a leak check for
 * loop devices, mounts and temporary directories.
 */
import * as fs from 'node:fs';
import { attachLoop, detachLoop, loopDevices, mount, mountTable, unmount } from '../../src/system/kernel';
import { failureMessage, RunOptions, runSync } from '../../src/system/process';
import { tempDir } from './trees';

/** Run argv to completion; its stdout. Throws (failureMessage) when it fails. */
export function mustRun(argv: string[], opts: RunOptions = {}): string {
  const r = runSync(argv, opts);
  const fail = failureMessage(argv, r);
  if (fail) throw new Error(fail);
  return r.stdout;
}

export function sh(cmd: string, args: string[], input?: string): string {
  return mustRun([cmd, ...args], { input, stdin: 'pipe', maxBuffer: 64 * 1024 * 1024 });
}

/** A sparse file of `mib` MiB. */
export function sparseDisk(file: string, mib: number): string {
  fs.rmSync(file, { force: true });
  fs.closeSync(fs.openSync(file, 'w'));
  fs.truncateSync(file, mib * 1024 * 1024);
  return file;
}

export interface RootFs {
  style: 'msdos' | 'gpt' | 'none';
  offset: number;
  size: number;
}

/** Where partition 1 (or the whole disk) is, from `sfdisk --json`. */
export function locateRoot(disk: string): RootFs {
  const r = runSync(['sfdisk', '--json', disk], { stdin: 'pipe' });
  if (r.status !== 0 || !r.stdout.trim()) return { style: 'none', offset: 0, size: fs.statSync(disk).size };
  const table = JSON.parse(r.stdout).partitiontable as { label: string; sectorsize?: number; partitions: { node: string; start: number; size: number }[] };
  const sector = table.sectorsize ?? 512;
  const p1 = table.partitions.find((p) => /\D1$/.test(p.node));
  if (!p1) throw new Error(`${disk}: no partition 1`);
  return { style: table.label === 'dos' ? 'msdos' : 'gpt', offset: p1.start * sector, size: p1.size * sector };
}

/** Run fn with disk's root filesystem mounted (read-only unless rw); always released. */
export function withMounted<T>(disk: string, fn: (root: string) => T, rw = false): T {
  const where = locateRoot(disk);
  return withMountedRange(disk, where.offset, where.size, fn, rw);
}

/** Run fn with the filesystem in `size` bytes of `disk` from `offset` mounted (read-only unless rw); always released. */
export function withMountedRange<T>(disk: string, offset: number, size: number, fn: (root: string) => T, rw = false): T {
  const loop = attachLoop(disk, { offset, sizelimit: size, readOnly: !rw });
  const mnt = tempDir('inspect');
  let mounted = false;
  try {
    mount(loop, mnt, { readOnly: !rw });
    mounted = true;
    return fn(mnt);
  } finally {
    if (mounted) unmount(mnt);
    detachLoop(loop, { partitions: false });
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

export interface Resources {
  loops: string[];
  mounts: string[];
  temps: string[];
}

/** Loop devices (names) backed by files under `dir`, mount points under `dir` or `tmp` (or mounted from there), entries in `tmp`. */
export function resources(dir: string, tmp: string): Resources {
  const loops = loopDevices()
    .filter((l) => l.backFile.includes(dir))
    .map((l) => l.name);
  const mounts = mountTable()
    .filter((m) => [m.source, m.target].some((f) => f.includes(dir) || f.includes(tmp)))
    .map((m) => m.target);
  const temps = fs.existsSync(tmp) ? fs.readdirSync(tmp) : [];
  return { loops, mounts, temps };
}

/** Unmounts and detaches what resources(dir, tmp) finds (a failed test's leftovers), so that nothing is deleted through a mount. */
export function releaseResources(dir: string, tmp: string): void {
  for (const m of resources(dir, tmp).mounts) unmount(m);
  for (const l of resources(dir, tmp).loops) detachLoop(l, { partitions: false });
}

export function shellOk(cmd: string): boolean {
  return runSync(['sh', '-c', cmd], { stdin: 'pipe' }).status === 0;
}
