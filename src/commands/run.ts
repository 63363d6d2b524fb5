/**
 * `ganeti-os run <script>`: run one script of a definition as Ganeti (`--ganeti`) runs it, with the
 * environment it builds for an equivalent instance on a freshly initialised cluster
 * (backend.InstanceOsAdd, RunRenameInstance, ValidateOS, and the import-export daemon for
 * export/import). Never creates or changes anything but the given disks, the export output and
 * its own log, and never a disk that is in use.
 */
import * as path from 'node:path';
import type { Context } from '../context';
import { SilentFailure, UsageError, UserError } from '../errors';
import { GANETI_DEFAULTS } from '../ganeti/defaults';
import {
  OS_API_V20,
  OS_SCRIPT_CREATE,
  OS_SCRIPT_CREATE_UNTRUSTED,
  OS_SCRIPT_EXPORT,
  OS_SCRIPT_IMPORT,
  OS_SCRIPT_RENAME,
  OS_SCRIPT_VERIFY,
} from '../ganeti/rules';
import { InstanceOptions, buildInstance, createSparse, parseDisk } from '../ganeti/instance';
import { ScriptRequest, StreamEnd, bytesToMebibyte, defaultLogDir, readFrom, runOsScript, scriptEnvironment, scriptFailure, scriptLogFile } from '../ganeti/runner';
import { leftOn, loopDevicesOn, refuseDisksInUse } from '../disk/in-use';
import { OsDefinition } from '../definition/model';
import { loadValidDefinition, osForInstance, osInfo } from '../definition/for-ganeti';
import { describeInstalled } from '../boot/inspect';
import { definitionDir } from './definition-dir';
import { validateOsChecks } from '../ganeti/validate-os';
import { chooseRelease, followedText } from '../ganeti/releases';

export interface RunOptions extends InstanceOptions {
  script: string;
  /** --ganeti: the release whose environment to build (default: chooseRelease's). */
  ganeti?: string;
  osDir?: string;
  index?: string;
  oldName?: string;
  reinstall?: boolean;
  debug?: boolean;
  output?: string;
  input?: string;
  printEnv?: boolean;
  logDir?: string;
  json?: boolean;
}

const SCRIPTS = [OS_SCRIPT_CREATE, OS_SCRIPT_CREATE_UNTRUSTED, OS_SCRIPT_IMPORT, OS_SCRIPT_EXPORT, OS_SCRIPT_RENAME, OS_SCRIPT_VERIFY];

/**
 * Run `opts.script` of the definition in `opts.osDir` for the instance the options describe, as
 * a Ganeti node runs it. Prints the environment only with --print-env (with --json inside one
 * document: ok, ganeti, script, environment); with --json one document
 * about the run. Throws UsageError for bad options, UserError for a refused disk or stream, a
 * definition Ganeti refuses, or a failed script (Ganeti's message).
 */
export async function runRun(ctx: Context, opts: RunOptions): Promise<void> {
  const followed = chooseRelease(opts.ganeti);
  const script = opts.script;
  if (!SCRIPTS.includes(script)) {
    throw new UsageError(`unknown script '${script}': use one of ${SCRIPTS.join(', ')}`);
  }
  if (!opts.printEnv && script !== OS_SCRIPT_VERIFY && ctx.uid !== undefined && ctx.uid !== 0) {
    throw new UserError(`${script} runs as root on a Ganeti node, and this is user ${ctx.uid}: run it as root (sudo ganeti-os run ${script} ...), or use --print-env to see its environment`);
  }
  const osDir = definitionDir(ctx, opts.osDir);
  const def = loadValidDefinition(osDir);
  checkScript(def, script);

  if (opts.diskTemplate !== undefined && !['file', 'sharedfile', 'plain'].includes(opts.diskTemplate)) {
    throw new UsageError(`unknown disk template '${opts.diskTemplate}': use file, sharedfile or plain`);
  }
  if (opts.fileDriver !== undefined && !GANETI_DEFAULTS.fileDrivers.includes(opts.fileDriver)) {
    throw new UsageError(`unknown file driver '${opts.fileDriver}': use ${GANETI_DEFAULTS.fileDrivers.join(', ')}`);
  }
  const plans = (opts.disk ?? []).map((d, i) => parseDisk(ctx.cwd, ctx.log, d, i, opts));
  const inst = buildInstance(ctx.log, osForInstance(def), { ...opts, release: followed.release }, plans.map((p) => p.shape));

  try {
    refuseAsValidateOs(def, script, inst.os, inst.osparams, opts.variant === undefined);
  } catch (err) {
    // --print-env only describes: say it, and show the environment anyway.
    if (!opts.printEnv) throw err;
    ctx.log.warn((err as Error).message);
  }

  const isIe = script === OS_SCRIPT_EXPORT || script === OS_SCRIPT_IMPORT;
  let index = 0;
  if (isIe) {
    index = parseIndex(opts.index, inst.disks.length, script);
    if (!opts.printEnv && script === OS_SCRIPT_EXPORT && !opts.output) throw new UsageError('export needs --output FILE (where the stream goes; - for standard output)');
    if (!opts.printEnv && script === OS_SCRIPT_IMPORT && !opts.input) throw new UsageError('import needs --input FILE (the stream to import; - for standard input)');
    if (opts.debug) ctx.log.warn('Ganeti runs export/import with DEBUG_LEVEL=0 whatever the debug level; so does run');
  } else if (opts.index !== undefined) {
    throw new UsageError('--index is for export and import only');
  }
  if (opts.output && script !== OS_SCRIPT_EXPORT) throw new UsageError('--output is for export only');
  if (opts.input && script !== OS_SCRIPT_IMPORT) throw new UsageError('--input is for import only');
  if (opts.output === '-' && opts.json) throw new UsageError('--output - and --json both want standard output: give --output a file');
  if (opts.oldName !== undefined && script !== OS_SCRIPT_RENAME) throw new UsageError('--old-name is for rename only');
  if (opts.reinstall && script !== OS_SCRIPT_CREATE && script !== OS_SCRIPT_CREATE_UNTRUSTED) throw new UsageError('--reinstall is for create only');
  if (script === OS_SCRIPT_VERIFY && opts.debug) ctx.log.warn('Ganeti runs verify with DEBUG_LEVEL=0 whatever the debug level; so does run');

  const req: ScriptRequest = {
    script,
    osDir: def.osDir,
    inst,
    os: osInfo(def),
    debug: opts.debug,
    oldName: opts.oldName,
    reinstall: opts.reinstall,
    index,
    logDir: path.resolve(ctx.cwd, opts.logDir ?? defaultLogDir(ctx)),
    progress: ctx.progress,
  };
  if (opts.printEnv) {
    ctx.log.info(`the environment ${followedText(followed)} gives ${script}`);
    const env = scriptEnvironment(req).env;
    // --json: one document like every --json run (ok, the release followed); alone: the environment.
    const doc = opts.json ? { ok: true, ganeti: followed.release, script, environment: env } : env;
    ctx.out.write(JSON.stringify(doc, null, 2) + '\n');
    return;
  }
  req.stream = isIe ? streamEnd(ctx, script === OS_SCRIPT_EXPORT ? opts.output! : opts.input!, script) : undefined;
  refuseDisksInUse(
    plans.filter((p) => p.createBytes === undefined).map((p) => ({ index: plans.indexOf(p), path: p.shape.path })),
    typeof req.stream === 'string' ? { flag: script === OS_SCRIPT_EXPORT ? '--output' : '--input', path: req.stream, written: script === OS_SCRIPT_EXPORT } : undefined,
    script,
  );

  for (const p of plans) if (p.createBytes !== undefined) createSparse(ctx.log, p.shape.path, p.createBytes);

  ctx.log.info(`running ${script} of ${def.dir} for ${inst.name} as ${followedText(followed)} runs it; log: ${scriptLogFile(req)}`);
  // Ctrl-C or SIGTERM stops the script (SIGTERM to its process group) and waits for it to
  // release what it holds (its EXIT trap), instead of leaving it to finish alone.
  req.signal = ctx.interrupt?.();
  const attached = inst.disks.map((d) => loopDevicesOn(d.path));
  const result = await runOsScript(req);
  // The script's own warnings (a fallback taken, a setting ignored) would otherwise stay in its log.
  const said = scriptWarnings(readFrom(result.log, result.logOffset), script);
  for (const w of said.shown) ctx.log.warn(`${script} said: ${w}`);
  if (said.more) ctx.log.warn(`${script} gave ${said.more} more warning(s): see its log`);
  // A script must release every loop device and mount it made, on every path: say so when not.
  const left = inst.disks.flatMap((d, i) => leftOn(d.path, attached[i]).map((why) => `disk ${i} (${d.path}): ${why}`));
  for (const l of left) ctx.log.warn(`${script} left ${l}: release it (umount, losetup --detach) before the disk is used again`);
  if (req.signal?.aborted) {
    ctx.log.info(`interrupted: sent SIGTERM to ${script}, which ended with ${result.signal ? `signal ${result.signal}` : `exit code ${result.exitCode}`}${left.length ? '' : ', its disks released'}; its log: ${result.log}`);
    throw new SilentFailure(130);
  }

  const summary: Record<string, unknown> = { ganeti: followed.release, script, ok: result.ok, exitCode: result.exitCode, signal: result.signal, log: result.log, left };
  if (isIe) {
    summary.bytes = result.bytes;
    summary.announcedBytes = result.announced ?? null;
  }
  if (isIe && result.announced !== undefined) {
    ctx.log.info(`${script} announced ${result.announced} bytes on EXP_SIZE_FD (${bytesToMebibyte(result.announced)} MiB); ${result.bytes} bytes went through`);
  } else if (isIe && result.announcedRaw) {
    ctx.log.warn(`${script} wrote ${JSON.stringify(result.announcedRaw)} on EXP_SIZE_FD, which Ganeti cannot read as a number of bytes`);
  } else if (isIe) {
    ctx.log.info(`${script} announced no size on EXP_SIZE_FD; ${result.bytes} bytes went through`);
  }
  if (result.ok && (script === OS_SCRIPT_CREATE || script === OS_SCRIPT_CREATE_UNTRUSTED || (script === OS_SCRIPT_IMPORT && index === 0)) && inst.disks.length) {
    const installed = describeInstalled(inst);
    summary.installed = installed;
    if (!opts.json) ctx.log.info(`installed on disk 0: ${installed.summary}`);
  }
  if (opts.json) ctx.out.write(JSON.stringify(summary, null, 2) + '\n');
  if (!result.ok) throw scriptFailure(result);
  if (!opts.json) ctx.log.info(`${script} succeeded`);
}

/**
 * The warnings a script wrote to its log ("SCRIPT: warning: TEXT" lines, as the templates'
 * gos_log words them), each once: at most `max` (5) of them, and how many more there were.
 */
export function scriptWarnings(log: string, script: string, max = 5): { shown: string[]; more: number } {
  const prefix = `${script}: warning: `;
  const all = [...new Set(log.split('\n').filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length).trim()))];
  return { shown: all.slice(0, max), more: Math.max(0, all.length - max) };
}

/** `-` is standard input/output; a path is resolved from the working directory. */
function streamEnd(ctx: Context, raw: string, script: string): StreamEnd {
  if (raw !== '-') return path.resolve(ctx.cwd, raw);
  if (!ctx.stdio) throw new UsageError(`${script}: no standard ${script === OS_SCRIPT_EXPORT ? 'output' : 'input'} here: give a file`);
  return script === OS_SCRIPT_EXPORT ? ctx.stdio.output : ctx.stdio.input;
}

/**
 * Ganeti runs ValidateOS on every node before it runs verify, and before create (instance add,
 * reinstall) and import (gnt-backup import adds an instance): when its checks fail, or crash as
 * _CheckOSPList does on a blank parameters.list line (IndexError), Ganeti ends there, and so
 * does run. `forceVariant`: no --variant given (run then behaves as --force-variant).
 */
function refuseAsValidateOs(def: OsDefinition, script: string, osName: string, osparams: [string, string][], forceVariant: boolean): void {
  if (![OS_SCRIPT_VERIFY, OS_SCRIPT_CREATE, OS_SCRIPT_CREATE_UNTRUSTED, OS_SCRIPT_IMPORT].includes(script)) return;
  const refused = validateOsChecks(
    { ...osInfo(def), parameterFields: def.parameterFields },
    osName,
    osparams.map(([k]) => k),
    forceVariant,
  );
  if (!refused) return;
  if (refused.crash) {
    const blank = def.parameterFields.findIndex((f) => f.length === 0);
    throw new UserError(`Ganeti's ValidateOS raises ${refused.crash} (${refused.error}) before it runs anything: ${script} never runs, and every instance add, reinstall or OS parameter change with ${def.name} fails`, [
      `parameters.list line ${blank + 1} is blank: _CheckOSPList reads the first word of every line (ganeti-os validate ${def.dir} says more)`,
    ]);
  }
  throw new UserError(refused.error);
}

function checkScript(def: OsDefinition, script: string): void {
  if (script === OS_SCRIPT_VERIFY && (def.maxApiVersion ?? 0) < OS_API_V20) {
    throw new UserError(`Ganeti never runs 'verify' for this OS: ${def.name} lists API ${def.apiVersions?.join(', ')} and verify needs 20`);
  }
  if (def.files[script]?.kind !== 'file') {
    if (script === OS_SCRIPT_CREATE && def.files[OS_SCRIPT_CREATE_UNTRUSTED]?.kind === 'file') {
      throw new UserError(`${def.name} has only 'create_untrusted' (Ganeti runs it in a helper VM): run create_untrusted to test it`);
    }
    throw new UserError(`${def.name} has no '${script}' script`);
  }
}

function parseIndex(raw: string | undefined, count: number, script: string): number {
  if (count === 0) throw new UsageError(`${script} needs a disk: give --disk PATH[:SIZE]`);
  if (raw === undefined) return 0;
  if (!/^\d+$/.test(raw)) throw new UsageError(`--index must be a disk number, not '${raw}'`);
  const i = Number(raw);
  if (i >= count) throw new UsageError(`--index ${i}: the instance has ${count} disk(s) (0-${count - 1})`);
  return i;
}
