/**
 * Ganeti's commands on a running box's nodes, and what a lifecycle needs around them: installing
 * a definition on every node, filling download caches through the host (prefill), the serial
 * console of a kvm instance, the OS script logs, and where an instance's disk is on the host.
 *
 * Ganeti's code explains each: cmdlib/instance_create.py (LUInstanceCreate), cmdlib/backup.py
 * (export), hv_kvm (the serial socket), storage/filestorage.py and storage/extstorage.py (disk
 * logical ids).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fse from 'fs-extra';
import type { GanetiRelease } from '../ganeti/releases';
import { PACKAGE_ROOT } from '../paths';
import { BoxNode, BoxState, INNER_STATE, nodeArgv } from './box';
import { NODE_DIRS, VOLUME_DIR } from './files';
import { CLEAN_ENV, run } from './host';
import { killGroup } from '../system/kernel';
import { run as runAsync, RunResult, startProcess } from '../system/process';

/** Findings gnt-cluster verify always reports in a box here, whatever the definition: ignored with -I. */
export const KNOWN_FINDINGS: Record<string, string> = {
  ENODESETUP: 'this kernel has no /proc/sysrq-trigger (cannot be faked in a namespace)',
};

export interface GntOptions {
  /** Seconds before the command is killed (default 1800). */
  timeoutSeconds?: number;
  /** Kills the command (SIGKILL to its process group) when aborted. */
  signal?: AbortSignal;
  /** Each non-empty output line as it arrives (Ganeti's progress lines). */
  onLine?: (line: string) => void;
}

/**
 * Run argv (a gnt-* command) on `node` with the box's clean environment, without blocking the
 * event loop. Resolves with its exit status (-1 when killed or not started) and output; never
 * rejects.
 */
export async function gnt(node: BoxNode, argv: string[], opts: GntOptions = {}): Promise<RunResult> {
  const full = nodeArgv(node, argv);
  const r = await runAsync(full, { env: CLEAN_ENV, group: true, timeoutMs: (opts.timeoutSeconds ?? 1800) * 1000, killSignal: 'SIGKILL', signal: opts.signal, onLine: opts.onLine });
  return r.error ? { ...r, stderr: `${full[0]}: ${r.error.message}\n${r.stderr}` } : r;
}

/**
 * The options that keep Ganeti from pinging an instance's address and resolving its name (the
 * box's instances have neither). Ganeti 3.0 checks by default (`--no-ip-check --no-name-check`);
 * 3.1 checks only when asked (`--ip-check`, `--name-check`) and keeps the `--no-` options on add
 * and import as deprecated no-ops that print a warning (cli_opts.py NOIPCHECK_OPT), so none is
 * given there.
 */
export function noNameChecks(release: GanetiRelease): string[] {
  return release === '3.0' ? ['--no-ip-check', '--no-name-check'] : [];
}

/**
 * `gnt-instance rename` as the release takes it. Ganeti 3.0 asks for confirmation and, without a
 * terminal, silently exits 1 unless given -f; 3.1 dropped the question and refuses -f ("no such
 * option": client/gnt_instance.py's "rename" entry lists no FORCE_OPT, nor the deprecated
 * `--no-` check options).
 */
export function renameArgv(release: GanetiRelease, from: string, to: string): string[] {
  return ['gnt-instance', 'rename', ...(release === '3.0' ? ['-f'] : []), ...noNameChecks(release), from, to];
}

/** The instance names the cluster knows. */
export async function instanceNames(node: BoxNode): Promise<string[]> {
  return (await gnt(node, ['gnt-instance', 'list', '--no-headers', '-o', 'name'])).stdout.split('\n').filter(Boolean);
}

/** Ganeti's status of an instance (ADMIN_down, running, ...), or 'unknown'. */
export async function instanceStatus(node: BoxNode, name: string): Promise<string> {
  return (await gnt(node, ['gnt-instance', 'list', '--no-headers', '-o', 'status', name])).stdout.trim() || 'unknown';
}

/** The last `lines` lines of a command's output. */
export function tail(text: string, lines = 12): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** A node's own directory in the box's state directory (its /srv, /var/log/ganeti, ... on the host). */
export function nodeDir(box: BoxState, node: BoxNode): string {
  return path.join(box.stateDir, 'nodes', node.name.split('.')[0]);
}

/** The end of the newest OS log of this kind (add, import, ...) for the instance (/var/log/ganeti/os on the master), as text to append to a failure. */
export function osLogTail(box: BoxState, kind: string, osName: string, instance: string): string {
  const dir = path.join(nodeDir(box, box.nodes[0]), NODE_DIRS.log, 'os');
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir).filter((f) => f.startsWith(`${kind}-${osName}-${instance}-`)).sort();
  } catch {
    return '';
  }
  if (!files.length) return '';
  const f = path.join(dir, files[files.length - 1]);
  return `\n${f.slice(box.stateDir.length + 1)}:\n${tail(fs.readFileSync(f, 'utf8'), 15)}`;
}

/** Copy the definition into every node's /srv/ganeti/os/OS (symlinks resolved: the box sees no host paths). */
export function installDefinition(box: BoxState, osDir: string, os: string): void {
  for (const n of box.nodes) {
    const target = path.join(nodeDir(box, n), NODE_DIRS.srv, 'ganeti', 'os', os);
    fse.removeSync(target);
    fse.copySync(osDir, target, { dereference: true });
  }
}

/**
 * Where disk 0 of `instance` is on the host: a file disk (`-t file`, logical id [driver, path
 * under /srv/ganeti/file-storage]) or an ext volume of the box's provider (a sparse file in
 * VOLUME_DIR named by the logical id's volume name), both under the primary node's /srv. Throws
 * Error when Ganeti does not say or the file is not there.
 */
export async function diskOnHost(box: BoxState, instance: string): Promise<string> {
  const master = box.nodes[0];
  const r = await gnt(master, ['gnt-instance', 'info', '--static', instance]);
  if (r.status !== 0) throw new Error(`gnt-instance info ${instance}: exit ${r.status}: ${tail(r.stderr + r.stdout, 3)}`);
  const block = r.stdout.split(/\n\s*- disk\/0: /)[1];
  const primary = /primary:\s*(\S+)/.exec(r.stdout)?.[1] ?? master.name;
  const node = box.nodes.find((n) => n.name === primary) ?? master;
  const id = block && /logical_id: \['([^']*)', '([^']*)'\]/.exec(block);
  if (!block || !id) throw new Error(`gnt-instance info ${instance} names no logical id for disk 0`);
  const inNode = block.startsWith('file') ? id[2] : block.startsWith('ext') ? path.posix.join(VOLUME_DIR, id[2]) : undefined;
  if (!inNode || !inNode.startsWith('/srv/')) throw new Error(`disk 0 of ${instance} is not a file or ext disk under /srv (${block.split('\n')[0]})`);
  const onHost = path.join(nodeDir(box, node), NODE_DIRS.srv, inNode.slice('/srv/'.length));
  if (!fs.existsSync(onHost)) throw new Error(`disk 0 of ${instance} should be ${onHost}, which does not exist`);
  return onHost;
}

/**
 * Shell run as `sh -c PREFILL sh UPPER WORK -- ARGV...` in a private mount namespace of the host:
 * /var becomes an overlay whose writes land in UPPER (the state directory), then ARGV runs. The
 * host's /var is only read.
 */
const PREFILL = `set -eu
upper=$1 work=$2
shift 3
mount -t overlay overlay -o "lowerdir=/var,upperdir=$upper,workdir=$work" /var
exec "$@"
`;

/**
 * Shell run inside a node's mount namespace as `sh -c COPY_IN sh DIR`: the regular files,
 * symlinks and directories under DIR are copied into /var (through the node's overlay), sparse
 * files kept sparse; overlay whiteouts (device files) are not copied.
 */
const COPY_IN = `set -eu
cd "$1"
find . \\( -type f -o -type l \\) -print0 | tar --null --files-from=- --sparse -cf - | tar -C /var -xpf -
`;

export interface PrefillOptions {
  osDir: string;
  variant: string | null;
  /** The instance name create runs for. */
  instance: string;
  hypervisor: string;
  hvparams: string[];
  osparams: string[];
  /** Disk 0, MiB. */
  diskMib: number;
}

/**
 * Run the definition's create once on the host (which has a route out), as `ganeti-os run`
 * does, on a sparse disk in the state directory, with /var overlaid so that whatever it caches
 * there (the debian template's base system and image under /var/cache) is written into the state
 * directory and the host's /var stays as it was; then copy those files into the master's /var,
 * where the box's own create finds them (it reads the host's existing cache through its overlay).
 * Returns the command that ran on the host. Throws Error naming what failed; the working files
 * are removed on every path.
 */
export function prefill(box: BoxState, o: PrefillOptions): string[] {
  const master = box.nodes[0];
  const dir = path.join(nodeDir(box, master), 'prefill');
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['var.upper', 'var.work', 'run']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  try {
    const argv = [
      process.execPath, path.join(PACKAGE_ROOT, 'bin', 'ganeti-os.js'), 'run', 'create',
      '--os-dir', o.osDir,
      '--disk', `${path.join(dir, 'run', 'disk0')}:${o.diskMib}`,
      '--hypervisor', o.hypervisor,
      '--name', o.instance,
      '--log-dir', path.join(dir, 'run'),
      ...(o.variant ? ['--variant', o.variant] : []),
      ...o.osparams.flatMap((p) => ['--osparam', p]),
      ...o.hvparams.flatMap((p) => ['--hvparam', p]),
      ...(o.hypervisor === 'kvm' ? ['--hvparam', 'kernel_path=', '--hvparam', 'initrd_path='] : []),
    ];
    const wrapped = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', PREFILL, 'sh', path.join(dir, 'var.upper'), path.join(dir, 'var.work'), '--', ...argv];
    const r = run(wrapped, { timeoutSeconds: 3600 });
    if (r.status !== 0) throw new Error(`create on the host failed (exit ${r.status}): ${tail(r.stderr + r.stdout)}`);
    const copy = run(['nsenter', '--target', String(master.pid), '--mount', '--', 'sh', '-c', COPY_IN, 'sh', `${INNER_STATE}/prefill/var.upper`]);
    if (copy.status !== 0) throw new Error(`copying the filled caches into ${master.name} failed: ${tail(copy.stderr)}`);
    return argv;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Start a kvm instance while reading its serial console socket (connected in a retry loop
 * before `start`: Ganeti starts QEMU with -S and continues it after its own setup, so nothing is
 * missed). `ready` reads everything the console said so far and returns what shows readiness
 * (src/boot/console.ts consoleReady), undefined before. Resolves with the seconds until then
 * and that text (and, with `evidence`, its first match in the console, looked for as the text
 * passes: the console kept is only its end); rejects (Error) when start fails, after the timeout (seconds) with the
 * console's end, or when aborted. `onConsole` gets each console line.
 */
export async function startAndWaitForConsole(
  box: BoxState,
  instance: string,
  o: { timeoutSeconds: number; ready: (console: string) => string | undefined; signal?: AbortSignal; onConsole?: (line: string) => void; evidence?: RegExp },
): Promise<{ seconds: number; line: string; evidence?: string }> {
  const master = box.nodes[0];
  const sock = `/var/run/ganeti/kvm-hypervisor/ctrl/${instance}.serial`;
  const reader = nodeArgv(master, ['sh', '-c', 'while ! socat -u UNIX-CONNECT:"$1" STDOUT 2>/dev/null; do sleep 0.2; done', 'sh', sock]);
  const child = startProcess(reader, { env: CLEAN_ENV, group: true, stdio: ['ignore', 'pipe', 'ignore'] });
  let console = '';
  let matched: string | undefined;
  let evidence: string | undefined;
  const t0 = Date.now();
  try {
    const seen = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), o.timeoutSeconds * 1000);
      o.signal?.addEventListener('abort', () => resolve(false), { once: true });
      child.stdout?.on('data', (b: Buffer) => {
        console += b.toString('latin1');
        // Early words (the kernel's about the firmware) are looked for as they pass: the text kept is only the end.
        if (o.evidence && evidence === undefined) evidence = o.evidence.exec(clean(console.slice(-(b.length + 1024))))?.[0].trim();
        if (console.length > 65536) console = console.slice(-32768);
        const last = clean(console).trimEnd().split('\n').slice(-1)[0];
        if (last && o.onConsole) o.onConsole(last.trim());
        matched = o.ready(console);
        if (matched !== undefined) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    const start = await gnt(master, ['gnt-instance', 'start', instance], { signal: o.signal });
    if (start.status !== 0) throw new Error(`gnt-instance start: exit ${start.status}: ${tail(start.stderr + start.stdout)}`);
    if (!(await seen)) {
      if (o.signal?.aborted) throw new Error('interrupted');
      throw new Error(`not ready on the serial console within ${o.timeoutSeconds} s; the console ended with:\n${tail(clean(console), 15)}`);
    }
    return { seconds: (Date.now() - t0) / 1000, line: matched ?? '', ...(evidence !== undefined ? { evidence } : {}) };
  } finally {
    if (child.pid) killGroup(child.pid, 'SIGKILL');
  }
}

/** Console text without escape sequences and carriage returns. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}
