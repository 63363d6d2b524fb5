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
    fs.rmSync(stage, { recursive: true, force: true });
    if (err instanceof UserError) throw err;
    throw new UserError(`could not write ${plan.root}: ${errorMessage(err)}; nothing was changed`);
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
  const entries: JournalEntry[] = [];
  const createdDirs: string[] = [];
  const journal = path.join(plan.root, JOURNAL_FILE);
  const cleanupStaged = () => {
    for (const e of entries) if (e.staged) fs.rmSync(e.staged, { force: true });
    for (const d of createdDirs.reverse()) fs.rmSync(d, { recursive: false, force: true });
  };
  // 1. Stage every new file next to its target.
  try {
    for (const op of changes(plan)) {
      const target = targetOf(plan, op);
      const dir = path.dirname(target);
      if (!fs.existsSync(dir)) {
        let d = dir;
        const missing: string[] = [];
        while (!fs.existsSync(d)) {
          missing.unshift(d);
          d = path.dirname(d);
        }
        for (const m of missing) {
          fs.mkdirSync(m, { mode: 0o755 });
          fs.chmodSync(m, 0o755);
          createdDirs.push(m);
        }
      }
      const entry: JournalEntry = { target };
      if (op.kind !== 'delete') {
        entry.staged = path.join(dir, `.${path.basename(target)}${TMP_TAG}`);
        fs.rmSync(entry.staged, { force: true });
        entries.push(entry);
        writeSynced(entry.staged, op.content ?? '', op.mode ?? 0o644);
      } else {
        entries.push(entry);
      }
      if (fs.existsSync(target) || isLink(target)) entry.backup = path.join(dir, `.${path.basename(target)}${OLD_TAG}`);
    }
    fs.writeFileSync(journal, JSON.stringify({ entries, createdDirs }, null, 1) + '\n', { mode: 0o600 });
  } catch (err) {
    cleanupStaged();
    fs.rmSync(journal, { force: true });
    throw new UserError(`could not write in ${plan.root}: ${errorMessage(err)}; nothing was changed`);
  }
  // 2. Commit: move the old files aside, the new ones in.
  try {
    entries.forEach((e, i) => {
      hooks.beforeCommitStep?.(i);
      if (e.backup) {
        fs.rmSync(e.backup, { force: true });
        fs.renameSync(e.target, e.backup);
      }
      if (e.staged) fs.renameSync(e.staged, e.target);
    });
  } catch (err) {
    rollBack(entries, createdDirs);
    fs.rmSync(journal, { force: true });
    throw new UserError(`could not write in ${plan.root}: ${errorMessage(err)}; the previous files were put back`);
  }
  // 3. Done: removing the journal is the commit point; then the backups go.
  for (const d of new Set(entries.map((e) => path.dirname(e.target)))) fsyncDir(d);
  fs.rmSync(journal, { force: true });
  fsyncDir(plan.root);
  for (const e of entries) if (e.backup) fs.rmSync(e.backup, { force: true });
  removeEmptyDirsOfDeletes(plan);
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function rollBack(entries: JournalEntry[], createdDirs: string[]): void {
  for (const e of [...entries].reverse()) {
    const backupThere = e.backup && (fs.existsSync(e.backup) || isLink(e.backup));
    if (backupThere) {
      fs.rmSync(e.target, { force: true });
      fs.renameSync(e.backup!, e.target);
    } else if (!e.backup && e.staged && !fs.existsSync(e.staged)) {
      // Created by this plan: remove it.
      fs.rmSync(e.target, { force: true });
    }
    if (e.staged) fs.rmSync(e.staged, { force: true });
  }
  for (const d of [...createdDirs].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      // not empty: keep it
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
 * Undo a write that was killed half-way (a journal is left behind). Returns true when something
 * was rolled back, so the caller can say so.
 */
export function recoverInterrupted(root: string): boolean {
  const journal = path.join(root, JOURNAL_FILE);
  let data: { entries: JournalEntry[]; createdDirs: string[] };
  try {
    data = JSON.parse(fs.readFileSync(journal, 'utf8')) as typeof data;
  } catch {
    return false;
  }
  rollBack(data.entries ?? [], data.createdDirs ?? []);
  fs.rmSync(journal, { force: true });
  return true;
}
