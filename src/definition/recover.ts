/** Before planning: a write a kill interrupted is undone (or finished) first. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../context';
import { settleBackups } from './upgrade-apply';
import { JOURNAL_FILE, recoverInterrupted } from './writer';

/** Whether the journal in `root` says its write committed (false when there is none or it cannot be read). */
function committedJournal(root: string): boolean {
  try {
    const p = path.join(root, JOURNAL_FILE);
    if (!fs.lstatSync(p).isFile()) return false;
    return (JSON.parse(fs.readFileSync(p, 'utf8')) as { state?: unknown }).state === 'committed';
  } catch {
    return false;
  }
}

/**
 * Undo a write that a kill interrupted, before anything plans against the directory, and settle
 * the backup it was making (kept under its final name when the write had committed, else
 * removed). Every command that changes an existing definition calls this first.
 */
export function recoverBeforePlanning(ctx: Context, root: string): void {
  const committed = committedJournal(root);
  if (recoverInterrupted(root)) ctx.log.warn(`${root}: an earlier ganeti-os write was interrupted; its changes were rolled back`);
  settleBackups(root, committed);
}
