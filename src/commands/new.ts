/** `ganeti-os new <name>`: a complete OS definition from a template. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../context';
import { UsageError, UserError, withFsErrors } from '../errors';
import { recoverBeforePlanning } from '../definition/recover';
import { work } from '../definition/worker';
import { OS_API_FILE, OS_API_V15, OS_API_V20, checkOsName, checkParamDescription, checkParamName, checkVariantName } from '../ganeti/rules';
import { applyAndReport } from '../definition/report';
import type { DefinitionSpec, ParamSpec, VariantSpec } from '../definition/spec';
import { DEFAULT_TEMPLATE, Template, listTemplates, unknownReleaseWarnings, variantSettings } from '../definition/templates';
import { describeSource, loadTemplateRef, parseTemplateRef } from '../definition/template-source';
import { PROVENANCE_FILE } from '../definition/provenance';
import { LOCK_FILE, withLock } from '../definition/lock';
import { checkParamsNeedApi20, checkSpec, normaliseApiVersions, parseApiList, parseParamFlag } from '../definition/validate-spec';
import { firstRuns } from '../definition/first-run';
import { readDefinition } from '../definition/model';

export interface NewOptions {
  name: string;
  template?: string;
  api?: string;
  variant?: string[];
  param?: string[];
  directory?: string;
  yes?: boolean;
  dryRun?: boolean;
  force?: boolean;
  json?: boolean;
}

export async function runNew(ctx: Context, opts: NewOptions): Promise<void> {
  // Filesystem errors anywhere (reading the template included) are failures naming the cause.
  return withFsErrors(path.resolve(ctx.cwd, opts.directory ?? '.', opts.name), () => createDefinition(ctx, opts));
}

async function createDefinition(ctx: Context, opts: NewOptions): Promise<void> {
  const bad = checkOsName(opts.name);
  if (bad) throw new UsageError(bad, pathHint(opts.name));
  const ask = ctx.interactive && !opts.yes && !opts.json;

  // Check every flag before asking anything.
  const apiFlag = opts.api !== undefined ? parseApiList(opts.api) : undefined;
  const variantFlags = opts.variant ?? [];
  for (const v of variantFlags) {
    const vb = checkVariantName(v);
    if (vb) throw new UsageError(vb);
  }
  const paramFlags = (opts.param ?? []).map(parseParamFlag);
  if (apiFlag) checkParamsNeedApi20(apiFlag, paramFlags.length);

  const parent = path.resolve(ctx.cwd, opts.directory ?? '.');
  const root = path.join(parent, opts.name);
  checkTarget(root, !!opts.force);

  const templateName = opts.template ?? (ask ? await askTemplate(ctx) : DEFAULT_TEMPLATE);
  // A built-in name, a directory or git+URL[#ref]: a site template is checked before anything is written.
  const template = (() => {
    try {
      return loadTemplateRef(parseTemplateRef(templateName, ctx.cwd), { env: ctx.env, warn: (m) => ctx.log.warn(m) });
    } catch (err) {
      if (err instanceof UserError) throw new UserError(`${err.message}; nothing was written`, err.details);
      throw err;
    }
  })();
  const from = template.source ? ` from ${describeSource(template.source)}${template.source.version ? ` version ${template.source.version}` : ''}${template.source.commit ? ` at ${template.source.commit.slice(0, 12)}` : ''}` : '';
  const defaults = template.manifest.defaults;

  let apiVersions = apiFlag ?? (ask ? await askApi(ctx, defaults.apiVersions) : normaliseApiVersions(defaults.apiVersions));
  const top = Math.max(...apiVersions);

  let variantNames: string[];
  if (variantFlags.length) variantNames = variantFlags;
  else if (top < OS_API_V15) variantNames = [];
  else variantNames = ask ? await askVariants(ctx, defaults.variants) : defaults.variants;

  checkParamsNeedApi20(apiVersions, paramFlags.length);
  let userParams = paramFlags;
  if (!paramFlags.length && top >= OS_API_V20 && ask) userParams = await askParams(ctx);
  // The template's own parameters are kept at every API: below 20 they only give the scripts
  // their defaults (lib/parameters.sh); parameters.list and verify exist from 20 on.
  const templateParams = defaults.parameters;

  apiVersions = normaliseApiVersions(apiVersions);
  const spec: DefinitionSpec = {
    name: opts.name,
    template: template.manifest.name,
    apiVersions,
    variants: variantNames.map((v): VariantSpec => ({ name: v, settings: variantSettings(template, v) })),
    parameters: mergeParams(templateParams, userParams),
  };
  checkSpec(spec);

  for (const w of unknownReleaseWarnings(template, spec.variants)) ctx.log.warn(w);
  const write = () => {
    if (opts.force && fs.existsSync(root)) recoverBeforePlanning(ctx, root);
    // --force replaces the template's own files in the way, never a file that would be the
    // admin's (defaults.conf, variants/*.conf): the worker keeps those as they are.
    const { plan } = work({ root, template, spec, before: 'nothing', force: opts.force });
    applyAndReport(ctx, plan, {
      dryRun: opts.dryRun,
      json: opts.json,
      summary: `Created ${root} (template ${template.manifest.name}${from}, API ${apiVersions.join(', ')})`,
      extra: { name: spec.name, template: spec.template, ...(template.source ? { templateSource: template.source } : {}), apiVersions, variants: variantNames, parameters: spec.parameters.map((p) => p.name) },
    });
    if (!opts.dryRun) for (const w of refusedAsWritten(root)) ctx.log.warn(w);
    if (!opts.dryRun && !opts.json) ctx.log.info(nextSteps(ctx, root, plan.ops.map((o) => o.path), top));
  };
  // A new definition appears by one rename; writing into an existing directory (--force) is
  // done in place, under its lock like any maintenance command.
  if (opts.dryRun || !fs.existsSync(root)) write();
  else await withLock(path.join(root, LOCK_FILE), root, write);
}

/**
 * What Ganeti would refuse of the new definition as it stands (validate's first run: verify for
 * every variant with Ganeti's environment), e.g. an image variant that has no IMAGE yet.
 */
function refusedAsWritten(root: string): string[] {
  // Advice about a definition already in place: a failure to check is said, never the command's.
  let runs: ReturnType<typeof firstRuns>;
  try {
    runs = firstRuns(readDefinition(root));
  } catch (err) {
    return [`could not check the new definition as Ganeti would (${err instanceof Error ? err.message : String(err)}); 'ganeti-os validate' does`];
  }
  return runs
    .filter((r) => !r.ok && !r.timedOut)
    .map((r) => {
      const said = r.output.trim().split('\n').filter((l) => l.trim() !== '').slice(-3).join(' | ');
      return `as written, Ganeti refuses every instance of ${r.osName} (its ${r.how === 'verify' ? 'verify' : 'configuration'} fails: ${said || r.error}); 'ganeti-os validate' says so until it is fixed`;
    });
}

/** For a name that is a path (`new ~/os/web`): the same definition with -C. */
function pathHint(name: string): string[] {
  if (!name.includes('/')) return [];
  const base = path.basename(name);
  if (!base || checkOsName(base)) return ["The name is the OS definition's directory name; put its parent in -C DIR."];
  return [`'${name}' is a path: to create ${base} in ${path.dirname(name)}, run: ganeti-os new ${base} -C ${path.dirname(name)}`];
}

/** What to do with a new definition, for the end of `new` (on stderr). */
function nextSteps(ctx: Context, root: string, files: string[], topApi: number): string {
  const rel = path.relative(ctx.cwd, root);
  const where = rel && !rel.startsWith('..') ? rel : root;
  const steps: [string, string][] = [[`cd ${where}`, '']];
  if (files.includes('defaults.conf')) steps.push(['$EDITOR defaults.conf', 'the settings of every variant']);
  steps.push(['ganeti-os validate', "Ganeti's verdict, and what would break later"]);
  if (topApi >= OS_API_V15) steps.push(['ganeti-os add-variant NAME', topApi >= OS_API_V20 ? 'another variant (add-param: an OS parameter)' : 'another variant']);
  steps.push([`${ctx.uid === 0 ? '' : 'sudo '}ganeti-os test`, 'create, boot, export, import, rename on throwaway disks (as root)']);
  steps.push(['ganeti-os pack', `a .deb for your nodes; 'ganeti-os rollout' installs it from the master`]);
  if (files.includes('README.md')) steps.push(['less README.md', 'installing it on the nodes by hand, and more']);
  const width = Math.max(...steps.map(([c]) => c.length)) + 2;
  return ['Next steps:', ...steps.map(([c, what]) => `  ${c.padEnd(width)}${what}`.trimEnd())].join('\n');
}

function mergeParams(base: ParamSpec[], extra: { name: string; description: string }[]): ParamSpec[] {
  const out = base.map((p) => ({ ...p }));
  for (const p of extra) {
    const i = out.findIndex((q) => q.name === p.name);
    if (i >= 0) out[i] = { ...out[i], description: p.description };
    else out.push({ name: p.name, description: p.description });
  }
  return out;
}

function checkTarget(root: string, force: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(root);
  } catch {
    return;
  }
  if (!st.isDirectory()) throw new UserError(`${root} exists and is not a directory; nothing was changed`);
  // An existing definition is never rewritten, not even with --force: the admin's settings,
  // variants and parameters live in it.
  if (fs.existsSync(path.join(root, PROVENANCE_FILE))) {
    throw new UserError(`${root} already holds an OS definition written by ganeti-os; nothing was changed`, [
      "Bring it up to date with the current template with 'ganeti-os upgrade' (it keeps your changes);",
      'change it with add-variant, remove-variant, add-param, remove-param or bump-api.',
      'new --force never rewrites an existing definition.',
    ]);
  }
  if (fs.existsSync(path.join(root, OS_API_FILE))) {
    throw new UserError(`${root} already holds an OS definition (not written by ganeti-os); nothing was changed`, [
      'Change it with add-variant, remove-variant, add-param, remove-param or bump-api, or choose another name.',
      'new --force never rewrites an existing definition.',
    ]);
  }
  if (!force) {
    throw new UserError(`${root} already exists; nothing was changed`, [
      "Use --force to write the template's files into it (files in the way are replaced; defaults.conf and variants/*.conf, which would be yours, are kept), or choose another name.",
    ]);
  }
}

async function askTemplate(ctx: Context): Promise<string> {
  const templates = listTemplates();
  return ctx.prompter.select(
    'Template',
    templates.map((t) => ({ name: t.name, value: t.name, description: t.summary })),
    DEFAULT_TEMPLATE,
  );
}

async function askApi(ctx: Context, defaults: number[]): Promise<number[]> {
  const picked = await ctx.prompter.checkbox(
    'OS interface versions to support',
    [20, 15, 10].map((v) => ({ name: String(v), value: v, checked: defaults.includes(v) })),
    (vals) => (vals.length ? true : 'pick at least one version'),
  );
  return normaliseApiVersions(picked);
}

async function askVariants(ctx: Context, defaults: string[]): Promise<string[]> {
  const answer = await ctx.prompter.input('Variants (comma-separated, the first is the default)', {
    default: defaults.join(','),
    validate: (s) => {
      const names = splitList(s);
      if (!names.length) return 'give at least one variant';
      for (const n of names) {
        const bad = checkVariantName(n);
        if (bad) return bad;
      }
      return true;
    },
  });
  return splitList(answer);
}

async function askParams(ctx: Context): Promise<{ name: string; description: string }[]> {
  const out: { name: string; description: string }[] = [];
  for (;;) {
    const name = (
      await ctx.prompter.input(out.length ? 'Another parameter name (empty to finish)' : 'Parameter name (empty for none)', {
        default: '',
        validate: (s) => (s.trim() === '' ? true : (checkParamName(s.trim()) ?? (out.some((p) => p.name === s.trim()) ? 'already added' : true))),
      })
    ).trim();
    if (!name) return out;
    const description = (
      await ctx.prompter.input(`Description of ${name}`, { validate: (s) => checkParamDescription(name, s) ?? true })
    ).trim();
    out.push({ name, description });
  }
}

function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

export type { Template };
