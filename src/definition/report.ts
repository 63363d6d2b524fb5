/** How a command reports a plan: text for people, one JSON document with --json. */
import type { Context } from '../context';
import { Plan, changes, planToJson, planToText } from './plan';
import { applyWithBackup } from './upgrade-apply';
import { assertNoConflicts } from './writer';

export interface ApplyOptions {
  dryRun?: boolean;
  json?: boolean;
  /** One line saying what was done, e.g. "created debian-os". */
  summary: string;
  /** Extra fields for the JSON document. */
  extra?: Record<string, unknown>;
  /** Files the plan replaces or removes that hold something of the user's: copied into a backup first. */
  keep?: { rel: string; realPath?: string }[];
}

/** Check, print and (unless --dry-run) apply a plan. Throws on conflicts before writing anything. */
export function applyAndReport(ctx: Context, plan: Plan, opts: ApplyOptions): void {
  assertNoConflicts(plan);
  const backup = opts.dryRun ? undefined : applyWithBackup(plan, opts.keep ?? []);
  const n = changes(plan).length;
  const kept = opts.keep?.length ? `--force replaced or removed what you had changed in ${opts.keep.map((k) => k.rel).join(', ')}: ${backup ? `kept in ${backup}` : 'it would be kept in .ganeti-os/backups/'}` : undefined;
  if (opts.json) {
    ctx.out.write(JSON.stringify({ ...planToJson(plan, !opts.dryRun), ...(opts.extra ?? {}), ...(opts.keep ? { backup: backup ?? null } : {}) }, null, 2) + '\n');
    if (kept) ctx.log.info(kept);
    return;
  }
  if (opts.dryRun) {
    ctx.out.write(`Would write ${plan.root} (dry run, nothing changed):\n` + planToText(plan));
  } else {
    ctx.log.info(planToText(plan).replace(/\n$/, ''));
    ctx.out.write(n ? `${opts.summary}\n` : `${opts.summary} (nothing to change)\n`);
  }
  for (const note of plan.notes) ctx.log.info(note);
  if (kept) ctx.log.warn(kept);
}
