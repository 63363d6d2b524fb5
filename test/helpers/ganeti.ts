/**
 * Ask real Ganeti (test/ganeti/harness.py) about a definition: the node code of release 3.0
 * (the default) or 3.1, as test/helpers/ganeti-code.ts finds it. Gate the tests with
 * describeSystem's `ganeti` need (or describeReleases) so that a missing release skips.
 */
import * as path from 'node:path';
import type { GanetiRelease } from '../../src/ganeti/releases';
import { runSync } from '../../src/system/process';
import { GANETI_PYTHON, ganetiPythonPath } from './system';

export const HARNESS = path.join(__dirname, '..', 'ganeti', 'harness.py');

export interface GanetiAnswer {
  ok: boolean;
  error?: string;
  type?: string;
  traceback?: string;
  [key: string]: unknown;
}

/** One harness request answered by Ganeti `release`'s own code. */
export function ganeti(request: Record<string, unknown>, release: GanetiRelease = '3.0'): GanetiAnswer {
  return ask(request, release) as GanetiAnswer;
}

/**
 * Several harness requests answered in order by one run of Ganeti `release`'s code (one Python
 * start-up, about half a second, instead of one each).
 */
export function ganetiBatch(requests: Record<string, unknown>[], release: GanetiRelease = '3.0'): GanetiAnswer[] {
  const answers = ask(requests, release) as GanetiAnswer[];
  if (!Array.isArray(answers) || answers.length !== requests.length) throw new Error(`harness answered ${JSON.stringify(answers).slice(0, 200)} to ${requests.length} requests`);
  return answers;
}

function ask(request: unknown, release: GanetiRelease): unknown {
  const r = runSync([GANETI_PYTHON, HARNESS], {
    input: JSON.stringify(request),
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', PYTHONPATH: ganetiPythonPath(release) },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`harness failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export interface TryOsResult {
  ok: boolean;
  error?: string;
  os?: { name: string; api_versions: number[]; variants: string[]; parameters: [string, string][]; verify_script: string | null; create_script_untrusted: string | null };
}

export function tryOsFromDisk(dir: string, release: GanetiRelease = '3.0'): TryOsResult {
  return ganeti({ action: 'tryos', dir }, release) as unknown as TryOsResult;
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

export const osEnvironment = (instance: InstanceSpec, debug = 0, release: GanetiRelease = '3.0') => ganeti({ action: 'env', instance, debug }, release);
export const instanceOsAdd = (instance: InstanceSpec, opts: { reinstall?: boolean; debug?: number; logdir?: string } = {}) =>
  ganeti({ action: 'add', instance, reinstall: !!opts.reinstall, debug: opts.debug ?? 0, logdir: opts.logdir });
export const runRename = (instance: InstanceSpec, oldName: string, logdir?: string) =>
  ganeti({ action: 'rename', instance, old_name: oldName, logdir });
export const runExport = (instance: InstanceSpec, index: number, output: string) => ganeti({ action: 'export', instance, index, output });
export const runImport = (instance: InstanceSpec, index: number, input: string) => ganeti({ action: 'import', instance, index, input });
export const validateOs = (osDir: string, osName: string, osparams: Record<string, string>, forceVariant = false, release: GanetiRelease = '3.0') =>
  ganeti({ action: 'validate', os_dir: osDir, os_name: osName, osparams, force_variant: forceVariant }, release);
