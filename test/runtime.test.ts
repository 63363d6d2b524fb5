/** The shell runtime every template shares, exercised by running the generated scripts directly. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runInProcess, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';
import { loopsBackedBy } from '../src/system/kernel';
import { ConfigLayer, RUNTIME_VERSION, layerPath, runtimeLayers } from '../src/definition/layers';

let work: string;
let os: string;
let etc: string;

beforeEach(async () => {
  work = tempDir();
  etc = path.join(work, 'etc');
  fs.mkdirSync(etc);
  const r = await runInProcess(
    ['new', 'rt', '--template', 'blank', '--yes', '--variant', 'first', '--variant', 'second', '--param', 'size=Root size'],
    { cwd: work },
  );
  expect(r.code).toBe(0);
  os = path.join(work, 'rt');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const baseEnv = () => ({
  PATH: '/sbin:/bin:/usr/sbin:/usr/bin',
  GANETI_OS_SYSCONFDIR: etc,
  OS_API_VERSION: '20',
  OS_NAME: 'rt',
  OS_VARIANT: 'first',
  DEBUG_LEVEL: '0',
  INSTANCE_NAME: 'inst.example.com',
  HYPERVISOR: 'kvm',
  DISK_COUNT: '1',
  DISK_0_PATH: path.join(work, 'disk0'),
});

function script(name: string, args: string[] = [], env: Record<string, string | undefined> = {}, cwd = '/') {
  const full = { ...baseEnv(), ...env };
  for (const k of Object.keys(full)) if (full[k as keyof typeof full] === undefined) delete full[k as keyof typeof full];
  return spawnSync(path.join(os, name), args, { cwd, env: full as Record<string, string>, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Replace a step with a bash body through the site configuration (sourced after the steps). */
function siteStep(step: string, body: string): void {
  fs.mkdirSync(path.join(etc, 'ganeti', 'rt'), { recursive: true });
  fs.appendFileSync(path.join(etc, 'ganeti', 'rt', 'site.conf'), `gos_step_${step}() {\n${body}\n}\n`);
}

describe('runtime: arguments and usage', () => {
  it.each(['create', 'import', 'export', 'rename', 'verify'])('%s --help prints usage and exits 0 without any environment', (s) => {
    const r = spawnSync(path.join(os, s), ['--help'], { env: {}, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: ${s}`));
    expect(spawnSync(path.join(os, s), ['-h'], { env: {}, encoding: 'utf8' }).status).toBe(0);
  });

  it.each([
    ['create', ['extra']],
    ['rename', ['--force']],
    ['verify', []],
    ['verify', ['everything']],
  ])('%s %j: usage on stderr and a non-zero exit', (s, args) => {
    const r = script(s, args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Usage:/);
    expect(r.stdout).toBe('');
  });

  it('runs from any directory and through a symlink', () => {
    fs.symlinkSync(path.join(os, 'create'), path.join(work, 'create-link'));
    const r = spawnSync(path.join(work, 'create-link'), [], { cwd: '/tmp', env: baseEnv(), encoding: 'utf8' });
    expect(r.stderr).toMatch(/installs nothing/);
    expect(r.status).toBe(0);
  });
});

describe('runtime: the environment Ganeti must provide', () => {
  it.each([
    ['create', 'INSTANCE_NAME'],
    ['create', 'HYPERVISOR'],
    ['create', 'DISK_COUNT'],
    ['export', 'EXPORT_DEVICE'],
    ['import', 'IMPORT_INDEX'],
    ['rename', 'OLD_INSTANCE_NAME'],
  ])('%s without %s fails naming it', (s, v) => {
    const env: Record<string, string | undefined> = { EXPORT_INDEX: '0', EXPORT_DEVICE: '/dev/null', IMPORT_INDEX: '0', IMPORT_DEVICE: '/dev/null', OLD_INSTANCE_NAME: 'a' };
    env[v] = undefined;
    const r = script(s, [], env);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`missing variable ${v}`);
  });

  it('refuses DISK_COUNT=0 and a malformed DISK_COUNT', () => {
    expect(script('create', [], { DISK_COUNT: '0' }).stderr).toMatch(/no disk/);
    expect(script('create', [], { DISK_COUNT: 'two' }).stderr).toMatch(/DISK_COUNT must be a number/);
  });

  it('checks OS_VARIANT against variants.list; no variant means the first one', () => {
    let r = script('create', [], { OS_VARIANT: 'third' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown variant 'third': variants.list lists first second/);
    siteStep('create', 'gos_log "variant=$GOS_VARIANT"');
    r = script('create', [], { OS_VARIANT: '' });
    expect(r.stderr).toMatch(/variant=first/);
    r = script('create', [], { OS_VARIANT: 'second' });
    expect(r.stderr).toMatch(/variant=second/);
  });

  it('DEBUG_LEVEL=1 traces the steps', () => {
    const r = script('create', [], { DEBUG_LEVEL: '1' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^\+ steps\.sh:\d+: /m);
  });
});

describe('runtime: configuration layers', () => {
  it('reads defaults.conf < /etc/default/<os> < site.conf < variant < site variant', () => {
    fs.appendFileSync(path.join(os, 'defaults.conf'), 'A=defaults B=defaults C=defaults D=defaults E=defaults\n');
    fs.mkdirSync(path.join(etc, 'default'));
    fs.writeFileSync(path.join(etc, 'default', 'rt'), 'B=etc-default C=etc-default D=etc-default E=etc-default\n');
    siteStep('create', 'gos_log "A=$A B=$B C=$C D=$D E=$E"');
    fs.appendFileSync(path.join(etc, 'ganeti', 'rt', 'site.conf'), 'C=site D=site E=site\n');
    fs.appendFileSync(path.join(os, 'variants', 'first.conf'), 'D=variant E=variant\n');
    fs.mkdirSync(path.join(etc, 'ganeti', 'rt', 'variants'));
    fs.writeFileSync(path.join(etc, 'ganeti', 'rt', 'variants', 'first.conf'), 'E=site-variant\n');
    const r = script('create');
    expect(r.stderr).toContain('A=defaults B=etc-default C=site D=variant E=site-variant');
    const other = script('create', [], { OS_VARIANT: 'second' });
    expect(other.stderr).toContain('A=defaults B=etc-default C=site D=site E=site');
  });

  it("reads the packaged conffile /etc/ganeti/<os>/defaults.conf over defaults.conf, under every later layer", () => {
    fs.appendFileSync(path.join(os, 'defaults.conf'), 'A=defaults B=defaults C=defaults\n');
    siteStep('create', 'gos_log "A=$A B=$B C=$C"');
    fs.writeFileSync(path.join(etc, 'ganeti', 'rt', 'defaults.conf'), 'B=node-defaults C=node-defaults\n');
    fs.mkdirSync(path.join(etc, 'default'));
    fs.writeFileSync(path.join(etc, 'default', 'rt'), 'C=etc-default\n');
    expect(script('create').stderr).toContain('A=defaults B=node-defaults C=etc-default');
  });
});

/**
 * The files `create` reads through gos_source_if (DEBUG_LEVEL=1 names each), in order, when
 * every configuration layer of `layers` exists for OS `name` in `dir` and variant `variant`
 * (node layers under `etc`).
 */
function layersRead(dir: string, name: string, variant: string, layers: ConfigLayer[]): { want: string[]; read: string[] } {
  const want = layers.map((l) => {
    const p = layerPath(l, name, variant);
    return l.at === 'definition' ? path.join(dir, p) : path.join(etc, path.relative('/etc', p));
  });
  for (const f of want) {
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.appendFileSync(f, '\n');
  }
  const r = spawnSync(path.join(dir, 'create'), [], { cwd: '/', env: { ...baseEnv(), OS_NAME: name, OS_VARIANT: variant, DEBUG_LEVEL: '1' }, encoding: 'utf8' });
  const read = [...r.stderr.matchAll(/debug: reading (.*)$/gm)].map((m) => m[1]).filter((f) => !f.startsWith(path.join(dir, 'lib') + '/'));
  return { want, read };
}

describe('runtime: the configuration layers are the ones layers.ts lists, in its order', () => {
  it('this runtime (RUNTIME_VERSION) reads every layer of the table and nothing else, in order', async () => {
    expect((await import('../src/definition/model')).readDefinition(os).provenance?.runtimeVersion).toBe(RUNTIME_VERSION);
    const { want, read } = layersRead(os, 'rt', 'first', runtimeLayers(RUNTIME_VERSION));
    expect(read).toEqual(want);
    expect(want).toContain(path.join(etc, 'ganeti', 'rt', 'defaults.conf'));
  });

  it("a runtime written before the record named its version (the upgrade fixture's) reads the layers of version 1", () => {
    const dir = path.join(work, 'old', 'blankos');
    fs.cpSync(path.join(__dirname, 'fixtures', 'upgrade', 'blank-maint', 'blankos'), dir, { recursive: true });
    expect(JSON.parse(fs.readFileSync(path.join(dir, '.ganeti-os.json'), 'utf8')).runtimeVersion).toBeUndefined();
    const { want, read } = layersRead(dir, 'blankos', 'extra', runtimeLayers(undefined));
    expect(read).toEqual(want);
    // The later layer exists but this runtime does not read it.
    const site = path.join(etc, 'ganeti', 'blankos', 'defaults.conf');
    fs.writeFileSync(site, '\n');
    expect(layersRead(dir, 'blankos', 'extra', runtimeLayers(undefined)).read).not.toContain(site);
  });
});

describe('runtime: parameters', () => {
  it('verify refuses values outside the declared choices or pattern, naming the parameter', () => {
    fs.writeFileSync(
      path.join(os, 'lib', 'parameters.sh'),
      "GOS_PARAMS=(size fs)\ndeclare -gA GOS_PARAM_DEFAULT=([fs]=ext4)\ndeclare -gA GOS_PARAM_CHOICES=([fs]=$'ext4\\nxfs')\ndeclare -gA GOS_PARAM_PATTERN=([size]='[0-9]+[MG]')\n",
    );
    expect(script('verify', ['parameters'], { OSP_SIZE: '10G', OSP_FS: 'xfs' }).status).toBe(0);
    let r = script('verify', ['parameters'], { OSP_SIZE: 'huge' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/invalid value 'huge' for parameter size/);
    r = script('verify', ['parameters'], { OSP_FS: 'btrfs' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/invalid value 'btrfs' for parameter fs: expected one of ext4 xfs/);
    siteStep('create', 'gos_log "fs=$OSP_FS size=${OSP_SIZE-unset}"');
    expect(script('create').stderr).toMatch(/fs=ext4 size=unset/);
    expect(script('create', [], { OSP_FS: 'xfs' }).stderr).toMatch(/fs=xfs/);
  });
});

describe('runtime: one cleanup stack, released on every path', () => {
  const marks = () => path.join(work, 'marks');
  it.each([
    ['success', 'true', 0],
    ['a failing command', 'false', 1],
    ['gos_die', 'gos_die "boom"', 1],
    ['a signal', 'kill -TERM $$; sleep 5', 130],
  ])('after %s every release runs, newest first', (_what, last, code) => {
    siteStep(
      'create',
      `gos_push_cleanup sh -c 'echo "$1" >> "$2"' sh "one two" ${JSON.stringify(marks())}
gos_push_cleanup sh -c 'echo "$1" >> "$2"' sh "it's three" ${JSON.stringify(marks())}
gos_mktemp_dir tmp
echo "$tmp" > ${JSON.stringify(path.join(work, 'tmpdir'))}
${last}`,
    );
    const r = script('create');
    expect(r.status).toBe(code);
    expect(fs.readFileSync(marks(), 'utf8')).toBe("it's three\none two\n");
    expect(fs.existsSync(fs.readFileSync(path.join(work, 'tmpdir'), 'utf8').trim())).toBe(false);
  });
});

describeSystem('runtime: file-backed disks', { root: true, commands: ['losetup'] }, () => {
  it('attaches a file with losetup and always detaches it', () => {
    const img = path.join(work, 'disk0');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 8 * 1024 * 1024);
    siteStep('create', 'gos_attach_disk "$DISK_0_PATH" dev\n[[ -b $dev ]] || exit 3\ngos_log "dev=$dev"\nfalse');
    const r = script('create');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/dev=\/dev\/loop\d+/);
    expect(loopsBackedBy(img).map((l) => l.name)).toEqual([]);
  });
});
