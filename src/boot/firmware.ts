/**
 * The firmware a boot check starts an instance under: BIOS (QEMU's SeaBIOS, Ganeti's default),
 * UEFI (OVMF with an empty variable store) or UEFI with Secure Boot enforced (OVMF's build with
 * Secure Boot and SMM, and its variable store with Microsoft's keys enrolled: what a signed shim
 * needs). OVMF is flash: the code read-only, and a copy of the variable store per instance, as an
 * admin gives Ganeti's kvm hypervisor through kvm_extra (Ganeti 3.0 and 3.1 have no UEFI
 * parameter of their own). What a disk is made to boot under is read in ./inspect.ts.
 */
import * as fs from 'node:fs';

export type Firmware = 'bios' | 'uefi' | 'secureboot';
/** In the order the boot check runs them (the last is the most demanding). */
export const FIRMWARES: readonly Firmware[] = ['bios', 'uefi', 'secureboot'];

/** GPT type of an EFI system partition. */
export const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
/** The removable-media path UEFI boots without an NVRAM entry (x86_64). */
export const REMOVABLE_PATH = '/EFI/BOOT/BOOTX64.EFI';

/** Debian's ovmf package (bookworm and trixie): the 4 MiB builds. */
export const OVMF = {
  uefi: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  secureboot: { code: '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
} as const;

export const FIRMWARE_TEXT: Record<Firmware, string> = { bios: 'BIOS', uefi: 'UEFI', secureboot: 'UEFI with Secure Boot' };

/** The --firmware values in run order, without repeats; undefined for none given. Throws Error naming a bad value. */
export function parseFirmwares(values: string[] | undefined): Firmware[] | undefined {
  if (!values?.length) return undefined;
  const bad = values.filter((v) => !(FIRMWARES as readonly string[]).includes(v));
  if (bad.length) throw new Error(`--firmware '${bad[0]}': use ${FIRMWARES.join(', ')} (repeatable)`);
  return FIRMWARES.filter((f) => values.includes(f));
}

/** What the firmware needs on this node and is missing, or undefined. */
export function missingFirmware(fw: Firmware, exists: (p: string) => boolean = fs.existsSync): string | undefined {
  if (fw === 'bios') return undefined;
  const files = OVMF[fw];
  const gone = [files.code, files.vars].filter((f) => !exists(f));
  if (!gone.length) return undefined;
  return `${FIRMWARE_TEXT[fw]} needs OVMF, QEMU's UEFI firmware, and ${gone.join(' and ')} ${gone.length > 1 ? 'are' : 'is'} not on this node (apt-get install ovmf)`;
}

/** The flash drives QEMU gets for `fw`, with `vars` the instance's own copy of the variable store. */
export function firmwareArgs(fw: Firmware, vars: string): string[] {
  if (fw === 'bios') return [];
  const args: string[] = [];
  // OVMF's Secure Boot build keeps its variables in SMM: the q35 machine, with SMM, and flash
  // that only SMM may write.
  if (fw === 'secureboot') args.push('-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on');
  args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF[fw].code}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
  return args;
}
