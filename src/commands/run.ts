/**
 * `ganeti-os run <script>`: run one script of a definition as Ganeti 3.0 runs it, with the
 * environment it builds for an equivalent instance on a freshly initialised cluster
 * (backend.InstanceOsAdd, RunRenameInstance, ValidateOS, and the import-export daemon for
 * export/import). Never creates or changes anything but the given disks, the export output and
 * its own log.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../context';
import { UsageError, UserError } from '../errors';
import {
  DiskShape,
  EnvMap,
  InstanceShape,
  NetworkShape,
  NicShape,
  OsInfo,
  defaultMac,
  exportEnvironment,
  fillParams,
  importEnvironment,
  importExportCommandEnv,
  newUuid,
  osCoreEnv,
  osEnvironment,
  parseUnit,
  pyFloatStr,
} from '../ganeti/environment';
import { GANETI_DEFAULTS } from '../ganeti/defaults';
import {
  OS_API_V20,
  OS_SCRIPT_CREATE,
  OS_SCRIPT_CREATE_UNTRUSTED,
  OS_SCRIPT_EXPORT,
  OS_SCRIPT_IMPORT,
  OS_SCRIPT_RENAME,
  OS_SCRIPT_VERIFY,
  pyIntParse,
} from '../ganeti/rules';
import { OsDefinition, readDefinition, requireDirectory } from '../definition/model';

export interface RunOptions {
  script: string;
  osDir?: string;
  disk?: string[];
  diskTemplate?: string;
  fileDriver?: string;
  name?: string;
  variant?: string;
  nic?: string[];
  network?: string[];
  osparam?: string[];
  osparamPrivate?: string[];
  hvparam?: string[];
  beparam?: string[];
  hypervisor?: string;
  index?: string;
  oldName?: string;
  reinstall?: boolean;
  debug?: boolean;
  output?: string;
  input?: string;
  printEnv?: boolean;
  logDir?: string;
  uuid?: string;
  ctime?: string;
  mtime?: string;
  primaryNode?: string;
  secondaryNode?: string[];
  json?: boolean;
}

const SCRIPTS = [OS_SCRIPT_CREATE, OS_SCRIPT_CREATE_UNTRUSTED, OS_SCRIPT_IMPORT, OS_SCRIPT_EXPORT, OS_SCRIPT_RENAME, OS_SCRIPT_VERIFY];
const MIB = 1024 * 1024;
/** The descriptor the size pipe gets in the script (the one Ganeti's import-export daemon ends up with, 4). */
const EXP_SIZE_FD = 4;
const DEFAULT_INSTANCE = 'instance1.example.com';
const DEFAULT_NODE = 'node1.example.com';

/** A disk as given on the command line, before anything is created. */
interface DiskPlan {
  shape: DiskShape;
  /** Create this sparse file (bytes) before running. */
  createBytes?: number;
}

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
  const plans = (opts.disk ?? []).map((d, i) => parseDisk(ctx, d, i, opts));
  const inst = buildInstance(ctx, def, opts, plans.map((p) => p.shape));
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

  for (const p of plans) if (p.createBytes !== undefined) createSparse(ctx, p.shape.path, p.createBytes);

  const logDir = path.resolve(ctx.cwd, opts.logDir ?? defaultLogDir(ctx));
  try {
    fs.mkdirSync(logDir, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new UserError(`cannot create the log directory ${logDir}: ${(err as Error).message}`);
  }
  const logFile = path.join(logDir, logName(script, inst, opts.oldName ?? inst.name, index));
  ctx.log.info(`running ${script} of ${def.dir} for ${inst.name}; log: ${logFile}`);

  const result = isIe
    ? await runImportExport(ctx, script, def, env, logFile, script === OS_SCRIPT_EXPORT ? opts.output! : opts.input!)
    : await runPlain(def, script, args, env, logFile);

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

function keyValues(raw: string, what: string, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`malformed ${what} '${raw}': expected key=value[,key=value...] (keys: ${allowed.join(', ')})`);
    const k = part.slice(0, eq);
    if (!allowed.includes(k)) throw new UsageError(`unknown key '${k}' in ${what} '${raw}' (keys: ${allowed.join(', ')})`);
    if (out.has(k)) throw new UsageError(`key '${k}' given twice in ${what} '${raw}'`);
    out.set(k, part.slice(eq + 1));
  }
  return out;
}

function keyValue(raw: string, what: string): [string, string] {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new UsageError(`malformed ${what} '${raw}': expected key=value`);
  return [raw.slice(0, eq), raw.slice(eq + 1)];
}

/**
 * A disk size: a bare integer is MiB, taken as is (as the opcode/RAPI takes it); with a unit
 * (512M, 2G, 1.5T) it is utils.ParseUnit's, rounded up to a multiple of 4 MiB as gnt-instance does.
 */
function parseSize(raw: string, what: string): number {
  if (/^\d+$/.test(raw)) return Number(raw);
  const r = parseUnit(raw);
  if (typeof r !== 'number') throw new UsageError(`invalid size '${raw}' for ${what}: ${r.error} (MiB, or a number with M, G or T)`);
  return r;
}

/** The size Ganeti would record for an existing disk: file size or block device size, in MiB (rounded down). */
function existingSizeMiB(st: fs.Stats): number {
  if (st.isBlockDevice()) {
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 4096) & 0xfff00) >>> 0);
    try {
      const sectors = Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim());
      return Math.floor((sectors * 512) / MIB);
    } catch {
      return 0;
    }
  }
  return Math.floor(st.size / MIB);
}

const DISK_KEYS = ['path', 'size', 'template', 'name', 'mode', 'uuid'];

function parseDisk(ctx: Context, raw: string, index: number, opts: RunOptions): DiskPlan {
  let p: string;
  let sizeRaw: string | undefined;
  let template = opts.diskTemplate ?? 'file';
  let name: string | undefined;
  let mode: string = GANETI_DEFAULTS.diskRdwr;
  let uuid: string | undefined;
  if (raw.startsWith('path=')) {
    const kv = keyValues(raw, '--disk', DISK_KEYS);
    p = kv.get('path')!;
    sizeRaw = kv.get('size');
    template = kv.get('template') ?? template;
    name = kv.get('name') || undefined;
    mode = kv.get('mode') ?? mode;
    uuid = kv.get('uuid');
  } else {
    const colon = raw.lastIndexOf(':');
    p = raw;
    if (colon > 0 && typeof parseUnit(raw.slice(colon + 1)) === 'number') {
      p = raw.slice(0, colon);
      sizeRaw = raw.slice(colon + 1);
    }
  }
  if (!p) throw new UsageError(`--disk '${raw}': no path`);
  if (!['file', 'sharedfile', 'plain'].includes(template)) {
    throw new UsageError(`unknown disk template '${template}': use file, sharedfile or plain`);
  }
  if (mode !== GANETI_DEFAULTS.diskRdwr && mode !== GANETI_DEFAULTS.diskRdonly) {
    throw new UsageError(`disk mode '${mode}': use ${GANETI_DEFAULTS.diskRdwr} or ${GANETI_DEFAULTS.diskRdonly}`);
  }
  const fileDriver = opts.fileDriver ?? GANETI_DEFAULTS.defaultFileDriver;
  if (!GANETI_DEFAULTS.fileDrivers.includes(fileDriver)) {
    throw new UsageError(`unknown file driver '${fileDriver}': use ${GANETI_DEFAULTS.fileDrivers.join(', ')}`);
  }
  const abs = path.resolve(ctx.cwd, p);
  const sizeGiven = sizeRaw !== undefined ? parseSize(sizeRaw, `disk ${index}`) : undefined;
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`disk ${index}: ${abs}: ${(err as Error).message}`);
  }
  const shape = (size: number): DiskShape => ({
    path: abs,
    size,
    template: template as DiskShape['template'],
    fileDriver,
    mode,
    uuid: uuid ?? newUuid(),
    ...(name ? { name } : {}),
  });
  if (!st) {
    if (sizeGiven === undefined) {
      throw new UserError(`disk ${index}: ${abs} does not exist; give a size to create it (--disk ${p}:SIZE, e.g. ${p}:2G)`);
    }
    if (!fs.existsSync(path.dirname(abs))) throw new UserError(`disk ${index}: directory ${path.dirname(abs)} does not exist`);
    if (template === 'plain') ctx.log.warn(`disk ${index}: plain disks are block devices; ${abs} will be a regular file`);
    return { shape: shape(sizeGiven), createBytes: sizeGiven * MIB };
  }
  if (st.isDirectory()) throw new UserError(`disk ${index}: ${abs} is a directory`);
  if (!st.isFile() && !st.isBlockDevice()) throw new UserError(`disk ${index}: ${abs} is neither a regular file nor a block device`);
  if (template === 'plain' && !st.isBlockDevice()) ctx.log.warn(`disk ${index}: plain disks are block devices on a node, ${abs} is a regular file`);
  return { shape: shape(sizeGiven ?? existingSizeMiB(st)) };
}

const NIC_KEYS = ['mac', 'ip', 'mode', 'link', 'name', 'vlan', 'network', 'uuid'];
const NETWORK_KEYS = ['name', 'uuid', 'subnet', 'gateway', 'subnet6', 'gateway6', 'mac-prefix', 'tags'];

function parseNetworks(raws: string[]): Map<string, NetworkShape> {
  const out = new Map<string, NetworkShape>();
  for (const raw of raws) {
    const kv = keyValues(raw, '--network', NETWORK_KEYS);
    const name = kv.get('name');
    if (!name) throw new UsageError(`--network '${raw}' needs name=`);
    const n: NetworkShape = { name, uuid: kv.get('uuid') || newUuid(), tags: (kv.get('tags') ?? '').split(':').filter(Boolean) };
    if (kv.get('subnet')) n.subnet = kv.get('subnet');
    if (kv.get('gateway')) n.gateway = kv.get('gateway');
    if (kv.get('subnet6')) n.subnet6 = kv.get('subnet6');
    if (kv.get('gateway6')) n.gateway6 = kv.get('gateway6');
    if (kv.get('mac-prefix')) n.macPrefix = kv.get('mac-prefix');
    out.set(name, n);
  }
  return out;
}

function parseNic(raw: string, index: number, networks: Map<string, NetworkShape>): NicShape {
  const kv = keyValues(raw, '--nic', NIC_KEYS);
  const mode = kv.get('mode') ?? GANETI_DEFAULTS.nic.mode;
  if (!GANETI_DEFAULTS.nicModes.includes(mode)) throw new UsageError(`--nic '${raw}': mode must be one of ${GANETI_DEFAULTS.nicModes.join(', ')}`);
  let mac = kv.get('mac') ?? defaultMac(index);
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(mac)) throw new UsageError(`--nic '${raw}': invalid MAC address '${mac}'`);
  mac = mac.toLowerCase();
  let ip = kv.get('ip');
  if (ip !== undefined && (ip === '' || ip.toLowerCase() === 'none')) ip = undefined;
  if (ip !== undefined && !net.isIP(ip)) throw new UsageError(`--nic '${raw}': invalid IP address '${ip}'`);
  const nic: NicShape = {
    mac,
    uuid: kv.get('uuid') || newUuid(),
    mode,
    link: kv.get('link') ?? GANETI_DEFAULTS.nic.link,
    vlan: kv.get('vlan') ?? GANETI_DEFAULTS.nic.vlan,
  };
  if (ip) nic.ip = ip;
  if (kv.get('name')) nic.name = kv.get('name');
  const netName = kv.get('network');
  if (netName) nic.network = networks.get(netName) ?? { name: netName, uuid: newUuid(), tags: [] };
  return nic;
}

function buildInstance(ctx: Context, def: OsDefinition, opts: RunOptions, disks: DiskShape[]): InstanceShape {
  const hypervisor = opts.hypervisor ?? GANETI_DEFAULTS.defaultHypervisor;
  if (!GANETI_DEFAULTS.hv[hypervisor]) {
    throw new UsageError(`unknown hypervisor '${hypervisor}': use one of ${Object.keys(GANETI_DEFAULTS.hv).join(', ')}`);
  }
  const typed = (raws: string[] | undefined, what: string, defaults: typeof GANETI_DEFAULTS.be) => {
    const pairs = (raws ?? []).map((r) => keyValue(r, `--${what}param`));
    try {
      return fillParams(defaults, pairs, what === 'hv' ? `${hypervisor} hypervisor` : 'backend');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const hvparams = typed(opts.hvparam, 'hv', GANETI_DEFAULTS.hv[hypervisor]);
  const beparams = typed(opts.beparam, 'be', GANETI_DEFAULTS.be);

  // FillDict(instance.osparams, instance.osparams_private.Unprivate())
  const merged = new Map<string, string>();
  for (const [flag, list] of [['--osparam', opts.osparam], ['--osparam-private', opts.osparamPrivate]] as const) {
    const seen = new Set<string>();
    for (const raw of list ?? []) {
      const [k, v] = keyValue(raw, flag);
      if (seen.has(k)) throw new UsageError(`${flag} ${k} given twice`);
      seen.add(k);
      merged.set(k, v);
    }
  }
  const osparams: [string, string][] = [...merged.entries()];
  // ValidateOS (API 20): _CheckOSPList.
  if ((def.maxApiVersion ?? 0) >= OS_API_V20) {
    const supported = new Set(def.parameterFields.map((f) => f[0]));
    const delta = osparams.map(([k]) => k).filter((k) => !supported.has(k));
    if (delta.length) throw new UserError(`The following parameters are not supported by the OS ${def.name}: ${delta.join(', ')}`);
  }

  // _CheckOSVariant, for an explicit variant (without one, Ganeti's --force-variant behaviour).
  let osName = def.name;
  if (opts.variant !== undefined) {
    if (!def.variants.length) throw new UserError(`OS '${def.name}' does not support variants ('${opts.variant}' passed)`);
    if (!def.variants.includes(opts.variant)) throw new UserError(`OS '${def.name}' does not support variant '${opts.variant}'`);
    osName = `${def.name}+${opts.variant}`;
  } else if (def.variants.length) {
    ctx.log.info(`no --variant: OS_VARIANT is the first listed, '${def.variants[0]}' (as with gnt-instance add --force-variant)`);
  }

  const networks = parseNetworks(opts.network ?? []);
  const nics = (opts.nic ?? []).map((n, i) => parseNic(n, i, networks));
  const now = pyFloatStr(Date.now() / 1000);
  const time = (raw: string | undefined, what: string) => {
    if (raw === undefined) return now;
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${what} must be a number of seconds since the epoch, not '${raw}'`);
    return pyFloatStr(v);
  };
  const name = opts.name ?? DEFAULT_INSTANCE;
  if (!name) throw new UsageError('--name must not be empty');
  return {
    name,
    os: osName,
    hypervisor,
    hvparams,
    beparams,
    osparams,
    disks,
    nics,
    uuid: opts.uuid ?? newUuid(),
    ctime: time(opts.ctime, 'ctime'),
    mtime: time(opts.mtime, 'mtime'),
    primaryNode: opts.primaryNode ?? DEFAULT_NODE,
    secondaryNodes: opts.secondaryNode ?? [],
  };
}

function createSparse(ctx: Context, p: string, bytes: number): void {
  let fd: number;
  try {
    fd = fs.openSync(p, 'wx', 0o600);
  } catch (err) {
    throw new UserError(`cannot create disk ${p}: ${(err as Error).message}`);
  }
  try {
    fs.ftruncateSync(fd, bytes);
  } finally {
    fs.closeSync(fd);
  }
  ctx.log.info(`created ${p}: sparse, ${bytes / MIB} MiB`);
}

function defaultLogDir(ctx: Context): string {
  const state = ctx.env.XDG_STATE_HOME || path.join(ctx.env.HOME || os.homedir(), '.local', 'state');
  return path.join(state, 'ganeti-os', 'log');
}

/** utils.TimestampForFilename: local time, %Y-%m-%d_%H_%M_%S. */
function timestampForFilename(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}_${p(d.getMinutes())}_${p(d.getSeconds())}`;
}

/** backend._InstanceLogName(kind, os, instance, component), with '/' kept out of the name. */
function logName(script: string, inst: InstanceShape, oldName: string, index: number): string {
  const safe = (s: string) => s.replace(/\//g, '_');
  const ts = timestampForFilename();
  switch (script) {
    case OS_SCRIPT_RENAME:
      return safe(`rename-${inst.os}-${oldName}-${inst.name}-${ts}.log`);
    case OS_SCRIPT_EXPORT:
    case OS_SCRIPT_IMPORT:
      return safe(`${script}-${inst.os}-${inst.name}-${index}-${ts}.log`);
    case OS_SCRIPT_VERIFY:
      return safe(`verify-${inst.os}-${ts}.log`);
    default:
      return safe(`add-${inst.os}-${inst.name}-${ts}.log`);
  }
}

interface RunResult {
  code: number | null;
  signal: number | null;
  bytes?: number;
  announced?: number;
  announcedRaw?: string;
}

const signalNumber = (s: NodeJS.Signals | null): number | null => (s ? (os.constants.signals[s] ?? null) : null);

/**
 * Whether execve() takes the file: a '#!' script or an ELF binary. Node's spawn falls back to
 * /bin/sh on ENOEXEC (execvp); Python's subprocess, and so Ganeti, does not.
 */
function kernelExecutable(p: string): boolean {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const b = Buffer.alloc(4);
      const n = fs.readSync(fd, b, 0, 4, 0);
      return (n >= 2 && b[0] === 0x23 && b[1] === 0x21) || (n === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return true; // unreadable: let the kernel decide (and report)
  }
}

/** utils.RunCmd(cmd, env, cwd=os dir, output=logfile, reset_env=True): stdin a closed pipe. */
function runPlain(def: OsDefinition, script: string, args: string[], env: EnvMap, logFile: string): Promise<RunResult> {
  const file = path.join(def.osDir, script);
  const log = fs.openSync(logFile, 'a', 0o640); // RunCmd opens the log before it forks
  if (!kernelExecutable(file)) {
    fs.closeSync(log);
    // subprocess.Popen raises OSError(ENOEXEC); RunCmd lets it through and the RPC fails with it.
    throw new UserError(`Ganeti cannot run ${script}: [Errno 8] Exec format error: '${file}'`, [
      `${file} has no '#!' line: the kernel refuses to execute it (only a shell would run it as a script)`,
    ]);
  }
  let closed = false;
  const closeLog = () => {
    if (!closed) fs.closeSync(log);
    closed = true;
  };
  return new Promise<RunResult>((resolve, reject) => {
    // stdin a pipe that is already closed, as RunCmd gives it (a Node 'pipe' would be a socket,
    // which makes bash read ~/.bashrc); `unset PWD` keeps sh from adding it to the environment.
    const child = spawn('/bin/sh', ['-c', 'unset PWD; : | exec "$0" "$@"', file, ...args], { cwd: def.osDir, env, stdio: ['ignore', log, log] });
    child.on('error', (err) => {
      closeLog();
      reject(new UserError(`cannot run ${file}: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      closeLog();
      resolve({ code, signal: signalNumber(sig) });
    });
  });
}

const shellQuote = (s: string) => (/^[-\w.:,+/@%=]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * As the import-export daemon runs them: `bash -o errexit -o pipefail -c "( cd OSDIR && SCRIPT; )"`,
 * EXP_SIZE_FD a pipe whose first line is the predicted size in bytes.
 */
function runImportExport(
  ctx: Context,
  script: string,
  def: OsDefinition,
  env: EnvMap,
  logFile: string,
  file: string,
): Promise<RunResult> {
  const isExport = script === OS_SCRIPT_EXPORT;
  const streamPath = path.resolve(ctx.cwd, file);
  let stream: number;
  try {
    stream = isExport ? fs.openSync(streamPath, 'w', 0o640) : fs.openSync(streamPath, 'r');
  } catch (err) {
    throw new UserError(`cannot open ${streamPath}: ${(err as Error).message}`);
  }
  const total = isExport ? undefined : fs.fstatSync(stream).size;
  const log = fs.openSync(logFile, 'a', 0o640);
  // Ganeti's `prefix | ...` / `... | suffix` around the script: real pipes on the script's side
  // (`| cat`, `cat |`); --norc because bash reads ~/.bashrc when its stdin is a socket.
  const scriptCmd = `( cd ${shellQuote(def.osDir)} && ${shellQuote(path.join(def.osDir, script))}; )`;
  const cmd = isExport ? `${scriptCmd} | cat` : `cat | ${scriptCmd}`;
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn('bash', ['--norc', '-o', 'errexit', '-o', 'pipefail', '-c', cmd], {
      cwd: '/',
      env,
      stdio: [isExport ? 'ignore' : 'pipe', isExport ? 'pipe' : log, log, 'ignore', 'pipe'],
    });
    let bytes = 0;
    let announcedRaw = '';
    let expected: number | undefined;
    let lastDraw = 0;
    const draw = (force = false) => {
      if (!ctx.progress) return;
      const now = Date.now();
      if (!force && now - lastDraw < 200) return;
      lastDraw = now;
      const of = expected ?? total;
      const pct = of ? ` (${Math.min(100, Math.floor((bytes * 100) / of))}%)` : '';
      ctx.progress(`${script} disk/${env.EXPORT_INDEX ?? env.IMPORT_INDEX}: ${(bytes / MIB).toFixed(1)} MiB${of ? ` of ${(of / MIB).toFixed(1)} MiB` : ''}${pct}`);
    };
    const sizePipe = child.stdio[EXP_SIZE_FD] as NodeJS.ReadableStream;
    sizePipe.setEncoding('utf8');
    sizePipe.on('data', (chunk: string) => {
      announcedRaw += chunk;
      const line = announcedRaw.split('\n')[0];
      const r = pyIntParse(line);
      if ('value' in r) expected = Number(r.value);
    });
    sizePipe.on('error', () => undefined);
    let failed: Error | undefined;
    let input: fs.ReadStream | undefined;
    if (isExport) {
      child.stdout!.on('data', (chunk: Buffer) => {
        try {
          fs.writeSync(stream, chunk);
        } catch (err) {
          failed = err as Error;
          child.kill('SIGTERM');
        }
        bytes += chunk.length;
        draw();
      });
    } else {
      // The read stream owns the stream file's descriptor: it closes it once no read is pending.
      input = fs.createReadStream('', { fd: stream, autoClose: true });
      input.on('error', () => undefined);
      input.on('data', (chunk) => {
        bytes += chunk.length;
        draw();
      });
      input.pipe(child.stdin!);
      child.stdin!.on('error', () => {
        // cat died (the script stopped reading): bash's pipefail reports it.
        input?.unpipe();
        input?.pause();
      });
    }
    child.on('error', (err) => reject(new UserError(`cannot run bash: ${err.message}`)));
    child.on('close', (code, sig) => {
      if (ctx.progress) {
        draw(true);
        ctx.progress('');
      }
      if (input) input.destroy();
      for (const fd of input ? [log] : [stream, log]) {
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
      }
      if (failed) return reject(new UserError(`writing ${streamPath}: ${failed.message}`));
      const line = announcedRaw.split('\n')[0];
      const parsed = line ? pyIntParse(line) : undefined;
      resolve({
        code,
        signal: signalNumber(sig),
        bytes,
        announced: parsed && 'value' in parsed ? Number(parsed.value) : undefined,
        announcedRaw: announcedRaw || undefined,
      });
    });
  });
}

/** utils.BytesToMebibyte: rounded up. */
function bytesToMebibyte(b: number): number {
  return Math.ceil(b / MIB);
}

function readSafe(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** utils.TailFile(name, 20) + SafeEncode: the last lines of the last 4 KiB. */
function tailFile(p: string, lines: number): string[] {
  let buf: Buffer;
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(0, size - 4096);
      buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  const rows = buf.toString('utf8').split(/\r\n|[\n\r\u000b\u000c\u001c\u001d\u001e\u0085\u2028\u2029]/);
  if (rows.length && rows[rows.length - 1] === '') rows.pop();
  return rows.slice(-lines).map(safeEncode);
}

/** utils.SafeEncode. */
function safeEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += "\\'r";
    else if (c >= 127) out += c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : c < 0x10000 ? `\\u${c.toString(16).padStart(4, '0')}` : `\\U${c.toString(16).padStart(8, '0')}`;
    else if (c < 32) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}
