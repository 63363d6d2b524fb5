/**
 * Shared pieces of the upgrade tests: fixtures written by ganeti-os at the commit this work
 * started from (test/fixtures/upgrade/COMMIT, rebuilt by make-fixtures.sh), "ageing" a file
 * (making the definition look written by an older template whose output was different), and
 * git merge-file as the oracle of every merge.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runUpgrade } from '../../src/commands/upgrade';
import { PROVENANCE_FILE, Provenance } from '../../src/definition/provenance';
import { read, runCommand, tempDir } from './cli';

export { read };

export const FIXTURES = path.join(__dirname, '..', 'fixtures', 'upgrade');
export const FIXTURE_COMMIT = fs.readFileSync(path.join(FIXTURES, 'COMMIT'), 'utf8').trim();

export const sha = (s: string | Buffer) => crypto.createHash('sha256').update(s).digest('hex');
export const modeOf = (p: string) => fs.statSync(p).mode & 0o777;

/** The fixtures written by the 2026-11-25 release (test/fixtures/upgrade-release, make-fixtures.sh there). */
export const RELEASE_FIXTURES = path.join(__dirname, '..', 'fixtures', 'upgrade-release');

/** A copy of fixture `set` (blank, blank-maint, debian, debian-maint; of `root`) in a new temp dir: its definition's path. */
export function fixture(set: string, root = FIXTURES): { dir: string; work: string } {
  const src = path.join(root, set);
  const [osName] = fs.readdirSync(src);
  const work = tempDir('upgrade');
  fs.cpSync(path.join(src, osName), path.join(work, osName), { recursive: true, preserveTimestamps: true });
  return { dir: path.join(work, osName), work };
}

export function provenance(dir: string): Provenance {
  return JSON.parse(read(path.join(dir, PROVENANCE_FILE))) as Provenance;
}

export function writeProvenance(dir: string, p: Provenance): void {
  fs.writeFileSync(path.join(dir, PROVENANCE_FILE), JSON.stringify(p, null, 2) + '\n');
}

/**
 * Make `rel` look written by an older template: its text on disk becomes `transform(text)`, and
 * the record (hash, and base when recorded) says ganeti-os wrote exactly that.
 */
export function age(dir: string, rel: string, transform: (text: string) => string, mode?: number): string {
  const abs = path.join(dir, rel);
  const old = transform(read(abs));
  fs.writeFileSync(abs, old);
  const p = provenance(dir);
  p.files[rel] = { ...p.files[rel], sha256: sha(old), ...(mode !== undefined ? { mode: '0' + mode.toString(8) } : {}) };
  if (mode !== undefined) fs.chmodSync(abs, mode);
  if (p.base) p.base[rel] = old;
  writeProvenance(dir, p);
  return old;
}

/** Replace line `n` (0-based) of a text. */
export const setLine = (n: number, line: string) => (text: string) => {
  const lines = text.split('\n');
  lines[n] = line;
  return lines.join('\n');
};

/** Add a file the definition records as ganeti-os's (a file an older template had). */
export function recordExtra(dir: string, rel: string, text: string, edited?: string): void {
  const abs = path.join(dir, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, edited ?? text, { mode: 0o644 });
  const p = provenance(dir);
  p.files[rel] = { sha256: sha(text), mode: '0644', owner: 'tool' };
  if (p.base) p.base[rel] = text;
  writeProvenance(dir, p);
}

export async function upgrade(dir: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return runCommand(runUpgrade, dir, { dryRun: args.includes('--dry-run'), json: args.includes('--json') });
}

/** git merge-file -p --diff3 on the same three texts and labels: the oracle of our merge. */
export function gitMerge(current: string, base: string, next: string, labels: [string, string, string]): { text: string; conflicts: number } {
  const d = tempDir('merge');
  try {
    for (const [n, t] of [['current', current], ['base', base], ['next', next]]) fs.writeFileSync(path.join(d, n), t);
    const r = spawnSync('git', ['merge-file', '-p', '--diff3', '-L', labels[0], '-L', labels[1], '-L', labels[2], 'current', 'base', 'next'], { cwd: d, encoding: 'utf8' });
    if (r.status === null || r.status < 0 || r.status > 127) throw new Error(`git merge-file failed: ${r.stderr}`);
    return { text: r.stdout, conflicts: r.status };
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}
