/**
 * The built CLI under fault injection (test/faults/preload.js): one filesystem call of the
 * process fails with an errno, or the process is SIGKILLed just before it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Captured, REPO, runCli } from './cli';

export const PRELOAD = path.join(REPO, 'test', 'faults', 'preload.js');

export type FaultClass = 'write' | 'rename' | 'fsync' | 'unlink' | 'mkdir' | 'read' | 'open' | 'any';

export interface Fault {
  /** Which calls count. */
  cls: FaultClass;
  /** 1-based: the n-th call of that class. */
  n: number;
  /** 'kill' (SIGKILL just before the call) or an errno code. */
  action: 'kill' | string;
  /** Only a call on a path containing this gets the fault (n counts those calls). */
  match?: string;
}

/**
 * Run the CLI with `fault` (none: only count) on calls under `scope`. Returns what it printed,
 * whether it was killed, and the calls it made per class (when it was not killed).
 */
export function runWithFault(
  args: string[],
  opts: { cwd: string; scope: string; fault?: Fault; env?: Record<string, string> },
): Captured & { killed: boolean; counts?: Record<FaultClass, number> } {
  const countsFile = path.join(path.dirname(opts.scope), `.fault-counts-${process.pid}-${Date.now()}.json`);
  const r = runCli(args, {
    cwd: opts.cwd,
    env: {
      NO_COLOR: '1',
      NODE_OPTIONS: `--require ${PRELOAD}`,
      GANETI_OS_FAULT_SCOPE: opts.scope,
      GANETI_OS_FAULT_COUNTS: countsFile,
      ...(opts.fault ? { GANETI_OS_FAULT: `${opts.fault.cls}:${opts.fault.n}:${opts.fault.action}` } : {}),
      ...(opts.fault?.match ? { GANETI_OS_FAULT_MATCH: opts.fault.match } : {}),
      ...(opts.env ?? {}),
    },
  });
  let counts: Record<FaultClass, number> | undefined;
  try {
    counts = JSON.parse(fs.readFileSync(countsFile, 'utf8')) as Record<FaultClass, number>;
    fs.rmSync(countsFile, { force: true });
  } catch {
    counts = undefined;
  }
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, killed: r.raw.signal === 'SIGKILL', counts };
}
