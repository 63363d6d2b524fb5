/** `ganeti-os template init|check`: site templates (TEMPLATES.md). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Context } from '../context';
import { UsageError, UserError, errorMessage } from '../errors';
import { OS_API_FILE, OS_API_V15 } from '../ganeti/rules';
import { DEFAULT_TEMPLATE, Template, renderTemplate, variantSettings } from '../definition/templates';
import { describeSource, loadTemplateDir, loadTemplateRef, parseTemplateRef } from '../definition/template-source';
import { TemplateFileOut, siteTemplateFiles, templateNameFor } from '../definition/template-init';
import { checkSpec, normaliseApiVersions } from '../definition/validate-spec';
import type { DefinitionSpec } from '../definition/spec';
import { templateVersion } from '../definition/upgrade-record';

export interface TemplateOptions {
  action: 'init' | 'check';
  /** init: the new template's directory. */
  dir?: string;
  /** init: the built-in template to copy. */
  from?: string;
  /** init: the template's name. */
  name?: string;
  /** check: the template. */
  source?: string;
  dryRun?: boolean;
  json?: boolean;
}

export async function runTemplate(ctx: Context, opts: TemplateOptions): Promise<void> {
  if (opts.action === 'init') return initTemplate(ctx, opts);
  if (opts.action === 'check') return checkTemplate(ctx, opts);
  throw new UsageError(`unknown template action '${String(opts.action)}'`);
}

// ------------------------------------------------------------------------------------------
// init

/** The target must be new (or an empty directory) in an existing directory. */
function checkTarget(target: string): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(target);
  } catch {
    st = undefined;
  }
  if (st) {
    if (!st.isDirectory()) throw new UserError(`${target} exists and is not a directory; nothing was changed`);
    if (fs.readdirSync(target).length) {
      throw new UserError(`${target} already exists and is not empty; nothing was changed`, ['Give a new directory (template init writes a whole template), or empty this one.']);
    }
  }
  const parent = path.dirname(target);
  if (!fs.existsSync(parent)) throw new UserError(`cannot write ${target}: its directory ${parent} does not exist; nothing was changed`);
}

/** Writes `files` as the directory `target`: staged beside it, checked as a template, then renamed into place. */
function writeTemplate(target: string, files: TemplateFileOut[]): Template {
  const staged = fs.mkdtempSync(path.join(path.dirname(target), `.${path.basename(target)}.ganeti-os-`));
  try {
    for (const f of files) {
      const abs = path.join(staged, f.path);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      fs.writeFileSync(abs, f.content, { mode: 0o644 });
      fs.chmodSync(abs, 0o644);
    }
    fs.chmodSync(staged, 0o755);
    // What it wrote must load as every site template does.
    const t = loadTemplateDir(staged, { kind: 'dir', location: target });
    if (fs.existsSync(target)) fs.rmdirSync(target);
    fs.renameSync(staged, target);
    return t;
  } catch (err) {
    fs.rmSync(staged, { recursive: true, force: true });
    throw err;
  }
}

async function initTemplate(ctx: Context, opts: TemplateOptions): Promise<void> {
  if (!opts.dir) throw new UsageError('template init needs a directory: ganeti-os template init DIR --from debian');
  const target = path.resolve(ctx.cwd, opts.dir);
  const from = opts.from ?? DEFAULT_TEMPLATE;
  const name = templateNameFor(target, opts.name);
  const files = siteTemplateFiles(from, name);
  checkTarget(target);
  if (!opts.dryRun) {
    try {
      writeTemplate(target, files);
    } catch (err) {
      if (err instanceof UserError || err instanceof UsageError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === 'string') throw new UserError(`cannot write the template ${target}: ${errorMessage(err)}; nothing was changed`);
      throw err;
    }
  }
  if (opts.json) {
    const doc = { command: 'template init', written: !opts.dryRun, dir: target, name, from, files: files.map((f) => f.path) };
    ctx.out.write(JSON.stringify(doc, null, 2) + '\n');
    return;
  }
  ctx.out.write(files.map((f) => `  ${opts.dryRun ? 'would write' : '+'} ${path.join(opts.dir!, f.path)}\n`).join(''));
  if (opts.dryRun) return;
  const rel = path.relative(ctx.cwd, target);
  const shown = rel && !rel.startsWith('..') ? (rel.includes('/') ? rel : `./${rel}`) : target;
  ctx.log.info(
    [
      `Wrote the site template ${name} in ${target}: a copy of the ${from} template (${files.length} files) for you to make your own.`,
      'Next steps:',
      `  $EDITOR ${path.join(shown, 'template.json')}     its files, modes, settings, parameters, variants (TEMPLATES.md)`,
      `  ganeti-os template check ${shown}`,
      `  ganeti-os new NAME --template ${shown}     a definition from it (upgrade follows the template)`,
      `  git -C ${shown} init && git -C ${shown} add -A && git -C ${shown} commit -m ${name}     then --template git+URL#ref`,
    ].join('\n'),
  );
}

// ------------------------------------------------------------------------------------------
// check

/** The definition a template makes with its defaults (`new NAME --template T --yes`), rendered. */
function renderDefaults(t: Template): { spec: DefinitionSpec; files: string[] } {
  const d = t.manifest.defaults;
  const apiVersions = normaliseApiVersions(d.apiVersions);
  const variants = Math.max(...apiVersions) >= OS_API_V15 ? d.variants : [];
  const spec: DefinitionSpec = {
    name: 'check',
    template: t.manifest.name,
    apiVersions,
    variants: variants.map((v) => ({ name: v, settings: variantSettings(t, v) })),
    parameters: d.parameters.map((p) => ({ ...p })),
  };
  try {
    checkSpec(spec);
  } catch (err) {
    if (err instanceof UsageError) throw new UserError(`template ${t.manifest.name}: its defaults make no definition: ${err.message}`);
    throw err;
  }
  return { spec, files: renderTemplate(t, spec).map((f) => f.path) };
}

async function checkTemplate(ctx: Context, opts: TemplateOptions): Promise<void> {
  if (!opts.source) throw new UsageError('template check needs a template: a directory or git+URL[#ref]');
  const t = loadTemplateRef(parseTemplateRef(opts.source, ctx.cwd), { env: ctx.env, warn: (m) => ctx.log.warn(m) });
  const { files } = renderDefaults(t);
  // Ganeti refuses a definition without these (the loader's verdict); verify from API 20 on.
  const missing = [OS_API_FILE, 'create', 'export', 'import', 'rename'].filter((f) => !files.includes(f));
  const warnings = missing.length ? [`definitions made from it lack ${missing.join(', ')}: Ganeti refuses them (give the template a base of "common", or these files)`] : [];
  const s = t.source;
  if (opts.json) {
    const doc = {
      command: 'template check',
      ok: true,
      name: t.manifest.name,
      summary: t.manifest.summary,
      version: t.manifest.version ?? null,
      base: t.manifest.base ?? [],
      source: s ?? null,
      templateVersion: templateVersion(t),
      files,
      warnings,
    };
    ctx.out.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    const lines = [
      `template ${t.manifest.name}${t.manifest.version ? ` version ${t.manifest.version}` : ''}: ok`,
      `  source:   ${s ? describeSource(s) : 'built into ganeti-os'}${s?.commit ? ` (commit ${s.commit.slice(0, 12)})` : ''}`,
      `  base:     ${t.manifest.base?.length ? t.manifest.base.join(', ') : '(none)'}`,
      `  defaults: API ${t.manifest.defaults.apiVersions.join(', ')}; variants ${t.manifest.defaults.variants.join(', ') || '(none)'}; ${t.manifest.defaults.parameters.length} parameters`,
      `  renders:  ${files.length} files with its defaults (${files.join(', ')})`,
    ];
    ctx.out.write(lines.join('\n') + '\n');
  }
  for (const w of warnings) ctx.log.warn(w);
}
