/**
 * What a definition records so that `upgrade` can bring it to newer templates later: the
 * template's version (a content hash of its tree) and the base render (the exact text the
 * template produced for every file ganeti-os tracks). Both go into `.ganeti-os.json`, written
 * by the worker (worker.ts) with every plan, so the base is current after every command that writes.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParamSpec } from './spec';
import type { Template } from './templates';

const versions = new Map<string, string>();

/** Every regular file under `dir`, relative, sorted (the template tree as shipped). */
function treeFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...treeFiles(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/**
 * The version of a template: the first 12 hex digits of a sha256 over every file of it and of
 * its base templates (path and content), so any change to a template's data changes it without
 * anyone bumping a number. Throws only if a template file cannot be read.
 */
export function templateVersion(t: Template): string {
  // A site template's was computed when it was loaded (template-source.ts), from what it read.
  if (t.version) return t.version;
  const dirs = [...new Set(t.files.map((f) => f.dir))].sort();
  const key = dirs.join('\0');
  let v = versions.get(key);
  if (v === undefined) {
    const h = crypto.createHash('sha256');
    for (const dir of dirs) {
      const name = path.basename(dir);
      for (const rel of treeFiles(dir)) {
        const content = fs.readFileSync(path.join(dir, rel));
        h.update(`${name}/${rel}\0${content.length}\0`).update(content);
      }
    }
    v = h.digest('hex').slice(0, 12);
    versions.set(key, v);
  }
  return v;
}

/** The template's own parameter definitions (deep copies), as recorded with the version. */
export function templateParameters(t: Template): ParamSpec[] {
  return t.manifest.defaults.parameters.map((p) => ({ ...p, ...(p.choices ? { choices: [...p.choices] } : {}) }));
}

/** The template's own variants (its default first), as recorded with the version. */
export function templateVariants(t: Template): string[] {
  return [...t.manifest.defaults.variants];
}

/**
 * A note when the template's default variant moved since a definition was written (`recorded`:
 * the template's variants then; undefined for definitions that did not record them) and the
 * definition's own default (`variants[0]`) is not the new one; undefined otherwise. The
 * definition's variants.list is the admin's: upgrade never reorders it, the note says how to.
 */
export function defaultVariantNote(t: Template, recorded: string[] | undefined, variants: string[]): string | undefined {
  const now = t.manifest.defaults.variants[0];
  const mine = variants[0];
  if (now === undefined || mine === undefined || mine === now) return undefined;
  if (recorded !== undefined && recorded[0] === now) return undefined;
  const how = variants.includes(now) ? `'ganeti-os add-variant ${now} --first' makes it this definition's default` : `'ganeti-os add-variant ${now} --first' adds it as this definition's default`;
  return `The ${t.manifest.name} template's default variant is now ${now} (new definitions list ${t.manifest.defaults.variants.join(', ')}${recorded?.[0] ? `; it was ${recorded[0]}` : ''}). This definition keeps ${mine} as its default: its variants.list is yours and was left as it is; ${how}.`;
}

