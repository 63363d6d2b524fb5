/**
 * Maintaining an existing definition (add-variant, remove-variant, bump-api, add-param,
 * remove-param): load it with what ganeti-os recorded about it, edit `variants.list` and
 * `parameters.list` line by line (comments, blank lines, order and symlinks kept), and plan the
 * rest by re-rendering the template from the changed answers. Only files whose rendered content
 * the change affects are rewritten; files the user owns are only ever created.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isInside } from '../paths';
import type { Context } from '../context';
import { UserError, errorMessage, withFsErrors } from '../errors';
import { definitionLocks, withLocks } from './lock';
import { recoverBeforePlanning } from './recover';
import {
  OS_API_FILE,
  OS_API_V15,
  OS_API_V20,
  OS_PARAMETERS_FILE,
  OS_SEARCH_PATH,
  OS_VARIANTS_FILE,
  parseApiVersions,
  parseParametersList,
  parseVariantsList,
  checkOsVariant,
  pyStrip,
  seesVariants,
  splitLines,
  joinLines,
} from '../ganeti/rules';
import type { Line } from '../ganeti/rules';
import { OsDefinition, TextFile, editableText, readDefinition, readTextFile, requireDirectory } from './model';
import { type Plan, changes, isUntouched } from './plan';
import { PROVENANCE_FILE, type Provenance, parseProvenance, provenanceProblem } from './provenance';
import { pyReprStr } from '../ganeti/pyfmt';
import { applyAndReport } from './report';
import { JOURNAL_FILE } from './writer';
import { shq } from './shell';
import { confAssignment } from './settings';
import { VariantConfigSource, shellTexts, variantConfigSource } from './script-reading';
import { VariantConfigPlace, mayWriteVariantConfig, variantConfigPlace } from './layers';
import type { DefinitionSpec, ParamSpec, VariantSpec } from './spec';
import { Template, loadTemplate, variantSettings } from './templates';
import type { Work } from './worker';
import type { SourceOptions, TemplateRef } from './template-source';

/** Options every maintenance command takes. */
export interface MaintainOptions {
  osDir?: string;
  dryRun?: boolean;
  json?: boolean;
  force?: boolean;
}

/**
 * Which template a loaded definition gets: the one its record names, as the definition has it
 * (default; a site template from git at the recorded commit) or as it is now (`latest`: upgrade),
 * or another one (`upgrade --template`).
 */
export interface TemplateChoice {
  templateAt?: 'recorded' | 'latest';
  templateRef?: TemplateRef;
}

/** A list file as found on disk (following a symlink to its target: the file really edited). */
export interface ListFile extends TextFile {
  /** Name inside the definition. */
  rel: string;
}

export interface Loaded {
  root: string;
  /** The model this view was made from (Ganeti's verdict, every file's state). */
  def: OsDefinition;
  /** Directory base name: what Ganeti calls the OS. */
  name: string;
  /** As listed in ganeti_api_version. */
  apiVersions: number[];
  /** Highest listed version ("maxv" in Ganeti). */
  maxApi: number;
  variantsFile: ListFile;
  parametersFile: ListFile;
  /** variants.list as Ganeti parses it (whatever the API version), duplicates dropped. */
  variants: string[];
  /** parameters.list lines with at least a name. */
  parameters: { name: string; description: string }[];
  provenance?: Provenance;
  template?: Template;
  /** The recorded answers, brought in line with what is on disk. Only with provenance. */
  spec?: DefinitionSpec;
}

// ------------------------------------------------------------------------------------------
// Loading

/**
 * Run a maintenance command's `body` on the definition named by `opts` (the current directory
 * or --os-dir): holding the definition's lock (so two commands on it serialise instead of one
 * finding the other's files "edited"; not for --dry-run, which writes nothing), loaded fresh
 * under that lock. A filesystem error the body does not handle itself (EACCES, EIO, ... while
 * reading to plan) becomes a UserError naming it (exit 1), never a crash. The writer rolls back
 * its own failures.
 */
export async function maintainDefinition(ctx: Context, opts: Pick<MaintainOptions, 'osDir' | 'dryRun'> & TemplateChoice, body: (l: Loaded) => void): Promise<void> {
  const root = path.resolve(ctx.cwd, opts.osDir ?? '.');
  requireDirectory(root);
  const run = () => withFsErrors(root, () => body(loadDefinition(ctx, opts)));
  if (opts.dryRun) return run();
  const locks = definitionLocks(root);
  const checked = () => {
    // A symlink changed while this command waited: what it would write is not what it holds.
    const now = definitionLocks(root).filter((l) => !locks.includes(l));
    if (now.length) throw new UserError(`the symlinks of ${root} changed while ganeti-os waited for it; nothing was changed`, ['Run the command again.']);
    return run();
  };
  await withLocks(locks, root, checked, {
    onWait: (owner) => ctx.log.info(`Waiting for another ganeti-os command (${owner}) to finish with ${root}...`),
  });
}

// withFsErrors lives with the errors it makes (src/errors.ts); re-exported for the commands.
export { withFsErrors };

/** Read the definition a maintenance command acts on (after rolling back an interrupted write); every problem is a clear error. */
export function loadDefinition(ctx: Context, opts: Pick<MaintainOptions, 'osDir' | 'dryRun'> & TemplateChoice): Loaded {
  const root = path.resolve(ctx.cwd, opts.osDir ?? '.');
  requireDirectory(root);
  // A write killed half-way: plan from the state before it, as the writer restores it.
  if (opts.dryRun) {
    if (fs.existsSync(path.join(root, JOURNAL_FILE))) ctx.log.warn(`${root} holds an interrupted ganeti-os write; it will be rolled back before the next change`);
  } else {
    recoverBeforePlanning(ctx, root);
  }
  return editable(readDefinition(root), { ...opts, env: ctx.env, warn: (m) => ctx.log.warn(m) });
}

/**
 * The definition as the maintenance commands and upgrade edit it: its list files readable, its
 * API versions parsable, and its record (when there is one) intact, with the template it names.
 * Throws UserError (nothing was changed) for anything they cannot work on.
 */
export function editable(def: OsDefinition, choice: TemplateChoice & Partial<SourceOptions> = {}): Loaded {
  const root = def.dir;
  const hint = 'Run the command inside an OS definition directory, or name one with --os-dir DIR.';
  const apiText = def.text.api;
  if (apiText.kind === 'missing') throw new UserError(`${root} is not an OS definition: it has no ${OS_API_FILE}`, [hint]);
  editableText(apiText);
  const parsed = parseApiVersions(apiText.text);
  if (!parsed.ok) {
    throw new UserError(`${apiText.abs} is not a list of versions: Ganeti cannot convert ${pyReprStr(pyStrip(parsed.bad))} to an integer`, [
      'Fix it by hand (one version per line, e.g. 20, 15, 10), then run the command again.',
    ]);
  }
  if (!parsed.versions.length) throw new UserError(`${apiText.abs} lists no API version; fix it by hand (e.g. 20, 15, 10 on separate lines)`);
  const apiVersions = parsed.versions;

  const variantsFile: ListFile = { ...editableText(def.text.variants), rel: OS_VARIANTS_FILE };
  const parametersFile: ListFile = { ...editableText(def.text.parameters), rel: OS_PARAMETERS_FILE };
  // Ganeti reads a byte-order mark as part of the first name: an edit would carry it into
  // lib/parameters.sh (an invalid variable name) or into the variant Ganeti refuses.
  for (const f of [variantsFile, parametersFile]) {
    if (f.text?.startsWith('\uFEFF')) {
      throw new UserError(`${path.join(root, f.rel)} starts with a byte-order mark (U+FEFF), which Ganeti reads as part of its first name; nothing was changed`, [
        `Remove it (sed -i '1s/^\\xEF\\xBB\\xBF//' ${f.rel}), then run the command again.`,
      ]);
    }
  }
  const variants = [...new Set(parseVariantsList(variantsFile.text))];
  const parameters = parseParametersList(parametersFile.text)
    .filter((l) => l.fields.length > 0)
    .map((l) => ({ name: l.fields[0], description: l.fields[1] ?? '' }));

  const loaded: Loaded = {
    root,
    name: def.name,
    def,
    apiVersions,
    maxApi: Math.max(...apiVersions),
    variantsFile,
    parametersFile,
    variants,
    parameters,
  };

  const record = def.text.record;
  if (record.kind !== 'missing' && !(record.isSymlink && record.errno === 'ENOENT')) {
    if (record.errno) throw new UserError(`cannot read ${record.abs}: ${record.errno}; nothing was changed`);
    const prov = def.provenance;
    // A field of the wrong type ("choices": "ext4"): named, instead of failing on it later.
    let wrong: string | undefined;
    try {
      wrong = provenanceProblem(JSON.parse(record.text));
    } catch {
      wrong = undefined;
    }
    if (wrong) {
      throw new UserError(`${record.abs} is damaged: ${wrong}; nothing was changed`, [
        'Fix that field by hand (or restore the file from a backup), then run the command again.',
      ]);
    }
    if (!prov || !validAnswers(prov.answers)) {
      throw new UserError(`${record.abs} is damaged: ganeti-os cannot tell which files it wrote; nothing was changed`, [
        'Restore it from a backup, or remove it to maintain the definition as one ganeti-os did not write.',
      ]);
    }
    let template: Template;
    if (choice.templateRef || prov.templateSource) {
      // A site template (or another template for upgrade): loaded only then, with what it needs
      // (git); its loader's errors say what is wrong with it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const src = require('./template-source') as typeof import('./template-source');
      const opts = { env: choice.env ?? {}, warn: choice.warn };
      if (!choice.templateRef) template = src.loadRecordedTemplate(prov, root, choice.templateAt ?? 'recorded', opts);
      else {
        try {
          template = src.loadTemplateRef(choice.templateRef, opts);
        } catch (err) {
          if (err instanceof UserError) throw new UserError(`${err.message}; nothing was changed`, err.details);
          throw err;
        }
      }
    } else {
      try {
        template = loadTemplate(prov.template);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code && code !== 'ENOENT') throw new UserError(`cannot read template '${prov.template}': ${errorMessage(err)}; nothing was changed`);
        throw new UserError(`${root} was written from template '${prov.template}', which this ganeti-os does not have; nothing was changed`);
      }
    }
    loaded.provenance = prov;
    loaded.template = template;
    loaded.spec = reconcile(prov.answers, loaded, template);
  }
  return loaded;
}

function validAnswers(a: unknown): a is DefinitionSpec {
  const s = a as DefinitionSpec;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.name === 'string' &&
    Array.isArray(s.apiVersions) &&
    Array.isArray(s.variants) &&
    Array.isArray(s.parameters) &&
    s.variants.every((v) => v && typeof v.name === 'string' && typeof v.settings === 'object') &&
    s.parameters.every((p) => p && typeof p.name === 'string')
  );
}

const sameList = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The recorded answers, with the API versions, variants and parameters Ganeti reads from disk. */
function reconcile(answers: DefinitionSpec, l: Loaded, t: Template): DefinitionSpec {
  const byName = new Map(answers.variants.map((v) => [v.name, v]));
  const variants: VariantSpec[] = l.variants.map((n) => byName.get(n) ?? { name: n, settings: variantSettings(t, n) });
  const pByName = new Map(answers.parameters.map((p) => [p.name, p]));
  const parameters: ParamSpec[] = l.parameters.map((p) => {
    const known = pByName.get(p.name);
    return known ? (known.description === p.description ? known : { ...known, description: p.description }) : { ...p };
  });
  return {
    ...answers,
    apiVersions: sameList(answers.apiVersions, l.apiVersions) ? answers.apiVersions : [...l.apiVersions],
    variants: sameList(answers.variants.map((v) => v.name), variants.map((v) => v.name)) ? answers.variants : variants,
    // Below API 20 Ganeti ignores parameters.list: the answers keep the parameters (and their defaults).
    parameters: l.maxApi < OS_API_V20 || sameList(answers.parameters, parameters) ? answers.parameters : parameters,
  };
}

// ------------------------------------------------------------------------------------------
// Line-by-line edits (pure: text in, text out)

/**
 * The terminator new lines get: the file's own (its last line's LF, CRLF or CR, each of which
 * Ganeti's splitlines() reads as a line end), LF by default.
 */
function newlineOf(lines: Line[]): string {
  const withEol = lines.filter((l) => l.eol !== '');
  const last = withEol.length ? withEol[withEol.length - 1].eol : '\n';
  return last === '\r\n' || last === '\r' ? last : '\n';
}

/** Make sure every line ends with a terminator before lines are added after it. */
function terminated(lines: Line[]): Line[] {
  const nl = newlineOf(lines);
  return lines.map((l) => (l.eol === '' ? { ...l, eol: nl } : l));
}

const isVariantLine = (l: Line) => {
  const t = pyStrip(l.text);
  return t !== '' && !t.startsWith('#');
};

export type VariantEdit = 'added' | 'moved' | 'exists';

/**
 * Add `name` to variants.list text: after the last variant (or before the first with `first`),
 * so comments at the top or bottom stay where they are. An existing variant is left alone, or
 * moved to the front with `first`.
 */
export function addVariantLine(text: string, name: string, opts: { first?: boolean } = {}): { text: string; result: VariantEdit } {
  let lines = splitLines(text);
  const idx = lines.map((l, i) => (isVariantLine(l) ? i : -1)).filter((i) => i >= 0);
  const existing = idx.filter((i) => pyStrip(lines[i].text) === name);
  if (existing.length) {
    if (!opts.first || existing[0] === idx[0]) return { text, result: 'exists' };
    lines = terminated(lines);
    const moved = lines[existing[0]];
    lines.splice(existing[0], 1);
    lines.splice(idx[0], 0, moved);
    return { text: joinLines(lines), result: 'moved' };
  }
  lines = terminated(lines);
  const nl = newlineOf(lines);
  const at = !idx.length ? lines.length : opts.first ? idx[0] : idx[idx.length - 1] + 1;
  lines.splice(at, 0, { text: name, eol: nl });
  return { text: joinLines(lines), result: 'added' };
}

/** Remove every line naming `name` from variants.list text; everything else stays. */
export function removeVariantLine(text: string, name: string): { text: string; removed: number } {
  const lines = splitLines(text);
  const kept = lines.filter((l) => !(isVariantLine(l) && pyStrip(l.text) === name));
  return { text: joinLines(kept), removed: lines.length - kept.length };
}

export interface ParamLineProblem {
  line: number;
  text: string;
  problem: string;
}

/** Lines of parameters.list that Ganeti mishandles (blank ones are reported separately). */
export function parameterLineProblems(text: string): ParamLineProblem[] {
  const out: ParamLineProblem[] = [];
  for (const l of parseParametersList(text)) {
    if (!l.fields.length) continue;
    if (l.fields[0].startsWith('#')) {
      out.push({ line: l.line, text: l.raw, problem: `Ganeti has no comments here: it reads a parameter named '${l.fields[0]}'` });
    } else if (l.fields.length === 1) {
      out.push({ line: l.line, text: l.raw, problem: 'a name without a description breaks gnt-os info and gnt-cluster verify' });
    }
  }
  return out;
}

/**
 * Set (add or replace) parameter `name`'s line in parameters.list text, in place when it is
 * there, else at the end. Blank lines (which crash Ganeti's parameter check) are dropped.
 */
export function setParameterLine(text: string, name: string, description: string): { text: string; result: 'added' | 'replaced' | 'same'; droppedBlank: number } {
  const lines = splitLines(text);
  const nonBlank = lines.filter((l) => pyStrip(l.text) !== '');
  const droppedBlank = lines.length - nonBlank.length;
  let work = terminated(nonBlank);
  const nl = newlineOf(work);
  const wanted = `${name} ${description.trim()}`;
  const hits = work.map((l, i) => (firstField(l.text) === name ? i : -1)).filter((i) => i >= 0);
  if (hits.length) {
    const same = hits.length === 1 && work[hits[0]].text === wanted;
    work[hits[0]] = { text: wanted, eol: work[hits[0]].eol };
    work = work.filter((_, i) => !hits.slice(1).includes(i));
    if (same && !droppedBlank) return { text, result: 'same', droppedBlank };
    return { text: joinLines(work), result: same ? 'same' : 'replaced', droppedBlank };
  }
  work.push({ text: wanted, eol: nl });
  return { text: joinLines(work), result: 'added', droppedBlank };
}

/** Remove parameter `name`'s line(s) from parameters.list text (and the blank lines Ganeti chokes on). */
export function removeParameterLine(text: string, name: string): { text: string; removed: number; droppedBlank: number } {
  const lines = splitLines(text);
  const nonBlank = lines.filter((l) => pyStrip(l.text) !== '');
  const kept = nonBlank.filter((l) => firstField(l.text) !== name);
  return { text: joinLines(terminated(kept)), removed: nonBlank.length - kept.length, droppedBlank: lines.length - nonBlank.length };
}

/**
 * An existing parameter changed only in what a command was given: the description always (it
 * is a required argument), the default, choices and pattern only when given (undefined = not
 * given). The caller checks the result (checkParamSpec).
 */
export function mergeParam(known: ParamSpec, given: ParamSpec): ParamSpec {
  const out: ParamSpec = { ...known, description: given.description };
  if (given.default !== undefined) out.default = given.default;
  if (given.choices !== undefined) out.choices = given.choices;
  if (given.pattern !== undefined) out.pattern = given.pattern;
  return out;
}

function firstField(line: string): string | undefined {
  const m = /^\s*(\S+)/u.exec(line);
  return m ? m[1] : undefined;
}

/**
 * Set KEY=VALUE settings in a bash configuration file: the last assignment of each key is
 * replaced in place (so it still wins), a key not there is appended. Comments stay.
 */
export function setConfValues(text: string, settings: Record<string, string>): string {
  let lines = splitLines(text);
  for (const [key, value] of Object.entries(settings)) {
    const found = lines.map((l, i) => ({ i, a: confAssignment(l.text) })).filter((x) => x.a?.key === key);
    const set = found.filter((x) => !x.a!.commented);
    // An unset key is written as a commented-out assignment (`# KEY=`): setting it takes that line.
    const at = set.length ? set[set.length - 1] : found.find((x) => x.a!.value.trim() === '');
    const assignment = `${at?.a!.lead ?? ''}${key}=${shq(value)}`;
    if (at) {
      lines[at.i] = { text: assignment, eol: lines[at.i].eol };
    } else {
      lines = terminated(lines);
      lines.push({ text: assignment, eol: newlineOf(lines) });
    }
  }
  return joinLines(lines);
}

// ------------------------------------------------------------------------------------------
// Planning

/** Read a plain file for `textOp` (not there: `exists` false); a UserError when it cannot be edited. */
export function readText(abs: string): TextFile {
  return editableText(readTextFile(abs));
}

/**
 * The worker's input for changing ganeti-os definition `l` to answers `spec` (before: its
 * recorded answers); `more` adds the list files' new text, configuration edits and files kept.
 */
export function maintenance(l: Loaded, spec: DefinitionSpec, more: Pick<Work, 'force' | 'extraOps' | 'keep'> & { variantsText?: string | null; parametersText?: string | null } = {}): Work {
  return {
    root: l.root,
    template: l.template!,
    spec,
    previous: l.provenance,
    before: { answers: l.spec! },
    force: more.force,
    extraOps: more.extraOps,
    keep: more.keep,
    lists: { variants: { file: l.variantsFile, text: more.variantsText }, parameters: { file: l.parametersFile, text: more.parametersText } },
  };
}

/**
 * Refuse (UserError, unless `force`) a change after which Ganeti would start or stop seeing
 * variants for `l` (seesVariants): instance names carry the variant or not (Ganeti's
 * _CheckOSVariant), so every existing instance would fail reinstall, import and the other OS
 * operations. `after`: the highest API listed afterwards and the variants listed afterwards
 * (the first is the one instances would be moved to).
 */
export function checkVariantsVisibility(l: Loaded, after: { maxApi: number; variants: readonly string[] }, force?: boolean): void {
  const before = seesVariants(l.maxApi, l.variants);
  const top = after.maxApi;
  if (before === seesVariants(top, after.variants) || force) return;
  if (!before) {
    const now = l.maxApi < OS_API_V15 ? `API ${l.maxApi}` : l.variantsFile.exists ? 'its variants.list lists none' : 'no variants.list';
    throw new UserError(`${l.name} has no variants now (${now}); with API ${top} and a variant, Ganeti requires one in every instance's OS name; nothing was changed`, [
      `Every existing instance installed as plain '${l.name}' would then fail reinstall, import and every other OS operation with "${checkOsVariant(l.name, l.name, after.variants)}".`,
      `Run again with --force if no instance uses ${l.name} yet, or after moving them to ${l.name}+VARIANT (gnt-instance modify -o ${l.name}+${after.variants[0]}).`,
    ]);
  }
  const n = l.variants.length;
  throw new UserError(`${l.name} has ${n} variant${n === 1 ? '' : 's'} (${l.variants.join(', ')}), but API ${top} has none: Ganeti would refuse every instance installed as ${l.name}+VARIANT ("${checkOsVariant(l.name, `${l.name}+VARIANT`, [])}"); nothing was changed`, [
    `Run again with --force once no instance uses a variant: the scripts then always use the first variant's configuration, '${l.variants[0]}'.`,
  ]);
}

/**
 * Where and as what the shell code of a definition ganeti-os did not write reads a variant's
 * settings (`$VARIANTS_DIR/$OS_VARIANT.conf`, `.rb`, ...), when it can be told.
 */
export function foreignVariantConfig(l: Loaded): VariantConfigSource | undefined {
  return variantConfigSource(shellTexts(l.root));
}

/**
 * Where the scripts of a definition ganeti-os did not write read each variant's configuration
 * (layers.ts's variantConfigPlace: the rule validate checks by), whether or not ganeti-os may
 * write there.
 */
export function foreignVariantPlace(l: Loaded): VariantConfigPlace | undefined {
  return variantConfigPlace(l.root, shellTexts(l.root), { own: false, listTarget: l.variantsFile.realPath });
}

/**
 * The directory of a definition ganeti-os did not write where the maintenance commands write
 * and remove variant configuration: foreignVariantPlace, when it exists and is the
 * definition's to change (mayWriteVariantConfig); undefined otherwise.
 */
export function foreignVariantsDir(l: Loaded): string | undefined {
  const place = foreignVariantPlace(l);
  if (!place || !mayWriteVariantConfig(place.dir, l.root, l.variantsFile.realPath)) return undefined;
  try {
    return fs.statSync(place.dir).isDirectory() ? place.dir : undefined;
  } catch {
    return undefined;
  }
}

/** Plan path for a file: relative inside the definition, absolute outside it. */
export function planPath(root: string, abs: string): string {
  return isInside(abs, root) ? path.relative(root, abs) : abs;
}

export function symlinkNote(file: ListFile): string | undefined {
  if (!file.isSymlink || !file.realPath) return undefined;
  return `${file.rel} is a symlink: the file edited is its target, ${file.realPath}.`;
}

/**
 * The other OS definitions on this node whose variants.list resolves to the same file as `l`'s:
 * in Ganeti's OS search path and beside `l` (a copy of ganeti-instance-debootstrap keeps the
 * package's symlink to /etc/ganeti/instance-debootstrap/variants.list).
 */
export function sharedVariantsList(l: Loaded, searchDirs: readonly string[] = OS_SEARCH_PATH): string[] {
  const target = l.variantsFile.realPath;
  if (!target) return [];
  const self = fs.realpathSync(l.root);
  const out = new Set<string>();
  for (const dir of new Set([...searchDirs, path.dirname(l.root)])) {
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const d = path.join(dir, n);
      try {
        if (fs.realpathSync(d) === self || !fs.existsSync(path.join(d, OS_API_FILE))) continue;
        const list = path.join(d, OS_VARIANTS_FILE);
        if (fs.lstatSync(list).isSymbolicLink() && fs.realpathSync(list) === target) out.add(d);
      } catch {
        // no variants.list there
      }
    }
  }
  return [...out];
}

/**
 * An edit of variants.list through a symlink whose target is outside the definition (a file of
 * this host, /etc/ganeti/instance-debootstrap/variants.list for ganeti-instance-debootstrap):
 * refused (UserError, nothing changed) unless `force` when other definitions on this node read
 * the same file, as their variants would change too; otherwise a warning saying which file is
 * edited. Undefined when variants.list is not such a symlink.
 */
export function symlinkedListEdit(l: Loaded, command: string, force?: boolean): string | undefined {
  const f = l.variantsFile;
  if (!f.isSymlink || !f.realPath || isInside(f.realPath, fs.realpathSync(l.root))) return undefined;
  const others = sharedVariantsList(l);
  if (others.length && !force) {
    throw new UserError(
      `${path.join(l.root, f.rel)} is a symlink to ${f.realPath}, a file outside the definition that ${others.join(', ')} ${others.length > 1 ? 'read' : 'reads'} as ${others.length > 1 ? 'their' : 'its'} ${f.rel} too: ${command} would change ${others.length > 1 ? 'their' : 'its'} variants as well; nothing was changed`,
      [
        `To change ${l.name} alone, give it its own list first: cp --remove-destination ${shq(f.realPath)} ${shq(path.join(l.root, f.rel))}, then run again;`,
        `or run again with --force to edit ${f.realPath} for all of them.`,
      ],
    );
  }
  return `${f.rel} is a symlink: the file edited is its target, ${f.realPath}, outside ${l.root} (a file of this host${others.length ? `, read by ${others.join(', ')} too` : ''}).`;
}

/** What an edit of a definition (src/definition/edits/) produces: its plan, and what the command says about it. */
export interface Edit {
  plan: Plan;
  /** One line saying what was done (or would be, with --dry-run). */
  summary: string;
  /** The facts --json adds to the plan. */
  facts: Record<string, unknown>;
  /** Warnings said before the plan is applied. */
  warnings: string[];
}

/** Say an edit's warnings, then apply and report its plan (`finish`). */
export function report(ctx: Context, edit: Edit, opts: MaintainOptions): void {
  for (const w of edit.warnings) ctx.log.warn(w);
  finish(ctx, edit.plan, opts, edit.summary, edit.facts);
}

/** Apply and report, then say whether Ganeti would accept the result. */
export function finish(ctx: Context, plan: Plan, opts: MaintainOptions, summary: string, extra: Record<string, unknown>): void {
  applyAndReport(ctx, plan, { dryRun: opts.dryRun, json: opts.json, summary, extra, keep: opts.force ? forcedLosses(plan) : undefined });
  if (opts.dryRun) return;
  const def = readDefinition(plan.root);
  if (!def.verdict.valid) ctx.log.warn(`Ganeti would not accept ${plan.root} as it is now: ${def.verdict.error}`);
}

/**
 * The files a --force plan replaces or removes that hold something ganeti-os did not write (an
 * edited script, a file it never recorded): --force may replace them, never lose them, so they
 * are backed up first (as upgrade keeps its backups). In-place edits (variants.list, ...) and
 * mode changes lose nothing.
 */
function forcedLosses(plan: Plan): { rel: string; realPath?: string }[] {
  const recordFile = readTextFile(path.join(plan.root, PROVENANCE_FILE));
  if (recordFile.kind === 'other' && recordFile.errno) editableText(recordFile);
  const prov = recordFile.exists ? parseProvenance(recordFile.text) : undefined;
  const out: { rel: string; realPath?: string }[] = [];
  for (const op of changes(plan)) {
    if (op.kind === 'create' || op.path === PROVENANCE_FILE || op.reason === 'edited in place') continue;
    const cur = readTextFile(op.realPath ?? (path.isAbsolute(op.path) ? op.path : path.join(plan.root, op.path)));
    if (cur.kind === 'missing') continue;
    // A read that failed is an error (naming the file), never a reason to guess.
    if (cur.kind === 'other' && cur.errno && !(cur.isSymlink && cur.errno === 'ENOENT')) editableText(cur);
    if (cur.kind === 'file' && (isUntouched(prov, op.path, cur.text) || (op.kind === 'update' && cur.text === op.content))) continue;
    out.push({ rel: op.path, realPath: op.realPath });
  }
  return out;
}

/** The spec as JSON-friendly facts for --json. */
export function facts(l: Loaded, apiVersions: number[], variants: string[], parameters: string[]): Record<string, unknown> {
  return { name: l.name, generatedByGanetiOs: !!l.provenance, apiVersions, variants, parameters };
}

