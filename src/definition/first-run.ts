/**
 * What Ganeti does first with a definition, done without a disk: before any instance add or
 * reinstall every node runs ValidateOS (src/ganeti/validate-os.ts), that is the definition's own
 * `verify parameters` with the environment Ganeti builds (nothing else: no HOME, no TERM). Here
 * it runs for every variant with no OS parameters given (so each declared parameter takes its
 * declared default), in a scratch copy of the definition (whatever verify writes is thrown away).
 * A ganeti-os definition without a verify (API 15, 10) gets the part of `create` that comes
 * before any disk instead: its runtime sourcing every configuration layer
 * (lib/runtime.sh's gos_load_config and gos_load_params), as `create` does first.
 *
 * A failure here is a failure on the node: Ganeti refuses every instance of that variant.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { osEnvironment } from '../ganeti/environment';
import { buildInstance } from '../ganeti/instance';
import type { GanetiRelease } from '../ganeti/releases';
import { OS_API_V20, OS_SCRIPT_CREATE, OS_SCRIPT_VERIFY } from '../ganeti/rules';
import { validateOsChecks, validateOsSync } from '../ganeti/validate-os';
import type { OsDefinition } from './model';
import type { Problem } from './checks';
import { ownerTag, removeDeadLeftovers } from './lock';
import { runSync } from '../system/process';

/** What one variant's first run found. */
export interface FirstRun {
  /** The instance OS name it ran for ("os+variant", or "os"). */
  osName: string;
  /** 'verify': ValidateOS ran verify; 'config': the runtime's configuration layers were sourced. */
  how: 'verify' | 'config';
  ok: boolean;
  /** Output (stdout and stderr) of what ran. */
  output: string;
  /** Ganeti's error, word for word (verify), or what the shell said (config). */
  error?: string;
  timedOut?: boolean;
  /** The user it ran as, when not root (Ganeti runs scripts as root). */
  uid?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Scripts whose static findings mean the kernel cannot execute them: nothing to run then. */
export const UNRUNNABLE_CODES = new Set(['no-shebang', 'crlf-shebang', 'interpreter-missing', 'interpreter-relative']);

/** The OS names Ganeti's users would give: one per variant, or the bare name. */
function osNames(def: OsDefinition): string[] {
  return def.variants.length ? def.variants.map((v) => `${def.name}+${v}`) : [def.name];
}

/** Whether the definition's create is a ganeti-os shim over lib/runtime.sh's gos_main. */
function ganetiOsRuntime(def: OsDefinition): boolean {
  try {
    const create = fs.readFileSync(path.join(def.dir, OS_SCRIPT_CREATE), 'latin1');
    const runtime = fs.readFileSync(path.join(def.dir, 'lib', 'runtime.sh'), 'latin1');
    return /lib\/runtime\.sh/.test(create) && /\bgos_main create\b/.test(create) && /^gos_load_config\(\)/m.test(runtime) && /^gos_load_params\(\)/m.test(runtime);
  } catch {
    return false;
  }
}

/** The start of a scratch copy's name in TMPDIR: `ganeti-os-first-run-<owner tag>-XXXXXX`. */
const SCRATCH_PREFIX = 'ganeti-os-first-run-';

/** The owner tag in the name of a scratch copy (lock.ts ownerTag); undefined for any other name. */
function scratchOwner(name: string): string | undefined {
  return name.startsWith(SCRATCH_PREFIX) ? /^(\d+_\d*_.+)-[A-Za-z0-9]{6}$/.exec(name.slice(SCRATCH_PREFIX.length))?.[1] : undefined;
}

/**
 * A copy of the definition under a new temporary directory, with the same name (Ganeti's OS
 * name); symlinks are followed, ganeti-os's own records left out. The caller removes `root`.
 * The copies a killed run left in TMPDIR (their owner gone: lock.ts) are removed first.
 */
function scratchCopy(def: OsDefinition): { root: string; dir: string } {
  const me = ownerTag();
  // This process's own copies are never a dead run's: not even looked at.
  removeDeadLeftovers(os.tmpdir(), (n) => {
    const tag = scratchOwner(n);
    return tag === me ? undefined : tag;
  });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${SCRATCH_PREFIX}${me}-`));
  const dir = path.join(root, def.name);
  try {
    fs.cpSync(def.dir, dir, {
      recursive: true,
      dereference: true,
      filter: (src) => {
        const rel = path.relative(def.dir, src);
        if (rel === '') return true;
        if (rel === '.git' || rel === '.ganeti-os' || rel.startsWith('.ganeti-os/') || rel === '.ganeti-os.journal') return false;
        // A dangling symlink, a FIFO or a socket: what the scripts find there is nothing to copy.
        try {
          const st = fs.statSync(src);
          return st.isFile() || st.isDirectory();
        } catch {
          return false;
        }
      },
    });
  } catch (err) {
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return { root, dir };
}

const PROBE = [
  'set -euo pipefail',
  'GOS_DIR=$1',
  '# shellcheck source=/dev/null',
  '. "$GOS_DIR/lib/runtime.sh"',
  'GOS_SCRIPT=create',
  'gos_load_config',
  'gos_load_params',
].join('\n');

/**
 * Run what Ganeti runs first, for every variant (see the module comment). Nothing when Ganeti
 * refuses the definition, when verify cannot be executed (`skip`), or when there is nothing to
 * run. Never touches the definition itself.
 */
export function firstRuns(def: OsDefinition, opts: { timeoutMs?: number; skip?: boolean; release?: GanetiRelease; uid?: number } = {}): FirstRun[] {
  if (!def.verdict.valid || !def.apiVersions || opts.skip) return [];
  const info = { name: def.name, apiVersions: def.apiVersions, variants: def.variants, parameterFields: def.parameterFields };
  const useVerify = (def.maxApiVersion ?? 0) >= OS_API_V20 && def.files[OS_SCRIPT_VERIFY]?.kind === 'file';
  const useConfig = !useVerify && ganetiOsRuntime(def);
  if (!useVerify && !useConfig) return [];
  // Ganeti's own checks come before anything runs: when they fail, nothing runs (reported apart).
  if (useVerify && osNames(def).some((n) => validateOsChecks(info, n, []))) return [];
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let scratch: { root: string; dir: string };
  try {
    scratch = scratchCopy(def);
  } catch {
    return []; // an unreadable definition: the static checks say why
  }
  const asUser = opts.uid !== undefined && opts.uid !== 0 ? { uid: opts.uid } : {};
  try {
    return osNames(def).map((osName): FirstRun => ({ ...runOne(osName), ...asUser }));
  } finally {
    fs.rmSync(scratch.root, { recursive: true, force: true });
  }

  function runOne(osName: string): FirstRun {
    // Messages name the definition, not its scratch copy.
    const real = (t: string | undefined) => (t ?? '').split(scratch.dir).join(def.dir);
    if (useVerify) {
      const a = validateOsSync(info, scratch.dir, osName, [], { timeoutMs });
      if (a.ok) return { osName, how: 'verify', ok: true, output: real(a.output) };
      return { osName, how: 'verify', ok: false, output: real(a.output), error: real(a.error), ...(a.timedOut ? { timedOut: true } : {}) };
    }
    const r = runSync(['bash', '-c', PROBE, 'create', scratch.dir], {
      cwd: scratch.dir,
      env: createEnvironment(def, osName, scratch.root, opts.release ?? '3.0'),
      timeoutMs,
      killSignal: 'SIGKILL',
    });
    const output = real(`${r.stdout}${r.stderr}`);
    if (r.timedOut) return { osName, how: 'config', ok: false, output, timedOut: true, error: 'timed out' };
    return r.status === 0 ? { osName, how: 'config', ok: true, output } : { osName, how: 'config', ok: false, output, error: `exit code ${r.signal ?? (r.error ? null : r.status)}` };
  }
}

/**
 * What create gets for the instance `gnt-instance add` builds by default (one 1 GiB file disk,
 * which is never touched: the probe stops before any disk step).
 */
function createEnvironment(def: OsDefinition, osName: string, scratch: string, release: GanetiRelease) {
  const quiet = { info: () => undefined, warn: () => undefined };
  const variant = osName.includes('+') ? osName.slice(osName.indexOf('+') + 1) : undefined;
  const inst = buildInstance(
    quiet,
    { name: def.name, maxApiVersion: def.maxApiVersion ?? 0, variants: def.variants, parameters: def.parameterFields.map((f) => f[0]) },
    { release, ...(variant !== undefined ? { variant } : {}) },
    [{ path: path.join(scratch, 'disk0'), size: 1024, template: 'file', fileDriver: 'loop', mode: 'rw', uuid: '11111111-1111-4111-8111-111111111100' }],
  );
  return osEnvironment(inst, { name: def.name, apiVersions: def.apiVersions ?? [], variants: def.variants }, 0);
}

/** At most `n` lines of `text`, trimmed, for a message. */
function shortOutput(text: string, n = 6): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '');
  const shown = lines.slice(-n).join(' | ');
  return lines.length > n ? `... | ${shown}` : shown;
}

/** The findings of `firstRuns`: an error per variant that fails, a warning per one that hangs. */
export function firstRunFindings(runs: FirstRun[]): Problem[] {
  const out: Problem[] = [];
  for (const r of runs) {
    if (r.ok) continue;
    if (r.timedOut) {
      out.push({
        severity: 'warning',
        code: 'first-run-timeout',
        message: `${r.how === 'verify' ? "verify (as Ganeti's ValidateOS runs it)" : 'loading the configuration layers'} for ${r.osName} did not finish in time: Ganeti waits for it on every instance add`,
        ...(r.how === 'verify' ? { file: OS_SCRIPT_VERIFY } : {}),
      });
      continue;
    }
    const who = r.uid !== undefined ? ` (validate ran it as uid ${r.uid}; Ganeti runs it as root: run validate as root to be sure)` : '';
    if (r.how === 'verify') {
      out.push({
        severity: 'error',
        code: 'verify-refuses',
        message: `Ganeti refuses every instance of ${r.osName}: its ValidateOS runs verify (with Ganeti's environment only, no OS parameter given, so each takes its declared default) and it fails: ${shortOutput(r.error ?? '')}${who}`,
        file: OS_SCRIPT_VERIFY,
      });
    } else {
      out.push({
        severity: 'error',
        code: 'config-fails',
        message: `every script fails for ${r.osName} before it touches a disk: sourcing its configuration layers as create does (lib/runtime.sh: gos_load_config, gos_load_params; Ganeti's environment only) exits with ${r.error}: ${shortOutput(r.output)}${who}`,
      });
    }
  }
  return out;
}
