/**
 * Maintaining a definition ganeti-os wrote, step by step, asking Ganeti 3.0 after each step:
 * `_TryOSFromDisk` for what it loads, `ValidateOS` running the generated verify, and
 * `InstanceOsAdd` running create.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runAddParam } from '../src/commands/add-param';
import { runAddVariant } from '../src/commands/add-variant';
import { runBumpApi } from '../src/commands/bump-api';
import { runNew } from '../src/commands/new';
import { runRemoveParam } from '../src/commands/remove-param';
import { runRemoveVariant } from '../src/commands/remove-variant';
import { instanceOsAdd, tryOsFromDisk, validateOs } from './helpers/ganeti';
import { describeSystem } from './helpers/system';
import { read, runCommand, tempDir, treeHash } from './helpers/cli';

let work: string;
let dir: string;

async function newDefinition(name = 'myos', api = '20,15,10'): Promise<string> {
  const r = await runCommand(runNew, work, { name, template: 'blank', api, yes: true });
  if (r.code !== 0) throw new Error(r.err);
  return path.join(work, name);
}

const addVariant = (variant: string, more: Record<string, unknown> = {}) => runCommand(runAddVariant, dir, { variant, ...more });
const removeVariant = (variant: string, more: Record<string, unknown> = {}) => runCommand(runRemoveVariant, dir, { variant, ...more });
const bumpApi = (version: string, more: Record<string, unknown> = {}) => runCommand(runBumpApi, dir, { version, ...more });
const addParam = (name: string, description: string, more: Record<string, unknown> = {}) => runCommand(runAddParam, dir, { name, description, ...more });
const removeParam = (name: string, more: Record<string, unknown> = {}) => runCommand(runRemoveParam, dir, { name, ...more });

function ok(r: { code: number; err: string }): void {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`);
}

/** Ganeti's verdict, which must be "valid" with these API versions, variants and parameters. */
function expectGaneti(d: string, want: { api: number[]; variants: string[]; parameters?: string[] }): void {
  const r = tryOsFromDisk(d);
  expect(r.error).toBeUndefined();
  expect(r.ok).toBe(true);
  expect(r.os!.api_versions).toEqual(want.api);
  expect(r.os!.variants).toEqual(want.variants);
  expect(r.os!.parameters.map((p) => p[0])).toEqual(want.parameters ?? []);
  expect(r.os!.verify_script === null).toBe(Math.max(...want.api) < 20);
}

/** Every shell file of the definition passes shellcheck, with and without -x. */
function expectShellcheckClean(d: string): void {
  const files = ['create', 'import', 'export', 'rename', 'verify', 'defaults.conf']
    .filter((f) => fs.existsSync(path.join(d, f)))
    .concat(fs.readdirSync(path.join(d, 'lib')).map((f) => path.join('lib', f)))
    .concat(fs.existsSync(path.join(d, 'variants')) ? fs.readdirSync(path.join(d, 'variants')).map((f) => path.join('variants', f)) : []);
  for (const extra of [[], ['-x']]) {
    const r = spawnSync('shellcheck', [...extra, ...files], { cwd: d, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  }
}

/** What a script of the definition sees of a parameter (the runtime as the shims load it). */
function paramSeen(d: string, name: string, env: Record<string, string> = {}): string {
  const r = spawnSync(
    'bash',
    ['-c', 'set -euo pipefail; GOS_DIR=$1; . "$GOS_DIR/lib/runtime.sh"; gos_load_params; gos_param "$2"', 'bash', d, name],
    // stdin not a socket: bash would take itself for an rsh session and read ~/.bashrc.
    { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  expect(r.stderr).toBe('');
  return r.stdout;
}

function fakeInstance(d: string, os: string) {
  const disk = path.join(work, 'disk0.img');
  fs.writeFileSync(disk, Buffer.alloc(1024 * 1024));
  return { name: 'inst1.example.com', os, os_dir: d, disks: [{ path: disk, size: 1 }] };
}

function logsOf(logdir: string): string {
  return fs
    .readdirSync(logdir)
    .map((f) => read(path.join(logdir, f)))
    .join('\n');
}

beforeEach(async () => {
  work = tempDir('maint');
  dir = await newDefinition();
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describeSystem('maintaining a ganeti-os definition, judged by Ganeti 3.0', { ganeti: true, commands: ['shellcheck'] }, () => {
  it('starts from a definition Ganeti accepts', () => {
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'] });
  });

  it('add-variant and remove-variant, step by step', async () => {
    let r = await addVariant('bookworm', { set: ['SUITE=bookworm'] });
    ok(r);
    expect(r.out).toMatch(/Added variant 'bookworm'/);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default', 'bookworm'] });
    expect(read(path.join(dir, 'variants', 'bookworm.conf'))).toMatch(/^SUITE=bookworm$/m);

    ok(await addVariant('trixie', { first: true }));
    expectGaneti(dir, { api: [20, 15, 10], variants: ['trixie', 'default', 'bookworm'] });
    expect(read(path.join(dir, 'variants.list'))).toMatch(/^# Variants of myos/);

    // Adding one that exists changes nothing and says so.
    let before = treeHash(dir);
    r = await addVariant('bookworm');
    ok(r);
    expect(r.out).toMatch(/already exists.*nothing to change/);
    expect(treeHash(dir)).toBe(before);

    // ...and with --set, updates only its configuration.
    const list = read(path.join(dir, 'variants.list'));
    r = await addVariant('bookworm', { set: ['SUITE=bookworm-backports', 'EXTRA=a b'] });
    ok(r);
    expect(r.out).toMatch(/updated only its configuration/);
    expect(read(path.join(dir, 'variants.list'))).toBe(list);
    const conf = read(path.join(dir, 'variants', 'bookworm.conf'));
    expect(conf).toMatch(/^SUITE=bookworm-backports$/m);
    expect(conf).toMatch(/^EXTRA='a b'$/m);
    expect(conf.match(/^SUITE=/gm)).toHaveLength(1);

    r = await removeVariant('trixie');
    ok(r);
    expect(r.err).toMatch(/'default' is now the default variant/);
    expect(fs.existsSync(path.join(dir, 'variants', 'trixie.conf'))).toBe(false);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default', 'bookworm'] });
    ok(await removeVariant('default'));
    expect(fs.existsSync(path.join(dir, 'variants', 'default.conf'))).toBe(false);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['bookworm'] });

    // The last variant stays.
    before = treeHash(dir);
    r = await removeVariant('bookworm');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/only variant/);
    expect(treeHash(dir)).toBe(before);

    // Ganeti's own variant check agrees.
    expect(validateOs(dir, 'myos+bookworm', {})).toEqual({ ok: true });
    const gone = validateOs(dir, 'myos+trixie', {});
    expect(gone.ok).toBe(false);
    expect(gone.error).toMatch(/trixie/);
    expectShellcheckClean(dir);
  });

  it('add-variant refuses below API 15 and suggests bump-api 15', async () => {
    dir = await newDefinition('old10', '10');
    const before = treeHash(dir);
    const r = await addVariant('bookworm');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bump-api 15/);
    expect(treeHash(dir)).toBe(before);
  });

  it('add-param and remove-param: Ganeti ValidateOS runs the checks, scripts see the defaults', async () => {
    let r = await addParam('filesystem', 'The root filesystem', { choices: 'ext4,xfs', default: 'ext4' });
    ok(r);
    ok(await addParam('root-size', 'Size of the root partition', { pattern: '[0-9]+[MG]' }));
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'], parameters: ['filesystem', 'root-size'] });
    expect(read(path.join(dir, 'parameters.list'))).toBe('filesystem The root filesystem\nroot-size Size of the root partition\n');

    expect(validateOs(dir, 'myos+default', { filesystem: 'xfs', 'root-size': '10G' })).toEqual({ ok: true });
    expect(validateOs(dir, 'myos', {}, true)).toEqual({ ok: true });
    let bad = validateOs(dir, 'myos+default', { filesystem: 'btrfs' });
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(/parameter filesystem/);
    expect(bad.error).toMatch(/btrfs/);
    bad = validateOs(dir, 'myos+default', { 'root-size': 'ten gigs' });
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(/parameter root-size/);

    expect(paramSeen(dir, 'filesystem')).toBe('ext4');
    expect(paramSeen(dir, 'filesystem', { OSP_FILESYSTEM: 'xfs' })).toBe('xfs');
    expect(paramSeen(dir, 'root-size')).toBe('');

    // Declaring it again replaces its checks.
    r = await addParam('root-size', 'Size of the root partition, in GiB', { pattern: '[0-9]+G', default: '4G' });
    ok(r);
    expect(r.out).toMatch(/Updated parameter 'root-size'/);
    expect(validateOs(dir, 'myos+default', { 'root-size': '512M' }).ok).toBe(false);
    expect(paramSeen(dir, 'root-size')).toBe('4G');
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'], parameters: ['filesystem', 'root-size'] });

    ok(await removeParam('filesystem'));
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'], parameters: ['root-size'] });
    const unknown = validateOs(dir, 'myos+default', { filesystem: 'xfs' });
    expect(unknown.ok).toBe(false);
    expect(unknown.error).toMatch(/not supported.*filesystem/);
    expect(validateOs(dir, 'myos+default', { 'root-size': '8G' })).toEqual({ ok: true });

    ok(await removeParam('root-size'));
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'], parameters: [] });
    expect(read(path.join(dir, 'parameters.list'))).toBe('');
    expectShellcheckClean(dir);
  });

  it('add-param needs API 20 and refuses names Ganeti would mangle', async () => {
    ok(await bumpApi('15'));
    let before = treeHash(dir);
    let r = await addParam('size', 'Root size');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bump-api 20/);
    expect(treeHash(dir)).toBe(before);
    ok(await bumpApi('20'));
    before = treeHash(dir);
    for (const name of ['Size', 'no_size', 'a=b', 'a,b', '-x', 'size!', '']) {
      r = await addParam(name, 'x');
      expect([name, r.code]).toEqual([name, 2]);
    }
    for (const more of [{ choices: 'a,,b' }, { choices: 'a,b', default: 'c' }, { pattern: '(' }, { pattern: '[0-9]+', default: 'x' }, { choices: 'a b' }]) {
      r = await addParam('size', 'Root size', more);
      expect([more, r.code]).toEqual([more, 2]);
    }
    r = await addParam('size', '   ');
    expect(r.code).toBe(2);
    ok(await addParam('root-size', 'x'));
    before = treeHash(dir);
    r = await addParam('root_size', 'y');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/OSP_ROOT_SIZE/);
    expect(treeHash(dir)).toBe(before);
  });

  it('bump-api 20 → 15 → 20 comes back to the same files', async () => {
    const start = treeHash(dir);
    let r = await bumpApi('15');
    ok(r);
    expectGaneti(dir, { api: [15, 10], variants: ['default'] });
    expect(fs.existsSync(path.join(dir, 'verify'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'parameters.list'))).toBe(false);
    const logdir = path.join(work, 'log');
    const add = instanceOsAdd(fakeInstance(dir, 'myos+default'), { debug: 1, logdir });
    expect(add.error).toBeUndefined();
    expect(logsOf(logdir)).toMatch(/OS myos\+default, API 15/);
    r = await bumpApi('20');
    ok(r);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'] });
    expect(fs.statSync(path.join(dir, 'verify')).mode & 0o777).toBe(0o755);
    expect(treeHash(dir)).toBe(start);
    expect(validateOs(dir, 'myos+default', {})).toEqual({ ok: true });

    r = await bumpApi('20', { only: true });
    ok(r);
    expectGaneti(dir, { api: [20], variants: ['default'] });
    expectShellcheckClean(dir);
  });

  it('bump-api 10: Ganeti sees no variants, create still uses the default variant configuration', async () => {
    ok(await addVariant('default', { set: ['MARKER=from-default-conf'] }));
    // Instances named myos+default would be refused: only with --force.
    expect((await bumpApi('10')).code).toBe(1);
    let r = await bumpApi('10', { force: true });
    ok(r);
    expect(r.err).toMatch(/ignores variants.list below API 15/);
    expectGaneti(dir, { api: [10], variants: [] });
    expect(fs.existsSync(path.join(dir, 'variants.list'))).toBe(true);
    expectShellcheckClean(dir);

    const logdir = path.join(work, 'log');
    const add = instanceOsAdd(fakeInstance(dir, 'myos'), { debug: 1, logdir });
    expect(add.error).toBeUndefined();
    expect(add.ok).toBe(true);
    const log = logsOf(logdir);
    expect(log).toContain(`reading ${dir}/variants/default.conf`);
    expect(log).toMatch(/OS myos\+default, API 10/);

    // And back up (with --force: Ganeti requires a variant again): 15 keeps the variant, 20
    // brings verify and parameters.list back.
    r = await bumpApi('15', { force: true });
    ok(r);
    expectGaneti(dir, { api: [15, 10], variants: ['default'] });
    ok(await bumpApi('20'));
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'] });
    expect(validateOs(dir, 'myos+default', {})).toEqual({ ok: true });
  });

  it('bump-api 15 from a definition written for API 10 adds variants.list with a default variant', async () => {
    dir = await newDefinition('old10', '10');
    expectGaneti(dir, { api: [10], variants: [] });
    // Instances named plain old10 would then be refused: only with --force.
    expect((await bumpApi('15')).err).toMatch(/must include a variant/);
    const r = await bumpApi('15', { force: true });
    ok(r);
    expectGaneti(dir, { api: [15, 10], variants: ['default'] });
    expect(fs.existsSync(path.join(dir, 'variants', 'default.conf'))).toBe(true);
    ok(await bumpApi('20'));
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'] });
    ok(await addParam('size', 'Root size', { default: '4G' }));
    expect(validateOs(dir, 'old10+default', { size: '8G' })).toEqual({ ok: true });
    expectShellcheckClean(dir);
  });

  it('bump-api refuses what the target version cannot carry, unless --force', async () => {
    ok(await addParam('size', 'Root size', { default: '4G' }));
    ok(await addVariant('bookworm'));
    let before = treeHash(dir);
    let r = await bumpApi('15');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/declares parameters \(size\)/);
    expect(treeHash(dir)).toBe(before);
    r = await bumpApi('15', { force: true });
    ok(r);
    expectGaneti(dir, { api: [15, 10], variants: ['default', 'bookworm'] });
    expect(fs.existsSync(path.join(dir, 'parameters.list'))).toBe(false);
    // Ganeti passes no OSP_* below 20: the scripts keep the default.
    expect(r.err).toMatch(/always use the defaults \(size='4G'\)/);
    expect(paramSeen(dir, 'size')).toBe('4G');

    before = treeHash(dir);
    r = await bumpApi('10');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/2 variants/);
    expect(treeHash(dir)).toBe(before);
    ok(await bumpApi('10', { force: true }));
    expectGaneti(dir, { api: [10], variants: [] });

    before = treeHash(dir);
    for (const v of ['5', '17', 'abc', '', '20x', '-10']) {
      r = await bumpApi(v);
      expect([v, r.code]).toEqual([v, 2]);
    }
    r = await bumpApi('5');
    expect(r.err).toMatch(/Ganeti 1\.2/);
    expect(treeHash(dir)).toBe(before);

    // Back to 20 (variants again, so --force): the parameter is declared again, with its checks and default.
    r = await bumpApi('20', { force: true });
    ok(r);
    expect(r.err).toMatch(/Declared again the parameters kept from API 20: size/);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default', 'bookworm'], parameters: ['size'] });
    expect(validateOs(dir, 'myos+bookworm', { size: '8G' })).toEqual({ ok: true });
    expect(paramSeen(dir, 'size')).toBe('4G');
  });

  it('remove-param below API 20 drops a parameter kept for its default', async () => {
    ok(await addParam('size', 'Root size', { default: '4G' }));
    ok(await bumpApi('15', { force: true }));
    let r = await removeParam('nope');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Its parameters: size/);
    r = await removeParam('size');
    ok(r);
    expect(paramSeen(dir, 'size')).toBe('');
    ok(await bumpApi('20'));
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default'], parameters: [] });
    expectShellcheckClean(dir);
  });

  it('files the user edited are not rewritten without --force; untouched ones are', async () => {
    // A tool-owned file the change does not affect does not stand in the way.
    fs.appendFileSync(path.join(dir, 'lib', 'steps.sh'), '# local tweak\n');
    ok(await addVariant('bookworm'));
    expect(read(path.join(dir, 'lib', 'steps.sh'))).toMatch(/# local tweak\n$/);

    // One it must rewrite does: exit 1, listing it, nothing changed.
    fs.appendFileSync(path.join(dir, 'lib', 'parameters.sh'), '# mine\n');
    let before = treeHash(dir);
    let r = await addParam('size', 'Root size');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/lib\/parameters\.sh: edited since ganeti-os wrote it/);
    expect(r.err).toMatch(/--force/);
    expect(treeHash(dir)).toBe(before);
    ok(await addParam('size', 'Root size', { force: true }));
    expect(read(path.join(dir, 'lib', 'parameters.sh'))).not.toMatch(/# mine/);
    ok(await removeParam('size'));
    // Documentation never does: an edited README is kept.
    fs.appendFileSync(path.join(dir, 'README.md'), '\nLocal notes.\n');
    r = await addVariant('trixie');
    ok(r);
    expect(read(path.join(dir, 'README.md'))).toMatch(/Local notes/);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default', 'bookworm', 'trixie'] });

    // An edited variant configuration is kept on remove-variant unless --force.
    fs.appendFileSync(path.join(dir, 'variants', 'trixie.conf'), 'MIRROR=http://mirror.example/debian\n');
    r = await removeVariant('trixie');
    ok(r);
    expect(r.err).toMatch(/Kept variants\/trixie\.conf/);
    expect(fs.existsSync(path.join(dir, 'variants', 'trixie.conf'))).toBe(true);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default', 'bookworm'] });
    // Re-adding it keeps the user's configuration.
    r = await addVariant('trixie');
    ok(r);
    expect(read(path.join(dir, 'variants', 'trixie.conf'))).toMatch(/mirror\.example/);
    fs.appendFileSync(path.join(dir, 'variants', 'bookworm.conf'), 'X=1\n');
    ok(await removeVariant('bookworm', { force: true }));
    expect(fs.existsSync(path.join(dir, 'variants', 'bookworm.conf'))).toBe(false);

    // An edited tool script to be removed stops bump-api.
    fs.appendFileSync(path.join(dir, 'verify'), '# mine\n');
    before = treeHash(dir);
    r = await bumpApi('15');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/verify: to be removed, but edited/);
    expect(treeHash(dir)).toBe(before);
    ok(await bumpApi('15', { force: true }));
    expectGaneti(dir, { api: [15, 10], variants: ['default', 'trixie'] });
  });

  it('a hand-edited ganeti_api_version is read, not refused: it holds nothing but versions', async () => {
    fs.writeFileSync(path.join(dir, 'ganeti_api_version'), '20\n15\n');
    let r = await addVariant('bookworm');
    ok(r);
    expect(read(path.join(dir, 'ganeti_api_version'))).toBe('20\n15\n');
    r = await bumpApi('15');
    ok(r);
    expect(read(path.join(dir, 'ganeti_api_version'))).toBe('15\n10\n');
    expectGaneti(dir, { api: [15, 10], variants: ['default', 'bookworm'] });
  });

  it('a user-edited variants.list keeps its comments, and a symlinked one is edited at its target', async () => {
    const etc = path.join(work, 'etc');
    fs.mkdirSync(etc);
    const target = path.join(etc, 'variants.list');
    fs.writeFileSync(target, '# published variants\ndefault\n\n# end\n');
    fs.rmSync(path.join(dir, 'variants.list'));
    fs.symlinkSync(target, path.join(dir, 'variants.list'));
    const r = await addVariant('bookworm');
    ok(r);
    expect(r.err).toContain(`the file edited is its target, ${target}`);
    expect(fs.lstatSync(path.join(dir, 'variants.list')).isSymbolicLink()).toBe(true);
    expect(read(target)).toBe('# published variants\ndefault\nbookworm\n\n# end\n');
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default', 'bookworm'] });
    ok(await removeVariant('default'));
    expect(read(target)).toBe('# published variants\nbookworm\n\n# end\n');
    expect(fs.lstatSync(path.join(dir, 'variants.list')).isSymbolicLink()).toBe(true);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['bookworm'] });
  });

  it('a write killed half-way is rolled back before the next command plans', async () => {
    // The state a SIGKILL in the middle of `add-variant bookworm` leaves behind.
    const list = path.join(dir, 'variants.list');
    const old = read(list);
    const backup = path.join(dir, '.variants.list.ganeti-os-old');
    fs.writeFileSync(backup, old);
    fs.writeFileSync(list, old + 'bookworm\n');
    const conf = path.join(dir, 'variants', 'bookworm.conf');
    fs.writeFileSync(conf, 'SUITE=bookworm\n');
    const journal = path.join(dir, '.ganeti-os.journal');
    fs.writeFileSync(journal, JSON.stringify({ entries: [{ target: list, staged: `${list}.gone`, backup }, { target: conf, staged: `${conf}.gone` }], createdDirs: [] }));

    const before = treeHash(dir);
    let r = await addVariant('trixie', { dryRun: true });
    ok(r);
    expect(r.err).toMatch(/interrupted/);
    expect(treeHash(dir)).toBe(before);

    r = await addVariant('trixie');
    ok(r);
    expect(r.err).toMatch(/interrupted/);
    expect(fs.existsSync(journal)).toBe(false);
    expect(fs.existsSync(conf)).toBe(false);
    expect(fs.existsSync(backup)).toBe(false);
    expectGaneti(dir, { api: [20, 15, 10], variants: ['default', 'trixie'] });
  });

  it('--dry-run and --json: the plan is printed, nothing is changed', async () => {
    const before = treeHash(dir);
    let r = await addVariant('bookworm', { dryRun: true });
    ok(r);
    expect(r.out).toMatch(/dry run, nothing changed/);
    expect(r.out).toMatch(/variants\/bookworm\.conf/);
    r = await bumpApi('15', { dryRun: true, json: true });
    ok(r);
    const doc = JSON.parse(r.out) as { applied: boolean; operations: { path: string; action: string }[]; apiVersions: number[] };
    expect(doc.applied).toBe(false);
    expect(doc.apiVersions).toEqual([15, 10]);
    expect(doc.operations).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'verify', action: 'delete' })]));
    expect(treeHash(dir)).toBe(before);
  });
});

describe('bad input to the maintenance commands: clear message, non-zero exit, nothing changed', () => {
  type Case = [string, () => Promise<{ code: number; err: string }>, number, RegExp];
  const cases: Case[] = [
    ['add-variant Bad/Name', () => addVariant('Bad/Name'), 2, /invalid variant name/],
    ['add-variant a+b', () => addVariant('a+b'), 2, /invalid variant name/],
    ['add-variant ""', () => addVariant(''), 2, /empty/],
    ['add-variant --set lower=x', () => addVariant('x', { set: ['lower=x'] }), 2, /setting name/],
    ['add-variant --set NOEQUALS', () => addVariant('x', { set: ['NOEQUALS'] }), 2, /KEY=VALUE/],
    ['remove-variant nope', () => removeVariant('nope'), 1, /no variant 'nope'/],
    ['remove-variant ../x', () => removeVariant('../x'), 2, /invalid variant name/],
    ['remove-variant default (the last)', () => removeVariant('default'), 1, /only variant/],
    ['remove-param nope', () => removeParam('nope'), 1, /no parameter 'nope'/],
    ['remove-param NO', () => removeParam('NO'), 2, /invalid parameter name/],
    ['bump-api 5', () => bumpApi('5'), 2, /not supported/],
    ['add-param Upper', () => addParam('Upper', 'x'), 2, /invalid parameter name/],
  ];
  it.each(cases)('%s', async (_n, fn, code, message) => {
    const before = treeHash(dir);
    const r = await fn();
    expect(r.code).toBe(code);
    expect(r.err).toMatch(message);
    expect(treeHash(dir)).toBe(before);
  });

  const all: [string, () => Promise<{ code: number; err: string }>][] = [
    ['add-variant', () => addVariant('x')],
    ['remove-variant', () => removeVariant('default')],
    ['bump-api', () => bumpApi('15')],
    ['add-param', () => addParam('x', 'y')],
    ['remove-param', () => removeParam('x')],
  ];

  it.each(all)('%s in a directory that is not an OS definition', async (_n, fn) => {
    dir = path.join(work, 'empty');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'variants.list'), 'default\n');
    const before = treeHash(work);
    const r = await fn();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is not an OS definition: it has no ganeti_api_version/);
    expect(treeHash(work)).toBe(before);
    dir = path.join(work, 'missing');
    expect((await fn()).err).toMatch(/does not exist/);
  });

  it.each(all)('%s with a non-UTF-8 variants.list, parameters.list or ganeti_api_version', async (_n, fn) => {
    for (const [file, bytes] of [
      ['variants.list', Buffer.from([0x64, 0x65, 0xff, 0x0a])],
      ['parameters.list', Buffer.from([0x78, 0x20, 0xc3, 0x28, 0x0a])],
      ['ganeti_api_version', Buffer.from([0x32, 0x30, 0xfe, 0x0a])],
    ] as const) {
      const saved = fs.readFileSync(path.join(dir, file));
      fs.writeFileSync(path.join(dir, file), bytes);
      const before = treeHash(dir);
      const r = await fn();
      expect([file, r.code]).toEqual([file, 1]);
      expect(r.err).toMatch(/not valid UTF-8/);
      expect(treeHash(dir)).toBe(before);
      fs.writeFileSync(path.join(dir, file), saved);
    }
  });

  it.each(all)('%s with an unparsable ganeti_api_version or a damaged .ganeti-os.json', async (_n, fn) => {
    fs.writeFileSync(path.join(dir, 'ganeti_api_version'), '20\ntwenty\n');
    let before = treeHash(dir);
    let r = await fn();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/'twenty'/);
    expect(treeHash(dir)).toBe(before);
    fs.writeFileSync(path.join(dir, 'ganeti_api_version'), '20\n15\n10\n');

    fs.writeFileSync(path.join(dir, '.ganeti-os.json'), '{ "schema": 1, ');
    before = treeHash(dir);
    r = await fn();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is damaged/);
    expect(treeHash(dir)).toBe(before);
  });

  it.each(all)('%s with variants.list a dangling symlink', async (_n, fn) => {
    fs.rmSync(path.join(dir, 'variants.list'));
    fs.symlinkSync(path.join(work, 'nowhere', 'variants.list'), path.join(dir, 'variants.list'));
    const before = treeHash(dir);
    const r = await fn();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/symlink to .*which does not exist/);
    expect(treeHash(dir)).toBe(before);
  });
});
