/**
 * The worker (in Copier's sense): every plan that writes a definition's template files is made
 * here, from three things — what the template rendered before the change, what it renders
 * after it, and what is on disk — with one record of it (.ganeti-os.json).
 *
 *  - `new`: nothing before. Every file is written; a file in the way is a conflict unless
 *    forced, and a file of the admin's (defaults.conf, variants/*.conf) that exists is kept.
 *  - maintenance (add-variant, add-param, bump-api, ...): before is the recorded answers,
 *    rendered by this template. Only files the change of answers affects are written; one the
 *    admin edited is a conflict unless forced (edited documentation is kept); the list files
 *    are edited in place by the edit itself.
 *  - upgrade: before is the base render the record holds. The admin's changes (disk against
 *    base) and the template's (base against the new render) are merged three ways, per file.
 *
 * The worker reads the disk and writes nothing; the writer applies its plan.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { OS_API_FILE, OS_PARAMETERS_FILE, OS_VARIANTS_FILE } from '../ganeti/rules';
import { toolVersion } from '../paths';
import { TextFile, editableText as editable, readTextFile } from './model';
import { Plan, PlanOp, isUntouched, planDelete, planWrite } from './plan';
import { PROVENANCE_FILE, PROVENANCE_SCHEMA, Provenance, ProvenanceFile, formatMode, formatProvenance, sha256 } from './provenance';
import { confKeys } from './settings';
import type { DefinitionSpec } from './spec';
import { RenderedFile, Template, renderTemplate } from './templates';
import { BESIDE_SUFFIX, MergeLabels, hasConflictMarkers, merge3 } from './upgrade-merge';
import { templateParameters, templateVariants, templateVersion } from './upgrade-record';
import { RUNTIME_VERSION } from './layers';

export { BESIDE_SUFFIX };

export type Outcome =
  /** Already what the new render is (perhaps a mode fixed), or not affected by the change. */
  | 'unchanged'
  /** The admin had not changed it: the new render replaces it. */
  | 'updated'
  /** The template did not change it: the admin's version stays. */
  | 'kept'
  /** Both changed it; the changes merged cleanly. */
  | 'merged'
  /** Both changed the same lines: written with conflict markers (upgrade), or refused (the others). */
  | 'conflict'
  /** New. */
  | 'created'
  /** Old definition, file edited and changed by the template: new version written beside it. */
  | 'beside'
  /** No longer rendered, and never changed by the admin (or forced). */
  | 'removed'
  /** No longer rendered, but the admin changed it: kept, no longer tracked. */
  | 'kept-dropped'
  /** The admin deleted it: it stays deleted. */
  | 'stays-deleted'
  /** The admin's file: not rewritten. */
  | 'yours'
  /** Cannot be handled (not a regular file, not UTF-8, a dangling symlink): left alone. */
  | 'skipped'
  /** upgrade --force: the admin and the template both changed it; the template's version replaced the admin's (backed up). */
  | 'replaced';

export interface FileOutcome {
  path: string;
  outcome: Outcome;
  /** Conflict blocks written (outcome 'conflict' of a merge). */
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

export interface Work {
  root: string;
  template: Template;
  /** The answers after the change. */
  spec: DefinitionSpec;
  /** What ganeti-os recorded when it last wrote the definition (absent: a new one). */
  previous?: Provenance;
  /**
   * What the template rendered before the change: nothing (`new`), the answers the definition
   * had (maintenance, rendered by this template), or the base render its record holds (upgrade,
   * merged three ways).
   */
  before: 'nothing' | { answers: DefinitionSpec } | 'recorded';
  force?: boolean;
  /** Maintenance: new text of variants.list / parameters.list, edited line by line; `null` removes the file. */
  lists?: { variants?: ListEdit; parameters?: ListEdit };
  /** Maintenance: further ops (configuration edited in place), recorded when they carry an owner. */
  extraOps?: PlanOp[];
  /** Maintenance: files never removed even when the new answers no longer render them. */
  keep?: string[];
  /** Upgrade: labels of the merge's three sides. */
  labels?: (rel: string, known: boolean) => MergeLabels;
}

/** A list file's edit: the file as read, and its new text (null: remove it). */
export interface ListEdit {
  file: TextFile & { rel: string };
  text: string | null | undefined;
}

export interface Worked {
  plan: Plan;
  /** What happens to every file, for reports and diffs. */
  files: FileOutcome[];
}

const LIST_FILES = new Set([OS_VARIANTS_FILE, OS_PARAMETERS_FILE]);

/** Generated documentation (README.md, DEBIAN.md): an edited copy is kept, never a conflict. */
export function isDocumentation(rel: string): boolean {
  return /\.md$/i.test(rel);
}

/** Modes, three ways: the admin's change wins over the template's. */
function mergeMode(current: number, base: number | undefined, next: number): number {
  if (base === undefined) return current === next ? current : next;
  if (current === base) return next;
  return current;
}

/** The op that puts `content` (with `mode`) where `cur` is: create, identical, or update. */
export function opFor(rel: string, cur: TextFile, content: string, mode: number, owner?: 'tool' | 'user', reason?: string): PlanOp {
  const base = { path: rel, content, mode, owner, realPath: cur.realPath };
  if (cur.kind === 'other') return { ...base, kind: 'conflict', reason: `in the way: ${cur.problem}` };
  if (!cur.exists) return { ...base, kind: 'create' };
  if (cur.text === content && cur.mode === mode) return { ...base, kind: 'identical' };
  return { ...base, kind: 'update', reason: reason ?? (cur.text === content ? `mode ${formatMode(cur.mode)} → ${formatMode(mode)}` : undefined) };
}

/** An in-place edit of a text file (or its creation): its mode kept. `owner` set: recorded. */
export function textOp(rel: string, file: TextFile, content: string, owner?: 'tool' | 'user'): PlanOp {
  return opFor(rel, file, content, file.exists ? file.mode : 0o644, owner, 'edited in place');
}

/**
 * The record as the plan leaves it: each file ganeti-os tracks with the hash of the text it
 * considers its own, and the base render (what the template produced for it).
 */
class Ledger {
  readonly files: Record<string, ProvenanceFile>;
  readonly base: Record<string, string>;
  constructor(previous: Provenance | undefined, private readonly rendered: Map<string, RenderedFile>) {
    this.files = { ...(previous?.files ?? {}) };
    this.base = { ...(previous?.base ?? {}) };
  }
  /** `op` is written: ganeti-os's own text is what it writes, its base the render of its path. */
  wrote(op: PlanOp): void {
    if (op.kind === 'delete') return this.forget(op.path);
    if (op.content === undefined || op.mode === undefined || !op.owner || op.kind === 'conflict') return;
    this.files[op.path] = { sha256: sha256(op.content), mode: formatMode(op.mode), owner: op.owner };
    const r = this.rendered.get(op.path);
    if (r) this.base[op.path] = r.content;
  }
  /** `f` is the template's text for its path, whatever is on disk (merged with the admin's, kept, deleted). */
  take(f: RenderedFile): void {
    this.files[f.path] = { sha256: sha256(f.content), mode: formatMode(f.mode), owner: f.owner };
    this.base[f.path] = f.content;
  }
  forget(rel: string): void {
    delete this.files[rel];
    delete this.base[rel];
  }
}

/**
 * The one builder of .ganeti-os.json: the record of `ledger` with the answers `spec`. The
 * template version (and the runtime's with it) moves only with `new` and `upgrade` (`moves`);
 * the other commands re-render single files of the version the definition has.
 */
function recordOp(root: string, t: Template, spec: DefinitionSpec, ledger: Ledger, previous: Provenance | undefined, moves: boolean): PlanOp {
  const base: Record<string, string> = {};
  for (const p of Object.keys(ledger.files)) if (ledger.base[p] !== undefined) base[p] = ledger.base[p];
  const record: Provenance = {
    schema: PROVENANCE_SCHEMA,
    tool: 'ganeti-os',
    version: toolVersion(),
    template: t.manifest.name,
    answers: spec,
    files: ledger.files,
    templateVersion: moves || !previous ? templateVersion(t) : previous.templateVersion,
    templateParameters: moves || !previous ? templateParameters(t) : previous.templateParameters,
    templateVariants: moves || !previous ? templateVariants(t) : previous.templateVariants,
    runtimeVersion: moves || !previous ? RUNTIME_VERSION : previous.runtimeVersion,
    templateSource: moves || !previous ? t.source : previous.templateSource,
    base,
  };
  return opFor(PROVENANCE_FILE, readTextFile(path.join(root, PROVENANCE_FILE)), formatProvenance(record), 0o644, 'tool', 'what ganeti-os wrote');
}

/** Settings (KEY=, set or shown commented out) of `next` that neither `base` nor `current` has. */
export function newSettings(current: string, base: string | undefined, next: string): { key: string; line: string }[] {
  const have = confKeys(current);
  const had = base !== undefined ? confKeys(base) : new Map<string, string>();
  return [...confKeys(next)].filter(([k]) => !have.has(k) && !had.has(k)).map(([key, line]) => ({ key, line }));
}

/**
 * The plan for `w`: see the module's comment. Reads the disk, writes nothing. Throws UserError
 * for a file it cannot edit, conflict markers an earlier upgrade left, or a file in the way of a
 * `.ganeti-os-new`.
 */
export function work(w: Work): Worked {
  const t = w.template;
  const prev = w.previous;
  const after = renderTemplate(t, w.spec);
  const rendered = new Map(after.map((f) => [f.path, f]));
  const ledger = new Ledger(prev, rendered);
  const ops: PlanOp[] = [];
  const notes: string[] = [];
  const files: FileOutcome[] = [];
  const abs = (rel: string) => path.join(w.root, rel);
  /** Something is there (a dangling symlink too), as lstat sees it. */
  const exists = (rel: string) => {
    try {
      fs.lstatSync(abs(rel));
      return true;
    } catch {
      return false;
    }
  };
  const merging = w.before === 'recorded';

  if (!merging) {
    // new and maintenance: write what the change affects; a file the admin edited is a conflict.
    const before = typeof w.before === 'object' ? new Map(renderTemplate(t, w.before.answers).map((f) => [f.path, f])) : new Map<string, RenderedFile>();
    const maintaining = typeof w.before === 'object';
    const push = (op: PlanOp | undefined, outcome: Outcome) => {
      if (!op) return;
      ops.push(op);
      ledger.wrote(op);
      files.push({ path: op.path, outcome: op.kind === 'conflict' ? 'conflict' : outcome });
    };
    for (const f of after) {
      if (maintaining && LIST_FILES.has(f.path)) continue;
      const b = before.get(f.path);
      // Affected: rendered differently (or only now). A missing file of ours is restored too; a
      // missing file of the user's is only created when the change brings it. (Only an affected
      // file is read.)
      if (b && b.content === f.content && b.mode === f.mode && !(f.owner === 'tool' && !exists(f.path))) {
        files.push({ path: f.path, outcome: 'unchanged' });
        continue;
      }
      const cur = readTextFile(abs(f.path));
      const onDisk = cur.kind !== 'missing';
      if (maintaining && f.path === OS_API_FILE) {
        // Nothing of the user's can live in it (no comments): rewritten from the versions read from it.
        push(textOp(f.path, editable(cur), f.content, 'tool'), 'updated');
        continue;
      }
      if (f.owner === 'user' && onDisk) {
        if (!b) notes.push(`Kept the existing ${f.path} as it is (it is yours; ganeti-os never rewrites it).`);
        files.push({ path: f.path, outcome: 'yours' });
        continue;
      }
      if (maintaining && isDocumentation(f.path) && !w.force && onDisk && !isUntouched(prev, f.path, editable(cur).text)) {
        // Documentation never stands between the admin and a change: an edited one is kept.
        notes.push(`Kept ${f.path} as you edited it; it may no longer describe the definition exactly (--force replaces it with the generated one).`);
        files.push({ path: f.path, outcome: 'kept' });
        continue;
      }
      const [op] = planWrite(w.root, [f], { force: w.force, provenance: prev });
      push(op, op.kind === 'create' ? 'created' : op.kind === 'identical' ? 'unchanged' : 'updated');
    }
    // Files the answers no longer render.
    for (const f of before.values()) {
      if (rendered.has(f.path) || LIST_FILES.has(f.path) || w.keep?.includes(f.path) || !exists(f.path)) continue;
      if (f.owner === 'user') {
        const cur = editable(readTextFile(abs(f.path)));
        if (w.force || isUntouched(prev, f.path, cur.text)) {
          push({ path: f.path, kind: 'delete', realPath: cur.realPath }, 'removed');
        } else {
          notes.push(`Kept ${f.path}: you edited it. Remove it by hand, or run again with --force.`);
          files.push({ path: f.path, outcome: 'kept-dropped' });
        }
        continue;
      }
      push(planDelete(w.root, f.path, { force: w.force, provenance: prev }), 'removed');
    }
    // The list files, edited line by line by the maintenance command itself.
    for (const [rendered_, edit] of [
      [OS_VARIANTS_FILE, w.lists?.variants],
      [OS_PARAMETERS_FILE, w.lists?.parameters],
    ] as const) {
      if (!edit || edit.text === undefined) continue;
      if (edit.text === null) {
        if (edit.file.exists) push(planDelete(w.root, edit.file.rel, { force: w.force, provenance: prev }), 'removed');
        continue;
      }
      const content = edit.file.exists ? edit.text : (rendered.get(rendered_)?.content ?? edit.text);
      push(textOp(edit.file.rel, edit.file, content, 'tool'), edit.file.exists ? 'updated' : 'created');
    }
    for (const op of w.extraOps ?? []) push(op, op.kind === 'create' ? 'created' : 'updated');
  } else {
    // upgrade: the admin's changes and the template's, merged three ways.
    const recordedBase = prev?.base ?? {};
    const labels = w.labels ?? ((rel: string) => ({ current: `${rel} (yours)`, base: `${rel} (before)`, next: `${rel} (now)` }));
    /** A file read for the merge: a read that failed (EIO, EACCES) is an error naming it, never a file skipped. */
    const readForMerge = (rel: string) => {
      const cur = readTextFile(abs(rel));
      if (cur.kind === 'other' && cur.errno && !(cur.isSymlink && cur.errno === 'ENOENT')) editable(cur);
      return cur;
    };
    const current = new Map(after.map((f) => [f.path, readForMerge(f.path)]));
    const unresolved = [...current].filter(([, c]) => c.exists && hasConflictMarkers(c.text)).map(([rel]) => rel);
    // A new version an earlier upgrade left beside a file it could not merge: the record's base
    // is that version, so the admin merges it into their file, then deletes it.
    const unmerged = after.filter((f) => exists(f.path + BESIDE_SUFFIX)).map((f) => f.path + BESIDE_SUFFIX);
    if (unmerged.length && !w.force) {
      throw new UserError(`${w.root} still has files an earlier upgrade could not merge; nothing was changed`, [
        ...unmerged.map((rel) => `  ${rel}`),
        `Merge each into the file of the same name without ${BESIDE_SUFFIX} (keep your changes, take the template's), then delete it and upgrade again;`,
        "or upgrade --force to take the template's version of every file you and the template both changed (yours are backed up).",
      ]);
    }
    // upgrade --force settles them: the template's version replaces the admin's below, so the new
    // file left beside is ganeti-os's own, no longer needed.
    if (w.force) {
      for (const rel of unmerged) {
        ops.push({ path: rel, kind: 'delete' });
        files.push({ path: rel, outcome: 'removed', detail: `left by an earlier upgrade beside ${rel.slice(0, -BESIDE_SUFFIX.length)}` });
      }
    }
    if (unresolved.length && !w.force) {
      throw new UserError(`${w.root} still has conflict markers from an earlier upgrade; nothing was changed`, [
        ...unresolved.map((rel) => `  ${rel}`),
        'Resolve them first (keep what you want, remove the <<<<<<< ||||||| ======= >>>>>>> lines), then upgrade again;',
        "or upgrade --force to take the template's version of every file you and the template both changed (yours are backed up).",
      ]);
    }
    for (const f of after) {
      const rel = f.path;
      const cur = current.get(rel)!;
      const rec = prev?.files[rel];
      if (cur.kind === 'other') {
        files.push({ path: rel, outcome: 'skipped', detail: cur.problem });
        continue;
      }
      if (cur.kind === 'missing') {
        if (rec) {
          files.push({ path: rel, outcome: 'stays-deleted' });
        } else {
          ops.push(opFor(rel, cur, f.content, f.mode, f.owner));
          files.push({ path: rel, outcome: 'created', after: f.content });
        }
        ledger.take(f);
        continue;
      }
      const text = cur.text;
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
        files.push({ path: rel, outcome: 'yours', ...(added.length ? { newSettings: added } : {}) });
        if (!rec) ledger.take(f);
        // Its record stays (remove-variant tells untouched from edited by it). Its base becomes
        // the new render: the settings it introduces are reported once, by this upgrade, and
        // the next upgrade reports only what the template introduces after it.
        else ledger.base[rel] = f.content;
        continue;
      }
      const mode = mergeMode(cur.mode, rec ? parseInt(rec.mode, 8) : undefined, f.mode);
      const modeChange = mode !== cur.mode ? { from: formatMode(cur.mode), to: formatMode(mode) } : undefined;
      ledger.take(f);
      if (text === f.content) {
        if (modeChange) ops.push(opFor(rel, cur, text, mode, f.owner));
        files.push({ path: rel, outcome: 'unchanged', ...(modeChange ? { mode: modeChange } : {}) });
        continue;
      }
      if (w.force && (b === undefined || b !== f.content || hasConflictMarkers(text) || unmerged.includes(rel + BESIDE_SUFFIX))) {
        // upgrade --force: edited by the admin and changed by the template (or still marked, or
        // still unmerged, by an earlier upgrade): the template's version replaces the admin's (backed up).
        ops.push(opFor(rel, cur, f.content, f.mode, f.owner));
        files.push({ path: rel, outcome: 'replaced', before: text, after: f.content, detail: 'your changes replaced by the template (--force); yours are in the backup' });
        continue;
      }
      if (b === undefined) {
        // Old definition, edited file, changed template: the admin's stays; the new one beside it.
        const beside = rel + BESIDE_SUFFIX;
        const bcur = readTextFile(abs(beside));
        if (bcur.kind === 'other') throw new UserError(`${abs(beside)} is in the way (${bcur.problem}); nothing was changed`);
        ops.push({ ...opFor(beside, bcur, f.content, f.mode, f.owner), owner: undefined });
        if (modeChange) ops.push(opFor(rel, cur, text, mode, f.owner));
        files.push({ path: rel, outcome: 'beside', beside, before: bcur.exists ? bcur.text : undefined, after: f.content, ...(modeChange ? { mode: modeChange } : {}) });
        continue;
      }
      const m = merge3(text, b, f.content, labels(rel, !!rec));
      const outcome: Outcome = m.conflicts ? 'conflict' : m.text === f.content && text === b ? 'updated' : m.text === text ? 'kept' : 'merged';
      if (m.text !== text || modeChange) ops.push(opFor(rel, cur, m.text, mode, f.owner));
      files.push({
        path: rel,
        outcome,
        ...(m.conflicts ? { conflicts: m.conflicts } : {}),
        ...(modeChange ? { mode: modeChange } : {}),
        ...(m.text !== text ? { before: text, after: m.text } : {}),
      });
    }
    // Recorded files the template no longer renders.
    for (const rel of Object.keys(prev?.files ?? {}).sort()) {
      if (rendered.has(rel) || rel === PROVENANCE_FILE) continue;
      if (prev!.files[rel].owner === 'user') continue;
      ledger.forget(rel);
      const cur = readForMerge(rel);
      if (cur.kind === 'missing') continue;
      if (cur.kind === 'other') {
        files.push({ path: rel, outcome: 'skipped', detail: cur.problem });
        continue;
      }
      const untouched = prev!.files[rel].sha256 === sha256(cur.text) || recordedBase[rel] === cur.text;
      if (untouched || w.force) {
        ops.push({ path: rel, kind: 'delete', realPath: cur.realPath });
        files.push({ path: rel, outcome: 'removed', before: cur.text, ...(untouched ? {} : { detail: 'the template no longer has it; you had changed it (--force); yours is in the backup' }) });
      } else {
        files.push({ path: rel, outcome: 'kept-dropped', detail: 'the template no longer has it, but you changed it: kept, and no longer tracked by ganeti-os' });
      }
    }
  }
  ops.push(recordOp(w.root, t, w.spec, ledger, prev, w.before === 'nothing' || merging));
  return { plan: { root: w.root, ops, notes }, files };
}
