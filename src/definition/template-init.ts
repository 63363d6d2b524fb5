/**
 * `template init DIR --from debian`: a site template that starts as a copy of a built-in one —
 * its manifest (renamed, with a version of its own) and every file it names, a file it shares
 * with another built-in template (debian's lib/raw-stream.sh is common's) copied in too, so the
 * site template holds everything it names. Its base templates (common: the script shims and the
 * runtime) stay ganeti-os's own. Plans the files; the command writes them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, UserError } from '../errors';
import { TEMPLATES_DIR } from '../paths';
import { MANIFEST } from './template-source';
import { ManifestFile, TEMPLATE_NAME_RE, isBuiltinTemplate, listTemplates } from './templates';

export interface TemplateFileOut {
  path: string;
  content: string;
}

/** The version a new site template starts at. */
export const FIRST_VERSION = '1';

/** JSON on one line, spaced as the built-in manifests are: `{ "path": "create", "mode": "0755" }`. */
function inline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inline).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return entries.length ? `{ ${entries.map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(', ')} }` : '{}';
  }
  return JSON.stringify(value);
}

/** JSON as people write manifests: lists of objects one object a line, short objects on one line. */
export function formatManifest(value: unknown, indent = 0): string {
  const pad = (n: number) => ' '.repeat(n);
  if (Array.isArray(value)) {
    if (!value.some((x) => typeof x === 'object' && x !== null)) return inline(value);
    return `[\n${value.map((x) => pad(indent + 2) + inline(x)).join(',\n')}\n${pad(indent)}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const flat = inline(value);
    if (indent > 0 && flat.length <= 100) return flat;
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{\n${entries.map(([k, v]) => `${pad(indent + 2)}${JSON.stringify(k)}: ${formatManifest(v, indent + 2)}`).join(',\n')}\n${pad(indent)}}`;
  }
  return inline(value);
}

/** The template's name for a directory: its base name, when that is a template name. */
export function templateNameFor(dir: string, given?: string): string {
  const name = given ?? path.basename(path.resolve(dir));
  if (!TEMPLATE_NAME_RE.test(name)) {
    throw new UsageError(
      given !== undefined
        ? `invalid template name '${name}': use lower-case letters, digits and '-', starting with a letter or digit`
        : `the directory's name '${name}' is not a template name (lower-case letters, digits and '-'): give one with --name`,
    );
  }
  return name;
}

/** The files of a new site template `name` copied from the built-in template `from`. */
export function siteTemplateFiles(from: string, name: string): TemplateFileOut[] {
  if (!isBuiltinTemplate(from)) {
    throw new UsageError(`unknown template '${from}'`, [`start from one of: ${listTemplates().map((t) => t.name).join(', ')}`]);
  }
  const dir = path.join(TEMPLATES_DIR, from);
  const raw = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as Record<string, unknown> & { files: ManifestFile[]; hidden?: boolean };
  if (raw.hidden) {
    throw new UsageError(`'${from}' is a building block of the other templates, not one to start from`, [`start from one of: ${listTemplates().map((t) => t.name).join(', ')}`]);
  }
  // Where each source goes: its own path when it is the template's; a file of another template
  // under its path in that template (../common/lib/x.sh → lib/x.sh), or common/lib/x.sh if taken.
  const placed = new Map<string, string>();
  const taken = new Set<string>([MANIFEST]);
  const sources = raw.files.filter((f) => f.source).map((f) => path.resolve(dir, f.source!));
  const inside = (abs: string) => !path.relative(dir, abs).startsWith('..');
  for (const abs of [...sources.filter(inside), ...sources.filter((a) => !inside(a))]) {
    if (placed.has(abs)) continue;
    let rel = path.relative(dir, abs).split(path.sep).join('/');
    if (!inside(abs)) {
      const fromRoot = path.relative(TEMPLATES_DIR, abs).split(path.sep);
      if (fromRoot[0] === '..') throw new UserError(`template ${from}: ${abs} is not in ganeti-os's templates`);
      rel = fromRoot.slice(1).join('/');
      if (taken.has(rel)) rel = fromRoot.join('/');
    }
    placed.set(abs, rel);
    taken.add(rel);
  }
  const files = raw.files.map((f) => (f.source ? { ...f, source: placed.get(path.resolve(dir, f.source))! } : { ...f }));
  const { name: _n, summary, hidden: _h, files: _f, version: _v, ...rest } = raw;
  const manifest = { name, summary, version: FIRST_VERSION, ...rest, files };
  const out: TemplateFileOut[] = [{ path: MANIFEST, content: formatManifest(manifest) + '\n' }];
  for (const [abs, rel] of [...placed].sort((a, b) => (a[1] < b[1] ? -1 : 1))) out.push({ path: rel, content: fs.readFileSync(abs, 'utf8') });
  return out;
}
