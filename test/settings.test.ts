/**
 * The settings table (templates/<name>/template.json `settings`) is the one place a setting the
 * scripts read is defined: defaults.conf's documentation, variants/<v>.conf, add-variant --set,
 * upgrade's new-setting report and the generated lib/settings.sh all follow it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runNew } from '../src/commands/new';
import { loadTemplate } from '../src/definition/templates';
import { isFamily } from '../src/definition/settings';
import { read, runCommand, tempDir } from './maintain-support';
import { fixture, upgrade } from './upgrade-support';

const works: string[] = [];
afterEach(() => {
  for (const w of works.splice(0)) fs.rmSync(w, { recursive: true, force: true });
});
function work(): string {
  const w = tempDir('settings');
  works.push(w);
  return w;
}

async function newDef(parent: string, name: string, template: string): Promise<string> {
  const r = await runCommand(runNew, parent, { name, template, yes: true });
  if (r.code !== 0) throw new Error(r.err);
  return path.join(parent, name);
}

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
