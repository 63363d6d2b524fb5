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
