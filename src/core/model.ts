/**
 * The OS-definition model: reading a directory yields one typed value. Ganeti's verdict
 * (`tryOsFromDisk`) is computed exactly as backend._TryOSFromDisk computes it, with the same
 * first error in the same words; everything ganeti-os knows beyond that goes into `problems`.
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
  OS_NAME_RE,
  effectiveApiVersion,
  parseApiVersions,
  parseParametersList,
  parseVariantsList,
} from './ganeti';
import { OS_API_VERSIONS_REPR, pyReprIntList, pyReprStr } from './pyfmt';
import { Provenance, PROVENANCE_FILE, readProvenance } from './provenance';

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
  /** Ganeti's message when invalid, word for word. */
  error?: string;
}

export interface OsDefinition {
  dir: string;
  /** Directory base name: what Ganeti calls the OS. */
  name: string;
  verdict: OsVerdict;
  /** Versions listed in ganeti_api_version (undefined when unreadable). */
  apiVersions?: number[];
  /** Highest listed version Ganeti supports: exported as OS_API_VERSION. */
  apiVersion?: number;
  /** Highest listed version, supported or not ("maxv"). */
  maxApiVersion?: number;
  files: Record<string, FileState>;
  /** Scripts present as regular files. */
  scripts: string[];
  /** Variants as Ganeti reads them (only when maxv ≥ 15 and the file exists). */
  variants: string[];
  /** Parameters as Ganeti reads them (only when maxv ≥ 20). */
  parameters: Parameter[];
  /** Ganeti's "trusted": true unless only create_untrusted exists. */
  trusted: boolean;
  /** Present when ganeti-os wrote the definition. */
  provenance?: Provenance;
}

export function statFile(dir: string, name: string): FileState {
  const p = path.join(dir, name);
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
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
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

/** utils.ReadFile + decode: Ganeti reads these files as UTF-8 text (a bad byte is a crash there). */
export function readUtf8(p: string): { text: string } | { errno: string } | { badUtf8: true } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(p);
  } catch (err) {
    return { errno: (err as NodeJS.ErrnoException).code ?? 'EIO' };
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf) };
  } catch {
    return { badUtf8: true };
  }
}

/**
 * Ganeti's verdict for one OS directory, as backend._TryOSFromDisk(name, base_dir) reaches it.
 * Returns the parsed pieces too, so the model does not read the files twice.
 */
export function tryOsFromDisk(dir: string): {
  verdict: OsVerdict;
  apiVersions?: number[];
  files: Record<string, FileState>;
  variants: string[];
  parameters: Parameter[];
  trusted: boolean;
} {
  const files: Record<string, FileState> = {};
  const fail = (error: string) => ({ verdict: { valid: false, error }, files, variants: [], parameters: [], trusted: true });
  const name = path.basename(dir);
  const osDir = dir;

  // utils.FindFile(name, [base_dir], os.path.isdir)
  const dirState = statFile(path.dirname(dir), name);
  if (!OS_NAME_RE.test(name) || dirState.kind !== 'directory') {
    return { ...fail(`Directory for OS ${name} not found in search path`), apiVersions: undefined };
  }

  // _OSOndiskAPIVersion
  const apiState = statFile(osDir, OS_API_FILE);
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
  if ('badUtf8' in apiText) {
    // Ganeti raises UnicodeDecodeError here, which escapes _TryOSFromDisk (the node's OS scan crashes).
    return fail(`File '${OS_API_FILE}' in ${osDir} is not valid UTF-8 (Ganeti's OS scan crashes on it)`);
  }
  const parsed = parseApiVersions(apiText.text);
  if (!parsed.ok) {
    const stripped = parsed.bad.trim();
    return fail(`API version(s) can't be converted to integer: invalid literal for int() with base 10: ${pyReprStr(stripped)}`);
  }
  const apiVersions = parsed.versions;
  if (!apiVersions.some((v) => OS_API_VERSIONS.includes(v))) {
    return {
      ...fail(`API version mismatch for path '${osDir}': found ${pyReprIntList(apiVersions)}, want ${OS_API_VERSIONS_REPR}.`),
      apiVersions,
    };
  }
  const maxv = Math.max(...apiVersions);

  // os_files: OS_SCRIPTS (required unless noted), then variants/parameters files.
  const osFiles: [string, boolean][] = OS_SCRIPTS.map((s) => [s, true]);
  const setRequired = (file: string, required: boolean) => {
    const e = osFiles.find(([f]) => f === file);
    if (e) e[1] = required;
    else osFiles.push([file, required]);
  };
  setRequired(OS_SCRIPT_CREATE, false);
  setRequired(OS_SCRIPT_CREATE_UNTRUSTED, false);
  if (maxv >= OS_API_V15) setRequired(OS_VARIANTS_FILE, false);
  if (maxv >= OS_API_V20) setRequired(OS_PARAMETERS_FILE, true);
  else osFiles.splice(osFiles.findIndex(([f]) => f === OS_SCRIPT_VERIFY), 1);

  const present = new Set<string>();
  for (const [file, required] of osFiles) {
    const st = statFile(osDir, file);
    files[file] = st;
    if (st.kind === 'missing' || st.kind === 'error') {
      if (st.errno === 'ENOENT' && !required) continue;
      return { ...fail(`File '${file}' under path '${osDir}' is missing (${st.errno})`), apiVersions };
    }
    if (st.kind !== 'file') {
      return { ...fail(`File '${file}' under path '${osDir}' is not a regular file`), apiVersions };
    }
    if (OS_SCRIPTS.includes(file) && ((st.mode ?? 0) & 0o100) === 0) {
      return { ...fail(`File '${file}' under path '${osDir}' is not executable`), apiVersions };
    }
    present.add(file);
  }
  if (!present.has(OS_SCRIPT_CREATE) && !present.has(OS_SCRIPT_CREATE_UNTRUSTED)) {
    return { ...fail(`A create script (trusted or untrusted) under path '${osDir}' must exist`), apiVersions };
  }

  let variants: string[] = [];
  if (present.has(OS_VARIANTS_FILE)) {
    const r = readUtf8(files[OS_VARIANTS_FILE].path);
    if ('errno' in r) {
      if (r.errno !== 'ENOENT') {
        return { ...fail(`Error while reading the OS variants file at ${files[OS_VARIANTS_FILE].path}: ${r.errno}`), apiVersions };
      }
    } else if ('badUtf8' in r) {
      return { ...fail(`File '${OS_VARIANTS_FILE}' under path '${osDir}' is not valid UTF-8 (Ganeti's OS scan crashes on it)`), apiVersions };
    } else {
      variants = parseVariantsList(r.text);
    }
  }

  let parameters: Parameter[] = [];
  if (present.has(OS_PARAMETERS_FILE)) {
    const r = readUtf8(files[OS_PARAMETERS_FILE].path);
    if ('errno' in r) {
      return { ...fail(`Error while reading the OS parameters file at ${files[OS_PARAMETERS_FILE].path}: ${r.errno}`), apiVersions };
    }
    if ('badUtf8' in r) {
      return { ...fail(`File '${OS_PARAMETERS_FILE}' under path '${osDir}' is not valid UTF-8 (Ganeti's OS scan crashes on it)`), apiVersions };
    }
    parameters = parseParametersList(r.text).map((l) => ({ name: l.fields[0] ?? '', description: l.fields[1] ?? '' }));
  }

  return {
    verdict: { valid: true },
    apiVersions,
    files,
    variants,
    parameters,
    trusted: present.has(OS_SCRIPT_CREATE),
  };
}

/** Read a definition directory into the model. Never throws for a broken definition: see `verdict`. */
export function readDefinition(dir: string): OsDefinition {
  const abs = path.resolve(dir);
  const r = tryOsFromDisk(abs);
  const files = { ...r.files };
  for (const f of [...OS_SCRIPTS, OS_VARIANTS_FILE, OS_PARAMETERS_FILE, OS_API_FILE]) {
    if (!files[f]) files[f] = statFile(abs, f);
  }
  const scripts = OS_SCRIPTS.filter((s) => files[s].kind === 'file');
  return {
    dir: abs,
    name: path.basename(abs),
    verdict: r.verdict,
    apiVersions: r.apiVersions,
    apiVersion: r.apiVersions ? effectiveApiVersion(r.apiVersions) : undefined,
    maxApiVersion: r.apiVersions && r.apiVersions.length ? Math.max(...r.apiVersions) : undefined,
    files,
    scripts,
    variants: r.variants,
    parameters: r.parameters,
    trusted: r.trusted,
    provenance: readProvenance(abs),
  };
}

export { PROVENANCE_FILE };
