/**
 * `.ganeti-os.json`: what ganeti-os wrote into a definition, so later commands can tell the
 * files it owns and that are untouched from the ones the user edited.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DefinitionSpec } from './spec';

export const PROVENANCE_FILE = '.ganeti-os.json';
export const PROVENANCE_SCHEMA = 1;

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
}

export function sha256(content: string | Buffer): string {
  return crypto.createHash('sha256').update(content).digest('hex');
}

export function formatMode(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

export function readProvenance(dir: string): Provenance | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, PROVENANCE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  return parseProvenance(text);
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
  return JSON.stringify({ ...p, files }, null, 2) + '\n';
}
