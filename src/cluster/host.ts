/**
 * What the cluster box runs its commands with: the clean environment and `run` over the process
 * layer (src/system/process.ts). The kernel's primitives are src/system/kernel.ts's.
 */
import { RunResult, onPath, runSync } from '../system/process';

/** A clean environment for everything started inside the box (daemons hand theirs on to OS scripts). */
export const CLEAN_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C',
  LC_ALL: 'C',
};

/**
 * Run argv to completion with a clean environment; never throws for a non-zero exit.
 * `timeoutSeconds` kills it (status then -1). A command that cannot start says why on stderr.
 */
export function run(argv: string[], opts: { input?: string; timeoutSeconds?: number; env?: Record<string, string> } = {}): RunResult {
  const r = runSync(argv, {
    input: opts.input,
    stdin: 'pipe',
    env: opts.env ?? CLEAN_ENV,
    maxBuffer: 64 * 1024 * 1024,
    timeoutMs: opts.timeoutSeconds ? opts.timeoutSeconds * 1000 : undefined,
    killSignal: 'SIGKILL',
  });
  return r.error ? { ...r, stderr: `${argv[0]}: ${r.error.message}\n${r.stderr}` } : r;
}

/** Whether `cmd` is an executable on the clean PATH. */
export function haveCommand(cmd: string): boolean {
  return onPath(cmd, CLEAN_ENV.PATH) !== undefined;
}
