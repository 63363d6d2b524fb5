/**
 * `ganeti-os upgrade`: golden upgrades of definitions written by ganeti-os at the commit this
 * work started from (test/fixtures/upgrade), to this tree's templates. Where the test needs the
 * template to have changed since, it "ages" a file: the definition then looks written by an
 * older template (see test/helpers/upgrade.ts). Every merge is compared with git merge-file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runAddParam } from '../src/commands/add-param';
import { runAddVariant } from '../src/commands/add-variant';
import { loadDefinition } from '../src/definition/maintain';
import { PROVENANCE_FILE } from '../src/definition/provenance';
import { loadTemplate, renderTemplate } from '../src/definition/templates';
import { BESIDE_SUFFIX, STATE_DIR, upgradeDefinition, upgradeParameters } from '../src/definition/upgrade';
import { applyUpgrade } from '../src/definition/upgrade-apply';
import { merge3, textLines } from '../src/definition/upgrade-merge';
import { templateVersion } from '../src/definition/upgrade-record';
import { LOCK_FILE } from '../src/definition/lock';
import { JOURNAL_FILE } from '../src/definition/writer';
import { runCliAsync, runInProcess } from './helpers/cli';
import { captureContext, runCommand, treeHash } from './helpers/cli';
import { FIXTURE_COMMIT, age, fixture, gitMerge, modeOf, provenance, read, recordExtra, setLine, sha, upgrade, writeProvenance } from './helpers/upgrade';

const works: string[] = [];
function copy(set: string): string {
  const f = fixture(set);
  works.push(f.work);
  return f.dir;
}
afterEach(() => {
  for (const w of works.splice(0)) fs.rmSync(w, { recursive: true, force: true });
});

/** What the current template renders for the definition's recorded answers. */
function renders(dir: string): Map<string, { content: string; mode: number; owner: string }> {
  const p = provenance(dir);
  return new Map(renderTemplate(loadTemplate(p.template), p.answers).map((f) => [f.path, f]));
}

/** Labels our merge wrote (to give git the same), or placeholders when there was no conflict. */
function labelsIn(text: string): [string, string, string] {
  const get = (m: string) => new RegExp(`^${m} (.*)$`, 'm').exec(text)?.[1] ?? 'x';
  return [get('<<<<<<<'), get('\\|\\|\\|\\|\\|\\|\\|'), get('>>>>>>>')];
}

/**
 * The principle for parameters: the admin's keep their order; the template's come in the
 * template's order (where a fresh render puts them); one the upgrade adds never lands between
 * two of the admin's own (those the template does not have stay together).
 */
function expectParameterOrder(had: string[], names: string[], template: string): void {
  const templateParams = loadTemplate(template).manifest.defaults.parameters.map((p) => p.name);
  expect(names.filter((n) => had.includes(n))).toEqual(had);
  for (const n of names.filter((x) => !had.includes(x))) expect(templateParams).toContain(n);
  expect(names.filter((n) => templateParams.includes(n))).toEqual(templateParams.filter((n) => names.includes(n)));
  const own = names.flatMap((n, i) => (templateParams.includes(n) ? [] : [i]));
  if (own.length) expect(own[own.length - 1] - own[0]).toBe(own.length - 1);
}

/** The files of fixture `set` whose recorded text the current template still renders. */
function unchangedSince(set: string, candidates: string[]): string[] {
  const dir = copy(set);
  const p = provenance(dir);
  const now = renders(dir);
  return candidates.filter((rel) => p.files[rel] && now.get(rel) && p.files[rel].sha256 === sha(now.get(rel)!.content));
}

/** Upgrade to schema 2 first (records the base), as an admin's first upgrade does. */
async function recorded(set: string): Promise<string> {
  const dir = copy(set);
  const r = await upgrade(dir);
  expect(r.code).toBe(0);
  expect(provenance(dir).base).toBeDefined();
  return dir;
}

describe('fixtures', () => {
  it('were written by the commit this branch started from, with hashes only', () => {
    expect(FIXTURE_COMMIT).toMatch(/^[0-9a-f]{40}$/);
    for (const set of ['blank', 'blank-maint', 'debian', 'debian-maint']) {
      const dir = copy(set);
      const p = provenance(dir);
      expect(p.schema).toBe(1);
      expect(p.base).toBeUndefined();
      expect(p.templateVersion).toBeUndefined();
    }
  });
});

describe('upgrade: untouched definitions from the starting commit', () => {
  it.each(['blank', 'debian', 'blank-maint', 'debian-maint'])('%s: every template file is the new render, the record gains the base; a second run changes nothing', async (set) => {
    const dir = copy(set);
    const before = provenance(dir);
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    const after = provenance(dir);
    expect(after.schema).toBe(2);
    expect(after.templateVersion).toBe(templateVersion(loadTemplate(after.template)));
    expect(after.answers.variants.map((v) => v.name)).toEqual(before.answers.variants.map((v) => v.name));
    expectParameterOrder(before.answers.parameters.map((p) => p.name), after.answers.parameters.map((p) => p.name), after.template);
    for (const [rel, f] of renders(dir)) {
      // The base is the new render; the admin's files keep their text and their record.
      expect([rel, after.base![rel]]).toEqual([rel, f.content]);
      if (f.owner === 'tool') {
        expect([rel, read(path.join(dir, rel))]).toEqual([rel, f.content]);
        expect([rel, modeOf(path.join(dir, rel))]).toEqual([rel, f.mode]);
        expect([rel, after.files[rel].sha256]).toEqual([rel, sha(f.content)]);
      } else if (before.files[rel]) {
        expect([rel, after.files[rel]]).toEqual([rel, before.files[rel]]);
      }
    }
    // The admin's files are never rewritten.
    for (const rel of Object.keys(before.files).filter((k) => before.files[k].owner === 'user')) {
      expect([rel, sha(read(path.join(dir, rel)))]).toEqual([rel, before.files[rel].sha256]);
    }
    const snapshot = treeHash(dir);
    const again = await upgrade(dir);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/is up to date with template/);
    expect(treeHash(dir)).toBe(snapshot);
  });

  it('files an older template wrote differently are replaced, and backed up', async () => {
    const dir = copy('blank');
    const old = age(dir, 'lib/runtime.sh', setLine(1, '# runtime of an older template'));
    age(dir, 'README.md', (t) => t.replace(/\n$/, '\nA line the old template had.\n'));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/updated +lib\/runtime\.sh/);
    expect(r.out).toMatch(/updated +README\.md/);
    const now = renders(dir);
    expect(read(path.join(dir, 'lib/runtime.sh'))).toBe(now.get('lib/runtime.sh')!.content);
    expect(read(path.join(dir, 'README.md'))).toBe(now.get('README.md')!.content);
    const backups = fs.readdirSync(path.join(dir, STATE_DIR, 'backups'));
    expect(backups).toHaveLength(1);
    expect(read(path.join(dir, STATE_DIR, 'backups', backups[0], 'lib/runtime.sh'))).toBe(old);
    expect(r.out).toContain(path.join(dir, STATE_DIR, 'backups', backups[0]));
  });
});

describe("upgrade: the template's default variant moved (debian: bookworm → trixie)", () => {
  const listed = (dir: string) => read(path.join(dir, 'variants.list')).split('\n').filter((l) => l && !l.startsWith('#'));
  it.each(['debian', 'debian-maint'])('%s: says so once and leaves the admin\'s variants.list, its order and its configurations alone', async (set) => {
    const dir = copy(set);
    expect(loadTemplate('debian').manifest.defaults.variants.slice(0, 2)).toEqual(['trixie', 'bookworm']);
    const before = listed(dir);
    expect(before[0]).toBe('bookworm');
    const confs = treeHash(path.join(dir, 'variants'));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/note: The debian template's default variant is now trixie \(new definitions list trixie, bookworm(; it was bookworm)?\)\. This definition keeps bookworm as its default: its variants\.list is yours and was left as it is; 'ganeti-os add-variant trixie --first' makes it this definition's default\./);
    expect(listed(dir)).toEqual(before);
    expect(provenance(dir).answers.variants.map((v) => v.name)).toEqual(before);
    expect(treeHash(path.join(dir, 'variants'))).toBe(confs);
    expect(provenance(dir).templateVariants).toEqual(loadTemplate('debian').manifest.defaults.variants);
    // Said once: the next upgrade knows the template's default of the last one.
    const again = await upgrade(dir);
    expect(again.code).toBe(0);
    expect(again.out).not.toMatch(/default variant/);
    // The admin's own choice afterwards is kept too, and the note stays silent.
    const moved = await runCommand(runAddVariant, dir, { variant: 'trixie', first: true });
    expect(moved.code).toBe(0);
    expect(listed(dir)[0]).toBe('trixie');
    expect((await upgrade(dir)).out).not.toMatch(/default variant/);
  });

  it('is silent for a definition whose default is already the template\'s, and for one written by this version', async () => {
    const dir = copy('debian');
    expect((await runCommand(runAddVariant, dir, { variant: 'trixie', first: true })).code).toBe(0);
    expect((await upgrade(dir)).out).not.toMatch(/default variant/);
    const fresh = path.join(path.dirname(dir), 'fresh');
    const made = await runInProcess(['new', 'fresh', '--yes'], { cwd: path.dirname(dir) });
    expect(made.code).toBe(0);
    expect(listed(fresh).slice(0, 2)).toEqual(['trixie', 'bookworm']);
    expect(provenance(fresh).templateVariants).toEqual(loadTemplate('debian').manifest.defaults.variants);
    expect((await upgrade(fresh)).out).not.toMatch(/default variant/);
  });
});

describe('upgrade: the admin edited files of an old definition (hashes only)', () => {
  it('the template did not change them: the edits stay, nothing beside', async () => {
    // Files the template has not changed since the fixtures were written (computed: templates move on).
    const same = unchangedSince('blank', ['create', 'export', 'lib/steps.sh', 'README.md', 'verify']);
    expect(same).toContain('lib/steps.sh');
    expect(same.length).toBeGreaterThanOrEqual(2);
    const dir = copy('blank');
    for (const f of same) fs.appendFileSync(path.join(dir, f), '# admin: site notes\n');
    const edited = same.map((f) => read(path.join(dir, f)));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(same.map((f) => read(path.join(dir, f)))).toEqual(edited);
    const beside = (d: string): string[] =>
      fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? beside(path.join(d, e.name)) : e.name.endsWith(BESIDE_SUFFIX) ? [e.name] : []));
    expect(beside(dir)).toEqual([]);
    // The base was recovered (the template renders what was written): later upgrades merge.
    const p = provenance(dir);
    expect(p.base!['lib/steps.sh']).toBe(renders(dir).get('lib/steps.sh')!.content);
  });

  it('the template changed them too (and no shipped release has their base): the edits stay, the new version goes beside, is listed, and the upgrade fails', async () => {
    const dir = copy('debian');
    for (const f of ['create', 'lib/steps.sh', 'README.md']) age(dir, f, setLine(1, `# ${f} of an older template`));
    for (const f of ['create', 'lib/steps.sh', 'README.md']) fs.appendFileSync(path.join(dir, f), '# admin was here\n');
    const edited = ['create', 'lib/steps.sh', 'README.md'].map((f) => read(path.join(dir, f)));
    const r = await upgrade(dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/3 files you edited were not merged/);
    expect(['create', 'lib/steps.sh', 'README.md'].map((f) => read(path.join(dir, f)))).toEqual(edited);
    const now = renders(dir);
    for (const f of ['create', 'lib/steps.sh', 'README.md']) {
      expect(read(path.join(dir, f + BESIDE_SUFFIX))).toBe(now.get(f)!.content);
      expect(modeOf(path.join(dir, f + BESIDE_SUFFIX))).toBe(now.get(f)!.mode);
      expect(r.out).toContain(`${f}${BESIDE_SUFFIX}`);
    }
    expect(modeOf(path.join(dir, 'create'))).toBe(0o755);
  });
});

describe('upgrade: three-way merges (definitions upgraded once, then the template changed)', () => {
  it('admin edits to a script, lib/steps.sh and the README merge with the template changes, as git merge-file merges them', async () => {
    const dir = await recorded('blank');
    const files = ['create', 'lib/steps.sh', 'README.md'];
    const bases = files.map((f) => age(dir, f, setLine(1, `# ${f} line 2 of an older template`)));
    for (const f of files) fs.appendFileSync(path.join(dir, f), '# admin: kept across upgrades\n');
    const currents = files.map((f) => read(path.join(dir, f)));
    const untouched = treeHash(path.join(dir, 'variants'));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    const now = renders(dir);
    files.forEach((f, i) => {
      const merged = read(path.join(dir, f));
      expect(r.out).toMatch(new RegExp(`merged +${f.replace('.', '\\.')}`));
      expect(merged).toContain('# admin: kept across upgrades\n');
      expect(merged.split('\n')[1]).toBe(now.get(f)!.content.split('\n')[1]);
      const git = gitMerge(currents[i], bases[i], now.get(f)!.content, ['a', 'b', 'c']);
      expect(git.conflicts).toBe(0);
      expect(merged).toBe(git.text);
    });
    expect(modeOf(path.join(dir, 'create'))).toBe(0o755);
    expect(treeHash(path.join(dir, 'variants'))).toBe(untouched);
    expect(fs.readdirSync(path.join(dir, 'lib')).filter((n) => n.includes('ganeti-os'))).toEqual([]);
  });

  it('the same change on both sides: nothing to do', async () => {
    const dir = await recorded('blank');
    const now = read(path.join(dir, 'lib/runtime.sh'));
    age(dir, 'lib/runtime.sh', setLine(3, '# old'));
    fs.writeFileSync(path.join(dir, 'lib/runtime.sh'), now);
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/runtime\.sh/);
    expect(read(path.join(dir, 'lib/runtime.sh'))).toBe(now);
  });

  it('a conflicting edit: git-style markers with labels, exit 1, the file listed, everything else upgraded as without it', async () => {
    const dir = await recorded('blank');
    const base = age(dir, 'lib/steps.sh', setLine(2, '# line 3 of an older template'));
    age(dir, 'lib/runtime.sh', setLine(1, '# runtime of an older template'));
    fs.writeFileSync(path.join(dir, 'lib/steps.sh'), setLine(2, '# line 3 as the admin wants it')(base));
    const current = read(path.join(dir, 'lib/steps.sh'));
    const confs = treeHash(path.join(dir, 'variants'));
    const defaults = read(path.join(dir, 'defaults.conf'));
    const r = await upgrade(dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/conflicts/);
    expect(r.err).toMatch(/^ {2}lib\/steps\.sh$/m);
    expect(r.out).toMatch(/CONFLICT +lib\/steps\.sh/);
    const merged = read(path.join(dir, 'lib/steps.sh'));
    expect(merged).toMatch(/^<<<<<<< lib\/steps\.sh \(yours\)\n# line 3 as the admin wants it\n\|\|\|\|\|\|\| lib\/steps\.sh \(template blank .*\)\n# line 3 of an older template\n=======\n/m);
    expect(merged).toMatch(/^>>>>>>> lib\/steps\.sh \(template blank [0-9a-f]{12}\)$/m);
    const now = renders(dir);
    const git = gitMerge(current, base, now.get('lib/steps.sh')!.content, labelsIn(merged));
    expect(git.conflicts).toBe(1);
    expect(merged).toBe(git.text);
    // Everything else: as the upgrade without the conflict would leave it.
    expect(read(path.join(dir, 'lib/runtime.sh'))).toBe(now.get('lib/runtime.sh')!.content);
    expect(treeHash(path.join(dir, 'variants'))).toBe(confs);
    expect(read(path.join(dir, 'defaults.conf'))).toBe(defaults);
    // The record holds the new render as base: once resolved, the next upgrade has nothing to merge.
    expect(provenance(dir).base!['lib/steps.sh']).toBe(now.get('lib/steps.sh')!.content);
    // Unresolved, another upgrade refuses to merge into the markers.
    const snapshot = treeHash(dir);
    const again = await upgrade(dir);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/still has conflict markers[^]*lib\/steps\.sh/);
    expect(treeHash(dir)).toBe(snapshot);
    fs.writeFileSync(path.join(dir, 'lib/steps.sh'), setLine(2, '# line 3 as the admin wants it')(now.get('lib/steps.sh')!.content));
    const resolved = await upgrade(dir);
    expect(resolved.code).toBe(0);
    expect(read(path.join(dir, 'lib/steps.sh'))).toMatch(/as the admin wants it/);
  });

  it('a variant and a parameter added with the commands stay, with their files', async () => {
    const dir = await recorded('debian-maint');
    let c = await runCommand(runAddVariant, dir, { variant: 'jammy', set: ['SUITE=jammy'] });
    expect(c.code).toBe(0);
    c = await runCommand(runAddParam, dir, { name: 'banner', description: 'Login banner', default: 'hi' });
    expect(c.code).toBe(0);
    // The maintenance commands keep the base current.
    const p = provenance(dir);
    expect(p.base!['variants/jammy.conf']).toBe(read(path.join(dir, 'variants/jammy.conf')));
    expect(p.base!['parameters.list']).toBe(read(path.join(dir, 'parameters.list')));
    age(dir, 'README.md', setLine(1, '# older README line'));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    const after = provenance(dir);
    expect(after.answers.variants.map((v) => v.name)).toEqual(['bookworm', 'trixie', 'noble', 'jammy']);
    expect(after.answers.parameters.map((x) => x.name)).toEqual(expect.arrayContaining(['motd', 'banner']));
    expect(read(path.join(dir, 'variants.list'))).toMatch(/\nnoble\njammy\n$/);
    expect(read(path.join(dir, 'parameters.list'))).toMatch(/^motd Message of the day\nbanner Login banner\n/m);
    // The list on disk is in the answers' order: the template's (new ones included) as a fresh
    // render has them, the admin's own together.
    const listed = read(path.join(dir, 'parameters.list')).split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
    expect(listed).toEqual(after.answers.parameters.map((x) => x.name));
    expectParameterOrder(p.answers.parameters.map((x) => x.name), listed, after.template);
    expect(read(path.join(dir, 'lib/parameters.sh'))).toMatch(/\[banner\]=hi/);
    expect(read(path.join(dir, 'README.md'))).toBe(renders(dir).get('README.md')!.content);
    expect(read(path.join(dir, 'variants/noble.conf'))).toMatch(/^COMPONENTS='main universe'$/m);
  });

  it('a file the template dropped: removed when untouched, kept (and no longer tracked) when the admin changed it', async () => {
    const dir = await recorded('blank');
    recordExtra(dir, 'lib/old-helper.sh', '# helper of an older template\n');
    recordExtra(dir, 'lib/old-hooks.sh', '# hooks of an older template\n', '# hooks of an older template\n# admin: my hook\n');
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(dir, 'lib/old-helper.sh'))).toBe(false);
    expect(read(path.join(dir, 'lib/old-hooks.sh'))).toMatch(/my hook/);
    expect(r.out).toMatch(/removed +lib\/old-helper\.sh/);
    expect(r.out).toMatch(/kept +lib\/old-hooks\.sh .*you changed it/);
    const p = provenance(dir);
    expect(p.files['lib/old-helper.sh']).toBeUndefined();
    expect(p.files['lib/old-hooks.sh']).toBeUndefined();
    expect(p.base!['lib/old-hooks.sh']).toBeUndefined();
  });

  it('a file the admin deleted stays deleted, in this upgrade and the next', async () => {
    const dir = await recorded('blank');
    age(dir, 'README.md', setLine(1, 'older'));
    fs.rmSync(path.join(dir, 'README.md'));
    for (let i = 0; i < 2; i++) {
      const r = await upgrade(dir);
      expect(r.code).toBe(0);
      expect(fs.existsSync(path.join(dir, 'README.md'))).toBe(false);
    }
    expect(provenance(dir).files['README.md']).toBeDefined();
  });

  it('a new template file the admin already made: merged against an empty base', async () => {
    const dir = await recorded('blank');
    const now = renders(dir).get('lib/steps.sh')!.content;
    const p = provenance(dir);
    delete p.files['lib/steps.sh'];
    delete p.base!['lib/steps.sh'];
    writeProvenance(dir, p);
    const mine = '#!/bin/bash\n# the admin wrote this before the template had it\n';
    fs.writeFileSync(path.join(dir, 'lib/steps.sh'), mine);
    const r = await upgrade(dir);
    expect(r.code).toBe(1);
    const merged = read(path.join(dir, 'lib/steps.sh'));
    const git = gitMerge(mine, '', now, labelsIn(merged));
    expect(git.conflicts).toBeGreaterThan(0);
    expect(merged).toBe(git.text);

    // Identical to the template's: simply adopted.
    const dir2 = await recorded('blank');
    const p2 = provenance(dir2);
    delete p2.files['lib/steps.sh'];
    writeProvenance(dir2, p2);
    expect((await upgrade(dir2)).code).toBe(0);
    expect(provenance(dir2).files['lib/steps.sh'].sha256).toBe(sha(now));
  });

  it('modes are merged apart from the text: the admin\'s mode stays, a template mode change applies', async () => {
    const dir = await recorded('blank');
    age(dir, 'create', setLine(1, '# older'));
    fs.chmodSync(path.join(dir, 'create'), 0o700);
    age(dir, 'rename', (t) => t, 0o644);
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(modeOf(path.join(dir, 'create'))).toBe(0o700);
    expect(read(path.join(dir, 'create'))).toBe(renders(dir).get('create')!.content);
    expect(modeOf(path.join(dir, 'rename'))).toBe(0o755);
    expect(r.out).toMatch(/rename .*mode 0644 → 0755/);
  });

  it('a symlinked variants.list stays a symlink; its target gets the merge', async () => {
    const dir = await recorded('blank-maint');
    const etc = path.join(path.dirname(dir), 'etc');
    fs.mkdirSync(etc);
    const old = age(dir, 'variants.list', (t) => t.replace(/^# .*\n/, '# Variants, as an older template described them.\n'));
    fs.writeFileSync(path.join(etc, 'variants.list'), old + 'site-variant\n');
    fs.rmSync(path.join(dir, 'variants.list'));
    fs.symlinkSync(path.join(etc, 'variants.list'), path.join(dir, 'variants.list'));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(fs.lstatSync(path.join(dir, 'variants.list')).isSymbolicLink()).toBe(true);
    const text = read(path.join(etc, 'variants.list'));
    expect(text).toMatch(/site-variant\n$/);
    expect(text).not.toMatch(/older template/);
  });

  it("the admin's configuration files are never rewritten; settings the template introduced are reported", async () => {
    const dir = await recorded('debian');
    // The older template lacked one setting of each file: its last in defaults.conf, its first in the variant's.
    const settingLines = (rel: string) => read(path.join(dir, rel)).split('\n').filter((l) => /^#? ?[A-Z_][A-Z0-9_]*=/.test(l));
    const [dropped] = settingLines('defaults.conf').slice(-1);
    const [droppedVariant] = settingLines('variants/bookworm.conf');
    const key = (l: string) => /([A-Z_][A-Z0-9_]*)=/.exec(l)![1];
    age(dir, 'defaults.conf', (t) => t.replace(`${dropped}\n`, ''));
    age(dir, 'variants/bookworm.conf', (t) => t.replace(`${droppedVariant}\n`, ''));
    const defaults = read(path.join(dir, 'defaults.conf'));
    const conf = read(path.join(dir, 'variants/bookworm.conf'));
    // What the template has that the files (as the older template wrote them) lack.
    const keys = (t: string) => new Set(t.split('\n').flatMap((l) => /^\s*#?\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=/.exec(l)?.[1] ?? []));
    const lacking = (rel: string, text: string) => [...keys(renders(dir).get(rel)!.content)].filter((k) => !keys(text).has(k)).map((k) => `${rel}: ${k}`);
    const expected = [...lacking('defaults.conf', defaults), ...lacking('variants/bookworm.conf', conf)];
    expect(expected).toEqual(expect.arrayContaining([`defaults.conf: ${key(dropped)}`, `variants/bookworm.conf: ${key(droppedVariant)}`]));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(read(path.join(dir, 'defaults.conf'))).toBe(defaults);
    expect(read(path.join(dir, 'variants/bookworm.conf'))).toBe(conf);
    const reported = [...r.out.matchAll(/new setting {2}(\S+): (\S+) /g)].map((m) => `${m[1]}: ${m[2]}`);
    expect(reported.sort()).toEqual(expected.sort());
    // Reported once: the next upgrade has nothing to say about them, and the files stay.
    const again = await upgrade(dir);
    expect(again.code).toBe(0);
    expect(again.out).not.toMatch(/new setting/);
    expect(read(path.join(dir, 'defaults.conf'))).toBe(defaults);
  });
});

describe('the base render is kept current by every command that writes', () => {
  it('new, add-variant, add-param, remove-variant, remove-param, bump-api: the base is what the template renders, the files as written', async () => {
    const work = copy('blank');
    const parent = path.dirname(work);
    const r = await runInProcess(['new', 'fresh', '--template', 'blank', '--yes'], { cwd: parent });
    expect(r.code).toBe(0);
    const dir = path.join(parent, 'fresh');
    const check = () => {
      const p = provenance(dir);
      expect(p.schema).toBe(2);
      expect(p.templateVersion).toBe(templateVersion(loadTemplate('blank')));
      const now = renderTemplate(loadTemplate('blank'), p.answers);
      expect(Object.keys(p.base!).sort()).toEqual(Object.keys(p.files).sort());
      for (const f of now) {
        expect([f.path, p.base![f.path]]).toEqual([f.path, f.content]);
        expect([f.path, read(path.join(dir, f.path))]).toEqual([f.path, f.content]);
      }
    };
    check();
    for (const args of [
      ['add-variant', 'second', '--set', 'X=1'],
      ['add-param', 'size', 'Root size', '--default', '1'],
      ['remove-param', 'size'],
      ['bump-api', '15'],
      ['bump-api', '20'],
      ['remove-variant', 'default'],
    ]) {
      const c = await runInProcess([...args, '--os-dir', dir], { cwd: parent });
      expect([args, c.code]).toEqual([args, 0]);
      check();
    }
  });
});

describe('upgrade: safety', () => {
  it('a failure in the middle of writing rolls everything back, backup included', async () => {
    const dir = await recorded('debian');
    for (const f of ['create', 'lib/steps.sh', 'README.md', 'lib/runtime.sh']) age(dir, f, setLine(1, '# older'));
    // The first upgrade backed up what it replaced: the admin cleared that away.
    fs.rmSync(path.join(dir, STATE_DIR), { recursive: true, force: true });
    const before = treeHash(dir);
    for (const step of [0, 2]) {
      const up = upgradeDefinition(loadDefinition(captureContext(dir).ctx, {}));
      expect(() =>
        applyUpgrade(up, {
          hooks: {
            beforeCommitStep: (i) => {
              if (i === step) throw new Error('disk full (injected)');
            },
          },
        }),
      ).toThrow(/previous files were put back|nothing was changed/);
      expect(treeHash(dir)).toBe(before);
      expect(fs.existsSync(path.join(dir, STATE_DIR))).toBe(false);
      expect(fs.existsSync(path.join(dir, JOURNAL_FILE))).toBe(false);
    }
    // An earlier backup stays as it was; no new one is left beside it.
    fs.mkdirSync(path.join(dir, STATE_DIR, 'backups', 'earlier'), { recursive: true });
    fs.writeFileSync(path.join(dir, STATE_DIR, 'backups', 'earlier', 'create'), 'an earlier backup\n');
    const withBackup = treeHash(dir);
    const up = upgradeDefinition(loadDefinition(captureContext(dir).ctx, {}));
    expect(() => applyUpgrade(up, { hooks: { beforeCommitStep: () => { throw new Error('disk full (injected)'); } } })).toThrow(/nothing was changed|put back/);
    expect(treeHash(dir)).toBe(withBackup);
    expect(fs.readdirSync(path.join(dir, STATE_DIR, 'backups'))).toEqual(['earlier']);
    expect((await upgrade(dir)).code).toBe(0);
    expect(read(path.join(dir, 'lib/steps.sh'))).toBe(renders(dir).get('lib/steps.sh')!.content);
  });

  it('--dry-run prints a unified diff of every change and changes nothing; --json prints one document', async () => {
    const dir = await recorded('blank');
    age(dir, 'lib/runtime.sh', setLine(1, '# older runtime line'));
    age(dir, 'lib/steps.sh', setLine(1, '# older steps line'));
    fs.appendFileSync(path.join(dir, 'lib/steps.sh'), '# admin\n');
    const before = treeHash(dir);
    const r = await upgrade(dir, '--dry-run');
    expect(r.code).toBe(0);
    expect(treeHash(dir)).toBe(before);
    expect(r.out).toMatch(/^--- a\/lib\/runtime\.sh/m);
    expect(r.out).toMatch(/^\+\+\+ b\/lib\/runtime\.sh/m);
    expect(r.out).toMatch(/^-# older runtime line$/m);
    expect(r.out).toMatch(/^--- a\/lib\/steps\.sh/m);
    expect(r.out).toMatch(/^-# older steps line$/m);
    const j = await upgrade(dir, '--dry-run', '--json');
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.out) as { applied: boolean; files: { path: string; outcome: string }[]; diff: string; to: string };
    expect(doc.applied).toBe(false);
    expect(doc.files).toEqual(expect.arrayContaining([{ path: 'lib/runtime.sh', outcome: 'updated' }, { path: 'lib/steps.sh', outcome: 'merged' }]));
    expect(doc.diff).toMatch(/^\+\+\+ b\/lib\/steps\.sh/m);
    expect(treeHash(dir)).toBe(before);
  });

  it('refuses a definition ganeti-os did not write', async () => {
    const dir = copy('blank');
    fs.rmSync(path.join(dir, PROVENANCE_FILE));
    const before = treeHash(dir);
    const r = await upgrade(dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not written by ganeti-os/);
    expect(treeHash(dir)).toBe(before);
  });

  it('new on an existing ganeti-os definition, even with --force, points to upgrade and changes nothing', async () => {
    const dir = copy('blank');
    const before = treeHash(dir);
    const r = await runInProcess(['new', path.basename(dir), '--template', 'blank', '--yes', '--force'], { cwd: path.dirname(dir) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ganeti-os upgrade/);
    expect(treeHash(dir)).toBe(before);
  });

  it('the CLI runs upgrade (exit 1 on conflicts) and info tells the template version and whether an upgrade is available', async () => {
    const dir = copy('blank');
    let info = await runInProcess(['info', dir, '--json'], { cwd: dir });
    let doc = JSON.parse(info.stdout) as { templateStatus: { writtenWith: string | null; upgradeAvailable: boolean; current: string } };
    expect(doc.templateStatus.writtenWith).toBeNull();
    expect((await runInProcess(['upgrade', '--os-dir', dir], { cwd: '/' })).code).toBe(0);
    info = await runInProcess(['info', dir, '--json'], { cwd: dir });
    doc = JSON.parse(info.stdout) as typeof doc;
    expect(doc.templateStatus.writtenWith).toBe(doc.templateStatus.current);
    expect(doc.templateStatus.upgradeAvailable).toBe(false);
    age(dir, 'lib/steps.sh', setLine(2, '# older'));
    info = await runInProcess(['info', dir], { cwd: dir });
    expect(info.stdout).toMatch(/template: +blank [0-9a-f]{12}; upgrade available to [0-9a-f]{12} \(1 file/);
    fs.writeFileSync(path.join(dir, 'lib/steps.sh'), setLine(2, '# mine')(read(path.join(dir, 'lib/steps.sh'))));
    const r = await runInProcess(['upgrade'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/lib\/steps\.sh/);
  });
});

describe('upgrade: the merge itself', () => {
  it('agrees with git merge-file --diff3 on random edits of both sides', () => {
    let seed = 2026;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const mutate = (lines: string[]) => {
      const out = [...lines];
      for (let k = 1 + rnd(3); k > 0; k--) {
        const at = rnd(out.length + 1);
        const what = rnd(3);
        if (what === 0 || !out.length) out.splice(at, 0, `new ${rnd(100)}\n`);
        else if (what === 1) out.splice(Math.min(at, out.length - 1), 1);
        else out[Math.min(at, out.length - 1)] = `changed ${rnd(100)}\n`;
      }
      return out;
    };
    let conflicts = 0;
    for (let i = 0; i < 60; i++) {
      const base = Array.from({ length: 2 + rnd(10) }, (_, j) => `line ${j}\n`);
      const [a, b] = [mutate(base), mutate(base)].map((l) => l.join(''));
      const ours = merge3(a, base.join(''), b, { current: 'A', base: 'O', next: 'B' });
      const git = gitMerge(a, base.join(''), b, ['A', 'O', 'B']);
      expect(ours.text).toBe(git.text);
      expect(ours.conflicts).toBe(git.conflicts);
      conflicts += ours.conflicts ? 1 : 0;
    }
    expect(conflicts).toBeGreaterThan(5);
  });

  it('keeps a missing last newline and splits only on newlines', () => {
    expect(textLines('a b\nc')).toEqual(['a b\n', 'c']);
    expect(merge3('x\na\nb', 'a\nb', 'a\nb\nc\n', { current: 'A', base: 'O', next: 'B' }).text).toBe(gitMerge('x\na\nb', 'a\nb', 'a\nb\nc\n', ['A', 'O', 'B']).text);
  });

  it('parameters: three ways between the admin, the old and the new template', () => {
    const p = (name: string, description = name, def?: string) => ({ name, description, ...(def !== undefined ? { default: def } : {}) });
    const r = upgradeParameters(
      [p('kept'), p('changed-by-admin', 'mine'), p('changed-by-template'), p('dropped'), p('user-own')],
      [p('kept'), p('changed-by-admin'), p('changed-by-template'), p('dropped'), p('removed-by-admin')],
      [p('kept'), p('changed-by-admin'), p('changed-by-template', 'better'), p('removed-by-admin'), p('added', 'new', 'x')],
    );
    // A parameter new in the template goes where the template has it (after the template's
    // parameter before it), not after the admin's own.
    expect(r.parameters).toEqual([p('kept'), p('changed-by-admin', 'mine'), p('changed-by-template', 'better'), p('added', 'new', 'x'), p('user-own')]);
    const first = upgradeParameters([p('own'), p('a'), p('b')], [p('a'), p('b')], [p('new1'), p('new2'), p('a'), p('b'), p('new3')]);
    expect(first.parameters.map((x) => x.name)).toEqual(['own', 'new1', 'new2', 'a', 'b', 'new3']);
    // Without the old template's parameters (definitions from before): additions only.
    const legacy = upgradeParameters([p('a', 'mine')], undefined, [p('a', 'theirs'), p('b')]);
    expect(legacy.parameters).toEqual([p('a', 'mine'), p('b')]);
    expect(legacy.notes.join('\n')).toMatch(/yours kept/);
  });
});

describe('upgrade: one command at a time', () => {
  it('waits for the lock another command holds, then plans from what that command left', async () => {
    const dir = await recorded('blank');
    age(dir, 'lib/runtime.sh', setLine(1, '# older runtime line'));
    // Another live process (this one, as far as the lock can tell) holds the definition.
    const lock = path.join(dir, LOCK_FILE);
    fs.writeFileSync(lock, `${process.pid} ${os.hostname()}\n`);
    const running = upgrade(dir);
    await new Promise((r) => setTimeout(r, 300));
    // Still waiting: nothing upgraded yet. The other command finishes and lets go.
    expect(read(path.join(dir, 'lib/runtime.sh'))).toMatch(/older runtime line/);
    fs.rmSync(lock);
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/Waiting for another ganeti-os command/);
    expect(read(path.join(dir, 'lib/runtime.sh'))).toBe(renders(dir).get('lib/runtime.sh')!.content);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('rolls back a write a kill interrupted before planning', async () => {
    const dir = await recorded('blank');
    age(dir, 'lib/runtime.sh', setLine(1, '# older runtime line'));
    const before = treeHash(dir);
    // A pending journal of a write that never got past its first step.
    fs.writeFileSync(path.join(dir, JOURNAL_FILE), JSON.stringify({ state: 'pending', entries: [], createdDirs: [] }));
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/interrupted/);
    expect(fs.existsSync(path.join(dir, JOURNAL_FILE))).toBe(false);
    expect(treeHash(dir)).not.toBe(before);
    expect(read(path.join(dir, 'lib/runtime.sh'))).toBe(renders(dir).get('lib/runtime.sh')!.content);
  });

  it('an upgrade and add-variant started together (two processes) serialise: both succeed, both changes stay', async () => {
    const run = async (dir: string, args: string[]) => {
      const r = await runCliAsync([...args, '--os-dir', dir], { cwd: dir, env: { HOME: undefined, NO_COLOR: '1' } });
      return { code: r.code, err: r.stderr };
    };
    for (let round = 0; round < 2; round++) {
      const dir = await recorded('blank-maint');
      // (Files add-variant does not write: it records the current template's render as the base of those it writes.)
      for (const f of ['lib/runtime.sh', 'README.md']) age(dir, f, setLine(0, `# ${f} of an older template`));
      const [u, a] = await Promise.all([run(dir, ['upgrade']), run(dir, ['add-variant', `v${round}`])]);
      expect([u.code, u.err]).toEqual([0, expect.anything()]);
      expect([a.code, a.err]).toEqual([0, expect.anything()]);
      const p = provenance(dir);
      expect(p.answers.variants.map((v) => v.name)).toContain(`v${round}`);
      expect(read(path.join(dir, 'variants.list'))).toMatch(new RegExp(`^v${round}$`, 'm'));
      for (const f of ['lib/runtime.sh', 'README.md']) expect(read(path.join(dir, f))).toBe(renders(dir).get(f)!.content);
      // Every tool file is what the record says was written.
      for (const [rel, f] of Object.entries(p.files)) if (f.owner === 'tool') expect([rel, sha(read(path.join(dir, rel)))]).toEqual([rel, f.sha256]);
      expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    }
  });
});
