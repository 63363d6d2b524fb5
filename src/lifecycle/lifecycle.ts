/**
 * An OS definition's life as a list of named steps with results, run by one loop for any
 * backend: the local one (throwaway disks and QEMU on this machine, local.ts) or a cluster
 * (`test --cluster`, gnt-instance on a disposable cluster). A backend says which steps it has,
 * what each needs, and releases everything it acquired in close(); the loop runs the steps in
 * order, skips those whose prerequisites did not pass, stops on an abort, and always closes.
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
export type StepOutcome = Omit<StepResult, 'step' | 'title' | 'seconds'>;

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
  const results: StepResult[] = [];
  const byName = new Map<string, StepResult>();
  try {
    for (const step of backend.steps()) {
      const start = Date.now();
      let outcome: StepOutcome;
      const missing = (step.needs ?? []).filter((n) => byName.get(n)?.status !== 'passed');
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
      const result: StepResult = { step: step.name, title: step.title, seconds: (Date.now() - start) / 1000, ...outcome };
      results.push(result);
      byName.set(step.name, result);
      reporter.finished(result);
    }
  } finally {
    await backend.close(signal.aborted || results.some((r) => r.status === 'failed'));
  }
  return results;
}

/** Whether a run passed: every step that applied passed (skipped ones for a reason other than a failure are fine). */
export function lifecyclePassed(results: StepResult[]): boolean {
  return results.every((r) => r.status === 'passed' || (r.status === 'skipped' && !/^needs |^interrupted/.test(r.detail)));
}
