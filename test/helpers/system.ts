/**
 * Gates for tests that need root or Debian packages. On a fresh machine they skip, loudly,
 * naming what is missing; with GANETI_OS_SYSTEM_TESTS=required (CI) a missing piece fails.
 */
import * as fs from 'node:fs';
import { GANETI_RELEASES, GanetiRelease } from '../../src/ganeti/releases';
import { runSync } from '../../src/system/process';
import { GANETI_PYTHON, ganetiCode } from './ganeti-code';

export const REQUIRED = process.env.GANETI_OS_SYSTEM_TESTS === 'required';

/**
 * The long matrix (every template on every Ganeti release, every firmware, burnin...) runs with
 * GANETI_OS_MATRIX=full (`npm run test:matrix`); `npm test` and CI run the cases marked for them,
 * so CI stays inside its time budget.
 */
export const FULL_MATRIX = process.env.GANETI_OS_MATRIX === 'full';

/** `all` with the full matrix, else only the cases `inCi` keeps. */
export function matrixCases<T>(all: readonly T[], inCi: (c: T) => boolean): T[] {
  return FULL_MATRIX ? [...all] : all.filter(inCi);
}

const which = (cmd: string): boolean => runSync(['sh', '-c', `command -v "$1" >/dev/null 2>&1`, 'sh', cmd], { stdin: 'pipe' }).status === 0;

/** Where Debian keeps the administrator's tools (losetup, sfdisk, mkfs.*): on root's PATH, not a user's. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export { GANETI_PYTHON };

/**
 * PYTHONPATH of Ganeti `release`'s own code (test/helpers/ganeti-code.ts: 3.0 installed, 3.1
 * installed or fetched into a cache). Throws naming what is missing: gate the test with
 * describeSystem's `ganeti` need.
 */
export function ganetiPythonPath(release: GanetiRelease = '3.0'): string {
  const code = ganetiCode(release);
  if (!code.ok) throw new Error(`no Ganeti ${release} code: ${code.missing}`);
  return code.pythonPath;
}

export interface Need {
  root?: boolean;
  /** Ganeti's Python code: true for 3.0 (installed), or the release. */
  ganeti?: boolean | GanetiRelease;
  commands?: string[];
  /** Files a Debian package installs (e.g. OVMF's firmware from ovmf). */
  files?: string[];
}

/**
 * What of `need` is missing on this machine (empty when everything is there): 'root', the
 * Ganeti package, or `command X`. A command found only in Debian's sbin directories (sfdisk,
 * losetup, mkfs.ext4 are root's tools there) counts as needing root, not as missing, for a user.
 */
export function missing(need: Need): string[] {
  const out: string[] = [];
  const user = process.getuid?.() !== 0;
  let root = !!need.root && user;
  if (need.ganeti) {
    const code = ganetiCode(need.ganeti === true ? '3.0' : need.ganeti);
    if (!code.ok) out.push(code.missing);
  }
  for (const c of need.commands ?? []) {
    if (which(c)) continue;
    if (user && SBIN.some((d) => fs.existsSync(`${d}/${c}`))) root = true;
    else out.push(`command ${c}`);
  }
  for (const f of need.files ?? []) if (!fs.existsSync(f)) out.push(`file ${f}`);
  return root ? ['root', ...out] : out;
}

/** "needs root; missing command mmdebstrap": why a block cannot run here, in one line. */
export function skipReason(lack: string[]): string {
  const rest = lack.filter((l) => l !== 'root');
  return [lack.includes('root') ? 'needs root' : '', rest.length ? `missing ${rest.join(', ')}` : ''].filter(Boolean).join('; ');
}

/**
 * Where describeSystem records the blocks it skipped, one JSON line each ({file, block, reason});
 * test/helpers/summary-reporter.js names the file and lists them once at the end of the run.
 */
const SKIP_LOG = process.env.GANETI_OS_SKIP_LOG;

function recordSkip(block: string, reason: string): void {
  if (!SKIP_LOG) return;
  const file = (expect.getState().testPath as string | undefined) ?? '';
  fs.appendFileSync(SKIP_LOG, JSON.stringify({ file, block, reason }) + '\n');
}

/**
 * `describe` when everything needed is present; otherwise a skipped block (or, when system tests
 * are required, a failing test) that names what is missing.
 */
export function describeSystem(name: string, need: Need, fn: () => void): void {
  const lack = missing(need);
  if (!lack.length) {
    describe(name, fn);
    return;
  }
  const why = skipReason(lack);
  if (REQUIRED) {
    describe(name, () => {
      it('has what it needs (GANETI_OS_SYSTEM_TESTS=required)', () => {
        throw new Error(`${name}: ${why}`);
      });
    });
    return;
  }
  recordSkip(name, why);
  describe.skip(name, fn);
}

/**
 * One describeSystem block per supported Ganeti release (oldest first), each needing that
 * release's own code: `fn(release)` declares the tests that hold ganeti-os to it. The block is
 * named "NAME (Ganeti 3.1)"; a release whose code cannot be had skips (or fails, when
 * required) naming why.
 */
export function describeReleases(name: string, need: Omit<Need, 'ganeti'>, fn: (release: GanetiRelease) => void): void {
  for (const { release } of GANETI_RELEASES) describeSystem(`${name} (Ganeti ${release})`, { ...need, ganeti: release }, () => fn(release));
}
