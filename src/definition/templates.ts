/**
 * Templates are data with a manifest (templates/<name>/template.json): every file they produce,
 * its mode and whether it is ours to regenerate ('tool') or the user's to edit ('user').
 * Modes come from the manifest only, never from how the package sat on disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, UserError } from '../errors';
import { formatApiVersions, formatParametersList, paramEnvName } from '../ganeti/rules';
import { TEMPLATES_DIR, toolVersion } from '../paths';
import { shq } from './shell';
import { DefinitionSpec, ParamSpec, VariantSpec, maxApi } from './spec';
import { ConfigLayer, RUNTIME_VERSION, layerPath, runtimeLayers } from './layers';
import { Setting, defaultFor, renderSettingsDoc, renderSettingsSh, variantKeys } from './settings';

export type Owner = 'tool' | 'user';

export interface ManifestFile {
  /** Path in the definition; `{variant}` is replaced when `each` is "variant". */
  path: string;
  /** File under the template folder; rendered with Handlebars when it ends in .hbs. */
  source?: string;
  /** Built-in generator instead of a source file. */
  generator?: 'api-version' | 'variants-list' | 'parameters-list' | 'parameters-sh' | 'settings-sh' | 'variant-conf';
  mode: string;
  owner: Owner;
  /** Only when the highest listed API version is at least this. */
  minApi?: number;
  each?: 'variant';
  /** Extra Handlebars data for this file. */
  data?: Record<string, unknown>;
}

export interface TemplateManifest {
  name: string;
  summary: string;
  /** A site template's own version (free text, e.g. "1.4"), recorded with the definition. */
  version?: string;
  /** Templates whose files come first (a later file with the same path replaces an earlier one). */
  base?: string[];
  /** Shown in prompts; hidden templates are building blocks only. */
  hidden?: boolean;
  defaults: {
    apiVersions: number[];
    variants: string[];
    parameters: ParamSpec[];
  };
  /**
   * The settings its scripts read (src/definition/settings.ts): added to its base templates',
   * a key already there replaced in place.
   */
  settings?: Setting[];
  /** Settings for variants this template knows by name. */
  knownVariants?: Record<string, Record<string, string>>;
  files: ManifestFile[];
  /**
   * Debian relations of the definition's .deb (`ganeti-os pack`): the packages whose tools the
   * scripts call on the node (Essential packages left out), merged along the base chain.
   */
  package?: { depends?: string[]; suggests?: string[] };
}

export interface RenderedFile {
  path: string;
  content: string;
  mode: number;
  owner: Owner;
}

export interface Template {
  manifest: TemplateManifest;
  /** Files of the whole base chain, resolved to their folders. */
  files: { file: ManifestFile; dir: string }[];
  /** The settings table of the whole base chain. */
  settings: Setting[];
  knownVariants: Record<string, Record<string, string>>;
  /** A site template (template-source.ts): where it came from, as the definition records it. */
  source?: TemplateSourceRecord;
  /** A site template's files, read once when it was loaded and checked (absolute path → text). */
  contents?: Map<string, string>;
  /** A site template's version hash, computed when it was loaded (upgrade-record.ts's templateVersion). */
  version?: string;
}

/**
 * Where a site template came from (`new --template DIR` or `git+URL[#ref]`), recorded in
 * .ganeti-os.json so that `upgrade` follows the same template. Absent for the built-in ones.
 */
export interface TemplateSourceRecord {
  kind: 'dir' | 'git';
  /** The directory (absolute), or the repository's URL as git takes it (a local path made absolute). */
  location: string;
  /** git: the ref asked for (absent: the repository's HEAD). */
  ref?: string;
  /** git: the template's directory in the repository (absent: its top). */
  subdir?: string;
  /** git: the commit rendered. */
  commit?: string;
  /** sha256 of the template's own files (path and content), its first 12 hex digits. */
  hash: string;
  /** The manifest's version, if it has one. */
  version?: string;
  /** The manifest's summary (`pack` describes the package with it). */
  summary?: string;
  /** The Debian relations of the whole base chain (`pack` writes them). */
  package?: { depends: string[]; suggests: string[] };
}

/** A template's name: lower-case letters, digits and '-'. */
export const TEMPLATE_NAME_RE = /^[a-z0-9][a-z0-9-]*$/;

export function listTemplates(): TemplateManifest[] {
  let names: string[];
  try {
    names = fs.readdirSync(TEMPLATES_DIR);
  } catch {
    return [];
  }
  return names
    .filter((n) => TEMPLATE_NAME_RE.test(n) && fs.existsSync(path.join(TEMPLATES_DIR, n, 'template.json')))
    .map((n) => readManifest(n))
    .filter((m) => !m.hidden)
    .sort((a, b) => (a.name === DEFAULT_TEMPLATE ? -1 : b.name === DEFAULT_TEMPLATE ? 1 : a.name.localeCompare(b.name)));
}

/** The template `new` uses when none is named: `debian` once it ships, else `blank`. */
export const DEFAULT_TEMPLATE = fs.existsSync(path.join(TEMPLATES_DIR, 'debian', 'template.json')) ? 'debian' : 'blank';

function readManifest(name: string): TemplateManifest {
  const file = path.join(TEMPLATES_DIR, name, 'template.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as TemplateManifest;
}

/** Whether ganeti-os ships a template of that name (hidden building blocks included). */
export function isBuiltinTemplate(name: string): boolean {
  return TEMPLATE_NAME_RE.test(name) && fs.existsSync(path.join(TEMPLATES_DIR, name, 'template.json'));
}

export function loadTemplate(name: string): Template {
  if (!isBuiltinTemplate(name)) {
    const known = listTemplates().map((t) => t.name);
    throw new UsageError(`unknown template '${name}'`, [
      `available templates: ${known.join(', ')}`,
      'A site template is named by its directory (./NAME or a path) or git+URL[#ref] (see TEMPLATES.md).',
    ]);
  }
  return composeTemplate(readManifest(name), path.join(TEMPLATES_DIR, name));
}

/**
 * A template from its manifest and folder: its base templates' files first (a later file with
 * the same path replaces an earlier one), their settings and known variants merged under its own.
 * The base templates are ganeti-os's own.
 */
export function composeTemplate(manifest: TemplateManifest, dir: string): Template {
  const files: { file: ManifestFile; dir: string }[] = [];
  const settings: Setting[] = [];
  const addSettings = (more: readonly Setting[]) => {
    for (const st of more) {
      const i = settings.findIndex((e) => e.key === st.key);
      if (i >= 0) settings[i] = st;
      else settings.push(st);
    }
  };
  let knownVariants: Record<string, Record<string, string>> = {};
  for (const base of manifest.base ?? []) {
    const t = loadTemplate(base);
    for (const f of t.files) files.push(f);
    addSettings(t.settings);
    knownVariants = { ...knownVariants, ...t.knownVariants };
  }
  for (const f of manifest.files) {
    const i = files.findIndex((e) => e.file.path === f.path);
    const entry = { file: f, dir };
    if (i >= 0) files[i] = entry;
    else files.push(entry);
  }
  addSettings(manifest.settings ?? []);
  if (manifest.knownVariants) knownVariants = { ...knownVariants, ...manifest.knownVariants };
  return { manifest, files, settings, knownVariants };
}

/** Settings for a new variant: the template's defaults, what it knows of that name, then the user's. */
export function variantSettings(t: Template, variant: string, given: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of variantKeys(t.settings)) out[k.key] = defaultFor(k, variant);
  Object.assign(out, t.knownVariants[variant] ?? {}, given);
  return out;
}

/**
 * Warnings for variants whose name becomes a setting (the debian template's SUITE defaults to
 * the variant's name) but is not one the template knows: `web` is no Debian release. One
 * message per variant, naming the known ones and how to set the value; [] when all are known.
 */
export function unknownReleaseWarnings(t: Template, variants: { name: string; settings: Record<string, string> }[], given: Record<string, string> = {}): string[] {
  const byName = variantKeys(t.settings).filter((k) => k.default?.includes('{variant}'));
  if (!byName.length) return [];
  const known = Object.keys(t.knownVariants);
  const out: string[] = [];
  for (const v of variants) {
    if (known.includes(v.name)) continue;
    const keys = byName.filter((k) => given[k.key] === undefined && v.settings[k.key] === defaultFor(k, v.name));
    if (!keys.length) continue;
    const what = keys.map((k) => `${k.key}=${v.name}`).join(', ');
    out.push(
      `variant '${v.name}' is not a release the ${t.manifest.name} template knows (${known.join(', ')}): its configuration sets ${what}, which the scripts install as given.` +
        ` If '${v.name}' is not the release's own name, set it: ganeti-os add-variant ${v.name} ${keys.map((k) => `--set ${k.key}=<${k.description.toLowerCase().split(' ')[0]}>`).join(' ')}`,
    );
  }
  return out;
}

/** Words as `# ` comment lines of at most 100 characters. */
function commentLines(text: string): string[] {
  const out: string[] = [];
  let line = '#';
  for (const w of text.split(' ')) {
    if (line.length > 1 && line.length + 1 + w.length > 100) {
      out.push(line);
      line = '#';
    }
    line += ' ' + w;
  }
  return [...out, line];
}

/** What a variant's configuration says about the layers read before and after it (layers.ts). */
function variantConfLayers(os: string, variant: string): string[] {
  const layers = runtimeLayers(RUNTIME_VERSION);
  const at = layers.findIndex((l) => l.at === 'definition' && l.path.includes('<variant>'));
  const name = (l: ConfigLayer) => layerPath(l, os, variant);
  const list = (ls: ConfigLayer[]) => (ls.length < 2 ? ls.map(name).join('') : `${ls.slice(0, -1).map(name).join(', ')} and ${name(ls[ls.length - 1])}`);
  const before = layers.slice(0, at);
  const after = layers.slice(at + 1);
  return commentLines(
    `Sourced by the scripts as bash after ${list(before)} (a commented-out setting keeps their value);` +
      (after.length ? ` ${list(after)}, if present, ${after.length === 1 ? 'is' : 'are'} read after it.` : ''),
  );
}

export function renderVariantConf(t: Template, spec: DefinitionSpec, v: VariantSpec): string {
  const lines = [
    '# shellcheck shell=bash disable=SC2034',
    `# Variant '${v.name}' of the ${spec.name} OS definition (${spec.name}+${v.name}).`,
    ...variantConfLayers(spec.name, v.name),
    '',
  ];
  const described = new Set<string>();
  const keys = variantKeys(t.settings);
  for (const k of keys) {
    described.add(k.key);
    lines.push(`# ${k.description}`);
    const value = v.settings[k.key] ?? defaultFor(k, v.name);
    // Empty means "not set here": left commented out so a site-wide value (defaults.conf,
    // /etc/default/<os>, site.conf) still applies. `add-variant --set` fills the line in.
    lines.push(value === '' ? `# ${k.key}=` : `${k.key}=${shq(value)}`);
  }
  const extra = Object.keys(v.settings).filter((k) => !described.has(k));
  if (extra.length) {
    if (keys.length) lines.push('');
    for (const k of extra) lines.push(`${k}=${shq(v.settings[k])}`);
  }
  return lines.join('\n') + '\n';
}

export function renderVariantsList(spec: DefinitionSpec): string {
  return (
    `# Variants of ${spec.name}, one per line; Ganeti offers them as ${spec.name}+<variant>.\n` +
    '# The first one is the default.\n' +
    spec.variants.map((v) => v.name + '\n').join('')
  );
}

/** lib/parameters.sh: the declared parameters, their defaults and checks, for the runtime. */
export function renderParametersSh(spec: DefinitionSpec): string {
  // Below API 20 Ganeti passes no OSP_* at all: parameters kept in the answers (bump-api down
  // with --force) still give the scripts their defaults, so they keep working.
  const params = spec.parameters;
  const lines = [
    '# shellcheck shell=bash disable=SC2034',
    '# Parameters of this definition: generated by ganeti-os from its answers; change them with',
    '# `ganeti-os add-param` / `remove-param` rather than by hand.',
    `GOS_PARAMS=(${params.map((p) => shq(p.name)).join(' ')})`,
    'declare -gA GOS_PARAM_DEFAULT=(' + params.filter((p) => p.default !== undefined).map((p) => `[${shq(p.name)}]=${shq(p.default!)}`).join(' ') + ')',
    'declare -gA GOS_PARAM_CHOICES=(' + params.filter((p) => p.choices?.length).map((p) => `[${shq(p.name)}]=${shq(p.choices!.join('\n'))}`).join(' ') + ')',
    'declare -gA GOS_PARAM_PATTERN=(' + params.filter((p) => p.pattern !== undefined).map((p) => `[${shq(p.name)}]=${shq(p.pattern!)}`).join(' ') + ')',
  ];
  return lines.join('\n') + '\n';
}

type HandlebarsEnv = typeof import('handlebars');
type Render = (data: Record<string, unknown>) => string;

function withHelpers<T extends HandlebarsEnv>(hb: T): T {
  hb.registerHelper('shq', (s: unknown) => shq(String(s)));
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('join', (a: unknown, sep: unknown) => (Array.isArray(a) ? a.join(typeof sep === 'string' ? sep : ', ') : ''));
  return hb;
}

let handlebars: HandlebarsEnv | undefined;
function engine(): HandlebarsEnv {
  // Loaded only when a template must be compiled: keeps every other command fast to start.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!handlebars) handlebars = withHelpers((require('handlebars') as HandlebarsEnv).create());
  return handlebars;
}

let runtime: HandlebarsEnv | undefined;
function runtimeEngine(): HandlebarsEnv {
  // The runtime alone (no parser, no compiler) runs the templates precompiled at build time.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!runtime) runtime = withHelpers((require('handlebars/runtime') as HandlebarsEnv).create());
  return runtime;
}

interface Precompiled {
  sha256: string;
  spec: unknown;
}
let precompiled: Record<string, Precompiled> | undefined;
function precompiledTemplates(): Record<string, Precompiled> {
  if (!precompiled) {
    try {
      // dist/templates.precompiled.js, written by scripts/precompile-templates.js (absent under ts-jest).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      precompiled = require('../templates.precompiled') as Record<string, Precompiled>;
    } catch {
      precompiled = {};
    }
  }
  return precompiled;
}

const compiled = new Map<string, Render>();
/** The render function of a .hbs file: precompiled when its source is unchanged, compiled once otherwise. */
function hbsTemplate(file: string, src: string): Render {
  const key = `${file}\0${src}`;
  let fn = compiled.get(key);
  if (!fn) {
    const entry = precompiledTemplates()[path.relative(TEMPLATES_DIR, file).split(path.sep).join('/')];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sha = () => (require('node:crypto') as typeof import('node:crypto')).createHash('sha256').update(src).digest('hex');
    fn =
      entry && entry.sha256 === sha()
        ? (runtimeEngine().template(entry.spec as never) as Render)
        : engine().compile(src, { noEscape: true, strict: false });
    compiled.set(key, fn);
  }
  return fn;
}

export function templateData(t: Template, spec: DefinitionSpec): Record<string, unknown> {
  const top = maxApi(spec);
  return {
    name: spec.name,
    template: t.manifest.name,
    summary: t.manifest.summary,
    toolVersion: toolVersion(),
    apiVersions: spec.apiVersions,
    maxApi: top,
    hasVariants: top >= 15 && spec.variants.length > 0,
    hasParameters: top >= 20 && spec.parameters.length > 0,
    api20: top >= 20,
    variants: spec.variants.map((v, i) => ({ ...v, isDefault: i === 0, settingsList: Object.entries(v.settings).map(([key, value]) => ({ key, value })) })),
    defaultVariant: spec.variants[0]?.name ?? '',
    parameters: spec.parameters.map((p) => ({ ...p, env: paramEnvName(p.name), choicesText: p.choices?.join(', ') })),
    variantKeys: variantKeys(t.settings),
    /** defaults.conf's documentation of the settings (defaults.conf.hbs). */
    settingsDoc: renderSettingsDoc(t.settings),
    /** The configuration layers in the runtime's order, as README.md lists them (`n`. `text`). */
    configLayers: runtimeLayers(RUNTIME_VERSION).map((l, i, all) => ({
      n: i + 1,
      text: `\`${layerPath(l, spec.name)}\` ${l.at === 'node' ? 'on the node' : 'in this directory'}${l.role ? ` (${l.role})` : ''}${i === all.length - 1 ? '.' : ';'}`,
    })),
    /** The settings table by key, for documentation that names a default ({{settings.CACHE_DIR.default}}). */
    settings: Object.fromEntries(t.settings.map((st) => [st.key, st])),
  };
}

/** Every file the template produces for `spec`, in a stable order. */
export function renderTemplate(t: Template, spec: DefinitionSpec): RenderedFile[] {
  const top = maxApi(spec);
  const data = templateData(t, spec);
  const out: RenderedFile[] = [];
  for (const { file, dir } of t.files) {
    if (file.minApi !== undefined && top < file.minApi) continue;
    const mode = parseInt(file.mode, 8);
    const targets: (VariantSpec | undefined)[] = file.each === 'variant' ? spec.variants : [undefined];
    for (const v of targets) {
      const p = v ? file.path.replace(/\{variant\}/g, v.name) : file.path;
      let content: string;
      switch (file.generator) {
        case 'api-version':
          content = formatApiVersions(spec.apiVersions);
          break;
        case 'variants-list':
          if (!(top >= 15 && spec.variants.length)) continue;
          content = renderVariantsList(spec);
          break;
        case 'parameters-list':
          content = formatParametersList(spec.parameters);
          break;
        case 'parameters-sh':
          content = renderParametersSh(spec);
          break;
        case 'settings-sh':
          content = renderSettingsSh(t.settings, t.manifest.name, t.manifest.defaults.variants[0] ?? '');
          break;
        case 'variant-conf':
          if (!v) throw new UserError(`template ${t.manifest.name}: variant-conf needs "each": "variant"`);
          content = renderVariantConf(t, spec, v);
          break;
        default: {
          if (!file.source) throw new UserError(`template ${t.manifest.name}: file ${file.path} has neither source nor generator`);
          const source = path.join(dir, file.source);
          const src = t.contents?.get(source) ?? fs.readFileSync(source, 'utf8');
          try {
            content = file.source.endsWith('.hbs') ? hbsTemplate(source, src)({ ...data, ...(file.data ?? {}), variant: v }) : src;
          } catch (err) {
            // A site template's mistake (a helper it does not have, ...) is the template's, not a bug of ganeti-os.
            if (!t.source) throw err;
            throw new UserError(`template ${t.manifest.name}: ${file.source} (for ${p}) cannot be rendered: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
          }
        }
      }
      out.push({ path: p, content: content.replace(/\r\n?/g, '\n'), mode, owner: file.owner });
    }
  }
  return out;
}
