/**
 * `ganeti-os run <script>`: run one script of a definition as Ganeti 3.0 runs it, with the
 * environment it builds for an equivalent instance on a freshly initialised cluster
 * (backend.InstanceOsAdd, RunRenameInstance, ValidateOS, and the import-export daemon for
 * export/import). Never creates or changes anything but the given disks, the export output and
 * its own log.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../context';
import { UsageError, UserError } from '../errors';
import { EnvMap, OsInfo, exportEnvironment, importEnvironment, importExportCommandEnv, osCoreEnv, osEnvironment } from '../ganeti/environment';
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
import { InstanceOptions, OsForInstance, buildInstance, createSparse, parseDisk } from '../ganeti/instance';
import { EXP_SIZE_FD, bytesToMebibyte, defaultLogDir, logName, readSafe, runImportExport, runPlain, tailFile } from '../ganeti/runner';
import { OsDefinition, readDefinition, requireDirectory } from '../definition/model';

export interface RunOptions extends InstanceOptions {
  script: string;
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
export async function runRun(ctx: Context, opts: RunOptions): Promise<void> {
  const script = opts.script;
  if (!SCRIPTS.includes(script)) {
    throw new UsageError(`unknown script '${script}': use one of ${SCRIPTS.join(', ')}`);
  }
  const osDir = path.resolve(ctx.cwd, opts.osDir ?? '.');
  const def = loadDefinition(osDir);
  checkScript(def, script);

  if (opts.diskTemplate !== undefined && !['file', 'sharedfile', 'plain'].includes(opts.diskTemplate)) {
    throw new UsageError(`unknown disk template '${opts.diskTemplate}': use file, sharedfile or plain`);
  }
  if (opts.fileDriver !== undefined && !GANETI_DEFAULTS.fileDrivers.includes(opts.fileDriver)) {
    throw new UsageError(`unknown file driver '${opts.fileDriver}': use ${GANETI_DEFAULTS.fileDrivers.join(', ')}`);
  }
  const plans = (opts.disk ?? []).map((d, i) => parseDisk(ctx.cwd, ctx.log, d, i, opts));
  const inst = buildInstance(ctx.log, osForInstance(def), opts, plans.map((p) => p.shape));
  const osInfo: OsInfo = { name: def.name, apiVersions: def.apiVersions ?? [], variants: def.variants };
  const debug = opts.debug ? 1 : 0;

  const isIe = script === OS_SCRIPT_EXPORT || script === OS_SCRIPT_IMPORT;
  let index = 0;
  if (isIe) {
    index = parseIndex(opts.index, inst.disks.length, script);
    if (!opts.printEnv && script === OS_SCRIPT_EXPORT && !opts.output) throw new UsageError('export needs --output FILE (where the stream goes)');
    if (!opts.printEnv && script === OS_SCRIPT_IMPORT && !opts.input) throw new UsageError('import needs --input FILE (the stream to import)');
    if (opts.debug) ctx.log.warn('Ganeti runs export/import with DEBUG_LEVEL=0 whatever the debug level; so does run');
  } else if (opts.index !== undefined) {
    throw new UsageError('--index is for export and import only');
  }
  if (opts.output && script !== OS_SCRIPT_EXPORT) throw new UsageError('--output is for export only');
  if (opts.input && script !== OS_SCRIPT_IMPORT) throw new UsageError('--input is for import only');
  if (opts.oldName !== undefined && script !== OS_SCRIPT_RENAME) throw new UsageError('--old-name is for rename only');
  if (opts.reinstall && script !== OS_SCRIPT_CREATE && script !== OS_SCRIPT_CREATE_UNTRUSTED) throw new UsageError('--reinstall is for create only');

  let env: EnvMap;
  const args: string[] = [];
  if (script === OS_SCRIPT_VERIFY) {
    // ValidateOS: OSCoreEnv(osname, os, osparams) with the default debug level 0.
    env = osCoreEnv(inst.os, osInfo, inst.osparams, 0);
    args.push('parameters');
    if (opts.debug) ctx.log.warn('Ganeti runs verify with DEBUG_LEVEL=0 whatever the debug level; so does run');
  } else if (script === OS_SCRIPT_EXPORT) {
    env = importExportCommandEnv(exportEnvironment(inst, osInfo, index), EXP_SIZE_FD);
  } else if (script === OS_SCRIPT_IMPORT) {
    env = importExportCommandEnv(importEnvironment(inst, osInfo, index), EXP_SIZE_FD);
  } else {
    env = osEnvironment(inst, osInfo, debug);
    if (script === OS_SCRIPT_RENAME) env.OLD_INSTANCE_NAME = opts.oldName ?? inst.name;
    else if (opts.reinstall) env.INSTANCE_REINSTALL = '1';
  }

  if (opts.printEnv) {
    ctx.out.write(JSON.stringify(env, null, 2) + '\n');
    return;
  }

  for (const p of plans) if (p.createBytes !== undefined) createSparse(ctx.log, p.shape.path, p.createBytes);

  const logDir = path.resolve(ctx.cwd, opts.logDir ?? defaultLogDir(ctx));
  try {
    fs.mkdirSync(logDir, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new UserError(`cannot create the log directory ${logDir}: ${(err as Error).message}`);
  }
  const logFile = path.join(logDir, logName(script, inst, opts.oldName ?? inst.name, index));
  ctx.log.info(`running ${script} of ${def.dir} for ${inst.name}; log: ${logFile}`);

  const result = isIe
    ? await runImportExport(ctx, script, def.osDir, env, logFile, script === OS_SCRIPT_EXPORT ? opts.output! : opts.input!)
    : await runPlain(def.osDir, script, args, env, logFile);

  const failReason = result.signal ? `terminated by signal ${result.signal}` : `exited with exit code ${result.code}`;
  const ok = result.code === 0 && !result.signal;
  const summary: Record<string, unknown> = { script, ok, exitCode: result.code, signal: result.signal, log: logFile };
  if (isIe) {
    summary.bytes = result.bytes;
    summary.announcedBytes = result.announced ?? null;
  }
  if (opts.json) ctx.out.write(JSON.stringify(summary, null, 2) + '\n');
  if (isIe && result.announced !== undefined) {
    ctx.log.info(`${script} announced ${result.announced} bytes on EXP_SIZE_FD (${bytesToMebibyte(result.announced)} MiB); ${result.bytes} bytes went through`);
  } else if (isIe && result.announcedRaw) {
    ctx.log.warn(`${script} wrote ${JSON.stringify(result.announcedRaw)} on EXP_SIZE_FD, which Ganeti cannot read as a number of bytes`);
  } else if (isIe) {
    ctx.log.info(`${script} announced no size on EXP_SIZE_FD; ${result.bytes} bytes went through`);
  }
  if (!ok) {
    const tail = tailFile(logFile, 20);
    if (script === OS_SCRIPT_VERIFY) {
      throw new UserError(`OS validation script failed (${failReason}), output: ${readSafe(logFile)}`);
    }
    const what = script === OS_SCRIPT_RENAME ? 'rename' : script === OS_SCRIPT_EXPORT ? 'export' : script === OS_SCRIPT_IMPORT ? 'import' : 'create';
    throw new UserError(`OS ${what} script failed (${failReason}), last lines in the log file:\n${tail.join('\n')}`, [`log: ${logFile}`]);
  }
  if (!opts.json) ctx.log.info(`${script} succeeded`);
}

function loadDefinition(osDir: string): OsDefinition {
  requireDirectory(osDir);
  const def = readDefinition(osDir);
  if (!def.verdict.valid) {
    throw new UserError(`Ganeti refuses this OS definition: ${def.verdict.error}`, [`(ganeti-os validate ${osDir} says more)`]);
  }
  return def;
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


/** What the instance model needs of a definition. */
function osForInstance(def: OsDefinition): OsForInstance {
  return { name: def.name, maxApiVersion: def.maxApiVersion ?? 0, variants: def.variants, parameters: def.parameterFields.map((f) => f[0]) };
}
