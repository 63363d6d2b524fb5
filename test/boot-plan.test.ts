/**
 * How the boot check starts an instance: as Ganeti's kvm hypervisor would (hv_kvm: -kernel,
 * -initrd, -append "root=<root_path> <kernel_args> console=ttyS0,<speed>" when kernel_path is
 * set; from the disk otherwise), never for container hypervisors, and never with a kernel the
 * node does not have.
 */
import { InstanceShape } from '../src/ganeti/environment';
import { buildInstance } from '../src/ganeti/instance';
import { bootPlan, qemuArgs } from '../src/boot/qemu';
import { badValue, chooseFirmwares } from '../src/lifecycle/local';
import type { DiskFirmware } from '../src/boot/inspect';
import { OVMF, missingFirmware, parseFirmwares } from '../src/boot/firmware';

const log = { info: () => undefined, warn: () => undefined };
const os = { name: 'x', maxApiVersion: 20, variants: [], parameters: [] };
const inst = (hv: string[], hypervisor?: string): InstanceShape =>
  buildInstance(log, os, { hvparam: hv, hypervisor, release: '3.0' }, [{ path: '/d/disk0.img', size: 2048, template: 'file', fileDriver: 'loop', mode: 'rw', uuid: 'u' }]);

describe('boot plan', () => {
  it("Ganeti's default kernel_path: the node's kernel, refused when the node lacks it", () => {
    const p = bootPlan(inst([]), () => false);
    expect(p.mode).toBeUndefined();
    expect(p.reason).toBe("the kvm hypervisor boots the node's kernel (kernel_path=/boot/vmlinuz-3-kvmU), and /boot/vmlinuz-3-kvmU is not on this node (Ganeti would refuse to start the instance): the disk is not meant to boot by itself");
  });

  it('kernel_path set and present: -kernel, -initrd, -append as hv_kvm builds them', () => {
    const i = inst(['kernel_path=/k', 'initrd_path=/i', 'root_path=/dev/vda', 'kernel_args=ro quiet', 'serial_speed=9600']);
    const p = bootPlan(i, () => true);
    expect(p).toMatchObject({ mode: 'node-kernel', kernel: '/k', initrd: '/i', append: 'root=/dev/vda ro quiet console=ttyS0,9600' });
    const args = qemuArgs({ disks: ['/d/disk0.img'], macs: ['aa:00:00:00:00:01'], plan: p, consoleLog: '/c.log', timeoutSeconds: 1 });
    expect(args.join(' ')).toContain('-kernel /k -initrd /i -append root=/dev/vda ro quiet console=ttyS0,9600');
    expect(args.join(' ')).toContain('-accel tcg');
    expect(args.join(' ')).toContain('-drive file=/d/disk0.img,format=raw,if=virtio');
    expect(args.join(' ')).toContain('-nic user,model=virtio-net-pci,mac=aa:00:00:00:00:01');
    expect(args).toContain('-snapshot');
    const noSerial = bootPlan(inst(['kernel_path=/k', 'serial_console=false']), () => true);
    expect(noSerial.append).toBe('root=/dev/vda1 ro');
    expect(noSerial.initrd).toBeUndefined();
  });

  it('an empty kernel_path boots from the disk; containers are not booted', () => {
    expect(bootPlan(inst(['kernel_path=']), () => false).mode).toBe('disk');
    expect(bootPlan(inst([], 'lxc')).reason).toMatch(/lxc hypervisor runs no virtual machine/);
    expect(bootPlan(inst(['initrd_path=/nope', 'kernel_path=/k']), (p) => p === '/k').reason).toMatch(/initrd_path \/nope is not on this node/);
  });
});

describe('bad values for verify', () => {
  it.each([
    [['a', 'b'], undefined, 'not-a-choice'],
    [['not-a-choice'], undefined, 'not a choice'],
    [undefined, '[a-z]+', '!bad value!'],
    [undefined, '.*', undefined],
    [undefined, undefined, undefined],
  ])('choices %j pattern %j: %j', (choices, pattern, want) => {
    expect(badValue(choices as string[] | undefined, pattern as string | undefined)).toBe(want);
  });
});

describe('firmware', () => {
  it('UEFI: OVMF as flash, the code read-only and the instance its own variable store; Secure Boot: q35 with SMM and secure flash', () => {
    const plan = { mode: 'disk' as const, reason: 'r' };
    const base = { disks: ['/d/disk0.img'], plan, consoleLog: '/c.log', timeoutSeconds: 1 };
    expect(qemuArgs(base).join(' ')).not.toMatch(/pflash|q35/);
    const uefi = qemuArgs({ ...base, firmware: { kind: 'uefi', vars: '/w/vars.fd' } }).join(' ');
    expect(uefi).toContain(`-drive if=pflash,format=raw,unit=0,readonly=on,file=${OVMF.uefi.code} -drive if=pflash,format=raw,unit=1,file=/w/vars.fd`);
    expect(uefi).not.toMatch(/q35|smm/);
    const sb = qemuArgs({ ...base, firmware: { kind: 'secureboot', vars: '/w/sb.fd' } }).join(' ');
    expect(sb).toContain('-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on');
    expect(sb).toContain(`file=${OVMF.secureboot.code}`);
    expect(OVMF.secureboot.vars).toBe('/usr/share/OVMF/OVMF_VARS_4M.ms.fd');
  });

  it('--firmware values: run order, no repeats, a bad value named; a missing OVMF named with its package', () => {
    expect(parseFirmwares(undefined)).toBeUndefined();
    expect(parseFirmwares(['secureboot', 'bios', 'secureboot'])).toEqual(['bios', 'secureboot']);
    expect(() => parseFirmwares(['uefi', 'efi'])).toThrow("--firmware 'efi': use bios, uefi, secureboot (repeatable)");
    expect(missingFirmware('bios', () => false)).toBeUndefined();
    expect(missingFirmware('uefi', () => true)).toBeUndefined();
    expect(missingFirmware('uefi', () => false)).toBe(`UEFI needs OVMF, QEMU's UEFI firmware, and ${OVMF.uefi.code} and ${OVMF.uefi.vars} are not on this node (apt-get install ovmf)`);
    expect(missingFirmware('secureboot', (p) => p !== OVMF.secureboot.vars)).toMatch(/^UEFI with Secure Boot needs OVMF.*\/OVMF_VARS_4M\.ms\.fd is not on this node \(apt-get install ovmf\)$/);
  });
});

describe('which firmware a boot step boots under (chooseFirmwares)', () => {
  const both: DiskFirmware = { firmwares: ['bios', 'uefi', 'secureboot'], why: {}, text: 'BIOS and UEFI (Secure Boot: signed shim)' };
  const biosOnly: DiskFirmware = { firmwares: ['bios'], why: { uefi: 'its gpt table has no EFI system partition', secureboot: 'its gpt table has no EFI system partition' }, text: 'BIOS only' };
  const uefiOnly: DiskFirmware = { firmwares: ['uefi'], why: { bios: 'there is no boot code in its MBR', secureboot: 'no signed shim' }, text: 'UEFI only' };
  const nothing: DiskFirmware = { firmwares: [], why: { bios: 'there is no boot code in its MBR', uefi: 'no ESP', secureboot: 'no ESP' }, text: 'no firmware' };

  it('by default: what disk 0 carries, without Secure Boot; the import boots under the last of them', () => {
    expect(chooseFirmwares(both, undefined, 'all')).toEqual({ boot: ['bios', 'uefi'], notMade: [] });
    expect(chooseFirmwares(both, undefined, 'last')).toEqual({ boot: ['uefi'], notMade: [] });
    expect(chooseFirmwares(biosOnly, undefined, 'all')).toEqual({ boot: ['bios'], notMade: [] });
    expect(chooseFirmwares(uefiOnly, undefined, 'last')).toEqual({ boot: ['uefi'], notMade: [] });
    // Nothing found: BIOS is tried (the boot then says nothing boots); the node's kernel: BIOS.
    expect(chooseFirmwares(nothing, undefined, 'all')).toEqual({ boot: ['bios'], notMade: [] });
    expect(chooseFirmwares(undefined, undefined, 'last')).toEqual({ boot: ['bios'], notMade: [] });
  });

  it('--firmware: each one asked for the disk is made for boots; the others are named with why, and the import boots under the last that can', () => {
    expect(chooseFirmwares(both, ['uefi', 'secureboot'], 'all')).toEqual({ boot: ['uefi', 'secureboot'], notMade: [] });
    expect(chooseFirmwares(biosOnly, ['uefi'], 'all')).toEqual({ boot: [], notMade: [{ firmware: 'uefi', why: 'its gpt table has no EFI system partition' }] });
    expect(chooseFirmwares(biosOnly, ['bios', 'uefi'], 'last')).toEqual({ boot: ['bios'], notMade: [{ firmware: 'uefi', why: 'its gpt table has no EFI system partition' }] });
    expect(chooseFirmwares(uefiOnly, ['bios', 'uefi'], 'all')).toEqual({ boot: ['uefi'], notMade: [{ firmware: 'bios', why: 'there is no boot code in its MBR' }] });
    expect(chooseFirmwares(nothing, ['bios', 'uefi'], 'all')).toEqual({ boot: ['bios'], notMade: [{ firmware: 'uefi', why: 'no ESP' }] });
    // The node's kernel boots it: every firmware asked for applies.
    expect(chooseFirmwares(undefined, ['bios', 'uefi'], 'all')).toEqual({ boot: ['bios', 'uefi'], notMade: [] });
  });
});
