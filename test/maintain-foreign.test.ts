/**
 * Maintaining a definition ganeti-os did not write: a copy of ganeti-instance-debootstrap with
 * its variants.list a symlink into an "etc" directory. Text files are edited in place, its
 * scripts are never replaced, and Ganeti 3.0 accepts the result after every step.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runAddParam } from '../src/commands/add-param';
import { runAddVariant } from '../src/commands/add-variant';
import { runBumpApi } from '../src/commands/bump-api';
import { runRemoveParam } from '../src/commands/remove-param';
import { runRemoveVariant } from '../src/commands/remove-variant';
import { tryOsFromDisk, validateOs } from './helpers/ganeti';
import { describeSystem } from './helpers/system';
import { foreignCopy, read, runCommand, tempDir, treeHash } from './helpers/cli';

let work: string;
let dir: string;
let etc: string;
let scripts: string;

const SCRIPTS = ['create', 'import', 'export', 'rename', 'common.sh'];
const scriptsHash = () => SCRIPTS.map((s) => `${s} ${fs.statSync(path.join(dir, s)).mode.toString(8)} ${read(path.join(dir, s))}`).join('\n');

function ok(r: { code: number; err: string }): void {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`);
}

function expectGaneti(want: { api: number[]; variants: string[]; parameters: string[] }): void {
  const r = tryOsFromDisk(dir);
  expect(r.error).toBeUndefined();
  expect(r.ok).toBe(true);
  expect(r.os!.api_versions).toEqual(want.api);
  expect(r.os!.variants).toEqual(want.variants);
  expect(r.os!.parameters.map((p) => p[0])).toEqual(want.parameters);
  // Its own scripts are never replaced.
  expect(scriptsHash()).toBe(scripts);
  expect(fs.lstatSync(path.join(dir, 'variants.list')).isSymbolicLink()).toBe(true);
}

beforeEach(() => {
  work = tempDir('foreign');
  ({ os: dir, etc } = foreignCopy(work));
  scripts = scriptsHash();
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describeSystem('maintaining a definition ganeti-os did not write (ganeti-instance-debootstrap)', { ganeti: true, commands: ['shellcheck'] }, () => {
  it('starts as Ganeti sees the packaged one', () => {
    expectGaneti({ api: [20, 15, 10, 5], variants: ['default'], parameters: ['filesystem'] });
  });

  it('add-variant edits the symlink target in place and says so; remove-variant keeps the configuration unless --force', async () => {
    let r = await runCommand(runAddVariant, dir, { variant: 'bookworm', set: ['SUITE=bookworm'] });
    ok(r);
    expect(r.err).toContain(`the file edited is its target, ${path.join(etc, 'variants.list')}`);
    expect(read(path.join(etc, 'variants.list'))).toBe(
      '# Variants of debootstrap published to Ganeti (one per line).\ndefault\nbookworm\n\n# Old suites, kept for reinstalls:\n',
    );
    expect(read(path.join(etc, 'variants', 'bookworm.conf'))).toMatch(/^SUITE=bookworm$/m);
    const sc = spawnSync('shellcheck', ['bookworm.conf'], { cwd: path.join(etc, 'variants'), encoding: 'utf8' });
    expect(sc.stdout + sc.stderr).toBe('');
    expect(fs.existsSync(path.join(dir, '.ganeti-os.json'))).toBe(false);
    expectGaneti({ api: [20, 15, 10, 5], variants: ['default', 'bookworm'], parameters: ['filesystem'] });
    expect(validateOs(dir, 'debootstrap+bookworm', { filesystem: 'ext4' })).toEqual({ ok: true });

    ok(await runCommand(runAddVariant, dir, { variant: 'trixie', first: true }));
    expectGaneti({ api: [20, 15, 10, 5], variants: ['trixie', 'default', 'bookworm'], parameters: ['filesystem'] });
    expect(fs.existsSync(path.join(etc, 'variants', 'trixie.conf'))).toBe(true);

    r = await runCommand(runRemoveVariant, dir, { variant: 'bookworm' });
    ok(r);
    expect(r.err).toMatch(/Kept .*bookworm\.conf/);
    expect(fs.existsSync(path.join(etc, 'variants', 'bookworm.conf'))).toBe(true);
    ok(await runCommand(runRemoveVariant, dir, { variant: 'trixie', force: true }));
    expect(fs.existsSync(path.join(etc, 'variants', 'trixie.conf'))).toBe(false);
    expectGaneti({ api: [20, 15, 10, 5], variants: ['default'], parameters: ['filesystem'] });
    expect(read(path.join(etc, 'variants.list'))).toBe(read(path.join(__dirname, 'fixtures', 'foreign-debootstrap', 'etc', 'variants.list')));
  });

  it('add-variant --set refuses a key neither its scripts nor its variant configurations read or set (issue 22), and leaves every file as it was', async () => {
    const before = treeHash(work);
    const r = await runCommand(runAddVariant, dir, { variant: 'bookworm', set: ['SUIT=bookworm'] });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/not written by ganeti-os, and neither its scripts nor its variants' configuration read or set SUIT; nothing was changed/);
    expect(r.err).toMatch(/SUIT: did you mean SUITE\?/);
    expect(treeHash(work)).toBe(before);
    // A key only its existing variant configuration sets is one it knows.
    fs.appendFileSync(path.join(etc, 'variants', 'default.conf'), 'SITE_ROLE=web\n');
    ok(await runCommand(runAddVariant, dir, { variant: 'bookworm', set: ['SUITE=bookworm', 'SITE_ROLE=db'] }));
    expect(read(path.join(etc, 'variants', 'bookworm.conf'))).toMatch(/^SITE_ROLE=db$/m);
    // --force writes an unknown one anyway (for a hook of the admin's).
    ok(await runCommand(runAddVariant, dir, { variant: 'trixie', set: ['MY_HOOK_FLAG=1'], force: true }));
    expect(read(path.join(etc, 'variants', 'trixie.conf'))).toMatch(/^MY_HOOK_FLAG=1$/m);
  });

  it('a variants.list symlink to a file another definition of the node reads too: add-variant and remove-variant refuse without --force and say why (issue 22)', async () => {
    // A copy made with cp -a keeps the symlink: both definitions now read etc/variants.list.
    const copy = path.join(work, 'os', 'debcopy');
    fs.cpSync(dir, copy, { recursive: true, verbatimSymlinks: true });
    const list = path.join(etc, 'variants.list');
    let before = treeHash(work);
    let r = await runCommand(runAddVariant, copy, { variant: 'bookworm', set: ['SUITE=bookworm'] });
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path.join(copy, 'variants.list')} is a symlink to ${list}, a file outside the definition that ${dir} reads as its variants.list too: add-variant would change its variants as well; nothing was changed`);
    expect(r.err).toContain(`cp --remove-destination ${list} ${path.join(copy, 'variants.list')}`);
    expect(treeHash(work)).toBe(before);
    expect((await runCommand(runAddVariant, copy, { variant: 'bookworm', dryRun: true })).code).toBe(1);
    expect(treeHash(work)).toBe(before);

    r = await runCommand(runAddVariant, copy, { variant: 'bookworm', set: ['SUITE=bookworm'], force: true });
    ok(r);
    expect(r.err).toMatch(new RegExp(`warning: variants.list is a symlink: the file edited is its target, ${list.replace(/[.+]/g, '\\$&')}, outside .*debcopy \\(a file of this host, read by .*os/debootstrap too\\)`));
    expect(read(list)).toMatch(/^bookworm$/m);
    before = treeHash(work);
    r = await runCommand(runRemoveVariant, copy, { variant: 'bookworm' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/remove-variant would change its variants as well; nothing was changed/);
    expect(treeHash(work)).toBe(before);
    ok(await runCommand(runRemoveVariant, copy, { variant: 'bookworm', force: true }));
    expect(read(list)).not.toMatch(/^bookworm$/m);

    // Alone (the copy gone), the edit goes ahead and says which host file it edits.
    fs.rmSync(copy, { recursive: true });
    r = await runCommand(runAddVariant, dir, { variant: 'trixie' });
    ok(r);
    expect(r.err).toMatch(/warning: variants.list is a symlink: the file edited is its target, .*, outside .*debootstrap \(a file of this host\)/);
  });

  (fs.existsSync('/usr/share/ganeti/os/debootstrap/variants.list') ? it : it.skip)(
    "a copy of this node's ganeti-instance-debootstrap (variants.list -> /etc/ganeti/instance-debootstrap/variants.list): add-variant refuses to edit the package's list, even as a dry run (issue 22)",
    async () => {
      const copy = path.join(work, 'host', 'debcopy');
      fs.mkdirSync(path.dirname(copy), { recursive: true });
      fs.cpSync('/usr/share/ganeti/os/debootstrap', copy, { recursive: true, verbatimSymlinks: true });
      const target = fs.realpathSync('/usr/share/ganeti/os/debootstrap/variants.list');
      const hostList = read(target);
      const r = await runCommand(runAddVariant, copy, { variant: 'ganeti-os-test-variant', dryRun: true });
      expect(r.code).toBe(1);
      expect(r.err).toContain(`is a symlink to ${target}, a file outside the definition that /usr/share/ganeti/os/debootstrap reads as its variants.list too`);
      expect(read(target)).toBe(hostList);
    },
  );

  it('add-param appends to parameters.list; its own verify still judges its own parameter', async () => {
    let r = await runCommand(runAddParam, dir, { name: 'root-size', description: 'Size of the root partition' });
    ok(r);
    expect(r.err).toMatch(/OSP_ROOT_SIZE/);
    expectGaneti({ api: [20, 15, 10, 5], variants: ['default'], parameters: ['filesystem', 'root-size'] });
    expect(validateOs(dir, 'debootstrap+default', { filesystem: 'ext4', 'root-size': '4G' })).toEqual({ ok: true });
    const bad = validateOs(dir, 'debootstrap+default', { filesystem: 'btrfs' });
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(/filesystem/);

    // Checks it cannot put into a verify script it did not write are refused.
    const before = treeHash(work);
    r = await runCommand(runAddParam, dir, { name: 'swap', description: 'Swap size', choices: 'yes,no' });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/not written by ganeti-os/);
    expect(treeHash(work)).toBe(before);

    ok(await runCommand(runRemoveParam, dir, { name: 'root-size' }));
    expectGaneti({ api: [20, 15, 10, 5], variants: ['default'], parameters: ['filesystem'] });
    expect(read(path.join(dir, 'parameters.list'))).toBe(read(path.join(__dirname, 'fixtures', 'foreign-debootstrap', 'os', 'debootstrap', 'parameters.list')));
  });

  it('bump-api 15 → 20 → 10 → 20 rewrites ganeti_api_version and leaves its scripts alone', async () => {
    let r = await runCommand(runBumpApi, dir, { version: '15', force: true });
    ok(r);
    expect(r.err).toMatch(/left in place/);
    expectGaneti({ api: [15, 10, 5], variants: ['default'], parameters: [] });
    expect(fs.existsSync(path.join(dir, 'verify'))).toBe(true);

    ok(await runCommand(runBumpApi, dir, { version: '20' }));
    expectGaneti({ api: [20, 15, 10, 5], variants: ['default'], parameters: ['filesystem'] });
    // Without --force, the declared parameter stops it.
    const before = treeHash(work);
    r = await runCommand(runBumpApi, dir, { version: '10' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/declares parameters \(filesystem\)/);
    expect(treeHash(work)).toBe(before);

    ok(await runCommand(runBumpApi, dir, { version: '10', force: true }));
    expectGaneti({ api: [10, 5], variants: [], parameters: [] });
    // Back to variants: instances named plain debootstrap would be refused, so only with --force.
    expect((await runCommand(runBumpApi, dir, { version: '20' })).code).toBe(1);
    ok(await runCommand(runBumpApi, dir, { version: '20', force: true }));
    // Scripts written for 10 only are not claimed to handle 15.
    expectGaneti({ api: [20, 10, 5], variants: ['default'], parameters: ['filesystem'] });
    expect(validateOs(dir, 'debootstrap+default', { filesystem: 'ext3' })).toEqual({ ok: true });
  });

  it('bump-api 20 on one without verify or parameters.list adds a verify script that Ganeti runs', async () => {
    fs.rmSync(path.join(dir, 'verify'));
    fs.rmSync(path.join(dir, 'parameters.list'));
    fs.writeFileSync(path.join(dir, 'ganeti_api_version'), '15\n10\n');
    expectGaneti({ api: [15, 10], variants: ['default'], parameters: [] });
    const r = await runCommand(runBumpApi, dir, { version: '20' });
    ok(r);
    expect(r.err).toMatch(/Added a verify script/);
    expectGaneti({ api: [20, 15, 10], variants: ['default'], parameters: [] });
    expect(fs.statSync(path.join(dir, 'verify')).mode & 0o777).toBe(0o755);
    expect(read(path.join(dir, 'parameters.list'))).toBe('');
    expect(validateOs(dir, 'debootstrap+default', {})).toEqual({ ok: true });
    ok(await runCommand(runAddParam, dir, { name: 'size', description: 'Root size' }));
    expect(validateOs(dir, 'debootstrap+default', { size: '1G' })).toEqual({ ok: true });
    for (const extra of [[], ['-x']]) {
      const sc = spawnSync('shellcheck', [...extra, 'verify'], { cwd: dir, encoding: 'utf8' });
      expect(sc.stdout + sc.stderr).toBe('');
    }
    const help = spawnSync(path.join(dir, 'verify'), ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: verify parameters/);
    expect(spawnSync(path.join(dir, 'verify'), ['bogus'], { stdio: 'ignore' }).status).toBe(2);
  });

  it('bump-api 20 on one whose create and verify exit for any version but 10 or 15 is refused without --force; Ganeti fails it after a forced bump (issue 29)', async () => {
    const check = 'case "$OS_API_VERSION" in\n  10|15) ;;\n  *) echo "Unknown OS API VERSION $OS_API_VERSION" >&2; exit 1;;\nesac\n';
    for (const s of ['create', 'verify']) {
      const f = path.join(dir, s);
      fs.writeFileSync(f, read(f).replace(/^set -e\n/m, `set -e\n${check}`));
    }
    expect(read(path.join(dir, 'create'))).toContain(check);
    fs.writeFileSync(path.join(dir, 'ganeti_api_version'), '15\n10\n');
    scripts = scriptsHash();
    const before = treeHash(work);
    const r = await runCommand(runBumpApi, dir, { version: '20' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/accept OS_API_VERSION 10, 15 only \(create: .*Ganeti passes OS_API_VERSION=20: every instance operation fails; nothing was changed/);
    expect(treeHash(work)).toBe(before);
    // Forced, it is written, and Ganeti's own ValidateOS then fails it as the refusal said.
    ok(await runCommand(runBumpApi, dir, { version: '20', force: true }));
    expectGaneti({ api: [20, 15, 10], variants: ['default'], parameters: ['filesystem'] });
    const g = validateOs(dir, 'debootstrap+default', {});
    expect([g.ok, g.error]).toEqual([false, expect.stringMatching(/Unknown OS API VERSION 20/)]);
  });

  it('bump-api 15 on one without variants.list creates it with a default variant', async () => {
    fs.rmSync(path.join(dir, 'variants.list'));
    fs.writeFileSync(path.join(dir, 'ganeti_api_version'), '10\n');
    fs.rmSync(path.join(etc, 'variants'), { recursive: true });
    const r = await runCommand(runBumpApi, dir, { version: '15', force: true });
    ok(r);
    expect(r.err).toMatch(/OS_VARIANT=default/);
    expect(read(path.join(dir, 'variants.list'))).toBe('default\n');
    const t = tryOsFromDisk(dir);
    expect(t.ok).toBe(true);
    expect(t.os!.api_versions).toEqual([15, 10]);
    expect(t.os!.variants).toEqual(['default']);
  });
});
