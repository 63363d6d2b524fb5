/**
 * Where the test suite finds each Ganeti release's own node code (the Python that
 * test/ganeti/harness.py drives):
 * - 3.0: Debian bookworm's `ganeti-3.0`, installed (/usr/share/ganeti/3.0).
 * - 3.1: installed (/usr/share/ganeti/3.1, a trixie node), else Debian trixie's `ganeti-3.1`
 *   (Architecture: all; its Python imports under bookworm's Python 3.11) fetched once per
 *   machine into a cache by test/ganeti/fetch-ganeti-code.sh (apt with a private configuration,
 *   `dpkg-deb -x`; never installed) from this node's own mirror (nodeMirror()), and reused.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GanetiRelease, releaseInfo } from '../../src/ganeti/releases';
import { nodeMirror } from '../../src/debian/apt-sources';
import { runSync } from '../../src/system/process';

export const GANETI_PYTHON = '/usr/bin/python3';
export const FETCH_SCRIPT = path.join(__dirname, '..', 'ganeti', 'fetch-ganeti-code.sh');
/** root's cache, which an ordinary user reads too before fetching into their own. */
export const ROOT_CACHE = '/var/cache/ganeti-os/ganeti-code';

/**
 * The cache a user fetches into: root's /var/cache/ganeti-os/ganeti-code, an ordinary user's
 * $XDG_CACHE_HOME/ganeti-os/ganeti-code (default ~/.cache).
 */
export function ganetiCodeCache(uid = process.getuid?.() ?? 0, env: NodeJS.ProcessEnv = process.env): string {
  if (uid === 0) return ROOT_CACHE;
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'ganeti-os', 'ganeti-code');
}

export type GanetiCode = { ok: true; pythonPath: string; version: string; fetched: boolean } | { ok: false; missing: string };

const backendIn = (pythonPath: string) => path.join(pythonPath, 'ganeti', 'backend.py');

/** The code of `release` already on this machine (installed, or in a readable cache), else undefined. */
export function presentCode(release: GanetiRelease, caches = [ganetiCodeCache(), ROOT_CACHE]): { pythonPath: string; version: string; tree?: string } | undefined {
  const installed = `/usr/share/ganeti/${release}`;
  if (fs.existsSync(backendIn(installed))) return { pythonPath: installed, version: 'installed' };
  const pkg = releaseInfo(release).pythonPackage;
  for (const cache of [...new Set(caches)]) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(cache).filter((n) => n.startsWith(`${pkg}_`)).sort();
    } catch {
      continue;
    }
    for (const n of names.reverse()) {
      const pythonPath = path.join(cache, n, 'usr/share/ganeti', release);
      if (fs.existsSync(backendIn(pythonPath))) return { pythonPath, version: n.slice(pkg.length + 1), tree: path.join(cache, n) };
    }
  }
  return undefined;
}

/**
 * Why Ganeti's backend does not import from the cached tree `root` under GANETI_PYTHON (its
 * Python dependencies missing), else undefined; a success is remembered in the tree.
 */
function importError(root: string, pythonPath: string): string | undefined {
  const marker = path.join(root, '.imports-here');
  if (fs.existsSync(marker)) return undefined;
  const r = runSync([GANETI_PYTHON, '-c', 'from ganeti import backend'], { env: { PATH: '/usr/bin:/bin', PYTHONPATH: pythonPath }, stdin: 'pipe' });
  if (r.status !== 0) return (r.stderr || String(r.error)).trim().split('\n').pop();
  try {
    fs.writeFileSync(marker, `${GANETI_PYTHON} imports ganeti.backend from here\n`);
  } catch {
    // a cache this user only reads: check again next time
  }
  return undefined;
}

const memo = new Map<GanetiRelease, GanetiCode>();

/** Where to look and fetch (for tests of this module; the defaults are the machine's). */
export interface CodePlaces {
  /** The cache to fetch into (default ganetiCodeCache()). */
  cache?: string;
  /** Caches to look in first (default: that cache, then root's). */
  caches?: string[];
  /** The apt configuration the mirror is read from (default /etc/apt). */
  aptEtc?: string;
}

/**
 * The Python code of Ganeti `release` for the harness: its PYTHONPATH, or why it cannot be had
 * (not installed, no mirror in this node's apt sources, the download failing, ...). 3.1 is
 * fetched when absent; a fetch costs a few seconds once per machine. Answers for the machine's
 * places are remembered for the process.
 */
export function ganetiCode(release: GanetiRelease, places?: CodePlaces): GanetiCode {
  if (places) return findOrFetch(release, places);
  const known = memo.get(release);
  if (known) return known;
  const answer = findOrFetch(release, {});
  memo.set(release, answer);
  return answer;
}

function findOrFetch(release: GanetiRelease, places: CodePlaces): GanetiCode {
  const info = releaseInfo(release);
  const cache = places.cache ?? ganetiCodeCache();
  const caches = places.caches ?? [cache, ROOT_CACHE];
  if (!fs.existsSync(GANETI_PYTHON)) return { ok: false, missing: `${GANETI_PYTHON} (Debian's Python, which Ganeti ${release}'s code runs under)` };
  let found = presentCode(release, caches);
  let fetched = false;
  if (!found && release === '3.0') return { ok: false, missing: `Debian package ${info.pythonPackage} (/usr/share/ganeti/3.0/ganeti)` };
  if (!found) {
    const mirror = nodeMirror(places.aptEtc);
    const what = `Ganeti ${release}'s code (Debian ${info.debianSuite}'s ${info.pythonPackage}, fetched into ${cache})`;
    if (!mirror) return { ok: false, missing: `${what}: this node's apt sources name no Debian mirror` };
    const r = runSync(['bash', FETCH_SCRIPT, cache, info.pythonPackage, info.debianSuite, mirror], { stdin: 'pipe', timeoutMs: 900_000, killSignal: 'SIGTERM' });
    if (r.status !== 0) return { ok: false, missing: `${what}: ${(r.stderr || String(r.error ?? (r.timedOut ? 'timed out' : `exit ${r.status}`))).trim()}` };
    found = presentCode(release, [cache]);
    if (!found) return { ok: false, missing: `${what}: the fetch said ${r.stdout.trim()}, where no ganeti/backend.py is` };
    fetched = true;
  }
  // An installed package has its dependencies; a cached one borrows them from the host.
  const bad = found.tree ? importError(found.tree, found.pythonPath) : undefined;
  if (bad) return { ok: false, missing: `Ganeti ${release}'s code in ${found.pythonPath} does not import under ${GANETI_PYTHON} (${bad}): its Python dependencies come with Debian's ganeti-3.0` };
  return { ok: true, pythonPath: found.pythonPath, version: found.version, fetched };
}
