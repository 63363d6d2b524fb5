/**
 * `.ganeti-os.json`: what ganeti-os wrote into a definition, so later commands can tell the
 * files it owns and that are untouched from the ones the user edited.
 */
import * as crypto from 'node:crypto';
import type { DefinitionSpec, ParamSpec } from './spec';
import type { TemplateSourceRecord } from './templates';

export const PROVENANCE_FILE = '.ganeti-os.json';
/** 1: hashes only. 2: also the template version, its parameters and the base render (`upgrade`). */
export const PROVENANCE_SCHEMA = 2;

export interface ProvenanceFile {
  sha256: string;
  /** Octal string, e.g. "0755". */
  mode: string;
  /** 'tool': ganeti-os may regenerate it; 'user': written once, then the user's. */
  owner: 'tool' | 'user';
}

export interface Provenance {
  schema: number;
  tool: string;
  version: string;
  template: string;
  /** The answers the definition was generated from; later commands regenerate from these. */
  answers: DefinitionSpec;
  files: Record<string, ProvenanceFile>;
  /** Content hash of the template tree the files were rendered from (schema 2; see upgrade-record.ts). */
  templateVersion?: string;
  /** The template's own parameters at that version, so `upgrade` tells the template's changes from the admin's. */
  templateParameters?: ParamSpec[];
  /** The template's own variants at that version, its default first, so `upgrade` can tell when the default moved. */
  templateVariants?: string[];
  /** A site template (`new --template DIR|git+URL`): where it came from; absent for a built-in one. */
  templateSource?: TemplateSourceRecord;
  /**
   * The version of the configuration layers its lib/runtime.sh reads (layers.ts RUNTIME_VERSION):
   * which files `validate` checks on the node and `pack` installs as conffiles. Absent in records
   * written before ganeti-os recorded it.
   */
  runtimeVersion?: number;
  /**
   * The base render: the exact text the template produced for each recorded file, before any edit
   * (schema 2). `upgrade` merges the admin's changes (disk vs base) with the template's (base vs new).
   */
  base?: Record<string, string>;
}

export function sha256(content: string | Buffer): string {
  return crypto.createHash('sha256').update(content).digest('hex');
}

export function formatMode(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

/** `.ganeti-os.json`'s text as a record; undefined when it is not one. */
export function parseProvenance(text: string): Provenance | undefined {
  try {
    const p = JSON.parse(text) as Provenance;
    if (typeof p !== 'object' || p === null || typeof p.files !== 'object' || typeof p.answers !== 'object') return undefined;
    return p;
  } catch {
    return undefined;
  }
}

export function formatProvenance(p: Provenance): string {
  const files: Record<string, ProvenanceFile> = {};
  for (const k of Object.keys(p.files).sort()) files[k] = p.files[k];
  // The base render goes last, so the short facts stay at the top for people reading the file.
  const { base, ...rest } = p;
  const sortedBase = base ? Object.fromEntries(Object.keys(base).sort().map((k) => [k, base[k]])) : undefined;
  return JSON.stringify({ ...rest, files, ...(sortedBase ? { base: sortedBase } : {}) }, null, 2) + '\n';
}
