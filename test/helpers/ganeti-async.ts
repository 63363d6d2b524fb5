/** The Ganeti harness (test/ganeti/harness.py) asynchronously, to run two Ganeti operations at once. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { GanetiRelease } from '../../src/ganeti/releases';
import { GANETI_PYTHON, ganetiPythonPath } from './system';

export function ganetiAsync(request: Record<string, unknown>, release: GanetiRelease = '3.0'): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(GANETI_PYTHON, [path.join(__dirname, '..', 'ganeti', 'harness.py')], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PYTHONPATH: ganetiPythonPath(release) } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', () => {
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        reject(e);
      }
    });
    p.stdin.end(JSON.stringify(request));
  });
}
