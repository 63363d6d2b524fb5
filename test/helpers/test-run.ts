/**
 * `ganeti-os test` as the suites that boot what it made run it (test-command, debian-firmware):
 * the built CLI in a root directory that is also its HOME, `test --json` into a work directory
 * that is emptied between cases, and the JSON document read back with each step's status.
 */
import * as fs from 'node:fs';
import { runCli } from './cli';

export interface StepJson {
  step: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Seconds from the start of the run, and how long. */
  start: number;
  seconds: number;
  detail: string;
  logs: string[];
  logTail?: string[];
  checks?: { name: string; ok: boolean | null; detail: string }[];
}

export interface RunJson {
  ok: boolean;
  seconds: number;
  stepSeconds: number;
  steps: StepJson[];
  logs: string | null;
}

/**
 * What `ganeti-os test --json` printed: its document, the first run, each step's status by name
 * and `step(name)`. Throws with the exit code and both outputs when stdout is not JSON.
 */
export function testDocument(r: { code: number | null; stdout: string; stderr: string }) {
  let doc: { ok: boolean; runs: RunJson[] };
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    throw new Error(`no JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  const run = doc.runs[0];
  const status = Object.fromEntries(run.steps.map((s) => [s.step, s.status]));
  return { doc, run, status, step: (n: string) => run.steps.find((s) => s.step === n)! };
}

/**
 * `cli(args, timeoutS)`: the built CLI in `dirs().root` (HOME too, PATH this process's), sent
 * `killSignal` (default SIGTERM) after `timeoutS` seconds (default 120). `testJson(args,
 * timeoutS)`: `test --work-dir WORK --json ARGS`, its document, first run, step statuses and
 * `step(name)`; throws with the output when there is no JSON. `clearWork()`: the work directory
 * emptied. `dirs` is read at each call: the suite makes its directories in beforeAll.
 */
export function testCli(dirs: () => { root: string; work: string }, opts: { killSignal?: NodeJS.Signals } = {}) {
  const cli = (args: string[], timeoutS = 120) => {
    const { root } = dirs();
    const r = runCli(args, { cwd: root, timeout: timeoutS * 1000, killSignal: opts.killSignal, env: { HOME: root } });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  };
  const testJson = (args: string[], timeoutS = 120) => {
    const r = cli(['test', '--work-dir', dirs().work, '--json', ...args], timeoutS);
    return { ...r, ...testDocument(r) };
  };
  const clearWork = () => {
    const { work } = dirs();
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work);
  };
  return { cli, testJson, clearWork };
}
