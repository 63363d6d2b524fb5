/**
 * Issue 9, section 2: what the administrator wrote is never dropped. Each case is one instance
 * of a kind of fault: a maintenance command changes only what it was given, `new --force`
 * never touches an existing definition, documentation never blocks a change, a no-op bump is a
 * no-op, variants are never introduced silently, and template keys are checked.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runAddParam } from '../src/commands/add-param';
import { runAddVariant } from '../src/commands/add-variant';
import { runBumpApi } from '../src/commands/bump-api';
import { type NewOptions, runNew } from '../src/commands/new';
import { runRemoveParam } from '../src/commands/remove-param';
import { runRemoveVariant } from '../src/commands/remove-variant';
import { foreignCopy, newDefinitionInProcess, read, runCommand, tempDir, treeHash } from './helpers/cli';
import { validateOs } from './helpers/ganeti';
import { checkOsVariant } from '../src/ganeti/rules';
import { readDefinition } from '../src/definition/model';
import { describeReleases, describeSystem } from './helpers/system';

let work: string;
beforeEach(() => {
  work = tempDir('trust');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const newDef = (name: string, more: Partial<NewOptions> = {}): Promise<string> => newDefinitionInProcess(work, name, more);

const answers = (d: string) => JSON.parse(read(path.join(d, '.ganeti-os.json'))).answers;

describe('a maintenance command changes only what it was given', () => {
  it('add-param with only a new description keeps the default and choices (debian filesystem)', async () => {
    const d = await newDef('deb');
    const before = answers(d).parameters.find((p: { name: string }) => p.name === 'filesystem');
    const r = await runCommand(runAddParam, d, { name: 'filesystem', description: 'Root fs type' });
    expect(r.code).toBe(0);
    const after = answers(d).parameters.find((p: { name: string }) => p.name === 'filesystem');
    expect(after).toEqual({ ...before, description: 'Root fs type' });
    expect(read(path.join(d, 'lib', 'parameters.sh'))).toMatch(/\[filesystem\]=ext4/);
    expect(read(path.join(d, 'parameters.list'))).toMatch(/^filesystem Root fs type$/m);
  });

  it('add-param --default on an existing parameter keeps its description and choices', async () => {
    const d = await newDef('deb');
    const r = await runCommand(runAddParam, d, { name: 'filesystem', description: 'Root filesystem type (ext4, ext3 or ext2)', default: 'ext3' });
    expect(r.code).toBe(0);
    const p = answers(d).parameters.find((x: { name: string }) => x.name === 'filesystem');
    expect(p.choices).toEqual(['ext4', 'ext3', 'ext2']);
    expect(p.default).toBe('ext3');
  });

  it('add-param --choices that exclude the kept default is refused, naming both; nothing changed', async () => {
    const d = await newDef('deb');
    const before = treeHash(d);
    const r = await runCommand(runAddParam, d, { name: 'filesystem', description: 'Root fs', choices: 'xfs,btrfs' });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/default 'ext4' is not one of the choices/);
    expect(treeHash(d)).toBe(before);
  });
});

describe("a maintenance command never drops what the template's scripts need", () => {
  it('remove-param of a template parameter (debian filesystem) is refused without --force', async () => {
    const d = await newDef('deb');
    const before = treeHash(d);
    let r = await runCommand(runRemoveParam, d, { name: 'filesystem' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/its scripts read it/);
    expect(r.err).toMatch(/--default/);
    expect(treeHash(d)).toBe(before);
    r = await runCommand(runRemoveParam, d, { name: 'filesystem', force: true });
    expect(r.code).toBe(0);
    expect(read(path.join(d, 'parameters.list'))).not.toMatch(/^filesystem /m);
  });

  it('a parameter the admin added stays removable', async () => {
    const d = await newDef('deb');
    expect((await runCommand(runAddParam, d, { name: 'site', description: 'Site code' })).code).toBe(0);
    expect((await runCommand(runRemoveParam, d, { name: 'site' })).code).toBe(0);
  });
});

describe('new --force never touches an existing definition', () => {
  it('refuses a ganeti-os definition, pointing to ganeti-os upgrade; nothing changed', async () => {
    const d = await newDef('deb');
    expect((await runCommand(runAddVariant, d, { variant: 'noble', set: ['SUITE=noble'] })).code).toBe(0);
    fs.appendFileSync(path.join(d, 'defaults.conf'), 'PROXY=http://proxy:3128\n');
    const before = treeHash(d);
    const r = await runCommand(runNew, work, { name: 'deb', yes: true, force: true });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/ganeti-os upgrade/);
    expect(treeHash(d)).toBe(before);
  });

  it('refuses a definition ganeti-os did not write', async () => {
    const { os: d } = foreignCopy(work);
    const before = treeHash(d);
    const r = await runCommand(runNew, path.dirname(d), { name: 'debootstrap', yes: true, force: true, template: 'blank' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/already holds an OS definition/);
    expect(treeHash(d)).toBe(before);
  });

  it("in a directory that is not a definition, --force keeps files that would be the admin's", async () => {
    const d = path.join(work, 'deb');
    fs.mkdirSync(path.join(d, 'variants'), { recursive: true });
    fs.writeFileSync(path.join(d, 'defaults.conf'), 'PROXY=mine\n');
    fs.writeFileSync(path.join(d, 'variants', 'bookworm.conf'), 'SUITE=bookworm\nMIRROR=http://mine/\n');
    const r = await runCommand(runNew, work, { name: 'deb', yes: true, force: true });
    expect(r.code).toBe(0);
    expect(read(path.join(d, 'defaults.conf'))).toBe('PROXY=mine\n');
    expect(read(path.join(d, 'variants', 'bookworm.conf'))).toBe('SUITE=bookworm\nMIRROR=http://mine/\n');
    expect(r.err).toMatch(/Kept .*defaults\.conf/);
  });
});

describe('documentation never stands between the admin and a change', () => {
  it('an edited README.md is kept as it is and add-variant / remove-variant / add-param still work', async () => {
    const d = await newDef('deb');
    const doc = path.join(d, 'README.md');
    fs.appendFileSync(doc, '\nLocal notes: ask Alice before changing this.\n');
    const edited = read(doc);
    let r = await runCommand(runAddVariant, d, { variant: 'noble', set: ['SUITE=noble'] });
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/Kept README\.md as you edited it/);
    expect(read(doc)).toBe(edited);
    r = await runCommand(runRemoveVariant, d, { variant: 'noble' });
    expect(r.code).toBe(0);
    r = await runCommand(runAddParam, d, { name: 'dns-servers', description: 'Name servers' });
    expect(r.code).toBe(0);
    expect(read(doc)).toBe(edited);
    // --force replaces it with the generated one.
    r = await runCommand(runAddVariant, d, { variant: 'noble', set: ['SUITE=noble'], force: true });
    expect(r.code).toBe(0);
    expect(read(doc)).not.toContain('Local notes');
  });
});

describe('a bump to the version a definition already lists changes nothing', () => {
  it.each([
    ['20\n15\n10\n5\n', '20'],
    ['15\n20\n', '20'],
    ['20\n15\n10', '20'],
    ['15\n10\n5\n', '15'],
  ])('foreign definition listing %j, bump-api %s: same bytes, says so', async (text, v) => {
    const { os: d } = foreignCopy(work);
    fs.writeFileSync(path.join(d, 'ganeti_api_version'), text);
    const before = treeHash(d, path.join(work, 'etc'));
    const r = await runCommand(runBumpApi, d, { version: v });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/already lists/);
    expect(r.out).toMatch(/nothing to change/);
    expect(treeHash(d, path.join(work, 'etc'))).toBe(before);
  });

  it('a ganeti-os definition with an unsupported version listed beside keeps it', async () => {
    const d = await newDef('bl', { template: 'blank' });
    fs.writeFileSync(path.join(d, 'ganeti_api_version'), '20\n15\n10\n5\n');
    const before = treeHash(d);
    const r = await runCommand(runBumpApi, d, { version: '20' });
    expect(r.code).toBe(0);
    expect(treeHash(d)).toBe(before);
  });

  it('bump-api to a new version keeps the unsupported versions listed beside', async () => {
    const { os: d } = foreignCopy(work);
    fs.writeFileSync(path.join(d, 'ganeti_api_version'), '15\n10\n5\n');
    const r = await runCommand(runBumpApi, d, { version: '20' });
    expect(r.code).toBe(0);
    expect(read(path.join(d, 'ganeti_api_version'))).toBe('20\n15\n10\n5\n');
  });
});

describe('variants are never introduced silently', () => {
  it('bump-api 20 on an API-10 definition is refused without --force (instances named without a variant)', async () => {
    const d = await newDef('old', { template: 'blank', api: '10' });
    const before = treeHash(d);
    let r = await runCommand(runBumpApi, d, { version: '20' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/must include a variant/);
    expect(r.err).toMatch(/--force/);
    expect(treeHash(d)).toBe(before);
    r = await runCommand(runBumpApi, d, { version: '20', force: true });
    expect(r.code).toBe(0);
    expect(read(path.join(d, 'variants.list'))).toMatch(/^default$/m);
  });

  it('the first add-variant on an empty variants.list is refused without --force', async () => {
    const { os: d, etc } = foreignCopy(work);
    fs.writeFileSync(path.join(etc, 'variants.list'), '');
    const before = treeHash(d, etc);
    let r = await runCommand(runAddVariant, d, { variant: 'web' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/must include a variant/);
    expect(treeHash(d, etc)).toBe(before);
    r = await runCommand(runAddVariant, d, { variant: 'web', force: true });
    expect(r.code).toBe(0);
  });

  it('bump-api 15 on a foreign API-10 definition without variants is refused without --force', async () => {
    const { os: d, etc } = foreignCopy(work);
    fs.writeFileSync(path.join(d, 'ganeti_api_version'), '10\n');
    fs.rmSync(path.join(d, 'variants.list'));
    const before = treeHash(d, etc);
    const r = await runCommand(runBumpApi, d, { version: '15' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/must include a variant/);
    expect(treeHash(d, etc)).toBe(before);
  });
});

describe('template settings and release names are checked', () => {
  it('add-variant --set with a key the template does not know is refused, listing the known keys', async () => {
    const d = await newDef('deb');
    const before = treeHash(d);
    const r = await runCommand(runAddVariant, d, { variant: 'noble', set: ['SUIT=jammy'] });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/SUIT: did you mean SUITE\?/);
    expect(r.err).toMatch(/MIRROR/);
    expect(treeHash(d)).toBe(before);
  });

  it("keys of defaults.conf are known too (a variant's own KEYRING)", async () => {
    const d = await newDef('deb');
    const r = await runCommand(runAddVariant, d, { variant: 'noble', set: ['SUITE=noble', 'KEYRING=/usr/share/keyrings/ubuntu-archive-keyring.gpg'] });
    expect(r.code).toBe(0);
  });

  it('settings read by a name made at run time (NETWORK_<LINK>_*, for any link) are known; a near miss is not', async () => {
    const d = await newDef('deb');
    const ok = await runCommand(runAddVariant, d, { variant: 'bookworm', set: ['NETWORK_GNT_BR0_PREFIX=24', 'NETWORK_GNT_BR0_GATEWAY=198.51.100.1', 'NETWORK_XEN_BR1_GATEWAY6=2001:db8::1'] });
    expect(ok.code).toBe(0);
    expect(fs.readFileSync(path.join(d, 'variants', 'bookworm.conf'), 'utf8')).toMatch(/^NETWORK_GNT_BR0_PREFIX=24$/m);
    const before = treeHash(d);
    const bad = await runCommand(runAddVariant, d, { variant: 'bookworm', set: ['NETWORK_GNT_BR0_NETMASK=24'] });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/NETWORK_<LINK>_PREFIX/);
    expect(treeHash(d)).toBe(before);
  });

  it('new --variant with a name that is not a release the template knows warns, listing them', async () => {
    const r = await runCommand(runNew, work, { name: 'deb', yes: true, variant: ['web'] });
    expect(r.err).toMatch(/'web'.*not a release/);
    expect(r.err).toMatch(/bookworm/);
    expect(r.err).toMatch(/add-variant web --set SUITE=/);
  });

  it('knows trixie, bookworm, forky and sid as Debian releases: no warning, SUITE is the name', async () => {
    const r = await runCommand(runNew, work, { name: 'releases', yes: true, variant: ['trixie', 'bookworm', 'forky', 'sid'] });
    expect(r.code).toBe(0);
    expect(r.err).not.toMatch(/not a release/);
    for (const v of ['trixie', 'bookworm', 'forky', 'sid']) expect(fs.readFileSync(path.join(work, 'releases', 'variants', `${v}.conf`), 'utf8')).toMatch(new RegExp(`^SUITE=${v}$`, 'm'));
    const d = await newDef('deb-sid');
    for (const v of ['forky', 'sid']) {
      const a = await runCommand(runAddVariant, d, { variant: v });
      expect(a.code).toBe(0);
      expect(a.err).not.toMatch(/not a release/);
    }
  });
});

describeSystem("Ganeti's own code: why variants appearing or going is refused", { ganeti: true }, () => {
  it('after a forced bump-api 20 on an API-10 definition, ValidateOS refuses the plain name; before, it took it', async () => {
    const d = await newDef('old', { template: 'blank', api: '10' });
    expect(validateOs(d, 'old', {})).toEqual({ ok: true });
    expect((await runCommand(runBumpApi, d, { version: '20', force: true })).code).toBe(0);
    const r = validateOs(d, 'old', {});
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/must include a variant/);
  });

  it('after a forced bump-api 10, ValidateOS refuses NAME+VARIANT', async () => {
    const d = await newDef('bl', { template: 'blank' });
    expect(validateOs(d, 'bl+default', {})).toEqual({ ok: true });
    expect((await runCommand(runBumpApi, d, { version: '10', force: true })).code).toBe(0);
    expect(validateOs(d, 'bl+default', {}).error).toMatch(/does not support variants/);
  });
});

describeReleases("Ganeti's own variant check", {}, (release) => {
  it("checkOsVariant says what _CheckOSVariant says, word for word, for every kind of name", async () => {
    const withVariants = await newDef('wv', { template: 'blank', variant: ['default', 'other'] });
    const without = await newDef('nv', { template: 'blank', api: '10' });
    for (const d of [withVariants, without]) {
      const def = readDefinition(d);
      for (const name of [def.name, `${def.name}+default`, `${def.name}+other`, `${def.name}+nope`]) {
        const g = validateOs(d, name, {}, false, release);
        expect({ name, error: checkOsVariant(def.name, name, def.variants) }).toEqual({ name, error: g.ok ? undefined : g.error });
      }
    }
  });
});
