/**
 * Whether a disk (a regular file or a block device) is in use on this node, read from the
 * kernel's own tables through src/system/kernel.ts (the mount table, the loop devices, the
 * active swaps, block devices' holders and partitions), and an O_EXCL open for block devices
 * (the kernel refuses it while anything holds the device). A disk's data can be reached through
 * the device itself, its partitions, any loop device on it (with an offset too) and their
 * partitions: all of them are looked at.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, UserError } from '../errors';
import { blockName, devNoOf, holdersOf, isPartition, loopDevices, mountTable, partitionParent, partitionsOf, swaps } from '../system/kernel';

/** A disk as the kernel knows it: a file (device and inode) or a block device (its sysfs name). */
export interface DiskId {
  path: string;
  kind: 'file' | 'block';
  /** file: "dev:ino"; block: the sysfs name (loop5, sda1). */
  key: string;
}

/** What `p` is, or undefined when it does not exist. Throws for other stat errors. */
export function diskId(p: string): DiskId | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (st.isBlockDevice()) return { path: p, kind: 'block', key: blockName(st.rdev) ?? `rdev:${st.rdev}` };
  return { path: p, kind: 'file', key: `${st.dev}:${st.ino}` };
}

/**
 * diskId of a file the node names (a loop device's backing file, a swap file), or undefined when
 * it is gone or this user cannot see it (another user's file under a directory closed to us):
 * not a reason to fail, since the disk we were given is one we can see.
 */
function seenDiskId(p: string): DiskId | undefined {
  try {
    return diskId(p);
  } catch {
    return undefined;
  }
}

/** Loop devices (sysfs names) whose backing file or device is `id`. */
function loopsOn(id: DiskId): string[] {
  return loopDevices()
    .filter((l) => seenDiskId(l.backFile)?.key === id.key)
    .map((l) => path.basename(l.name));
}

/** Loop devices (/dev paths) attached to the file or block device `p` (any offset); empty when `p` does not exist. */
export function loopDevicesOn(p: string): string[] {
  const id = diskId(p);
  return id ? loopsOn(id).map((n) => `/dev/${n}`) : [];
}

/**
 * What a script left holding disk `p` that was not there before it ran (`before`: loopDevicesOn(p)
 * then): loop devices still attached to it, and every finding of diskInUse (mounted, swap, held).
 * One sentence per finding; empty when the disk was released.
 */
export function leftOn(p: string, before: string[]): string[] {
  const loops = loopDevicesOn(p).filter((l) => !before.includes(l));
  return [...diskInUse(p), ...(loops.length ? [`${loops.join(', ')} still attached to it`] : [])];
}

/** Every block device through which `id`'s data is reachable: itself, loop devices on it, their partitions (and loops on those). */
export function devicesOf(id: DiskId): string[] {
  const seen = new Set<string>();
  const visit = (d: DiskId) => {
    if (d.kind === 'block') {
      if (seen.has(d.key)) return;
      seen.add(d.key);
      for (const p of partitionsOf(d.key)) visit({ path: `/dev/${p}`, kind: 'block', key: p });
    }
    for (const l of loopsOn(d)) visit({ path: `/dev/${l}`, kind: 'block', key: l });
  };
  visit(id);
  return [...seen];
}

/** The identities of the data behind `id`: itself, every device presenting it, and a loop device's backing file. */
export function dataKeys(id: DiskId): Set<string> {
  const keys = new Set<string>([id.key, ...devicesOf(id)]);
  if (id.kind === 'block') {
    // A loop device (or its partition) presents its backing file's data.
    const base = isPartition(id.key) ? partitionParent(id.key) : id.key;
    const backing = loopDevices().find((l) => l.name === `/dev/${base}`)?.backFile;
    const b = backing ? seenDiskId(backing) : undefined;
    if (b) for (const k of dataKeys(b)) keys.add(k);
  }
  return keys;
}

/**
 * Why `p` must not be written to now, one sentence per finding (empty when it is free):
 * mounted (itself, a partition, a loop device on it or a partition of one), active swap
 * (a swap device or a swap file), held by another device (/sys/class/block/X/holders: device
 * mapper, md, bcache), or busy (an exclusive open fails with EBUSY). A loop device merely
 * attached to it is no finding (Ganeti's own file disks are attached while the instance runs).
 */
export function diskInUse(p: string): string[] {
  const id = diskId(p);
  if (!id) return [];
  const out: string[] = [];
  const devices = devicesOf(id);
  const devNos = new Map<string, string>();
  for (const d of devices) {
    const n = devNoOf(d);
    if (n) devNos.set(n, d);
  }
  const via = (d: string) => (d === id.key && id.kind === 'block' ? '' : ` through /dev/${d}`);
  for (const m of mountTable()) {
    const byNo = devNos.get(m.devNo);
    const bySource = m.source.startsWith('/dev/') && devices.includes(path.basename(m.source)) ? path.basename(m.source) : undefined;
    const d = byNo ?? bySource;
    if (d) out.push(`it is mounted on ${m.target}${via(d)}`);
  }
  for (const file of swaps()) {
    const s = seenDiskId(file);
    if (!s) continue;
    if (s.key === id.key || devices.includes(s.key)) out.push(`it is active swap${s.key === id.key ? '' : ` (${file})`}`);
  }
  for (const d of devices) {
    const holders = holdersOf(d);
    if (holders.length) out.push(`it is held by ${holders.map((h) => `/dev/${h}`).join(', ')}${via(d)}`);
  }
  if (id.kind === 'block' && !out.length) {
    try {
      fs.closeSync(fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_EXCL));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EBUSY') out.push('it is busy (another program holds it open exclusively)');
    }
  }
  return [...new Set(out)];
}

/**
 * Refuse (throw) disks whose data is in use on this node (UserError: mounted, swap, held, busy),
 * a disk given twice, also as a loop device on the same file (UsageError), and a stream that is
 * one of the disks (UsageError) or, when the script writes it, in use (UserError). `disks` are
 * the existing ones with their instance index. No override: writing over a mounted filesystem
 * destroys it.
 */
export function refuseDisksInUse(disks: { index: number; path: string }[], stream: { flag: string; path: string; written: boolean } | undefined, script: string): void {
  const ids: { index: number; id: DiskId; keys: Set<string> }[] = [];
  for (const { index, path: p } of disks) {
    const id = diskId(p);
    if (!id) continue;
    const why = diskInUse(p);
    if (why.length) {
      throw new UserError(`disk ${index} (${p}) is in use: ${why.join('; ')}`, [
        `${script} could overwrite or read half-written data that is in use; nothing was changed. Unmount it, swapoff it or stop what holds it first.`,
      ]);
    }
    const keys = dataKeys(id);
    const same = ids.find((other) => [...keys].some((k) => other.keys.has(k)));
    if (same) throw new UsageError(`disk ${index} (${p}) is the same data as disk ${same.index} (${same.id.path}): every disk of an instance must be its own`);
    ids.push({ index, id, keys });
  }
  if (!stream) return;
  const sid = diskId(stream.path);
  if (!sid) return;
  const keys = dataKeys(sid);
  const hit = ids.find((d) => [...keys].some((k) => d.keys.has(k)));
  if (hit) throw new UsageError(`${stream.flag} ${stream.path} is disk ${hit.index} itself: the stream must be another file`);
  if (stream.written) {
    const why = diskInUse(stream.path);
    if (why.length) throw new UserError(`${stream.flag} ${stream.path} is in use: ${why.join('; ')}`);
  }
}
