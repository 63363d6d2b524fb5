/** The Ganeti harness (test/ganeti/harness.py) asynchronously, to run two Ganeti operations at once. */
import * as path from 'node:path';
import type { GanetiRelease } from '../../src/ganeti/releases';
import { run } from '../../src/system/process';
import { GANETI_PYTHON, ganetiPythonPath } from './system';

export async function ganetiAsync(request: Record<string, unknown>, release: GanetiRelease = '3.0'): Promise<{ ok: boolean; error?: string }> {
  const r = await run([GANETI_PYTHON, path.join(__dirname, '..', 'ganeti', 'harness.py')], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PYTHONPATH: ganetiPythonPath(release) },
    input: JSON.stringify(request),
  });
  if (r.error) throw r.error;
  return JSON.parse(r.stdout) as { ok: boolean; error?: string };
}
