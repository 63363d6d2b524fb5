/**
 * Running an OS script the way a Ganeti 3.0 node runs it: utils.RunCmd for create, rename and
 * verify (environment reset, working directory the OS directory, stdin closed, output appended
 * to the log), and the import-export daemon's `bash -o errexit -o pipefail` pipeline for
 * export/import with the EXP_SIZE_FD pipe. Log names as backend._InstanceLogName.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Context } from '../context';
import { UserError } from '../errors';
import { EnvMap, InstanceShape } from './environment';
import { OS_SCRIPT_EXPORT, OS_SCRIPT_IMPORT, OS_SCRIPT_RENAME, OS_SCRIPT_VERIFY, pyIntParse } from './rules';

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

export interface RunResult {
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
export function runPlain(osDir: string, script: string, args: string[], env: EnvMap, logFile: string): Promise<RunResult> {
  const file = path.join(osDir, script);
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
    const child = spawn('/bin/sh', ['-c', 'unset PWD; : | exec "$0" "$@"', file, ...args], { cwd: osDir, env, stdio: ['ignore', log, log] });
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
export function runImportExport(
  ctx: Context,
  script: string,
  osDir: string,
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
  const scriptCmd = `( cd ${shellQuote(osDir)} && ${shellQuote(path.join(osDir, script))}; )`;
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
export function bytesToMebibyte(b: number): number {
  return Math.ceil(b / MIB);
}

export function readSafe(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** utils.TailFile(name, 20) + SafeEncode: the last lines of the last 4 KiB. */
export function tailFile(p: string, lines: number): string[] {
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

