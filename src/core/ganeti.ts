/**
 * Ganeti's own rules for OS definitions, named as Ganeti names them (lib/constants.py,
 * lib/backend.py of Ganeti 3.0). Everything else in ganeti-os consults this module.
 */

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

/** constants.OS_SCRIPTS, in the order `_TryOSFromDisk` checks them (dict insertion order). */
export const OS_SCRIPTS: readonly string[] = [
  OS_SCRIPT_CREATE,
  OS_SCRIPT_CREATE_UNTRUSTED,
  OS_SCRIPT_IMPORT,
  OS_SCRIPT_EXPORT,
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
  if (/[\r\n]/.test(description)) return `the description of parameter '${name}' must be a single line`;
  return undefined;
}

/** The environment variable a parameter reaches scripts as (backend.OSCoreEnv). */
export function paramEnvName(name: string): string {
  return 'OSP_' + name.toUpperCase().replace(/-/g, '_');
}

/** Python's str.strip() whitespace (close enough for the ASCII and Unicode spaces that matter). */
export function pyStrip(s: string): string {
  return s.replace(/^[\s\u001c-\u001f\u0085]+|[\s\u001c-\u001f\u0085]+$/gu, '');
}

/** Python's str.splitlines(): splits on every line boundary Python knows, drops the final empty piece. */
export function pySplitLines(s: string): string[] {
  const parts = s.split(/\r\n|[\n\r\u000b\u000c\u001c\u001d\u001e\u0085\u2028\u2029]/u);
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Python's int() on an already stripped string: ASCII (and Unicode) digits, optional sign, '_' between digits. */
export function pyInt(s: string): number | undefined {
  const t = pyStrip(s);
  const m = /^([+-]?)(\p{Nd}+(?:_\p{Nd}+)*)$/u.exec(t);
  if (!m) return undefined;
  const digits = m[2].replace(/_/g, '').replace(/\p{Nd}/gu, (d) => {
    const code = d.codePointAt(0)!;
    // Unicode decimal digits come in contiguous runs of ten starting at a code point ending in 0 (mod 16 base).
    for (let base = code; base > code - 10; base--) {
      if (!/\p{Nd}/u.test(String.fromCodePoint(base - 1))) return String((code - base) % 10);
    }
    return String(code % 10);
  });
  const v = Number(digits);
  return m[1] === '-' ? -v : v;
}

/** Parse `ganeti_api_version` as `_OSOndiskAPIVersion` does. */
export function parseApiVersions(text: string): { ok: true; versions: number[] } | { ok: false; bad: string } {
  const versions: number[] = [];
  for (const line of pySplitLines(text)) {
    const v = pyInt(line);
    if (v === undefined) return { ok: false, bad: line };
    versions.push(v);
  }
  return { ok: true, versions };
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

/** `parameters.list` as `_TryOSFromDisk` reads it: every line split on the first whitespace run. */
export function parseParametersList(text: string): ParsedParameterLine[] {
  return pySplitLines(text).map((raw, i) => {
    const t = raw.replace(/^\s+/u, '');
    const m = /^(\S+)(?:\s+([\s\S]*))?$/u.exec(t);
    let fields: string[] = [];
    if (m) {
      fields = [m[1]];
      const rest = (m[2] ?? '').replace(/\s+$/u, '');
      if (m[2] !== undefined && rest !== '') fields.push(rest);
    }
    return { line: i + 1, raw, fields };
  });
}

export function formatParametersList(params: readonly { name: string; description: string }[]): string {
  return params.map((p) => `${p.name} ${p.description.trim()}\n`).join('');
}
