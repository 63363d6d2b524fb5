/**
 * The one writer. A plan is applied all or nothing:
 *  - a new definition is built in a hidden staging directory beside it and renamed into place;
 *  - an existing one gets every new file written and synced next to its target first, then a
 *    journal, then the renames; any failure rolls back, and a journal left by a kill is rolled
 *    back by the next ganeti-os command that touches the directory (`recoverInterrupted`).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, errorMessage } from '../errors';
import { ownerTag, removeDeadLeftovers } from './lock';
import { Plan, PlanOp, changes, conflicts } from './plan';

export const JOURNAL_FILE = '.ganeti-os.journal';
const TMP_TAG = '.ganeti-os-new';
const OLD_TAG = '.ganeti-os-old';

/**
 * One step of a write, as the journal records it. Paths are relative and bound to the definition
 * holding the journal: `path` is relative to the definition, or, with `via`, to the directory of
 * the file that `via` (a symlink inside the definition) points to — a shared variants.list and
 * the variants/ beside it. Never absolute, never `..`: a journal that names anything else is
 * refused (see `resolveJournal`), so a moved definition or a crafted journal cannot make the
 * recovery touch files of another definition.
 */
interface JournalEntry {
  path: string;
  via?: string;
  /** New content was staged beside the target (absent for deletes). */
  staged?: boolean;
  /** The previous file was moved aside beside the target (absent when the target did not exist). */
  backup?: boolean;
  /** sha256 of the new content: the recovery removes a file it created only when it still holds it. */
  sha256?: string;
}

/** A journal entry with its files resolved (absolute). */
interface Step {
  target: string;
  staged?: string;
  backup?: string;
  sha256?: string;
}

/** Journal format: 2 = relative, bound entries (1, before: absolute paths). */
const JOURNAL_VERSION = 2;

/** Failures raised in the middle of applying; tests use it to prove rollback. */
export interface WriterHooks {
  beforeCommitStep?: (index: number) => void;
  /**
   * Right after the commit point (the journal marked committed), before the clean-up: what
   * belongs to the write and must exist exactly when it does (a backup given its final name).
   * A failure here is reported but does not undo the write.
   */
  afterCommit?: () => void;
}

export function assertNoConflicts(plan: Plan): void {
  const c = conflicts(plan);
  if (c.length) {
    throw new UserError(
      `${c.length === 1 ? 'a file stands' : `${c.length} files stand`} in the way in ${plan.root}; nothing was changed`,
      [...c.map((o) => `  ${o.path}: ${o.reason}`), 'Use --force to replace them (your changes to them are lost), or move them aside.'],
    );
  }
}

function writeSynced(file: string, content: string, mode: number): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.writeSync(fd, content);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Sync directory `dir` (its entries: a rename or a new file in it). A filesystem that cannot
 * sync a directory (EINVAL, ENOTSUP) or a directory this user cannot open is passed over: the
 * rename is still atomic. Throws the filesystem's error (EIO, ENOSPC, ...) otherwise: the
 * entries may not be on the disk, and the caller must not report the write done.
 */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (err) {
    if (['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if (!['EINVAL', 'ENOTSUP', 'EOPNOTSUPP'].includes((err as NodeJS.ErrnoException).code ?? '')) {
      const e = err as NodeJS.ErrnoException;
      // Name the directory (the error only knows a descriptor).
      throw Object.assign(new Error(`cannot sync the directory ${dir}: ${e.message}`), { code: e.code, errno: e.errno, syscall: 'fsync', path: dir });
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Name prefix of the directory a new definition NAME is staged in, beside it: `.NAME.ganeti-os-stage-<owner tag>-`. */
const STAGE_TAG = '.ganeti-os-stage-';

/** The owner tag in the name of a new definition's staging directory; undefined for any other name. */
function stageOwner(name: string): string | undefined {
  const m = /^\..+\.ganeti-os-stage-(\d+_\d*_.+)-[A-Za-z0-9]{6}$/.exec(name);
  return m?.[1];
}

/** Apply a plan. Throws UserError on conflicts (nothing written) or on failure (rolled back). */
export function applyPlan(plan: Plan, hooks: WriterHooks = {}): void {
  assertNoConflicts(plan);
  if (!changes(plan).length) return;
  if (fs.existsSync(plan.root)) applyInPlace(plan, hooks);
  else applyNewTree(plan, hooks);
}

function applyNewTree(plan: Plan, hooks: WriterHooks): void {
  const parent = path.dirname(plan.root);
  let st: fs.Stats;
  try {
    st = fs.statSync(parent);
  } catch {
    throw new UserError(`cannot create ${plan.root}: the parent directory ${parent} does not exist`);
  }
  if (!st.isDirectory()) throw new UserError(`cannot create ${plan.root}: ${parent} is not a directory`);
  // What a killed `new` left in this parent (its owner gone) goes first; a live one's stays.
  removeDeadLeftovers(parent, stageOwner);
  let stage: string;
  try {
    stage = fs.mkdtempSync(path.join(parent, `.${path.basename(plan.root)}${STAGE_TAG}${ownerTag()}-`));
  } catch (err) {
    throw new UserError(`cannot write in ${parent}: ${errorMessage(err)}`);
  }
  let placed = false;
  try {
    let i = 0;
    for (const op of changes(plan)) {
      hooks.beforeCommitStep?.(i++);
      const file = path.join(stage, op.path);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      writeSynced(file, op.content ?? '', op.mode ?? 0o644);
    }
    setDirModes(stage);
    fs.chmodSync(stage, 0o755);
    fs.renameSync(stage, plan.root);
    placed = true;
    // Only once its entry is on the disk does the new definition exist: else it goes again.
    fsyncDir(parent);
  } catch (err) {
    if (placed) {
      try {
        fs.renameSync(plan.root, stage);
      } catch (again) {
        throw new UserError(`could not write ${plan.root}: ${errorMessage(err)}; it is in place but may not be on the disk, and taking it back failed too (${errorMessage(again)})`, [
          `Check it with 'ganeti-os validate ${plan.root}', or remove it and run the command again.`,
        ]);
      }
    }
    // Twice: a transient error must not leave it; a copy that stays, the next `new` in this
    // directory removes (its owner, this process, is gone by then).
    let left = '';
    if (!removeQuietly(stage)) left = ` (the partial copy ${stage} could not be removed; the next 'ganeti-os new' in ${parent} removes it)`;
    if (err instanceof UserError && !left) throw err;
    throw new UserError(`could not write ${plan.root}: ${errorMessage(err)}; nothing was changed${left}`);
  }
}

function setDirModes(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      fs.chmodSync(path.join(dir, e.name), 0o755);
      setDirModes(path.join(dir, e.name));
    }
  }
}

/** A path that stays inside its base: relative, normalised, no `..`. */
function isBoundRel(p: unknown): p is string {
  if (typeof p !== 'string' || p === '' || path.isAbsolute(p) || p.includes('\0')) return false;
  return path.normalize(p) === p && !p.split(path.sep).includes('..') && p !== '.';
}

/**
 * Where a symlink (chain) finally points, even when that file is absent (the writer moves it
 * aside mid-write): the last link's target, its directory resolved.
 */
function linkTarget(abs: string): string {
  let p = abs;
  for (let i = 0; i < 40; i++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      break;
    }
    if (!st.isSymbolicLink()) break;
    p = path.resolve(path.dirname(p), fs.readlinkSync(p));
  }
  return path.join(fs.realpathSync(path.dirname(p)), path.basename(p));
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The journal entry of a file the writer writes at `abs` (for `rel` in the plan): relative to
 * the definition, or to the directory of one of its symlinks. Throws UserError (nothing changed)
 * for a file reached neither way.
 */
function bindEntry(root: string, rel: string, abs: string): Pick<JournalEntry, 'path' | 'via'> {
  const inside = path.relative(root, abs);
  if (isBoundRel(inside)) return { path: inside };
  // Through a symlink of the definition: the plan's own path when it is one, else a top-level link.
  const links = isBoundRel(rel) && isSymlink(path.join(root, rel)) ? [rel] : [];
  try {
    for (const e of fs.readdirSync(root)) if (isSymlink(path.join(root, e)) && !links.includes(e)) links.push(e);
  } catch {
    // the definition cannot be listed: only the plan's own link is a candidate
  }
  for (const via of links) {
    let base: string;
    try {
      base = path.dirname(linkTarget(path.join(root, via)));
    } catch {
      continue;
    }
    const r = path.relative(base, abs);
    if (isBoundRel(r)) return { path: r, via };
  }
  throw new UserError(`cannot write ${abs}: it is outside ${root} and not reached through a symlink in it; nothing was changed`);
}

/** The files of a journal entry, resolved against `root`; undefined when it points outside (see isBoundRel). */
function resolveEntry(root: string, e: Partial<JournalEntry>): Step | undefined {
  if (!isBoundRel(e.path) || (e.via !== undefined && !isBoundRel(e.via))) return undefined;
  let base = root;
  if (e.via !== undefined) {
    const link = path.join(root, e.via);
    // Only a symlink of this definition anchors a path outside it.
    if (e.via.includes(path.sep) || !isSymlink(link)) return undefined;
    try {
      base = path.dirname(linkTarget(link));
    } catch {
      return undefined;
    }
  }
  const target = path.join(base, e.path);
  const dir = path.dirname(target);
  return {
    target,
    staged: e.staged ? path.join(dir, `.${path.basename(target)}${TMP_TAG}`) : undefined,
    backup: e.backup ? path.join(dir, `.${path.basename(target)}${OLD_TAG}`) : undefined,
    sha256: typeof e.sha256 === 'string' ? e.sha256 : undefined,
  };
}

function applyInPlace(plan: Plan, hooks: WriterHooks): void {
  recoverInterrupted(plan.root);
  const journal = path.join(plan.root, JOURNAL_FILE);
  // 1. Plan every step, then journal it before touching anything: a kill at any later point
  //    leaves a journal from which the next command restores the previous state.
  const entries: JournalEntry[] = [];
  const steps: Step[] = [];
  const createdDirs: string[] = [];
  const dirEntries: JournalEntry[] = [];
  for (const op of changes(plan)) {
    const target = op.realPath ?? (path.isAbsolute(op.path) ? op.path : path.join(plan.root, op.path));
    const dir = path.dirname(target);
    const missing: string[] = [];
    for (let d = dir; !exists(d) && !createdDirs.includes(d); d = path.dirname(d)) missing.unshift(d);
    for (const d of missing) {
      createdDirs.push(d);
      dirEntries.push(bindEntry(plan.root, '', d));
    }
    const entry: JournalEntry = bindEntry(plan.root, op.path, target);
    if (op.kind !== 'delete') {
      entry.staged = true;
      entry.sha256 = createHash('sha256').update(op.content ?? '').digest('hex');
    }
    if (exists(target) || isLink(target)) entry.backup = true;
    const step = resolveEntry(plan.root, entry);
    if (!step || step.target !== target) {
      throw new UserError(`cannot write ${target}: it is not reached the same way through ${plan.root}; nothing was changed`);
    }
    entries.push(entry);
    steps.push(step);
  }
  try {
    writeJournal(journal, { version: JOURNAL_VERSION, state: 'pending', entries, createdDirs: dirEntries });
  } catch (err) {
    removeQuietly(journal + TMP_SUFFIX);
    removeQuietly(journal);
    throw new UserError(`could not write in ${plan.root}: ${errorMessage(err)}; nothing was changed`);
  }
  try {
    // 2. Stage every new file next to its target (synced), then move the old files aside and
    //    the new ones in; 3. mark the journal committed: the commit point.
    for (const d of createdDirs) {
      fs.mkdirSync(d, { mode: 0o755 });
      fs.chmodSync(d, 0o755);
    }
    const ops = changes(plan);
    steps.forEach((e, i) => {
      if (!e.staged) return;
      fs.rmSync(e.staged, { force: true });
      writeSynced(e.staged, ops[i].content ?? '', ops[i].mode ?? 0o644);
    });
    steps.forEach((e, i) => {
      hooks.beforeCommitStep?.(i);
      if (e.backup) {
        fs.rmSync(e.backup, { force: true });
        fs.renameSync(e.target, e.backup);
      }
      if (e.staged) fs.renameSync(e.staged, e.target);
    });
    for (const d of new Set(steps.map((e) => path.dirname(e.target)))) fsyncDir(d);
    writeJournal(journal, { version: JOURNAL_VERSION, state: 'committed', entries, createdDirs: dirEntries });
  } catch (err) {
    const cause = errorMessage(err);
    try {
      rollBack(steps, createdDirs);
      fs.rmSync(journal + TMP_SUFFIX, { force: true });
      fs.rmSync(journal, { force: true });
    } catch (again) {
      throw new UserError(`could not write in ${plan.root}: ${cause}; putting the previous files back failed too (${errorMessage(again)})`, [
        `The journal ${journal} is kept: the next ganeti-os command on ${plan.root} finishes putting them back.`,
      ]);
    }
    throw new UserError(`could not write in ${plan.root}: ${cause}; nothing was changed (the previous files were put back)`);
  }
  try {
    hooks.afterCommit?.();
  } catch {
    // The write is done; what the hook could not finish the next command settles (committed journal kept).
    return;
  }
  // 4. Done: the backups go, then the journal. A failure here changes nothing any more: the
  //    committed journal lets the next command finish the clean-up.
  // No directory is synced after this point (nothing could be undone if that failed): the new
  // files' entries and the committed journal were synced before it, and a clean-up a crash
  // loses comes back as a committed journal, which the next command finishes.
  finishCommitted(steps, journal);
  try {
    removeEmptyDirsOfDeletes(plan);
  } catch {
    // an empty directory left behind is harmless
  }
}

const TMP_SUFFIX = '.tmp';

interface Journal {
  version: number;
  state: 'pending' | 'committed';
  entries: JournalEntry[];
  /** Directories the write created (removed again when rolled back), as entries. */
  createdDirs: JournalEntry[];
}

/** Write the journal atomically (temp file, fsync, rename): it is either the old or the new one. */
function writeJournal(journal: string, data: Journal): void {
  const tmp = journal + TMP_SUFFIX;
  fs.rmSync(tmp, { force: true });
  writeSynced(tmp, JSON.stringify(data, null, 1) + '\n', 0o600);
  fs.renameSync(tmp, journal);
  fsyncDir(path.dirname(journal));
}

/** After the commit point: remove the backups and the journal; what fails is left for later. */
function finishCommitted(entries: Step[], journal: string): boolean {
  let clean = true;
  for (const e of entries) if (e.backup && !removeQuietly(e.backup)) clean = false;
  if (clean) clean = removeQuietly(journal);
  return clean;
}

function exists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Remove a file or a directory tree, trying twice (a transient error must not leave it behind).
 * Returns false when it stays; never throws.
 */
export function removeQuietly(p: string): boolean {
  for (let i = 0; i < 2; i++) {
    try {
      fs.rmSync(p, { recursive: true, force: true });
      return true;
    } catch {
      // once more
    }
  }
  return false;
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Put back what a pending journal describes: every moved-aside file returns, every file the
 * write created goes, staged files and created (now empty) directories are removed. Safe to run
 * on a journal of which any prefix of the steps happened. Throws when the filesystem refuses.
 */
function rollBack(entries: Step[], createdDirs: string[]): void {
  for (const e of [...entries].reverse()) {
    const backupThere = e.backup && (exists(e.backup) || isLink(e.backup));
    if (backupThere) {
      fs.rmSync(e.target, { force: true });
      fs.renameSync(e.backup!, e.target);
    } else if (!e.backup && e.staged && !exists(e.staged) && holds(e.target, e.sha256)) {
      // Created by this write (it holds what the write put there): remove it.
      fs.rmSync(e.target, { force: true });
    }
    if (e.staged) fs.rmSync(e.staged, { force: true });
  }
  for (const d of [...createdDirs].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  }
}

/** Whether `file` holds the content whose sha256 is `sha` (no hash recorded: any content; absent: true). */
function holds(file: string, sha: string | undefined): boolean {
  if (sha === undefined) return true;
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile()) return false;
    return createHash('sha256').update(fs.readFileSync(file)).digest('hex') === sha;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Remove directories a delete left empty (variants/ after its last .conf). Never the root. */
function removeEmptyDirsOfDeletes(plan: Plan): void {
  for (const op of plan.ops) {
    if (op.kind !== 'delete' || op.realPath) continue;
    let d = path.dirname(path.join(plan.root, op.path));
    while (d.startsWith(plan.root + path.sep)) {
      try {
        fs.rmdirSync(d);
      } catch {
        break;
      }
      d = path.dirname(d);
    }
  }
}

/**
 * Undo a write that was killed half-way (a pending journal is left behind), or finish one that
 * was killed after its commit point (a committed journal: only the clean-up is left). Returns
 * true when something was rolled back, so the caller can say so. Throws UserError when the
 * filesystem refuses (the journal then stays for the next attempt).
 */
export function recoverInterrupted(root: string): boolean {
  const journal = path.join(root, JOURNAL_FILE);
  // A journal killed while being written never took effect: nothing was staged before it.
  removeQuietly(journal + TMP_SUFFIX);
  let data: Partial<Journal>;
  try {
    const st = fs.lstatSync(journal);
    // Never open a FIFO, a device or a link: only a regular file is a journal.
    if (!st.isFile()) throw new UserError(`${journal} is not a regular file (left there by hand?); nothing was changed`, ['Remove it, then run the command again.']);
    data = JSON.parse(fs.readFileSync(journal, 'utf8')) as Partial<Journal>;
    if (typeof data !== 'object' || data === null || !Array.isArray(data.entries)) throw new SyntaxError('not a journal');
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code) throw new UserError(`cannot read ${journal}, left by an interrupted ganeti-os write: ${errorMessage(err)}; nothing was changed`);
    throw new UserError(`${journal}, left by an interrupted ganeti-os write, is damaged; nothing was changed`, [
      'Check the files it lists by hand (each .ganeti-os-old file is the previous version of its neighbour), then remove it.',
    ]);
  }
  const { steps, dirs } = resolveJournal(root, journal, data);
  try {
    if (data.state === 'committed') {
      if (!finishCommitted(steps, journal)) throw new Error('could not remove the backups');
      return false;
    }
    rollBack(steps, dirs);
    fs.rmSync(journal, { force: true });
  } catch (err) {
    throw new UserError(`could not undo the interrupted ganeti-os write in ${root}: ${errorMessage(err)}; nothing was changed`, [
      `The journal ${journal} is kept for the next attempt.`,
    ]);
  }
  return true;
}

/**
 * A journal's steps, resolved against the definition holding it. Every path must stay inside
 * it (or inside the directory one of its symlinks points to, see JournalEntry); a journal naming
 * anything else -- one written by an older ganeti-os with absolute paths into a directory since
 * moved, or a crafted one -- is refused as a whole (UserError listing what it names), and
 * nothing is touched.
 */
function resolveJournal(root: string, journal: string, data: Partial<Journal>): { steps: Step[]; dirs: string[] } {
  const outside: string[] = [];
  const steps: Step[] = [];
  const dirs: string[] = [];
  const legacy = data.version === undefined;
  /** A journal of format 1 held absolute paths: taken only where they lie inside this definition. */
  const fromLegacy = (abs: unknown): string | undefined => {
    if (typeof abs !== 'string' || !path.isAbsolute(abs)) return undefined;
    const rel = path.relative(root, abs);
    return isBoundRel(rel) ? rel : undefined;
  };
  const describe = (e: unknown) => (typeof e === 'string' ? e : JSON.stringify(e));
  if (!legacy && data.version !== JOURNAL_VERSION) {
    throw new UserError(`${journal} was written by another version of ganeti-os (journal format ${describe(data.version)}); nothing was changed`, [
      'Check the files it lists by hand (each .ganeti-os-old file is the previous version of its neighbour), then remove it.',
    ]);
  }
  for (const raw of data.entries ?? []) {
    const e = raw as Partial<JournalEntry>;
    let step: Step | undefined;
    if (legacy) {
      const old = raw as { target?: unknown; staged?: unknown; backup?: unknown };
      // Its staged and backup files are taken as named, each bound to this definition too.
      const rel = fromLegacy(old.target);
      const staged = old.staged === undefined ? '' : fromLegacy(old.staged);
      const backup = old.backup === undefined ? '' : fromLegacy(old.backup);
      if (rel !== undefined && staged !== undefined && backup !== undefined) {
        step = { target: path.join(root, rel), staged: staged ? path.join(root, staged) : undefined, backup: backup ? path.join(root, backup) : undefined };
      }
    } else {
      step = resolveEntry(root, e);
    }
    if (step) steps.push(step);
    else outside.push(describe(legacy ? (raw as { target?: unknown }).target : e.path));
  }
  for (const raw of data.createdDirs ?? []) {
    const rel = legacy ? fromLegacy(raw) : undefined;
    const step = legacy ? (rel !== undefined ? resolveEntry(root, { path: rel }) : undefined) : resolveEntry(root, raw as Partial<JournalEntry>);
    if (step) dirs.push(step.target);
    else outside.push(describe(legacy ? raw : (raw as Partial<JournalEntry>)?.path));
  }
  if (outside.length) {
    throw new UserError(`${journal}, left by an interrupted ganeti-os write, names files outside ${root}; nothing was changed`, [
      ...outside.map((p) => `  ${p}`),
      'It may come from a definition since moved or copied here, or be damaged: ganeti-os touches nothing outside the definition it works on.',
      'Check the files by hand (each .ganeti-os-old file is the previous version of its neighbour, each .ganeti-os-new one a new version), then remove the journal.',
    ]);
  }
  return { steps, dirs };
}
