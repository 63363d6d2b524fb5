/**
 * Applying an upgrade: the files it replaces or removes are first copied into the definition's
 * state directory (`.ganeti-os/backups/<UTC time>/`, same relative paths and modes), then the one
 * plan goes through the writer (staged, journaled, rolled back on failure: then the backup goes
 * too). `upgradeDiff` is what `--dry-run` prints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, errorMessage } from '../errors';
import { changes } from './plan';
import { PROVENANCE_FILE } from './provenance';
import { STATE_DIR, UpgradePlan } from './upgrade';
import { WriterHooks, applyPlan } from './writer';

/** The backup directory for an upgrade started at `now`, inside `root`. */
export function backupDir(root: string, now: Date): string {
  return path.join(root, STATE_DIR, 'backups', now.toISOString().replace(/[:.]/g, '-'));
}

/**
 * Copy every file the plan replaces or removes (the symlink's target for a symlinked file)
 * into `dir`. Returns the paths copied (relative to the definition). Throws UserError when the
 * copy fails (nothing else was changed: the partial backup is removed).
 */
export function backUp(up: UpgradePlan, dir: string): string[] {
  // fs-extra: tree copies with modes and times, and mkdir -p (loaded only when an upgrade writes).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fse = require('fs-extra') as typeof import('fs-extra');
  const copied: string[] = [];
  try {
    for (const o of changes(up.plan)) {
      if (o.kind === 'create') continue;
      const from = o.realPath ?? path.join(up.plan.root, o.path);
      if (!fs.existsSync(from)) continue;
      fse.copySync(from, path.join(dir, o.path), { preserveTimestamps: true, dereference: true });
      copied.push(o.path);
    }
  } catch (err) {
    fse.removeSync(dir);
    throw new UserError(`could not back up the files the upgrade replaces into ${dir}: ${errorMessage(err)}; nothing was changed`);
  }
  return copied;
}

/**
 * Back up, then apply the plan through the writer. Returns the backup directory, or undefined
 * when nothing but the record changes. Throws UserError (rolled back, backup removed) on failure.
 */
export function applyUpgrade(up: UpgradePlan, opts: { now?: Date; hooks?: WriterHooks } = {}): string | undefined {
  const replaced = changes(up.plan).filter((o) => o.kind !== 'create' && o.path !== PROVENANCE_FILE);
  const dir = replaced.length ? backupDir(up.plan.root, opts.now ?? new Date()) : undefined;
  if (dir) backUp(up, dir);
  try {
    applyPlan(up.plan, opts.hooks);
  } catch (err) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    if (dir) (require('fs-extra') as typeof import('fs-extra')).removeSync(dir);
    removeEmptyStateDir(up.plan.root);
    throw err;
  }
  return dir;
}

function removeEmptyStateDir(root: string): void {
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
