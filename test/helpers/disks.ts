/**
 * Disk images for system tests: sparse files, partitions reached by offset (as the debian
 * template does it), read-only inspection mounts released on every path, and a leak check for
 * loop devices, mounts and temporary directories.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
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
  const r = spawnSync('sfdisk', ['--json', disk], { encoding: 'utf8' });
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
  const args = ['--find', '--show', '--offset', String(offset), '--sizelimit', String(size)];
  if (!rw) args.push('--read-only');
  const loop = sh('losetup', [...args, disk]).trim();
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'gos-inspect-'));
  let mounted = false;
  try {
    sh('mount', ['-o', rw ? 'rw' : 'ro', loop, mnt]);
    mounted = true;
    return fn(mnt);
  } finally {
    if (mounted) spawnSync('umount', [mnt]);
    spawnSync('losetup', ['--detach', loop]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

export interface Resources {
  loops: string[];
  mounts: string[];
  temps: string[];
}

/** Loop devices backed by files under `dir`, mounts under `dir` or `tmp`, entries in `tmp`. */
export function resources(dir: string, tmp: string): Resources {
  const loops = sh('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'])
    .split('\n')
    .filter((l) => l.includes(dir));
  const mounts = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(dir) || l.includes(tmp));
  const temps = fs.existsSync(tmp) ? fs.readdirSync(tmp) : [];
  return { loops, mounts, temps };
}

export function shellOk(cmd: string): boolean {
  return spawnSync('sh', ['-c', cmd]).status === 0;
}
