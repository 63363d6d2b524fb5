/**
 * The hypervisor parameters an instance gets: the `release`'s defaults for `hypervisor` (they
 * differ: kvm's disk_discard and vhost_net, xen's xen_cmd gone in 3.1) with the given
 * "name=value" overrides, each converted to its type (utils.ForceDictType). A parameter the
 * hypervisor does not have is refused, as hv_base's CheckParameterSyntax refuses it ("Parameter
 * '%s' is not supported"): the fake hypervisor (hv_fake.py) has only migration_mode, so no
 * kernel_path. Throws UsageError naming the parameter and the hypervisor's parameters.
 */
export function fillHvparams(hypervisor: string, raws: string[] | undefined, release: GanetiRelease): [string, string][] {
  const table = ganetiDefaults(release);
  const defaults = table.hv[hypervisor];
  if (!defaults) throw new UsageError(`unknown hypervisor '${hypervisor}': use one of ${Object.keys(table.hv).join(', ')}`);
  const pairs = (raws ?? []).map((r) => keyValue(r, '--hvparam'));
  try {
    return fillParams(defaults, pairs, `${hypervisor} hypervisor`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // A parameter another release has (xen_cmd, gone in 3.1): say which release it belongs to.
    const known = (key: string, r: GanetiRelease) => !!ganetiDefaults(r).hv[hypervisor]?.some((p) => p.key === key);
    const elsewhere = pairs
      .filter(([k]) => !known(k, release))
      .flatMap(([k]) => GANETI_RELEASES.filter((r) => known(k, r.release)).map((r) => `'${k}' is a parameter of Ganeti ${r.release}'s ${hypervisor} (--ganeti ${r.release}), not of ${release}'s`));
    throw new UsageError([(err as Error).message, ...elsewhere].join('; '));
  }
}

/**
 * The instance `gnt-instance add` would build on a freshly initialised cluster, from
 * command-line style options (disks, NICs, networks, parameters, variant): Ganeti's opcode
 * checks (_CheckOSVariant, _CheckOSPList, ParseUnit, ForceDictType) and its defaults.
 * Shared by `run` and `test`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../context';
import { UsageError, UserError } from '../errors';
import { DiskShape, InstanceShape, NetworkShape, NicShape, defaultMac, fillParams, newUuid, parseUnit, pyFloatStr } from './environment';
import { GANETI_DEFAULTS, ganetiDefaults } from './defaults';
import { GANETI_RELEASES, GanetiRelease } from './releases';
import { OS_API_V20, checkOsVariant } from './rules';
import { blockSectors } from '../system/kernel';

/** What the instance model needs of an OS: its name, API versions, variants, declared parameters. */
export interface OsForInstance {
  name: string;
  maxApiVersion: number;
  variants: string[];
  /** Names from parameters.list. */
  parameters: string[];
}

/** The options that shape an instance (as `gnt-instance add` takes them). */
export interface InstanceOptions {
  /** The Ganeti release whose cluster builds the instance (its defaults); buildInstance needs it. */
  release?: GanetiRelease;
  disk?: string[];
  diskTemplate?: string;
  fileDriver?: string;
  name?: string;
  variant?: string;
  nic?: string[];
  /** Only describe the instance (--print-env): a disk of the wrong kind for its template is a warning, not an error. */
  printEnv?: boolean;
  /** false: no NIC at all (`--no-nics`); otherwise one default NIC when no --nic is given, as gnt-instance add makes. */
  nics?: boolean;
  network?: string[];
  osparam?: string[];
  osparamPrivate?: string[];
  hvparam?: string[];
  beparam?: string[];
  hypervisor?: string;
  uuid?: string;
  ctime?: string;
  mtime?: string;
  primaryNode?: string;
  secondaryNode?: string[];
}

export const MIB = 1024 * 1024;
export const DEFAULT_INSTANCE = 'instance1.example.com';
export const DEFAULT_NODE = 'node1.example.com';

/** A disk as given on the command line, before anything is created. */
export interface DiskPlan {
  shape: DiskShape;
  /** Create this sparse file (bytes) before running. */
  createBytes?: number;
}

export function keyValues(raw: string, what: string, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (raw === '') return out;
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

export function keyValue(raw: string, what: string): [string, string] {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new UsageError(`malformed ${what} '${raw}': expected key=value`);
  return [raw.slice(0, eq), raw.slice(eq + 1)];
}
/**
 * A disk size: a bare integer is MiB, taken as is (as the opcode/RAPI takes it); with a unit
 * (512M, 2G, 1.5T) it is utils.ParseUnit's, rounded up to a multiple of 4 MiB as gnt-instance does.
 */
export function parseSize(raw: string, what: string): number {
  if (/^\d+$/.test(raw)) return Number(raw);
  const r = parseUnit(raw);
  if (typeof r !== 'number') throw new UsageError(`invalid size '${raw}' for ${what}: ${r.error} (MiB, or a number with M, G or T)`);
  return r;
}

/** The size Ganeti would record for an existing disk: file size or block device size, in MiB (rounded down). */
export function existingSizeMiB(st: fs.Stats): number {
  if (st.isBlockDevice()) return Math.floor(((blockSectors(st.rdev) ?? 0) * 512) / MIB);
  return Math.floor(st.size / MIB);
}
const DISK_KEYS = ['path', 'size', 'template', 'name', 'mode', 'uuid'];

/**
 * One --disk argument (PATH[:SIZE] or path=P,size=S,name=N,mode=M,template=T,uuid=U, SIZE in
 * MiB or with a unit) as the disk Ganeti would record; relative paths from `cwd`. Creates
 * nothing. Throws UsageError for malformed input, UserError for a disk that cannot be used.
 */
export function parseDisk(cwd: string, log: Logger, raw: string, index: number, opts: InstanceOptions): DiskPlan {
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
  const abs = path.resolve(cwd, p);
  const refuse = (message: string) => {
    if (!opts.printEnv) throw new UsageError(message);
    log.warn(message);
  };
  const sizeGiven = sizeRaw !== undefined ? parseSize(sizeRaw, `disk ${index}`) : undefined;
  if (sizeGiven === 0) throw new UsageError(`disk ${index}: size 0 in '${raw}': a disk needs at least 1 MiB`);
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
    if (template === 'plain') {
      refuse(`disk ${index}: the plain disk template takes block devices (LVM volumes); ${abs} does not exist and would be a regular file: use --disk-template file`);
    }
    return { shape: shape(sizeGiven), createBytes: sizeGiven * MIB };
  }
  if (st.isDirectory()) throw new UserError(`disk ${index}: ${abs} is a directory`);
  if (!st.isFile() && !st.isBlockDevice()) throw new UserError(`disk ${index}: ${abs} is neither a regular file nor a block device`);
  if (template === 'plain' && !st.isBlockDevice()) {
    refuse(`disk ${index}: the plain disk template takes block devices (LVM volumes); ${abs} is a regular file: use --disk-template file`);
  }
  if (template !== 'plain' && st.isBlockDevice()) {
    refuse(`disk ${index}: ${abs} is a block device, but the ${template} disk template takes regular files (Ganeti would attach it with losetup): use --disk-template plain`);
  }
  const size = sizeGiven ?? existingSizeMiB(st);
  if (size === 0) throw new UserError(`disk ${index}: ${abs} holds less than 1 MiB (${st.isFile() ? `${st.size} bytes` : 'size unknown'}): Ganeti records disks in whole MiB, and a 0 MiB disk cannot hold an instance`);
  return { shape: shape(size) };
}

const NIC_KEYS = ['mac', 'ip', 'mode', 'link', 'name', 'vlan', 'network', 'uuid'];
const NETWORK_KEYS = ['name', 'uuid', 'subnet', 'gateway', 'subnet6', 'gateway6', 'mac-prefix', 'tags'];

export function parseNetworks(raws: string[]): Map<string, NetworkShape> {
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

export function parseNic(raw: string, index: number, networks: Map<string, NetworkShape>): NicShape {
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

/**
 * The instance `gnt-instance add` of Ganeti `opts.release` would build for `opts` with these
 * disks: filled hv/be parameters (that release's defaults), OS parameters checked against the OS (_CheckOSPList), the variant checked
 * (_CheckOSVariant), NICs, times and UUIDs. Throws UsageError / UserError naming the problem.
 */
export function buildInstance(log: Logger, def: OsForInstance, opts: InstanceOptions & { release: GanetiRelease }, disks: DiskShape[]): InstanceShape {
  const table = ganetiDefaults(opts.release);
  const hypervisor = opts.hypervisor ?? table.defaultHypervisor;
  if (!table.hv[hypervisor]) {
    throw new UsageError(`unknown hypervisor '${hypervisor}': use one of ${Object.keys(table.hv).join(', ')}`);
  }
  const typed = (raws: string[] | undefined, what: string, defaults: typeof table.be) => {
    const pairs = (raws ?? []).map((r) => keyValue(r, `--${what}param`));
    try {
      return fillParams(defaults, pairs, what === 'hv' ? `${hypervisor} hypervisor` : 'backend');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const hvparams = fillHvparams(hypervisor, opts.hvparam, opts.release);
  const beparams = typed(opts.beparam, 'be', table.be);

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
  if (def.maxApiVersion >= OS_API_V20) {
    const supported = new Set(def.parameters);
    const delta = osparams.map(([k]) => k).filter((k) => !supported.has(k));
    if (delta.length) throw new UserError(`The following parameters are not supported by the OS ${def.name}: ${delta.join(', ')}`);
  }

  // _CheckOSVariant, for an explicit variant (without one, Ganeti's --force-variant behaviour).
  let osName = def.name;
  if (opts.variant !== undefined) {
    osName = `${def.name}+${opts.variant}`;
    const refused = checkOsVariant(def.name, osName, def.variants);
    if (refused) throw new UserError(refused);
  } else if (def.variants.length) {
    log.info(`no --variant: OS_VARIANT is the first listed, '${def.variants[0]}' (as with gnt-instance add --force-variant)`);
  }

  const networks = parseNetworks(opts.network ?? []);
  if (opts.nics === false && opts.nic?.length) throw new UsageError('--no-nics and --nic exclude each other');
  // gnt-instance add without --net makes one NIC with a generated MAC and the cluster's default mode and link.
  const nicArgs = opts.nic?.length ? opts.nic : opts.nics === false ? [] : [''];
  const nics = nicArgs.map((n, i) => parseNic(n, i, networks));
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

/** Create `p` as a sparse file of `bytes` bytes (never over an existing file); throws UserError. */
export function createSparse(log: Logger, p: string, bytes: number): void {
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
  log.info(`created ${p}: sparse, ${bytes / MIB} MiB`);
}
