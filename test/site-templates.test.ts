/**
 * Site templates from a directory (TEMPLATES.md): `new --template DIR`, `template init --from`,
 * `template check`, `upgrade` following the recorded template, and every malformed template
 * refused with exit 1, the problem named and nothing written. (From git: site-templates-git.test.ts.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROVENANCE_FILE, Provenance } from '../src/definition/provenance';
import { listTemplates } from '../src/definition/templates';
import { REPO, cli, read, snapshotTree, tempDir, treeHash } from './helpers/cli';

let work: string;
beforeEach(() => {
  work = tempDir('sitetpl');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

const record = (dir: string) => JSON.parse(read(path.join(dir, PROVENANCE_FILE))) as Provenance;
const modeOf = (p: string) => '0' + (fs.statSync(p).mode & 0o777).toString(8);

/** A template as a site would write it by hand: built on blank, with a hook, its own settings, variants and parameter. */
function acme(dir: string, change: (m: Record<string, unknown>) => void = () => undefined): string {
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  const manifest: Record<string, unknown> = {
    name: 'acme',
    summary: "Acme's house template: bootstraps Puppet",
    version: '2024.1',
    base: ['blank'],
    defaults: {
      variants: ['prod', 'staging'],
      parameters: [{ name: 'role', description: 'Puppet role of the instance', default: 'base', pattern: '[a-z]+' }],
    },
    settings: [{ key: 'PUPPET_SERVER', in: 'variant', default: 'puppet.acme.example', description: 'Puppet server of the variant' }],
    knownVariants: { staging: { PUPPET_SERVER: 'puppet-staging.acme.example' } },
    files: [
      { path: 'lib/steps.sh', source: 'lib/steps.sh', mode: '0644', owner: 'tool' },
      { path: 'hooks/bootstrap', source: 'bootstrap.hbs', mode: '0755', owner: 'tool' },
      { path: 'ACME.md', source: 'ACME.md.hbs', mode: '0644', owner: 'tool' },
    ],
  };
  change(manifest);
  fs.writeFileSync(path.join(dir, 'template.json'), JSON.stringify(manifest, null, 2));
  fs.writeFileSync(path.join(dir, 'lib', 'steps.sh'), read(path.join(REPO, 'templates', 'blank', 'lib', 'steps.sh')) + '# acme: nothing more to install\n');
  fs.writeFileSync(path.join(dir, 'bootstrap.hbs'), '#!/bin/sh\n# {{name}}: first boot of an Acme instance ({{template}} template)\nexec puppet agent --server "$PUPPET_SERVER"\n');
  fs.writeFileSync(path.join(dir, 'ACME.md.hbs'), '# {{name}}\n\nVariants:{{#each variants}} {{name}}{{/each}}.\n');
  return dir;
}

describe('new --template DIR', () => {
  it('renders a hand-written site template through the same loader, with its modes, settings and variants, and records where it came from', async () => {
    const tpl = acme(path.join(work, 'acme-template'));
    const r = await cli(work, ['new', 'web', '--template', './acme-template', '--yes']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`template acme from ${tpl} version 2024.1`);
    const os = path.join(work, 'web');
    expect(read(path.join(os, 'hooks', 'bootstrap'))).toBe('#!/bin/sh\n# web: first boot of an Acme instance (acme template)\nexec puppet agent --server "$PUPPET_SERVER"\n');
    expect(modeOf(path.join(os, 'hooks', 'bootstrap'))).toBe('0755');
    expect(read(path.join(os, 'ACME.md'))).toBe('# web\n\nVariants: prod staging.\n');
    expect(read(path.join(os, 'lib', 'steps.sh'))).toContain('# acme: nothing more to install');
    // The base chain (blank, common) gives the scripts and Ganeti's files.
    for (const f of ['create', 'export', 'import', 'rename', 'verify']) expect(modeOf(path.join(os, f))).toBe('0755');
    expect(read(path.join(os, 'variants.list'))).toMatch(/^prod\nstaging\n$/m);
    expect(read(path.join(os, 'variants', 'staging.conf'))).toContain('PUPPET_SERVER=puppet-staging.acme.example\n');
    expect(read(path.join(os, 'variants', 'prod.conf'))).toContain('PUPPET_SERVER=puppet.acme.example\n');
    expect(read(path.join(os, 'parameters.list'))).toContain('role Puppet role of the instance');
    const rec = record(os);
    expect(rec.template).toBe('acme');
    expect(rec.templateSource).toMatchObject({ kind: 'dir', location: tpl, version: '2024.1', summary: "Acme's house template: bootstraps Puppet" });
    expect(rec.templateSource!.hash).toMatch(/^[0-9a-f]{12}$/);
    expect(rec.templateSource!.package).toEqual({ depends: ['mount'], suggests: [] });
    // Ganeti accepts it.
    const v = await cli(work, ['validate', 'web']);
    expect(v.code).toBe(0);
    // The maintenance commands work from the recorded template too.
    const add = await cli(os, ['add-variant', 'dev']);
    expect(add.code).toBe(0);
    expect(read(path.join(os, 'variants', 'dev.conf'))).toContain('PUPPET_SERVER=puppet.acme.example\n');
    expect(read(path.join(os, 'ACME.md'))).toBe('# web\n\nVariants: prod staging dev.\n');
    const info = await cli(work, ['info', 'web']);
    expect(info.stdout).toMatch(new RegExp(`acme [0-9a-f]{12} \\(site template ${tpl} version 2024\\.1\\); up to date`));
  });

  it('a built-in name wins over a directory of that name; ./NAME is the directory', async () => {
    acme(path.join(work, 'blank'));
    expect((await cli(work, ['new', 'a', '--template', 'blank', '--yes'])).code).toBe(0);
    expect(record(path.join(work, 'a')).templateSource).toBeUndefined();
    expect((await cli(work, ['new', 'b', '--template', './blank', '--yes'])).code).toBe(0);
    expect(record(path.join(work, 'b')).templateSource?.kind).toBe('dir');
  });
});

describe('template init --from', () => {
  it.each(listTemplates().map((t) => t.name))('a copy of %s renders exactly the files of the built-in one (only the record differs)', async (from) => {
    const r = await cli(work, ['template', 'init', 'site-debian', '--from', from, '--name', from]);
    expect(r.code).toBe(0);
    const tpl = path.join(work, 'site-debian');
    // Everything it names is inside it: a file it shares with common (debian's and image's lib/raw-stream.sh) was copied in.
    if (from !== 'blank') expect(fs.existsSync(path.join(tpl, 'lib', 'raw-stream.sh'))).toBe(true);
    expect(JSON.parse(read(path.join(tpl, 'template.json')))).toMatchObject({ name: from, version: '1', base: ['common'] });
    expect(read(path.join(tpl, 'template.json'))).not.toContain('../');
    expect((await cli(work, ['new', 'builtin', '--template', from, '--yes'])).code).toBe(0);
    fs.mkdirSync(path.join(work, 'site'));
    expect((await cli(work, ['new', 'builtin', '-C', 'site', '--template', './site-debian', '--yes'])).code).toBe(0);
    const a = path.join(work, 'builtin');
    const b = path.join(work, 'site', 'builtin');
    const tree = (dir: string) => snapshotTree(dir).filter((e) => e.path !== PROVENANCE_FILE);
    expect(tree(b)).toEqual(tree(a));
    const { templateSource, templateVersion: _v1, ...restB } = record(b);
    const { templateVersion: _v2, ...restA } = record(a);
    expect(restB).toEqual(restA);
    expect(templateSource).toMatchObject({ kind: 'dir', location: tpl, version: '1' });
  });

  it('names the template after its directory, and refuses a directory that is not empty, a hidden or unknown template, a bad name', async () => {
    const dry = await cli(work, ['template', 'init', 'house', '--from', 'blank', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ written: false, name: 'house', from: 'blank', files: ['template.json', 'lib/steps.sh'] });
    expect(fs.readdirSync(work)).toEqual([]);
    expect((await cli(work, ['template', 'init', 'house', '--from', 'blank'])).code).toBe(0);
    expect(JSON.parse(read(path.join(work, 'house', 'template.json'))).name).toBe('house');
    expect((await cli(work, ['template', 'check', 'house'])).code).toBe(0);
    const before = treeHash(work);
    const notEmpty = await cli(work, ['template', 'init', 'house', '--from', 'debian']);
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toMatch(/house already exists and is not empty; nothing was changed/);
    const hidden = await cli(work, ['template', 'init', 'x', '--from', 'common']);
    expect(hidden.code).toBe(2);
    expect(hidden.stderr).toMatch(/'common' is a building block/);
    const unknown = await cli(work, ['template', 'init', 'x', '--from', 'debain']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown template 'debain'/);
    const badName = await cli(work, ['template', 'init', 'My_Template']);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/give one with --name/);
    expect(treeHash(work)).toBe(before);
  });
});

describe('upgrade follows the site template', () => {
  it('a change to the template lands, the admin keeps their edits, and the record moves to the new version', async () => {
    const tpl = acme(path.join(work, 'acme-template'));
    expect((await cli(work, ['new', 'web', '--template', tpl, '--yes'])).code).toBe(0);
    const os = path.join(work, 'web');
    const was = record(os).templateVersion;
    // The admin edits a file of the template's (at its end) and their defaults.conf.
    fs.appendFileSync(path.join(os, 'hooks', 'bootstrap'), '# local: also report to the CMDB\n');
    fs.appendFileSync(path.join(os, 'defaults.conf'), 'MY_SETTING=1\n');
    // The site changes the template: the hook's comment, a new file, a new version.
    fs.writeFileSync(path.join(tpl, 'motd'), 'Acme instance\n');
    acme(tpl, (m) => {
      m.version = '2024.2';
      (m.files as unknown[]).push({ path: 'motd', source: 'motd', mode: '0644', owner: 'tool' });
    });
    fs.writeFileSync(path.join(tpl, 'bootstrap.hbs'), read(path.join(tpl, 'bootstrap.hbs')).replace('# {{name}}: first boot', '# {{name}}, managed by Puppet: first boot'));
    const info = await cli(work, ['info', 'web']);
    expect(info.stdout).toMatch(/upgrade available to [0-9a-f]{12} \(2 files: ganeti-os upgrade\)/);
    const up = await cli(os, ['upgrade']);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/M merged +hooks\/bootstrap/);
    expect(up.stdout).toMatch(/\+ created +motd/);
    expect(up.stdout).toContain(`Template acme from ${tpl} version 2024.2; was version 2024.1.`);
    expect(read(path.join(os, 'hooks', 'bootstrap'))).toBe(
      '#!/bin/sh\n# web, managed by Puppet: first boot of an Acme instance (acme template)\nexec puppet agent --server "$PUPPET_SERVER"\n# local: also report to the CMDB\n',
    );
    expect(read(path.join(os, 'motd'))).toBe('Acme instance\n');
    expect(read(path.join(os, 'defaults.conf'))).toContain('MY_SETTING=1\n');
    const rec = record(os);
    expect(rec.templateVersion).not.toBe(was);
    expect(rec.templateSource?.version).toBe('2024.2');
    // Up to date now.
    const again = await cli(os, ['upgrade']);
    expect(again.stdout).toMatch(/is up to date with template acme/);
  });

  it('refuses clearly when the template is gone, changing nothing; upgrade --template follows it where it moved', async () => {
    const tpl = acme(path.join(work, 'acme-template'));
    expect((await cli(work, ['new', 'web', '--template', tpl, '--yes'])).code).toBe(0);
    const os = path.join(work, 'web');
    const moved = path.join(work, 'templates', 'acme');
    fs.mkdirSync(path.dirname(moved));
    fs.renameSync(tpl, moved);
    const before = treeHash(os);
    const r = await cli(os, ['upgrade']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`follows the site template ${tpl}, which is gone (the directory does not exist); nothing was changed`);
    expect(r.stderr).toContain('ganeti-os upgrade --template NEW-DIR');
    expect(treeHash(os)).toBe(before);
    const m = await cli(os, ['add-variant', 'dev']);
    expect(m.code).toBe(1);
    expect(treeHash(os)).toBe(before);
    const follow = await cli(os, ['upgrade', '--template', moved]);
    expect(follow.code).toBe(0);
    expect(follow.stdout).toContain(`now follows template acme from ${moved} version 2024.1`);
    expect(record(os).templateSource?.location).toBe(moved);
    expect((await cli(os, ['add-variant', 'dev'])).code).toBe(0);
  });

  it('upgrade --template moves a definition from a built-in template to a site template made from it', async () => {
    expect((await cli(work, ['new', 'web', '--template', 'blank', '--yes'])).code).toBe(0);
    expect((await cli(work, ['template', 'init', 'house', '--from', 'blank', '--name', 'blank'])).code).toBe(0);
    const os = path.join(work, 'web');
    fs.appendFileSync(path.join(work, 'house', 'lib', 'steps.sh'), '# house\n');
    const r = await cli(os, ['upgrade', '--template', '../house']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/~ updated +lib\/steps\.sh/);
    expect(read(path.join(os, 'lib', 'steps.sh'))).toMatch(/# house\n$/);
    expect(record(os).templateSource?.location).toBe(path.join(work, 'house'));
  });
});

/** Each bad template: what breaks it, and the problem the error must name. */
const BAD: [string, (dir: string) => void, RegExp][] = [
  ['a missing manifest', (d) => fs.rmSync(path.join(d, 'template.json')), /no manifest: template\.json is missing/],
  ['a manifest that is not JSON', (d) => fs.writeFileSync(path.join(d, 'template.json'), '{ "name": "acme", }'), /template\.json: is not valid JSON/],
  [
    'a file outside the template by ..',
    (d) => {
      fs.writeFileSync(path.join(d, '..', 'outside.sh'), 'echo\n');
      acme(d, (m) => void ((m.files as Record<string, unknown>[])[0].source = '../outside.sh'));
    },
    /files\[0\] \(lib\/steps\.sh\): source "\.\.\/outside\.sh" is a file outside the template \(it leaves the folder by '\.\.'\)/,
  ],
  [
    'a file outside the template by a symbolic link',
    (d) => {
      fs.writeFileSync(path.join(d, '..', 'outside.sh'), 'echo\n');
      fs.rmSync(path.join(d, 'lib', 'steps.sh'));
      fs.symlinkSync('../../outside.sh', path.join(d, 'lib', 'steps.sh'));
    },
    /source "lib\/steps\.sh" is a file outside the template \(through a symbolic link, to .*outside\.sh\)/,
  ],
  [
    'a directory of the template that is a symbolic link outside it',
    (d) => {
      fs.mkdirSync(path.join(d, '..', 'elsewhere'));
      fs.renameSync(path.join(d, 'lib', 'steps.sh'), path.join(d, '..', 'elsewhere', 'steps.sh'));
      fs.rmdirSync(path.join(d, 'lib'));
      fs.symlinkSync('../elsewhere', path.join(d, 'lib'));
    },
    /source "lib\/steps\.sh" is a file outside the template \(through a symbolic link/,
  ],
  ['an absolute source', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[0].source = '/etc/passwd')), /source "\/etc\/passwd" is a file outside the template \(an absolute path\)/],
  ['a source that does not exist', (d) => fs.rmSync(path.join(d, 'ACME.md.hbs')), /files\[2\] \(ACME\.md\): source "ACME\.md\.hbs" does not exist in the template/],
  ['a mode that is not octal', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].mode = '0855')), /files\[1\] \(hooks\/bootstrap\): bad mode "0855": not a file mode in octal/],
  ['a mode given as a number', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].mode = 755)), /mode 755 is a JSON number \(read as decimal\): write it as a string, "0755"/],
  ['a mode others can write', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].mode = '0777')), /bad mode "0777": group or others could write the file/],
  ['a setuid mode', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].mode = '4755')), /bad mode "4755": it sets the setuid/],
  ['an unknown key', (d) => acme(d, (m) => void ((m.fils = m.files), delete m.files)), /template [^ ]+: unknown key "fils" \(did you mean "files"\?\)/],
  ['an unknown key in a file entry', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].mod = '0755')), /files\[1\] \(hooks\/bootstrap\): unknown key "mod" \(did you mean "mode"\?\)/],
  ['a path leaving the definition', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].path = '../bootstrap')), /path "\.\.\/bootstrap" is outside the definition/],
  ["a path of ganeti-os's own", (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].path = '.ganeti-os.json')), /path "\.ganeti-os\.json" is ganeti-os's own/],
  ['a bad owner', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].owner = 'admin')), /"owner" must be "tool" .* or "user" .*, not "admin"/],
  ['an unknown generator', (d) => acme(d, (m) => void (m.files as unknown[]).push({ path: 'x', generator: 'magic', mode: '0644', owner: 'tool' })), /unknown generator "magic"/],
  ['a path listed twice', (d) => acme(d, (m) => void (m.files as unknown[]).push({ path: 'ACME.md', source: 'ACME.md.hbs', mode: '0644', owner: 'tool' })), /files\[3\] \(ACME\.md\): the path is listed twice/],
  ['an unknown base', (d) => acme(d, (m) => void (m.base = ['debain'])), /base: "debain" is not a template ganeti-os ships/],
  ['a broken Handlebars file', (d) => fs.writeFileSync(path.join(d, 'ACME.md.hbs'), '{{#each variants}}{{name}}\n'), /source "ACME\.md\.hbs" is not a valid Handlebars template: Parse error/],
  ['a parameter whose default is not a choice', (d) => acme(d, (m) => void ((m.defaults as Record<string, unknown>).parameters = [{ name: 'role', description: 'Role', default: 'x', choices: ['a', 'b'] }])), /defaults\.parameters\[0\] \(role\): parameter role: the default 'x' is not one of the choices/],
  ['a missing name', (d) => acme(d, (m) => void delete m.name), /template [^ ]+: "name" is missing/],
  ['no variant with API 20', (d) => acme(d, (m) => void ((m.defaults as Record<string, unknown>).variants = [])), /defaults\.variants: must name at least one variant/],
  ['data that is not an object', (d) => acme(d, (m) => void ((m.files as Record<string, unknown>[])[1].data = null)), /files\[1\] \(hooks\/bootstrap\)\.data: must be an object \(\{\.\.\.\}\), not null/],
  ['a helper the template does not have (at render time)', (d) => fs.writeFileSync(path.join(d, 'ACME.md.hbs'), '{{shout name}}\n'), /template acme: ACME\.md\.hbs \(for ACME\.md\) cannot be rendered: Missing helper: "shout"/],
];

describe('a bad template is refused: exit 1, the problem named, nothing written', () => {
  it.each(BAD)('%s', async (_what, breakIt, problem) => {
    const tpl = acme(path.join(work, 'tpl', 'acme'));
    breakIt(tpl);
    const before = treeHash(work);
    const r = await cli(work, ['new', 'web', '--template', tpl, '--yes']);
    expect(r.stderr).toMatch(problem);
    expect(r.code).toBe(1);
    expect(fs.existsSync(path.join(work, 'web'))).toBe(false);
    expect(treeHash(work)).toBe(before);
    const c = await cli(work, ['template', 'check', tpl]);
    expect(c.stderr).toMatch(problem);
    expect(c.code).toBe(1);
  });

  it('the same errors stop upgrade, the definition as it was', async () => {
    const tpl = acme(path.join(work, 'acme'));
    expect((await cli(work, ['new', 'web', '--template', tpl, '--yes'])).code).toBe(0);
    const os = path.join(work, 'web');
    acme(tpl, (m) => void ((m.files as Record<string, unknown>[])[1].mode = '0775'));
    const before = treeHash(os);
    const r = await cli(os, ['upgrade']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/follows the site template .*, which cannot be loaded: template .*: files\[1\] \(hooks\/bootstrap\): bad mode "0775": group or others could write the file/);
    expect(treeHash(os)).toBe(before);
  });

  it('a template path that is not there, or not a directory', async () => {
    const r = await cli(work, ['new', 'web', '--template', './nope', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no template at .*\/nope: it does not exist/);
    expect(r.stderr).toContain(listTemplates().map((t) => t.name).join(', '));
    fs.writeFileSync(path.join(work, 'file'), '');
    const f = await cli(work, ['new', 'web', '--template', './file', '--yes']);
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/is not a template: it is not a directory/);
    expect(fs.existsSync(path.join(work, 'web'))).toBe(false);
  });
});
