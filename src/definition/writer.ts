/**
 * The one writer. A plan is applied all or nothing:
 *  - a new definition is built in a hidden staging directory beside it and renamed into place;
 *  - an existing one gets every new file written and synced next to its target first, then a
 *    journal, then the renames; any failure rolls back, and a journal left by a kill is rolled
 *    back by the next ganeti-os command that touches the directory (`recoverInterrupted`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, errorMessage } from '../errors';
import { Plan, PlanOp, changes, conflicts } from './plan';

export const JOURNAL_FILE = '.ganeti-os.journal';
const TMP_TAG = '.ganeti-os-new';
const OLD_TAG = '.ganeti-os-old';

interface JournalEntry {
  target: string;
  /** Staged new content (absent for deletes). */
  staged?: string;
  /** The previous file, hard-linked aside (absent when the target did not exist). */
  backup?: string;
}

/** Failures raised in the middle of applying; tests use it to prove rollback. */
export interface WriterHooks {
  beforeCommitStep?: (index: number) => void;
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

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every filesystem lets a directory be synced; the rename is still atomic.
  }
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
  let stage: string;
  try {
    stage = fs.mkdtempSync(path.join(parent, `.${path.basename(plan.root)}.ganeti-os-stage-`));
  } catch (err) {
    throw new UserError(`cannot write in ${parent}: ${errorMessage(err)}`);
  }
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
    fsyncDir(parent);
  } catch (err) {
    let left = '';
    try {
      fs.rmSync(stage, { recursive: true, force: true });
    } catch (again) {
      left = ` (the partial copy ${stage} could not be removed: ${errorMessage(again)}; remove it by hand)`;
    }
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

function targetOf(plan: Plan, op: PlanOp): string {
  return op.realPath ?? path.join(plan.root, op.path);
}

function applyInPlace(plan: Plan, hooks: WriterHooks): void {
  recoverInterrupted(plan.root);
  const journal = path.join(plan.root, JOURNAL_FILE);
  // 1. Plan every step, then journal it before touching anything: a kill at any later point
  //    leaves a journal from which the next command restores the previous state.
  const entries: JournalEntry[] = [];
  const createdDirs: string[] = [];
  for (const op of changes(plan)) {
    const target = targetOf(plan, op);
    const dir = path.dirname(target);
    const missing: string[] = [];
    for (let d = dir; !exists(d) && !createdDirs.includes(d); d = path.dirname(d)) missing.unshift(d);
    createdDirs.push(...missing);
    const entry: JournalEntry = { target };
    if (op.kind !== 'delete') entry.staged = path.join(dir, `.${path.basename(target)}${TMP_TAG}`);
    if (exists(target) || isLink(target)) entry.backup = path.join(dir, `.${path.basename(target)}${OLD_TAG}`);
    entries.push(entry);
  }
  try {
    writeJournal(journal, { state: 'pending', entries, createdDirs });
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
    entries.forEach((e, i) => {
      if (!e.staged) return;
      fs.rmSync(e.staged, { force: true });
      writeSynced(e.staged, ops[i].content ?? '', ops[i].mode ?? 0o644);
    });
    entries.forEach((e, i) => {
      hooks.beforeCommitStep?.(i);
      if (e.backup) {
        fs.rmSync(e.backup, { force: true });
        fs.renameSync(e.target, e.backup);
      }
      if (e.staged) fs.renameSync(e.staged, e.target);
    });
    for (const d of new Set(entries.map((e) => path.dirname(e.target)))) fsyncDir(d);
    writeJournal(journal, { state: 'committed', entries, createdDirs });
  } catch (err) {
    const cause = errorMessage(err);
    try {
      rollBack(entries, createdDirs);
      fs.rmSync(journal + TMP_SUFFIX, { force: true });
      fs.rmSync(journal, { force: true });
    } catch (again) {
      throw new UserError(`could not write in ${plan.root}: ${cause}; putting the previous files back failed too (${errorMessage(again)})`, [
        `The journal ${journal} is kept: the next ganeti-os command on ${plan.root} finishes putting them back.`,
      ]);
    }
    throw new UserError(`could not write in ${plan.root}: ${cause}; nothing was changed (the previous files were put back)`);
  }
  // 4. Done: the backups go, then the journal. A failure here changes nothing any more: the
  //    committed journal lets the next command finish the clean-up.
  finishCommitted(entries, journal);
  fsyncDir(plan.root);
  try {
    removeEmptyDirsOfDeletes(plan);
  } catch {
    // an empty directory left behind is harmless
  }
}

const TMP_SUFFIX = '.tmp';

interface Journal {
  state: 'pending' | 'committed';
  entries: JournalEntry[];
  createdDirs: string[];
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
function finishCommitted(entries: JournalEntry[], journal: string): boolean {
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

/** Remove a file, trying twice (a transient error must not leave it behind); false when it stays. */
function removeQuietly(p: string): boolean {
  for (let i = 0; i < 2; i++) {
    try {
      fs.rmSync(p, { force: true });
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
function rollBack(entries: JournalEntry[], createdDirs: string[]): void {
  for (const e of [...entries].reverse()) {
    const backupThere = e.backup && (exists(e.backup) || isLink(e.backup));
    if (backupThere) {
      fs.rmSync(e.target, { force: true });
      fs.renameSync(e.backup!, e.target);
    } else if (!e.backup && e.staged && !exists(e.staged)) {
      // Created by this write (or never staged): remove it.
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
    data = JSON.parse(fs.readFileSync(journal, 'utf8')) as Partial<Journal>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code) throw new UserError(`cannot read ${journal}, left by an interrupted ganeti-os write: ${errorMessage(err)}; nothing was changed`);
    throw new UserError(`${journal}, left by an interrupted ganeti-os write, is damaged; nothing was changed`, [
      'Check the files it lists by hand (each .ganeti-os-old file is the previous version of its neighbour), then remove it.',
    ]);
  }
  try {
    if (data.state === 'committed') {
      if (!finishCommitted(data.entries ?? [], journal)) throw new Error('could not remove the backups');
      return false;
    }
    rollBack(data.entries ?? [], data.createdDirs ?? []);
    fs.rmSync(journal, { force: true });
  } catch (err) {
    throw new UserError(`could not undo the interrupted ganeti-os write in ${root}: ${errorMessage(err)}; nothing was changed`, [
      `The journal ${journal} is kept for the next attempt.`,
    ]);
  }
  return true;
}
