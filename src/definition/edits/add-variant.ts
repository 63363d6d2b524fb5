/**
 * Adding a variant (`ganeti-os add-variant`): variants.list edited in place, the variant's
 * configuration written (or, for an existing variant, only the settings given changed in place).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, UserError } from '../../errors';
import { OS_API_V15, OS_VARIANTS_FILE } from '../../ganeti/rules';
import {
  Edit,
  Loaded,
  maintenance,
  addVariantLine,
  checkVariantsVisibility,
  facts,
  foreignVariantConfig,
  foreignVariantPlace,
  foreignVariantsDir,
  planPath,
  readText,
  setConfValues,
  symlinkNote,
  symlinkedListEdit,
} from '../maintain';
import { textOp, work } from '../worker';
import { Plan, PlanOp, isUntouched } from '../plan';
import type { DefinitionSpec, VariantSpec } from '../spec';
import type { VariantConfigSource } from '../script-reading';
import { unknownReleaseWarnings, variantSettings } from '../templates';
import { isFamily, isKnownSetting } from '../settings';
import { mayWriteVariantConfig } from '../layers';
import { nodeSourcedFiles, shellTexts } from '../script-reading';

export interface AddVariantEdit {
  variant: string;
  /** KEY=VALUE settings for its configuration (--set). */
  settings: Record<string, string>;
  /** Make it the first, default variant. */
  first?: boolean;
  force?: boolean;
}

/**
 * Add variant `opts.variant` to the loaded definition `l` (or change an existing one's settings,
 * or move it first). Returns the plan; writes nothing. Throws UserError or UsageError (nothing
 * changed) for an API without variants, a change in whether Ganeti sees variants (unless
 * `force`), a setting the template's scripts do not read (unless `force`), or settings a
 * definition ganeti-os did not write cannot carry.
 */
export function addVariant(l: Loaded, opts: AddVariantEdit): Edit {
  if (l.maxApi < OS_API_V15) {
    throw new UserError(`${l.name} uses OS interface version ${l.maxApi}, which has no variants (Ganeti reads variants.list from version 15); nothing was changed`, [
      `Run 'ganeti-os bump-api 15' (or 20) first, then add the variant.`,
    ]);
  }
  const v = opts.variant;
  const given = opts.settings;
  const warnings: string[] = [];
  checkVariantsVisibility(l, { maxApi: l.maxApi, variants: l.variants.length ? l.variants : [v] }, opts.force);
  if (l.template && Object.keys(given).length) {
    const settings = l.template.settings;
    const unknown = Object.keys(given).filter((k) => !isKnownSetting(settings, k));
    if (unknown.length && !opts.force) {
      const known = settings.filter((st) => !isFamily(st)).map((st) => st.key);
      const hints = unknown.map((k) => [k, closest(k, known)]).filter(([, c]) => c).map(([k, c]) => `${k}: did you mean ${c}?`);
      throw new UsageError(`the ${l.template.manifest.name} template's scripts read no setting ${unknown.join(', ')}; nothing was changed`, [
        ...hints,
        `Settings they read: ${settings.map((st) => st.key).join(', ')}.`,
        'Fix the name, or run again with --force to write it anyway (for your own hooks).',
      ]);
    }
  }
  if (!l.template && Object.keys(given).length && !opts.force) {
    // A definition ganeti-os did not write: the settings its shell code reads or its variant
    // configurations already set are the ones a --set can mean.
    const known = foreignSettingKeys(l);
    const unknown = Object.keys(given).filter((k) => !known.has(k));
    if (unknown.length) {
      const hints = unknown.map((k) => [k, closest(k, [...known])]).filter(([, c]) => c).map(([k, c]) => `${k}: did you mean ${c}?`);
      throw new UsageError(`${l.name} was not written by ganeti-os, and neither its scripts nor its variants' configuration read or set ${unknown.join(', ')}; nothing was changed`, [
        ...hints,
        'Fix the name, or run again with --force to write it anyway (for a hook of yours that reads it).',
      ]);
    }
  }
  const edit = addVariantLine(l.variantsFile.text, v, { first: opts.first });
  const outside = edit.result !== 'exists' || Object.keys(given).length ? symlinkedListEdit(l, 'add-variant', opts.force) : undefined;
  if (outside) warnings.push(outside);
  const names = namesAfter(l.variants, v, edit.result, !!opts.first);
  const { plan, confPath } = l.provenance ? planOwn(l, opts, given, edit.text, names) : planForeign(l, opts, given, edit.text);
  const note = symlinkNote(l.variantsFile);
  if (note && !outside && edit.result !== 'exists') plan.notes.unshift(note);
  if (l.template && edit.result === 'added') {
    const entry = l.spec!.variants.find((x) => x.name === v) ?? { name: v, settings: variantSettings(l.template, v, given) };
    warnings.push(...unknownReleaseWarnings(l.template, [entry], given));
  }

  const hasSet = Object.keys(given).length > 0;
  let summary: string;
  if (edit.result === 'added') summary = `Added variant '${v}' to ${l.name}${opts.first ? ' as its default' : ''} (variants: ${names.join(', ')})`;
  else if (edit.result === 'moved') summary = `Variant '${v}' of ${l.name} is now the first, default one (variants: ${names.join(', ')})`;
  else if (hasSet) summary = `Variant '${v}' already exists in ${l.name}; updated only its configuration${confPath ? ` (${confPath})` : ''}`;
  else summary = `Variant '${v}' already exists in ${l.name}`;
  return {
    plan,
    summary,
    facts: { command: 'add-variant', variant: v, result: edit.result, ...facts(l, l.apiVersions, names, l.parameters.map((p) => p.name)) },
    warnings,
  };
}

function namesAfter(current: string[], v: string, result: string, first: boolean): string[] {
  if (result === 'exists') return current;
  const rest = current.filter((n) => n !== v);
  return first ? [v, ...rest] : [...rest, v];
}

/** A definition ganeti-os wrote: new answers, re-rendered; an existing variant's conf edited in place. */
function planOwn(l: Loaded, opts: AddVariantEdit, given: Record<string, string>, listText: string, names: string[]): { plan: Plan; confPath?: string } {
  const t = l.template!;
  const old = l.spec!;
  const v = opts.variant;
  const byName = new Map(old.variants.map((x) => [x.name, x]));
  const existing = byName.get(v);
  const entry: VariantSpec = existing
    ? { name: v, settings: { ...existing.settings, ...given } }
    : { name: v, settings: variantSettings(t, v, given) };
  byName.set(v, entry);
  const spec: DefinitionSpec = { ...old, variants: names.map((n) => byName.get(n)!) };
  const rel = path.join('variants', `${v}.conf`);
  const extraOps: PlanOp[] = [];
  const conf = readText(path.join(l.root, rel));
  if (conf.exists && Object.keys(given).length) {
    // The file is the user's: set the keys in place, keep the rest. Record it only if it was untouched.
    const untouched = isUntouched(l.provenance, rel, conf.text);
    extraOps.push(textOp(rel, conf, setConfValues(conf.text, given), untouched ? 'user' : undefined));
  }
  const plan = work(maintenance(l, spec, { force: opts.force, variantsText: listText, extraOps })).plan;
  return { plan, confPath: rel };
}

/** A definition ganeti-os did not write: variants.list edited in place; a conf where its others live. */
function planForeign(l: Loaded, opts: AddVariantEdit, given: Record<string, string>, listText: string): { plan: Plan; confPath?: string } {
  const v = opts.variant;
  const ops: PlanOp[] = [];
  const notes: string[] = [];
  ops.push(textOp(OS_VARIANTS_FILE, l.variantsFile, l.variantsFile.exists ? listText : `${v}\n`));
  const dir = foreignVariantsDir(l);
  const hasSet = Object.keys(given).length > 0;
  let confPath: string | undefined;
  const reads = foreignVariantConfig(l) ?? variantFilesKept(l, dir);
  if (reads && reads.ext !== '.conf') {
    // Its scripts read something else than a shell .conf: ganeti-os writes nothing they would not read.
    const file = `${reads.dir ?? '$VARIANTS_DIR'}/${v}${reads.ext}`;
    if (hasSet) {
      throw new UserError(`${l.name} reads variant settings from ${file}, which ganeti-os cannot write; nothing was changed`, [
        'Add the variant without --set, then write that file by hand.',
      ]);
    }
    if (!l.variants.includes(v)) notes.push(`${l.name} was not written by ganeti-os: its scripts read ${file}; write it by hand.`);
    return { plan: { root: l.root, ops, notes } };
  }
  const place = foreignVariantPlace(l);
  if (place && place.from === 'scripts' && !mayWriteVariantConfig(place.dir, l.root, l.variantsFile.realPath)) {
    // The scripts read it from a directory that is not the definition's (another package's /etc
    // for a copy of ganeti-instance-debootstrap, say): written nowhere else, as validate expects it there.
    const file = path.join(place.dir, `${v}${place.ext}`);
    const present = fs.existsSync(file);
    if (hasSet || (!present && !l.variants.includes(v) && !opts.force)) {
      throw new UserError(`${l.name}'s scripts read variant '${v}' from ${file}, outside the definition${l.variantsFile.realPath ? ` and outside ${path.dirname(l.variantsFile.realPath)} (where its variants.list is)` : ''}: ganeti-os does not write there; nothing was changed`, [
        present ? `Set what you need in ${file} by hand.` : `Write ${file} yourself (what else reads ${place.dir} reads it too), then add the variant again;`,
        ...(present ? [] : ['or make the scripts read a directory of this definition (their VARIANTS_DIR, or the path they read), then add the variant again;', `or --force to add '${v}' to ${OS_VARIANTS_FILE} alone (instances of it fail until ${file} exists).`]),
      ]);
    }
    if (!present && !l.variants.includes(v)) notes.push(`${l.name}'s scripts read variant '${v}' from ${file}, which does not exist: write it before any instance uses ${l.name}+${v}.`);
    return { plan: { root: l.root, ops, notes } };
  }
  if (!dir) {
    if (hasSet) {
      throw new UserError(`${l.name} was not written by ganeti-os and has no variants/ directory: cannot tell where it keeps variant settings; nothing was changed`, [
        'Add the variant without --set, then configure it as its scripts expect.',
      ]);
    }
    if (!l.variants.includes(v)) {
      notes.push(`${l.name} was not written by ganeti-os: configure variant '${v}' the way its scripts expect (no variants/ directory was found).`);
    }
  } else {
    const abs = path.join(dir, `${v}.conf`);
    confPath = planPath(l.root, abs);
    const conf = readText(abs);
    if (conf.exists) {
      if (hasSet) ops.push({ ...textOp(confPath, conf, setConfValues(conf.text, given)), realPath: abs });
    } else {
      const header =
        '# shellcheck shell=bash disable=SC2034\n' +
        `# Variant '${v}' of the ${l.name} OS definition, added by ganeti-os add-variant.\n` +
        '# Settings for this variant (sourced as shell by the scripts that read variants/<variant>.conf).\n';
      const content = hasSet ? setConfValues(header, given) : header;
      ops.push({ path: confPath, kind: 'create', content, mode: 0o644, realPath: abs });
      notes.push(`${l.name} was not written by ganeti-os: check that its scripts read ${abs} and that it holds what they need.`);
    }
  }
  return { plan: { root: l.root, ops, notes }, confPath };
}

/**
 * When the shell code does not say where it reads variant settings: the kind of file the
 * listed variants have in its variants/ directory (`default.rb`, ...), when they all have one
 * of the same kind and none is a .conf.
 */
function variantFilesKept(l: Loaded, dir: string | undefined): VariantConfigSource | undefined {
  if (!dir || !l.variants.length) return undefined;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const exts = new Set<string>();
  for (const v of l.variants) {
    const mine = names.filter((n) => n === v || n.startsWith(`${v}.`)).map((n) => n.slice(v.length));
    if (mine.length !== 1) return undefined;
    exts.add(mine[0]);
  }
  if (exts.size !== 1 || exts.has('.conf')) return undefined;
  const rel = path.relative(l.root, dir);
  return rel && !rel.startsWith('..') ? { dir: rel, ext: [...exts][0], relative: true } : { dir, ext: [...exts][0] };
}

/**
 * The variables a definition ganeti-os did not write can take from a variant's configuration:
 * those its shell code (scripts, *.sh, the node's files they source) reads or assigns, and those
 * its existing variant configuration files set.
 */
function foreignSettingKeys(l: Loaded): Set<string> {
  const texts = shellTexts(l.root);
  const out = new Set<string>();
  const scan = (text: string, reads: boolean) => {
    for (const line of text.split('\n')) {
      const code = line.replace(/^\s*#.*$/, '');
      for (const m of code.matchAll(/^\s*(?:export\s+|readonly\s+|local\s+|declare\s+(?:-\w+\s+)*)?([A-Za-z_]\w*)\+?=/g)) out.add(m[1]);
      if (reads) for (const m of code.matchAll(/\$\{?([A-Za-z_]\w*)/g)) out.add(m[1]);
    }
  };
  for (const t of texts) scan(t.text, true);
  for (const f of nodeSourcedFiles(texts)) scan(readAny(f), true);
  const place = foreignVariantPlace(l);
  if (place) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(place.dir).filter((n) => n.endsWith(place.ext || '.conf'));
    } catch {
      names = [];
    }
    for (const n of names) scan(readAny(path.join(place.dir, n)), false);
  }
  return out;
}

function readAny(p: string): string {
  try {
    return fs.readFileSync(p, 'latin1');
  } catch {
    return '';
  }
}

/** The candidate within edit distance 2 of `name` (a typo like SUIT for SUITE), if one. */
function closest(name: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    return d[a.length][b.length];
  };
  const ranked = candidates.map((c) => [c, dist(name, c)] as const).filter(([, n]) => n <= 2).sort((x, y) => x[1] - y[1]);
  return ranked[0]?.[0];
}
