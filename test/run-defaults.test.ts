/**
 * The checked-in tables are what the Ganeti releases and Python give: each release's defaults
 * (src/ganeti/defaults-<release>.ts) its own constants, Python's Unicode tables bookworm's
 * Python (the one both releases' code runs under in the harness).
 */
import { runSync } from '../src/system/process';
import * as path from 'node:path';
import { GANETI_PYTHON, describeReleases, describeSystem, ganetiPythonPath } from './helpers/system';

const script = (name: string) => path.join(__dirname, '..', 'scripts', name);
const check = (name: string, pythonPath: string) => {
  const r = runSync([GANETI_PYTHON, script(name), '--check'], { env: { PYTHONPATH: pythonPath, PATH: '/usr/bin:/bin' } });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
};

describeReleases('generated tables are current', {}, (release) => {
  it(`gen-ganeti-defaults.py --check: src/ganeti/defaults-${release}.ts`, () => check('gen-ganeti-defaults.py', ganetiPythonPath(release)));
});

describeSystem("Python's tables are current", { ganeti: true }, () => {
  it('gen-py-unicode.py --check', () => check('gen-py-unicode.py', ganetiPythonPath('3.0')));
});
