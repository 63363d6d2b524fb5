/**
 * Ganeti's own rules for OS definitions, named as Ganeti names them (lib/constants.py,
 * lib/backend.py). Everything else in ganeti-os consults this module.
 *
 * They hold for every supported release alike. Checked on Debian's packages, bookworm's
 * ganeti-3.0 3.0.2-3 against trixie's ganeti-3.1 3.1.0~rc2-3: backend.py differs only by a new
 * ResizeDisk (so _OSOndiskAPIVersion, _TryOSFromDisk, DiagnoseOS, OSCoreEnv, OSEnvironment,
 * _GetImportExportIoCommand, InstanceOsAdd, RunRenameInstance and ValidateOS are the same
 * code), objects.py and utils/ are identical, and no OS_* constant changed. What does differ
 * for an instance is data: the hypervisor defaults in defaults.ts. The test suite holds both
 * releases' own code to this (test/ganeti/harness.py on each).
 */
import { pyDecimal, pyReprTrunc } from './pyfmt';

/** constants.OS_API_VERSIONS */
export const OS_API_V10 = 10;
export const OS_API_V15 = 15;
export const OS_API_V20 = 20;
export const OS_API_VERSIONS: readonly number[] = [OS_API_V20, OS_API_V15, OS_API_V10];

export const OS_API_FILE = 'ganeti_api_version';
export const OS_VARIANTS_FILE = 'variants.list';
export const OS_PARAMETERS_FILE = 'parameters.list';

export const OS_SCRIPT_CREATE = 'create';
export const OS_SCRIPT_CREATE_UNTRUSTED = 'create_untrusted';
export const OS_SCRIPT_IMPORT = 'import';
export const OS_SCRIPT_EXPORT = 'export';
export const OS_SCRIPT_RENAME = 'rename';
export const OS_SCRIPT_VERIFY = 'verify';

/** constants.OS_SCRIPTS, in the order `_TryOSFromDisk` checks them (dict insertion order: export before import). */
export const OS_SCRIPTS: readonly string[] = [
  OS_SCRIPT_CREATE,
  OS_SCRIPT_CREATE_UNTRUSTED,
  OS_SCRIPT_EXPORT,
  OS_SCRIPT_IMPORT,
  OS_SCRIPT_RENAME,
  OS_SCRIPT_VERIFY,
];

/** pathutils.OS_SEARCH_PATH as Debian builds it. */
export const OS_SEARCH_PATH: readonly string[] = [
  '/srv/ganeti/os',
  '/usr/local/lib/ganeti/os',
  '/usr/lib/ganeti/os',
  '/usr/share/ganeti/os',
];

/** An OS directory name Ganeti can address (the cluster's OS name check). */
export const OS_NAME_RE = /^[a-zA-Z0-9_-]+$/;

/**
 * constants.EXT_PLUGIN_MASK as utils.FindFile applies it: Python's `$` also matches before a
 * final newline, so "name\n" passes.
 */
export const EXT_PLUGIN_MASK = /^[a-zA-Z0-9_-]+\n?$/;

/**
 * Variant names: Ganeti only forbids '+' implicitly (name+variant), but every surveyed
 * definition keeps one file per variant, so ganeti-os insists on a file-name-safe word.
 */
export const VARIANT_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;

/**
 * Parameter names: reach scripts as OSP_<NAME upper-cased, '-' → '_'>. Lower case only so the
 * name round-trips; no '=' or ',' (Ganeti's -O key=val,... syntax), no leading 'no_' or '-'
 * (the CLI parser turns those into negations).
 */
export const PARAM_NAME_RE = /^[a-z][a-z0-9_-]{0,62}$/;

export function checkOsName(name: string): string | undefined {
  if (name === '') return 'the OS name is empty';
  if (!OS_NAME_RE.test(name)) {
    return `invalid OS name '${name}': Ganeti only accepts letters, digits, '_' and '-' (${OS_NAME_RE.source})`;
  }
  return undefined;
}

export function checkVariantName(name: string): string | undefined {
  if (name === '') return 'the variant name is empty';
  if (!VARIANT_NAME_RE.test(name)) {
    return `invalid variant name '${name}': use letters, digits, '.', '_' and '-', starting with a letter or digit (it names variants/<variant>.conf and follows '+' in the OS name)`;
  }
  return undefined;
}

export function checkParamName(name: string): string | undefined {
  if (name === '') return 'the parameter name is empty';
  if (name.startsWith('no_')) {
    return `invalid parameter name '${name}': Ganeti's command line reads a leading 'no_' as "set to false"`;
  }
  if (!PARAM_NAME_RE.test(name)) {
    return `invalid parameter name '${name}': use lower-case letters, digits, '_' and '-', starting with a letter (no '=', ',' or upper case: Ganeti's -O key=value,... syntax and the OSP_ variable would mangle it)`;
  }
  return undefined;
}

export function checkParamDescription(name: string, description: string): string | undefined {
  if (description.trim() === '') return `parameter '${name}' needs a description (parameters.list lines are "name description")`;
  const brk = Array.from(description).find((c) => PY_LINE_BREAK_CHAR_RE.test(c));
  if (brk !== undefined) {
    const code = 'U+' + brk.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return `the description of parameter '${name}' must be a single line: it holds ${LINE_BREAK_NAMES[brk] ?? code} (${code}), which Ganeti's parameters.list reading (Python str.splitlines()) ends a line at`;
  }
  return undefined;
}

/** Names for the characters Python's str.splitlines() breaks at, for messages. */
const LINE_BREAK_NAMES: Record<string, string> = {
  '\n': 'a line feed \\n',
  '\r': 'a carriage return \\r',
  '\u000b': 'a vertical tab \\v',
  '\u000c': 'a form feed \\f',
  '\u001c': 'a file separator \\x1c',
  '\u001d': 'a group separator \\x1d',
  '\u001e': 'a record separator \\x1e',
  '\u0085': 'a next line \\x85',
  '\u2028': 'a line separator \\u2028',
  '\u2029': 'a paragraph separator \\u2029',
};

/**
 * Whether Ganeti sees variants for an OS: _TryOSFromDisk reads variants.list only when the
 * highest listed API version (`maxApi`) is 15 or more, and an OS has variants when that file
 * lists at least one (`listed`). Then every instance's OS name must carry one (checkOsVariant).
 */
export function seesVariants(maxApi: number, listed: readonly string[]): boolean {
  return maxApi >= OS_API_V15 && listed.length > 0;
}

/**
 * backend._CheckOSVariant: Ganeti's error, word for word, for an instance's OS name `name`
 * (`os` or `os+variant`) given the variants Ganeti read for OS `os` (`supported`); undefined
 * when Ganeti accepts the name.
 */
export function checkOsVariant(os: string, name: string, supported: readonly string[]): string | undefined {
  const i = name.indexOf('+');
  const variant = i >= 0 ? name.slice(i + 1) : '';
  if (!supported.length) return variant ? `OS '${os}' does not support variants ('${variant}' passed)` : undefined;
  if (!variant) return `OS name '${name}' must include a variant`;
  if (!supported.includes(variant)) return `OS '${os}' does not support variant '${variant}'`;
  return undefined;
}

/** The environment variable a parameter reaches scripts as (backend.OSCoreEnv). */
export function paramEnvName(name: string): string {
  return 'OSP_' + name.toUpperCase().replace(/-/g, '_');
}

/** Python's whitespace (str.isspace): what strip() and split() without arguments remove. */
export const PY_WS = '\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP_RE = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'gu');
const PY_WS_CHAR_RE = new RegExp(`^[${PY_WS}]$`, 'u');

/** Python's str.strip() (no BOM: U+FEFF is not whitespace to Python). */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP_RE, '');
}

/** Python's str.split(None, 1): at most two fields; the second keeps its trailing whitespace. */
export function pySplit1(s: string): string[] {
  const chars = Array.from(s);
  const ws = (c: string) => PY_WS_CHAR_RE.test(c);
  let i = 0;
  while (i < chars.length && ws(chars[i])) i++;
  if (i === chars.length) return [];
  let j = i;
  while (j < chars.length && !ws(chars[j])) j++;
  const first = chars.slice(i, j).join('');
  while (j < chars.length && ws(chars[j])) j++;
  return j === chars.length ? [first] : [first, chars.slice(j).join('')];
}

/** The characters Python's str.splitlines() ends a line at ("\r\n" counts as one boundary). */
const PY_LINE_BREAKS = '\\n\\r\\u000b\\u000c\\u001c\\u001d\\u001e\\u0085\\u2028\\u2029';
const PY_LINE_BREAK_RE = new RegExp(`\\r\\n|[${PY_LINE_BREAKS}]`, 'u');
const PY_LINE_BREAK_CHAR_RE = new RegExp(`^[${PY_LINE_BREAKS}]$`, 'u');

/** Python's str.splitlines(): splits on every line boundary Python knows, drops the final empty piece. */
export function pySplitLines(s: string): string[] {
  const parts = s.split(PY_LINE_BREAK_RE);
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export interface Line {
  /** The line without its terminator. */
  text: string;
  /** Its terminator ('' for a last line without one). */
  eol: string;
}

/** Python's str.splitlines(keepends=True), each line with its terminator apart. */
export function splitLines(text: string): Line[] {
  const out: Line[] = [];
  const re = new RegExp(`([^${PY_LINE_BREAKS}]*)(\\r\\n|[${PY_LINE_BREAKS}]|$)`, 'gu');
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0] === '') break;
    out.push({ text: m[1], eol: m[2] });
  }
  return out;
}

/** The text `splitLines` split, back together. */
export function joinLines(lines: Line[]): string {
  return lines.map((l) => l.text + l.eol).join('');
}

/** What Python's text-mode open() does to line ends when reading (universal newlines). */
export function pyUniversalNewlines(s: string): string {
  return s.replace(/\r\n?/g, '\n');
}

/** CPython's limit on decimal digits in int(str) (sys.get_int_max_str_digits()). */
export const PY_INT_MAX_STR_DIGITS = 4300;

/**
 * Python's int(s) with base 10, exactly: leading/trailing whitespace, an optional sign, Unicode
 * decimal digits (Python's own tables) with single '_' between them. Returns the value as a
 * bigint, or the ValueError message Python raises.
 */
export function pyIntParse(s: string): { value: bigint } | { error: string } {
  const invalid = { error: `invalid literal for int() with base 10: ${pyReprTrunc(s, 200)}` };
  const t = Array.from(pyStrip(s));
  let i = 0;
  let negative = false;
  if (t[0] === '+' || t[0] === '-') {
    negative = t[0] === '-';
    i = 1;
  }
  if (t[i] === '_') return invalid; // may not start with an underscore
  // CPython's PyLong_FromString: scan the run of digits and underscores, check the digit
  // limit, and only then complain about whatever follows the run.
  let digits = '';
  let prev = '';
  for (; i < t.length; i++) {
    if (t[i] === '_') {
      if (prev === '_') return invalid;
      prev = '_';
      continue;
    }
    const d = pyDecimal(t[i].codePointAt(0)!);
    if (d === undefined) break;
    digits += String(d);
    prev = 'd';
  }
  if (prev === '_') return invalid;
  if (digits.length > PY_INT_MAX_STR_DIGITS) {
    return {
      error: `Exceeds the limit (${PY_INT_MAX_STR_DIGITS} digits) for integer string conversion: value has ${digits.length} digits; use sys.set_int_max_str_digits() to increase the limit`,
    };
  }
  if (digits === '' || i < t.length) return invalid;
  const v = BigInt(digits);
  return { value: negative ? -v : v };
}

export interface ParsedApiVersions {
  ok: true;
  versions: number[];
  /** The exact values (Python ints are unbounded). */
  exact: bigint[];
}

/** Parse `ganeti_api_version` as `_OSOndiskAPIVersion` does (text already read as Python reads it). */
export function parseApiVersions(text: string): ParsedApiVersions | { ok: false; bad: string; error: string } {
  const exact: bigint[] = [];
  for (const line of pySplitLines(text)) {
    const r = pyIntParse(pyStrip(line));
    if ('error' in r) return { ok: false, bad: line, error: r.error };
    exact.push(r.value);
  }
  return { ok: true, versions: exact.map(Number), exact };
}

export function formatApiVersions(versions: readonly number[]): string {
  return versions.map((v) => `${v}\n`).join('');
}

/** The version exported as OS_API_VERSION: the highest listed one Ganeti supports. */
export function effectiveApiVersion(versions: readonly number[]): number | undefined {
  const supported = versions.filter((v) => OS_API_VERSIONS.includes(v));
  return supported.length ? Math.max(...supported) : undefined;
}

/** utils.FilterEmptyLinesAndComments: strip each line, skip blanks and '#' lines. */
export function parseVariantsList(text: string): string[] {
  return pySplitLines(text)
    .map(pyStrip)
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export interface ParsedParameterLine {
  /** Line number, 1-based. */
  line: number;
  raw: string;
  /** `raw.split(None, 1)` as Ganeti does. */
  fields: string[];
}

/** `parameters.list` as `_TryOSFromDisk` reads it: `[v.split(None, 1) for v in text.splitlines()]`. */
export function parseParametersList(text: string): ParsedParameterLine[] {
  return pySplitLines(text).map((raw, i) => ({ line: i + 1, raw, fields: pySplit1(raw) }));
}

export function formatParametersList(params: readonly { name: string; description: string }[]): string {
  return params.map((p) => `${p.name} ${p.description.trim()}\n`).join('');
}
