/** Ask real Ganeti 3.0 (test/ganeti/harness.py) about a definition. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { GANETI_PYTHON, GANETI_PYTHONPATH } from './system';

const HARNESS = path.join(__dirname, '..', 'ganeti', 'harness.py');

export interface GanetiAnswer {
  ok: boolean;
  error?: string;
  type?: string;
  traceback?: string;
  [key: string]: unknown;
}

export function ganeti(request: Record<string, unknown>): GanetiAnswer {
  const r = spawnSync(GANETI_PYTHON, [HARNESS], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', PYTHONPATH: GANETI_PYTHONPATH },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`harness failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as GanetiAnswer;
}

export interface TryOsResult {
  ok: boolean;
  error?: string;
  os?: { name: string; api_versions: number[]; variants: string[]; parameters: [string, string][]; verify_script: string | null; create_script_untrusted: string | null };
}

export function tryOsFromDisk(dir: string): TryOsResult {
  return ganeti({ action: 'tryos', dir }) as unknown as TryOsResult;
}

export interface InstanceSpec {
  name: string;
  os: string;
  os_dir: string;
  hypervisor?: string;
  disks: { path: string; size?: number; template?: 'file' | 'plain' | 'sharedfile'; name?: string }[];
  nics?: { mac?: string; ip?: string; mode?: string; link?: string; name?: string; network?: Record<string, unknown> }[];
  osparams?: Record<string, string>;
  hvparams?: Record<string, unknown>;
  beparams?: Record<string, unknown>;
}

export const osEnvironment = (instance: InstanceSpec, debug = 0) => ganeti({ action: 'env', instance, debug });
export const instanceOsAdd = (instance: InstanceSpec, opts: { reinstall?: boolean; debug?: number; logdir?: string } = {}) =>
  ganeti({ action: 'add', instance, reinstall: !!opts.reinstall, debug: opts.debug ?? 0, logdir: opts.logdir });
export const runRename = (instance: InstanceSpec, oldName: string, logdir?: string) =>
  ganeti({ action: 'rename', instance, old_name: oldName, logdir });
export const runExport = (instance: InstanceSpec, index: number, output: string) => ganeti({ action: 'export', instance, index, output });
export const runImport = (instance: InstanceSpec, index: number, input: string) => ganeti({ action: 'import', instance, index, input });
export const validateOs = (osDir: string, osName: string, osparams: Record<string, string>, forceVariant = false) =>
  ganeti({ action: 'validate', os_dir: osDir, os_name: osName, osparams, force_variant: forceVariant });
