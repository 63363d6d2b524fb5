/**
 * backend.ValidateOS as a node runs it before every instance add, reinstall or OS parameter
 * change (`gnt-instance add` asks each node first): the variant check (_CheckOSVariant), the
 * parameter check (_CheckOSPList, which raises IndexError on a blank parameters.list line), then
 * `verify parameters` with OSCoreEnv's environment only (reset_env), in the OS directory, its
 * output (stdout and stderr together) quoted in the failure. The same code in 3.0 and 3.1.
 */
import * as nodeOs from 'node:os';
import * as path from 'node:path';
import { EnvMap, OsInfo, osCoreEnv } from './environment';
import { OS_API_V20, OS_SCRIPT_VERIFY, checkOsVariant } from './rules';
import { runSync } from '../system/process';

/** What ValidateOS reads of an OS (objects.OS). */
export interface ValidateOsInfo extends OsInfo {
  /** supported_parameters: each parameters.list line split as Ganeti splits it. */
  parameterFields: string[][];
}

export type ValidateOsAnswer =
  | { ok: true; ran: boolean; output?: string }
  | {
      ok: false;
      /** Ganeti's error, word for word. */
      error: string;
      /** Set when Ganeti raises instead of refusing (IndexError). */
      crash?: string;
      /** Set when the verify script ran and failed: its exit code and output. */
      exitCode?: number | null;
      signal?: string | null;
      output?: string;
      /** The script did not finish within the time given (Ganeti would wait for it). */
      timedOut?: boolean;
    };

/**
 * The checks ValidateOS makes before it runs anything: undefined when they pass, else Ganeti's
 * error (or crash). `osName` is the instance's OS name ("os" or "os+variant").
 */
export function validateOsChecks(os: ValidateOsInfo, osName: string, osparams: readonly string[], forceVariant = false): { error: string; crash?: string } | undefined {
  if (!forceVariant) {
    const bad = checkOsVariant(os.name, osName, os.variants);
    if (bad) return { error: bad };
  }
  if (Math.max(...os.apiVersions) < OS_API_V20) return undefined;
  // _CheckOSPList: [v[0] for v in os_obj.supported_parameters] raises on a blank line.
  if (os.parameterFields.some((f) => f.length === 0)) return { error: 'list index out of range', crash: 'IndexError' };
  const supported = new Set(os.parameterFields.map((f) => f[0]));
  const delta = [...new Set(osparams)].filter((p) => !supported.has(p));
  if (delta.length) return { error: `The following parameters are not supported by the OS ${os.name}: ${delta.join(', ')}` };
  return undefined;
}

/** The environment ValidateOS gives verify (OSCoreEnv, debug 0; nothing else: reset_env). */
export function verifyEnvironment(os: OsInfo, osName: string, osparams: [string, string][]): EnvMap {
  return osCoreEnv(osName, os, osparams, 0);
}

/**
 * ValidateOS(required=True, osName, ['parameters'], osparams) run synchronously, with verify
 * taken from `dir` (Ganeti's: the OS directory; validate gives a scratch copy of it). The
 * script is executed directly, as Popen does; callers first make sure the kernel can execute
 * it (a missing '#!' makes Popen raise, where sh would run it as a script). `timeoutMs` bounds
 * the run (Ganeti has none).
 */
export function validateOsSync(
  os: ValidateOsInfo,
  dir: string,
  osName: string,
  osparams: [string, string][],
  opts: { timeoutMs?: number; forceVariant?: boolean } = {},
): ValidateOsAnswer {
  const refused = validateOsChecks(
    os,
    osName,
    osparams.map(([k]) => k),
    opts.forceVariant,
  );
  if (refused) return { ok: false, ...refused };
  if (Math.max(...os.apiVersions) < OS_API_V20) return { ok: true, ran: false };
  const file = path.join(dir, OS_SCRIPT_VERIFY);
  // stdin a closed pipe and stdout+stderr one stream, as RunCmd gives them; `unset PWD` keeps
  // sh from adding it to the environment.
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const r = runSync(['/bin/sh', '-c', 'unset PWD; : | exec "$0" "$@" 2>&1', file, 'parameters'], {
    cwd: dir,
    env: verifyEnvironment(os, osName, osparams),
    timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: 4 * 1024 * 1024,
  });
  const output = r.stdout + r.stderr;
  if (r.timedOut) {
    return { ok: false, error: `verify did not finish within ${Math.round(timeoutMs / 1000)} s`, timedOut: true, output };
  }
  if (r.status === 0) return { ok: true, ran: true, output };
  const exitCode = r.signal || r.error ? null : r.status;
  const failReason = r.signal ? `terminated by signal ${nodeOs.constants.signals[r.signal] ?? r.signal}` : `exited with exit code ${exitCode}`;
  return { ok: false, error: `OS validation script failed (${failReason}), output: ${output}`, exitCode, signal: r.signal, output };
}
