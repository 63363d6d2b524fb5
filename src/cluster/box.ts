/**
 * The cluster box: a disposable, real Ganeti cluster on one Debian machine, each node in
 * network, mount, UTS and PID namespaces of its own, inside one outer PID namespace (the box)
 * whose network namespace holds the switch bridge. The nodes run the host's Ganeti, or another
 * release's from a node root (node-root.ts) whose /usr, /etc and /var they overlay instead of
 * the host's. Everything but that cached root lives in one state directory;
 * killing the box's PID 1 ends every process of it, and the mounts and links go with its
 * namespaces. What the kernel keeps (loop devices) is found by backing inode and detached.
 *
 * Ganeti's bootstrap.py (InitCluster) explains the
 * init options, cmdlib/node.py (LUNodeAdd) the join.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fse from 'fs-extra';
import { UserError } from '../errors';
import { GanetiRelease, installedRelease } from '../ganeti/releases';
import { BOX_TAG, CACHE_LAYERS, CLI_DIR, CLI_WRAPPER, CLI_WRAPPER_TEXT, HIDDEN_HOST_DIRS, HOST_CACHE_DIR, HOST_VIEW, hostsFile, INNER_STATE, NODE_DIRS, NODE_ROOT_DIR, NODE_SETUP, OVERLAID, PROVIDER, PROVIDER_FILES, REAPER, sshdConfig, VOLUME_DIR } from './files';
import { nodeRoot } from './node-root';
import { alive, cmdline, comm, descendants, detachLoop, loopsBackedUnder, mountsUnder, namespaceOf, pids, processesIn, waitFor } from '../system/kernel';
import { RunResult, startProcess } from '../system/process';
import { CLEAN_ENV, haveCommand, run } from './host';
import { PACKAGE_ROOT } from '../paths';

/** The box's address range (RFC 5737 TEST-NET-2): never routed, and checked unused by the host. */
export const NETWORK_PREFIX = '198.51.100';
export const DOMAIN = 'example.com';
export const CLUSTER_NAME = `cluster.${DOMAIN}`;
export const CLUSTER_IP = `${NETWORK_PREFIX}.10`;
/** The instance NIC bridge on every node (`--nic-parameters link=`). */
export const INSTANCE_BRIDGE = 'gnt-br0';
/** The switch bridge in the box's own network namespace. */
const SWITCH_BRIDGE = 'sw0';
export const MAX_NODES = 8;
/** Names the box's /etc/hosts gives instances (instance1 … instance20 at .101 …). */
export const INSTANCE_NAMES = Array.from({ length: 20 }, (_v, i) => ({ name: `instance${i + 1}.${DOMAIN}`, ip: `${NETWORK_PREFIX}.${101 + i}` }));

export const DEFAULT_STATE_DIR = '/var/lib/ganeti-os/cluster';

/** The box's state directory: `--state` (relative to cwd), else $GANETI_OS_CLUSTER_STATE, else DEFAULT_STATE_DIR. */
export function resolveStateDir(cwd: string, state: string | undefined, env: Record<string, string | undefined>): string {
  return path.resolve(cwd, state ?? env.GANETI_OS_CLUSTER_STATE ?? DEFAULT_STATE_DIR);
}
const STATE_FILE = 'box.json';
const LOCK_FILE = 'box.lock';
const LOG_FILE = 'box.log';

export interface BoxNode {
  /** FQDN, e.g. node1.example.com. */
  name: string;
  ip: string;
  /** Host PID of the node's PID 1 (the reaper), null until started. */
  pid: number | null;
}

export interface BoxState {
  format: 1;
  stateDir: string;
  /** Whether `up` created the state directory (then `down` removes it). */
  createdDir: boolean;
  /** The outermost directory `up` created for it (mkdir -p); `down` removes the empty ones up to it. */
  createdParent?: string;
  phase: 'starting' | 'up';
  /** Host PID of the box's PID 1, null until started. */
  boxPid: number | null;
  cluster: { name: string; ip: string };
  /**
   * The Ganeti release the nodes run, and the node root they run it from (null: the host's own
   * Ganeti). Absent in a state written before releases were chosen: the host's.
   */
  ganeti?: { release: GanetiRelease; root: string | null };
  nodes: BoxNode[];
  /**
   * The ganeti-os every node runs as `ganeti-os` (the one that brought the box up): host paths of
   * its Node.js and package root. Absent in a state written before the nodes had it.
   */
  cli?: HostCli;
  /** Seconds per step of `up`. */
  times: Record<string, number>;
}

export interface UpOptions {
  stateDir: string;
  nodes: number;
  /** The release the nodes run: the host's own Ganeti when it is that release, else a node root's. */
  release: GanetiRelease;
  /** Where node roots are cached (node-root.ts). */
  rootCache: string;
  log: (line: string) => void;
  /** Checked between steps: true once the caller was asked to stop (SIGINT/SIGTERM). */
  interrupted?: () => boolean;
}

export interface BoxStatus {
  stateDir: string;
  state: 'absent' | 'running' | 'starting' | 'stopped';
  nodes: { name: string; ip: string; running: boolean; processes: Record<string, number> }[];
  cluster: { name: string; ip: string } | null;
  /** The release the box runs and the node root it runs from (null: the host's Ganeti). */
  ganeti: { release: GanetiRelease | null; root: string | null } | null;
}

/** Where this ganeti-os lives on the host: what a node binds read-only to run it as `ganeti-os`. */
export interface HostCli {
  /** The Node.js binary running it. */
  node: string;
  /** Its package root (bin, dist, templates, package.json). */
  packageRoot: string;
  /** The node_modules its dependencies load from (the package's own, or the one it is installed in). */
  nodeModules: string;
}

/** The running ganeti-os's installation (process.execPath, PACKAGE_ROOT, where commander resolves from). */
export function hostCli(): HostCli {
  let modules = require.resolve('commander', { paths: [PACKAGE_ROOT] });
  while (path.basename(modules) !== 'node_modules' && modules !== path.dirname(modules)) modules = path.dirname(modules);
  return { node: fs.realpathSync(process.execPath), packageRoot: fs.realpathSync(PACKAGE_ROOT), nodeModules: fs.realpathSync(modules) };
}

/** The package parts a node binds, relative to the package root (node_modules comes from HostCli.nodeModules). */
const CLI_PARTS = ['bin', 'dist', 'templates', 'package.json'];

/** The read-only binds that give a node its `ganeti-os`: [host path, path relative to the node's state directory]. */
function cliBinds(cli: HostCli): [string, string][] {
  return [
    [cli.node, `${CLI_DIR}/node`],
    ...CLI_PARTS.filter((p) => fs.existsSync(path.join(cli.packageRoot, p))).map((p): [string, string] => [path.join(cli.packageRoot, p), `${CLI_DIR}/package/${p}`]),
    [cli.nodeModules, `${CLI_DIR}/package/node_modules`],
  ];
}

const nodeDir = (stateDir: string, name: string) => path.join(stateDir, 'nodes', name.split('.')[0]);
const readState = (stateDir: string): BoxState | null => {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir, STATE_FILE), 'utf8')) as BoxState;
  } catch {
    return null;
  }
};
const writeState = (s: BoxState) => {
  const f = path.join(s.stateDir, STATE_FILE);
  fs.writeFileSync(f + '.new', JSON.stringify(s, null, 2) + '\n');
  fs.renameSync(f + '.new', f);
};

/** Whether a host PID is this box's reaper for `role` ("box" or a node's FQDN). */
function isReaper(pid: number, stateDir: string, role: string): boolean {
  const a = cmdline(pid);
  return path.basename(a[0] ?? '') === 'bash' && a[3] === BOX_TAG && a[4] === stateDir && a[5] === role;
}

/** Every living reaper process of the box at `stateDir` (found by argv, also when box.json lost it). */
function reapersOf(stateDir: string): number[] {
  return pids().filter((pid) => {
      const a = cmdline(pid);
      return path.basename(a[0] ?? '') === 'bash' && a[3] === BOX_TAG && a[4] === stateDir && alive(pid);
    });
}

/**
 * What is missing on this machine for a box (empty when nothing). `hostGaneti`: whether the
 * nodes run the host's Ganeti (then its packages must be installed); a node root brings its own.
 */
export function preflight(uid: number | undefined, hostGaneti = true): string[] {
  const lack: string[] = [];
  if (uid !== 0) lack.push('root (namespaces, mounts and loop devices need it)');
  const files: [string, string][] = !hostGaneti ? [] : [
    ['/usr/sbin/gnt-cluster', "Debian package 'ganeti' (the meta package: gnt-* commands, daemons, their users)"],
    ['/usr/sbin/ganeti-luxid', "Debian package 'ganeti-haskell-3.0' (ganeti-luxid, ganeti-wconfd; comes with 'ganeti')"],
    ['/usr/lib/ganeti/daemon-util', "Debian package 'ganeti'"],
    ['/usr/sbin/sshd', "Debian package 'openssh-server'"],
    ['/usr/lib/openssh/sftp-server', "Debian package 'openssh-sftp-server'"],
  ];
  for (const [f, what] of files) if (!fs.existsSync(f)) lack.push(`${what} (${f} is missing)`);
  for (const c of ['unshare', 'nsenter', 'ip', 'losetup', 'ssh-keygen', ...(hostGaneti ? ['socat', 'ssh', 'truncate'] : [])]) if (!haveCommand(c)) lack.push(`command ${c}`);
  if (hostGaneti && !hostKeys().length) lack.push('SSH host keys in /etc/ssh (ssh_host_*_key; dpkg-reconfigure openssh-server makes them)');
  for (const d of ['/srv', '/root', '/tmp', '/etc', '/usr', '/var']) if (!fs.existsSync(d)) lack.push(`directory ${d} (the box mounts over it)`);
  return [...new Set(lack)];
}

/** The SSH host keys a node finds in /etc/ssh (`etc`: the /etc its overlay lies on). */
function hostKeys(etc = '/etc'): string[] {
  try {
    return fs
      .readdirSync(path.join(etc, 'ssh'))
      .filter((f) => /^ssh_host_\w+_key$/.test(f))
      .map((f) => `/etc/ssh/${f}`);
  } catch {
    return [];
  }
}

/** Whether the host itself uses the box's range (an address or a route in it). */
export function hostUsesRange(): string | null {
  for (const argv of [['ip', '-4', '-o', 'addr', 'show'], ['ip', '-4', 'route', 'show', 'table', 'all']]) {
    const r = run(argv);
    const hit = r.stdout.split('\n').find((l) => l.includes(`${NETWORK_PREFIX}.`));
    if (hit) return hit.trim();
  }
  return null;
}

/**
 * The exclusive lock of a state directory for `up`/`down` (a file holding the holder's PID).
 * Throws UserError when a living process holds it.
 */
function lock(stateDir: string): () => void {
  const f = path.join(stateDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(f, `${process.pid}\n`, { flag: 'wx' });
      return () => fs.rmSync(f, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(f, 'utf8').trim());
      if (holder && holder !== process.pid && alive(holder)) {
        throw new UserError(`the box's state directory ${stateDir} is in use: process ${holder} is running up or down on it`);
      }
      fs.rmSync(f, { force: true });
    }
  }
  throw new UserError(`cannot lock ${stateDir}`);
}

/** Thrown inside `up` when the caller was interrupted; `up` has cleaned everything by then. */
export class Interrupted extends UserError {
  constructor() {
    super('interrupted: the half-made box was removed');
  }
}

/**
 * Bring a box up. In: the state directory (created if absent; must be empty or absent), the
 * number of nodes (1–8). Out: the box's state. Throws UserError (naming what is missing) without
 * root, the packages, or when the state directory is in use; on any failure or interruption it
 * removes whatever it made before throwing.
 */
export async function up(opts: UpOptions): Promise<BoxState> {
  const stateDir = path.resolve(opts.stateDir);
  const hostGaneti = installedRelease() === opts.release;
  const lack = preflight(process.getuid?.(), hostGaneti);
  if (lack.length) throw new UserError('cannot bring a cluster box up: missing ' + lack.join('; '));
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw new UserError(`--nodes must be 1 to ${MAX_NODES}, not ${opts.nodes}`);
  }
  const used = hostUsesRange();
  if (used) throw new UserError(`the host uses the box's address range ${NETWORK_PREFIX}.0/24 (${used}); refusing to shadow it`);
  let createdDir = false;
  let createdParent = '';
  if (fs.existsSync(stateDir)) {
    if (!fs.statSync(stateDir).isDirectory()) throw new UserError(`${stateDir} is not a directory`);
  } else {
    createdParent = fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 }) ?? stateDir;
    createdDir = true;
  }
  // Locked before looking: a second `up` on the same directory meets the first one's lock.
  const unlock = lock(stateDir);
  try {
    const existing = readState(stateDir);
    if (existing) {
      const live = reapersOf(stateDir);
      if (live.length) throw new UserError(`the box's state directory ${stateDir} is in use: a box runs there (pid ${live.join(', ')}); 'ganeti-os cluster down --state ${stateDir}' stops it`);
      throw new UserError(`${stateDir} holds a stopped or half-made box; remove it first with 'ganeti-os cluster down --state ${stateDir}'`);
    }
    const entries = fs.readdirSync(stateDir).filter((e) => e !== LOCK_FILE);
    if (entries.length) throw new UserError(`${stateDir} is not empty and holds no box: choose an empty or new directory with --state`);
  } catch (err) {
    unlock();
    if (createdDir) {
      fs.rmSync(stateDir, { recursive: true, force: true });
      removeEmptyParents(stateDir, createdParent);
    }
    throw err;
  }
  const state: BoxState = {
    format: 1,
    stateDir,
    createdDir,
    createdParent: createdDir ? createdParent : undefined,
    phase: 'starting',
    boxPid: null,
    cluster: { name: CLUSTER_NAME, ip: CLUSTER_IP },
    ganeti: { release: opts.release, root: null },
    cli: hostCli(),
    nodes: Array.from({ length: opts.nodes }, (_v, i) => ({ name: `node${i + 1}.${DOMAIN}`, ip: `${NETWORK_PREFIX}.${11 + i}`, pid: null })),
    times: {},
  };
  writeState(state);
  let control: NodeJS.WritableStream | null = null;
  const t0 = Date.now();
  const step = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    await new Promise((r) => setImmediate(r));
    if (opts.interrupted?.()) throw new Interrupted();
    const t = process.hrtime.bigint();
    const result = await fn();
    state.times[name] = Math.round(Number(process.hrtime.bigint() - t) / 1e6) / 1000;
    writeState(state);
    return result;
  };
  try {
    if (!hostGaneti) {
      const r = await step('root', () => nodeRoot({ release: opts.release, cache: opts.rootCache, log: opts.log, interrupted: opts.interrupted }));
      state.ganeti = { release: opts.release, root: r.root.dir };
      writeState(state);
      opts.log(r.built ? `built the node root ${r.root.dir} in ${r.seconds.toFixed(0)} s` : `reusing the node root ${r.root.dir}`);
    }
    await step('prepare', () => prepareFiles(state));
    control = await step('start-box', () => startBox(state));
    for (const node of state.nodes) await step(`start-${short(node)}`, () => startNode(state, node));
    await step('network', () => wireNetwork(state));
    for (const node of state.nodes) await step(`sshd-${short(node)}`, () => must(inNode(node, ['/usr/sbin/sshd', '-f', '/etc/ssh/ganeti-os-box/sshd_config']), `sshd on ${node.name}`));
    await step('init', () => initCluster(state));
    for (const node of state.nodes.slice(1)) await step(`add-${short(node)}`, () => addNode(state, node));
    if (state.nodes.length > 1) await step('verify', () => must(inNode(state.nodes[0], ['gnt-cluster', 'verify', '--error-codes', '-I', 'ENODESETUP']), 'gnt-cluster verify after joining the nodes'));
    await new Promise((r) => setImmediate(r));
    if (opts.interrupted?.()) throw new Interrupted();
    (control as NodeJS.WritableStream).write('keep\n');
    control.end();
    state.phase = 'up';
    state.times.total = (Date.now() - t0) / 1000;
    writeState(state);
    unlock();
    return state;
  } catch (err) {
    try {
      (control as { destroy?: () => void } | null)?.destroy?.();
      unlock();
      down({ stateDir, log: () => undefined });
    } catch (cleanupErr) {
      opts.log(`cleaning the half-made box failed too: ${String(cleanupErr)}`);
    }
    throw err;
  }
}

const short = (n: BoxNode) => n.name.split('.')[0];

function must(r: RunResult, what: string): RunResult {
  if (r.status !== 0) {
    const out = (r.stderr + r.stdout).trim().split('\n').slice(-15);
    throw new UserError(`${what} failed (exit ${r.status})`, out);
  }
  return r;
}

function hostsFor(state: BoxState): string {
  return hostsFile([
    { ip: state.cluster.ip, names: [state.cluster.name, state.cluster.name.split('.')[0]] },
    ...state.nodes.map((n) => ({ ip: n.ip, names: [n.name, short(n)] })),
    ...INSTANCE_NAMES.map((i) => ({ ip: i.ip, names: [i.name, i.name.split('.')[0]] })),
  ]);
}

/** Every node's directories and files, written from the host before anything is mounted. */
function prepareFiles(state: BoxState): void {
  const sshDir = path.join(state.stateDir, 'ssh');
  fs.mkdirSync(sshDir, { mode: 0o700 });
  must(run(['ssh-keygen', '-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', `root@${CLUSTER_NAME}`, '-f', path.join(sshDir, 'id_rsa')]), 'ssh-keygen');
  const pub = fs.readFileSync(path.join(sshDir, 'id_rsa.pub'), 'utf8');
  const lower = state.ganeti?.root ?? null;
  const keys = hostKeys(lower ? path.join(lower, 'etc') : '/etc');
  if (!keys.length) throw new UserError(`no SSH host keys in ${lower ? path.join(lower, 'etc', 'ssh') : '/etc/ssh'}`);
  for (const node of state.nodes) {
    const dir = nodeDir(state.stateDir, node.name);
    if (lower) for (const d of [NODE_ROOT_DIR, HOST_CACHE_DIR, ...CACHE_LAYERS]) fs.mkdirSync(path.join(dir, d), { recursive: true });
    for (const d of OVERLAID) {
      fs.mkdirSync(path.join(dir, `${d}.upper`), { recursive: true });
      fs.mkdirSync(path.join(dir, `${d}.work`), { recursive: true });
    }
    for (const d of Object.values(NODE_DIRS)) fs.mkdirSync(path.join(dir, d), { recursive: true, mode: 0o755 });
    fs.chmodSync(path.join(dir, NODE_DIRS.tmp), 0o1777);
    // ExtStorage scripts log here; Ganeti refuses to run them without it.
    fs.mkdirSync(path.join(dir, NODE_DIRS.log, 'extstorage'), { recursive: true });
    fs.chmodSync(path.join(dir, NODE_DIRS.root), 0o700);
    const etc = path.join(dir, 'etc.upper');
    fs.writeFileSync(path.join(etc, 'hosts'), hostsFor(state));
    fs.writeFileSync(path.join(etc, 'hostname'), node.name + '\n');
    fs.rmSync(path.join(etc, 'resolv.conf'), { force: true });
    fs.writeFileSync(path.join(etc, 'resolv.conf'), '# the cluster box has no name servers\n');
    fs.mkdirSync(path.join(etc, 'ganeti'), { recursive: true });
    fs.writeFileSync(path.join(etc, 'ganeti', 'file-storage-paths'), '/srv/ganeti/file-storage\n');
    fs.mkdirSync(path.join(etc, 'ssh', 'ganeti-os-box'), { recursive: true });
    fs.writeFileSync(path.join(etc, 'ssh', 'ganeti-os-box', 'sshd_config'), sshdConfig(node.ip, keys));
    for (const d of HIDDEN_HOST_DIRS) fs.mkdirSync(path.join(dir, HOST_VIEW, d), { recursive: true, mode: 0o700 });
    fs.chmodSync(path.join(dir, HOST_VIEW), 0o700);
    if (state.cli) {
      for (const [src, dst] of cliBinds(state.cli)) {
        const at = path.join(dir, dst);
        fs.mkdirSync(path.dirname(at), { recursive: true });
        if (fs.statSync(src).isDirectory()) fs.mkdirSync(at);
        else fs.writeFileSync(at, '');
      }
      const wrapper = path.join(dir, 'usr.upper', path.relative('/usr', CLI_WRAPPER));
      fs.mkdirSync(path.dirname(wrapper), { recursive: true });
      fs.writeFileSync(wrapper, CLI_WRAPPER_TEXT, { mode: 0o755 });
    }
    const root = path.join(dir, NODE_DIRS.root);
    fs.mkdirSync(path.join(root, '.ssh'), { mode: 0o700 });
    fse.copySync(path.join(sshDir, 'id_rsa'), path.join(root, '.ssh', 'id_rsa'));
    fse.copySync(path.join(sshDir, 'id_rsa.pub'), path.join(root, '.ssh', 'id_rsa.pub'));
    fs.writeFileSync(path.join(root, '.ssh', 'authorized_keys'), pub, { mode: 0o600 });
    const srv = path.join(dir, NODE_DIRS.srv);
    for (const d of ['ganeti/os', 'ganeti/file-storage', 'ganeti/shared-file-storage', `ganeti/extstorage/${PROVIDER}`, VOLUME_DIR.replace(/^\/srv\//, '')]) {
      fs.mkdirSync(path.join(srv, d), { recursive: true });
    }
    for (const [f, text] of Object.entries(PROVIDER_FILES)) {
      fs.writeFileSync(path.join(srv, 'ganeti', 'extstorage', PROVIDER, f), text, { mode: f.includes('.') ? 0o644 : 0o755 });
    }
  }
}

/** The box's PID 1 in new PID, mount, network and UTS namespaces; returns the "keep" channel. */
async function startBox(state: BoxState): Promise<NodeJS.WritableStream> {
  const logFd = fs.openSync(path.join(state.stateDir, LOG_FILE), 'a');
  const child = startProcess(['unshare', '--pid', '--fork', '--mount-proc', '--mount', '--net', '--uts', '--propagation', 'private', 'bash', '-c', REAPER, BOX_TAG, state.stateDir, 'box'], {
    group: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    env: CLEAN_ENV,
  });
  fs.closeSync(logFd);
  child.unref();
  const control = child.stdio[3] as unknown as NodeJS.WritableStream & { unref?: () => void };
  control.unref?.();
  let pid = 0;
  const found = waitFor(() => {
    pid = descendants(child.pid ?? -1).find((p) => isReaper(p, state.stateDir, 'box')) ?? 0;
    return pid > 0;
  }, 10);
  if (!found) throw new UserError('the box did not start (unshare); see ' + path.join(state.stateDir, LOG_FILE));
  state.boxPid = pid;
  writeState(state);
  must(inBox(state, ['ip', 'link', 'set', 'lo', 'up']), 'lo in the box');
  must(inBox(state, ['ip', 'link', 'add', SWITCH_BRIDGE, 'type', 'bridge']), 'the switch bridge');
  must(inBox(state, ['ip', 'link', 'set', SWITCH_BRIDGE, 'up']), 'the switch bridge');
  return control;
}

/** Run argv in the box's outer namespaces (network, mount, UTS, PID), clean environment. */
function inBox(state: BoxState, argv: string[], netOnly = false): RunResult {
  const ns = netOnly ? ['--net'] : ['--net', '--mount', '--uts', '--pid'];
  return run(['nsenter', '--target', String(state.boxPid), ...ns, '--', ...argv]);
}

/**
 * Run argv inside a node (its network, mount, UTS and PID namespaces) with a clean environment
 * (`env`: extra variables), cwd /root. Never throws for a non-zero exit.
 */
export function inNode(node: BoxNode, argv: string[], opts: { input?: string; timeoutSeconds?: number; env?: Record<string, string> } = {}): RunResult {
  return run(nodeArgv(node, argv), { input: opts.input, timeoutSeconds: opts.timeoutSeconds, env: { ...CLEAN_ENV, ...(opts.env ?? {}) } });
}

/**
 * The host command line that runs argv inside a node; with `wd`, in that directory of the node
 * (nsenter's --wd opens its directory before entering the namespaces, so on the host: `env
 * --chdir` changes to it inside).
 */
export function nodeArgv(node: BoxNode, argv: string[], wd?: string): string[] {
  if (!node.pid) throw new UserError(`${node.name} is not running`);
  const enter = ['nsenter', '--target', String(node.pid), '--net', '--mount', '--uts', '--pid'];
  return wd === undefined ? [...enter, '--wd=/root', '--', ...argv] : [...enter, '--', 'env', `--chdir=${wd}`, '--', ...argv];
}

/** Paths under the node's private /tmp, /root and /srv that are the node's own (Ganeti's, its SSH keys). */
const NODE_OWN = ['/root/.ssh', '/srv/ganeti', VOLUME_DIR];

/** Binds the host's directory (seen at $1, the node's HOST_VIEW) at $2 unless $2 already is that directory. */
const SHOW_DIR = `set -eu
if [ "$(stat -c %d:%i "$2" 2>/dev/null)" != "$(stat -c %d:%i "$1")" ]; then
  mkdir -p "$2"
  mount --no-canonicalize --bind "$1" "$2"
fi
`;

/**
 * The directory inside `node` where a command run from the host's `cwd` (an existing directory)
 * sees what it sees there, as on a real master: `cwd` itself when the node shares it with the
 * host; for a directory under the node's private /tmp, /root or /srv, `cwd` too, after binding
 * the host's first-level directory there (/tmp/work for /tmp/work/sub, so `..` is the host's
 * too; in the node's mount namespace only, once per directory, gone with the box); for
 * /tmp, /root or /srv itself, the host's view of it under the node's INNER_STATE (binding it
 * would hide the node's own), with a `note` saying so. Throws UserError naming the directory when
 * the node cannot see it (the node's own directories, a node root's /etc, /usr or /var).
 */
export function execWorkdir(state: BoxState, node: BoxNode, cwd: string): { wd: string; note?: string } {
  const dir = path.resolve(cwd);
  const top = dir.split('/')[1] ?? '';
  if ((HIDDEN_HOST_DIRS as readonly string[]).includes(top)) {
    const view = `${INNER_STATE}/${HOST_VIEW}${dir}`;
    const mine = NODE_OWN.find((p) => dir === p || dir.startsWith(p + '/') || p.startsWith(dir + '/'));
    const hasView = inNode(node, ['test', '-d', view]).status === 0;
    if ((mine && dir !== `/${top}`) || !hasView) {
      throw new UserError(`cannot run in ${dir} on ${node.name}: ${hasView ? `${mine} there is the node's own` : `the node's /${top} is its own and this box shows no other (it was started by an older ganeti-os)`}; cd to another directory first`);
    }
    if (dir === `/${top}`) return { wd: view, note: `${node.name} has its own /${top}: running in ${view}, where it sees this host's` };
    // The whole first-level directory (/tmp/work for /tmp/work/sub), so ../ is the host's too.
    const shown = dir.split('/').slice(0, 3).join('/');
    const r = run(['nsenter', '--target', String(node.pid), '--mount', '--', 'sh', '-c', SHOW_DIR, 'sh', `${INNER_STATE}/${HOST_VIEW}${shown}`, shown]);
    if (r.status !== 0) throw new UserError(`cannot show ${dir} on ${node.name}: ${(r.stderr || r.stdout).trim()}`);
    return { wd: dir };
  }
  if (inNode(node, ['test', '-d', dir]).status !== 0) {
    const own = state.ganeti?.root ? "its /etc, /usr and /var are the node root's" : 'its /etc, /usr and /var are overlays of its own, its /run private';
    throw new UserError(`cannot run in ${dir} on ${node.name}: the node does not see it (${own}); cd to a directory it shares with this host, or one under /tmp, /root or /srv, first`);
  }
  return { wd: dir };
}

function startNode(state: BoxState, node: BoxNode): void {
  const unshare = ['unshare', '--pid', '--fork', '--mount-proc', '--mount', '--net', '--uts', '--propagation', 'private', 'bash', '-c', REAPER, BOX_TAG, state.stateDir, node.name];
  // Started from inside the box and left to its PID 1, so nothing of it stays in the host's PID namespace.
  must(inBox(state, ['sh', '-c', 'setsid "$@" </dev/null >/dev/null 2>&1 &', 'sh', ...unshare]), `starting ${node.name}`);
  let pid = 0;
  if (!waitFor(() => (pid = descendants(state.boxPid as number).find((p) => isReaper(p, state.stateDir, node.name)) ?? 0) > 0, 10)) {
    throw new UserError(`${node.name} did not start (unshare)`);
  }
  node.pid = pid;
  writeState(state);
  must(run(['nsenter', '--target', String(pid), '--mount', '--uts', '--net', '--', 'sh', '-c', NODE_SETUP, 'sh', nodeDir(state.stateDir, node.name), node.name, state.ganeti?.root ?? '', ...(state.cli ? cliBinds(state.cli).flat() : [])]), `mounts of ${node.name}`);
}

function wireNetwork(state: BoxState): void {
  state.nodes.forEach((node, i) => {
    const link = `n${i + 1}`;
    must(inBox(state, ['ip', 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(node.pid)], true), `the link to ${node.name}`);
    must(inBox(state, ['ip', 'link', 'set', link, 'master', SWITCH_BRIDGE, 'up'], true), `the link to ${node.name}`);
    for (const argv of [
      ['ip', 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0'],
      ['ip', 'link', 'set', 'eth0', 'up'],
      ['ip', 'link', 'add', INSTANCE_BRIDGE, 'type', 'bridge'],
      ['ip', 'link', 'set', INSTANCE_BRIDGE, 'up'],
    ]) {
      must(inNode(node, argv), `network of ${node.name} (${argv.join(' ')})`);
    }
  });
}

/** Instance policy for small test disks and memory (MiB). */
const IPOLICY_BOUNDS = 'min:disk-size=1,cpu-count=1,disk-count=1,memory-size=32,nic-count=0,spindle-use=0/max:disk-size=1048576,cpu-count=8,disk-count=16,memory-size=32768,nic-count=8,spindle-use=12';
const IPOLICY_STD = 'disk-size=512,cpu-count=1,disk-count=1,memory-size=128,nic-count=1,spindle-use=1';

/**
 * The `gnt-cluster init` command line the box uses (bootstrap.InitCluster's checks explain each
 * option). kvm: no kernel of the node's (the instance boots its own or none), the serial console
 * as a socket, TCG (`-accel tcg`: this machine has no /dev/kvm), and `vhost_net=False`: there is
 * no /dev/vhost-net either, and Ganeti 3.1 turns vhost_net on by default (3.0: off), so every
 * paravirtual NIC's tap would fail to open.
 */
export function initArgv(): string[] {
  return [
    'gnt-cluster', 'init',
    '--no-ssh-init', '--no-etc-hosts',
    '--master-netdev', 'eth0', '--master-netmask', '24',
    '--enabled-hypervisors', 'fake,kvm',
    '--enabled-disk-templates', 'file,ext',
    '--file-storage-dir', '/srv/ganeti/file-storage',
    '--nic-parameters', `mode=bridged,link=${INSTANCE_BRIDGE}`,
    '-H', 'kvm:kernel_path=,initrd_path=,serial_console=true,vhost_net=False,kvm_extra=-accel tcg',
    '--ipolicy-bounds-specs', IPOLICY_BOUNDS,
    '--ipolicy-std-specs', IPOLICY_STD,
    CLUSTER_NAME,
  ];
}

function initCluster(state: BoxState): void {
  const master = state.nodes[0];
  must(inNode(master, initArgv(), { timeoutSeconds: 300 }), 'gnt-cluster init');
}

function addNode(state: BoxState, node: BoxNode): void {
  const master = state.nodes[0];
  must(inNode(master, ['gnt-node', 'add', node.name], { timeoutSeconds: 300 }), `gnt-node add ${node.name}`);
  // noded and mond on a joined node were started inside an SSH session: restart them clean.
  must(inNode(node, ['sh', '-c', '/usr/lib/ganeti/daemon-util stop-all && /usr/lib/ganeti/daemon-util start-all']), `restarting the daemons of ${node.name}`);
}

export interface DownOptions {
  stateDir: string;
  log: (line: string) => void;
}

export interface DownResult {
  /** False when there was nothing at the state directory. */
  found: boolean;
  killed: number;
  loopsDetached: string[];
  seconds: number;
}

/**
 * Stop the box at `stateDir` and remove everything it made: its processes (PID 1 of the box,
 * which ends every node), loop devices backed by files in the state directory, the state
 * directory (or, if `up` did not create it, what `up` put in it). Idempotent; cleans a half-made
 * box too. Throws UserError when another `up`/`down` holds the directory or something stays
 * mounted on it.
 */
export function down(opts: DownOptions): DownResult {
  const t0 = Date.now();
  const stateDir = path.resolve(opts.stateDir);
  const state = readState(stateDir);
  // Found by argv, so a box whose state directory was deleted under it is still stopped.
  const reapers = reapersOf(stateDir);
  if (!state && !reapers.length) {
    return { found: false, killed: 0, loopsDetached: [], seconds: (Date.now() - t0) / 1000 };
  }
  const unlock = fs.existsSync(stateDir) ? lock(stateDir) : () => undefined;
  try {
    // The box's PID 1 first: the kernel then ends every process of its PID namespace, nodes included.
    const namespaces = new Set<string>();
    const boxes = reapers.filter((p) => isReaper(p, stateDir, 'box'));
    if (state?.boxPid && isReaper(state.boxPid, stateDir, 'box') && !boxes.includes(state.boxPid)) boxes.push(state.boxPid);
    for (const pid of reapers) {
      const ns = namespaceOf(pid, 'pid');
      if (ns) namespaces.add(ns);
    }
    let killed = 0;
    for (const pid of [...boxes, ...reapers.filter((p) => !boxes.includes(p))]) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        /* already gone */
      }
    }
    const gone = waitFor(() => [...namespaces].every((ns) => processesIn('pid', ns).length === 0), 60, 100);
    if (!gone) throw new UserError(`processes of the box at ${stateDir} did not stop within 60 s`);
    const loopsDetached: string[] = [];
    if (fs.existsSync(stateDir)) {
      const skip = (p: string) => p.endsWith('.work');
      for (let attempt = 0; attempt < 20; attempt++) {
        const loops = loopsBackedUnder(stateDir, skip).filter((l) => !loopsDetached.includes(l.name));
        if (!loops.length) break;
        for (const l of loops) if (detachLoop(l.name, { partitions: false })) loopsDetached.push(l.name);
        const left = loopsBackedUnder(stateDir, skip);
        if (!left.length) break;
        if (attempt === 19) throw new UserError(`loop devices of the box stay attached: ${left.map((l) => l.name).join(', ')}`);
        waitFor(() => false, 0.25);
      }
      const mounts = mountsUnder(stateDir);
      if (mounts.length) throw new UserError(`mounted under the box's state directory (left alone): ${mounts.join(', ')}`);
      if (!state || state.createdDir) {
        fs.rmSync(stateDir, { recursive: true, force: true });
        if (state?.createdParent) removeEmptyParents(stateDir, state.createdParent);
      } else {
        for (const e of ['nodes', 'ssh', LOG_FILE, STATE_FILE]) fs.rmSync(path.join(stateDir, e), { recursive: true, force: true });
      }
    }
    opts.log(`box at ${stateDir} removed (${killed ? 'processes stopped' : 'no process was running'}${loopsDetached.length ? `, detached ${loopsDetached.join(' ')}` : ''})`);
    return { found: true, killed, loopsDetached, seconds: (Date.now() - t0) / 1000 };
  } finally {
    if (fs.existsSync(stateDir)) unlock();
  }
}

/** Remove the now empty directories from dir's parent up to `top` (those `up` made with mkdir -p). */
function removeEmptyParents(dir: string, top: string): void {
  if (!top || dir === top || !dir.startsWith(top + '/')) return;
  for (let d = path.dirname(dir); d.length >= top.length; d = path.dirname(d)) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
    if (d === top) return;
  }
}

/** What runs at `stateDir`: the box's phase and, per node, its processes by name. */
export function status(stateDirIn: string): BoxStatus {
  const stateDir = path.resolve(stateDirIn);
  const state = readState(stateDir);
  if (!state) return { stateDir, state: 'absent', nodes: [], cluster: null, ganeti: null };
  const boxUp = !!state.boxPid && isReaper(state.boxPid, stateDir, 'box');
  const nodes = state.nodes.map((n) => {
    const running = boxUp && !!n.pid && isReaper(n.pid, stateDir, n.name);
    const processes: Record<string, number> = {};
    if (running) {
      const ns = namespaceOf(n.pid as number, 'pid');
      for (const pid of ns ? processesIn('pid', ns) : []) {
        const name = path.basename(comm(pid));
        if (!name) continue; // ended since it was listed
        processes[name] = (processes[name] ?? 0) + 1;
      }
    }
    return { name: n.name, ip: n.ip, running, processes };
  });
  return {
    stateDir,
    state: boxUp ? (state.phase === 'up' ? 'running' : 'starting') : 'stopped',
    nodes,
    cluster: state.cluster,
    ganeti: state.ganeti ?? { release: installedRelease() ?? null, root: null },
  };
}

/**
 * The running box at `stateDir` (its state, nodes with PIDs). Throws UserError when no box runs
 * there.
 */
export function runningBox(stateDirIn: string): BoxState {
  const stateDir = path.resolve(stateDirIn);
  const state = readState(stateDir);
  if (!state || !state.boxPid || !isReaper(state.boxPid, stateDir, 'box')) {
    throw new UserError(`no cluster box runs at ${stateDir} ('ganeti-os cluster up --state ${stateDir}' starts one)`);
  }
  if (state.phase !== 'up') throw new UserError(`the box at ${stateDir} is still starting`);
  for (const n of state.nodes) if (!n.pid || !isReaper(n.pid, stateDir, n.name)) throw new UserError(`${n.name} of the box at ${stateDir} is not running`);
  return state;
}

export { INNER_STATE };
