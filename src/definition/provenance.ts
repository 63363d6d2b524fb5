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

/**
 * The first field of a parsed `.ganeti-os.json` whose type is not what ganeti-os writes, as
 * `path: what is expected, not what was found` (e.g. `answers.parameters[0].choices should be a list of
 * strings, not "ext4"`); undefined when every field is right. The commands that edit a
 * definition refuse a record with such a field (exit 1 naming it) instead of failing on it.
 */
export function provenanceProblem(p: unknown): string | undefined {
  const show = (v: unknown) => {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  type Check = (v: unknown, at: string) => string | undefined;
  const str: Check = (v, at) => (typeof v === 'string' ? undefined : `${at} should be a string, not ${show(v)}`);
  const int: Check = (v, at) => (typeof v === 'number' && Number.isInteger(v) ? undefined : `${at} should be a whole number, not ${show(v)}`);
  const opt = (c: Check): Check => (v, at) => (v === undefined ? undefined : c(v, at));
  const list = (c: Check, what: string): Check => (v, at) => {
    if (!Array.isArray(v)) return `${at} should be a list of ${what}, not ${show(v)}`;
    for (let i = 0; i < v.length; i++) {
      const bad = c(v[i], `${at}[${i}]`);
      if (bad) return bad;
    }
    return undefined;
  };
  const map = (c: Check, what: string): Check => (v, at) => {
    if (!isObj(v)) return `${at} should be an object of ${what}, not ${show(v)}`;
    for (const [k, x] of Object.entries(v)) {
      const bad = c(x, `${at}.${k}`);
      if (bad) return bad;
    }
    return undefined;
  };
  const obj = (fields: Record<string, Check>, what: string): Check => (v, at) => {
    if (!isObj(v)) return `${at} should be ${what}, not ${show(v)}`;
    for (const [k, c] of Object.entries(fields)) {
      const bad = c(v[k], at ? `${at}.${k}` : k);
      if (bad) return bad;
    }
    return undefined;
  };
  const param = obj({ name: str, description: str, default: opt(str), choices: opt(list(str, 'strings')), pattern: opt(str) }, 'a parameter');
  const variant = obj({ name: str, settings: map(str, 'strings') }, 'a variant');
  const file = obj(
    {
      sha256: str,
      mode: (v, at) => (typeof v === 'string' && /^0?[0-7]{3,4}$/.test(v) ? undefined : `${at} should be an octal mode such as "0644", not ${show(v)}`),
      owner: (v, at) => (v === 'tool' || v === 'user' ? undefined : `${at} should be "tool" or "user", not ${show(v)}`),
    },
    'a file record',
  );
  const record = obj(
    {
      schema: int,
      tool: opt(str),
      version: opt(str),
      template: str,
      answers: obj(
        { name: str, template: opt(str), apiVersions: list(int, 'whole numbers'), variants: list(variant, 'variants'), parameters: list(param, 'parameters') },
        'the answers',
      ),
      files: map(file, 'file records'),
      templateVersion: opt(str),
      templateParameters: opt(list(param, 'parameters')),
      templateVariants: opt(list(str, 'strings')),
      base: opt(map(str, 'strings')),
    },
    'a record',
  );
  return record(p, '');
}
