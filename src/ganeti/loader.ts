/**
 * Ganeti's OS loader: backend._TryOSFromDisk as Ganeti runs it on one OS directory (the same code
 * in 3.0 and 3.1: see rules.ts), message for message, with utils.ReadFile's reading (strict
 * UTF-8, universal newlines) and the file checks it makes on the way. The verdict is Ganeti's; what ganeti-os adds lives in
 * src/definition/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  OS_API_FILE,
  OS_API_V15,
  OS_API_V20,
  OS_API_VERSIONS,
  OS_PARAMETERS_FILE,
  OS_SCRIPTS,
  OS_SCRIPT_CREATE,
  OS_SCRIPT_CREATE_UNTRUSTED,
  OS_SCRIPT_VERIFY,
  OS_VARIANTS_FILE,
  EXT_PLUGIN_MASK,
  parseApiVersions,
  pyUniversalNewlines,
  parseParametersList,
  parseVariantsList,
} from './rules';
import { OS_API_VERSIONS_REPR, pyDecodeUtf8, pyErrnoName, pyReprIntList } from './pyfmt';

export interface FileState {
  /** Name inside the definition directory. */
  name: string;
  path: string;
  /** What stat() (following links) found. */
  kind: 'file' | 'directory' | 'other' | 'missing' | 'error';
  /** errno code for kind 'error' or 'missing' (ENOENT, EACCES, ELOOP...). */
  errno?: string;
  isSymlink: boolean;
  linkTarget?: string;
  /** Permission bits, after following links. */
  mode?: number;
}

export interface Parameter {
  name: string;
  description: string;
}

export interface OsVerdict {
  valid: boolean;
  /** Ganeti's message when invalid, word for word (for a crash: str() of the exception). */
  error?: string;
  /**
   * Set when Ganeti does not return a verdict but raises (the exception's class name, e.g.
   * UnicodeDecodeError): on a node this aborts the whole OS scan, so every OS there disappears.
   */
  crash?: string;
  /** The file Ganeti was reading when it raised. */
  crashFile?: string;
}

export function statFile(dir: string, name: string, full?: string): FileState {
  const p = full ?? path.join(dir, name);
  let isSymlink = false;
  let linkTarget: string | undefined;
  try {
    const l = fs.lstatSync(p);
    if (l.isSymbolicLink()) {
      isSymlink = true;
      linkTarget = fs.readlinkSync(p);
    }
  } catch {
    // reported by stat below
  }
  try {
    const st = fs.statSync(p);
    const kind = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
    return { name, path: p, kind, isSymlink, linkTarget, mode: st.mode & 0o7777 };
  } catch (err) {
    const code = pyErrnoName(err);
    return {
      name,
      path: p,
      kind: code === 'ENOENT' ? 'missing' : 'error',
      errno: code,
      isSymlink,
      linkTarget,
    };
  }
}

/**
 * utils.ReadFile: `open(name, "r", encoding="utf-8").read()` — strict UTF-8 (a bad byte raises
 * UnicodeDecodeError, which Ganeti does not catch), universal newlines, BOM kept.
 */
export function readUtf8(p: string): { text: string } | { errno: string } | { badUtf8: string } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(p);
  } catch (err) {
    return { errno: pyErrnoName(err) };
  }
  const r = pyDecodeUtf8(buf);
  if ('error' in r) return { badUtf8: r.error };
  return { text: pyUniversalNewlines(r.text) };
}

/** os.path.isdir(): stat() follows links; any error means "no". */
export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export interface TryOsResult {
  verdict: OsVerdict;
  apiVersions?: number[];
  /** The exact listed versions (Python ints are unbounded). */
  apiVersionsExact?: bigint[];
  /** The OS path as Ganeti spells it (base_dir + "/" + name). */
  osDir: string;
  files: Record<string, FileState>;
  variants: string[];
  parameters: Parameter[];
  /** Raw `parameters.list` fields, as Ganeti keeps them (`line.split(None, 1)`). */
  parameterFields: string[][];
  trusted: boolean;
}

/**
 * Ganeti's verdict for one OS directory, as backend._TryOSFromDisk(name, base_dir) reaches it,
 * message for message. `dir` is made absolute and normalised first (the harness and
 * DiagnoseOS pass such paths); `baseDir`/`name` can be given as DiagnoseOS splits them.
 */
export function tryOsFromDisk(dir: string, split?: { baseDir: string; name: string }): TryOsResult {
  const abs = path.resolve(dir);
  const name = split ? split.name : path.basename(abs);
  const baseDir = split ? split.baseDir : path.dirname(abs);
  // utils.FindFile: os.path.sep.join([dir_name, name]), no normalisation.
  const osDir = `${baseDir}/${name}`;
  const files: Record<string, FileState> = {};
  let apiVersions: number[] | undefined;
  let apiVersionsExact: bigint[] | undefined;
  const fail = (error: string, crash?: string, crashFile?: string): TryOsResult => ({
    verdict: crash ? { valid: false, error, crash, crashFile } : { valid: false, error },
    apiVersions,
    apiVersionsExact,
    osDir,
    files,
    variants: [],
    parameters: [],
    parameterFields: [],
    trusted: true,
  });
  const join = (f: string) => `${osDir}/${f}`;

  // utils.FindFile(name, [base_dir], os.path.isdir)
  if (!EXT_PLUGIN_MASK.test(name) || !isDir(osDir)) {
    return fail(`Directory for OS ${name} not found in search path`);
  }

  // _OSOndiskAPIVersion
  const apiState = statFile(osDir, OS_API_FILE, join(OS_API_FILE));
  files[OS_API_FILE] = apiState;
  if (apiState.kind === 'missing' || apiState.kind === 'error') {
    return fail(`Required file '${OS_API_FILE}' not found under path ${osDir}: ${apiState.errno}`);
  }
  if (apiState.kind !== 'file') {
    return fail(`File '${OS_API_FILE}' in ${osDir} is not a regular file`);
  }
  const apiText = readUtf8(apiState.path);
  if ('errno' in apiText) {
    return fail(`Error while reading the API version file at ${apiState.path}: ${apiText.errno}`);
  }
  if ('badUtf8' in apiText) return fail(apiText.badUtf8, 'UnicodeDecodeError', apiState.path);
  const parsed = parseApiVersions(apiText.text);
  if (!parsed.ok) return fail(`API version(s) can't be converted to integer: ${parsed.error}`);
  apiVersions = parsed.versions;
  apiVersionsExact = parsed.exact;
  if (!parsed.exact.some((v) => OS_API_VERSIONS.includes(Number(v)) && BigInt(Number(v)) === v)) {
    return fail(`API version mismatch for path '${osDir}': found ${pyReprIntList(parsed.exact)}, want ${OS_API_VERSIONS_REPR}.`);
  }
  const maxv = parsed.exact.reduce((a, b) => (b > a ? b : a));

  // os_files: OS_SCRIPTS (required unless noted), then variants/parameters files.
  const osFiles: [string, boolean][] = OS_SCRIPTS.map((s) => [s, true]);
  const setRequired = (file: string, required: boolean) => {
    const e = osFiles.find(([f]) => f === file);
    if (e) e[1] = required;
    else osFiles.push([file, required]);
  };
  setRequired(OS_SCRIPT_CREATE, false);
  setRequired(OS_SCRIPT_CREATE_UNTRUSTED, false);
  if (maxv >= BigInt(OS_API_V15)) setRequired(OS_VARIANTS_FILE, false);
  if (maxv >= BigInt(OS_API_V20)) setRequired(OS_PARAMETERS_FILE, true);
  else osFiles.splice(osFiles.findIndex(([f]) => f === OS_SCRIPT_VERIFY), 1);

  const present = new Set<string>();
  for (const [file, required] of osFiles) {
    const st = statFile(osDir, file, join(file));
    files[file] = st;
    if (st.kind === 'missing' || st.kind === 'error') {
      if (st.errno === 'ENOENT' && !required) continue;
      return fail(`File '${file}' under path '${osDir}' is missing (${st.errno})`);
    }
    if (st.kind !== 'file') {
      return fail(`File '${file}' under path '${osDir}' is not a regular file`);
    }
    if (OS_SCRIPTS.includes(file) && ((st.mode ?? 0) & 0o100) === 0) {
      return fail(`File '${file}' under path '${osDir}' is not executable`);
    }
    present.add(file);
  }
  if (!present.has(OS_SCRIPT_CREATE) && !present.has(OS_SCRIPT_CREATE_UNTRUSTED)) {
    return fail(`A create script (trusted or untrusted) under path '${osDir}' must exist`);
  }

  let variants: string[] = [];
  if (present.has(OS_VARIANTS_FILE)) {
    const r = readUtf8(files[OS_VARIANTS_FILE].path);
    if ('errno' in r) {
      if (r.errno !== 'ENOENT') {
        return fail(`Error while reading the OS variants file at ${files[OS_VARIANTS_FILE].path}: ${r.errno}`);
      }
    } else if ('badUtf8' in r) {
      return fail(r.badUtf8, 'UnicodeDecodeError', files[OS_VARIANTS_FILE].path);
    } else {
      variants = parseVariantsList(r.text);
    }
  }

  let parameterFields: string[][] = [];
  if (present.has(OS_PARAMETERS_FILE)) {
    const r = readUtf8(files[OS_PARAMETERS_FILE].path);
    if ('errno' in r) {
      return fail(`Error while reading the OS parameters file at ${files[OS_PARAMETERS_FILE].path}: ${r.errno}`);
    }
    if ('badUtf8' in r) return fail(r.badUtf8, 'UnicodeDecodeError', files[OS_PARAMETERS_FILE].path);
    parameterFields = parseParametersList(r.text).map((l) => l.fields);
  }

  return {
    verdict: { valid: true },
    apiVersions,
    apiVersionsExact,
    osDir,
    files,
    variants,
    parameters: parameterFields.map((f) => ({ name: f[0] ?? '', description: f[1] ?? '' })),
    parameterFields,
    trusted: !present.has(OS_SCRIPT_CREATE_UNTRUSTED),
  };
}
