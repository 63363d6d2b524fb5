/** The checked-in tables (Ganeti's defaults, Python's Unicode) are what the installed Ganeti and Python give. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { GANETI_PYTHON, GANETI_PYTHONPATH, describeSystem } from './helpers/system';

const script = (name: string) => path.join(__dirname, '..', 'scripts', name);

describeSystem('generated tables are current', { ganeti: true }, () => {
  it.each([['gen-ganeti-defaults.py'], ['gen-py-unicode.py']])('%s --check', (name) => {
    const r = spawnSync(GANETI_PYTHON, [script(name), '--check'], { env: { PYTHONPATH: GANETI_PYTHONPATH, PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });
});
