/**
 * The local backend of `ganeti-os test`: a definition's whole life on throwaway sparse disks in
 * a private work directory, each script run as a Ganeti node runs it (src/ganeti/runner.ts) for
 * the instance gnt-instance add would build (src/ganeti/instance.ts):
 *
 *   verify (good values; a bad value per parameter with choices or a pattern must be refused)
 *   → create → boot → export (announced size = bytes streamed) → import into a larger disk
 *   → grow that disk (as gnt-instance grow-disk) → boot the import (its root must fill the
 *   grown disk) → rename (new name, then equal names) → reinstall.
 *
 * The first boot runs in the background (TCG uses one core): export and import run beside it,
 * and the import boots as soon as it is grown; reinstall waits for the first boot (same disk),
 * rename for the second. The first boot's writes go to a throwaway overlay (-snapshot); the
 * second's reach the disk and it is shut down cleanly, so that the grown filesystem can be read.
 *
 * Steps a definition cannot do are reported as such (no kernel for the hypervisor settings,
 * API below 20 for verify). Nothing of the work directory outlives close() but the logs of a
 * failed run (or everything with keep).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../context';
import type { DiskShape, InstanceShape } from '../ganeti/environment';
import { InstanceOptions, MIB, buildInstance, createSparse, parseDisk } from '../ganeti/instance';
import type { GanetiRelease } from '../ganeti/releases';
import { OS_API_V20, OS_SCRIPT_CREATE, OS_SCRIPT_EXPORT, OS_SCRIPT_IMPORT, OS_SCRIPT_RENAME, OS_SCRIPT_VERIFY } from '../ganeti/rules';
import { ScriptOutcome, ScriptRequest, errorLines, runOsScript, tailFile } from '../ganeti/runner';
import { validateOsChecks } from '../ganeti/validate-os';
import { bootPlan, bootUntilReady } from '../boot/qemu';
import { DiskCheck, diskChecks } from '../boot/checks';
import { DiskFirmware, describeInstalled, diskFirmware, rootFilesystem } from '../boot/inspect';
import { FIRMWARE_TEXT, Firmware, OVMF, missingFirmware } from '../boot/firmware';
import type { OsDefinition } from '../definition/model';
import { osForInstance, osInfo } from '../definition/for-ganeti';
import { releaseUnder } from '../system/kernel';
import { Backend, Step, StepContext, StepOutcome, failed, passed, skipped } from './lifecycle';

export interface LocalOptions {
  def: OsDefinition;
  /** The variant under test (undefined: the first listed, as --force-variant). */
  variant?: string;
  /** NICs, OS/hypervisor/backend parameters, hypervisor, name, as `run` takes them, and the Ganeti release whose defaults apply. */
  instance: InstanceOptions & { release: GanetiRelease };
  /** Disk 0's size (MiB); the import disk is a quarter larger. */
  diskSizeMiB: number;
  /** A new, empty, private directory. */
  workDir: string;
  keep: boolean;
  accel: 'tcg' | 'kvm';
  /** Seconds to wait for readiness on the console. */
  bootTimeout: number;
  ready?: RegExp;
  /** --firmware: boot under each (undefined: what disk 0 is made for); the import boots under the last. */
  firmwares?: Firmware[];
  log: Logger;
}

/** A value the parameter's declared check must refuse, or undefined when it has no check. */
export function badValue(choices: string[] | undefined, pattern: string | undefined): string | undefined {
  if (choices?.length) {
    for (const v of ['not-a-choice', 'not a choice', 'x']) if (!choices.includes(v)) return v;
  }
  if (pattern !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${pattern})$`);
    } catch {
      return undefined;
    }
    for (const v of ['!bad value!', '%%', ' ', '-', 'x', '0', '$(reboot)']) if (!re.test(v)) return v;
  }
  return undefined;
}

const roundUp4 = (mib: number) => Math.ceil(mib / 4) * 4;

export class LocalBackend implements Backend {
  readonly name = 'local';
  private readonly logDir: string;
  private readonly disk0: string;
  private readonly disk1: string;
  private readonly stream: string;
  private readonly inst: InstanceShape;
  private readonly imported: InstanceShape;
  /** The import after its disk grew. */
  private readonly grown: InstanceShape;
  private readonly newName: string;

  constructor(private readonly o: LocalOptions) {
    this.logDir = path.join(o.workDir, 'logs');
    fs.mkdirSync(this.logDir, { recursive: true, mode: 0o750 });
    this.disk0 = path.join(o.workDir, 'disk0.img');
    this.disk1 = path.join(o.workDir, 'import-disk0.img');
    this.stream = path.join(o.workDir, 'export-disk0.stream');
    const shape = (p: string, mib: number): DiskShape => parseDisk(o.workDir, o.log, `${p}:${mib}`, 0, {}).shape;
    this.inst = buildInstance(o.log, osForInstance(o.def), { ...o.instance, variant: o.variant }, [shape(this.disk0, o.diskSizeMiB)]);
    this.imported = { ...this.inst, disks: [shape(this.disk1, roundUp4(o.diskSizeMiB * 1.25))] };
    this.grown = { ...this.imported, disks: [{ ...this.imported.disks[0], size: this.imported.disks[0].size + roundUp4(o.diskSizeMiB / 4) }] };
    const [host, ...domain] = this.inst.name.split('.');
    this.newName = [`${host}-renamed`, ...domain].join('.');
  }

  /** The instance under test (for reports). */
  get instance(): InstanceShape {
    return this.inst;
  }

  steps(): Step[] {
    const canBoot = bootPlan(this.inst);
    return [
      { name: 'verify', title: 'verify parameters', run: (sc) => this.verify(sc) },
      { name: 'create', title: 'create', run: (sc) => this.create(sc) },
      { name: 'boot', title: 'boot', needs: ['create'], background: true, run: (sc) => this.bootEach(sc, this.inst, canBoot, 'all') },
      { name: 'export', title: 'export disk 0', needs: ['create'], run: (sc) => this.export(sc) },
      { name: 'import', title: 'import into a larger disk', needs: ['export'], run: (sc) => this.import(sc) },
      { name: 'grow', title: 'grow the import\'s disk 0', needs: ['import'], run: () => this.grow() },
      { name: 'boot-import', title: 'boot the grown import', needs: ['grow'], run: (sc) => this.bootEach(sc, this.grown, bootPlan(this.grown), 'last', true) },
      { name: 'rename', title: 'rename', needs: ['import'], after: ['boot-import'], run: (sc) => this.rename(sc) },
      { name: 'reinstall', title: 'reinstall', needs: ['create'], after: ['boot'], run: (sc) => this.reinstall(sc) },
    ];
  }

  private request(sc: StepContext, script: string, inst: InstanceShape, extra: Partial<ScriptRequest> = {}): ScriptRequest {
    return { script, osDir: this.o.def.osDir, inst, os: osInfo(this.o.def), logDir: this.logDir, phase: (l) => sc.phase(l), signal: sc.signal, ...extra };
  }

  /** A failed script as a failed step: Ganeti's reason, the log and its last lines (and error lines above them). */
  private scriptFailed(what: string, r: ScriptOutcome): StepOutcome {
    const tail = tailFile(r.log, 20, r.logOffset);
    const causes = errorLines(r.log, r.logOffset).filter((l) => !tail.includes(l));
    return failed(`${what} ${r.failReason}`, { logs: [r.log], logTail: [...causes, ...tail] });
  }

  private async verify(sc: StepContext): Promise<StepOutcome> {
    if ((this.o.def.maxApiVersion ?? 0) < OS_API_V20) return skipped(`API ${this.o.def.maxApiVersion}: Ganeti runs verify only for API 20`);
    const refused = this.validateOsRefusal('verify');
    if (refused) return failed(refused);
    const checks: NonNullable<StepOutcome['checks']> = [];
    const logs = new Set<string>();
    const good = await runOsScript(this.request(sc, OS_SCRIPT_VERIFY, this.inst));
    logs.add(good.log);
    checks.push({ name: 'the given values', ok: good.ok, detail: good.ok ? 'accepted' : `refused (${good.failReason})` });
    if (!good.ok) return this.scriptFailed('verify of the given values', good);
    const declared = this.o.def.provenance?.answers.parameters ?? [];
    for (const p of declared) {
      if (sc.signal.aborted) break;
      const bad = badValue(p.choices, p.pattern);
      if (bad === undefined) continue;
      const osparams: [string, string][] = [...this.inst.osparams.filter(([k]) => k !== p.name), [p.name, bad]];
      const r = await runOsScript(this.request(sc, OS_SCRIPT_VERIFY, { ...this.inst, osparams }));
      logs.add(r.log);
      checks.push({ name: `${p.name}=${JSON.stringify(bad)}`, ok: !r.ok, detail: r.ok ? 'accepted, though it is not in the declared checks' : 'refused' });
    }
    const wrong = checks.filter((c) => !c.ok);
    const detail = !this.o.def.provenance
      ? 'given values accepted (the declared checks are unknown: ganeti-os did not write this definition)'
      : checks.length > 1
        ? `given values accepted, ${checks.length - 1} bad value(s) refused`
        : 'given values accepted (no parameter declares choices or a pattern)';
    return wrong.length ? failed(`verify accepted ${wrong.map((c) => c.name).join(', ')}`, { checks, logs: [...logs] }) : passed(detail, { checks, logs: [...logs] });
  }

  /**
   * ValidateOS's own checks, which every node makes before verify and before an instance add
   * (create): Ganeti's refusal when they fail (or crash, on a blank parameters.list line).
   */
  private validateOsRefusal(script: string): string | undefined {
    if ((this.o.def.maxApiVersion ?? 0) < OS_API_V20) return undefined;
    const refused = validateOsChecks(
      { ...osInfo(this.o.def), parameterFields: this.o.def.parameterFields },
      this.inst.os,
      this.inst.osparams.map(([k]) => k),
      !this.inst.os.includes('+'),
    );
    if (!refused) return undefined;
    return refused.crash ? `Ganeti's ValidateOS raises ${refused.crash} (${refused.error}) before ${script} runs: every instance add fails (parameters.list has a blank line)` : refused.error;
  }

  private async create(sc: StepContext): Promise<StepOutcome> {
    const refused = this.validateOsRefusal('create');
    if (refused) return failed(refused);
    createSparse({ info: () => undefined, warn: this.o.log.warn }, this.disk0, this.o.diskSizeMiB * MIB);
    const r = await runOsScript(this.request(sc, OS_SCRIPT_CREATE, this.inst));
    if (!r.ok) return this.scriptFailed('create', r);
    return passed(describeInstalled(this.inst).summary, { logs: [r.log] });
  }

  /** What gnt-instance grow-disk does to a file disk: it gets longer; partitions and filesystem stay. */
  private async grow(): Promise<StepOutcome> {
    const before = fs.statSync(this.disk1).size;
    fs.truncateSync(this.disk1, this.grown.disks[0].size * MIB);
    return passed(`${before / MIB} MiB → ${this.grown.disks[0].size} MiB, as gnt-instance grow-disk leaves it: the next boot must fill it`);
  }

  /**
   * Whether the definition answers for what its disks boot under: it declares a `firmware`
   * parameter (the debian template). Otherwise disk 0 boots under whatever was written onto it
   * (an image template's cloud image brings its own boot loaders, a foreign definition never
   * said), so a firmware it is not made for is reported, not failed.
   */
  private get declaresFirmware(): boolean {
    return this.o.def.parameters.some((p) => p.name === 'firmware');
  }

  /**
   * Boot under each firmware chooseFirmwares picks (--firmware; default: every one disk 0 is
   * made for, read from the disk) or, for the import, the last of them. A firmware asked for
   * that the disk is not made for fails the step before QEMU starts when the definition declares
   * its firmware; otherwise it is reported as not made for (a check that does not apply) and the
   * others boot, and with none left the step is skipped saying why. A firmware this node lacks
   * fails the step, naming what is missing. grown: as boot's.
   */
  private async bootEach(sc: StepContext, inst: InstanceShape, plan: ReturnType<typeof bootPlan>, which: 'all' | 'last', grown = false): Promise<StepOutcome> {
    if (!plan.mode) return skipped(plan.reason);
    const disk = inst.disks[0].path;
    // The debian template's msdos disks get their remedy named (its partition-style parameter).
    const hint = this.o.def.parameters.some((p) => p.name === 'partition-style') ? 'BIOS only: partition-style gpt gives one' : 'BIOS only';
    const made = plan.mode === 'disk' ? diskFirmware(disk, hint) : undefined;
    const choice = chooseFirmwares(made, this.o.firmwares, which);
    const notMade = choice.notMade.map((n) => `disk ${disk} is not made to boot under ${FIRMWARE_TEXT[n.firmware]}: ${n.why}`);
    if (notMade.length && this.declaresFirmware) return failed(notMade[0]);
    const whose = 'the definition declares no firmware, so disk 0 boots under what was written onto it (a cloud image brings its own boot loaders): not a failure of the definition';
    const checks: NonNullable<StepOutcome['checks']> = choice.notMade.map((n, i) => ({ name: `boot under ${FIRMWARE_TEXT[n.firmware]}`, ok: null, detail: notMade[i] }));
    if (!choice.boot.length) return skipped(`${notMade.join('; ')} (${whose})`, { checks });
    for (const fw of choice.boot) {
      const missing = missingFirmware(fw);
      if (missing) return failed(missing, { checks });
    }
    if (choice.boot.length === 1 && choice.boot[0] === 'bios' && !this.o.firmwares) {
      const only = await this.boot(sc, inst, plan, 'bios', grown);
      // Said in the verdict: a disk that boots under BIOS alone (no ESP: an msdos table, an image without one).
      if (only.status === 'passed' && made?.firmwares.length === 1 && made.why.uefi) return { ...only, detail: `${only.detail}; not made to boot under UEFI: ${made.why.uefi}` };
      return only;
    }
    const logs: string[] = [];
    const booted: string[] = [];
    let last: StepOutcome | undefined;
    for (const fw of choice.boot) {
      if (sc.signal.aborted) break;
      last = await this.boot(sc, inst, plan, fw, grown);
      logs.push(...(last.logs ?? []));
      checks.push({ name: `boot under ${FIRMWARE_TEXT[fw]}`, ok: last.status === 'passed', detail: last.detail });
      if (last.status !== 'passed') return { ...last, detail: `${FIRMWARE_TEXT[fw]}: ${last.detail}`, checks: [...checks, ...(last.checks ?? [])], logs };
      booted.push(`${FIRMWARE_TEXT[fw]} ${last.detail.replace(/ \(.*$/, '').replace(/^ready /, '')}`);
    }
    if (!last) return failed('interrupted');
    const fill = grown ? last.checks?.find((c) => c.name === 'root fills the disk' && c.ok) : undefined;
    const not = choice.notMade.map((n) => `not made to boot under ${FIRMWARE_TEXT[n.firmware]}: ${n.why}`);
    return passed(`ready under ${booted.join(', ')}${fill ? `; ${fill.detail}` : ''}${not.length ? `; ${not.join('; ')}` : ''}`, { checks: [...checks, ...(last.checks ?? [])], logs });
  }

  /**
   * Boot disk 0 of `inst` under `firmware`; grown: the guest's writes reach the disk, it is shut
   * down cleanly, and its root filesystem must fill the disk (within 1%).
   */
  private async boot(sc: StepContext, inst: InstanceShape, plan: ReturnType<typeof bootPlan>, firmware: Firmware = 'bios', grown = false): Promise<StepOutcome> {
    if (!plan.mode) return skipped(plan.reason);
    if (plan.mode === 'disk') {
      // Nothing bootable at all (no kernel and no boot loader): the definition does not install a system that boots by itself.
      const installed = describeInstalled(inst);
      if (!installed.kernels.length && !installed.bootLoader) return skipped(`not meant to boot by itself: ${installed.reason}`);
    }
    const hv = new Map(inst.hvparams);
    const tag = `${path.basename(inst.disks[0].path, '.img')}${firmware === 'bios' ? '' : `-${firmware}`}`;
    const consoleLog = path.join(this.logDir, `console-${tag}.log`);
    // OVMF writes its variables: each boot gets its own copy of the store, as each instance would.
    const vars = path.join(this.logDir, `ovmf-vars-${tag}.fd`);
    if (firmware !== 'bios') {
      try {
        fs.copyFileSync(OVMF[firmware].vars, vars);
      } catch (err) {
        return failed(`cannot copy the UEFI variable store ${OVMF[firmware].vars} to ${vars}: ${(err as Error).message}`);
      }
    }
    const r = await bootUntilReady({
      disks: inst.disks.map((d) => d.path),
      macs: inst.nics.map((n) => n.mac),
      plan,
      consoleLog,
      timeoutSeconds: this.o.bootTimeout,
      ready: this.o.ready,
      accel: this.o.accel,
      ...(firmware === 'bios' ? {} : { firmware: { kind: firmware, vars } }),
      diskType: hv.get('disk_type'),
      nicType: hv.get('nic_type'),
      signal: sc.signal,
      persist: grown,
      onConsole: (line) => sc.phase(`booting (${plan.mode === 'node-kernel' ? "node's kernel" : 'from disk'}, ${FIRMWARE_TEXT[firmware]}, ${this.o.accel}): ${line}`),
    });
    if (!r.ready) return failed(r.problem ?? 'not ready', { logs: [consoleLog], logTail: r.consoleTail.trimEnd().split('\n').slice(-20) });
    sc.phase('checking the disk');
    const checks = diskChecks(inst, r.matched);
    if (grown) checks.push(...fillsDisk(inst.disks[0].path, r.shutdown));
    const bad = checks.filter((c) => c.ok === false);
    const fill = grown ? checks.find((c) => c.name === 'root fills the disk' && c.ok) : undefined;
    const detail = `ready after ${r.seconds.toFixed(0)} s ('${r.matched}'), ${firmware === 'bios' ? plan.reason : plan.reason.replace('(BIOS)', `(${FIRMWARE_TEXT[firmware]})`)}${fill ? `; ${fill.detail}` : ''}`;
    return bad.length ? failed(bad.map((c) => `${c.name}: ${c.detail}`).join('; '), { checks, logs: [consoleLog] }) : passed(detail, { checks, logs: [consoleLog] });
  }

  private async export(sc: StepContext): Promise<StepOutcome> {
    const r = await runOsScript(this.request(sc, OS_SCRIPT_EXPORT, this.inst, { index: 0, stream: this.stream }));
    if (!r.ok) return this.scriptFailed('export', r);
    const bytes = r.bytes ?? 0;
    if (!bytes) return failed('export succeeded but streamed nothing', { logs: [r.log] });
    if (r.announced === undefined) {
      return r.announcedRaw
        ? failed(`export wrote ${JSON.stringify(r.announcedRaw.slice(0, 40))} on EXP_SIZE_FD, which Ganeti cannot read as bytes`, { logs: [r.log] })
        : passed(`${bytes} bytes streamed, no size announced on EXP_SIZE_FD (Ganeti shows no progress)`, { logs: [r.log] });
    }
    if (r.announced !== bytes) {
      return failed(`export announced ${r.announced} bytes on EXP_SIZE_FD but streamed ${bytes}`, { logs: [r.log] });
    }
    return passed(`${bytes} bytes streamed (${(bytes / MIB).toFixed(1)} MiB), as announced`, { logs: [r.log] });
  }

  private async import(sc: StepContext): Promise<StepOutcome> {
    createSparse({ info: () => undefined, warn: this.o.log.warn }, this.disk1, this.imported.disks[0].size * MIB);
    // A new disk holds old data (a recycled logical volume): a marker shows whether import wrote anything.
    const marker = writeMarker(this.disk1);
    const r = await runOsScript(this.request(sc, OS_SCRIPT_IMPORT, this.imported, { index: 0, stream: this.stream }));
    if (!r.ok) return this.scriptFailed('import', r);
    if (markerIntact(this.disk1, marker)) return failed(`import succeeded but did not write to the disk (it ignored its ${r.bytes} byte input)`, { logs: [r.log] });
    return passed(`${r.bytes} bytes read into a ${this.imported.disks[0].size} MiB disk; ${describeInstalled(this.imported).summary}`, { logs: [r.log] });
  }

  private async rename(sc: StepContext): Promise<StepOutcome> {
    const hostname = () => rootFilesystem(this.disk1).reader?.read('/etc/hostname')?.trim();
    const before = hostname();
    const renamed: InstanceShape = { ...this.grown, name: this.newName };
    const r = await runOsScript(this.request(sc, OS_SCRIPT_RENAME, renamed, { oldName: this.inst.name }));
    if (!r.ok) return this.scriptFailed(`rename ${this.inst.name} → ${this.newName}`, r);
    const after = hostname();
    const checks: NonNullable<StepOutcome['checks']> = [];
    const short = (n: string) => n.split('.')[0];
    if (before !== undefined && (before === this.inst.name || before === short(this.inst.name))) {
      const ok = after === this.newName || after === short(this.newName);
      checks.push({ name: 'hostname', ok, detail: `/etc/hostname ${JSON.stringify(before)} → ${JSON.stringify(after)}` });
      if (!ok) return failed(`rename succeeded but did nothing: /etc/hostname is still ${JSON.stringify(after)}, not ${this.newName}`, { checks, logs: [r.log] });
    } else {
      checks.push({ name: 'hostname', ok: null, detail: before === undefined ? 'no /etc/hostname on the disk' : `/etc/hostname was ${JSON.stringify(before)}, not the instance name` });
    }
    // After every import Ganeti runs rename with equal names.
    const same = await runOsScript(this.request(sc, OS_SCRIPT_RENAME, renamed, { oldName: this.newName }));
    if (!same.ok) return this.scriptFailed(`rename with equal names (${this.newName}, as Ganeti runs it after an import)`, same);
    checks.push({ name: 'equal names', ok: true, detail: 'accepted' });
    return passed(`${this.inst.name} → ${this.newName}, then equal names`, { checks, logs: [r.log, same.log] });
  }

  private async reinstall(sc: StepContext): Promise<StepOutcome> {
    const r = await runOsScript(this.request(sc, OS_SCRIPT_CREATE, this.inst, { reinstall: true }));
    if (!r.ok) return this.scriptFailed('reinstall (INSTANCE_REINSTALL=1)', r);
    return passed(describeInstalled(this.inst).summary, { logs: [r.log] });
  }

  /** Where the logs are (kept on failure). */
  get logs(): string {
    return this.logDir;
  }

  async close(keepLogs: boolean): Promise<void> {
    releaseUnder(this.o.workDir);
    if (this.o.keep) return;
    for (const f of [this.disk0, this.disk1, this.stream]) fs.rmSync(f, { force: true });
    if (!keepLogs) fs.rmSync(this.o.workDir, { recursive: true, force: true });
  }
}

/** What a boot step boots under (in order), and the firmware asked for that disk 0 is not made for, with why. */
export interface FirmwareChoice {
  boot: Firmware[];
  notMade: { firmware: Firmware; why: string }[];
}

/**
 * The firmware a boot step boots under: those asked for (--firmware), else every one disk 0 is
 * made for (`made`, read from the disk; undefined when the node's kernel boots it) but Secure
 * Boot, else BIOS (whether anything boots then is the boot's to say); the import's boot
 * (`last`) only the last of them. A firmware asked for that the disk is not made for goes to
 * notMade instead (whether that fails the boot is the caller's); a disk made for nothing at all
 * may still be tried under BIOS.
 */
export function chooseFirmwares(made: DiskFirmware | undefined, asked: Firmware[] | undefined, which: 'all' | 'last'): FirmwareChoice {
  let list: Firmware[] = asked ?? made?.firmwares.filter((f) => f !== 'secureboot') ?? [];
  if (!list.length) list = ['bios'];
  const boot: Firmware[] = [];
  const notMade: FirmwareChoice['notMade'] = [];
  for (const fw of list) {
    if (made && !made.firmwares.includes(fw) && (made.firmwares.length || fw !== 'bios')) notMade.push({ firmware: fw, why: made.why[fw] ?? 'it is not' });
    else boot.push(fw);
  }
  return { boot: which === 'last' ? boot.slice(-1) : boot, notMade };
}

/**
 * After a boot that could write: the guest powered off (so its filesystem is clean on the disk),
 * and the root filesystem fills what lies from its start to the end of the disk within 1% (the
 * template's boot-time grow did its work; partitions before the root stay as they are).
 */
export function fillsDisk(disk: string, shutdown: { clean: boolean; seconds: number } | undefined): DiskCheck[] {
  const checks: DiskCheck[] = [];
  if (shutdown) checks.push({ name: 'clean shutdown', ok: shutdown.clean, detail: shutdown.clean ? `powered off ${shutdown.seconds.toFixed(0)} s after the request` : `still running ${shutdown.seconds.toFixed(0)} s after the power button and Ctrl-Alt-Del: stopped, its last writes may be lost` });
  const { reader, problem } = rootFilesystem(disk);
  const fsBytes = reader?.bytes();
  const diskBytes = fs.statSync(disk).size;
  if (!reader || fsBytes === undefined) {
    checks.push({ name: 'root fills the disk', ok: false, detail: problem ?? 'the root filesystem\'s size is unreadable' });
    return checks;
  }
  // What the root may fill: the disk from where the root starts (the partitions before it, such
  // as a gpt disk's BIOS boot and EFI system partitions, stay as they are).
  const room = diskBytes - reader.offset;
  const share = fsBytes / room;
  const mib = (b: number) => `${(b / MIB).toFixed(0)} MiB`;
  const of = reader.offset ? `the ${mib(room)} from its start at ${mib(reader.offset)} to the end of the ${mib(diskBytes)} disk` : `the ${mib(diskBytes)} disk`;
  checks.push({
    name: 'root fills the disk',
    ok: share >= 0.99,
    detail: share >= 0.99 ? `root filesystem ${mib(fsBytes)} of ${of} after the boot` : `root filesystem ${mib(fsBytes)} of ${of} (${(share * 100).toFixed(1)}%) after the boot: the grown disk was not filled`,
  });
  return checks;
}

/** Random bytes in the first 64 KiB of a disk (what import must overwrite, whatever its layout). */
function writeMarker(p: string): Buffer {
  const marker = crypto.randomBytes(64 * 1024);
  const fd = fs.openSync(p, 'r+');
  try {
    fs.writeSync(fd, marker, 0, marker.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  return marker;
}

/** Whether the disk's first 64 KiB are still the marker. */
function markerIntact(p: string, marker: Buffer): boolean {
  const buf = Buffer.alloc(marker.length);
  const fd = fs.openSync(p, 'r');
  try {
    fs.readSync(fd, buf, 0, buf.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  return buf.equals(marker);
}
