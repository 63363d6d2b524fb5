/**
 * What an OS definition's shell code reads, found by reading it (never by running it): the files
 * its scripts source, where it keeps per-variant configuration, and which OS_API_VERSION values
 * it accepts. Works for definitions ganeti-os did not write (ganeti-instance-debootstrap's
 * common.sh, instance-image, ...); whatever cannot be told for sure is left out, so findings
 * built on it are never false alarms.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OS_SCRIPTS, effectiveApiVersion } from '../ganeti/rules';

/** A shell file of the definition: its name inside the directory and its text. */
export interface ShellText {
  rel: string;
  text: string;
}

const MAX_SHELL_BYTES = 256 * 1024;

/**
 * What one pass over a definition has read (readingOnce): each file read once, each text split
 * into lines once, the scripts' sources followed once, however many checks ask. Only for the
 * length of that pass: nothing is kept between passes or runs.
 */
interface Reading {
  small: Map<string, string | undefined>;
  head: Map<string, string | undefined>;
  texts: Map<string, ShellText[]>;
  sourced: Map<string, SourcedFile[]>;
  lines: Map<string, string[]>;
}

let reading: Reading | undefined;

/**
 * Run `fn` (a set of checks over definitions that do not change meanwhile) reading each file
 * once: readHead, shellTexts, sourcedFiles and the line splitting answer from what the pass
 * has already read. Nested calls join the outer pass; afterwards everything is dropped.
 */
export function readingOnce<T>(fn: () => T): T {
  if (reading) return fn();
  reading = { small: new Map(), head: new Map(), texts: new Map(), sourced: new Map(), lines: new Map() };
  try {
    return fn();
  } finally {
    reading = undefined;
  }
}

/** `map`'s value for `key`, made by `make` once per pass (every time outside one). */
function once<V>(map: Map<string, V> | undefined, key: string, make: () => V): V {
  if (!map) return make();
  if (map.has(key)) return map.get(key) as V;
  const v = make();
  map.set(key, v);
  return v;
}

/** Whether `p` is a regular file (after links). */
export function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Whether `p` is a regular file (after links) that this user may execute. */
export function isExecutableFile(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function readSmall(p: string): string | undefined {
  return once(reading?.small, p, () => readSmallNow(p));
}

function readSmallNow(p: string): string | undefined {
  try {
    const st = fs.statSync(p);
    if (!st.isFile() || st.size > MAX_SHELL_BYTES) return undefined;
    return fs.readFileSync(p, 'latin1');
  } catch {
    return undefined;
  }
}

/**
 * The first 4 KiB of a file as latin1 (a `#!` line, a byte-order mark), opened without
 * blocking (a FIFO yields nothing); undefined when it cannot be read.
 */
export function readHead(p: string): string | undefined {
  return once(reading?.head, p, () => readHeadNow(p));
}

function readHeadNow(p: string): string | undefined {
  try {
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const buf = Buffer.alloc(4096);
      return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** How walkFiles goes through a definition directory. */
export interface WalkOptions {
  /** How many directory levels below `dir` are entered (default: all). */
  maxDepth?: number;
  /** Visit names starting with '.', and enter such directories (default: no). */
  hidden?: boolean;
  /** Enter directories that are symbolic links (default: no). */
  followLinkedDirs?: boolean;
}

/**
 * Every entry below `dir` that is not a directory, depth-first in name order, as its path
 * relative to `dir` and its stat (links followed). The one directory walk of validate's file
 * checks. Entries and directories that cannot be read are passed over; throws nothing.
 */
export function walkFiles(dir: string, opts: WalkOptions, visit: (rel: string, st: fs.Stats) => void): void {
  const maxDepth = opts.maxDepth ?? Infinity;
  const walk = (sub: string, depth: number) => {
    const base = path.join(dir, sub);
    let names: string[];
    try {
      names = fs.readdirSync(base).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (!opts.hidden && n.startsWith('.')) continue;
      const rel = sub ? `${sub}/${n}` : n;
      // path.join(dir, rel), without normalising the directory's path again for every name.
      const abs = base === '.' || base === './' ? n : base.endsWith('/') ? base + n : `${base}/${n}`;
      let st: fs.Stats;
      try {
        st = fs.statSync(abs);
      } catch {
        continue;
      }
      if (!st.isDirectory()) visit(rel, st);
      else if (depth < maxDepth && (opts.followLinkedDirs || !isSymlink(abs))) walk(rel, depth + 1);
    }
  };
  walk('', 0);
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Which shell runs a script, from its `#!` line: 'bash', 'sh', or undefined (not a shell script). */
export function shellOf(text: string): 'bash' | 'sh' | undefined {
  if (!text.startsWith('#!')) return undefined;
  const line = text.split('\n')[0].replace(/\r$/, '');
  const m = /^#!\s*(?:\S*\/env\s+(?:-\S+\s+)*)?\S*?\/?(bash|sh|dash|ksh|mksh)(?:\s|$)/.exec(line);
  if (!m) return undefined;
  return m[1] === 'bash' ? 'bash' : 'sh';
}

/** Lines with backslash-newline continuations joined, as the shell reads them. */
function logicalLines(text: string): readonly string[] {
  return once(reading?.lines, text, () => logicalLinesNow(text));
}

function logicalLinesNow(text: string): string[] {
  return text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
}

export interface SourcedFile {
  /** Path inside the definition directory. */
  rel: string;
  /** The file that sources it. */
  by: string;
  line: number;
  /** Guarded by a test (`[ -f x ] && . x`) or sourced through an "if present" helper. */
  optional: boolean;
}

/**
 * Absolute paths sourced on the node: `. /etc/default/x` or `. "$VAR"` where the shell code
 * assigns VAR one literal absolute path (debootstrap's DEFAULT_FILE). Only those that exist.
 */
export function nodeSourcedFiles(texts: ShellText[]): string[] {
  const assigned = new Map<string, Set<string>>();
  for (const { text } of texts) {
    for (const m of text.matchAll(/^\s*(?:export\s+|readonly\s+|local\s+)?([A-Za-z_]\w*)=["']?(\/[^"'\s$`;]+)["']?\s*$/gm)) {
      if (!assigned.has(m[1])) assigned.set(m[1], new Set());
      assigned.get(m[1])!.add(m[2]);
    }
  }
  const out = new Set<string>();
  for (const { text } of texts) {
    for (const line of logicalLines(text)) {
      const code = line.replace(/^\s*#.*$/, '');
      for (const m of code.matchAll(/(?:^|[;&|({]|\bthen|\bdo|\belse)\s*(?:\.|source)\s+("?)(\S+?)\1(?:\s|$|;)/g)) {
        const arg = m[2];
        let p: string | undefined;
        if (arg.startsWith('/') && !arg.includes('$')) p = arg;
        else {
          const v = /^\$\{?([A-Za-z_]\w*)\}?$/.exec(arg);
          const vals = v ? assigned.get(v[1]) : undefined;
          if (vals && vals.size === 1) p = [...vals][0];
        }
        if (p && isFile(p)) out.add(p);
      }
    }
  }
  return [...out];
}

/** The argument of a `.`/`source` command when it names a file of the definition itself. */
function ownPath(arg: string): string | undefined {
  const a = arg.trim();
  if (!a.includes('$')) {
    const lit = a.replace(/^["']|["']$/g, '').split(/\s/)[0];
    if (!lit || lit.startsWith('/')) return undefined;
    return path.posix.normalize(lit);
  }
  // "$GOS_DIR/lib/x.sh", "$(dirname "$0")/common.sh", "$(dirname "$(readlink -f "$0")")/lib/x.sh"
  if (!/GOS_DIR|dirname\b[^\n]*\$0|\$\{?0\}?\b|BASH_SOURCE/.test(a)) return undefined;
  const m = /\/((?:[\w.+-]+\/)*[\w.+-]+)["']?\s*(?:$|\|\||&&|;|#|\))/.exec(a.replace(/^.*[)}]\s*"?(?=\/)/, ''));
  if (!m || m[1].includes('$')) return undefined;
  return path.posix.normalize(m[1]);
}

/**
 * Files the definition's shell code sources from its own directory, following `.`/`source`
 * from the scripts through every file they reach. Names with variables in them (a variant's
 * configuration) are left out.
 */
export function sourcedFiles(dir: string): SourcedFile[] {
  return [...once(reading?.sourced, dir, () => sourcedFilesNow(dir))];
}

function sourcedFilesNow(dir: string): SourcedFile[] {
  const out: SourcedFile[] = [];
  const seen = new Set<string>();
  const queue = OS_SCRIPTS.filter((s) => isFile(path.join(dir, s)));
  for (const s of queue) seen.add(s);
  while (queue.length) {
    const rel = queue.shift()!;
    const text = readSmall(path.join(dir, rel));
    if (text === undefined) continue;
    logicalLines(text).forEach((line, i) => {
      const code = line.replace(/^\s*#.*$/, '');
      for (const m of code.matchAll(/(?:^|[;&|({]|\bthen|\bdo|\belse)\s*(?:\.|source)\s+(\S.*)$/g)) {
        const target = ownPath(m[1]);
        if (!target) continue;
        const optional = /\[\[?\s+-[efrs]\s|\btest\s+-[efrs]\s/.test(code);
        out.push({ rel: target, by: rel, line: i + 1, optional });
        if (!seen.has(target)) {
          seen.add(target);
          queue.push(target);
        }
      }
    });
  }
  return out;
}

/** The text of the shell files in an OS directory (scripts and *.sh, top level and lib/), small ones only. */
export function shellTexts(dir: string): ShellText[] {
  return [...once(reading?.texts, dir, () => shellTextsNow(dir))];
}

function shellTextsNow(dir: string): ShellText[] {
  const out: ShellText[] = [];
  for (const sub of ['', 'lib']) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(dir, sub)).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (!(OS_SCRIPTS.includes(n) || n.endsWith('.sh'))) continue;
      const rel = sub ? `${sub}/${n}` : n;
      const text = readSmall(path.join(dir, rel));
      if (text !== undefined) out.push({ rel, text });
    }
  }
  return out;
}

export interface VariantConfigSource {
  /**
   * The directory the scripts read variant files from (undefined: not known): absolute, or
   * relative to the OS directory when `relative` (Ganeti runs every script there, and scripts
   * find their own directory with dirname "$0").
   */
  dir?: string;
  /** File name extension including the dot ('.conf', '.rb'), or '' for none. */
  ext: string;
  /** `dir` is inside the definition (e.g. 'variants'). */
  relative?: boolean;
}

/** Variables the shell code sets to its own directory (`DIR=$(dirname "$0")`, ...). */
export function scriptDirVariables(texts: ShellText[]): Set<string> {
  const out = new Set(['GOS_DIR']);
  for (const { text } of texts) {
    for (const m of text.matchAll(/^\s*(?:export\s+|readonly\s+|local\s+)?([A-Za-z_]\w*)=["']?\$\((?:cd\s+["']?\$\()?\s*dirname\b[^\n]*(?:\$0|\$\{0\}|BASH_SOURCE)/gm)) out.add(m[1]);
    for (const m of text.matchAll(/^\s*(?:export\s+|readonly\s+|local\s+)?([A-Za-z_]\w*)=["']?\$\(\s*pwd\s*\)/gm)) out.add(m[1]);
  }
  return out;
}

/**
 * Where the shell code reads a variant's configuration: `$VARIANTS_DIR/$OS_VARIANT.conf` with a
 * `: ${VARIANTS_DIR:="/etc/..."}` default (ganeti-instance-debootstrap), a literal
 * `/dir/$OS_VARIANT.ext`, or a directory of the definition itself: `variants/$OS_VARIANT.rb`
 * (relative: Ganeti runs the scripts in the OS directory), `"$(dirname "$0")/variants/..."`,
 * `"$DIR/variants/..."` with DIR the script's directory. Undefined when the code reads none, or
 * several.
 */
export function variantConfigSource(texts: ShellText[]): VariantConfigSource | undefined {
  const defaults = new Set<string>();
  const reads = new Map<string, VariantConfigSource>();
  const own = scriptDirVariables(texts);
  for (const { text } of texts) {
    for (const m of text.matchAll(/\bVARIANTS_DIR:?=["']?(\/[^"'\s}]+)/g)) defaults.add(m[1].replace(/\/+$/, ''));
    for (const line of logicalLines(text)) {
      if (/^\s*#/.test(line)) continue;
      // The path written before $OS_VARIANT: everything back to a blank, a quote-free '=' or a '<'.
      for (const m of line.matchAll(/((?:[^\s=<>;|&]|\$\([^)]*\))*?)\/?\$\{?OS_VARIANT\}?(\.[A-Za-z0-9]+)?/g)) {
        const ext = m[2] ?? '';
        const prefix = m[1].replace(/["']/g, '');
        let found: VariantConfigSource | undefined;
        if (/^\$\{?VARIANTS_DIR\}?\/?$/.test(prefix)) found = { ext };
        else if (/^\/[^$`()]+\/?$/.test(prefix)) found = { dir: prefix.replace(/\/+$/, ''), ext };
        else {
          const rel = /^(?:\.\/)?([\w.+-]+(?:\/[\w.+-]+)*)\/?$/.exec(prefix);
          const viaDir = /^(?:\$\((?:[^()]|\([^()]*\))*\)|\$\{?([A-Za-z_]\w*)\}?)\/([\w.+-]+(?:\/[\w.+-]+)*)\/?$/.exec(prefix);
          if (rel && !prefix.includes('$')) found = { dir: path.posix.normalize(rel[1]), ext, relative: true };
          else if (viaDir && (viaDir[1] ? own.has(viaDir[1]) : /dirname\b.*(?:\$0|\$\{0\}|BASH_SOURCE)/.test(prefix))) found = { dir: path.posix.normalize(viaDir[2]), ext, relative: true };
        }
        if (found) reads.set(`${found.relative ? 'rel:' : ''}${found.dir ?? '$'}\0${ext}`, found);
      }
    }
  }
  if (reads.size !== 1) return undefined;
  const [r] = [...reads.values()];
  if (r.dir) return r;
  return defaults.size === 1 ? { dir: [...defaults][0], ext: r.ext } : { ext: r.ext };
}

/**
 * Whether the shell code refuses the OS_API_VERSION Ganeti passes for `versions` (the highest
 * supported one listed): a file compares the variable (`$OS_API_VERSION`, `${OS_API_VERSION:-}`)
 * for equality with literal versions only, not that one, and has an error path about an
 * unknown/unsupported version. Each file is its own gate: a script's `case` that takes 10|15
 * only refuses 20 even when a common.sh it sources takes 20 too. A message naming what it
 * accepts, or undefined (accepted, or cannot tell: ranges like -ge are taken as accepting).
 */
export function apiVersionRejection(texts: ShellText[], versions: readonly number[]): string | undefined {
  const passed = effectiveApiVersion(versions);
  if (passed === undefined) return undefined;
  const V = String.raw`"?\$(?:OS_API_VERSION\b|\{OS_API_VERSION(?::?[-=?+][^}]*)?\})"?`;
  for (const { rel, text } of texts) {
    const accepted = new Set<number>();
    let errorPath: string | undefined;
    const file = rel;
    const joined = logicalLines(text).join('\n');
    if (new RegExp(`${V}\\s*-(?:ge|gt|le|lt|ne)\\b|\\(\\(\\s*OS_API_VERSION`).test(joined)) continue;
    let found = false;
    let unsure = false;
    for (const m of joined.matchAll(new RegExp(`${V}\\s*(?:==?|-eq)\\s*["']?(\\d+)`, 'g'))) {
      accepted.add(Number(m[1]));
      found = true;
    }
    for (const m of joined.matchAll(new RegExp(`["']?(\\d+)["']?\\s*(?:==?|-eq)\\s*${V}`, 'g'))) {
      accepted.add(Number(m[1]));
      found = true;
    }
    for (const m of joined.matchAll(new RegExp(`case\\s+${V}\\s+in\\b([\\s\\S]*?)\\besac\\b`, 'g'))) {
      for (const p of m[1].matchAll(/^\s*\(?\s*((?:["']?[\w*?]+["']?\s*\|\s*)*["']?[\w*?]+["']?)\s*\)/gm)) {
        for (const alt of p[1].split('|').map((x) => x.trim().replace(/["']/g, ''))) {
          if (/^\d+$/.test(alt)) accepted.add(Number(alt));
          else if (alt !== '*' && /[*?]/.test(alt)) unsure = true;
        }
      }
      found = true;
    }
    // An error about the interface version itself ("Unknown OS API VERSION 20").
    const err = /^.*\b(?:unknown|unsupported|not supported|invalid|wrong)\b[^\n]*\bapi\b.*$/im.exec(joined);
    if (found && err) errorPath = err[0].trim();
    if (unsure || !accepted.size || !errorPath || accepted.has(passed)) continue;
    const list = [...accepted].sort((a, b) => a - b).join(', ');
    return `the scripts accept OS_API_VERSION ${list} only (${file}: ${JSON.stringify(errorPath.slice(0, 100))}), but Ganeti passes OS_API_VERSION=${passed}: every instance operation fails`;
  }
  return undefined;
}

/** Where and why the shell code fails when a variant's configuration file is missing. */
export interface VariantConfigFailure {
  rel: string;
  line: number;
  /** What the code does then, completing "... when it is missing". */
  why: string;
}

const FAILS = /\bexit\s+(?:[1-9]|\$)|\bfalse\b|\breturn\s+[1-9]|\b(?:die|gos_die|fail)\b/;

/**
 * Whether the shell code fails when the configuration file of the variant it runs for is
 * missing, read from where it sources `…$OS_VARIANT.<ext>` (directly, or through a variable
 * assigned that path, as ganeti-instance-debootstrap's VARIANT_CONFIG): an `if [ -f X ]; then .
 * X; else … exit 1; fi` or `[ -f X ] && . X || exit 1` fails; a guard with no failing branch
 * (`[ -f X ] && . X`) tolerates it; an unguarded `. X` fails under sh (dash exits on a missing
 * `.` file) or `set -e`. Undefined when it tolerates it, or when that cannot be told.
 */
export function variantConfigFailure(texts: ShellText[]): VariantConfigFailure | undefined {
  const vars = new Set<string>();
  for (const { text } of texts) {
    for (const m of text.matchAll(/^\s*(?:export\s+|local\s+|readonly\s+)?([A-Za-z_]\w*)=["']?[^\s;]*\/\$\{?OS_VARIANT\}?\.[A-Za-z0-9]+/gm)) vars.add(m[1]);
  }
  const mentions = (s: string) => new RegExp(`/\\$\\{?OS_VARIANT\\}?\\.[A-Za-z0-9]+|\\$\\{?(?:${[...vars].join('|') || '\\b\\B'})\\}?(?![\\w])`).test(s);
  const errexit = texts.some((t) => OS_SCRIPTS.includes(t.rel) && (/^\s*set\s+(?:-\w*e\w*|-o\s+errexit)\b/m.test(t.text) || /^#!\S+\s+-\w*e/.test(t.text)));
  const sh = texts.some((t) => OS_SCRIPTS.includes(t.rel) && /^#!\s*\S*\/(?:sh|dash)\b/.test(t.text));
  for (const { rel, text } of texts) {
    const lines = logicalLines(text);
    for (let i = 0; i < lines.length; i++) {
      const code = lines[i].replace(/(^|\s)#.*$/, '$1');
      const src = /(?:^|[;&|({]|\bthen|\bdo|\belse)\s*(?:\.|source)\s+(\S+)/.exec(code);
      if (!src || !mentions(src[1])) continue;
      const guard = /(?:\[\[?|\btest)\s+-[efrs]\s/;
      if (guard.test(code)) {
        const orElse = /\|\|\s*(.*)$/.exec(code.slice(src.index));
        if (orElse && FAILS.test(orElse[1])) return { rel, line: i + 1, why: `runs ${JSON.stringify(orElse[1].trim())}` };
        continue;
      }
      // The nearest `if [ -f X ]` above it (a few lines) that tests the same file.
      let ifAt = -1;
      for (let j = i - 1; j >= Math.max(0, i - 5); j--) {
        if (/^\s*(?:if|elif)\b/.test(lines[j]) && guard.test(lines[j]) && mentions(lines[j])) {
          ifAt = j;
          break;
        }
      }
      if (ifAt < 0) {
        if (sh) return { rel, line: i + 1, why: 'sources it unguarded, and sh exits on a missing file given to .' };
        if (errexit) return { rel, line: i + 1, why: 'sources it unguarded under set -e, so the script exits' };
        continue;
      }
      // Its else branch (at the same depth, up to the matching fi): does it fail?
      let depth = 0;
      let inElse = false;
      for (let j = ifAt + 1; j < lines.length; j++) {
        const l = lines[j].replace(/(^|\s)#.*$/, '$1');
        if (/^\s*if\b/.test(l) && !/\bfi\s*$/.test(l)) depth++;
        else if (/^\s*fi\b/.test(l)) {
          if (depth === 0) break;
          depth--;
        } else if (depth === 0 && /^\s*(?:else|elif)\b/.test(l)) inElse = true;
        else if (inElse && depth === 0 && FAILS.test(l.replace(/"[^"]*"|'[^']*'/g, '""'))) return { rel, line: j + 1, why: `reaches ${JSON.stringify(l.trim())} (line ${j + 1}) in the else branch of the test at line ${ifAt + 1}` };
      }
    }
  }
  return undefined;
}

/** A compound command a line sits in: if, case, a loop, a function body or a { } group. */
interface Block {
  kind: 'if' | 'case' | 'loop' | 'func' | 'group';
  /** 0-based line where it opens. */
  line: number;
  name?: string;
}

/** A simple command's first word, where it stands and what it sits in. */
interface CommandAt {
  line: number;
  col: number;
  word: string;
  blocks: Block[];
  /** After && or || in its list (runs only when the command before lets it). */
  andOr: boolean;
  /** Followed by || (its failure is caught: the list goes on with what follows). */
  caught?: boolean;
}

/** Why a command of one file does not always run, found by runContexts. */
export interface RunContext {
  /**
   * For the command whose text ends at `end` on line `line` (0-based): a phrase completing
   * "it runs only ..." when it runs under a condition (after && or ||, in an if, case or loop,
   * in a function no unconditional command calls), or undefined when it always runs.
   */
  conditionAt(line: number, end: number): string | undefined;
}

const OPENS: Record<string, Block['kind']> = { if: 'if', case: 'case', while: 'loop', until: 'loop', for: 'loop', select: 'loop' };
const CLOSES: Record<string, Block['kind']> = { fi: 'if', esac: 'case', done: 'loop' };

/** A line with quoted text, ${...} and a comment blanked (same length), and the quote open at its end. */
function blankLine(line: string, open: string | undefined): { code: string; open: string | undefined } {
  // Nothing to blank but ${...} (no quote open, none opening, no backslash, no comment).
  if (!open && !/['"\\#]/.test(line)) return { code: line.includes('${') ? blankBraces(line) : line, open: undefined };
  // From one character that matters to the next (searched natively, not character by
  // character): the text between is kept outside quotes, blanked inside them.
  const n = line.length;
  let out = '';
  let q = open;
  let k = 0;
  while (k < n) {
    const special = q === "'" ? SINGLE_QUOTED_END : q ? DOUBLE_QUOTED_END : UNQUOTED_SPECIAL;
    special.lastIndex = k;
    const j = special.test(line) ? special.lastIndex - 1 : n;
    out += q ? ' '.repeat(j - k) : line.slice(k, j);
    if (j >= n) break;
    const ch = line[j];
    if (ch === '\\') {
      // The backslash and the character it escapes (two places, even at the end of the line).
      out += '  ';
      k = j + 2;
    } else if (q) {
      // The closing quote.
      q = undefined;
      out += ch;
      k = j + 1;
    } else if (ch === '#') {
      // A comment starts a word; a '#' inside one ($#, a#b) is kept.
      if (j === 0 || /[\s;&|(]/.test(line[j - 1])) break;
      out += ch;
      k = j + 1;
    } else {
      q = ch;
      out += ch;
      k = j + 1;
    }
  }
  return { code: blankBraces(out), open: q };
}

/** What ends a stretch blankLine copies or blanks as a whole: outside quotes, in '...', in "...". */
const UNQUOTED_SPECIAL = /['"\\#]/g;
const SINGLE_QUOTED_END = /'/g;
const DOUBLE_QUOTED_END = /["\\]/g;

/** `${...}` blanked (same length). */
function blankBraces(code: string): string {
  return code.replace(/\$\{[^}]*\}/g, (x) => ' '.repeat(x.length));
}

/**
 * Where each command of the shell files runs (read, not run): the compound commands around it,
 * and whether it follows && or ||. Functions count as called when a command that always runs
 * (at the top level of a file, or in a function called so) names them.
 */
export function runContexts(texts: ShellText[]): Map<string, RunContext> {
  const commands = new Map<string, CommandAt[]>();
  const functions = new Map<string, { rel: string; line: number }>();
  for (const { rel, text } of texts) {
    const found: CommandAt[] = [];
    const stack: Block[] = [];
    let open: string | undefined;
    let heredoc: string | undefined;
    let pendingFunc: string | undefined;
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (heredoc !== undefined) {
        if (lines[i].replace(/^\t+/, '').replace(/\r$/, '') === heredoc) heredoc = undefined;
        continue;
      }
      const b = blankLine(lines[i], open);
      open = b.open;
      const hd = lines[i].includes('<<') ? /<<-?\s*(["']?)([A-Za-z_]\w*)\1/.exec(lines[i].replace(/^\s*#.*$/, '')) : null;
      if (hd && !open) heredoc = hd[2];
      let cmdStart = !/\\\s*$/.test(i > 0 ? lines[i - 1] : '');
      let andOr = false;
      let last: CommandAt | undefined;
      const toks = [...b.code.matchAll(/;;|&&|\|\||[;&|()<>]|[^\s;&|()<>]+/g)];
      for (let k = 0; k < toks.length; k++) {
        const tok = toks[k][0];
        const col = toks[k].index ?? 0;
        if (tok === '&&' || tok === '||') {
          if (tok === '||' && last) last.caught = true;
          last = undefined;
          andOr = true;
          cmdStart = true;
        } else if (tok === ';' || tok === ';;' || tok === '&') {
          last = undefined;
          andOr = false;
          cmdStart = true;
        } else if (tok === '|' || tok === '(' || tok === ')') {
          cmdStart = true;
        } else if (tok === '<' || tok === '>') {
          cmdStart = false;
        } else if (!cmdStart) {
          if (tok === 'in' && stack[stack.length - 1]?.kind === 'case') cmdStart = true;
        } else if (OPENS[tok]) {
          stack.push({ kind: OPENS[tok], line: i });
          cmdStart = tok === 'if' || tok === 'while' || tok === 'until';
        } else if (CLOSES[tok]) {
          const at = stack.map((x) => x.kind).lastIndexOf(CLOSES[tok]);
          if (at >= 0) stack.splice(at);
          cmdStart = false;
        } else if (tok === 'then' || tok === 'do' || tok === 'else' || tok === 'elif' || tok === '!' || tok === 'time') {
          cmdStart = true;
        } else if (tok === '{') {
          stack.push(pendingFunc ? { kind: 'func', line: i, name: pendingFunc } : { kind: 'group', line: i });
          pendingFunc = undefined;
          cmdStart = true;
        } else if (tok === '}') {
          const at = stack.map((x) => x.kind === 'func' || x.kind === 'group').lastIndexOf(true);
          if (at >= 0) stack.splice(at);
          cmdStart = false;
        } else if (tok === 'function') {
          pendingFunc = toks[k + 1]?.[0].replace(/\(\)$/, '');
          if (pendingFunc) functions.set(pendingFunc, { rel, line: i });
          k++;
          cmdStart = true;
        } else if (toks[k + 1]?.[0] === '(' && toks[k + 2]?.[0] === ')') {
          pendingFunc = tok;
          functions.set(tok, { rel, line: i });
          k += 2;
          cmdStart = true;
        } else {
          last = { line: i, col, word: tok, blocks: [...stack], andOr };
          found.push(last);
          cmdStart = false;
        }
      }
    }
    commands.set(rel, found);
  }
  // Functions called unconditionally, from the top level on.
  const conditional = (c: CommandAt) => c.andOr || c.blocks.some((x) => x.kind !== 'func' && x.kind !== 'group');
  const caller = (c: CommandAt) => [...c.blocks].reverse().find((x) => x.kind === 'func')?.name ?? '';
  const called = new Set<string>(['']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const list of commands.values()) {
      for (const c of list) {
        if (!functions.has(c.word) || called.has(c.word) || conditional(c) || !called.has(caller(c))) continue;
        called.add(c.word);
        grew = true;
      }
    }
  }
  const out = new Map<string, RunContext>();
  for (const [rel, list] of commands) {
    out.set(rel, {
      conditionAt(line, end) {
        const c = list.filter((x) => x.line === line && x.col < end).pop();
        if (!c) return undefined;
        const inner = [...c.blocks].reverse().find((x) => x.kind !== 'func' && x.kind !== 'group');
        if (inner) {
          const what = { if: 'an if', case: 'a case', loop: 'a loop', func: '', group: '' }[inner.kind];
          const when = { if: 'when its condition holds', case: 'for the values its pattern matches', loop: 'when the loop runs its body', func: '', group: '' }[inner.kind];
          return `${when} (it is inside ${what} at line ${inner.line + 1})`;
        }
        if (c.andOr) return 'when the command before its && or || lets it';
        if (c.caught) return 'as the left side of a ||, which catches its failure';
        const f = c.blocks.find((x) => x.kind === 'func');
        if (f?.name && !called.has(f.name)) return `when function ${f.name} (line ${f.line + 1}) is called, and no command that always runs calls it`;
        return undefined;
      },
    });
  }
  return out;
}
