/** `ganeti-os remove-param <name>`: drop an OS parameter from parameters.list and its checks. */
import type { Context } from '../context';
import { UsageError } from '../errors';
import { checkParamName } from '../ganeti/rules';
import { MaintainOptions, maintainDefinition, report } from '../definition/maintain';
import { removeParam } from '../definition/edits/remove-param';
import { definitionDir } from './definition-dir';

export interface RemoveParamOptions extends MaintainOptions {
  name: string;
}

export async function runRemoveParam(ctx: Context, opts: RemoveParamOptions): Promise<void> {
  const bad = checkParamName(opts.name);
  if (bad) throw new UsageError(bad);
  await maintainDefinition(ctx, { ...opts, osDir: definitionDir(ctx, opts.osDir) }, (l) => report(ctx, removeParam(l, { name: opts.name, force: opts.force }), opts));
}
