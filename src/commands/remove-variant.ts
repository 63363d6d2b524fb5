/** `ganeti-os remove-variant <variant>`: drop a variant from variants.list and its configuration. */
import type { Context } from '../context';
import { UsageError } from '../errors';
import { checkVariantName } from '../ganeti/rules';
import { MaintainOptions, maintainDefinition, report } from '../definition/maintain';
import { removeVariant } from '../definition/edits/remove-variant';
import { definitionDir } from './definition-dir';

export interface RemoveVariantOptions extends MaintainOptions {
  variant: string;
}

export async function runRemoveVariant(ctx: Context, opts: RemoveVariantOptions): Promise<void> {
  const bad = checkVariantName(opts.variant);
  if (bad) throw new UsageError(bad);
  await maintainDefinition(ctx, { ...opts, osDir: definitionDir(ctx, opts.osDir) }, (l) => report(ctx, removeVariant(l, { variant: opts.variant, force: opts.force }), opts));
}
