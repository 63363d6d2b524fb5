/**
 * `upgrade`: bring a definition ganeti-os wrote up to the current templates without losing the
 * administrator's changes. Per file, a three-way merge of the file on disk (the admin's), the
 * base render recorded when ganeti-os last wrote it, and the new render of the same answers:
 *
 *  - unchanged by the admin → the new render; unchanged by the template → the admin's; the same
 *    change on both sides → nothing to do; both changed → line merge (conflicts get markers);
 *  - dropped by the template → removed only if the admin never changed it, else kept;
 *  - deleted by the admin → stays deleted; a new template file the admin already made → merged
 *    against an empty base;
 *  - modes merged on their own; a symlink keeps pointing where it did (its target is merged);
 *  - the admin's files (defaults.conf, variants/*.conf) are never rewritten: settings the
 *    template introduced are reported.
 *
 * With `force` (as the other maintenance commands' --force: files you edited are replaced), a
 * file both the admin and the template changed gets the template's version instead of a merge
 * (the admin's is in the backup), a dropped file the admin changed is removed, and a file still
 * holding conflict markers is replaced too; the admin's own files (defaults.conf,
 * variants/*.conf) and files the template did not change stay as they are.
 *
 * Definitions written before the base was recorded (hashes only) are upgraded with what they
 * have: a file still as written (or whose template output did not change) is handled exactly; a
 * file both edited and changed by the template keeps the admin's version and gets the new one
 * beside it (`<file>.ganeti-os-new`), listed. The whole upgrade is one plan for the writer.
 */
import * as path from 'node:path';
import { UserError } from '../errors';
import { TextFile, readTextFile } from './model';
import { Plan, PlanOp } from './plan';
import { PROVENANCE_FILE, PROVENANCE_SCHEMA, Provenance, ProvenanceFile, formatMode, formatProvenance, sha256 } from './provenance';
import { toolVersion } from '../paths';
import type { Loaded } from './maintain';
import type { DefinitionSpec, ParamSpec } from './spec';
import { RenderedFile, Template, renderTemplate } from './templates';
import { hasConflictMarkers } from './checks';
import { confKeys } from './settings';
import { MergeLabels, merge3 } from './upgrade-merge';
import { templateParameters, templateVersion } from './upgrade-record';

/** Where a new version goes when it cannot be merged into an edited file of an old definition. */
export const BESIDE_SUFFIX = '.ganeti-os-new';
/** The definition's state directory (hidden; Ganeti only lists directories of the search path). */
export const STATE_DIR = '.ganeti-os';

export type Outcome =
  /** Already what the new template renders (perhaps a mode fixed). */
  | 'unchanged'
  /** The admin had not changed it: the new render replaces it. */
  | 'updated'
  /** The template did not change it: the admin's version stays. */
  | 'kept'
  /** Both changed it; the changes merged cleanly. */
  | 'merged'
  /** Both changed the same lines: written with conflict markers. */
  | 'conflict'
  /** New in the template. */
  | 'created'
  /** Old definition, file edited and changed by the template: new version written beside it. */
  | 'beside'
  /** Dropped by the template and never changed by the admin. */
  | 'removed'
  /** Dropped by the template, but the admin changed it: kept, no longer tracked. */
  | 'kept-dropped'
  /** The admin deleted it: it stays deleted. */
  | 'stays-deleted'
  /** The admin's file: never rewritten. */
  | 'yours'
  /** Cannot be handled (not a regular file, not UTF-8, a dangling symlink): left alone. */
  | 'skipped'
  /** --force: the admin and the template both changed it; the template's version replaced the admin's (backed up). */
  | 'replaced';

export interface FileOutcome {
  path: string;
  outcome: Outcome;
  /** Conflict blocks written (outcome 'conflict'). */
  conflicts?: number;
  /** Settings (KEY) the template introduced that the admin's file lacks, with the template's line. */
  newSettings?: { key: string; line: string }[];
  /** The file written beside (outcome 'beside'). */
  beside?: string;
  /** Old and new mode, when the mode changes. */
  mode?: { from: string; to: string };
  /** The file as it is on disk and as it will be, for diffs (undefined: absent). */
  before?: string;
  after?: string;
  detail?: string;
}

export interface UpgradePlan {
  plan: Plan;
  files: FileOutcome[];
  template: string;
  /** Template version the definition was written with (undefined: before versions were recorded). */
  from?: string;
  to: string;
  /** Files written with conflict markers. */
  conflicted: string[];
  /** Notes about the answers (parameters the template added, changed or dropped). */
  notes: string[];
}

// ------------------------------------------------------------------------------------------
// Answers: the template's parameters, three ways

const sameParam = (a: ParamSpec, b: ParamSpec) =>
  a.name === b.name &&
  a.description === b.description &&
  a.default === b.default &&
  a.pattern === b.pattern &&
  JSON.stringify(a.choices ?? null) === JSON.stringify(b.choices ?? null);

/**
 * The answers for the new render: the admin's parameters, with the template's additions,
 * changes and removals merged in three ways (`old`: the template's parameters when written;
 * undefined for definitions that did not record them: then only additions are taken).
 */
export function upgradeParameters(current: ParamSpec[], old: ParamSpec[] | undefined, next: ParamSpec[]): { parameters: ParamSpec[]; notes: string[] } {
  const notes: string[] = [];
  const out: ParamSpec[] = [];
  const nextBy = new Map(next.map((p) => [p.name, p]));
  const oldBy = new Map((old ?? []).map((p) => [p.name, p]));
  for (const c of current) {
    const n = nextBy.get(c.name);
    const o = oldBy.get(c.name);
    if (!n) {
      if (o && sameParam(o, c)) {
        notes.push(`Parameter ${c.name} was dropped by the template: removed.`);
        continue;
      }
      out.push(c);
      continue;
    }
    if (sameParam(c, n)) out.push(c);
    else if (o && sameParam(c, o)) {
      out.push({ ...n });
      notes.push(`Parameter ${c.name}: now as the template defines it.`);
    } else if (o && sameParam(n, o)) out.push(c);
    else {
      out.push(c);
      notes.push(`Parameter ${c.name}: yours kept; the template now declares it as "${n.description}"${n.default !== undefined ? ` (default '${n.default}')` : ''}${n.choices ? ` (choices ${n.choices.join(', ')})` : ''}.`);
    }
  }
  // A parameter new in the template goes where a fresh render puts it: right after the
  // template's parameter before it (after the ones added just before it), never between the
  // admin's own lines; without one, before the first of the template's, else at the end.
  const isTemplate = (p: ParamSpec) => nextBy.has(p.name);
  next.forEach((n, j) => {
    if (current.some((c) => c.name === n.name)) return;
    if (old && oldBy.has(n.name)) return; // the admin removed it: stays removed
    const before = new Set(next.slice(0, j).map((p) => p.name));
    let at = -1;
    out.forEach((p, i) => {
      if (before.has(p.name)) at = i + 1;
    });
    if (at < 0) at = out.findIndex(isTemplate);
    if (at < 0) at = out.length;
    out.splice(at, 0, { ...n });
    notes.push(`Parameter ${n.name} is new in the template: declared (remove it with 'ganeti-os remove-param ${n.name}').`);
  });
  return { parameters: out, notes };
}

// ------------------------------------------------------------------------------------------
// Reading the disk

/** A file as upgrade finds it: missing, a readable text file (perhaps through a symlink), or something it leaves alone. */
type Current = TextFile;
const readCurrent = readTextFile;

// ------------------------------------------------------------------------------------------
// Settings of the admin's configuration files

/** Settings (KEY=, set or shown commented out) of `next` that neither `base` nor `current` has. */
export function newSettings(current: string, base: string | undefined, next: string): { key: string; line: string }[] {
  const have = confKeys(current);
  const had = base !== undefined ? confKeys(base) : new Map<string, string>();
  return [...confKeys(next)].filter(([k]) => !have.has(k) && !had.has(k)).map(([key, line]) => ({ key, line }));
}

// ------------------------------------------------------------------------------------------
// Planning

/** Modes, three ways: the admin's change wins over the template's. */
function mergeMode(current: number, base: number | undefined, next: number): number {
  if (base === undefined) return current === next ? current : next;
  if (current === base) return next;
  return current;
}

function op(rel: string, cur: Current, content: string, mode: number, owner: 'tool' | 'user'): PlanOp {
  const base = { path: rel, content, mode, owner, realPath: cur.realPath };
  if (cur.kind === 'missing') return { ...base, kind: 'create' };
  if (cur.text === content && cur.mode === mode) return { ...base, kind: 'identical' };
  return { ...base, kind: 'update', reason: cur.text === content ? `mode ${formatMode(cur.mode!)} → ${formatMode(mode)}` : undefined };
}

/**
 * The upgrade of a loaded ganeti-os definition to the template of the same name as this
 * ganeti-os ships it (`force`: the template's version wins where both changed a file, see
 * above). Reads the disk, writes nothing. Throws UserError for a definition ganeti-os did not
 * write, or (without `force`) one still holding conflict markers.
 */
export function planUpgrade(l: Loaded, opts: { force?: boolean } = {}): UpgradePlan {
  if (!l.provenance || !l.template || !l.spec) {
    throw new UserError(`${l.root} was not written by ganeti-os (it has no ${PROVENANCE_FILE}): there is no template to upgrade it to; nothing was changed`, [
      'Maintain it with add-variant, add-param and the other commands, or write a new one with ganeti-os new and move your changes over.',
    ]);
  }
  const prov = l.provenance;
  const t = l.template;
  const to = templateVersion(t);
  const { parameters, notes } = upgradeParameters(l.spec.parameters, prov.templateParameters, templateParameters(t));
  const spec: DefinitionSpec = { ...l.spec, parameters };
  const rendered = renderTemplate(t, spec);
  const byPath = new Map(rendered.map((f) => [f.path, f]));
  const recordedBase = prov.base ?? {};
  const files: Record<string, ProvenanceFile> = {};
  const base: Record<string, string> = {};
  const ops: PlanOp[] = [];
  const outcomes: FileOutcome[] = [];
  const labels = (rel: string): MergeLabels => ({
    current: `${rel} (yours)`,
    base: `${rel} (template ${t.manifest.name} ${prov.templateVersion ?? `of ganeti-os ${prov.version}`})`,
    next: `${rel} (template ${t.manifest.name} ${to})`,
  });
  const record = (f: RenderedFile) => {
    files[f.path] = { sha256: sha256(f.content), mode: formatMode(f.mode), owner: f.owner };
    base[f.path] = f.content;
  };
  const keepRecord = (rel: string) => {
    if (prov.files[rel]) files[rel] = prov.files[rel];
    if (recordedBase[rel] !== undefined) base[rel] = recordedBase[rel];
  };

  const current = new Map(rendered.map((f) => [f.path, readCurrent(path.join(l.root, f.path))]));
  const unresolved = [...current].filter(([, c]) => c.kind === 'file' && hasConflictMarkers(c.text!)).map(([rel]) => rel);
  if (unresolved.length && !opts.force) {
    throw new UserError(`${l.root} still has conflict markers from an earlier upgrade; nothing was changed`, [
      ...unresolved.map((rel) => `  ${rel}`),
      'Resolve them first (keep what you want, remove the <<<<<<< ||||||| ======= >>>>>>> lines), then upgrade again;',
      "or upgrade --force to take the template's version of every file you and the template both changed (yours are backed up).",
    ]);
  }
  for (const f of rendered) {
    const rel = f.path;
    const cur = current.get(rel)!;
    const rec = prov.files[rel];
    if (cur.kind === 'other') {
      outcomes.push({ path: rel, outcome: 'skipped', detail: cur.problem });
      keepRecord(rel);
      continue;
    }
    if (cur.kind === 'missing') {
      if (rec) {
        outcomes.push({ path: rel, outcome: 'stays-deleted' });
        record(f);
      } else {
        ops.push(op(rel, cur, f.content, f.mode, f.owner));
        outcomes.push({ path: rel, outcome: 'created', after: f.content });
        record(f);
      }
      continue;
    }
    const text = cur.text!;
    // What the template rendered last time: recorded, or known because it equals the file as
    // written (sha) or the new render (the template output did not change).
    let b: string | undefined = recordedBase[rel];
    if (b === undefined && rec) {
      if (rec.sha256 === sha256(f.content)) b = f.content;
      else if (rec.sha256 === sha256(text)) b = text;
    }
    if (!rec) b = '';
    if (f.owner === 'user') {
      const added = newSettings(text, b, f.content);
      outcomes.push({ path: rel, outcome: 'yours', ...(added.length ? { newSettings: added } : {}) });
      if (!rec) record(f);
      else {
        // Its record stays (remove-variant tells untouched from edited by it). Its base becomes
        // the new render: the settings it introduces are reported once, by this upgrade, and
        // the next upgrade reports only what the template introduces after it.
        files[rel] = rec;
        base[rel] = f.content;
      }
      continue;
    }
    const baseMode = rec ? parseInt(rec.mode, 8) : undefined;
    const mode = mergeMode(cur.mode!, baseMode, f.mode);
    const modeChange = mode !== cur.mode ? { from: formatMode(cur.mode!), to: formatMode(mode) } : undefined;
    record(f);
    if (text === f.content) {
      if (modeChange) ops.push(op(rel, cur, text, mode, f.owner));
      outcomes.push({ path: rel, outcome: 'unchanged', ...(modeChange ? { mode: modeChange } : {}) });
      continue;
    }
    if (opts.force && (b === undefined || b !== f.content || hasConflictMarkers(text))) {
      // Edited by the admin, changed by the template: --force takes the template's version.
      ops.push(op(rel, cur, f.content, f.mode, f.owner));
      outcomes.push({ path: rel, outcome: 'replaced', before: text, after: f.content, detail: 'your changes replaced by the template (--force); yours are in the backup' });
      continue;
    }
    if (b === undefined) {
      // Old definition, edited file, changed template: the admin's stays; the new one beside it.
      const beside = rel + BESIDE_SUFFIX;
      const bcur = readCurrent(path.join(l.root, beside));
      if (bcur.kind === 'other') throw new UserError(`${path.join(l.root, beside)} is in the way (${bcur.problem}); nothing was changed`);
      ops.push({ ...op(beside, bcur, f.content, f.mode, f.owner), owner: undefined });
      if (modeChange) ops.push(op(rel, cur, text, mode, f.owner));
      outcomes.push({ path: rel, outcome: 'beside', beside, before: bcur.text, after: f.content, ...(modeChange ? { mode: modeChange } : {}) });
      continue;
    }
    const m = merge3(text, b, f.content, rec ? labels(rel) : { ...labels(rel), base: `${rel} (not in the template before)` });
    const outcome: Outcome = m.conflicts ? 'conflict' : m.text === f.content && text === b ? 'updated' : m.text === text ? 'kept' : 'merged';
    if (m.text !== text || modeChange) ops.push(op(rel, cur, m.text, mode, f.owner));
    outcomes.push({
      path: rel,
      outcome,
      ...(m.conflicts ? { conflicts: m.conflicts } : {}),
      ...(modeChange ? { mode: modeChange } : {}),
      ...(m.text !== text ? { before: text, after: m.text } : {}),
    });
  }

  // Recorded files the template no longer renders.
  for (const rel of Object.keys(prov.files).sort()) {
    if (byPath.has(rel) || rel === PROVENANCE_FILE) continue;
    const rec = prov.files[rel];
    const cur = readCurrent(path.join(l.root, rel));
    if (rec.owner === 'user') {
      keepRecord(rel);
      continue;
    }
    if (cur.kind === 'missing') continue;
    if (cur.kind === 'other') {
      outcomes.push({ path: rel, outcome: 'skipped', detail: cur.problem });
      continue;
    }
    const untouched = rec.sha256 === sha256(cur.text!) || recordedBase[rel] === cur.text;
    if (untouched || opts.force) {
      ops.push({ path: rel, kind: 'delete', realPath: cur.realPath });
      outcomes.push({ path: rel, outcome: 'removed', before: cur.text, ...(untouched ? {} : { detail: 'the template no longer has it; you had changed it (--force); yours is in the backup' }) });
    } else {
      outcomes.push({ path: rel, outcome: 'kept-dropped', detail: 'the template no longer has it, but you changed it: kept, and no longer tracked by ganeti-os' });
    }
  }

  const provenance: Provenance = {
    schema: PROVENANCE_SCHEMA,
    tool: 'ganeti-os',
    version: toolVersion(),
    template: t.manifest.name,
    answers: spec,
    files,
    templateVersion: to,
    templateParameters: templateParameters(t),
    base,
  };
  const provCur = readCurrent(path.join(l.root, PROVENANCE_FILE));
  ops.push({ ...op(PROVENANCE_FILE, provCur, formatProvenance(provenance), 0o644, 'tool'), reason: 'what ganeti-os wrote' });
  return {
    plan: { root: l.root, ops, notes },
    files: outcomes,
    template: t.manifest.name,
    from: prov.templateVersion,
    to,
    conflicted: outcomes.filter((o) => o.outcome === 'conflict').map((o) => o.path),
    notes,
  };
}

/**
 * Whether the template now renders something other than what a definition recorded: the tool
 * files that would change (new, changed or dropped), from the record alone (the disk is not
 * read). Used by `info`. Throws what rendering throws.
 */
export function pendingTemplateChanges(prov: Provenance, t: Template): string[] {
  const rendered = renderTemplate(t, prov.answers);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of rendered) {
    seen.add(f.path);
    if (f.owner !== 'tool') continue;
    const rec = prov.files[f.path];
    const b = prov.base?.[f.path];
    if (b !== undefined ? b !== f.content : !rec || rec.sha256 !== sha256(f.content)) out.push(f.path);
  }
  for (const [p, rec] of Object.entries(prov.files)) if (rec.owner === 'tool' && !seen.has(p) && p !== PROVENANCE_FILE) out.push(p);
  return out;
}
