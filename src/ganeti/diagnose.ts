/**
 * backend.DiagnoseOS as Ganeti computes it, 3.0 and 3.1 alike (utils.ListVisibleFiles +
 * _TryOSFromDisk for every entry of every search directory), which entries an earlier directory hides, and the text
 * `gnt-os diagnose` (client/gnt_os.py) prints from it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OS_API_V15, OS_API_V20 } from './rules';
import { isDir, tryOsFromDisk } from './loader';
import { pyFsDecode } from './pyfmt';

export interface DiagnoseEntry {
  name: string;
  /** PathJoin(search dir, name), as Ganeti reports it. */
  path: string;
  searchDir: string;
  valid: boolean;
  /** Ganeti's diagnose message ("" when valid). */
  diagnose: string;
  variants: string[];
  parameters: string[][];
  apiVersions: number[];
  trusted: boolean;
  /** Path of the entry of the same name in an earlier search directory that hides this one. */
  hiddenBy: string | null;
  /** Set when Ganeti raises on this entry instead of answering. */
  crash: string | null;
}

/** One row of backend.DiagnoseOS: (name, path, status, diagnose, variants, parameters, api_versions, trusted). */
export type DiagnoseRow = [string, string, boolean, string, string[], string[][], number[], boolean];

export interface DiagnoseReport {
  node: string;
  searchPath: string[];
  /** Search directories DiagnoseOS skips (absent or not directories) or could not list. */
  skipped: { dir: string; reason: string }[];
  entries: DiagnoseEntry[];
  /** What backend.DiagnoseOS returns; null when it raises (see crash). */
  diagnoseOS: DiagnoseRow[] | null;
  /** The exception that aborts the node's whole OS scan, if any. */
  crash: { type: string; message: string; path: string; file: string | null } | null;
}

/** os.path.ismount(). */
function isMount(p: string): boolean {
  try {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return false;
    const parent = fs.lstatSync(path.join(p, '..'));
    return st.dev !== parent.dev || st.ino === parent.ino;
  } catch {
    return false;
  }
}

/** utils.ListVisibleFiles: os.listdir order, dot-files hidden, lost+found hidden on mount points. */
export function listVisibleFiles(dir: string): string[] {
  const mountpoint = isMount(dir);
  const names: string[] = [];
  const d = fs.opendirSync(dir, { encoding: 'buffer' } as unknown as fs.OpenDirOptions);
  try {
    for (;;) {
      const e = d.readSync();
      if (!e) break;
      names.push(pyFsDecode(e.name as unknown as Buffer));
    }
  } finally {
    d.closeSync();
  }
  return names.filter((n) => !(n.startsWith('.') || (mountpoint && n === 'lost+found' && isDir(path.join(dir, n)))));
}

export function diagnoseOs(dirs: string[]): DiagnoseReport {
  const entries: DiagnoseEntry[] = [];
  const skipped: { dir: string; reason: string }[] = [];
  let crash: DiagnoseReport['crash'] = null;
  const first = new Map<string, string>();
  for (const dir of dirs) {
    if (!isDir(dir)) {
      skipped.push({ dir, reason: fs.existsSync(dir) ? 'not a directory, skipped' : 'absent, skipped' });
      continue;
    }
    let names: string[];
    try {
      names = listVisibleFiles(dir);
    } catch (err) {
      // DiagnoseOS logs "Can't list the OS directory" and stops scanning.
      skipped.push({ dir, reason: `cannot be listed (${(err as NodeJS.ErrnoException).code ?? err}); Ganeti stops scanning here` });
      break;
    }
    for (const name of names) {
      const r = tryOsFromDisk(`${dir}/${name}`, { baseDir: dir, name });
      const entry: DiagnoseEntry = {
        name,
        // utils.PathJoin = os.path.join (no doubled '/' after a root search directory)
        path: dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`,
        searchDir: dir,
        valid: r.verdict.valid,
        diagnose: r.verdict.valid ? '' : (r.verdict.error ?? ''),
        variants: r.verdict.valid ? r.variants : [],
        parameters: r.verdict.valid ? r.parameterFields : [],
        apiVersions: r.verdict.valid ? (r.apiVersions ?? []) : [],
        trusted: r.verdict.valid ? r.trusted : true,
        hiddenBy: first.get(name) ?? null,
        crash: r.verdict.crash ?? null,
      };
      if (!first.has(name)) first.set(name, entry.path);
      if (r.verdict.crash && !crash) crash = { type: r.verdict.crash, message: r.verdict.error ?? '', path: entry.path, file: r.verdict.crashFile ?? null };
      entries.push(entry);
    }
  }
  const diagnoseOS: DiagnoseRow[] | null = crash
    ? null
    : entries.map((e) => [e.name, e.path, e.valid, e.diagnose, e.variants, e.parameters, e.apiVersions, e.trusted]);
  return { node: os.hostname(), searchPath: dirs, skipped, entries, diagnoseOS, crash };
}

type NiceAtom = null | bigint | string;

/** utils.NiceSortKey: 8 groups of Unicode digits or non-digits (absent: None), then the rest. */
function niceKey(s: string): NiceAtom[] {
  const g = String.raw`(\P{Nd}+|\p{Nd}+)?`;
  const m = new RegExp(`^${g.repeat(8)}([^\\n]*)$`, 'u').exec(s) ?? new RegExp(`^${g.repeat(8)}([\\s\\S]*)$`, 'u').exec(s)!;
  // _NiceSortGetKey: a group that isdigit() becomes an int (every \d+ group does).
  return m.slice(1).map((x) => (x === undefined ? null : x !== '' && /^\p{Nd}+$/u.test(x) ? BigInt(Array.from(x, (c) => String(pyDigit(c))).join('')) : x));
}

/** The value of one Unicode decimal digit (Nd characters come in runs of ten, 0 to 9). */
function pyDigit(c: string): number {
  let cp = c.codePointAt(0)!;
  let n = 0;
  while (n < 9 && /\p{Nd}/u.test(String.fromCodePoint(cp - 1))) {
    cp--;
    n++;
  }
  return n;
}

/** Python's str comparison: by code point (JavaScript's < compares UTF-16 units). */
function pyStrCompare(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d) return d < 0 ? -1 : 1;
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

/** _NiceSortAtom's order: None below everything, numbers below strings. */
function atomCompare(x: NiceAtom, y: NiceAtom): number {
  if (x === y) return 0;
  if (x === null) return -1;
  if (y === null) return 1;
  if (typeof x === 'bigint' && typeof y === 'bigint') return x < y ? -1 : x > y ? 1 : 0;
  if (typeof x === 'bigint') return -1;
  if (typeof y === 'bigint') return 1;
  return pyStrCompare(x, y);
}

/** utils.NiceSort's order ("a2" before "a10"), as sorted() with NiceSortKey compares. */
export function niceCompare(a: string, b: string): number {
  const ka = niceKey(a);
  const kb = niceKey(b);
  for (let i = 0; i < ka.length; i++) {
    const c = atomCompare(ka[i], kb[i]);
    if (c) return c;
  }
  return 0;
}

/** utils.NiceSort (a stable sort, as Python's sorted()). */
export function niceSort(values: readonly string[]): string[] {
  return [...values].sort(niceCompare);
}

const commaJoin = (xs: readonly unknown[]) => xs.map(String).join(', ');
const osStatus = (valid: boolean, diagnose: string) => (valid ? 'valid' : `invalid - ${diagnose}`);

/** The text `gnt-os diagnose` prints (client/gnt_os.py DiagnoseOS) for a one-node cluster. */
export function formatLikeGntOs(report: DiagnoseReport): string {
  const lines: string[] = [];
  if (report.crash) {
    lines.push(
      `Node: ${report.node}: Ganeti's OS scan raises ${report.crash.type} reading ${report.crash.file ?? report.crash.path}: ${report.crash.message}`,
      '  gnt-os diagnose gets no OS list from this node: every OS on it is missing until the file is fixed.',
      '  What is on disk, entry by entry:',
      '',
    );
  }
  const byName = new Map<string, DiagnoseEntry[]>();
  for (const e of report.entries) {
    if (!byName.has(e.name)) byName.set(e.name, []);
    byName.get(e.name)!.push(e);
  }
  for (const name of [...byName.keys()].sort(niceCompare)) {
    const [fo, ...hidden] = byName.get(name)!;
    let msg = `${osStatus(fo.valid, fo.diagnose)} (path: ${fo.path})`;
    const maxApi = fo.apiVersions.length ? Math.max(...fo.apiVersions) : 0;
    msg += fo.apiVersions.length ? ` [API versions: ${commaJoin(fo.apiVersions)}]` : ' [no API versions declared]';
    if (maxApi >= OS_API_V15) msg += fo.variants.length ? ` [variants: ${commaJoin(fo.variants)}]` : ' [no variants]';
    if (maxApi >= OS_API_V20) {
      msg += fo.parameters.length ? ` [parameters: ${commaJoin(fo.parameters.map((p) => p[0]))}]` : ' [no parameters]';
    }
    msg += fo.trusted ? ' [trusted]' : ' [untrusted]';
    lines.push(`OS: ${name} [global status: ${fo.valid ? 'valid' : 'invalid'}]`);
    // The query's variants field is NiceSorted (query.py: _ConvWrap(utils.NiceSort, ...)); the
    // node's own list below keeps the file's order.
    if (fo.valid && fo.variants.length) lines.push(`  Variants: [${commaJoin(niceSort(fo.variants))}]`);
    lines.push(`  Node: ${report.node}, status: ${msg}`);
    for (const h of hidden) lines.push(`    [hidden] path: ${h.path}, status: ${osStatus(h.valid, h.diagnose)}`);
    lines.push('');
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}
