/** How a command reports a plan: text for people, one JSON document with --json. */
import type { Context } from '../context';
import { Plan, changes, planToJson, planToText } from './plan';
import { applyPlan, assertNoConflicts } from './writer';

export interface ApplyOptions {
  dryRun?: boolean;
  json?: boolean;
  /** One line saying what was done, e.g. "created debian-os". */
  summary: string;
  /** Extra fields for the JSON document. */
  extra?: Record<string, unknown>;
}

/** Check, print and (unless --dry-run) apply a plan. Throws on conflicts before writing anything. */
export function applyAndReport(ctx: Context, plan: Plan, opts: ApplyOptions): void {
  assertNoConflicts(plan);
  if (!opts.dryRun) applyPlan(plan);
  const n = changes(plan).length;
  if (opts.json) {
    ctx.out.write(JSON.stringify({ ...planToJson(plan, !opts.dryRun), ...(opts.extra ?? {}) }, null, 2) + '\n');
    return;
  }
  if (opts.dryRun) {
    ctx.out.write(`Would write ${plan.root} (dry run, nothing changed):\n` + planToText(plan));
  } else {
    ctx.log.info(planToText(plan).replace(/\n$/, ''));
    ctx.out.write(n ? `${opts.summary}\n` : `${opts.summary} (nothing to change)\n`);
  }
  for (const note of plan.notes) ctx.log.info(note);
}
