/** The packed CLI installs and works as a new user would get it (npm pack, npm install -g). */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, snapshotTree, tempDir } from './helpers/cli';

jest.setTimeout(240000);

let work: string;
beforeAll(() => {
  work = tempDir('ganeti-os-pack-');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const run = (cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) =>
  spawnSync(cmd, args, { cwd: opts.cwd ?? work, encoding: 'utf8', env: { ...process.env, ...(opts.env ?? {}) }, timeout: 200000 });

describe('npm pack → npm install -g', () => {
  it('installs a working ganeti-os whose files and modes come from the manifest', () => {
    const pack = run('npm', ['pack', '--pack-destination', work, '--ignore-scripts'], { cwd: REPO });
    expect(pack.status).toBe(0);
    const tgz = fs.readdirSync(work).find((f) => f.endsWith('.tgz'))!;
    expect(tgz).toMatch(/^ganeti-os-.*\.tgz$/);
    const prefix = path.join(work, 'prefix');
    const inst = run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', path.join(work, tgz)]);
    expect(inst.stderr).not.toMatch(/ERR!/);
    expect(inst.status).toBe(0);
    const bin = path.join(prefix, 'bin', 'ganeti-os');
    expect(run(bin, ['--version']).stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
    // Break the modes of the installed templates: generated files must not care.
    const tpl = path.join(prefix, 'lib', 'node_modules', 'ganeti-os', 'templates');
    for (const e of snapshotTree(tpl)) if (e.type === 'file') fs.chmodSync(path.join(tpl, e.path), 0o600);
    const made = run(bin, ['new', 'packed', '--template', 'blank', '--yes']);
    expect(made.stderr).not.toMatch(/error/i);
    expect(made.status).toBe(0);
    const modes = Object.fromEntries(snapshotTree(path.join(work, 'packed')).map((e) => [e.path, e.mode]));
    expect(modes).toMatchObject({ create: '0755', export: '0755', 'lib/runtime.sh': '0644', 'ganeti_api_version': '0644' });
    expect(run(bin, ['info', 'packed', '--json']).stdout).toMatch(/"valid": true/);
  });
});
