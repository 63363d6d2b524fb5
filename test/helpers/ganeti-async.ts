/** The Ganeti harness (test/ganeti/harness.py) asynchronously, to run two Ganeti operations at once. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { GANETI_PYTHON, GANETI_PYTHONPATH } from './system';

export function ganetiAsync(request: Record<string, unknown>): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(GANETI_PYTHON, [path.join(__dirname, '..', 'ganeti', 'harness.py')], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PYTHONPATH: GANETI_PYTHONPATH } });
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
