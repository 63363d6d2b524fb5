/**
 * Starting processes: the one module that calls node:child_process. Every other module (and
 * test/helpers, and bench through dist/) runs commands through `runSync`, `run` or `startProcess`, gets
 * one result type (RunResult) and words a failure with `failureMessage`.
 *
 * Conventions here:
 * - argv is a list (no shell); `argv[0]` is looked up on `env.PATH`.
 * - `env` is the child's whole environment, passed exactly (nothing of process.env is added);
 *   without `env` the child inherits this process's environment.
 * - Times are in milliseconds (`timeoutMs`); RunResult.seconds is seconds.
 * - A process started with `group` (always so by `run` when it has a timeout or a signal) leads
 *   a process group of its own, and a timeout or an abort sends the signal to that whole group,
 *   so pipelines and the children of a script stop too (kernel.ts: killGroup).
 *
 * node:child_process is loaded on first use, not at import (it costs `new` ~5 ms at start-up).
 */
import type * as Cp from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { groupAlive, killGroup } from './kernel';

export type ChildProcess = Cp.ChildProcess;

/** node:child_process, loaded on first use. */
function cp(): typeof Cp {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:child_process') as typeof Cp;
}

/**
 * The file `name` runs as, looked up on `pathVar` (a PATH value; default /usr/local/bin:/usr/bin:/bin)
 * as execvp does: the first regular file with an execute bit for this user. Undefined when none.
 */
export function onPath(name: string, pathVar: string | undefined): string | undefined {
  for (const d of (pathVar ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = path.resolve(d || '.', name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** How a command ended. Never thrown: callers decide what a failure means to them. */
export interface RunResult {
  /** Exit status; -1 when it was ended by a signal, timed out, or could not be started. */
  status: number;
  /** The signal that ended it (SIGKILL after a timeout), or null. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The timeout passed and the process (its group, with `group`) was killed. */
  timedOut: boolean;
  /** Why it could not be started or run (ENOENT, EACCES, maxBuffer), when so. */
  error?: Error;
  /** Wall-clock seconds it took. */
  seconds: number;
}

type StdioItem = 'pipe' | 'ignore' | 'inherit' | number;

export interface RunOptions {
  /** The child's whole environment, passed exactly (default: this process's). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to its stdin, which is then closed (default: stdin is /dev/null). */
  input?: string | Buffer;
  /** Milliseconds before it is killed with `killSignal` (default: no limit). */
  timeoutMs?: number;
  /** Signal sent on timeout or abort (default SIGKILL). */
  killSignal?: NodeJS.Signals;
  /** Lead a process group of its own: a timeout (or an abort) kills the whole group. */
  group?: boolean;
  /** stdin when there is no `input`: 'ignore' (/dev/null, the default) or 'pipe' (closed at once: a socket, on which bash reads ~/.bashrc). */
  stdin?: StdioItem;
  /** stdout and stderr: 'pipe' (captured, the default), 'ignore', 'inherit' or an fd. */
  stdout?: StdioItem;
  stderr?: StdioItem;
  /** The most bytes captured of stdout or stderr (default 256 MiB). */
  maxBuffer?: number;
}

export interface AsyncRunOptions extends RunOptions {
  /** Aborting kills it (the group) with `killSignal`. */
  signal?: AbortSignal;
  /** Each non-empty output line (stdout and stderr, trimmed) as it arrives. */
  onLine?: (line: string) => void;
  /** After an abort, wait (at most this many ms) until nothing of its group is left. */
  drainMs?: number;
}

const MAX_BUFFER = 256 * 1024 * 1024;

const elapsed = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * Run argv to completion, blocking. Never throws: a command that cannot start has `error` set
 * (status -1). With `group` the command runs under setsid(1) (a missing command is then
 * setsid's exit 127), and a timeout kills its whole group, not only the command itself.
 */
export function runSync(argv: string[], opts: RunOptions = {}): RunResult {
  const t0 = process.hrtime.bigint();
  const killSignal = opts.killSignal ?? 'SIGKILL';
  const full = opts.group ? ['setsid', ...argv] : argv;
  const input = opts.input;
  const r = cp().spawnSync(full[0], full.slice(1), {
    encoding: 'utf8',
    cwd: opts.cwd,
    env: opts.env,
    input,
    stdio: [input === undefined ? (opts.stdin ?? 'ignore') : 'pipe', opts.stdout ?? 'pipe', opts.stderr ?? 'pipe'],
    timeout: opts.timeoutMs,
    killSignal,
    maxBuffer: opts.maxBuffer ?? MAX_BUFFER,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  // spawnSync kills only the process it started; the rest of the group goes now.
  if (timedOut && opts.group && r.pid) killGroup(r.pid, killSignal);
  return {
    status: r.status ?? -1,
    signal: r.signal,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    timedOut,
    error: r.error && !timedOut ? r.error : undefined,
    seconds: elapsed(t0),
  };
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** stdin, stdout, stderr and any further fds, as child_process takes them. */
  stdio?: Cp.StdioOptions;
  /** Lead a process group of its own (kill it whole with kernel.ts killGroup(child.pid)). */
  group?: boolean;
}

/**
 * Start argv and hand back the running child, for callers that stream (logs on fds, a console,
 * a pipe that is read while it runs). Errors come as the child's 'error' event, as Node's.
 */
export function startProcess(argv: string[], opts: StartOptions = {}): ChildProcess {
  return cp().spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'], detached: !!opts.group });
}

/**
 * Run argv to completion without blocking the event loop. Never rejects. A timeout or a
 * signal puts it in a group of its own, and ending it kills that group.
 */
export function run(argv: string[], opts: AsyncRunOptions = {}): Promise<RunResult> {
  const t0 = process.hrtime.bigint();
  const killSignal = opts.killSignal ?? 'SIGKILL';
  const group = opts.group ?? (opts.timeoutMs !== undefined || opts.signal !== undefined);
  const max = opts.maxBuffer ?? MAX_BUFFER;
  return new Promise((resolve) => {
    const child = startProcess(argv, {
      env: opts.env,
      cwd: opts.cwd,
      group,
      stdio: [opts.input === undefined ? (opts.stdin ?? 'ignore') : 'pipe', opts.stdout ?? 'pipe', opts.stderr ?? 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    let timedOut = false;
    let aborted = false;
    const kill = () => {
      if (!child.pid) return;
      if (!(group && killGroup(child.pid, killSignal))) child.kill(killSignal);
    };
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => ((timedOut = true), kill()), opts.timeoutMs) : undefined;
    const onAbort = () => ((aborted = true), kill());
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const take = (text: string) => {
      if (!opts.onLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) opts.onLine(l.trim());
    };
    child.stdout?.on('data', (b: Buffer) => {
      const s = b.toString();
      if (stdout.length < max) stdout += s;
      take(s);
    });
    child.stderr?.on('data', (b: Buffer) => {
      const s = b.toString();
      if (stderr.length < max) stderr += s;
      take(s);
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a child that exits without reading its input
      child.stdin.end(opts.input);
    }
    let settled = false;
    const done = async (status: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (aborted && group && child.pid && opts.drainMs) await waitGroupGone(child.pid, opts.drainMs);
      resolve({ status: status ?? -1, signal, stdout, stderr, timedOut, error, seconds: elapsed(t0) });
    };
    child.on('error', (err) => void done(null, null, err));
    child.on('close', (code, sig) => void done(code, sig));
  });
}

/** Resolves once nothing of process group `pgid` is left, or after `limitMs`; polls every 100 ms. */
export function waitGroupGone(pgid: number, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  return new Promise((resolve) => {
    const check = () => {
      if (!groupAlive(pgid) || Date.now() > until) return resolve();
      setTimeout(check, 100);
    };
    check();
  });
}

/** A command line as a person would type it (for messages only). */
export function commandLine(argv: string[]): string {
  return argv.map((a) => (/^[-\w.:,+/@%=]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The last `n` non-empty lines of `text`, trimmed. */
export function lastLines(text: string, n = 15): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

/**
 * One wording of a command that failed: "`argv` <how it ended>: <stderr's last lines>", how it
 * ended being "exited with N", "was killed by SIGX", "did not finish within S s" or
 * "could not be started (message)". Undefined when it succeeded (exit 0).
 */
export function failureMessage(argv: string[], r: RunResult, opts: { timeoutMs?: number; lines?: number } = {}): string | undefined {
  if (r.status === 0 && !r.timedOut && !r.error) return undefined;
  const how = r.error
    ? `could not be started (${r.error.message})`
    : r.timedOut
      ? `did not finish within ${opts.timeoutMs !== undefined ? Math.round(opts.timeoutMs / 1000) : Math.round(r.seconds)} s`
      : r.signal
        ? `was killed by ${r.signal}`
        : `exited with ${r.status}`;
  const tail = lastLines(r.stderr, opts.lines ?? 15);
  return `${commandLine(argv)} ${how}${tail ? `: ${tail}` : ''}`;
}
