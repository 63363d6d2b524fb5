/**
 * `.ganeti-os-package.json`: the releases of a definition's .deb, kept in the definition itself
 * so that the version comes from the definition. Each release records the digest of everything
 * that decides the package's bytes (files, modes, relations, maintainer) except its version and
 * date, so a changed definition can never be packed again under an old version, and an unchanged
 * one is rebuilt byte for byte (its date is the SOURCE_DATE_EPOCH of every rebuild).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, errorMessage } from '../errors';
import { ownerTag, removeDeadLeftovers } from '../definition/lock';

export const RELEASE_FILE = '.ganeti-os-package.json';
const RELEASE_SCHEMA = 1;

export interface Release {
  version: string;
  /** Seconds since the epoch: the changelog date and every file's mtime in the .deb. */
  date: number;
  /** sha256 of the package's inputs (see build.ts: packageDigest). */
  digest: string;
  maintainer: string;
  /** Path in the definition -> "<mode> <sha256>" (or "link <target>"): to say what changed. */
  files: Record<string, string>;
  changes: string[];
}

export interface ReleaseRecord {
  schema: number;
  package: string;
  /** Newest first. */
  releases: Release[];
}

/** The record in `dir`, or undefined when the definition was never packed. Throws on a corrupt one. */
export function readReleases(dir: string): ReleaseRecord | undefined {
  const file = path.join(dir, RELEASE_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const r = JSON.parse(text) as ReleaseRecord;
    if (r.schema !== RELEASE_SCHEMA || !Array.isArray(r.releases) || r.releases.some((x) => typeof x.version !== 'string' || typeof x.digest !== 'string' || typeof x.date !== 'number')) {
      throw new Error('unexpected content');
    }
    return r;
  } catch (err) {
    throw new UserError(`${file} is not a release record ganeti-os understands (${(err as Error).message})`, [
      'it lists the versions packed so far; restore it from version control rather than deleting it (versions must keep increasing)',
    ]);
  }
}

/** Writes the record atomically (temporary file, then rename). */
export function writeReleases(dir: string, record: ReleaseRecord): void {
  commitReleases(dir, stageReleases(dir, record));
}

/** The owner tag in the name of a record being written (`.ganeti-os-package.json.tmp-<tag>`) or kept aside (`.old-<tag>`). */
function recordOwner(name: string): string | undefined {
  const prefix = `${RELEASE_FILE}.`;
  if (!name.startsWith(prefix)) return undefined;
  const m = /^(?:tmp|old)-(.+)$/.exec(name.slice(prefix.length));
  return m?.[1];
}

/**
 * Remove the temporary records in definition `dir` that a killed pack left (their owner gone,
 * as a stale lock's: see lock.ts); call it holding the definition's lock. Returns the paths
 * removed and those that could not be (never throws).
 */
export function removeDeadRecords(dir: string): { removed: string[]; failed: string[] } {
  return removeDeadLeftovers(dir, recordOwner);
}

/**
 * The record written in full beside its place (`<file>.tmp-<owner tag>`), synced: returns that
 * file, for commitReleases. Removes it again and throws a UserError naming the file and the
 * cause when it cannot be written (ENOSPC, EIO, ...).
 */
export function stageReleases(dir: string, record: ReleaseRecord): string {
  const file = path.join(dir, RELEASE_FILE);
  const tmp = `${file}.tmp-${ownerTag()}`;
  try {
    fs.rmSync(tmp, { force: true });
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeSync(fd, JSON.stringify({ ...record, schema: RELEASE_SCHEMA }, null, 2) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // a record left half-written is removed by the next pack (its owner, this process, is gone by then)
    }
    throw new UserError(`cannot write the release record ${file}: ${errorMessage(err)}; nothing was written`);
  }
  return tmp;
}

/** Move a record staged by stageReleases into place. */
export function commitReleases(dir: string, tmp: string): void {
  fs.renameSync(tmp, path.join(dir, RELEASE_FILE));
}

/**
 * What changed between two releases, as changelog lines: the files (maps of path -> mode and
 * sha256), and, when given, the maintainer (`[before, after]`) and whether anything else of the
 * packaging changed (`packaging`: Depends, Suggests, conffiles). "Rebuilt" only when none did.
 */
export function describeChanges(
  before: Record<string, string>,
  after: Record<string, string>,
  other: { maintainer?: [string, string]; packaging?: boolean } = {},
): string[] {
  const added = Object.keys(after).filter((k) => !(k in before)).sort();
  const removed = Object.keys(before).filter((k) => !(k in after)).sort();
  const changed = Object.keys(after).filter((k) => k in before && before[k] !== after[k]).sort();
  const out: string[] = [];
  if (changed.length) out.push(`Changed: ${changed.join(', ')}.`);
  if (added.length) out.push(`Added: ${added.join(', ')}.`);
  if (removed.length) out.push(`Removed: ${removed.join(', ')}.`);
  const [was, now] = other.maintainer ?? ['', ''];
  if (was !== now) out.push(`Maintainer: changed from ${was} to ${now}.`);
  if (!out.length && other.packaging) out.push('Packaging changed: Depends, Suggests or conffiles (no file of the definition changed).');
  if (!out.length) out.push('Rebuilt: no file of the definition changed (packaging only).');
  return out;
}
