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
import { Provenance, PROVENANCE_FILE, readProvenance } from './provenance';

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
  /** Present when ganeti-os wrote the definition. */
  provenance?: Provenance;
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
    maxApiVersion: r.apiVersions && r.apiVersions.length ? r.apiVersions.reduce((a, b) => (b > a ? b : a)) : undefined,
    files,
    scripts,
    variants: r.variants,
    parameters: r.parameters,
    parameterFields: r.parameterFields,
    osDir: r.osDir,
    trusted: r.trusted,
    provenance: readProvenance(abs),
  };
}

export { PROVENANCE_FILE };
