/**
 * Issue 22: add-variant and validate agree on where a variant's configuration goes (one rule,
 * layers.ts's variantConfigPlace): where the definition's scripts read it. On a copy of
 * ganeti-instance-debootstrap whose variants.list is a symlink, the scripts read
 * `$VARIANTS_DIR/<variant>.conf` (/etc/ganeti/instance-debootstrap/variants unless the node's
 * /etc/default/ganeti-instance-debootstrap sets it), wherever the list points.
 */
import { runSync } from '../src/system/process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runAddVariant } from '../src/commands/add-variant';
import { mayWriteVariantConfig, variantConfigPlace } from '../src/definition/layers';
import { shellTexts } from '../src/definition/script-reading';
import { cli, foreignCopy, read, runCommand, tempDir, treeHash } from './helpers/cli';

const PACKAGE_VARIANTS = '/etc/ganeti/instance-debootstrap/variants';
/** A variant no node has a configuration for. */
const V = 'gos-place-test';

let work: string;
beforeEach(() => {
  work = tempDir('variant-place');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

async function validate(dir: string): Promise<{ code: number; findings: { code: string; file?: string; message: string }[] }> {
  const r = await cli(work, ['validate', dir, '--json']);
  const res = JSON.parse(r.stdout).results[0] as { errors: { code: string; file?: string; message: string }[]; warnings: { code: string; file?: string; message: string }[] };
  return { code: r.code, findings: [...res.errors, ...res.warnings] };
}

/** The file debootstrap's own code sources for `variant`: common.sh's VARIANTS_DIR line, after its defaults file, evaluated by bash. */
function scriptsRead(osDir: string, variant: string): string {
  const common = read(path.join(osDir, 'common.sh'));
  const all = common.split('\n');
  const at = all.findIndex((l) => l.startsWith('DEFAULT_FILE='));
  const lines = [...all.slice(at, at + 4), ...all.filter((l) => l.startsWith(': ${VARIANTS_DIR:='))];
  const r = runSync(['bash', '-c', `set -e\n${lines.join('\n')}\nprintf %s "$VARIANTS_DIR/$OS_VARIANT.conf"`], { env: { PATH: '/usr/bin:/bin', OS_VARIANT: variant } });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe('a ganeti-instance-debootstrap copy whose scripts read the package\'s /etc directory', () => {
  it('add-variant refuses, naming where the scripts read it, and changes nothing; with --force only the list changes, and validate names the same file', async () => {
    const { os: dir, etc } = foreignCopy(work, { pristine: true });
    expect(fs.existsSync(path.join(PACKAGE_VARIANTS, `${V}.conf`))).toBe(false);
    const want = scriptsRead(dir, V);
    expect(want).toBe(path.join(PACKAGE_VARIANTS, `${V}.conf`));
    const before = treeHash(work);
    const r = await runCommand(runAddVariant, dir, { variant: V, set: ['SUITE=bookworm'] });
    expect(r.code).toBe(1);
    expect(r.err).toContain(want);
    expect(r.err).toMatch(/nothing was changed/);
    expect(treeHash(work)).toBe(before);
    const plain = await runCommand(runAddVariant, dir, { variant: V });
    expect(plain.code).toBe(1);
    expect(plain.err).toContain(`or --force to add '${V}'`);
    expect(treeHash(work)).toBe(before);

    const forced = await runCommand(runAddVariant, dir, { variant: V, force: true });
    expect(forced.code).toBe(0);
    expect(forced.err).toContain(`${want}, which does not exist`);
    expect(read(path.join(etc, 'variants.list'))).toMatch(new RegExp(`^${V}$`, 'm'));
    expect(fs.existsSync(path.join(etc, 'variants', `${V}.conf`))).toBe(false);
    const v = await validate(dir);
    const missing = v.findings.filter((f) => f.code === 'variant-config-missing');
    expect(missing.map((f) => f.file)).toContain(want);
  });
});

describe('a ganeti-instance-debootstrap copy whose scripts read the directory its variants.list is in', () => {
  it('add-variant writes the file where the scripts read it, and validate finds it there', async () => {
    const { os: dir, etc } = foreignCopy(work);
    const want = scriptsRead(dir, V);
    expect(want).toBe(path.join(etc, 'variants', `${V}.conf`));
    const r = await runCommand(runAddVariant, dir, { variant: V, set: ['SUITE=bookworm'] });
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(read(want)).toMatch(/^SUITE=bookworm$/m);
    const v = await validate(dir);
    expect(v.findings.filter((f) => f.code === 'variant-config-missing')).toEqual([]);
  });

  it('a VARIANTS_DIR the node\'s defaults file sets is followed by both', async () => {
    const { os: dir, etc } = foreignCopy(work);
    // The copy's defaults file (the package's /etc/default/ganeti-instance-debootstrap) moves the variants.
    const defaults = path.join(work, 'default-debootstrap');
    const site = path.join(etc, 'site-variants');
    fs.mkdirSync(site);
    fs.writeFileSync(defaults, `# site settings\nVARIANTS_DIR="${site}"\n`);
    const common = path.join(dir, 'common.sh');
    fs.writeFileSync(common, read(common).replace('DEFAULT_FILE="/etc/default/ganeti-instance-debootstrap"', `DEFAULT_FILE="${defaults}"`));
    const want = scriptsRead(dir, V);
    expect(want).toBe(path.join(site, `${V}.conf`));
    expect(variantConfigPlace(dir, shellTexts(dir), { own: false, listTarget: fs.realpathSync(path.join(dir, 'variants.list')) })).toEqual({ dir: site, ext: '.conf', from: 'scripts' });
    const r = await runCommand(runAddVariant, dir, { variant: V, set: ['SUITE=trixie'] });
    expect(r.code).toBe(0);
    expect(read(want)).toMatch(/^SUITE=trixie$/m);
    expect(fs.existsSync(path.join(etc, 'variants', `${V}.conf`))).toBe(false);
    const v = await validate(dir);
    // The copy's own 'default' variant has no file in the new place: validate names that one only.
    expect(v.findings.filter((f) => f.code === 'variant-config-missing').map((f) => f.file)).toEqual([path.join(site, 'default.conf')]);
  });
});

describe('mayWriteVariantConfig', () => {
  it('allows the definition and the directory its variants.list points into, nothing else', () => {
    expect(mayWriteVariantConfig('/srv/os/x/variants', '/srv/os/x')).toBe(true);
    expect(mayWriteVariantConfig('/etc/ganeti/instance-debootstrap/variants', '/usr/share/ganeti/os/debootstrap', '/etc/ganeti/instance-debootstrap/variants.list')).toBe(true);
    expect(mayWriteVariantConfig('/etc/ganeti/instance-debootstrap/variants', '/srv/copy/debootstrap', '/srv/copy/etc/variants.list')).toBe(false);
    expect(mayWriteVariantConfig('/srv/os/xy/variants', '/srv/os/x')).toBe(false);
  });
});
