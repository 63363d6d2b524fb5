/**
 * The settings table (templates/<name>/template.json `settings`) is the one place a setting the
 * scripts read is defined: defaults.conf's documentation, variants/<v>.conf, add-variant --set,
 * upgrade's new-setting report and the generated lib/settings.sh all follow it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTemplate } from '../src/definition/templates';
import { Setting, isFamily } from '../src/definition/settings';
import { runAddVariant } from '../src/commands/add-variant';
import { BIN, newDefinitionInProcess, read, REPO, runCli, runCommand, tempDir } from './helpers/cli';
import { fixture, upgrade } from './helpers/upgrade';

const works: string[] = [];
afterEach(() => {
  for (const w of works.splice(0)) fs.rmSync(w, { recursive: true, force: true });
});
function work(): string {
  const w = tempDir('settings');
  works.push(w);
  return w;
}

const newDef = (parent: string, name: string, template: string): Promise<string> => newDefinitionInProcess(parent, name, { template });

/**
 * Run the definition's `create` as Ganeti would (no root needed), with its step replaced through
 * the node's site.conf (read after lib/steps.sh) by `body`; `site` goes before it.
 */
function runStep(dir: string, body: string, site = ''): { status: number | null; stdout: string; stderr: string } {
  const w = path.dirname(dir);
  const etc = path.join(w, 'etc');
  const name = path.basename(dir);
  fs.mkdirSync(path.join(etc, 'ganeti', name), { recursive: true });
  fs.writeFileSync(path.join(etc, 'ganeti', name, 'site.conf'), `${site}\ngos_step_create() {\n${body}\n}\n`);
  const variant = fs.existsSync(path.join(dir, 'variants.list')) ? read(path.join(dir, 'variants.list')).split('\n').find((l) => l && !l.startsWith('#')) : '';
  const env = {
    PATH: '/sbin:/bin:/usr/sbin:/usr/bin',
    GANETI_OS_SYSCONFDIR: etc,
    OS_API_VERSION: '20',
    OS_NAME: name,
    OS_VARIANT: variant ?? '',
    DEBUG_LEVEL: '0',
    INSTANCE_NAME: 'inst.example.com',
    HYPERVISOR: 'kvm',
    DISK_COUNT: '1',
    DISK_0_PATH: path.join(w, 'disk0'),
  };
  const r = spawnSync(path.join(dir, 'create'), [], { env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('lib/settings.sh, generated from the settings table', () => {
  it.each(['debian', 'debian-maint'])('the %s fixture (written before it existed) gets it through upgrade, and the upgraded scripts take their defaults and checks from it', async (set) => {
    const { dir, work: w } = fixture(set);
    works.push(w);
    expect(fs.existsSync(path.join(dir, 'lib', 'settings.sh'))).toBe(false);
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\+ created\s+lib\/settings\.sh/);
    const fresh = await newDef(work(), path.basename(dir), 'debian');
    expect(read(path.join(dir, 'lib', 'settings.sh'))).toBe(read(path.join(fresh, 'lib', 'settings.sh')));

    const shown = runStep(dir, 'deb_settings; declare -p SUITE CACHE_DIR CACHE_MAX_AGE_DAYS BASE_PACKAGES HOOKS_DIR', 'ARCH=amd64');
    expect(shown.stderr).toBe('');
    expect(shown.status).toBe(0);
    const t = loadTemplate('debian');
    const def = (key: string) => t.settings.find((s) => s.key === key)!.default!;
    expect(shown.stdout).toContain(`declare -- CACHE_DIR="${def('CACHE_DIR')}"`);
    expect(shown.stdout).toContain(`declare -- CACHE_MAX_AGE_DAYS="${def('CACHE_MAX_AGE_DAYS')}"`);
    expect(shown.stdout).toContain(`declare -- BASE_PACKAGES="${def('BASE_PACKAGES')}"`);
    expect(shown.stdout).toContain(`declare -- HOOKS_DIR="${path.join(path.dirname(dir), 'etc', 'ganeti', path.basename(dir), 'hooks')}"`);
    expect(shown.stdout).toMatch(/declare -- SUITE="bookworm"/);

    const bad = runStep(dir, 'deb_settings', 'ARCH=amd64; CACHE_MAX_AGE_DAYS=soon');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/CACHE_MAX_AGE_DAYS must be a number of days, not 'soon'/);
  });

  it('the image template: defaults and forms from its table', async () => {
    const dir = await newDef(work(), 'img', 'image');
    const shown = runStep(dir, 'img_settings; declare -p CACHE_DIR DOWNLOAD_TIMEOUT INTERFACE_NAME_PREFIX EXPORT_COMPRESS', 'INTERFACE_NAME_PREFIX=');
    expect(shown.stderr).toBe('');
    expect(shown.stdout).toContain('declare -- CACHE_DIR="/var/cache/ganeti-os/images"');
    expect(shown.stdout).toContain('declare -- DOWNLOAD_TIMEOUT="3600"');
    // emptyAllowed: an empty prefix is a value (keep the guest's names), not "use eth".
    expect(shown.stdout).toContain('declare -- INTERFACE_NAME_PREFIX=""');
    const bad = runStep(dir, 'img_settings', 'DEFAULT_ROUTE_NIC=first');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/DEFAULT_ROUTE_NIC must be a NIC index \(0, 1, \.\.\.\), not 'first'/);
  });

  it('every setting of every table has a default in lib/settings.sh, and every setting in defaults.conf is in the table', async () => {
    for (const name of ['debian', 'image', 'blank']) {
      const t = loadTemplate(name);
      const dir = await newDef(work(), `t${name}`, name);
      const sh = read(path.join(dir, 'lib', 'settings.sh'));
      for (const s of t.settings.filter((x) => !isFamily(x))) expect([name, sh]).toEqual([name, expect.stringContaining(`  ${s.key}=\${${s.key}`)]);
      const documented = read(path.join(dir, 'defaults.conf')).split('\n').flatMap((l) => /^#([A-Z][A-Z0-9_]*)=/.exec(l)?.[1] ?? []);
      for (const key of documented) {
        const s = t.settings.find((x) => x.key === key || x.example?.key === key);
        expect([name, key, s?.in]).toEqual([name, key, undefined]);
      }
    }
  });
});

describe('the scripts read no setting outside their table', () => {
  // Ganeti's environment (backend.OSEnvironment, OSCoreEnv), the runtime's and the templates'
  // own variables, and bash's: everything else a template's shell reads is a setting.
  const GANETI = /^(INSTANCE_|DISK_|NIC_|OSP_)|^(OS_API_VERSION|OS_NAME|OS_VARIANT|DEBUG_LEVEL|HYPERVISOR|EXPORT_DEVICE|EXPORT_INDEX|IMPORT_DEVICE|IMPORT_INDEX|OLD_INSTANCE_NAME|EXP_SIZE_FD|PATH)$/;
  const OWN = /^(GOS_|DEB_|IMG_|NA_|BASH_)|^(GANETI_OS_SYSCONFDIR|LINENO|PIPESTATUS)$/;

  it.each(['debian', 'image'])('%s: every variable its shell reads is Ganeti\'s, its own, or in its settings table', (name) => {
    const t = loadTemplate(name);
    const dirs = [...new Set(t.files.map((f) => f.dir))];
    const shell = t.files
      .filter((f) => f.file.source?.endsWith('.sh'))
      .map((f) => read(path.join(f.dir, f.file.source!)))
      .join('\n');
    expect(dirs.length).toBeGreaterThan(1);
    const read_ = new Set([...shell.matchAll(/\$\{?#?!?([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]));
    const outside = [...read_].filter((v) => !GANETI.test(v) && !OWN.test(v) && !t.settings.some((s) => s.key === v));
    expect(outside).toEqual([]);
  });

  it('add-variant --set TMPDIR, which the debian scripts read (and tell the admin to set), is accepted and documented', async () => {
    const d = await newDef(work(), 'deb', 'debian');
    expect(read(path.join(d, 'defaults.conf'))).toMatch(/^#TMPDIR=\/tmp$/m);
    const r = await runCommand(runAddVariant, d, { variant: 'bookworm', set: ['TMPDIR=/var/tmp'] });
    expect(r.err).not.toMatch(/read no setting/);
    expect(r.code).toBe(0);
    expect(read(path.join(d, 'variants', 'bookworm.conf'))).toMatch(/^TMPDIR=\/var\/tmp$/m);
  });
});

describe('a newcomer adds a setting to the table, and nothing else', () => {
  /** This ganeti-os, copied, with `more` added to the debian template's settings table. */
  function withSettings(more: Setting[]): string {
    const pkg = path.join(work(), 'pkg');
    for (const d of ['bin', 'dist', 'templates']) fs.cpSync(path.join(REPO, d), path.join(pkg, d), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'package.json'), path.join(pkg, 'package.json'));
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'));
    const manifest = path.join(pkg, 'templates', 'debian', 'template.json');
    const m = JSON.parse(read(manifest)) as { settings: Setting[] };
    m.settings.push(...more);
    fs.writeFileSync(manifest, JSON.stringify(m, null, 2));
    return path.join(pkg, 'bin', 'ganeti-os.js');
  }
  const cli = (bin: string, args: string[], cwd: string) => {
    const r = runCli(args, { bin, cwd, env: { HOME: undefined, NO_COLOR: '1' } });
    return { code: r.code, out: r.stdout, err: r.stderr };
  };

  it('defaults.conf, variants/<v>.conf, lib/settings.sh, add-variant --set and upgrade all follow', async () => {
    const bin = withSettings([
      { key: 'NEWCOMER_TIMEOUT', default: '30', description: "Seconds a newcomer's step may take.", paragraph: true, check: { pattern: '[0-9]+', what: 'a number of seconds' } },
      { key: 'NEWCOMER_FLAVOUR', in: 'variant', default: 'plain', description: 'Flavour of this variant' },
    ]);
    const parent = work();
    // A definition written before the setting existed.
    const old = await newDef(parent, 'olddeb', 'debian');
    expect(cli(BIN, ['add-variant', 'bookworm', '--set', 'NEWCOMER_TIMEOUT=5'], old).code).toBe(2);

    // new: documented in defaults.conf, carried by every variant, given its default and checked.
    expect(cli(bin, ['new', 'newdeb', '--yes'], parent).code).toBe(0);
    const fresh = path.join(parent, 'newdeb');
    expect(read(path.join(fresh, 'defaults.conf'))).toMatch(/\n\n# Seconds a newcomer's step may take\.\n#NEWCOMER_TIMEOUT=30\n$/);
    expect(read(path.join(fresh, 'variants', 'trixie.conf'))).toMatch(/^# Flavour of this variant\nNEWCOMER_FLAVOUR=plain$/m);
    const sh = read(path.join(fresh, 'lib', 'settings.sh'));
    expect(sh).toContain('  NEWCOMER_TIMEOUT=${NEWCOMER_TIMEOUT:-30}\n');
    expect(sh).toContain("  gos_check_setting NEWCOMER_TIMEOUT '[0-9]+' 'a number of seconds'\n");

    // upgrade of the old definition: reported as new in the admin's files, lib/settings.sh brought current.
    const up = cli(bin, ['upgrade'], old);
    expect(up.err).toBe('');
    expect(up.code).toBe(0);
    expect(up.out).toMatch(/new setting {2}defaults\.conf: NEWCOMER_TIMEOUT \(the template has: #NEWCOMER_TIMEOUT=30\)/);
    expect(up.out).toMatch(/new setting {2}variants\/bookworm\.conf: NEWCOMER_FLAVOUR \(the template has: NEWCOMER_FLAVOUR=plain\)/);
    expect(read(path.join(old, 'lib', 'settings.sh'))).toBe(sh);

    // add-variant --set knows it now; the scripts give it its default and check its form.
    expect(cli(bin, ['add-variant', 'bookworm', '--set', 'NEWCOMER_TIMEOUT=5'], old).code).toBe(0);
    expect(read(path.join(old, 'variants', 'bookworm.conf'))).toMatch(/^NEWCOMER_TIMEOUT=5$/m);
    const shown = runStep(fresh, 'deb_settings; declare -p NEWCOMER_TIMEOUT NEWCOMER_FLAVOUR', 'ARCH=amd64');
    expect(shown.stdout).toBe('declare -- NEWCOMER_TIMEOUT="30"\ndeclare -- NEWCOMER_FLAVOUR="plain"\n');
    const bad = runStep(fresh, 'deb_settings', 'ARCH=amd64; NEWCOMER_TIMEOUT=soon');
    expect(bad.stderr).toMatch(/NEWCOMER_TIMEOUT must be a number of seconds, not 'soon'/);
    expect(bad.status).toBe(1);
  });
});
