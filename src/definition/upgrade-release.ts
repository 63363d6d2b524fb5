/**
 * The templates of the ganeti-os release that recorded neither template versions nor base
 * renders in the definitions it wrote (the 2026-11-25 release). They ship as data,
 * `templates/history/<release>.json` (each template's manifest and the sources its files name,
 * read from git history by scripts/release-bases.js), so that `upgrade` can rebuild what that
 * release rendered for a definition's recorded answers: the base of its three-way merge. Without
 * it, a file both the admin and the template changed could not be merged at all.
 *
 * Nothing is trusted blindly: a rebuilt text is a file's base only when its sha256 is the one
 * the definition's record holds for that file (the text that release wrote).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TEMPLATES_DIR } from '../paths';
import { Provenance, sha256 } from './provenance';
import type { Setting } from './settings';
import type { ParamSpec } from './spec';
import { ManifestFile, Template, TemplateManifest, renderTemplate } from './templates';

/** Where the releases' template data lives (one JSON file per release). */
export const HISTORY_DIR = path.join(TEMPLATES_DIR, 'history');

/** One release's data file, as scripts/release-bases.js writes it. */
interface ReleaseData {
  release: string;
  commit: string;
  templates: Record<string, { manifest: TemplateManifest & { variantKeys?: { key: string; description: string; default?: string }[] }; sources: Record<string, string> }>;
}

/** What a release rendered for a definition: the base of each file it recognises, and the template's own answers then. */
export interface ReleaseBase {
  /** The release, e.g. "2026-11-25". */
  release: string;
  /** Path → the exact text that release wrote (only files whose recorded sha256 it reproduces). */
  base: Record<string, string>;
  /** The template's parameters in that release (for upgradeParameters' three ways). */
  parameters: ParamSpec[];
  /** The template's variants in that release, its default first. */
  variants: string[];
}

let releases: ReleaseData[] | undefined;
function loadReleases(): ReleaseData[] {
  if (releases) return releases;
  let names: string[];
  try {
    names = fs.readdirSync(HISTORY_DIR).filter((n) => n.endsWith('.json')).sort();
  } catch {
    names = [];
  }
  releases = names.map((n) => JSON.parse(fs.readFileSync(path.join(HISTORY_DIR, n), 'utf8')) as ReleaseData);
  return releases;
}

/**
 * Template `name` as release `r` had it, its base templates first (as templates.ts composes
 * them), rendering from the shipped sources. `toolVersion` is the ganeti-os version that wrote
 * the definition (its scripts name it). Undefined when the release has no such template.
 */
function releaseTemplate(r: ReleaseData, name: string, toolVersion: string): Template | undefined {
  const own = r.templates[name];
  if (!own) return undefined;
  const files: { file: ManifestFile; dir: string }[] = [];
  const contents = new Map<string, string>();
  const settings: Setting[] = [];
  for (const n of [...(own.manifest.base ?? []), name]) {
    const t = r.templates[n];
    if (!t) return undefined;
    const dir = path.join(HISTORY_DIR, r.release, n);
    for (const [src, text] of Object.entries(t.sources)) contents.set(path.join(dir, src), text);
    for (const f of t.manifest.files) {
      // The data that release's templateData gave its .hbs files, where it differs from today's.
      const file: ManifestFile = f.source?.endsWith('.hbs') ? { ...f, data: { ...(f.data ?? {}), toolVersion, summary: own.manifest.summary, variantKeys: own.manifest.variantKeys ?? [] } } : f;
      const i = files.findIndex((e) => e.file.path === f.path);
      if (i >= 0) files[i] = { file, dir };
      else files.push({ file, dir });
    }
    for (const k of t.manifest.variantKeys ?? []) settings.push({ key: k.key, description: k.description, default: k.default, in: 'variant' });
  }
  return { manifest: own.manifest, files, settings, knownVariants: own.manifest.knownVariants ?? {}, contents };
}

/**
 * For a definition whose record has no base render (written before ganeti-os recorded one):
 * what the release that wrote it rendered, rebuilt from the shipped data. The release is
 * recognised by the static files of its template (lib/runtime.sh, lib/steps.sh, ...): every one
 * the record names must carry that release's hash. Pure but for reading the data files; returns
 * undefined for a record with a base, a site template, or a definition no shipped release wrote.
 * Never throws (a render that fails is no match).
 */
export function releaseBase(prov: Provenance): ReleaseBase | undefined {
  if (prov.base || prov.templateVersion || prov.templateSource) return undefined;
  for (const r of loadReleases()) {
    const t = releaseTemplate(r, prov.template, prov.version);
    if (!t) continue;
    const statics = t.files.filter(({ file }) => file.owner === 'tool' && file.source && !file.source.endsWith('.hbs') && prov.files[file.path]);
    if (!statics.length) continue;
    if (!statics.every(({ file, dir }) => prov.files[file.path].sha256 === sha256(t.contents!.get(path.join(dir, file.source!))!))) continue;
    let rendered;
    try {
      rendered = renderTemplate(t, prov.answers);
    } catch {
      continue;
    }
    const base: Record<string, string> = {};
    for (const f of rendered) if (prov.files[f.path]?.sha256 === sha256(f.content)) base[f.path] = f.content;
    return {
      release: r.release,
      base,
      parameters: t.manifest.defaults.parameters.map((p) => ({ ...p, ...(p.choices ? { choices: [...p.choices] } : {}) })),
      variants: [...t.manifest.defaults.variants],
    };
  }
  return undefined;
}
