/**
 * Read-only looks at an instance disk, without mounting it and without loop devices: the
 * partition table from `sfdisk --json`, filesystem types from `blkid -p`, files from ext2/3/4
 * filesystems through `debugfs -c` (catastrophic mode: opens read-only, no journal replay),
 * the MBR's boot code from the first sector. Used to say what a create installed and to check a
 * booted disk afterwards.
 */
import * as fs from 'node:fs';
import type { InstanceShape } from '../ganeti/environment';
import { runSync } from '../system/process';
import { ESP_TYPE, Firmware, REMOVABLE_PATH } from './firmware';

const SECTOR = 512;

export interface Partition {
  /** 1-based partition number. */
  number: number;
  /** Bytes. */
  offset: number;
  size: number;
  /** GPT type GUID or msdos type (hex), as sfdisk prints it. */
  type?: string;
}

export interface DiskLayout {
  /** msdos, gpt or none (no partition table: a filesystem, or nothing, on the whole disk). */
  style: 'msdos' | 'gpt' | 'none';
  partitions: Partition[];
}

const run = (cmd: string, args: string[]) => runSync([cmd, ...args], { stdin: 'pipe', maxBuffer: 4 * 1024 * 1024, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });

/** The partition table of `disk` (a file or block device), read with sfdisk --json. */
export function diskLayout(disk: string): DiskLayout {
  const r = run('sfdisk', ['--json', disk]);
  if (r.status !== 0 || !r.stdout.trim()) return { style: 'none', partitions: [] };
  const table = JSON.parse(r.stdout).partitiontable as { label: string; sectorsize?: number; partitions?: { node: string; start: number; size: number; type?: string }[] };
  const sector = table.sectorsize ?? SECTOR;
  const partitions = (table.partitions ?? []).map((p) => ({ number: Number(/(\d+)$/.exec(p.node)?.[1] ?? 0), offset: p.start * sector, size: p.size * sector, ...(p.type ? { type: p.type } : {}) }));
  return { style: table.label === 'dos' ? 'msdos' : 'gpt', partitions };
}

/** The filesystem type at `offset` bytes into `disk` (blkid -p), or undefined. */
export function fsTypeAt(disk: string, offset: number): string | undefined {
  const r = run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', '-O', String(offset), disk]);
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** Files of an ext2/3/4 filesystem inside a disk image or device, read through debugfs. */
export class ExtReader {
  constructor(
    readonly disk: string,
    readonly offset: number,
    readonly fsType: string,
  ) {}

  private debugfs(request: string) {
    return run('debugfs', ['-c', '-R', request, `${this.disk}?offset=${this.offset}`]);
  }

  /** The content of a regular file, or undefined when it is absent. */
  read(file: string): string | undefined {
    const r = this.debugfs(`cat "${file}"`);
    if (r.status !== 0 || /File not found|not found by ext2_lookup|Attempt to read block from filesystem resulted/.test(r.stderr)) return undefined;
    return r.stdout;
  }

  /** The filesystem's size in bytes (its superblock's block count × block size), or undefined. */
  bytes(): number | undefined {
    const r = this.debugfs('show_super_stats -h');
    const count = /^Block count:\s+(\d+)/m.exec(r.stdout);
    const size = /^Block size:\s+(\d+)/m.exec(r.stdout);
    return r.status === 0 && count && size ? Number(count[1]) * Number(size[1]) : undefined;
  }

  /** The names in a directory (without . and ..), or undefined when it is absent. */
  list(dir: string): string[] | undefined {
    const r = this.debugfs(`ls -p "${dir}"`);
    if (r.status !== 0 || /File not found|not found by ext2_lookup/.test(r.stderr)) return undefined;
    // ls -p: /inode/mode/uid/gid/name/size/
    const names = r.stdout
      .split('\n')
      .map((l) => l.split('/'))
      .filter((f) => f.length >= 7)
      .map((f) => f[5])
      .filter((n) => n && n !== '.' && n !== '..');
    return names;
  }
}

/** The root filesystem of an instance disk: the first partition (or the whole disk) whose ext filesystem holds /etc. */
export function rootFilesystem(disk: string): { reader?: ExtReader; layout: DiskLayout; problem?: string } {
  const layout = diskLayout(disk);
  const places = layout.style === 'none' ? [{ number: 0, offset: 0, size: 0 }] : layout.partitions;
  const seen: string[] = [];
  for (const p of places) {
    const type = fsTypeAt(disk, p.offset);
    if (!type) continue;
    seen.push(`${type}${p.number ? ` on partition ${p.number}` : ''}`);
    if (!/^ext[234]$/.test(type)) continue;
    const reader = new ExtReader(disk, p.offset, type);
    if (reader.list('/etc')) return { reader, layout };
  }
  return {
    layout,
    problem: seen.length ? `no ext2/3/4 root filesystem with /etc (found ${seen.join(', ')})` : `no filesystem found (${layout.style === 'none' ? 'no partition table' : `${layout.style} table with ${layout.partitions.length} partition(s)`})`,
  };
}

/** Which boot loader the MBR's boot code belongs to: GRUB, another, or none (all zero). */
export function mbrBootCode(disk: string): 'GRUB' | 'other' | undefined {
  const buf = Buffer.alloc(SECTOR);
  const fd = fs.openSync(disk, 'r');
  try {
    fs.readSync(fd, buf, 0, SECTOR, 0);
  } finally {
    fs.closeSync(fd);
  }
  const code = buf.subarray(0, 440);
  if (code.every((b) => b === 0)) return undefined;
  return code.includes(Buffer.from('GRUB')) ? 'GRUB' : 'other';
}

/** What a disk is made to boot under, and for each firmware it is not, why. */
export interface DiskFirmware {
  firmwares: Firmware[];
  why: Partial<Record<Firmware, string>>;
  /** One phrase for people: "BIOS only", "BIOS and UEFI (Secure Boot: signed shim)". */
  text: string;
}

/**
 * Which firmware `disk` boots under, read-only, from what it carries (any definition's disk,
 * an image written whole as much as a layout of ours): BIOS when the MBR holds boot code; UEFI
 * when a GPT partition of the EFI system partition type (its type GUID) holds the
 * removable-media path in its FAT; Secure Boot when that file is signed for Microsoft's UEFI CA
 * (a shim), as OVMF's enrolled keys require. msdosHint: what an msdos disk's reason ends with
 * (default "BIOS only"; the debian template names its partition-style parameter).
 */
export function diskFirmware(disk: string, msdosHint = 'BIOS only'): DiskFirmware {
  const why: DiskFirmware['why'] = {};
  const firmwares: Firmware[] = [];
  let mbr: ReturnType<typeof mbrBootCode>;
  try {
    mbr = mbrBootCode(disk);
  } catch {
    mbr = undefined;
  }
  if (mbr) firmwares.push('bios');
  else why.bios = 'there is no boot code in its MBR';
  const layout = diskLayout(disk);
  const esp = layout.partitions.find((p) => p.type?.toUpperCase() === ESP_TYPE);
  if (!esp) {
    why.uefi = why.secureboot = layout.style === 'gpt' ? 'its gpt table has no EFI system partition' : layout.style === 'msdos' ? `it has an msdos partition table and no EFI system partition (${msdosHint})` : 'it has no partition table, so no EFI system partition';
  } else {
    const r = runSync(['mtype', '-i', `${disk}@@${esp.offset}`, `::${REMOVABLE_PATH}`], { stdin: 'pipe', maxBuffer: 16 * 1024 * 1024, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1' } });
    if (r.error) {
      why.uefi = why.secureboot = `mtools is not installed, so its EFI system partition cannot be read (apt-get install mtools)`;
    } else if (r.status !== 0) {
      why.uefi = why.secureboot = `its EFI system partition (partition ${esp.number}) has no ${REMOVABLE_PATH}`;
    } else {
      firmwares.push('uefi');
      if (r.stdout.includes('Microsoft Corporation UEFI CA')) firmwares.push('secureboot');
      else why.secureboot = `${REMOVABLE_PATH} on its EFI system partition is not signed for Microsoft's UEFI CA (no signed shim)`;
    }
  }
  const uefi = firmwares.includes('uefi') ? `UEFI${firmwares.includes('secureboot') ? ' (Secure Boot: signed shim)' : ''}` : '';
  const text = firmwares.includes('bios') ? (uefi ? `BIOS and ${uefi}` : 'BIOS only') : uefi ? `${uefi} only` : 'no firmware';
  return { firmwares, why, text };
}

/** What a create (or import) left on disk 0, and whether it boots by itself. */
export interface Installed {
  partitionStyle: DiskLayout['style'];
  filesystem: string | null;
  /** Kernel images in /boot (vmlinuz-*). */
  kernels: string[];
  initrds: string[];
  bootLoader: 'GRUB' | 'other' | null;
  /** The firmware it boots under (empty when it does not boot by itself). */
  firmwares: Firmware[];
  /** True when the disk has a kernel and a boot loader: a BIOS or UEFI can boot it. */
  bootsByItself: boolean;
  /** Why it does not boot by itself (the hypervisor's kernel, a container, nothing installed). */
  reason?: string;
  /** One line for people. */
  summary: string;
}

/** A hypervisor parameter's value of the instance ('' when unset). */
export const hvParam = (inst: InstanceShape, key: string): string => new Map(inst.hvparams).get(key) ?? '';

const CONTAINERS = new Set(['lxc', 'chroot', 'fake']);

/** Why an instance needs no kernel of its own under its hypervisor settings, or undefined when it does. */
export function hostBoots(inst: InstanceShape): string | undefined {
  if (CONTAINERS.has(inst.hypervisor)) return `the ${inst.hypervisor} hypervisor runs no kernel of the instance's`;
  const kernel = hvParam(inst, 'kernel_path');
  if (kernel && inst.hypervisor !== 'xen-hvm') return `the ${inst.hypervisor} hypervisor boots the node's kernel (kernel_path=${kernel})`;
  return undefined;
}

/** Look at disk 0 of `inst` read-only and say what is installed: kernel and boot loader, yes or no, and why. */
export function describeInstalled(inst: InstanceShape): Installed {
  const disk = inst.disks[0].path;
  const { reader, layout, problem } = rootFilesystem(disk);
  const boot = reader?.list('/boot') ?? [];
  const kernels = boot.filter((n) => n.startsWith('vmlinuz-')).sort();
  const initrds = boot.filter((n) => n.startsWith('initrd.img-')).sort();
  let bootLoader: Installed['bootLoader'] = null;
  try {
    bootLoader = mbrBootCode(disk) ?? null;
  } catch {
    bootLoader = null;
  }
  const fw = diskFirmware(disk);
  const efi = fw.firmwares.includes('uefi');
  const bootsByItself = kernels.length > 0 && (bootLoader !== null || efi);
  const host = hostBoots(inst);
  let reason: string | undefined;
  if (!bootsByItself) {
    if (!reader) reason = problem;
    else if (host) reason = host;
    else if (!kernels.length) reason = 'the definition installed no kernel, and the hypervisor settings boot from the disk: it will not boot';
    else reason = 'there is no boot code in the MBR and no EFI system partition with a boot loader: no firmware can boot it';
  }
  const k = kernels.length ? `kernel ${kernels[kernels.length - 1].replace(/^vmlinuz-/, '')}` : 'no kernel';
  const esp = efi ? `${fw.firmwares.includes('secureboot') ? 'signed shim and GRUB' : 'a boot loader'} on the EFI system partition` : '';
  const b = bootLoader === 'GRUB' ? `GRUB in the MBR${esp ? `, ${esp}` : ''}` : bootLoader ? `boot code in the MBR${esp ? `, ${esp}` : ''}` : esp || 'no boot loader';
  const summary = `${reader ? `${reader.fsType} root${layout.style === 'none' ? ' on the whole disk' : ` (${layout.style})`}` : 'no root filesystem'}, ${k}, ${b}${bootsByItself ? `: boots by itself under ${fw.text}` : reader && host ? `: does not boot by itself, nor does it need to: ${reason}` : `: does not boot by itself, because ${reason}`}`;
  return { partitionStyle: layout.style, filesystem: reader?.fsType ?? null, kernels, initrds, bootLoader, firmwares: bootsByItself ? fw.firmwares : [], bootsByItself, ...(reason ? { reason } : {}), summary };
}
