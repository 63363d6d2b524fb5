/**
 * Running ganeti-os in tests: in-process with a fake context (main, or one command's function),
 * or as the built CLI (also as another user). Files and trees: ./trees.ts, re-exported here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Choice, Context, Prompter } from '../../src/context';
import { NewOptions, runNew } from '../../src/commands/new';
import { main, reportError } from '../../src/main';
import { noPrompter } from '../../src/prompter';
import { RunOptions, RunResult, run, runSync } from '../../src/system/process';
import { tempDir } from './trees';

export { FOREIGN_FIXTURE, foreignCopy, read, snapshotTree, tempDir, treeHash } from './trees';
export type { TreeEntry } from './trees';

export const REPO = path.resolve(__dirname, '..', '..');
export const BIN = path.join(REPO, 'bin', 'ganeti-os.js');

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** A prompter that answers from a queue and records the questions. */
export function scriptedPrompter(answers: unknown[]): Prompter & { asked: string[] } {
  const asked: string[] = [];
  const next = <T>(message: string): Promise<T> => {
    asked.push(message);
    if (!answers.length) return Promise.reject(new Error(`unexpected question: ${message}`));
    return Promise.resolve(answers.shift() as T);
  };
  return {
    asked,
    input: (m) => next<string>(m),
    select: <T>(m: string, _c: Choice<T>[]) => next<T>(m),
    checkbox: <T>(m: string, _c: Choice<T>[]) => next<T[]>(m),
    confirm: (m) => next<boolean>(m),
  };
}

export async function runInProcess(args: string[], opts: { cwd: string; interactive?: boolean; prompter?: Prompter; env?: Record<string, string> }): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const ctx: Context = {
    cwd: opts.cwd,
    env: opts.env ?? {},
    interactive: !!opts.interactive,
    prompter: opts.prompter ?? scriptedPrompter([]),
    log: { info: (m) => void (stderr += m + '\n'), warn: (m) => void (stderr += `warning: ${m}\n`) },
    out: { write: (t) => void (stdout += t) },
  };
  const code = await main(args, ctx);
  return { code, stdout, stderr };
}

export interface CliOptions {
  /** Where it runs (default: the checkout). */
  cwd?: string;
  /** Written to its stdin (default: a pipe closed at once). */
  input?: string;
  /** Added to PATH and HOME (this process's); a key set to undefined is left out (`process.env`: all of this process's environment). */
  env?: Record<string, string | undefined>;
  /** Milliseconds before `killSignal` (default 30000; 0: no limit). */
  timeout?: number;
  /** Sent when the timeout passes (default SIGTERM; SIGINT to stop it as Ctrl-C would). */
  killSignal?: NodeJS.Signals;
  /** Another build of the CLI (default: this checkout's bin/ganeti-os.js; binForOtherUser's for `uid`). */
  bin?: string;
  /**
   * Run as this user, with the group of the same number and no supplementary groups (setpriv,
   * as Node's spawn with uid/gid does): needs root. Give `bin` from binForOtherUser and, to
   * leave out this process's HOME, `env: { HOME: undefined }`.
   */
  uid?: number;
}

function cliCommand(args: string[], opts: CliOptions): [string[], RunOptions] {
  return [
    [...(opts.uid === undefined ? [] : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups']), process.execPath, opts.bin ?? BIN, ...args],
    {
      cwd: opts.cwd ?? REPO,
      input: opts.input,
      stdin: 'pipe',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...(opts.env ?? {}) },
      timeoutMs: opts.timeout === 0 ? undefined : (opts.timeout ?? 30000),
      killSignal: opts.killSignal ?? 'SIGTERM',
    },
  ];
}

/** The built CLI, run to its end. */
export function runCli(args: string[], opts: CliOptions = {}): Captured & { raw: RunResult } {
  const r = runSync(...cliCommand(args, opts));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, raw: r };
}

/** The same without blocking this process: for several CLIs at once. */
export async function runCliAsync(args: string[], opts: CliOptions = {}): Promise<Captured & { raw: RunResult }> {
  const r = await run(...cliCommand(args, opts));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, raw: r };
}

/** runCli that must succeed: throws `ganeti-os ARGS failed: STDERR` when it exits non-zero. */
export function runCliOk(args: string[], opts: CliOptions = {}): Captured & { raw: RunResult } {
  const r = runCli(args, opts);
  if (r.code !== 0) throw new Error(`ganeti-os ${args.join(' ')} failed: ${r.stderr}`);
  return r;
}

/**
 * A definition `name` made in `parent` by the built CLI (`ganeti-os new NAME --yes ARGS...`, run
 * in `parent`); its directory. Throws with the CLI's stderr when `new` fails.
 */
export function newDefinition(parent: string, name: string, args: string[] = []): string {
  const r = runCli(['new', name, '--yes', ...args], { cwd: parent });
  if (r.code !== 0) throw new Error(`ganeti-os new ${name} exited with ${r.code}: ${r.stderr}`);
  return path.join(parent, name);
}

/** The same made in this process (runNew with `opts`, `yes` set), for tests that need no real CLI. */
export async function newDefinitionInProcess(parent: string, name: string, opts: Partial<NewOptions> = {}): Promise<string> {
  const r = await runCommand(runNew, parent, { name, yes: true, ...opts });
  if (r.code !== 0) throw new Error(`new ${name} failed (exit ${r.code}): ${r.err}`);
  return path.join(parent, name);
}

/** A context that collects what a command writes (no terminal, no colour). */
export interface CapturedContext {
  ctx: Context;
  out: () => string;
  err: () => string;
}

export function captureContext(cwd: string): CapturedContext {
  let out = '';
  let err = '';
  const ctx: Context = {
    cwd,
    env: { NO_COLOR: '1' },
    interactive: false,
    prompter: noPrompter,
    log: { info: (m) => void (err += m + '\n'), warn: (m) => void (err += `warning: ${m}\n`) },
    out: { write: (t) => void (out += t) },
  };
  return { ctx, out: () => out, err: () => err };
}

/** Run a command function as main would: returns the exit code and what it printed. */
export async function runCommand<O>(fn: (ctx: Context, opts: O) => Promise<void>, cwd: string, opts: O): Promise<{ code: number; out: string; err: string }> {
  const c = captureContext(cwd);
  let code = 0;
  try {
    await fn(c.ctx, opts);
  } catch (e) {
    code = reportError(c.ctx, e);
  }
  return { code, out: c.out(), err: c.err() };
}

/** Run the CLI in-process without a terminal; collect stdout, stderr and the exit code. */
export async function cli(cwd: string, args: string[], env: Record<string, string | undefined> = {}) {
  const r = await runInProcess(args, { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, ...env } as Record<string, string> });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr.replace(/\n$/, '') };
}

/**
 * The built CLI where another user (the tests that check refusals as uid 65534) can run it,
 * wherever the checkout sits (a clone in /root, mode 0700 on Debian, is closed to others): the
 * checkout itself when that user can already run it, else a copy of what the package ships
 * (bin/, dist/, templates/, package.json) and its runtime dependencies (package-lock.json's
 * non-dev entries) in a directory of its own, readable by everyone. Needs root (setpriv).
 * `dispose` removes the copy, if one was made.
 */
export function binForOtherUser(uid = 65534): { bin: string; dispose: () => void } {
  const asOther = (bin: string) => runCliAs({ bin }, ['--version'], { uid });
  if (asOther(BIN).code === 0) return { bin: BIN, dispose: () => undefined };
  const copy = tempDir('cli-copy');
  fs.chmodSync(copy, 0o755);
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const runtime = Object.entries(lock.packages)
    .filter(([p, v]) => p.startsWith('node_modules/') && !v.dev && !v.devOptional && fs.existsSync(path.join(REPO, p)))
    .map(([p]) => p);
  for (const p of ['bin', 'dist', 'templates', 'package.json', ...runtime]) fs.cpSync(path.join(REPO, p), path.join(copy, p), { recursive: true });
  for (const d of [copy, ...fs.readdirSync(copy, { recursive: true, withFileTypes: true }).map((e) => path.join(e.parentPath, e.name))]) {
    const st = fs.lstatSync(d);
    if (!st.isSymbolicLink()) fs.chmodSync(d, (st.mode & 0o7777) | (st.isDirectory() || st.mode & 0o100 ? 0o555 : 0o444));
  }
  const bin = path.join(copy, 'bin', 'ganeti-os.js');
  const check = asOther(bin);
  if (check.code !== 0) throw new Error(`uid ${uid} cannot run the copy of the CLI in ${copy}: ${check.stderr}`);
  return { bin, dispose: () => fs.rmSync(copy, { recursive: true, force: true }) };
}

/**
 * runCli as another user (`opts.uid`, default 65534) with `other.bin` (binForOtherUser's), in
 * `/`, its environment PATH and `opts.env` only (no HOME unless given).
 */
export function runCliAs(other: { bin: string }, args: string[], opts: CliOptions = {}): Captured & { raw: RunResult } {
  return runCli(args, { cwd: '/', ...opts, uid: opts.uid ?? 65534, bin: other.bin, env: { HOME: undefined, ...(opts.env ?? {}) } });
}
