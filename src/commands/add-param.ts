/** `ganeti-os add-param <name> <description>`: declare an OS parameter (API 20), with its checks. */
import type { Context } from '../context';
import { UsageError } from '../errors';
import { checkParamDescription, checkParamName } from '../ganeti/rules';
import { MaintainOptions, maintainDefinition, report } from '../definition/maintain';
import { addParam } from '../definition/edits/add-param';
import type { ParamSpec } from '../definition/spec';
import { checkParamSpec } from '../definition/validate-spec';
import { definitionDir } from './definition-dir';

export interface AddParamOptions extends MaintainOptions {
  name: string;
  description: string;
  default?: string;
  choices?: string;
  pattern?: string;
}

export async function runAddParam(ctx: Context, opts: AddParamOptions): Promise<void> {
  const name = opts.name;
  const description = (opts.description ?? '').trim();
  const bad = checkParamName(name) ?? checkParamDescription(name, description);
  if (bad) throw new UsageError(bad);
  const param: ParamSpec = { name, description };
  if (opts.default !== undefined) param.default = opts.default;
  if (opts.choices !== undefined) param.choices = opts.choices.split(',');
  if (opts.pattern !== undefined) param.pattern = opts.pattern;
  checkParamSpec(param);

  await maintainDefinition(ctx, { ...opts, osDir: definitionDir(ctx, opts.osDir) }, (l) => report(ctx, addParam(l, { param, force: opts.force }), opts));
}
