/**
 * The boot check: start an instance's disks under QEMU the way Ganeti's kvm hypervisor would
 * (hv_kvm._GenerateKVMRuntime: virtio disks and NICs for the paravirtual types; with
 * kernel_path, the node's kernel by -kernel/-initrd/-append "root=... kernel_args
 * console=ttyS0,speed"), the serial console to a file, and wait for a login prompt or a declared
 * readiness line. Software emulation (-accel tcg) by default: /dev/kvm guests hang on the build
 * machines. QEMU is stopped on every path (timeout, error, abort).
 */
import * as fs from 'node:fs';
import type { InstanceShape } from '../ganeti/environment';
import { hostBoots, hvParam } from './inspect';
import { consoleReady, consoleText } from './console';
import { startProcess } from '../system/process';
import { Firmware, firmwareArgs } from './firmware';

/** How QEMU boots the instance: from its disk (BIOS), or with a kernel from the node. */
export interface BootPlan {
  /** Absent: the instance is not booted (see reason). */
  mode?: 'disk' | 'node-kernel';
  kernel?: string;
  initrd?: string;
  append?: string;
  /** Why the instance cannot be booted here, or how it is booted. */
  reason: string;
}

const CONTAINERS = new Set(['lxc', 'chroot', 'fake']);

/**
 * How Ganeti's hypervisor would start `inst`: from disk when kernel_path is empty (kvm) or for
 * xen-hvm, with the node's kernel when kernel_path is set (then it must exist on this node, as
 * hv_base.OPT_FILE_CHECK requires), not at all for container hypervisors.
 */
export function bootPlan(inst: InstanceShape, exists: (p: string) => boolean = fs.existsSync): BootPlan {
  if (CONTAINERS.has(inst.hypervisor)) return { reason: `the ${inst.hypervisor} hypervisor runs no virtual machine: there is nothing to boot` };
  const host = hostBoots(inst);
  if (!host) return { mode: 'disk', reason: 'boots from disk 0 (BIOS)' };
  const kernel = hvParam(inst, 'kernel_path');
  if (!exists(kernel)) {
    return { reason: `${host}, and ${kernel} is not on this node (Ganeti would refuse to start the instance): the disk is not meant to boot by itself` };
  }
  const initrd = hvParam(inst, 'initrd_path');
  if (initrd && !exists(initrd)) return { reason: `initrd_path ${initrd} is not on this node (Ganeti would refuse to start the instance)` };
  const append = [`root=${hvParam(inst, 'root_path')}`, hvParam(inst, 'kernel_args')];
  if (hvParam(inst, 'serial_console') === 'True') append.push(`console=ttyS0,${hvParam(inst, 'serial_speed') || '38400'}`);
  return { mode: 'node-kernel', kernel, ...(initrd ? { initrd } : {}), append: append.join(' '), reason: `boots the node's kernel ${kernel}${initrd ? ` with ${initrd}` : ''}` };
}

export interface BootRequest {
  /** Disk images or devices, disk 0 first. */
  disks: string[];
  /** NIC MAC addresses (user-mode networking, no host access needed). */
  macs?: string[];
  plan: BootPlan;
  /** Where the serial console goes (truncated first). */
  consoleLog: string;
  /** Seconds to wait for readiness. */
  timeoutSeconds: number;
  /** What readiness looks like on the console (default: a login prompt). */
  ready?: RegExp;
  accel?: 'tcg' | 'kvm';
  /** BIOS (default), or OVMF with `vars` the instance's own copy of the variable store. */
  firmware?: { kind: Firmware; vars: string };
  memMiB?: number;
  /** paravirtual (virtio, Ganeti's default) or another Ganeti disk_type/nic_type. */
  diskType?: string;
  nicType?: string;
  /** Aborting stops QEMU. */
  signal?: AbortSignal;
  /** Called about once a second with the latest console line. */
  onConsole?: (line: string, seconds: number) => void;
  /**
   * The guest's writes reach the disks (no -snapshot), and once ready it is shut down cleanly
   * (ACPI power button, then Ctrl-Alt-Del) so that what it wrote can be read afterwards.
   */
  persist?: boolean;
}

export interface BootResult {
  ready: boolean;
  /** The console line that showed readiness. */
  matched?: string;
  seconds: number;
  /** Why it is not ready: timeout, QEMU exited, aborted. */
  problem?: string;
  /** The last lines of the console (at most 4 KiB). */
  consoleTail: string;
  /** persist: whether the guest powered off by itself after the request, and in how many seconds. */
  shutdown?: { clean: boolean; seconds: number };
}

/** The QEMU command line for a boot request (without the binary). */
export function qemuArgs(req: BootRequest): string[] {
  const accel = req.accel ?? 'tcg';
  // -snapshot: the guest's writes go to a temporary overlay, so the disk stays as the script left
  // it (a guest stopped without shutdown would leave a journal to replay for export and rename).
  // persist: the monitor on standard input, to ask the guest to shut down.
  const args = ['-accel', accel, '-m', String(req.memMiB ?? 1024), '-smp', '1', '-display', 'none', '-monitor', req.persist ? 'stdio' : 'none', '-no-reboot', ...(req.persist ? [] : ['-snapshot']), '-serial', `file:${req.consoleLog}`];
  if (req.firmware) args.push(...firmwareArgs(req.firmware.kind, req.firmware.vars));
  const diskIf = (req.diskType ?? 'paravirtual') === 'paravirtual' ? 'virtio' : req.diskType === 'scsi' ? 'scsi' : 'ide';
  req.disks.forEach((d) => args.push('-drive', `file=${d},format=raw,if=${diskIf}`));
  const model = (req.nicType ?? 'paravirtual') === 'paravirtual' ? 'virtio-net-pci' : req.nicType!;
  if (req.macs?.length) req.macs.forEach((mac) => args.push('-nic', `user,model=${model},mac=${mac}`));
  else args.push('-nic', 'none');
  if (req.plan.mode === 'node-kernel') {
    args.push('-kernel', req.plan.kernel!);
    if (req.plan.initrd) args.push('-initrd', req.plan.initrd);
    args.push('-append', req.plan.append!);
  }
  return args;
}

/** Reads what was appended to a file since the last call, keeping the last 4 KiB. */
class ConsoleTail {
  private offset = 0;
  text = '';
  constructor(private readonly file: string) {}
  poll(): string {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return '';
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      let fresh = '';
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        fresh += buf.toString('latin1', 0, n);
        if (fresh.length > 256 * 1024) fresh = fresh.slice(-8192);
      }
      this.text = (this.text + fresh).slice(-4096);
      return fresh;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * Boot the disks under QEMU and wait until the console shows readiness, QEMU exits, the
 * timeout passes or the signal aborts; QEMU is stopped (SIGTERM, then SIGKILL) before this
 * returns. Throws only when QEMU cannot be started at all.
 */
export async function bootUntilReady(req: BootRequest): Promise<BootResult> {
  if (!req.plan.mode) throw new Error(`not bootable: ${req.plan.reason}`);
  fs.writeFileSync(req.consoleLog, '');
  const start = Date.now();
  const seconds = () => (Date.now() - start) / 1000;
  const qemu = startProcess(['qemu-system-x86_64', ...qemuArgs(req)], { stdio: [req.persist ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  qemu.stdin?.on('error', () => undefined);
  let stderr = '';
  qemu.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let exited = false;
  let spawnError: Error | undefined;
  qemu.on('error', (e) => (spawnError = e));
  const gone = new Promise<void>((resolve) => qemu.on('close', () => resolve()));
  void gone.then(() => (exited = true));
  const tail = new ConsoleTail(req.consoleLog);
  let window = '';
  /** The power button, Ctrl-Alt-Del after 30 s (-no-reboot: a reboot ends QEMU), up to 120 s for QEMU to exit. */
  const powerOff = async (): Promise<{ clean: boolean; seconds: number }> => {
    const t0 = Date.now();
    const since = () => (Date.now() - t0) / 1000;
    qemu.stdin?.write('system_powerdown\n');
    let pressed = false;
    while (!exited && since() < 120 && !req.signal?.aborted) {
      if (!pressed && since() > 30) {
        qemu.stdin?.write('sendkey ctrl-alt-delete\n');
        pressed = true;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return { clean: exited, seconds: since() };
  };
  const result = (ok: boolean, extra: Partial<BootResult>): BootResult => ({ ready: ok, seconds: seconds(), consoleTail: consoleText(tail.text), ...extra });
  try {
    for (;;) {
      window = consoleText(window + tail.poll()).slice(-8192);
      const matched = consoleReady(window, req.ready);
      if (matched !== undefined) {
        const ready = result(true, { matched });
        if (req.persist) ready.shutdown = await powerOff();
        return ready;
      }
      if (req.onConsole) req.onConsole((window.trimEnd().split('\n').pop() ?? '').slice(0, 100), seconds());
      if (spawnError) throw new Error(`cannot start qemu-system-x86_64: ${spawnError.message}`);
      if (exited) return result(false, { problem: `QEMU exited before the instance was ready${stderr.trim() ? `: ${stderr.trim()}` : ''}` });
      if (req.signal?.aborted) return result(false, { problem: 'interrupted' });
      if (seconds() > req.timeoutSeconds) return result(false, { problem: `no ${req.ready ? `line matching ${req.ready}` : 'login prompt'} on the console within ${req.timeoutSeconds} s` });
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    if (!exited && !spawnError) {
      qemu.kill('SIGTERM');
      const timer = setTimeout(() => qemu.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
  }
}
