/**
 * Plans: what a command wants on disk, computed without touching it. The writer applies them.
 */
import * as path from 'node:path';
import { editableText, readTextFile } from './model';
import { Provenance, formatMode, sha256 } from './provenance';
import type { Owner } from './templates';

export type OpKind = 'create' | 'update' | 'identical' | 'conflict' | 'delete';

export interface PlanOp {
  /** Path relative to the plan's root. */
  path: string;
  kind: OpKind;
  /** New content (create/update/identical/conflict). */
  content?: string;
  mode?: number;
  owner?: Owner;
  /** Why: shown for conflicts and updates. */
  reason?: string;
  /** For a symlinked file: where the content really goes. */
  realPath?: string;
}

export interface Plan {
  /** The definition directory. */
  root: string;
  ops: PlanOp[];
  /** Notes for the user (things done or left to do by hand). */
  notes: string[];
}

export interface DesiredFile {
  path: string;
  content: string;
  mode: number;
  owner: Owner;
}

export interface PlanOptions {
  force?: boolean;
  /** What ganeti-os recorded when it last wrote this definition. */
  provenance?: Provenance;
}

/** What is at `abs`, as planWrite and planDelete compare it (the one reader: model.readTextFile). */
function onDisk(abs: string): { exists: boolean; notAFile?: boolean; text?: string; mode?: number; realPath?: string } {
  const f = readTextFile(abs);
  if (f.kind === 'missing') return { exists: false };
  if (f.kind === 'file') return { exists: true, text: f.text, mode: f.mode, realPath: f.realPath };
  // Dangling symlink: replace the link itself.
  if (f.isSymlink && f.errno === 'ENOENT') return { exists: true, text: '', mode: 0 };
  if (f.problem === 'not a regular file') return { exists: true, notAFile: true };
  // A read that failed is an error naming it; a file that is not UTF-8 is not what ganeti-os wrote.
  if (f.errno) editableText(f);
  return { exists: true, mode: 0 };
}

/** Whether the file on disk is exactly what ganeti-os recorded writing. */
export function isUntouched(provenance: Provenance | undefined, rel: string, content: string | Buffer | undefined): boolean {
  const rec = provenance?.files[rel];
  return !!rec && content !== undefined && rec.sha256 === sha256(content);
}

export function planWrite(root: string, files: DesiredFile[], opts: PlanOptions = {}): PlanOp[] {
  return files.map((f) => {
    const abs = path.join(root, f.path);
    const cur = onDisk(abs);
    const base = { path: f.path, content: f.content, mode: f.mode, owner: f.owner, realPath: cur.realPath };
    if (!cur.exists) return { ...base, kind: 'create' as const };
    if (cur.notAFile) {
      return { ...base, kind: 'conflict' as const, reason: 'exists and is not a regular file' };
    }
    const same = cur.text === f.content;
    if (same && cur.mode === f.mode) return { ...base, kind: 'identical' as const };
    if (same) return { ...base, kind: 'update' as const, reason: `mode ${formatMode(cur.mode!)} → ${formatMode(f.mode)}` };
    // An untouched file is an ordinary update; only the admin's edits are "replaced (--force)".
    if (isUntouched(opts.provenance, f.path, cur.text)) return { ...base, kind: 'update' as const };
    if (opts.force) return { ...base, kind: 'update' as const, reason: 'replaced (--force)' };
    const reason = opts.provenance?.files[f.path] ? 'edited since ganeti-os wrote it' : 'not written by ganeti-os';
    return { ...base, kind: 'conflict' as const, reason };
  });
}

export function planDelete(root: string, rel: string, opts: PlanOptions = {}): PlanOp | undefined {
  const abs = path.join(root, rel);
  const cur = onDisk(abs);
  if (!cur.exists) return undefined;
  if (cur.notAFile) return { path: rel, kind: 'conflict', reason: 'to be removed, but it is not a regular file' };
  if (opts.force || isUntouched(opts.provenance, rel, cur.text)) return { path: rel, kind: 'delete', realPath: cur.realPath };
  const reason = opts.provenance?.files[rel] ? 'to be removed, but edited since ganeti-os wrote it' : 'to be removed, but not written by ganeti-os';
  return { path: rel, kind: 'conflict', reason };
}

export function conflicts(plan: Plan): PlanOp[] {
  return plan.ops.filter((o) => o.kind === 'conflict');
}

export function changes(plan: Plan): PlanOp[] {
  return plan.ops.filter((o) => o.kind === 'create' || o.kind === 'update' || o.kind === 'delete');
}

/** The plan as the one JSON shape `--json` prints. */
export function planToJson(plan: Plan, applied: boolean): Record<string, unknown> {
  return {
    root: plan.root,
    applied,
    operations: plan.ops.map((o) => ({
      path: o.path,
      action: o.kind,
      ...(o.mode !== undefined ? { mode: formatMode(o.mode) } : {}),
      ...(o.owner ? { owner: o.owner } : {}),
      ...(o.content !== undefined ? { sha256: sha256(o.content), bytes: Buffer.byteLength(o.content) } : {}),
      ...(o.reason ? { reason: o.reason } : {}),
      ...(o.realPath ? { realPath: o.realPath } : {}),
    })),
    notes: plan.notes,
  };
}

const SYMBOL: Record<OpKind, string> = { create: '+', update: '~', identical: '=', conflict: '!', delete: '-' };

export function planToText(plan: Plan): string {
  const lines = plan.ops.map((o) => {
    const mode = o.mode !== undefined ? ` (${formatMode(o.mode)})` : '';
    const extra = [o.reason, o.realPath ? `→ ${o.realPath}` : undefined].filter(Boolean).join('; ');
    return `  ${SYMBOL[o.kind]} ${o.kind.padEnd(9)} ${o.path}${mode}${extra ? `  ${extra}` : ''}`;
  });
  return lines.join('\n') + '\n';
}
