/**
 * Running an OS script the way a Ganeti node runs it (3.0 and 3.1 alike): utils.RunCmd for
 * create, rename and verify (environment reset, working directory the OS directory, stdin
 * closed, output appended to the log), and the import-export daemon's `bash -o errexit -o pipefail` pipeline for
 * export/import with the EXP_SIZE_FD pipe. Log names as backend._InstanceLogName.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../context';
import { UserError } from '../errors';
import {
  EnvMap,
  InstanceShape,
  OsInfo,
  exportEnvironment,
  importEnvironment,
  importExportCommandEnv,
  osCoreEnv,
  osEnvironment,
} from './environment';
import { DEFAULT_INSTANCE } from './instance';
import { OS_SCRIPT_EXPORT, OS_SCRIPT_IMPORT, OS_SCRIPT_RENAME, OS_SCRIPT_VERIFY, pyIntParse } from './rules';
import { killGroup } from '../system/kernel';
import { ChildProcess, startProcess, waitGroupGone } from '../system/process';

const MIB = 1024 * 1024;
/** The descriptor the size pipe gets in the script (the one Ganeti's import-export daemon ends up with, 4). */
export const EXP_SIZE_FD = 4;

export function defaultLogDir(ctx: Context): string {
  const state = ctx.env.XDG_STATE_HOME || path.join(ctx.env.HOME || os.homedir(), '.local', 'state');
  return path.join(state, 'ganeti-os', 'log');
}

/** utils.TimestampForFilename: local time, %Y-%m-%d_%H_%M_%S. */
export function timestampForFilename(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}_${p(d.getMinutes())}_${p(d.getSeconds())}`;
}

/** backend._InstanceLogName(kind, os, instance, component), with '/' kept out of the name. */
export function logName(script: string, inst: InstanceShape, oldName: string, index: number): string {
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

/** How the shell that ran a script ended (before the outcome is judged). */
export interface ScriptExit {
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

/** Where an export stream goes or an import stream comes from: a file path, or an open stream (stdin/stdout). */
export type StreamEnd = string | NodeJS.ReadableStream | NodeJS.WritableStream;

/** One script run, as a Ganeti node would start it. */
export interface ScriptRequest {
  script: string;
  osDir: string;
  inst: InstanceShape;
  os: OsInfo;
  /** DEBUG_LEVEL=1 for create/rename (Ganeti ignores it for verify, export and import). */
  debug?: boolean;
  /** rename: OLD_INSTANCE_NAME (default: the instance name on a fresh cluster, instance1.example.com). */
  oldName?: string;
  /** create: INSTANCE_REINSTALL=1. */
  reinstall?: boolean;
  /** export/import: the disk. */
  index?: number;
  /** export: where the stream goes; import: the stream to read (a path, or an open stream). */
  stream?: StreamEnd;
  /** Directory of the log file (created 0750). */
  logDir: string;
  /** A transient status line: the script's name, time and latest log line, or the bytes streamed ('' at the end). */
  progress?: (line: string) => void;
  /** The bare phase (the latest log line, or the bytes streamed), for a caller that draws its own line. */
  phase?: (text: string) => void;
  /** Aborting stops the script (SIGTERM to its process group, so its cleanup traps run). */
  signal?: AbortSignal;
}

/** What a script run came to. */
export interface ScriptOutcome {
  script: string;
  ok: boolean;
  exitCode: number | null;
  /** The signal number that ended the script, if any. */
  signal: number | null;
  /** "exited with exit code N" / "terminated by signal N", as Ganeti words it. */
  failReason: string;
  log: string;
  /** Where this run's output starts in the log (the log is appended to, as Ganeti's). */
  logOffset: number;
  /** Seconds. */
  seconds: number;
  /** export/import: bytes streamed. */
  bytes?: number;
  /** export/import: the size announced on EXP_SIZE_FD (bytes), when readable as Ganeti reads it. */
  announced?: number;
  announcedRaw?: string;
}

/** The default OLD_INSTANCE_NAME: an instance on a fresh cluster was added under the default name. */
export const DEFAULT_OLD_NAME = DEFAULT_INSTANCE;

/**
 * The environment and arguments Ganeti gives `req.script`: ValidateOS (verify, core
 * environment, debug 0, argument `parameters`), _GetImportExportIoCommand (export/import, debug
 * 0, EXP_SIZE_FD, and the LC_ALL=C that StartDaemon adds), OSEnvironment for create and rename
 * (with INSTANCE_REINSTALL / OLD_INSTANCE_NAME).
 */
export function scriptEnvironment(req: ScriptRequest): { env: EnvMap; args: string[] } {
  const { script, inst, os: osInfo } = req;
  if (script === OS_SCRIPT_VERIFY) return { env: osCoreEnv(inst.os, osInfo, inst.osparams, 0), args: ['parameters'] };
  if (script === OS_SCRIPT_EXPORT) return { env: importExportCommandEnv(exportEnvironment(inst, osInfo, req.index ?? 0), EXP_SIZE_FD), args: [] };
  if (script === OS_SCRIPT_IMPORT) return { env: importExportCommandEnv(importEnvironment(inst, osInfo, req.index ?? 0), EXP_SIZE_FD), args: [] };
  const env = osEnvironment(inst, osInfo, req.debug ? 1 : 0);
  if (script === OS_SCRIPT_RENAME) env.OLD_INSTANCE_NAME = req.oldName ?? DEFAULT_OLD_NAME;
  else if (req.reinstall) env.INSTANCE_REINSTALL = '1';
  return { env, args: [] };
}

/** The log file a run of `req` appends to (backend._InstanceLogName; one per second, as Ganeti's). */
export function scriptLogFile(req: ScriptRequest): string {
  const oldName = req.script === OS_SCRIPT_RENAME ? (req.oldName ?? DEFAULT_OLD_NAME) : req.inst.name;
  return path.join(req.logDir, logName(req.script, req.inst, oldName, req.index ?? 0));
}

/**
 * `mkdir -p` of the log directory, level by level (Node's recursive mkdir loops forever where
 * mkdir(2) keeps answering ENOENT, as in /proc), then a check that it can be written in: a
 * UserError naming the directory and the cause, never a hang or a crash.
 */
function makeLogDir(dir: string): void {
  const fail = (why: string): never => {
    throw new UserError(`cannot use the log directory ${dir}: ${why}`, ['Name another one with --log-dir DIR.']);
  };
  const missing: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') fail(`${d}: ${(err as Error).message}`);
    }
    if (st) {
      if (!st.isDirectory()) fail(`${d} is not a directory`);
      break;
    }
    if (path.dirname(d) === d) break;
    missing.unshift(d);
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode: 0o750 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') fail(`cannot create ${d}: ${(err as Error).message}`);
    }
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    fail(`you cannot write in it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** The log file, opened for appending; a UserError naming it when it cannot be. */
function openLog(logFile: string): number {
  try {
    return fs.openSync(logFile, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK, 0o640);
  } catch (err) {
    throw new UserError(`cannot write the log file ${logFile}: ${(err as Error).message}`, ['Name another log directory with --log-dir DIR.']);
  }
}

/**
 * Run one script as a Ganeti node runs it and report how it went; the log file is created in
 * `req.logDir` under Ganeti's name. Resolves also when the script fails (see `ok`); throws
 * UserError when the script cannot be started at all (no log directory, ENOEXEC, an unopenable
 * stream). Memory stays flat: streams pass through in chunks, the log is read in bounded pieces.
 */
export async function runOsScript(req: ScriptRequest): Promise<ScriptOutcome> {
  const { env, args } = scriptEnvironment(req);
  makeLogDir(req.logDir);
  const logFile = scriptLogFile(req);
  let logOffset = 0;
  try {
    logOffset = fs.statSync(logFile).size;
  } catch {
    // a new log
  }
  const start = Date.now();
  const isIe = req.script === OS_SCRIPT_EXPORT || req.script === OS_SCRIPT_IMPORT;
  let result: ScriptExit;
  if (isIe) {
    if (req.stream === undefined) throw new UserError(`${req.script} needs a stream`);
    result = await runImportExport(req, env, logFile, req.stream);
  } else {
    result = await runPlain(req, args, env, logFile);
  }
  const ok = result.code === 0 && !result.signal;
  return {
    script: req.script,
    ok,
    exitCode: result.code,
    signal: result.signal,
    failReason: result.signal ? `terminated by signal ${result.signal}` : `exited with exit code ${result.code}`,
    log: logFile,
    logOffset,
    seconds: (Date.now() - start) / 1000,
    ...(isIe ? { bytes: result.bytes, announced: result.announced, announcedRaw: result.announcedRaw } : {}),
  };
}

/**
 * The error Ganeti reports for a failed script: verify quotes its output (only this run's),
 * the others the last 20 lines of the log; lines that look like the real cause (E:, error,
 * failed) from earlier in this run's output are added when the tail does not hold them.
 */
export function scriptFailure(o: ScriptOutcome): UserError {
  if (o.script === OS_SCRIPT_VERIFY) {
    return new UserError(`OS validation script failed (${o.failReason}), output: ${readFrom(o.log, o.logOffset)}`);
  }
  const what = o.script === OS_SCRIPT_RENAME ? 'rename' : o.script === OS_SCRIPT_EXPORT ? 'export' : o.script === OS_SCRIPT_IMPORT ? 'import' : 'create';
  const tail = tailFile(o.log, 20, o.logOffset);
  const causes = errorLines(o.log, o.logOffset).filter((l) => !tail.includes(l));
  const details = causes.length ? ['earlier errors in the log:', ...causes.map((l) => `  ${l}`)] : [];
  return new UserError(`OS ${what} script failed (${o.failReason}), last lines in the log file:\n${tail.join('\n')}`, [...details, `log: ${o.log}`]);
}

/** Lines of a log (from `offset`) that name a failure: apt's `E:`, `error`, `failed`, `cannot` (at most 10, the last ones). */
export function errorLines(p: string, offset = 0): string[] {
  const out: string[] = [];
  forEachLine(p, offset, (line) => {
    if (/^E: |\berror\b|\bfailed\b|\bcannot\b|\bcould not\b/i.test(line)) {
      out.push(safeEncode(line.slice(0, 300)));
      if (out.length > 10) out.shift();
    }
  });
  return out;
}

/** Calls fn for every line of p from offset, reading 64 KiB at a time. */
function forEachLine(p: string, offset: number, fn: (line: string) => void): void {
  let fd: number;
  try {
    fd = fs.openSync(p, 'r');
  } catch {
    return;
  }
  try {
    const buf = Buffer.alloc(64 * 1024);
    let pos = offset;
    let rest = '';
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      pos += n;
      const lines = (rest + buf.toString('utf8', 0, n)).split('\n');
      rest = lines.pop() ?? '';
      if (rest.length > 64 * 1024) rest = rest.slice(-4096);
      for (const l of lines) fn(l);
    }
    if (rest) fn(rest);
  } finally {
    fs.closeSync(fd);
  }
}

/** The last line of a log that is not blank (read from the last 4 KiB), for progress. */
function lastLogLine(p: string, offset: number): string {
  const lines = tailFile(p, 5, offset).filter((l) => l.trim() !== '');
  return lines.length ? lines[lines.length - 1] : '';
}

const elapsed = (start: number) => {
  const s = Math.floor((Date.now() - start) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

/** utils.RunCmd(cmd, env, cwd=os dir, output=logfile, reset_env=True): stdin a closed pipe. */
function runPlain(req: ScriptRequest, args: string[], env: EnvMap, logFile: string): Promise<ScriptExit> {
  const { osDir, script } = req;
  const file = path.join(osDir, script);
  const log = openLog(logFile); // RunCmd opens the log before it forks
  const offset = fs.fstatSync(log).size;
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
  const start = Date.now();
  return new Promise<ScriptExit>((resolve, reject) => {
    // stdin a pipe that is already closed, as RunCmd gives it (a Node 'pipe' would be a socket,
    // which makes bash read ~/.bashrc); `unset PWD` keeps sh from adding it to the environment.
    const child = startProcess(['/bin/sh', '-c', 'unset PWD; : | exec "$0" "$@"', file, ...args], { cwd: osDir, env, stdio: ['ignore', log, log], group: !!req.signal });
    const stop = abortHandler(child, req.signal);
    // Progress: the script's latest log line, with the time it has run.
    const tick = () => {
      const line = lastLogLine(logFile, offset).slice(0, 100);
      req.progress?.(`${script} ${elapsed(start)}: ${line}`);
      if (line) req.phase?.(line);
    };
    const timer = req.progress || req.phase ? setInterval(tick, 500) : undefined;
    const done = () => {
      if (timer) clearInterval(timer);
      if (req.progress) req.progress('');
      stop();
      closeLog();
    };
    child.on('error', (err) => {
      done();
      reject(new UserError(`cannot run ${file}: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      void afterGroup(child, req.signal).then(() => {
        done();
        resolve({ code, signal: signalNumber(sig) });
      });
    });
  });
}

/**
 * Sends SIGTERM to the child's process group when the signal aborts (the child was started in
 * its own group: the script and everything it started get it, and run their cleanup traps);
 * returns the function that stops listening.
 */
function abortHandler(child: ChildProcess, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const onAbort = () => {
    if (!(child.pid && killGroup(child.pid, 'SIGTERM'))) child.kill('SIGTERM');
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/**
 * Resolves once nothing of the child's process group is left, when the run was aborted (else at
 * once): the shell Ganeti's command line starts may end before the script it runs has finished
 * its cleanup trap, and a caller that reports "interrupted" must not leave it running. Polls
 * every 100 ms, for at most `limitMs` (60 s).
 */
function afterGroup(child: ChildProcess, signal: AbortSignal | undefined, limitMs = 60_000): Promise<void> {
  if (!signal?.aborted || !child.pid) return Promise.resolve();
  return waitGroupGone(child.pid, limitMs);
}

const shellQuote = (s: string) => (/^[-\w.:,+/@%=]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * As the import-export daemon runs them: `bash -o errexit -o pipefail -c "( cd OSDIR && SCRIPT; )"`,
 * EXP_SIZE_FD a pipe whose first line is the predicted size in bytes. The stream passes through
 * in chunks with back-pressure (nothing is buffered whole).
 */
function runImportExport(req: ScriptRequest, env: EnvMap, logFile: string, streamEnd: StreamEnd): Promise<ScriptExit> {
  const { script, osDir } = req;
  const isExport = script === OS_SCRIPT_EXPORT;
  const streamPath = typeof streamEnd === 'string' ? streamEnd : isExport ? 'standard output' : 'standard input';
  let fileFd: number | undefined;
  if (typeof streamEnd === 'string') {
    try {
      fileFd = isExport ? fs.openSync(streamEnd, 'w', 0o640) : fs.openSync(streamEnd, 'r');
    } catch (err) {
      throw new UserError(`cannot open ${streamEnd}: ${(err as Error).message}`);
    }
  }
  const total = !isExport && fileFd !== undefined ? fs.fstatSync(fileFd).size : undefined;
  const log = openLog(logFile);
  // Ganeti's `prefix | ...` / `... | suffix` around the script: real pipes on the script's side
  // (`| cat`, `cat |`); --norc because bash reads ~/.bashrc when its stdin is a socket.
  const scriptCmd = `( cd ${shellQuote(osDir)} && ${shellQuote(path.join(osDir, script))}; )`;
  const cmd = isExport ? `${scriptCmd} | cat` : `cat | ${scriptCmd}`;
  return new Promise<ScriptExit>((resolve, reject) => {
    const child = startProcess(['bash', '--norc', '-o', 'errexit', '-o', 'pipefail', '-c', cmd], {
      cwd: '/',
      env,
      stdio: [isExport ? 'ignore' : 'pipe', isExport ? 'pipe' : log, log, 'ignore', 'pipe'],
      group: !!req.signal,
    });
    const stop = abortHandler(child, req.signal);
    let bytes = 0;
    let announcedRaw = '';
    let expected: number | undefined;
    let lastDraw = 0;
    const draw = (force = false) => {
      if (!req.progress && !req.phase) return;
      const now = Date.now();
      if (!force && now - lastDraw < 200) return;
      lastDraw = now;
      const of = expected ?? total;
      const pct = of ? ` (${Math.min(100, Math.floor((bytes * 100) / of))}%)` : '';
      const text = `${(bytes / MIB).toFixed(1)} MiB${of ? ` of ${(of / MIB).toFixed(1)} MiB` : ''}${pct} streamed`;
      req.progress?.(`${script} disk/${env.EXPORT_INDEX ?? env.IMPORT_INDEX}: ${text}`);
      req.phase?.(text);
    };
    const sizePipe = child.stdio[EXP_SIZE_FD] as NodeJS.ReadableStream;
    sizePipe.setEncoding('utf8');
    sizePipe.on('data', (chunk: string) => {
      if (announcedRaw.length < 4096) announcedRaw += chunk;
      const line = announcedRaw.split('\n')[0];
      const r = pyIntParse(line);
      if ('value' in r) expected = Number(r.value);
    });
    sizePipe.on('error', () => undefined);
    let failed: Error | undefined;
    let input: NodeJS.ReadableStream | undefined;
    if (isExport) {
      const out = typeof streamEnd === 'string' ? undefined : (streamEnd as NodeJS.WritableStream);
      child.stdout!.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        draw();
        if (failed) return;
        try {
          if (fileFd !== undefined) fs.writeSync(fileFd, chunk);
          else if (!out!.write(chunk)) {
            child.stdout!.pause();
            out!.once('drain', () => child.stdout!.resume());
          }
        } catch (err) {
          failed = err as Error;
          child.kill('SIGTERM');
        }
      });
      out?.on('error', (err: Error) => {
        failed = err;
        child.kill('SIGTERM');
      });
    } else {
      // A file's read stream owns its descriptor: it closes it once no read is pending.
      input = fileFd !== undefined ? fs.createReadStream('', { fd: fileFd, autoClose: true }) : (streamEnd as NodeJS.ReadableStream);
      input.on('error', () => undefined);
      input.on('data', (chunk: Buffer | string) => {
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
    child.on('error', (err) => {
      stop();
      reject(new UserError(`cannot run bash: ${err.message}`));
    });
    child.on('close', (code, sig) => void afterGroup(child, req.signal).then(() => closed(code, sig)));
    const closed = (code: number | null, sig: NodeJS.Signals | null) => {
      stop();
      if (req.progress) {
        draw(true);
        req.progress('');
      }
      if (input) {
        input.unpipe();
        if (fileFd !== undefined) (input as fs.ReadStream).destroy();
        else input.pause();
      }
      for (const fd of fileFd !== undefined && isExport ? [fileFd, log] : [log]) {
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
    };
  });
}

/** utils.BytesToMebibyte: rounded up. */
export function bytesToMebibyte(b: number): number {
  return Math.ceil(b / MIB);
}

/** A log's text from `offset` on (at most its last MiB; empty if unreadable). */
export function readFrom(p: string, offset = 0): string {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(offset, size - MIB);
      const buf = Buffer.alloc(Math.max(0, size - start));
      fs.readSync(fd, buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** utils.TailFile(name, 20) + SafeEncode: the last lines of the last 4 KiB. */
export function tailFile(p: string, lines: number, offset = 0): string[] {
  let buf: Buffer;
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const start = Math.max(offset, size - 4096);
      if (start >= size) return [];
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
export function safeEncode(s: string): string {
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

