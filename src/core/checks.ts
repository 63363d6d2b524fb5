/**
 * What ganeti-os finds wrong or risky in a definition beyond Ganeti's own verdict.
 * `validate` reports these as warnings; `info` lists them.
 */
import type { OsDefinition } from './model';

export interface Problem {
  severity: 'error' | 'warning';
  /** Stable identifier, e.g. "ganeti", "parameters-blank-line". */
  code: string;
  message: string;
  file?: string;
}

export function findProblems(def: OsDefinition): Problem[] {
  const out: Problem[] = [];
  if (!def.verdict.valid) out.push({ severity: 'error', code: 'ganeti', message: def.verdict.error ?? 'invalid' });
  return out;
}
