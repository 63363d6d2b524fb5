/** Before planning: a write a kill interrupted is undone first. */
import type { Context } from '../context';
import { recoverInterrupted } from './writer';

/**
 * Undo a write that a kill interrupted, before anything plans against the directory. Every
 * command that changes an existing definition calls this first.
 */
export function recoverBeforePlanning(ctx: Context, root: string): void {
  if (recoverInterrupted(root)) ctx.log.warn(`${root}: an earlier ganeti-os write was interrupted; its changes were rolled back`);
}
