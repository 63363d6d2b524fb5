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
 * Definitions written before the base was recorded (hashes only) get it from the release that
 * wrote them, rebuilt from the data ganeti-os ships (upgrade-release.ts: the 2026-11-25
 * release), and merge like the others. Failing that, a file still as written (or whose template
 * output did not change) is handled exactly; a file both edited and changed by the template
 * keeps the admin's version and gets the new one beside it (`<file>.ganeti-os-new`), listed in
 * `unmerged`: the upgrade then fails (exit 1), as with conflicts, and `validate` refuses the
 * definition until the admin merged it and deleted the new file. The whole upgrade is one plan for the writer,
 * made by the worker (worker.ts) with the recorded base as its "before"; this module brings the
 * answers along (the template's parameters, three ways) and says what `info` should know.
 */
import { UserError } from '../errors';
import type { Plan } from './plan';
import { PROVENANCE_FILE, Provenance, sha256 } from './provenance';
import type { Loaded } from './maintain';
import type { DefinitionSpec, ParamSpec } from './spec';
import { Template, renderTemplate } from './templates';
import type { MergeLabels } from './upgrade-merge';
import { BESIDE_SUFFIX, FileOutcome, Outcome, work } from './worker';
import { defaultVariantNote, templateParameters, templateVersion } from './upgrade-record';
import { releaseBase } from './upgrade-release';

/** The definition's state directory (hidden; Ganeti only lists directories of the search path). */
export const STATE_DIR = '.ganeti-os';

export { BESIDE_SUFFIX };
export type { FileOutcome, Outcome };

export interface UpgradePlan {
  plan: Plan;
  files: FileOutcome[];
  template: string;
  /** Template version the definition was written with (undefined: before versions were recorded). */
  from?: string;
  to: string;
  /** Files written with conflict markers. */
  conflicted: string[];
  /**
   * Files that could not be merged (no base: an edited file of a definition no shipped release
   * wrote, changed by the template): the admin's stays, the new version is beside it
   * (`<file>.ganeti-os-new`). Like conflicts, they fail the upgrade and `validate`.
   */
  unmerged: { path: string; beside: string }[];
  /** The ganeti-os release whose templates gave the base, for a record without one (upgrade-release.ts). */
  fromRelease?: string;
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

/**
 * The upgrade of a loaded ganeti-os definition to the template of the same name as this
 * ganeti-os ships it. Reads the disk, writes nothing. Throws UserError for a definition
 * ganeti-os did not write.
 */
export function upgradeDefinition(l: Loaded, opts: { force?: boolean } = {}): UpgradePlan {
  if (!l.provenance || !l.template || !l.spec) {
    throw new UserError(`${l.root} was not written by ganeti-os (it has no ${PROVENANCE_FILE}): there is no template to upgrade it to; nothing was changed`, [
      'Maintain it with add-variant, add-param and the other commands, or write a new one with ganeti-os new and move your changes over.',
    ]);
  }
  // A definition written before records held the base: the release that wrote it, rebuilt from
  // the shipped data (upgrade-release.ts), gives the base of each file it reproduces.
  const release = releaseBase(l.provenance);
  const prov: Provenance = release
    ? { ...l.provenance, base: release.base, templateParameters: l.provenance.templateParameters ?? release.parameters, templateVariants: l.provenance.templateVariants ?? release.variants }
    : l.provenance;
  const t = l.template;
  const to = templateVersion(t);
  const { parameters, notes } = upgradeParameters(l.spec.parameters, prov.templateParameters, templateParameters(t));
  const spec: DefinitionSpec = { ...l.spec, parameters };
  const variantNote = defaultVariantNote(t, prov.templateVariants, spec.variants.map((v) => v.name));
  if (variantNote) notes.push(variantNote);
  const labels = (rel: string, known: boolean): MergeLabels => ({
    current: `${rel} (yours)`,
    base: known ? `${rel} (template ${t.manifest.name} ${prov.templateVersion ?? (release ? `of the ${release.release} release` : `of ganeti-os ${prov.version}`)})` : `${rel} (not in the template before)`,
    next: `${rel} (template ${t.manifest.name} ${to})`,
  });
  const { plan, files } = work({ root: l.root, template: t, spec, previous: prov, before: 'recorded', labels, force: opts.force });
  plan.notes.push(...notes);
  return {
    plan,
    files,
    template: t.manifest.name,
    from: prov.templateVersion,
    to,
    conflicted: files.filter((o) => o.outcome === 'conflict').map((o) => o.path),
    unmerged: files.filter((o) => o.outcome === 'beside').map((o) => ({ path: o.path, beside: o.beside! })),
    ...(release ? { fromRelease: release.release } : {}),
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
