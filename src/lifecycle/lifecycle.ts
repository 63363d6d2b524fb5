/**
 * An OS definition's life as a list of named steps with results, run by one loop for any
 * backend: the local one (throwaway disks and QEMU on this machine, local.ts) or a cluster
 * (`test --cluster`, gnt-instance on a disposable cluster). A backend says which steps it has,
 * what each needs, and releases everything it acquired in close(); the loop runs the steps in
 * order, skips those whose prerequisites did not pass, stops on an abort, and always closes.
 * A step may run in the background (a boot under QEMU, which uses one core): the loop goes on
 * with the next steps, and a step that needs it, or must come after it, waits for it; every
 * background step has finished before the backend is closed.
 */

export type StepStatus = 'passed' | 'failed' | 'skipped';

/** What one step came to. */
export interface StepResult {
  /** Stable name for machines (create, boot, export, ...). */
  step: string;
  /** Words for people. */
  title: string;
  status: StepStatus;
  /** Seconds. */
  seconds: number;
  /** When it started, in seconds from the start of the run (steps in the background overlap others). */
  start: number;
  /** One line: what was found, or why it failed or was skipped. */
  detail: string;
  /** Logs worth reading (script logs, the console). */
  logs: string[];
  /** The last lines of the log that shows the failure. */
  logTail?: string[];
  /** The command the step ran, when it ran one (the cluster backend's gnt-* commands). */
  command?: string[];
  /** Sub-checks (verify's values, the disk checks after a boot, the identity checks). */
  checks?: { name: string; ok: boolean | null; detail: string }[];
}

/** What a step returns: everything but its name, title and time. */
export type StepOutcome = Omit<StepResult, 'step' | 'title' | 'seconds' | 'start'>;

export interface StepContext {
  /** Fires on Ctrl-C: stop child processes and return. */
  signal: AbortSignal;
  /** The step's current phase, for the live progress line. */
  phase(text: string): void;
}

export interface Step {
  name: string;
  title: string;
  /** Steps that must have passed for this one to run (otherwise it is skipped, naming them). */
  needs?: string[];
  /** Steps that must have finished, however they ended, before this one starts (they use the same disk). */
  after?: string[];
  /** The loop does not wait for it before starting the next step. */
  background?: boolean;
  run(sc: StepContext): Promise<StepOutcome>;
}

export interface Backend {
  /** local, cluster... */
  readonly name: string;
  steps(): Step[];
  /** Release every disk, loop device, mount and process acquired; keepLogs: the run failed. Never throws. */
  close(keepLogs: boolean): Promise<void>;
}

/** Who is told what happens (the command's terminal or JSON output). */
export interface Reporter {
  started(step: Step): void;
  phase(step: Step, text: string, seconds: number): void;
  finished(result: StepResult): void;
}

export const passed = (detail: string, extra: Partial<StepOutcome> = {}): StepOutcome => ({ status: 'passed', detail, logs: [], ...extra });
export const failed = (detail: string, extra: Partial<StepOutcome> = {}): StepOutcome => ({ status: 'failed', detail, logs: [], ...extra });
export const skipped = (detail: string, extra: Partial<StepOutcome> = {}): StepOutcome => ({ status: 'skipped', detail, logs: [], ...extra });

/**
 * Run the backend's steps in order and return their results; the backend is closed on every
 * path (logs kept when a step failed or the run was interrupted). A step that throws fails with
 * the error's message.
 */
export async function runLifecycle(backend: Backend, reporter: Reporter, signal: AbortSignal): Promise<StepResult[]> {
  const steps = backend.steps();
  const results: (StepResult | undefined)[] = steps.map(() => undefined);
  const done = new Map<string, Promise<StepResult>>();
  const t0 = Date.now();
  const runStep = async (step: Step, i: number): Promise<StepResult> => {
    // What it needs or must follow, finished (a background step may still run).
    await Promise.all([...(step.needs ?? []), ...(step.after ?? [])].map((n) => done.get(n)));
    const start = Date.now();
    let outcome: StepOutcome;
    const missing = (step.needs ?? []).filter((n) => results[steps.findIndex((s) => s.name === n)]?.status !== 'passed');
    if (signal.aborted) outcome = skipped('interrupted');
    else if (missing.length) outcome = skipped(`needs ${missing.join(', ')}, which did not pass`);
    else {
      reporter.started(step);
      try {
        outcome = await step.run({ signal, phase: (text) => reporter.phase(step, text, (Date.now() - start) / 1000) });
      } catch (err) {
        outcome = failed(err instanceof Error ? err.message : String(err));
      }
      if (signal.aborted && outcome.status === 'failed') outcome = { ...outcome, detail: `interrupted (${outcome.detail})` };
    }
    const result: StepResult = { step: step.name, title: step.title, seconds: (Date.now() - start) / 1000, start: (start - t0) / 1000, ...outcome };
    results[i] = result;
    reporter.finished(result);
    return result;
  };
  try {
    for (const [i, step] of steps.entries()) {
      const p = runStep(step, i);
      done.set(step.name, p);
      if (!step.background) await p;
    }
  } finally {
    // Background steps end before anything is released (QEMU stops on an abort).
    await Promise.allSettled(done.values());
    await backend.close(signal.aborted || results.some((r) => r?.status === 'failed'));
  }
  return results.filter((r): r is StepResult => r !== undefined);
}

/** Whether a run passed: every step that applied passed (skipped ones for a reason other than a failure are fine). */
export function lifecyclePassed(results: StepResult[]): boolean {
  return results.every((r) => r.status === 'passed' || (r.status === 'skipped' && !/^needs |^interrupted/.test(r.detail)));
}
