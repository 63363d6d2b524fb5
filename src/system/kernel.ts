/**
 * The kernel as this host shows it (/proc, /sys): processes, namespaces, mounts and loop
 * devices, process groups. The one reader of the mount table and the one loop-device scanner
 * for src/, test/helpers and bench (through dist/). Process starting is in process.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { failureMessage, runSync } from './process';

/** True when a process with this host PID exists (zombies count as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** argv of a host process ([] when gone). */
export function cmdline(pid: number): string[] {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

/** The inode naming a process's namespace of this kind ("pid", "net", "mnt"), or null when gone. */
export function namespaceOf(pid: number, kind: string): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return null;
  }
}

/** The PIDs /proc lists now (this PID namespace's processes, living or not). */
export function pids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

/** Host PIDs of every process whose `kind` namespace is `ns` (processes of a pid namespace: kind "pid"). */
export function processesIn(kind: string, ns: string): number[] {
  return pids().filter((pid) => namespaceOf(pid, kind) === ns && alive(pid));
}

/** A process's start time (clock ticks since boot, /proc/PID/stat field 22), '' when gone or not Linux. */
export function startTime(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** Host PIDs of all living descendants of `pid` (through /proc/PID/task/TID/children). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift() as number;
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      let kids = '';
      try {
        kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(/\s+/).filter(Boolean)) {
        out.push(Number(k));
        queue.push(Number(k));
      }
    }
  }
  return out;
}

/** The process name (comm) of a host PID ("" when gone). */
export function comm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Wait until `check` is true, polling every `stepMs`; false after `seconds`. */
export function waitFor(check: () => boolean, seconds: number, stepMs = 50): boolean {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) return false;
    sleepMs(stepMs);
  }
}

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** "MAJ:MIN" of a stat's device number (Linux encoding, as losetup prints it). */
export function devString(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}


/** The environment of the administrator's tools run here (losetup, partx, umount): sbin on PATH, C messages. */
const TOOL_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

// --- process groups ------------------------------------------------------------------------

/** Whether anything of process group `pgid` is left (kill(-pgid, 0)). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Send `signal` to the whole process group `pgid`; false when there is no such group. */
export function killGroup(pgid: number, signal: NodeJS.Signals | 0 = 'SIGTERM'): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stop process groups, blocking: SIGTERM to each (their EXIT traps run), up to `graceMs` for
 * them to end, then SIGKILL to what is left.
 */
export function stopGroups(pgids: Iterable<number>, graceMs = 20_000): void {
  const groups = [...pgids];
  for (const g of groups) killGroup(g, 'SIGTERM');
  waitFor(() => !groups.some(groupAlive), graceMs / 1000, 200);
  for (const g of groups) killGroup(g, 'SIGKILL');
}

// --- the mount table -----------------------------------------------------------------------

/** One line of /proc/PID/mountinfo. */
export interface Mount {
  /** The filesystem's device number, "MAJ:MIN". */
  devNo: string;
  /** The path inside that filesystem that is mounted (a bind mount's source). */
  root: string;
  /** Where it is mounted. */
  target: string;
  /** Per-mount options (rw,nosuid,...). */
  options: string;
  /** The optional fields, propagation among them ("shared:1 master:2"; "" for none). */
  optional: string;
  fsType: string;
  /** The mount source (a device path, or what the filesystem calls it). */
  source: string;
  /** Per-superblock options. */
  superOptions: string;
}

const unescapeOctal = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The mounts of a mountinfo text (proc(5)), octal escapes (\\040 for a space) undone. */
export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const dash = f.indexOf('-', 6);
    const after = (i: number) => (dash > 0 ? (f[dash + i] ?? '') : '');
    out.push({
      devNo: f[2],
      root: unescapeOctal(f[3]),
      target: unescapeOctal(f[4]),
      options: f[5] ?? '',
      optional: f.slice(6, dash > 0 ? dash : undefined).join(' '),
      fsType: after(1),
      source: unescapeOctal(after(2)),
      superOptions: after(3),
    });
  }
  return out;
}

/** The mount table of this process's mount namespace (or of process `pid`'s); empty when unreadable. */
export function mountTable(pid: number | 'self' = 'self'): Mount[] {
  try {
    return parseMountinfo(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
  } catch {
    return [];
  }
}

/** Whether `p` is `dir` or lies below it. */
export const atOrUnder = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');

/** Mount points (host mount namespace) at or below `dir`. */
export function mountsUnder(dir: string): string[] {
  return mountTable()
    .map((m) => m.target)
    .filter((t) => atOrUnder(t, dir));
}

/**
 * Mount `source` on `target` (read-write unless readOnly; `type` for a filesystem with no
 * device, tmpfs). Throws an Error worded by failureMessage when mount fails.
 */
export function mount(source: string, target: string, opts: { readOnly?: boolean; type?: string; options?: string[] } = {}): void {
  const argv = ['mount', ...(opts.type ? ['-t', opts.type] : []), '-o', [opts.readOnly ? 'ro' : 'rw', ...(opts.options ?? [])].join(','), source, target];
  const r = runSync(argv, { env: TOOL_ENV });
  const fail = failureMessage(argv, r);
  if (fail) throw new Error(fail);
}

/** Unmount `target` (lazily: detached now, released when no longer busy); whether umount succeeded. */
export function unmount(target: string, opts: { lazy?: boolean } = {}): boolean {
  return runSync(['umount', ...(opts.lazy ? ['--lazy'] : []), target], { env: TOOL_ENV }).status === 0;
}

// --- block devices -------------------------------------------------------------------------

const SYS_BLOCK = '/sys/class/block';

/** A small kernel file's text (/proc, /sys), trimmed; undefined when it cannot be read. */
export const readTrim = (p: string): string | undefined => {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
};

const listDir = (p: string): string[] => {
  try {
    return fs.readdirSync(p);
  } catch {
    return [];
  }
};

/** The sysfs name of a block device number (a stat's rdev), e.g. loop5; undefined when the kernel has none. */
export function blockName(rdev: number): string | undefined {
  try {
    return path.basename(fs.readlinkSync(`/sys/dev/block/${devString(BigInt(rdev))}`));
  } catch {
    return undefined;
  }
}

/** The size in 512-byte sectors of a block device number (a stat's rdev); undefined when unreadable. */
export function blockSectors(rdev: number): number | undefined {
  const text = readTrim(`/sys/dev/block/${devString(BigInt(rdev))}/size`);
  return text === undefined ? undefined : Number(text);
}

/** Whether block device `name` (sysfs name) is a partition. */
export const isPartition = (name: string): boolean => fs.existsSync(path.join(SYS_BLOCK, name, 'partition'));

/** The partitions (sysfs names) of block device `name`. */
export const partitionsOf = (name: string): string[] => listDir(path.join(SYS_BLOCK, name)).filter((e) => isPartition(path.join(name, e)));

/** The whole device a partition `name` belongs to (sysfs name). */
export const partitionParent = (name: string): string => path.basename(path.dirname(fs.realpathSync(path.join(SYS_BLOCK, name))));

/** The devices holding block device `name` (sysfs names: device mapper, md, bcache). */
export const holdersOf = (name: string): string[] => listDir(path.join(SYS_BLOCK, name, 'holders'));

/** "MAJ:MIN" of block device `name` (sysfs name), undefined when unreadable. */
export const devNoOf = (name: string): string | undefined => readTrim(path.join(SYS_BLOCK, name, 'dev'));

/** The active swap areas (devices and files) as /proc/swaps names them, octal escapes undone. */
export function swaps(): string[] {
  return (readTrim('/proc/swaps') ?? '')
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((line) => unescapeOctal(line.split(/\s+/)[0]));
}

// --- loop devices --------------------------------------------------------------------------

export interface LoopDevice {
  /** "/dev/loopN". */
  name: string;
  /** The backing file as the kernel names it (without " (deleted)"). */
  backFile: string;
  /** The backing file was deleted (or renamed away) since it was attached. */
  deleted: boolean;
  /** Bytes into the backing file where the device starts. */
  offset: number;
  /** Device number of the backing file's filesystem, "MAJ:MIN" ("" unless withBackingInodes). */
  backDev: string;
  /** Its inode (0 unless withBackingInodes). */
  backIno: number;
}

/** Every attached loop device, from /sys/class/block (any user can read it). */
export function loopDevices(): LoopDevice[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(SYS_BLOCK).filter((n) => /^loop\d+$/.test(n));
  } catch {
    return [];
  }
  const out: LoopDevice[] = [];
  for (const n of names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))) {
    const backing = readTrim(path.join(SYS_BLOCK, n, 'loop', 'backing_file'));
    if (!backing) continue;
    const deleted = backing.endsWith(' (deleted)');
    out.push({
      name: `/dev/${n}`,
      backFile: deleted ? backing.slice(0, -' (deleted)'.length) : backing,
      deleted,
      offset: Number(readTrim(path.join(SYS_BLOCK, n, 'loop', 'offset')) ?? 0),
      backDev: '',
      backIno: 0,
    });
  }
  return out;
}

/**
 * `loops` with the device and inode of each backing file, as losetup reads them from the loop
 * device (root): files attached in another mount namespace are found by them.
 */
export function withBackingInodes(loops: LoopDevice[]): LoopDevice[] {
  if (!loops.length) return loops;
  const r = runSync(['losetup', '--list', '--json', '--output', 'NAME,BACK-MAJ:MIN,BACK-INO'], { env: TOOL_ENV });
  if (r.status !== 0 || !r.stdout.trim()) return loops;
  const rows = (JSON.parse(r.stdout) as { loopdevices?: Record<string, string | number | null>[] }).loopdevices ?? [];
  const by = new Map(rows.map((row) => [String(row.name), row]));
  return loops.map((l) => {
    const row = by.get(l.name);
    return row ? { ...l, backDev: String(row['back-maj:min'] ?? '').trim(), backIno: Number(row['back-ino'] ?? 0) } : l;
  });
}

/**
 * Loop devices whose backing file lies inside `dir` (matched by device and inode, so files
 * seen through the box's bind mounts and overlays count too; `skip` names subtrees not walked).
 */
export function loopsBackedUnder(dir: string, skip: (p: string) => boolean = () => false): LoopDevice[] {
  const all = loopDevices();
  if (!all.length) return [];
  const loops = withBackingInodes(all);
  const inodes = new Set<string>();
  const walk = (p: string): void => {
    let st: fs.BigIntStats;
    try {
      st = fs.lstatSync(p, { bigint: true });
    } catch {
      return;
    }
    if (st.isFile()) inodes.add(`${devString(st.dev)}/${st.ino}`).add(`ino/${st.ino}`);
    if (!st.isDirectory() || skip(p)) return;
    let entries: string[] = [];
    try {
      entries = fs.readdirSync(p);
    } catch {
      return;
    }
    for (const e of entries) walk(path.join(p, e));
  };
  walk(dir);
  return loops.filter(
    (l) => inodes.has(`${l.backDev}/${l.backIno}`) || (l.backDev.startsWith('0:') && /^\/(etc|usr|var)\//.test(l.backFile) && inodes.has(`ino/${l.backIno}`)) || l.backFile.startsWith(dir + '/'),
  );
}

/** Loop devices whose backing file is `file` itself (the same device and inode, whatever its path); [] when `file` is gone. */
export function loopsBackedBy(file: string): LoopDevice[] {
  let want: fs.Stats;
  try {
    want = fs.statSync(file);
  } catch {
    return [];
  }
  return loopDevices().filter((l) => {
    try {
      const st = fs.statSync(l.backFile);
      return st.dev === want.dev && st.ino === want.ino;
    } catch {
      return false;
    }
  });
}

/**
 * Attach `file` to a free loop device (losetup --find --show); its name. Throws an Error worded
 * by failureMessage when losetup fails.
 */
export function attachLoop(file: string, opts: { partscan?: boolean; readOnly?: boolean; offset?: number; sizelimit?: number } = {}): string {
  const argv = ['losetup', '--find', '--show', ...(opts.partscan ? ['--partscan'] : []), ...(opts.readOnly ? ['--read-only'] : [])];
  if (opts.offset !== undefined) argv.push('--offset', String(opts.offset));
  if (opts.sizelimit !== undefined) argv.push('--sizelimit', String(opts.sizelimit));
  argv.push(file);
  const r = runSync(argv, { env: TOOL_ENV });
  const fail = failureMessage(argv, r);
  if (fail) throw new Error(fail);
  return r.stdout.trim();
}

/** Detach loop device `dev` (its partition mappings first, partx -d); whether losetup --detach succeeded. */
export function detachLoop(dev: string, opts: { partitions?: boolean } = {}): boolean {
  if (opts.partitions ?? true) runSync(['partx', '-d', dev], { env: TOOL_ENV });
  return runSync(['losetup', '--detach', dev], { env: TOOL_ENV }).status === 0;
}

/** The mounts of loop device `dev` or of its partitions (/dev/loop5, /dev/loop5p1). */
export const onLoop = (m: Mount, dev: string): boolean => m.source === dev || m.source.startsWith(`${dev}p`);

/**
 * What is held under `dir`: the loop devices on files below it and the mount points below it or
 * from those loop devices (innermost last).
 */
export function heldUnder(dir: string): { loops: string[]; mounts: string[] } {
  const loops = loopDevices()
    .filter((l) => atOrUnder(l.backFile, dir) && l.backFile !== dir)
    .map((l) => l.name);
  const mounts = mountTable()
    .filter((m) => (atOrUnder(m.target, dir) && m.target !== dir) || loops.some((l) => onLoop(m, l)))
    .map((m) => m.target);
  return { loops, mounts };
}

/**
 * The safety net after the scripts' own cleanup: unmount (lazily, innermost first) whatever is
 * mounted under `dir` or from a loop device on a file under it, and detach those loop devices.
 * Scoped to `dir` only. Returns what it released.
 */
export function releaseUnder(dir: string): { loops: string[]; mounts: string[] } {
  const held = heldUnder(dir);
  for (const m of [...held.mounts].reverse()) unmount(m, { lazy: true });
  for (const l of held.loops) detachLoop(l);
  return held;
}
