/** `ganeti-os bump-api <10|15|20>`: move a definition to another OS interface version. */
import type { Context } from '../context';
import { UsageError } from '../errors';
import { MaintainOptions, maintainDefinition, report } from '../definition/maintain';
import { bumpApi } from '../definition/edits/bump-api';
import { checkApiVersion } from '../definition/validate-spec';
import { definitionDir } from './definition-dir';

export interface BumpApiOptions extends MaintainOptions {
  version: string;
  only?: boolean;
}

export async function runBumpApi(ctx: Context, opts: BumpApiOptions): Promise<void> {
  const text = String(opts.version ?? '').trim();
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid API version '${opts.version}': give 10, 15 or 20`);
  const v = Number(text);
  checkApiVersion(v);
  await maintainDefinition(ctx, { ...opts, osDir: definitionDir(ctx, opts.osDir) }, (l) => report(ctx, bumpApi(l, { version: v, only: opts.only, force: opts.force, dryRun: opts.dryRun }), opts));
}
