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

/**
 * The kernel's own words on the console that it was started by UEFI firmware (Linux's
 * efi_systab_report_header: `efi: EFI v2.7 by EDK II`) and, for Secure Boot, that it was
 * enforced (`secureboot: Secure boot enabled`): a login prompt alone does not say which firmware
 * booted the disk (a disk made for both boots under BIOS as well).
 */
export const KERNEL_SAYS: Record<Exclude<Firmware, 'bios'>, RegExp> = {
  uefi: /efi: EFI v\d[^\n]*/,
  secureboot: /secureboot: Secure boot enabled/,
};

/** Where the box's cluster backend keeps each instance's copy of the variable store on its node (as DEBIAN.md tells admins). */
export const GANETI_VARS_DIR = '/var/lib/ganeti/uefi';

/**
 * What Ganeti 3.0 and 3.1's kvm hypervisor needs to start an instance under `fw` (neither has a
 * UEFI parameter): the words to append to kvm_extra (3.0 splits it on single spaces, 3.1 with
 * shlex: no spaces in paths) and other hypervisor parameters. UEFI: OVMF's code and the
 * instance's copy of the variable store as flash. Secure Boot: OVMF's SMM build needs the q35
 * machine (machine_version) with SMM and flash only SMM may write; Ganeti puts every disk and NIC
 * on the PCI bus `pci.0` (hv_kvm _PCI_BUS), which q35 lacks (its root bus is pcie.0), so a
 * PCIe-to-PCI bridge named pci.0 comes first in kvm_extra (Ganeti adds its devices after it).
 */
export function ganetiKvmFirmware(fw: Exclude<Firmware, 'bios'>, vars: string): { kvmExtra: string[]; hvparams: string[] } {
  const drives = ['-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF[fw].code}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`];
  if (fw === 'uefi') return { kvmExtra: drives, hvparams: [] };
  return {
    kvmExtra: ['-machine', 'smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on', '-device', 'pcie-pci-bridge,id=pci.0,bus=pcie.0', ...drives],
    hvparams: ['machine_version=q35'],
  };
}
