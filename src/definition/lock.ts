/**
 * One ganeti-os command at a time per definition: a lock file created with O_EXCL that holds
 * the owner's pid, host and process start time.
 *
 * Why not proper-lockfile: its staleness is an mtime refreshed by a timer, which the synchronous
 * writer starves, and after a kill every next command waits out the stale period (10 s by
 * default). Definitions live on the node's local disk, so the owner can be checked directly:
 * a lock whose process is gone (or whose pid now belongs to a process started later) is taken
 * over at once. Like flock(2), a dead holder never blocks anyone; unlike it, the lock works
 * from Node without a native module.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError, errorMessage } from '../errors';
import { startTime } from '../system/kernel';

/** The lock of a definition directory (hidden: Ganeti's OS scan and packaging skip it). */
export const LOCK_FILE = '.ganeti-os.lock';

export interface LockOptions {
  /** How long to wait for another command, in milliseconds (default 120 000). */
  timeoutMs?: number;
  /** Called once when the lock is held by another live process (its description). */
  onWait?: (owner: string) => void;
}

interface Owner {
  pid: number;
  host: string;
  start: string;
}

function parseOwner(text: string): Owner | undefined {
  const [pid, host, start] = text.trim().split(/\s+/);
  if (!/^\d+$/.test(pid ?? '') || !host) return undefined;
  return { pid: Number(pid), host, start: start ?? '' };
}

function describe(o: Owner | undefined): string {
  return o ? `pid ${o.pid} on ${o.host}` : 'a process that is just starting';
}

/** Whether the holder described by `text` (written at `mtimeMs`) is certainly gone. */
function isStale(text: string, mtimeMs: number): boolean {
  const o = parseOwner(text);
  // Created but not yet written: stale only if it stayed so (its creator died in between).
  if (!o) return Date.now() - mtimeMs > 10_000;
  return isGone(o);
}

/**
 * Whether process `o` is certainly gone: it ran on this host and no process has its pid, or the
 * pid now belongs to a process started at another time. A process of another host is never gone.
 */
function isGone(o: Owner): boolean {
  if (o.host !== os.hostname()) return false;
  try {
    process.kill(o.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  return o.start !== '' && startTime(o.pid) !== '' && startTime(o.pid) !== o.start;
}

/**
 * This process as a tag for the names of the working files it leaves beside others' files (a
 * staging directory, a temporary record): `<pid>_<start time>_<host>`, so that a later command
 * can tell whether the process that made one is gone (`isDeadOwnerTag`).
 */
export function ownerTag(): string {
  return `${process.pid}_${startTime(process.pid)}_${os.hostname()}`;
}

/**
 * Whether the process an `ownerTag()` names is certainly gone, by the rule that takes over a
 * stale lock (no such pid on this host, or a pid reused by a later process). False for a tag
 * that is not one (a working file of an older ganeti-os: whose it is cannot be told) and for a
 * process of another host.
 */
export function isDeadOwnerTag(tag: string): boolean {
  const m = /^(\d+)_(\d*)_(.+)$/.exec(tag);
  if (!m) return false;
  return isGone({ pid: Number(m[1]), start: m[2], host: m[3] });
}

/**
 * Remove the working files and directories in `dir` that a dead process left: every entry whose
 * name `owner` maps to an owner tag (undefined: not such a file) naming a process that is gone
 * (`isDeadOwnerTag`). What a live process (or another host's) is using is left alone.
 * Returns the paths removed and those that could not be, with the cause (never throws; a
 * directory that cannot be listed has nothing to remove).
 */
export function removeDeadLeftovers(dir: string, owner: (name: string) => string | undefined): { removed: string[]; failed: string[] } {
  const removed: string[] = [];
  const failed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return { removed, failed };
  }
  for (const n of names) {
    const tag = owner(n);
    if (tag === undefined || !isDeadOwnerTag(tag)) continue;
    const p = path.join(dir, n);
    try {
      fs.rmSync(p, { recursive: true, force: true });
      removed.push(p);
    } catch (err) {
      failed.push(`${p}: ${errorMessage(err)}`);
    }
  }
  return { removed, failed };
}

function tryRemove(p: string): void {
  for (let i = 0; i < 2; i++) {
    try {
      fs.rmSync(p, { force: true });
      return;
    } catch {
      // try once more: a transient error must not leave a lock behind
    }
  }
}

/** Remove a stale lock unless someone replaced it meanwhile (guarded by a short-lived breaker file). */
function breakStale(lockPath: string, seen: string): void {
  const breaker = `${lockPath}.break`;
  let fd: number;
  try {
    fd = fs.openSync(breaker, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another command is breaking it; a breaker left by a kill goes after a while.
    try {
      if (Date.now() - fs.statSync(breaker).mtimeMs > 10_000) tryRemove(breaker);
    } catch {
      // gone already
    }
    return;
  }
  try {
    fs.closeSync(fd);
    let now = '';
    try {
      now = readSmall(lockPath);
    } catch {
      return;
    }
    if (now === seen) fs.rmSync(lockPath, { force: true });
  } finally {
    tryRemove(breaker);
  }
}

/** What a non-regular file is, in words. */
function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** The first 4 KiB of a regular file opened without following a link and without blocking. */
function readSmall(p: string): string {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run `fn` holding the lock file `lockPath` (for `what`, named in messages). Waits while a live
 * process holds it (polling, up to `timeoutMs`); takes over a lock whose holder is gone.
 * Throws UserError when the lock cannot be created (ENOSPC, EACCES, ...) or the wait times out.
 * The lock is released however `fn` ends.
 */
export async function withLock<T>(lockPath: string, what: string, fn: () => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  const me = `${process.pid} ${os.hostname()} ${startTime(process.pid)}\n`;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let told = false;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(lockPath, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new UserError(`cannot lock ${what} (${lockPath}): ${errorMessage(err)}; nothing was changed`);
      }
    }
    if (fd !== undefined) {
      try {
        fs.writeSync(fd, me);
        fs.closeSync(fd);
      } catch (err) {
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
        tryRemove(lockPath);
        throw new UserError(`cannot lock ${what} (${lockPath}): ${errorMessage(err)}; nothing was changed`);
      }
      break;
    }
    let text = '';
    let mtimeMs = Date.now();
    try {
      // Only a regular file is a lock: never read a directory, a FIFO or a device (and spin on it).
      const st = fs.lstatSync(lockPath);
      if (!st.isFile()) {
        throw new UserError(`cannot lock ${what}: ${lockPath} is ${kindOf(st)}, not a lock file ganeti-os made; nothing was changed`, [
          `Remove it (if no ganeti-os command is running on ${what}), then run the command again.`,
        ]);
      }
      mtimeMs = st.mtimeMs;
      text = readSmall(lockPath);
    } catch (err) {
      if (err instanceof UserError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again at once
      throw new UserError(`cannot lock ${what}: cannot read the lock file ${lockPath}: ${errorMessage(err)}; nothing was changed`, [
        `Check its owner and mode, or remove it (if no ganeti-os command is running on ${what}), then run the command again.`,
      ]);
    }
    if (isStale(text, mtimeMs)) {
      try {
        breakStale(lockPath, text);
      } catch (err) {
        throw new UserError(`cannot take over the stale lock ${lockPath} of ${what}: ${errorMessage(err)}; nothing was changed`);
      }
      continue;
    }
    const owner = describe(parseOwner(text));
    if (Date.now() > deadline) {
      throw new UserError(`another ganeti-os command (${owner}) is still changing ${what}; nothing was changed`, [
        `Run again when it has finished. If no such process runs, remove ${lockPath}.`,
      ]);
    }
    if (!told) {
      opts.onWait?.(owner);
      told = true;
    }
    await sleep(50 + Math.floor(Math.random() * 100));
  }
  try {
    return await fn();
  } finally {
    let mine = false;
    try {
      mine = readSmall(lockPath) === me;
    } catch {
      mine = true;
    }
    if (mine) tryRemove(lockPath);
  }
}

/**
 * Run `fn` holding every lock in `lockPaths` (duplicates dropped), taken in one global order
 * (sorted) so that two commands wanting overlapping sets never wait for each other in a circle.
 */
export async function withLocks<T>(lockPaths: string[], what: string, fn: () => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
  const sorted = [...new Set(lockPaths)].sort();
  const take = (i: number): Promise<T> => (i === sorted.length ? Promise.resolve(fn()) : withLock(sorted[i], what, () => take(i + 1), opts));
  return take(0);
}

/**
 * The locks a command changing definition `root` takes: its own, and the lock of every directory
 * outside it that holds a file it may write through a symlink (a variants.list shared by several
 * definitions, the variants/ beside it). The writer writes the file the link points to, so the
 * lock must cover that file: two definitions sharing one take the same lock there. When the
 * shared file lies in another definition, that is the other definition's own lock.
 */
export function definitionLocks(root: string): string[] {
  const own = path.join(root, LOCK_FILE);
  const out = [own];
  let realRoot: string;
  try {
    realRoot = fs.realpathSync(root);
  } catch {
    return out;
  }
  const inside = (p: string) => p === realRoot || p.startsWith(realRoot + path.sep);
  const consider = (abs: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return;
    }
    if (!st.isSymbolicLink()) return;
    let real: string;
    try {
      real = fs.realpathSync(abs);
    } catch {
      return; // dangling: nothing is written through it
    }
    if (inside(real)) return;
    let isDir = false;
    try {
      isDir = fs.statSync(real).isDirectory();
    } catch {
      return;
    }
    // A linked directory (variants/ -> elsewhere) is locked at itself; a linked file at its directory.
    out.push(path.join(isDir ? real : path.dirname(real), LOCK_FILE));
  };
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const e of list(root)) consider(path.join(root, e));
  for (const e of list(path.join(root, 'variants'))) consider(path.join(root, 'variants', e));
  return [...new Set(out)];
}
