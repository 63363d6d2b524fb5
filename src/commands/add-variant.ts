/** `ganeti-os add-variant <variant>`: a new variant in variants.list, with its configuration. */
import type { Context } from '../context';
import { UsageError } from '../errors';
import { checkVariantName } from '../ganeti/rules';
import { MaintainOptions, maintainDefinition, report } from '../definition/maintain';
import { addVariant } from '../definition/edits/add-variant';
import { parseSetting } from '../definition/validate-spec';
import { definitionDir } from './definition-dir';

export interface AddVariantOptions extends MaintainOptions {
  variant: string;
  set?: string[];
  first?: boolean;
}

export async function runAddVariant(ctx: Context, opts: AddVariantOptions): Promise<void> {
  const bad = checkVariantName(opts.variant);
  if (bad) throw new UsageError(bad);
  const settings: Record<string, string> = {};
  for (const s of opts.set ?? []) {
    const [k, v] = parseSetting(s);
    settings[k] = v;
  }
  await maintainDefinition(ctx, { ...opts, osDir: definitionDir(ctx, opts.osDir) }, (l) => report(ctx, addVariant(l, { variant: opts.variant, settings, first: opts.first, force: opts.force }), opts));
}
