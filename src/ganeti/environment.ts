/**
 * The environment Ganeti gives OS scripts, built as backend.OSCoreEnv, OSEnvironment and
 * _GetImportExportIoCommand build it (the same code in 3.0 and 3.1: see rules.ts), for an
 * instance on a freshly initialised cluster with Ganeti's default settings (defaults.ts,
 * generated from each release itself; the instance's hvparams carry its release's defaults).
 */
import { randomUUID } from 'node:crypto';
import { GANETI_DEFAULTS, GanetiParamDefault } from './defaults';
import { OS_API_V15, OS_API_VERSIONS, paramEnvName, pyIntParse } from './rules';

export type EnvMap = Record<string, string>;

/** What OSCoreEnv needs of an OS (objects.OS). */
export interface OsInfo {
  name: string;
  apiVersions: number[];
  variants: string[];
}

export interface NetworkShape {
  name: string;
  uuid: string;
  subnet?: string;
  gateway?: string;
  subnet6?: string;
  gateway6?: string;
  macPrefix?: string;
  tags: string[];
}

export interface DiskShape {
  path: string;
  /** MiB. */
  size: number;
  template: 'file' | 'sharedfile' | 'plain';
  /** For file-based templates: logical_id[0] (constants.FD_*). */
  fileDriver: string;
  mode: string;
  uuid: string;
  name?: string;
}

export interface NicShape {
  mac: string;
  uuid: string;
  ip?: string;
  name?: string;
  mode: string;
  link: string;
  vlan: string;
  network?: NetworkShape;
}

export interface InstanceShape {
  name: string;
  /** instance.os: "name" or "name+variant". */
  os: string;
  hypervisor: string;
  /** Filled hypervisor parameters, in Ganeti's order: [key, str(value)]. */
  hvparams: [string, string][];
  beparams: [string, string][];
  osparams: [string, string][];
  disks: DiskShape[];
  nics: NicShape[];
  uuid: string;
  /** str() of the Python float. */
  ctime: string;
  mtime: string;
  primaryNode: string;
  secondaryNodes: string[];
}

/** objects.OS.GetVariant: the part of an OS name after its "+". */
export function osGetVariant(os: string): string {
  const i = os.indexOf('+');
  return i < 0 ? '' : os.slice(i + 1);
}

/** backend.OSCoreEnv. */
export function osCoreEnv(osName: string, os: OsInfo, osparams: [string, string][], debug: number): EnvMap {
  const supported = os.apiVersions.filter((v) => OS_API_VERSIONS.includes(v));
  const api = Math.max(...supported);
  const env: EnvMap = {};
  env.OS_API_VERSION = String(api);
  env.OS_NAME = os.name;
  env.DEBUG_LEVEL = String(debug);
  let variant = '';
  if (api >= OS_API_V15 && os.variants.length) variant = osGetVariant(osName) || os.variants[0];
  env.OS_VARIANT = variant;
  for (const [k, v] of osparams) env[paramEnvName(k)] = v;
  env.PATH = GANETI_DEFAULTS.hooksPath;
  return env;
}

/** Network.HooksDict(prefix). */
function networkHooksDict(n: NetworkShape, prefix: string): EnvMap {
  const r: EnvMap = {
    [`${prefix}NETWORK_NAME`]: n.name,
    [`${prefix}NETWORK_UUID`]: n.uuid,
    [`${prefix}NETWORK_TAGS`]: n.tags.join(' '),
  };
  if (n.subnet) r[`${prefix}NETWORK_SUBNET`] = n.subnet;
  if (n.gateway) r[`${prefix}NETWORK_GATEWAY`] = n.gateway;
  if (n.subnet6) r[`${prefix}NETWORK_SUBNET6`] = n.subnet6;
  if (n.gateway6) r[`${prefix}NETWORK_GATEWAY6`] = n.gateway6;
  if (n.macPrefix) r[`${prefix}NETWORK_MAC_PREFIX`] = n.macPrefix;
  return r;
}

const BLOCK_TEMPLATES = new Set(['plain', 'blockdev', 'ext', 'drbd', 'rbd']);

/** backend.OSEnvironment. */
export function osEnvironment(inst: InstanceShape, os: OsInfo, debug: number): EnvMap {
  const env = osCoreEnv(inst.os, os, inst.osparams, debug);
  env.INSTANCE_NAME = inst.name;
  env.INSTANCE_OS = inst.os;
  env.INSTANCE_UUID = inst.uuid;
  env.INSTANCE_CTIME = inst.ctime;
  env.INSTANCE_MTIME = inst.mtime;
  env.INSTANCE_PRIMARY_NODE = inst.primaryNode;
  env.HYPERVISOR = inst.hypervisor;
  env.DISK_COUNT = String(inst.disks.length);
  env.NIC_COUNT = String(inst.nics.length);
  env.INSTANCE_SECONDARY_NODES = inst.secondaryNodes.join(' ');
  const hv = new Map(inst.hvparams);
  inst.disks.forEach((d, i) => {
    env[`DISK_${i}_ACCESS`] = d.mode;
    env[`DISK_${i}_UUID`] = d.uuid;
    env[`DISK_${i}_SIZE`] = String(d.size);
    if (d.path) env[`DISK_${i}_PATH`] = d.path;
    if (d.name) env[`DISK_${i}_NAME`] = d.name;
    if (hv.has(GANETI_DEFAULTS.hvDiskType)) env[`DISK_${i}_FRONTEND_TYPE`] = hv.get(GANETI_DEFAULTS.hvDiskType)!;
    if (BLOCK_TEMPLATES.has(d.template)) env[`DISK_${i}_BACKEND_TYPE`] = 'block';
    else env[`DISK_${i}_BACKEND_TYPE`] = `file:${d.fileDriver}`;
  });
  inst.nics.forEach((n, i) => {
    env[`NIC_${i}_MAC`] = n.mac;
    env[`NIC_${i}_UUID`] = n.uuid;
    if (n.name) env[`NIC_${i}_NAME`] = n.name;
    if (n.ip) env[`NIC_${i}_IP`] = n.ip;
    env[`NIC_${i}_MODE`] = n.mode;
    if (n.mode === 'bridged') env[`NIC_${i}_BRIDGE`] = n.link;
    if (n.link) env[`NIC_${i}_LINK`] = n.link;
    if (n.network) Object.assign(env, networkHooksDict(n.network, `NIC_${i}_`));
    if (hv.has(GANETI_DEFAULTS.hvNicType)) env[`NIC_${i}_FRONTEND_TYPE`] = hv.get(GANETI_DEFAULTS.hvNicType)!;
  });
  for (const [k, v] of inst.beparams) env[`INSTANCE_BE_${k}`] = v;
  for (const [k, v] of inst.hvparams) env[`INSTANCE_HV_${k}`] = v;
  return env;
}

/** The environment _GetImportExportIoCommand gives the export script (OSEnvironment with debug 0). */
export function exportEnvironment(inst: InstanceShape, os: OsInfo, index: number): EnvMap {
  const env = osEnvironment(inst, os, 0);
  const d = inst.disks[index];
  if (d.path) {
    env.EXPORT_DEVICE = d.path;
    env.EXPORT_DISK_PATH = d.path;
  }
  env.EXPORT_INDEX = String(index);
  return env;
}

/** The environment _GetImportExportIoCommand gives the import script. */
export function importEnvironment(inst: InstanceShape, os: OsInfo, index: number): EnvMap {
  const env = osEnvironment(inst, os, 0);
  const p = env[`DISK_${index}_PATH`];
  if (p !== undefined) {
    env.IMPORT_DEVICE = p;
    env.IMPORT_DISK_PATH = p;
  }
  env.IMPORT_INDEX = String(index);
  return env;
}

/**
 * What the import-export daemon's child gets: the daemon's own environment (PATH, and the
 * LC_ALL=C that utils.StartDaemon's _BuildCmdEnvironment adds) plus Ganeti's, and EXP_SIZE_FD
 * naming the pipe for the predicted size.
 */
export function importExportCommandEnv(env: EnvMap, expSizeFd: number): EnvMap {
  return { PATH: GANETI_DEFAULTS.hooksPath, LC_ALL: 'C', ...env, EXP_SIZE_FD: String(expSizeFd) };
}

/** utils.ParseUnit: a size in MiB, rounded up to a multiple of 4 (Ganeti's disk sizes). */
export function parseUnit(input: string): number | { error: string } {
  const m = /^([.\d]+)\s*([a-zA-Z]+)?$/.exec(input);
  if (!m) return { error: 'Invalid format' };
  let value = Number(m[1]);
  if (!/^(\d+\.?\d*|\.\d+)$/.test(m[1]) || Number.isNaN(value)) return { error: 'Invalid format' };
  const unit = (m[2] ?? 'm').toLowerCase();
  if (['m', 'mb', 'mib'].includes(unit)) {
    // already MiB
  } else if (['g', 'gb', 'gib'].includes(unit)) value *= 1024;
  else if (['t', 'tb', 'tib'].includes(unit)) value *= 1024 * 1024;
  else return { error: `Unknown unit: ${m[2]}` };
  let v = Math.trunc(value);
  if (v < value) v += 1;
  if (v % 4) v += 4 - (v % 4);
  return v;
}

/**
 * utils.ForceDictType for one value given on the command line: the Python value Ganeti stores,
 * as str() shows it in the environment. Throws the TypeEnforcementError message.
 */
export function forceParamType(key: string, raw: string, type: string): string {
  switch (type) {
    case 'string':
    case 'maybe-string':
      return raw;
    case 'bool':
      if (raw === '') return 'False';
      if (raw.toLowerCase() === GANETI_DEFAULTS.valueFalse) return 'False';
      if (raw.toLowerCase() === GANETI_DEFAULTS.valueTrue) return 'True';
      throw new Error(`'${key}' (value ${raw}) is not a valid boolean`);
    case 'int': {
      const r = pyIntParse(raw);
      if ('error' in r) throw new Error(`'${key}' (value ${raw}) is not a valid integer`);
      return r.value.toString();
    }
    case 'size': {
      const r = parseUnit(raw);
      if (typeof r !== 'number') throw new Error(`'${key}' (value ${raw}) is not a valid size. error: ${r.error}`);
      return String(r);
    }
    case 'float': {
      const v = Number(raw.trim());
      if (raw.trim() === '' || Number.isNaN(v)) throw new Error(`'${key}' (value ${raw}) is not a valid float`);
      return pyFloatStr(v);
    }
    default:
      return raw;
  }
}

/** objects.FillDict(defaults, overrides), overrides typed as ForceDictType types them. */
export function fillParams(defaults: readonly GanetiParamDefault[], overrides: [string, string][], what: string): [string, string][] {
  const out = new Map<string, string>(defaults.map((d) => [d.key, d.str]));
  const types = new Map(defaults.map((d) => [d.key, d.type]));
  for (const [k, v] of overrides) {
    const type = types.get(k);
    if (type === undefined) {
      throw new Error(`Unknown parameter '${k}' (${what} parameters: ${defaults.map((d) => d.key).join(', ')})`);
    }
    out.set(k, forceParamType(k, v, type));
  }
  return [...out.entries()];
}

/** str() of a Python float (repr: shortest round trip, always with a '.' or exponent). */
export function pyFloatStr(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-4)) {
    const [m, e] = v.toExponential().split('e');
    const exp = Number(e);
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const s = String(v);
  return s.includes('.') ? s : `${s}.0`;
}

export function newUuid(): string {
  return randomUUID();
}

/** A NIC's MAC on a fresh cluster: the default prefix (aa:00:00) and a per-index suffix. */
export function defaultMac(index: number): string {
  return `${GANETI_DEFAULTS.macPrefix}:00:00:${index.toString(16).padStart(2, '0')}`;
}
