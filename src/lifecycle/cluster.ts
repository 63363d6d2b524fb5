/**
 * An OS definition's lifecycle through a running box's real Ganeti commands: install it on every
 * node, `gnt-os diagnose`/`info`, `gnt-instance add` (a bad parameter value and a bad variant
 * refused by the master), start (on kvm: a login prompt on the serial console), `gnt-backup
 * export`, `gnt-backup import` as a new instance (which runs `rename` too), `gnt-instance
 * rename`, `reinstall`, `remove`, and `gnt-cluster verify`. Each step is timed.
 *
 * Ganeti's code explains each check: cmdlib/instance_create.py (LUInstanceCreate: variant and
 * OS parameter checks on the master, import), cmdlib/backup.py (export), hv_kvm (serial socket).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fse from 'fs-extra';
import { UserError } from '../errors';
import { readDefinition, requireDirectory } from '../definition/model';
import { PACKAGE_ROOT } from '../paths';
import { BoxState, INNER_STATE, INSTANCE_NAMES, inNode, nodeArgv } from '../cluster/box';
import { CLEAN_ENV, run, RunResult } from '../cluster/host';
import { PROVIDER } from '../cluster/files';

export interface LifecycleOptions {
  box: BoxState;
  /** The definition directory on the host; its name is the OS name. */
  osDir: string;
  /** Default: the first variant (none for a definition without variants.list). */
  variant?: string;
  /** `-O` parameters for add and reinstall, "name=value". */
  osparams: string[];
  /** A value the definition's verify must refuse, "name=value"; null: skip; undefined: one from the definition's declared choices. */
  badOsparam?: string | null;
  hypervisor: 'kvm' | 'fake';
  /** Extra `-H` parameters for the instance, "name=value". */
  hvparams: string[];
  diskTemplate: 'file' | 'ext';
  /** Disk 0, MiB. */
  diskMib: number;
  /** Memory of the instance, MiB. */
  memoryMib: number;
  /** Wait for a login prompt on the serial console (kvm only); 'auto': kvm and a debian-template definition. */
  boot: boolean | 'auto';
  bootTimeoutSeconds: number;
  /** Run create once on the host first, so caches that need a download are filled ('auto': debian template). */
  prefill: boolean | 'auto';
  log: (line: string) => void;
}

export interface LifecycleStep {
  name: string;
  ok: boolean;
  /** Wall time, seconds. */
  seconds: number;
  /** What ran (inside the box unless the step says otherwise). */
  command?: string[];
  /** Why it failed, or what was found. */
  detail?: string;
  skipped?: boolean;
}

export interface LifecycleResult {
  ok: boolean;
  os: string;
  variant: string | null;
  hypervisor: string;
  diskTemplate: string;
  steps: LifecycleStep[];
  /** Seconds for the whole lifecycle. */
  seconds: number;
}

/** Findings gnt-cluster verify always reports in a box here (cluster-facts.md): ignored with -I. */
export const KNOWN_FINDINGS: Record<string, string> = {
  ENODESETUP: 'this kernel has no /proc/sysrq-trigger (cannot be faked in a namespace)',
};

class StepFailed extends Error {}

/**
 * Run the lifecycle. In: a running box and the options. Out: every step with its result and
 * time (the result is ok when every step that ran passed). Instances it created are removed on
 * every path. Throws UserError only for unusable input (no such directory, unknown variant is a
 * failed step instead).
 */
export async function runLifecycle(opts: LifecycleOptions): Promise<LifecycleResult> {
  const t0 = Date.now();
  const osDir = path.resolve(opts.osDir);
  requireDirectory(osDir);
  const def = readDefinition(osDir);
  const os = def.name;
  const variant = opts.variant ?? (def.variants.length ? def.variants[0] : null);
  const osName = variant ? `${os}+${variant}` : os;
  const master = opts.box.nodes[0];
  const steps: LifecycleStep[] = [];
  const provenance = def.provenance;
  const isDebian = provenance?.template === 'debian';
  const boot = opts.boot === 'auto' ? opts.hypervisor === 'kvm' && isDebian : opts.boot && opts.hypervisor === 'kvm';

  const existing = new Set(gnt(master, ['gnt-instance', 'list', '--no-headers', '-o', 'name']).stdout.split('\n').filter(Boolean));
  const free = INSTANCE_NAMES.map((i) => i.name).filter((n) => !existing.has(n));
  if (free.length < 3) throw new UserError('the box has no free instance names left: remove some instances first');
  const [first, imported, renamed] = free;
  const created = new Set<string>();

  const hv = [opts.hypervisor, ...opts.hvparams].join(',');
  const disk = `0:size=${opts.diskMib}M${opts.diskTemplate === 'ext' ? `,provider=${PROVIDER}` : ''}`;
  const common = ['-t', opts.diskTemplate, '--disk', disk, '-H', hv, '-B', `minmem=${opts.memoryMib}M,maxmem=${opts.memoryMib}M`, '--no-ip-check', '--no-name-check', '-n', master.name];
  const osp = opts.osparams.length ? ['-O', opts.osparams.join(',')] : [];

  const step = async (name: string, fn: (s: LifecycleStep) => Promise<void> | void): Promise<boolean> => {
    const s: LifecycleStep = { name, ok: false, seconds: 0 };
    const t = process.hrtime.bigint();
    opts.log(`${name} ...`);
    try {
      await fn(s);
      s.ok = true;
    } catch (err) {
      s.ok = false;
      s.detail = s.detail ?? (err instanceof Error ? err.message : String(err));
    }
    s.seconds = Math.round(Number(process.hrtime.bigint() - t) / 1e6) / 1000;
    steps.push(s);
    opts.log(`${name}: ${s.skipped ? 'skipped' : s.ok ? 'ok' : 'FAILED'} (${s.seconds.toFixed(1)} s)${!s.ok && s.detail ? `\n  ${s.detail.split('\n').join('\n  ')}` : ''}`);
    return s.ok;
  };
  const gntStep = (s: LifecycleStep, argv: string[], timeoutSeconds = 1800): RunResult => {
    s.command = argv;
    const r = gnt(master, argv, timeoutSeconds);
    if (r.status !== 0) throw new StepFailed(`exit ${r.status}: ${tail(r.stderr + r.stdout)}`);
    return r;
  };

  let ok = true;
  const all = async () => {
    if (!(await step('install', () => install(opts.box, osDir, os)))) return;
    const doPrefill = opts.prefill === 'auto' ? isDebian : opts.prefill;
    if (doPrefill) {
      const pre = await step('prefill (on the host)', (s) => prefill(s, opts, osDir, variant, first));
      if (!pre) return;
    }
    const diag = await step('gnt-os diagnose', (s) => {
      const out = gntStep(s, ['gnt-os', 'diagnose']).stdout;
      const block = out.split(/\n(?=OS: )/).find((b) => b.startsWith(`OS: ${os} `));
      if (!block) throw new StepFailed(`${os} is not listed:\n${tail(out)}`);
      if (!block.startsWith(`OS: ${os} [global status: valid]`)) throw new StepFailed(tail(block));
      const listed = /Variants: \[([^\]]*)\]/.exec(block)?.[1].split(',').map((v) => v.trim()).filter(Boolean) ?? [];
      if (listed.join(',') !== def.variants.join(',')) throw new StepFailed(`variants ${listed.join(', ')}; expected ${def.variants.join(', ')}`);
    });
    if (!diag) return;
    await step('gnt-os info', (s) => {
      const out = gntStep(s, ['gnt-os', 'info', os]).stdout;
      if (!/valid: True/.test(out)) throw new StepFailed(`not valid:\n${tail(out)}`);
      for (const v of def.variants) if (!new RegExp(`\\b${escape(v)}\\b`).test(out)) throw new StepFailed(`variant ${v} missing:\n${tail(out)}`);
      for (const p of def.parameters) if (!out.includes(p.name)) throw new StepFailed(`parameter ${p.name} missing:\n${tail(out)}`);
    });
    const bad = opts.badOsparam === undefined ? badValueFromChoices(provenance?.answers as unknown) : opts.badOsparam;
    await step('bad parameter refused', (s) => {
      if (!bad) {
        s.skipped = true;
        s.detail = 'no parameter with declared choices (give one with --bad-osparam name=value)';
        return;
      }
      const argv = ['gnt-instance', 'add', '-o', osName, ...common, '--no-start', '-O', bad, first];
      s.command = argv;
      const r = gnt(master, argv);
      if (instanceExists(master, first)) {
        created.add(first);
        throw new StepFailed(`the master accepted ${bad}: the instance was added`);
      }
      if (r.status === 0) throw new StepFailed(`gnt-instance add with ${bad} succeeded`);
      s.detail = tail(r.stderr + r.stdout, 3);
    });
    await step('bad variant refused', (s) => {
      const argv = ['gnt-instance', 'add', '-o', `${os}+no-such-variant`, ...common, '--no-start', first];
      s.command = argv;
      const r = gnt(master, argv);
      if (instanceExists(master, first)) {
        created.add(first);
        throw new StepFailed('the master accepted an unknown variant');
      }
      if (r.status === 0) throw new StepFailed('gnt-instance add with an unknown variant succeeded');
      s.detail = tail(r.stderr + r.stdout, 3);
    });
    const added = await step('gnt-instance add', (s) => {
      const argv = ['gnt-instance', 'add', '-o', osName, ...common, ...osp, '--no-start', first];
      s.command = argv;
      const r = gnt(master, argv);
      if (instanceExists(master, first)) created.add(first);
      if (r.status !== 0) {
        const state = created.has(first) ? `; ${first} stays in the configuration (${instanceStatus(master, first)})` : '';
        throw new StepFailed(`exit ${r.status}${state}: ${tail(r.stderr + r.stdout)}${osLog(opts.box, 'add', osName, first)}`);
      }
    });
    if (!added) return;
    await step(boot ? 'gnt-instance start (login prompt on the serial console)' : 'gnt-instance start', async (s) => {
      if (boot) {
        s.detail = await startAndWaitForLogin(opts.box, first, opts.bootTimeoutSeconds);
      } else {
        gntStep(s, ['gnt-instance', 'start', first]);
        if (!/running/.test(instanceStatus(master, first))) throw new StepFailed(`status after start: ${instanceStatus(master, first)}`);
      }
      // A booted guest is shut down cleanly (ACPI; Ganeti kills it after the timeout), so export reads a clean filesystem.
      const stop = gnt(master, ['gnt-instance', 'shutdown', '--timeout', boot ? '180' : '0', first]);
      if (stop.status !== 0) throw new StepFailed(`gnt-instance shutdown: exit ${stop.status}: ${tail(stop.stderr + stop.stdout)}`);
    });
    const exported = await step('gnt-backup export', (s) => {
      gntStep(s, ['gnt-backup', 'export', '-n', master.name, first]);
    });
    let current = first;
    if (exported) {
      const imp = await step('gnt-backup import (runs rename)', (s) => {
        const argv = ['gnt-backup', 'import', ...common, '--src-node', master.name, '--src-dir', `/var/lib/ganeti/export/${first}`, '--net', '0:mac=generate', imported];
        s.command = argv;
        const r = gnt(master, argv);
        if (instanceExists(master, imported)) created.add(imported);
        if (r.status !== 0) throw new StepFailed(`exit ${r.status}: ${tail(r.stderr + r.stdout)}${osLog(opts.box, 'import', osName, imported)}`);
      });
      if (imp) current = imported;
    }
    const renamedOk = await step('gnt-instance rename', (s) => {
      gntStep(s, ['gnt-instance', 'rename', '-f', '--no-ip-check', '--no-name-check', current, renamed]);
      created.delete(current);
      created.add(renamed);
    });
    if (renamedOk) current = renamed;
    await step('gnt-instance reinstall', (s) => {
      gntStep(s, ['gnt-instance', 'reinstall', '-f', ...osp, current]);
    });
    await step('gnt-instance remove', (s) => {
      for (const name of [...created]) {
        gntStep(s, ['gnt-instance', 'remove', '-f', '--shutdown-timeout', '0', name]);
        created.delete(name);
      }
      gnt(master, ['gnt-backup', 'remove', first]);
    });
  };
  try {
    await all();
  } finally {
    if (created.size) {
      await step('cleanup (instances left behind)', (s) => {
        for (const name of [...created]) {
          gntStep(s, ['gnt-instance', 'remove', '-f', '--shutdown-timeout', '0', name]);
          created.delete(name);
        }
        gnt(master, ['gnt-backup', 'remove', first]);
      });
    }
    await step('gnt-cluster verify', (s) => {
      const argv = ['gnt-cluster', 'verify', '--error-codes', ...Object.keys(KNOWN_FINDINGS).flatMap((k) => ['-I', k])];
      const r = gntStep(s, argv);
      const findings = r.stdout.split('\n').filter((l) => /- (ERROR|WARNING):/.test(l) && !Object.keys(KNOWN_FINDINGS).some((k) => l.includes(`:${k}:`)));
      if (findings.length) throw new StepFailed(findings.join('\n'));
      s.detail = `known findings ignored: ${Object.entries(KNOWN_FINDINGS).map(([k, v]) => `${k} (${v})`).join('; ')}`;
    });
  }
  ok = steps.every((s) => s.ok);
  return { ok, os, variant, hypervisor: opts.hypervisor, diskTemplate: opts.diskTemplate, steps, seconds: (Date.now() - t0) / 1000 };
}

function gnt(node: BoxState['nodes'][number], argv: string[], timeoutSeconds = 1800): RunResult {
  return inNode(node, argv, { timeoutSeconds });
}

function instanceExists(node: BoxState['nodes'][number], name: string): boolean {
  return gnt(node, ['gnt-instance', 'list', '--no-headers', '-o', 'name']).stdout.split('\n').includes(name);
}

function instanceStatus(node: BoxState['nodes'][number], name: string): string {
  return gnt(node, ['gnt-instance', 'list', '--no-headers', '-o', 'status', name]).stdout.trim() || 'unknown';
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function tail(text: string, lines = 12): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** A "name=value" the definition's verify must refuse: a parameter with declared choices. */
function badValueFromChoices(answers: unknown): string | null {
  const params = (answers as { parameters?: { name?: string; choices?: string[] }[] } | undefined)?.parameters ?? [];
  const p = params.find((x) => x && typeof x.name === 'string' && Array.isArray(x.choices) && x.choices.length);
  return p ? `${p.name}=not-one-of-${(p.choices as string[]).join('-')}` : null;
}

/** The end of the newest OS log of this kind for the instance (/var/log/ganeti/os on the master). */
function osLog(box: BoxState, kind: string, osName: string, instance: string): string {
  const dir = path.join(box.stateDir, 'nodes', box.nodes[0].name.split('.')[0], 'var-log-ganeti', 'os');
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

/** Copy the definition into every node's /srv/ganeti/os (symlinks resolved: the box sees no host paths). */
function install(box: BoxState, osDir: string, os: string): void {
  for (const n of box.nodes) {
    const target = path.join(box.stateDir, 'nodes', n.name.split('.')[0], 'srv', 'ganeti', 'os', os);
    fse.removeSync(target);
    fse.copySync(osDir, target, { dereference: true });
  }
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

/**
 * Run the definition's create once on the host (which has a route out), as `ganeti-os run`
 * does, on a sparse disk in the state directory, with /var overlaid so that whatever it caches
 * there (the debian template's base system and image under /var/cache) is written into the state
 * directory and the host's /var stays as it was; then copy those files into the master's /var,
 * where the box's own create finds them (it reads the host's existing cache through its overlay).
 */
function prefill(s: LifecycleStep, opts: LifecycleOptions, osDir: string, variant: string | null, instance: string): void {
  const master = opts.box.nodes[0];
  const nodeDir = path.join(opts.box.stateDir, 'nodes', master.name.split('.')[0]);
  const dir = path.join(nodeDir, 'prefill');
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['var.upper', 'var.work', 'run']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  try {
    const argv = [
      process.execPath, path.join(PACKAGE_ROOT, 'bin', 'ganeti-os.js'), 'run', 'create',
      '--os-dir', osDir,
      '--disk', `${path.join(dir, 'run', 'disk0')}:${opts.diskMib}`,
      '--hypervisor', opts.hypervisor,
      '--name', instance,
      '--log-dir', path.join(dir, 'run'),
      ...(variant ? ['--variant', variant] : []),
      ...opts.osparams.flatMap((p) => ['--osparam', p]),
      ...opts.hvparams.flatMap((p) => ['--hvparam', p]),
      ...(opts.hypervisor === 'kvm' ? ['--hvparam', 'kernel_path=', '--hvparam', 'initrd_path='] : []),
    ];
    s.command = argv;
    const wrapped = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', PREFILL, 'sh', path.join(dir, 'var.upper'), path.join(dir, 'var.work'), '--', ...argv];
    const r = run(wrapped, { timeoutSeconds: 3600 });
    if (r.status !== 0) throw new StepFailed(`create on the host failed (exit ${r.status}): ${tail(r.stderr + r.stdout)}`);
    const copy = run(['nsenter', '--target', String(master.pid), '--mount', '--', 'sh', '-c', COPY_IN, 'sh', `${INNER_STATE}/prefill/var.upper`]);
    if (copy.status !== 0) throw new StepFailed(`copying the filled caches into ${master.name} failed: ${tail(copy.stderr)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Start a kvm instance while reading its serial console socket (connected in a retry loop
 * before `start`: Ganeti starts QEMU with -S and continues it after its own setup, so nothing is
 * missed). Resolves with the console's last line once "login:" appears; rejects after the
 * timeout (seconds) with the console's end.
 */
async function startAndWaitForLogin(box: BoxState, instance: string, timeoutSeconds: number): Promise<string> {
  const master = box.nodes[0];
  const sock = `/var/run/ganeti/kvm-hypervisor/ctrl/${instance}.serial`;
  const reader = nodeArgv(master, ['sh', '-c', 'while ! socat -u UNIX-CONNECT:"$1" STDOUT 2>/dev/null; do sleep 0.2; done', 'sh', sock]);
  const child = spawn(reader[0], reader.slice(1), { env: CLEAN_ENV, detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  let console = '';
  const t0 = Date.now();
  try {
    const seen = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutSeconds * 1000);
      child.stdout?.on('data', (b: Buffer) => {
        console += b.toString('latin1');
        if (console.length > 65536) console = console.slice(-32768);
        if (/login: *$/m.test(console)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
    });
    const start = await new Promise<RunResult>((resolve) => setImmediate(() => resolve(gnt(master, ['gnt-instance', 'start', instance]))));
    if (start.status !== 0) throw new StepFailed(`gnt-instance start: exit ${start.status}: ${tail(start.stderr + start.stdout)}`);
    if (!(await seen)) throw new StepFailed(`no login prompt on the serial console within ${timeoutSeconds} s; the console ended with:\n${tail(clean(console), 15)}`);
    const line = clean(console).trim().split('\n').filter((l) => l.trim()).slice(-1)[0] ?? '';
    return `login prompt after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${line.trim()}`;
  } finally {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Console text without escape sequences and carriage returns. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}
