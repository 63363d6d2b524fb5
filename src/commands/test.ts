/**
 * `ganeti-os test`: prove a definition installs, boots, moves and renames before it reaches a
 * cluster. Runs the lifecycle (src/lifecycle) once per variant on the local backend (throwaway
 * disks, QEMU) or, with --cluster, on the cluster backend (the running box's gnt-* commands),
 * with a live progress line on a terminal, one line per step with its time, a verdict table on
 * stdout (or one JSON document), and the logs kept and named when something failed. Exit 0
 * only when every step that applies passed; 130 when interrupted (QEMU stopped, disks released,
 * the box's instances removed).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../context';
import { SilentFailure, UsageError, UserError } from '../errors';
import { parseUnit } from '../ganeti/environment';
import type { InstanceOptions } from '../ganeti/instance';
import { loadValidDefinition } from '../definition/for-ganeti';
import { GANETI_DEFAULTS } from '../ganeti/defaults';
import { fillHvparams } from '../ganeti/instance';
import { BoxState, resolveStateDir, runningBox } from '../cluster/box';
import { ClusterBackend } from '../lifecycle/cluster';
import { Backend, Reporter, Step, StepResult, lifecyclePassed, runLifecycle } from '../lifecycle/lifecycle';
import { LocalBackend } from '../lifecycle/local';
import { FIRMWARE_TEXT, Firmware, missingFirmware, parseFirmwares } from '../boot/firmware';
import type { OsDefinition } from '../definition/model';
import { definitionDir } from './definition-dir';
import { chooseRelease, followedText, GanetiRelease, installedRelease } from '../ganeti/releases';

export interface TestOptions extends InstanceOptions {
  osDir?: string;
  /** --ganeti: the release whose environments the local lifecycle builds (default: chooseRelease's). */
  ganeti?: string;
  /** Variants to test (repeatable); default: the first listed. */
  variants?: string[];
  diskSize?: string;
  keep?: boolean;
  json?: boolean;
  accel?: string;
  /** --firmware (repeatable): bios, uefi, secureboot. */
  firmware?: string[];
  bootTimeout?: string;
  ready?: string;
  workDir?: string;
  /** Through the running cluster box instead of local disks. */
  cluster?: boolean;
  /** The box's state directory (--cluster). */
  state?: string;
  /** --cluster: file or ext. */
  diskTemplate?: string;
  /** --cluster: instance memory, MiB. */
  memory?: string;
  /** --cluster: wait for the console (undefined: kvm and a debian-template definition). */
  boot?: boolean;
  /** --cluster: run create on the host first (undefined: debian-template definitions). */
  prefill?: boolean;
  /** --cluster: a value the master must refuse; false: skip that step. */
  badOsparam?: string | false;
  /** --cluster: run Ganeti's burnin with the definition after the lifecycle (file disks). */
  burnin?: boolean;
}

/** What --cluster needs, checked before anything runs. */
interface ClusterSettings {
  box: BoxState;
  hypervisor: 'kvm' | 'fake';
  diskTemplate: 'file' | 'ext';
  memoryMib: number;
  /** The release the box runs. */
  release: GanetiRelease;
  /** --firmware uefi|secureboot (undefined: BIOS, Ganeti's default). */
  firmware?: Exclude<Firmware, 'bios'>;
}

/** One run of the lifecycle (one variant). */
export interface TestRun {
  /** local or cluster. */
  backend: string;
  os: string;
  variant: string | null;
  instance: string;
  hypervisor: string;
  /** The Ganeti release the run followed (--cluster: the one the box runs). */
  ganeti: GanetiRelease;
  ok: boolean;
  /** Wall-clock seconds of the run, and the sum of its steps' seconds. */
  seconds: number;
  stepSeconds: number;
  steps: StepResult[];
  /** Where the logs are, when kept (failure or --keep). */
  logs: string | null;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const MARK: Record<StepResult['status'], string> = { passed: '✓', failed: '✗', skipped: '-' };

const fmtTime = (s: number) => (s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)} s`);

/**
 * The terminal reporter: a spinner line with the step, its phase and elapsed time (only when
 * stderr is a terminal: ctx.progress), and one line per finished step on stderr.
 */
function terminalReporter(ctx: Context, prefix: string): Reporter & { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let frame = 0;
  // Steps in the background (a boot) run beside others: the line shows every running step.
  const running = new Map<Step, { text: string; start: number }>();
  const draw = () => {
    if (!ctx.progress || !running.size) return;
    const cols = Number(ctx.env.COLUMNS) || 100;
    const parts = [...running].map(([step, r]) => `${step.title} ${fmtTime((Date.now() - r.start) / 1000)}${r.text ? ` — ${r.text}` : ''}`);
    const line = `${FRAMES[frame++ % FRAMES.length]} ${prefix}${parts.reverse().join(' | ')}`;
    ctx.progress(line.slice(0, cols - 1));
  };
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (ctx.progress) ctx.progress('');
  };
  return {
    started(step) {
      running.set(step, { text: '', start: Date.now() });
      if (ctx.progress && !timer) timer = setInterval(draw, 120);
      draw();
    },
    phase(step, text) {
      const r = running.get(step);
      if (r) r.text = text.replace(/\s+/g, ' ').trim();
    },
    finished(r) {
      for (const step of running.keys()) if (step.name === r.step) running.delete(step);
      if (ctx.progress) ctx.progress('');
      ctx.log.info(`${MARK[r.status]} ${prefix}${r.title.padEnd(31)} ${r.status === 'skipped' ? '        ' : fmtTime(r.seconds).padStart(8)}  ${r.status === 'passed' ? '' : `${r.status}: `}${r.detail}`);
      if (running.size) draw();
      else stop();
    },
    stop,
  };
}

/** The verdict table: one row per step, then the Ganeti release the runs followed. */
function table(runs: TestRun[], release: string): string {
  const rows: string[][] = [['STEP', 'RESULT', 'TIME', 'DETAIL']];
  for (const run of runs) {
    const prefix = runs.length > 1 ? `${run.variant}: ` : '';
    for (const s of run.steps) rows.push([prefix + s.title, s.status, s.status === 'skipped' ? '' : fmtTime(s.seconds), s.detail.length > 100 ? `${s.detail.slice(0, 97)}...` : s.detail]);
  }
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => [r[0].padEnd(w[0]), r[1].padEnd(w[1]), r[2].padStart(w[2]), r[3]].join('  ').trimEnd()).join('\n') + `\nfollowed: ${release}\n`;
}

/**
 * Run the lifecycle of the definition in opts.osDir (default: the current directory) for each
 * variant. Throws UsageError for bad options, UserError when the definition is refused or the
 * work directory cannot be made, SilentFailure(1) when a step failed (after reporting), and
 * SilentFailure(130) when interrupted.
 */
export async function runTest(ctx: Context, opts: TestOptions): Promise<void> {
  const followed = chooseRelease(opts.ganeti);
  const osDir = definitionDir(ctx, opts.osDir);
  let firmwares: Firmware[] | undefined;
  try {
    firmwares = parseFirmwares(opts.firmware);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const cluster = opts.cluster ? clusterSettings(ctx, opts, firmwares) : undefined;
  if (!cluster) {
    const given = (['state', 'diskTemplate', 'memory', 'boot', 'prefill', 'badOsparam', 'burnin'] as const).filter((k) => opts[k] !== undefined);
    if (given.length) throw new UsageError(`${given.map(flag).join(', ')} only with --cluster`);
    // Before anything else: a parameter the hypervisor does not have (fake has no kernel_path).
    fillHvparams(opts.hypervisor ?? GANETI_DEFAULTS.defaultHypervisor, opts.hvparam, followed.release);
  }
  if (ctx.uid !== undefined && ctx.uid !== 0) {
    throw new UserError(`test runs the scripts as root, as a Ganeti node does, and this is user ${ctx.uid}: run it as root`);
  }
  const def = loadValidDefinition(osDir);
  const size = parseUnit(opts.diskSize ?? (cluster ? '1024' : '2G'));
  if (typeof size !== 'number' || size < 1) throw new UsageError(`--disk-size '${opts.diskSize}': give MiB or a number with M, G or T (e.g. 2G)`);
  const clusterFirmware = cluster?.firmware;
  if (clusterFirmware) refuseFirmwareOfDefinition(opts, def, clusterFirmware);
  for (const fw of firmwares ?? []) {
    const missing = missingFirmware(fw);
    if (missing) throw new UserError(`--firmware ${fw}: ${missing}`);
  }
  const accel = opts.accel ?? 'tcg';
  if (accel !== 'tcg' && accel !== 'kvm') throw new UsageError(`--accel '${accel}': use tcg or kvm`);
  const bootTimeout = Number(opts.bootTimeout ?? '600');
  if (!Number.isFinite(bootTimeout) || bootTimeout <= 0) throw new UsageError(`--boot-timeout '${opts.bootTimeout}': give seconds`);
  let ready: RegExp | undefined;
  if (opts.ready !== undefined) {
    try {
      ready = new RegExp(opts.ready, 'm');
    } catch (err) {
      throw new UsageError(`--ready '${opts.ready}': ${(err as Error).message}`);
    }
  }
  const variants = opts.variants?.length ? opts.variants : [undefined];
  for (const v of variants) if (v !== undefined && !def.variants.includes(v)) throw new UsageError(`OS '${def.name}' has no variant '${v}' (variants: ${def.variants.join(', ') || 'none'})`);
  const signal = ctx.interrupt ? ctx.interrupt() : new AbortController().signal;

  let base: string | undefined;
  if (!cluster) {
    try {
      if (opts.workDir) {
        base = path.resolve(ctx.cwd, opts.workDir);
        fs.mkdirSync(base, { recursive: true, mode: 0o700 });
        base = fs.mkdtempSync(path.join(base, `${def.name}-`));
      } else {
        base = fs.mkdtempSync(path.join(ctx.env.TMPDIR || os.tmpdir(), `ganeti-os-test-${def.name}-`));
      }
    } catch (err) {
      throw new UserError(`cannot make a work directory: ${(err as Error).message}`);
    }
  }

  /** The backend for one variant, what it tests (for the narration and the report), and where its logs are. */
  const open = async (variant: string | undefined): Promise<{ backend: Backend; os: string; instance: string; hypervisor: string; says: string; logs: string | null }> => {
    if (cluster) {
      const backend = await ClusterBackend.open({
        box: cluster.box,
        release: cluster.release,
        def,
        variant,
        osparams: opts.osparam ?? [],
        badOsparam: opts.badOsparam === false ? null : opts.badOsparam,
        hypervisor: cluster.hypervisor,
        hvparams: opts.hvparam ?? [],
        diskTemplate: cluster.diskTemplate,
        diskMib: Math.ceil(size),
        memoryMib: cluster.memoryMib,
        boot: opts.boot ?? 'auto',
        bootTimeout,
        ready,
        prefill: opts.prefill ?? 'auto',
        burnin: !!opts.burnin,
        ...(clusterFirmware ? { firmware: clusterFirmware } : {}),
      });
      const says = `${backend.osName} as ${backend.names.first} (${cluster.hypervisor}${clusterFirmware ? ` under ${FIRMWARE_TEXT[clusterFirmware]}` : ''}, ${cluster.diskTemplate} disk of ${size} MiB) through the box at ${cluster.box.stateDir}, which runs Ganeti ${cluster.release}${opts.burnin ? `; then Ganeti's burnin (${cluster.hypervisor}, file disks)` : ''}`;
      return { backend, os: backend.osName, instance: backend.names.first, hypervisor: cluster.hypervisor, says, logs: null };
    }
    const workDir = variants.length > 1 ? path.join(base!, variant!) : base!;
    fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
    const backend = new LocalBackend({ def, variant, instance: { ...opts, release: followed.release }, diskSizeMiB: size, workDir, keep: !!opts.keep, accel, bootTimeout, ready, ...(firmwares ? { firmwares } : {}), log: ctx.log });
    const inst = backend.instance;
    const says = `${inst.os} as ${inst.name} (${inst.hypervisor}, ${inst.disks[0].size} MiB disk, ${inst.nics.length} NIC(s)) in ${workDir}, following ${followedText(followed)}`;
    return { backend, os: inst.os, instance: inst.name, hypervisor: inst.hypervisor, says, logs: workDir };
  };

  const runs: TestRun[] = [];
  try {
    for (const variant of variants) {
      const { backend, os: osName, instance, hypervisor, says, logs } = await open(variant);
      const prefix = variants.length > 1 ? `${variant}: ` : '';
      if (!opts.json) ctx.log.info(`testing ${says}`);
      const reporter = terminalReporter(ctx, prefix);
      const start = Date.now();
      let steps: StepResult[];
      try {
        steps = await runLifecycle(backend, reporter, signal);
      } finally {
        reporter.stop();
      }
      const ok = lifecyclePassed(steps);
      runs.push({
        backend: backend.name,
        os: osName,
        variant: variant ?? (def.variants[0] || null),
        instance,
        hypervisor,
        ganeti: cluster ? cluster.release : followed.release,
        ok,
        seconds: (Date.now() - start) / 1000,
        stepSeconds: steps.reduce((a, s) => a + s.seconds, 0),
        steps,
        logs: logs && (opts.keep || !ok) ? logs : null,
      });
      if (signal.aborted) break;
    }
  } finally {
    if (base && !opts.keep && runs.every((r) => r.logs === null) && fs.existsSync(base)) fs.rmSync(base, { recursive: true, force: true });
  }

  const ok = !signal.aborted && runs.every((r) => r.ok);
  if (opts.json) {
    const ganeti = cluster ? cluster.release : followed.release;
    ctx.out.write(JSON.stringify({ definition: def.dir, backend: cluster ? 'cluster' : 'local', ganeti, ...(cluster ? { state: cluster.box.stateDir } : {}), ok, interrupted: signal.aborted, runs }, null, 2) + '\n');
  } else {
    ctx.out.write(table(runs, cluster ? `Ganeti ${cluster.release} (the box's)` : followedText(followed)));
    for (const run of runs) {
      for (const s of run.steps.filter((x) => x.status === 'failed')) {
        ctx.log.info(`\n${run.variant ? `${run.variant}: ` : ''}${s.title} failed: ${s.detail}`);
        if (s.command) ctx.log.info(`  ran: ${s.command.join(' ')}`);
        if (s.logTail?.length) ctx.log.info(s.logTail.map((l) => `  | ${l}`).join('\n'));
        for (const l of s.logs) ctx.log.info(`  log: ${l}`);
      }
      if (run.logs) ctx.log.info(`${run.ok ? 'kept' : 'logs kept'} in ${run.logs}`);
    }
    ctx.log.info(signal.aborted ? (cluster ? "interrupted: this run's instances removed from the box" : 'interrupted: QEMU stopped, disks released') : ok ? `${def.name}: every step that applies passed` : `${def.name}: FAILED`);
  }
  if (signal.aborted) throw new SilentFailure(130);
  if (!ok) throw new SilentFailure(1);
}

const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * The --cluster settings: refuses (UsageError) options only the local backend has, a hypervisor
 * or disk template the box does not enable, malformed parameters, hypervisor parameters the
 * hypervisor does not have (the fake hypervisor has no kernel_path: hv_fake.py) and a --firmware
 * the run cannot prove (clusterFirmware); then the running box (UserError naming `ganeti-os
 * cluster up` when none runs there).
 */
function clusterSettings(ctx: Context, opts: TestOptions, firmwares: Firmware[] | undefined): ClusterSettings {
  const local = (['nic', 'network', 'beparam', 'name', 'accel', 'workDir', 'keep'] as const).filter((k) => opts[k] !== undefined).map(flag);
  if (opts.nics === false) local.push('--no-nics');
  if (local.length) throw new UsageError(`${local.join(', ')}: not with --cluster (the box's instances get Ganeti's defaults; see ganeti-os test --help)`);
  const hypervisor = opts.hypervisor ?? 'kvm';
  if (hypervisor !== 'kvm' && hypervisor !== 'fake') throw new UsageError(`--hypervisor must be kvm or fake with --cluster (the box enables those two), not '${hypervisor}'`);
  const diskTemplate = opts.diskTemplate ?? 'file';
  if (diskTemplate !== 'file' && diskTemplate !== 'ext') throw new UsageError(`--disk-template must be file or ext, not '${diskTemplate}'`);
  // burnin.py gives its disks no ExtStorage provider: Ganeti refuses them ("Missing provider for template 'ext'").
  if (opts.burnin && diskTemplate !== 'file') throw new UsageError(`--burnin runs on file disks only (Ganeti's burnin gives ext disks no provider), not with --disk-template ${diskTemplate}`);
  for (const kv of [...(opts.osparam ?? []), ...(opts.hvparam ?? []), ...(typeof opts.badOsparam === 'string' ? [opts.badOsparam] : [])]) {
    if (!/^[^=,]+=[^,]*$/.test(kv)) throw new UsageError(`'${kv}' is not name=value (without commas)`);
  }
  const firmware = firmwares ? clusterFirmware(opts, hypervisor, firmwares) : undefined;
  const wanted = opts.ganeti === undefined ? undefined : chooseRelease(opts.ganeti).release;
  // Usage errors first, before looking for a box: against the release asked for (or this node's).
  fillHvparams(hypervisor, opts.hvparam, chooseRelease(opts.ganeti).release);
  const memory = opts.memory ?? '512';
  if (!/^\d+$/.test(memory) || Number(memory) < 1) throw new UsageError(`--memory wants a positive whole number of MiB, not '${memory}'`);
  const box = runningBox(resolveStateDir(ctx.cwd, opts.state, ctx.env));
  // A box from before releases were chosen runs this node's Ganeti.
  const release = box.ganeti?.release ?? installedRelease() ?? '3.0';
  if (wanted && wanted !== release) {
    throw new UserError(`--ganeti ${wanted}: the box at ${box.stateDir} runs Ganeti ${release}; bring a ${wanted} box up with 'ganeti-os cluster up --ganeti ${wanted}' (another --state)`);
  }
  fillHvparams(hypervisor, opts.hvparam, release);
  return { box, hypervisor, diskTemplate, memoryMib: Number(memory), release, ...(firmware ? { firmware } : {}) };
}

/**
 * --firmware with --cluster (usage errors): one firmware, proven by a boot on kvm (the fake
 * hypervisor boots nothing). BIOS is Ganeti's default: undefined.
 */
function clusterFirmware(opts: TestOptions, hypervisor: 'kvm' | 'fake', firmwares: Firmware[]): Exclude<Firmware, 'bios'> | undefined {
  const given = `--firmware ${firmwares.join(', --firmware ')}`;
  if (hypervisor === 'fake') throw new UsageError(`${given}: not with --hypervisor fake (the fake hypervisor boots nothing; --firmware needs kvm)`);
  if (opts.boot === false) throw new UsageError(`${given}: not with --no-boot (the boot on the serial console proves the firmware)`);
  if (firmwares.length > 1) throw new UsageError(`${given}: --cluster starts its instance under one firmware; give --firmware once`);
  return firmwares[0] === 'bios' ? undefined : firmwares[0];
}

/**
 * A debian-template instance's disk 0 is made for UEFI only with partition-style gpt and a
 * firmware parameter other than bios (the values given, else the definition's defaults):
 * refused (UserError, exit 1) before anything is added. Any other definition's disk 0 is read
 * after the add (the firmware step).
 */
function refuseFirmwareOfDefinition(opts: TestOptions, def: OsDefinition, fw: Exclude<Firmware, 'bios'>): void {
  if (def.provenance?.template !== 'debian') return;
  const value = (name: string): string => {
    const given = [...(opts.osparam ?? [])].reverse().find((p) => p.startsWith(`${name}=`));
    if (given !== undefined) return `${given} (given)`;
    const declared = def.provenance?.answers.parameters?.find((p) => p.name === name)?.default;
    return `${name}=${typeof declared === 'string' ? declared : ''} (the definition's default)`;
  };
  const style = value('partition-style');
  if (!style.startsWith('partition-style=gpt ')) throw new UserError(`--firmware ${fw}: disk 0 of a debian-template instance boots under UEFI only with partition-style=gpt (an EFI system partition), and this run has ${style}: add --osparam partition-style=gpt`);
  const made = value('firmware');
  if (made.startsWith('firmware=bios ')) throw new UserError(`--firmware ${fw}: with ${made} disk 0 gets no EFI system partition: use firmware=auto, uefi or both`);
}
