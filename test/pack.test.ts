/**
 * The packed CLI installs and works as a new user would get it (npm pack, npm install -g): into a
 * prefix, and — as the README tells an administrator without root — into ~/.local as an ordinary
 * user (uid 65534 when the tests run as root), manual pages included. npm fetches the runtime
 * dependencies from the registry.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, snapshotTree, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';

jest.setTimeout(240000);

const VERSION = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version as string;

let work: string;
let tgz: string;
beforeAll(() => {
  work = tempDir('pack');
  fs.chmodSync(work, 0o755); // the other user reads the package from here
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const run = (cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) =>
  spawnSync(cmd, args, { cwd: opts.cwd ?? work, encoding: 'utf8', env: { ...process.env, ...(opts.env ?? {}) }, timeout: 200000 });

describeSystem('npm pack → npm install -g', { commands: ['npm'] }, () => {
  beforeAll(() => {
    const pack = run('npm', ['pack', '--pack-destination', work, '--ignore-scripts'], { cwd: REPO });
    if (pack.status !== 0) throw new Error(`npm pack: ${pack.stderr}`);
    tgz = path.join(work, fs.readdirSync(work).find((f) => f.endsWith('.tgz'))!);
    fs.chmodSync(tgz, 0o644);
  });

  it('installs a working ganeti-os whose files and modes come from the manifest', () => {
    expect(path.basename(tgz)).toMatch(/^ganeti-os-.*\.tgz$/);
    const prefix = path.join(work, 'prefix');
    const inst = run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tgz]);
    expect(inst.stderr).not.toMatch(/ERR!/);
    expect(inst.status).toBe(0);
    const bin = path.join(prefix, 'bin', 'ganeti-os');
    expect(run(bin, ['--version']).stdout.trim()).toBe(VERSION);
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

  it('installs for a user without root into ~/.local, as the README says: the command and its manual pages', () => {
    // As root, the user is uid 65534 with a home of its own; otherwise the user running the tests.
    const root = process.getuid?.() === 0;
    const home = path.join(work, 'home');
    fs.mkdirSync(home);
    if (root) fs.chownSync(home, 65534, 65534);
    const asUser = (cmd: string, args: string[], PATH = '/usr/local/bin:/usr/bin:/bin') =>
      spawnSync(root ? 'setpriv' : cmd, root ? ['--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...args] : args, {
        cwd: home,
        encoding: 'utf8',
        // A user's environment: none of the npm_config_* of the npm running these tests.
        env: { PATH, HOME: home, LANG: 'C.UTF-8' },
        timeout: 200000,
      });
    // With --prefix, npm reads its global settings from ~/.local/etc/npmrc instead of the
    // system's: where the system's npmrc sets a certificate authority or a proxy (as on CI), the
    // README's route adds --globalconfig "$(npm config get globalconfig)".
    const globalconfig = asUser('npm', ['config', 'get', 'globalconfig']).stdout.trim();
    const keep = globalconfig && fs.existsSync(globalconfig) ? ['--globalconfig', globalconfig] : [];
    const inst = asUser('npm', ['install', '-g', '--prefix', `${home}/.local`, ...keep, '--no-audit', '--no-fund', tgz]);
    expect(inst.stderr).not.toMatch(/ERR!|EACCES/);
    expect(inst.status).toBe(0);
    const bin = path.join(home, '.local', 'bin', 'ganeti-os');
    expect(asUser(bin, ['--version']).stdout.trim()).toBe(VERSION);
    const made = asUser(bin, ['new', 'mine', '--template', 'blank', '--yes']);
    expect(made.status).toBe(0);
    expect(made.stderr).toContain('Next steps:');
    expect(asUser(bin, ['info', 'mine', '--json']).stdout).toMatch(/"valid": true/);
    // man finds the pages next to the command on PATH, as after the next login.
    if (spawnSync('sh', ['-c', 'command -v man']).status === 0) {
      const PATH = `${home}/.local/bin:/usr/local/bin:/usr/bin:/bin`;
      for (const page of ['ganeti-os', 'ganeti-os-new', 'ganeti-os-completion']) {
        const found = asUser('man', ['-w', page], PATH).stdout.trim();
        expect(found.startsWith(`${home}/.local/`)).toBe(true);
        expect(found.endsWith(`/${page}.1`)).toBe(true);
      }
    }
  });
});
