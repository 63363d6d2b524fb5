/**
 * Applying an upgrade: the files it replaces or removes are first copied into the definition's
 * state directory (`.ganeti-os/backups/<UTC time>/`, same relative paths and modes), then the one
 * plan goes through the writer (staged, journaled, rolled back on failure: then the backup goes
 * too). `upgradeDiff` is what `--dry-run` prints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, errorMessage } from '../errors';
import { Plan, changes } from './plan';
import { PROVENANCE_FILE } from './provenance';
import { STATE_DIR, UpgradePlan } from './upgrade';
import { WriterHooks, applyPlan } from './writer';

/** The backup directory for an upgrade started at `now`, inside `root`. */
export function backupDir(root: string, now: Date): string {
  return path.join(root, STATE_DIR, 'backups', now.toISOString().replace(/[:.]/g, '-'));
}

/** Where a backup is copied before its write commits: renamed to `dir` at the commit point. */
const PARTIAL = '.partial-';
function partialOf(dir: string): string {
  return path.join(path.dirname(dir), PARTIAL + path.basename(dir));
}

/**
 * Copy the files `rels` of `root` (following a symlink to its target, `realPath`) into `dir`,
 * same relative paths and modes. Throws UserError when the copy fails (the partial copy is
 * removed; nothing else was changed).
 */
function copyInto(root: string, files: { rel: string; realPath?: string }[], dir: string): string[] {
  // fs-extra: tree copies with modes and times, and mkdir -p (loaded only when a backup is made).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fse = require('fs-extra') as typeof import('fs-extra');
  const copied: string[] = [];
  try {
    for (const f of files) {
      const from = f.realPath ?? path.join(root, f.rel);
      if (!fs.existsSync(from)) continue;
      fse.copySync(from, path.join(dir, f.rel), { preserveTimestamps: true, dereference: true });
      copied.push(f.rel);
    }
  } catch (err) {
    fse.removeSync(dir);
    removeEmptyStateDir(root);
    throw new UserError(`could not back up the files the change replaces into ${dir}: ${errorMessage(err)}; nothing was changed`);
  }
  return copied;
}

/**
 * Copy every file the plan replaces or removes (the symlink's target for a symlinked file)
 * into `dir`. Returns the paths copied (relative to the definition). Throws UserError when the
 * copy fails (nothing else was changed: the partial backup is removed).
 */
export function backUp(up: UpgradePlan, dir: string): string[] {
  return copyInto(
    up.plan.root,
    changes(up.plan)
      .filter((o) => o.kind !== 'create')
      .map((o) => ({ rel: o.path, realPath: o.realPath })),
    dir,
  );
}

/**
 * Apply `plan` through the writer with the files `keep` copied into a backup directory first:
 * the copy is made in `.ganeti-os/backups/.partial-<time>` and gets its final name at the
 * write's commit point, so a failure or a kill leaves no backup of a change that did not happen
 * (the next command removes a partial one, or names it if the write had committed: see
 * settleBackups). Returns the backup directory, or undefined when nothing was to be kept.
 */
export function applyWithBackup(plan: Plan, keep: { rel: string; realPath?: string }[], opts: { now?: Date; hooks?: WriterHooks } = {}): string | undefined {
  if (!keep.length) {
    applyPlan(plan, opts.hooks);
    return undefined;
  }
  const dir = backupDir(plan.root, opts.now ?? new Date());
  const partial = partialOf(dir);
  copyInto(plan.root, keep, partial);
  try {
    applyPlan(plan, {
      ...opts.hooks,
      afterCommit: () => {
        opts.hooks?.afterCommit?.();
        fs.renameSync(partial, dir);
      },
    });
  } catch (err) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('fs-extra') as typeof import('fs-extra')).removeSync(partial);
    removeEmptyStateDir(plan.root);
    throw err;
  }
  return dir;
}

/**
 * Backups a killed command left half-made: given their final name when the write they belong
 * to had committed (`committed`), else removed. Run before planning, with the journal's state.
 */
export function settleBackups(root: string, committed: boolean): void {
  const backups = path.join(root, STATE_DIR, 'backups');
  let names: string[];
  try {
    names = fs.readdirSync(backups).filter((n) => n.startsWith(PARTIAL));
  } catch {
    return;
  }
  for (const n of names) {
    const partial = path.join(backups, n);
    try {
      if (committed) fs.renameSync(partial, path.join(backups, n.slice(PARTIAL.length)));
      else fs.rmSync(partial, { recursive: true, force: true });
    } catch {
      // left for the next command
    }
  }
  if (!committed) removeEmptyStateDir(root);
}

/**
 * Back up, then apply the plan through the writer. Returns the backup directory, or undefined
 * when nothing but the record changes. Throws UserError (rolled back, backup removed) on failure.
 */
export function applyUpgrade(up: UpgradePlan, opts: { now?: Date; hooks?: WriterHooks } = {}): string | undefined {
  const replaced = changes(up.plan).filter((o) => o.kind !== 'create' && o.path !== PROVENANCE_FILE);
  return applyWithBackup(
    up.plan,
    replaced.length ? changes(up.plan).filter((o) => o.kind !== 'create').map((o) => ({ rel: o.path, realPath: o.realPath })) : [],
    opts,
  );
}

export function removeEmptyStateDir(root: string): void {
  for (const d of [path.join(root, STATE_DIR, 'backups'), path.join(root, STATE_DIR)]) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
  }
}

/** A unified diff (git style headers) of every change the upgrade makes, record excluded. */
export function upgradeDiff(up: UpgradePlan): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createTwoFilesPatch } = require('diff') as typeof import('diff');
  let out = '';
  for (const f of up.files) {
    const target = f.outcome === 'beside' ? f.beside! : f.path;
    const before = f.before;
    const after = f.outcome === 'removed' ? undefined : f.after;
    if (f.mode) out += `mode ${target}: ${f.mode.from} → ${f.mode.to}\n`;
    if (before === after || (after === undefined && f.outcome !== 'removed')) continue;
    out += createTwoFilesPatch(
      before === undefined ? '/dev/null' : `a/${target}`,
      after === undefined ? '/dev/null' : `b/${target}`,
      before ?? '',
      after ?? '',
      undefined,
      undefined,
      { context: 3 },
    ).replace(/^=+\n/, '');
  }
  return out;
}
