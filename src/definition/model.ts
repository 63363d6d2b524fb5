/**
 * The OS-definition model: reading a directory yields one typed value. Ganeti's verdict
 * (`tryOsFromDisk`, src/ganeti/loader.ts) is computed exactly as backend._TryOSFromDisk computes
 * it, with the same first error in the same words; everything ganeti-os knows beyond that goes
 * into `problems`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { OS_API_FILE, OS_PARAMETERS_FILE, OS_SCRIPTS, OS_VARIANTS_FILE, effectiveApiVersion } from '../ganeti/rules';
import { FileState, OsVerdict, Parameter, statFile, tryOsFromDisk } from '../ganeti/loader';
import { pyDecodeUtf8 } from '../ganeti/pyfmt';
import { Provenance, PROVENANCE_FILE, parseProvenance } from './provenance';

export type { FileState, OsVerdict, Parameter };

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
  /** Ganeti's "trusted" (DiagnoseOS): false as soon as create_untrusted exists. */
  trusted: boolean;
  /** Raw `parameters.list` fields as Ganeti keeps them (`line.split(None, 1)`). */
  parameterFields: string[][];
  /** The OS path as Ganeti spells it in messages (base_dir + "/" + name). */
  osDir: string;
  /** Present when ganeti-os wrote the definition (and its record can be read). */
  provenance?: Provenance;
  /**
   * The files ganeti-os edits line by line, as it reads them to edit them (the raw text, whatever
   * the API version; a symlink followed), and the record file ganeti-os keeps (.ganeti-os.json).
   */
  text: { api: TextFile; variants: TextFile; parameters: TextFile; record: TextFile };
}

/**
 * A text file of a definition as ganeti-os edits it: its bytes decoded as strict UTF-8 (as
 * Python decodes them: a BOM and the line ends kept as they are), or why that cannot be done.
 */
export interface TextFile {
  abs: string;
  /** 'file': a regular file (perhaps through a symlink) holding UTF-8 text; 'other': see `problem`. */
  kind: 'missing' | 'file' | 'other';
  /** kind === 'file'. */
  exists: boolean;
  /** The content ('' unless kind is 'file'). */
  text: string;
  /** Permission bits after following a link (0o644 unless kind is 'file'). */
  mode: number;
  isSymlink: boolean;
  /** What a symlink says it points to. */
  linkTarget?: string;
  /** The file a symlink resolves to: the one really read and written. */
  realPath?: string;
  /** Kind 'other': why, in words ("not a regular file", "not valid UTF-8", ...). */
  problem?: string;
  /** Kind 'other': the errno of the call that failed, if one did. */
  errno?: string;
}

/**
 * Read `abs` as a definition's text file. Never throws and never blocks on a FIFO or device: only
 * a regular file is read. Every command that reads a file to edit or merge it reads it here.
 */
export function readTextFile(abs: string): TextFile {
  let isSymlink = false;
  let linkTarget: string | undefined;
  try {
    if (fs.lstatSync(abs).isSymbolicLink()) {
      isSymlink = true;
      linkTarget = fs.readlinkSync(abs);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT' || code === 'ENOTDIR') return { abs, kind: 'missing', exists: false, text: '', mode: 0o644, isSymlink: false };
    return { abs, kind: 'other', exists: false, text: '', mode: 0o644, isSymlink: false, problem: `unreadable: ${code}`, errno: code };
  }
  const other = (problem: string, errno?: string): TextFile => ({ abs, kind: 'other', exists: false, text: '', mode: 0o644, isSymlink, linkTarget, problem, errno });
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? 'error';
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (err) {
    if (code(err) === 'ENOENT' && isSymlink) return other(`a symlink to ${linkTarget}, which does not exist`, 'ENOENT');
    return other(`unreadable: ${code(err)}`, code(err));
  }
  if (!st.isFile()) return other('not a regular file');
  let buf: Buffer;
  try {
    buf = fs.readFileSync(abs);
  } catch (err) {
    return other(`unreadable: ${code(err)}`, code(err));
  }
  const r = pyDecodeUtf8(buf);
  if ('error' in r) return other('not valid UTF-8');
  return { abs, kind: 'file', exists: true, text: r.text, mode: st.mode & 0o7777, isSymlink, linkTarget, realPath: isSymlink ? fs.realpathSync(abs) : undefined };
}

/** `f` unless ganeti-os cannot edit it: then a UserError saying why (and that nothing was changed). */
export function editableText(f: TextFile): TextFile {
  if (f.kind !== 'other') return f;
  if (f.isSymlink && f.errno === 'ENOENT') {
    throw new UserError(`${f.abs} is ${f.problem}; nothing was changed`, ['Create the file it points to (or remove the dangling link), then run the command again.']);
  }
  if (f.errno) throw new UserError(`cannot read ${f.abs}: ${f.errno}; nothing was changed`);
  if (f.problem === 'not valid UTF-8') {
    throw new UserError(`${f.abs} is not valid UTF-8; nothing was changed`, ['Fix its encoding by hand, then run the command again.']);
  }
  throw new UserError(`${f.abs} is ${f.problem}; nothing was changed`);
}

/** A directory the user named: a clear error unless it exists and is a directory. */
export function requireDirectory(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new UserError(`${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new UserError(`${dir} is not a directory`);
}

/**
 * Read a definition directory into the model: Ganeti's verdict and what it reads, every file's
 * state, the list files' text as ganeti-os edits them and what ganeti-os recorded. The one
 * loader: every command reads a definition through it. Never throws for a broken definition:
 * see `verdict` (and, for the maintenance commands, maintain.editable).
 */
export function readDefinition(dir: string): OsDefinition {
  const abs = path.resolve(dir);
  const r = tryOsFromDisk(abs);
  const files = { ...r.files };
  for (const f of [...OS_SCRIPTS, OS_VARIANTS_FILE, OS_PARAMETERS_FILE, OS_API_FILE]) {
    if (!files[f]) files[f] = statFile(abs, f);
  }
  const scripts = OS_SCRIPTS.filter((s) => files[s].kind === 'file');
  const record = readTextFile(path.join(abs, PROVENANCE_FILE));
  return {
    dir: abs,
    name: path.basename(abs),
    verdict: r.verdict,
    apiVersions: r.apiVersions,
    apiVersion: r.apiVersions ? effectiveApiVersion(r.apiVersions) : undefined,
    maxApiVersion: r.apiVersions && r.apiVersions.length ? r.apiVersions.reduce((a, b) => (b > a ? b : a)) : undefined,
    files,
    scripts,
    variants: r.variants,
    parameters: r.parameters,
    parameterFields: r.parameterFields,
    osDir: r.osDir,
    trusted: r.trusted,
    provenance: record.exists ? parseProvenance(record.text) : undefined,
    text: {
      api: readTextFile(path.join(abs, OS_API_FILE)),
      variants: readTextFile(path.join(abs, OS_VARIANTS_FILE)),
      parameters: readTextFile(path.join(abs, OS_PARAMETERS_FILE)),
      record,
    },
  };
}

export { PROVENANCE_FILE };
