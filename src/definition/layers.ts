/**
 * The configuration layers of a ganeti-os definition: the files lib/runtime.sh's
 * gos_load_config sources, in its order (a later file overrides an earlier one). This table is
 * the TypeScript side's one account of them: `validate` checks the node's layers that exist
 * (checks.ts), `pack` installs the definition's files as conffiles where the runtime reads them
 * (package/build.ts), and the variant configuration and README.md say where a setting can also
 * be set (templates.ts). test/runtime.test.ts runs gos_load_config and holds it to this table.
 *
 * A definition's record (.ganeti-os.json, `runtimeVersion`) says which runtime it was written
 * with; a layer applies to it from the runtime version that began to read it (`since`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isInside } from '../paths';
import { ShellText, isFile, nodeSourcedFiles, variantConfigSource } from './script-reading';

export interface ConfigLayer {
  /**
   * Where the file is: for 'definition', relative to the definition directory; for 'node', an
   * absolute path. `<os>` stands for the OS name, `<variant>` for the variant a script runs.
   */
  path: string;
  at: 'definition' | 'node';
  /** What it is for, as README.md says it ('' for nothing more than its place). */
  role: string;
  /** The first runtime version (RUNTIME_VERSION) that reads it. */
  since: number;
  /** For a node layer: the definition's layer that `pack` installs here as a conffile. */
  packs?: string;
}

/**
 * The version of the configuration layers the runtime of this ganeti-os reads.
 * 1: defaults.conf, /etc/default/<os>, /etc/ganeti/<os>/site.conf and the variants' files.
 * 2: also /etc/ganeti/<os>/defaults.conf (the conffile `pack` installs).
 */
export const RUNTIME_VERSION = 2;

export const CONFIG_LAYERS: readonly ConfigLayer[] = [
  { at: 'definition', path: 'defaults.conf', role: 'yours to edit', since: 1 },
  { at: 'node', path: '/etc/ganeti/<os>/defaults.conf', role: "the package's conffile", since: 2, packs: 'defaults.conf' },
  { at: 'node', path: '/etc/default/<os>', role: '', since: 1 },
  { at: 'node', path: '/etc/ganeti/<os>/site.conf', role: '', since: 1 },
  { at: 'definition', path: 'variants/<variant>.conf', role: '', since: 1 },
  { at: 'node', path: '/etc/ganeti/<os>/variants/<variant>.conf', role: "the package's conffile", since: 1, packs: 'variants/<variant>.conf' },
];

/**
 * The layers a runtime of `version` reads, in its order. A record without a version was written
 * before ganeti-os recorded it: only the layers every runtime read are certain (`upgrade`
 * records the version).
 */
export function runtimeLayers(version: number | undefined): ConfigLayer[] {
  return CONFIG_LAYERS.filter((l) => l.since <= (version ?? 1));
}

/** A layer's path for OS `os` (and `variant`, if given; else `<variant>` stays). */
export function layerPath(l: ConfigLayer, os: string, variant?: string): string {
  const p = l.path.replace(/<os>/g, os);
  return variant === undefined ? p : p.replace(/<variant>/g, variant);
}

/** The layers' files that exist (regular files), as `dirOf` places them: `<variant>` is every `*.conf` there. */
function existing(layers: ConfigLayer[], os: string, dirOf: (p: string) => string): string[] {
  const out: string[] = [];
  for (const l of layers) {
    const p = layerPath(l, os);
    if (!p.includes('<variant>')) {
      if (isFile(dirOf(p))) out.push(p);
      continue;
    }
    const [before, after] = p.split('<variant>');
    let names: string[];
    try {
      names = fs.readdirSync(dirOf(path.dirname(p))).sort();
    } catch {
      continue;
    }
    const base = before.slice(before.lastIndexOf('/') + 1);
    for (const n of names) {
      if (n.startsWith(base) && n.endsWith(after) && n.length > base.length + after.length && isFile(dirOf(path.join(path.dirname(p), n)))) out.push(path.join(path.dirname(p), n));
    }
  }
  return out;
}

/** The definition's own layer files that exist in `dir` (relative: defaults.conf, variants/*.conf). */
export function definitionLayerFiles(dir: string): string[] {
  return existing(
    CONFIG_LAYERS.filter((l) => l.at === 'definition'),
    path.basename(dir),
    (p) => path.join(dir, p),
  );
}

/** This node's layer files for OS `os` that a runtime of `version` reads and that exist (absolute). */
export function nodeLayerFiles(os: string, version: number | undefined): string[] {
  return existing(
    runtimeLayers(version).filter((l) => l.at === 'node'),
    os,
    (p) => p,
  );
}

/** Where `pack` installs the definition's file `rel` (a layer) as a conffile for a runtime of `version`; undefined: nowhere. */
export function conffilePath(rel: string, os: string, version: number | undefined): string | undefined {
  for (const l of runtimeLayers(version)) {
    if (l.packs === undefined) continue;
    const m = layerMatch(l.packs, rel);
    if (m !== undefined) return layerPath(l, os, m);
  }
  return undefined;
}

/** Whether `rel` is one of the definition's layers. */
export function isDefinitionLayer(rel: string): boolean {
  return CONFIG_LAYERS.some((l) => l.at === 'definition' && layerMatch(l.path, rel) !== undefined);
}

/** The variant `rel` stands for under `pattern` ('' when the pattern has none); undefined: no match. */
function layerMatch(pattern: string, rel: string): string | undefined {
  if (!pattern.includes('<variant>')) return pattern === rel ? '' : undefined;
  const [before, after] = pattern.split('<variant>');
  if (!rel.startsWith(before) || !rel.endsWith(after)) return undefined;
  const v = rel.slice(before.length, rel.length - after.length);
  return v && !v.includes('/') ? v : undefined;
}

/** Where a definition's scripts read each variant's configuration (variantConfigPlace). */
export interface VariantConfigPlace {
  /** The directory, absolute. */
  dir: string;
  /** The file name extension, dot included ('.conf', '.rb'), or '' for none. */
  ext: string;
  /**
   * How it is known: 'definition' (variants/*.conf in the OS directory, or a ganeti-os record),
   * 'scripts' (their shell code says, with a VARIANTS_DIR this node's sourced files set), or
   * 'list' (nothing says: the variants/ directory beside variants.list's target, a guess).
   */
  from: 'definition' | 'scripts' | 'list';
}

/**
 * Where the scripts of the definition in `root` read the configuration of a variant: the one
 * rule `validate` (a missing file) and the maintenance commands (add-variant, remove-variant,
 * bump-api: where a file is written or removed) share.
 *
 *  1. `variants/*.conf` in the OS directory, or a definition ganeti-os wrote (`own`): its own
 *     `variants/` (lib/runtime.sh's layer; the node's `/etc/ganeti/<os>/variants/` is another).
 *  2. What the shell code reads (variantConfigSource): `$VARIANTS_DIR/$OS_VARIANT.conf`, with
 *     VARIANTS_DIR as the last of this node's sourced files that sets it gives it
 *     (ganeti-instance-debootstrap's `/etc/default/ganeti-instance-debootstrap`), else the
 *     code's default (`/etc/ganeti/instance-debootstrap/variants`); a literal directory; or one
 *     of the definition's own (relative to `root`).
 *  3. Otherwise, a `variants/` directory that exists beside the target of a symlinked
 *     `variants.list` (`listTarget`, resolved), or in `root`.
 *
 * `texts` are the definition's shell texts (script-reading.ts's shellTexts). Undefined when
 * none applies. Reads the node's sourced files; never throws.
 */
export function variantConfigPlace(root: string, texts: ShellText[], opts: { own: boolean; listTarget?: string }): VariantConfigPlace | undefined {
  const own = path.join(root, 'variants');
  if (opts.own || definitionLayerFiles(root).some((f) => f.startsWith('variants/'))) return { dir: own, ext: '.conf', from: 'definition' };
  const src = variantConfigSource(texts);
  if (src) {
    const set = texts.some((t) => /\$\{?VARIANTS_DIR\b/.test(t.text)) ? nodeVariantsDir(texts) : undefined;
    const dir = set ?? (src.dir === undefined ? undefined : src.relative ? path.join(root, src.dir) : src.dir);
    if (dir !== undefined) return { dir, ext: src.ext, from: 'scripts' };
  }
  const candidates = [...(opts.listTarget ? [path.join(path.dirname(opts.listTarget), 'variants')] : []), own];
  const found = candidates.find((d) => {
    try {
      return fs.statSync(d).isDirectory();
    } catch {
      return false;
    }
  });
  return found === undefined ? undefined : { dir: found, ext: src?.ext ?? '.conf', from: 'list' };
}

/** VARIANTS_DIR as the last of the node's files the scripts source sets it (an absolute path), if one does. */
function nodeVariantsDir(texts: ShellText[]): string | undefined {
  let dir: string | undefined;
  for (const f of nodeSourcedFiles(texts)) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(/^\s*(?:export\s+)?VARIANTS_DIR=["']?(\/[^"'\s;]*)["']?\s*(?:#.*)?$/gm)) dir = m[1].replace(/(.)\/+$/, '$1');
  }
  return dir;
}

/**
 * Whether a maintenance command may write variant configuration in `dir`: inside the
 * definition `root`, or inside the directory holding the target of its symlinked
 * `variants.list` (`listTarget`, resolved: the admin keeps the list there, as the Debian package
 * of ganeti-instance-debootstrap does in /etc/ganeti/instance-debootstrap/). Anywhere else
 * (another package's /etc directory, for a copy) it is not the definition's to change.
 */
export function mayWriteVariantConfig(dir: string, root: string, listTarget?: string): boolean {
  return isInside(dir, root) || (listTarget !== undefined && isInside(dir, path.dirname(listTarget)));
}
