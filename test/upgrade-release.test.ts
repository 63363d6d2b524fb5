/**
 * Issue 22: `upgrade` of a definition the 2026-11-25 release wrote (before definitions recorded
 * template versions and base renders). The fixtures (test/fixtures/upgrade-release) were
 * written by that release's own CLI (make-fixtures.sh there); the release's templates ship as
 * data (templates/history, scripts/release-bases.js), so the merge has its base. A file that
 * still cannot be merged (no known base) fails upgrade and validate, as conflict markers do.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROVENANCE_FILE } from '../src/definition/provenance';
import { loadTemplate, renderTemplate } from '../src/definition/templates';
import { runUpgrade } from '../src/commands/upgrade';
import { BESIDE_SUFFIX, STATE_DIR } from '../src/definition/upgrade';
import { releaseBase } from '../src/definition/upgrade-release';
import { REPO, cli, runCommand } from './helpers/cli';
import { RELEASE_FIXTURES, age, fixture, gitMerge, modeOf, provenance, read, setLine, sha, upgrade } from './helpers/upgrade';

const works: string[] = [];
function copy(set: string, root = RELEASE_FIXTURES): string {
  const f = fixture(set, root);
  works.push(f.work);
  if (root !== RELEASE_FIXTURES) return f.dir;
  // The release's definition: its record and variant configurations are checked in; every
  // other file it wrote is rebuilt from the release's templates as ganeti-os ships them.
  const p = provenance(f.dir);
  for (const [rel, text] of Object.entries(releaseBase(p)?.base ?? {})) {
    if (fs.existsSync(path.join(f.dir, rel))) continue;
    fs.mkdirSync(path.dirname(path.join(f.dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(f.dir, rel), text, { mode: parseInt(p.files[rel].mode, 8) });
    fs.chmodSync(path.join(f.dir, rel), parseInt(p.files[rel].mode, 8));
  }
  return f.dir;
}
afterEach(() => {
  for (const w of works.splice(0)) fs.rmSync(w, { recursive: true, force: true });
});

const RELEASE_COMMIT = read(path.join(RELEASE_FIXTURES, 'COMMIT')).trim();

/** Every file below `dir` whose name ends in .ganeti-os-new (backups left out). */
function besides(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((n) => n.endsWith(BESIDE_SUFFIX) && !n.startsWith(`${STATE_DIR}/`));
}

/** Insert `line` after line `n` (1-based) of `rel`. */
function insertLine(dir: string, rel: string, n: number, line: string): string {
  const lines = read(path.join(dir, rel)).split('\n');
  lines.splice(n, 0, line);
  fs.writeFileSync(path.join(dir, rel), lines.join('\n'));
  return lines.join('\n');
}

async function validate(dir: string) {
  const r = await cli(path.dirname(dir), ['validate', dir, '--json']);
  const res = JSON.parse(r.stdout).results[0] as { errors: { code: string; file?: string; message: string }[] };
  return { code: r.code, errors: res.errors };
}

/**
 * The check reads the release's commit from git: a shallow clone or an unpacked npm tarball has
 * no such history, and then only the check itself is skipped (the tests below need none).
 */
const HAVE_HISTORY = spawnSync('git', ['-C', REPO, 'cat-file', '-e', `${RELEASE_COMMIT}^{commit}`]).status === 0;

describe('the shipped data of the 2026-11-25 release', () => {
  (HAVE_HISTORY ? it : it.skip)('is what git history holds for that release (scripts/release-bases.js --check; needs the git history)', () => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'release-bases.js'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const data = JSON.parse(read(path.join(REPO, 'templates', 'history', '2026-11-25.json'))) as { commit: string };
    expect(data.commit).toBe(RELEASE_COMMIT);
  });

  it.each(['debian', 'blank-maint'])('%s: rebuilds the exact text that release wrote (its record\'s sha256), for every file of ganeti-os the record names', (set) => {
    const dir = copy(set);
    const p = provenance(dir);
    expect([p.schema, p.version, p.templateVersion, p.base]).toEqual([1, '0.1.0', undefined, undefined]);
    const rb = releaseBase(p);
    expect(rb?.release).toBe('2026-11-25');
    const tool = Object.keys(p.files).filter((rel) => p.files[rel].owner === 'tool');
    expect(tool.length).toBeGreaterThan(8);
    expect(Object.keys(rb!.base).filter((rel) => p.files[rel].owner === 'tool').sort()).toEqual(tool.sort());
    // The definition as rebuilt is, file by file and mode by mode, what the release recorded writing.
    for (const [rel, rec] of Object.entries(p.files)) {
      expect([rel, sha(read(path.join(dir, rel))), modeOf(path.join(dir, rel))]).toEqual([rel, rec.sha256, parseInt(rec.mode, 8)]);
    }
  });

  it('gives a later writer only the texts it reproduces, and nothing to one whose template files differ', () => {
    // A definition from a later commit (test/fixtures/upgrade): each base it gets is the text its record names.
    const dir = copy('debian', path.join(path.dirname(RELEASE_FIXTURES), 'upgrade'));
    const p = provenance(dir);
    for (const [rel, text] of Object.entries(releaseBase(p)?.base ?? {})) expect([rel, sha(text)]).toEqual([rel, p.files[rel].sha256]);
    // A template file the release never wrote (its static lib/steps.sh differs): not that release.
    age(dir, 'lib/steps.sh', setLine(1, '# lib/steps.sh of a template no release shipped'));
    expect(releaseBase(provenance(dir))).toBeUndefined();
  });
});

describe('upgrade of a debian definition the 2026-11-25 release wrote, lib/steps.sh edited', () => {
  it('merges lib/steps.sh (no .ganeti-os-new), updates the rest to a fresh render, exits 0, and validate says valid', async () => {
    const dir = copy('debian');
    const written = read(path.join(dir, 'lib/steps.sh'));
    const edited = insertLine(dir, 'lib/steps.sh', 17, '  # site: our own check goes here');
    const r = await upgrade(dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/template debian of the 2026-11-25 release → /);
    expect(r.out).toMatch(/merged +lib\/steps\.sh/);
    expect(besides(dir)).toEqual([]);
    const after = provenance(dir);
    const fresh = new Map(renderTemplate(loadTemplate('debian'), after.answers).map((f) => [f.path, f]));
    // lib/steps.sh: the admin's line merged into the template's new text, as git merge-file merges it.
    const steps = read(path.join(dir, 'lib/steps.sh'));
    expect(steps).toContain('  # site: our own check goes here\n');
    const git = gitMerge(edited, written, fresh.get('lib/steps.sh')!.content, ['a', 'b', 'c']);
    expect(git.conflicts).toBe(0);
    expect(steps).toBe(git.text);
    // Every other file of ganeti-os is what a fresh render of the answers is, with its mode.
    for (const [rel, f] of fresh) {
      if (f.owner !== 'tool' || rel === 'lib/steps.sh') continue;
      expect([rel, read(path.join(dir, rel)), modeOf(path.join(dir, rel))]).toEqual([rel, f.content, f.mode]);
    }
    // The template's parameters are the template's now (the release's were untouched).
    const params = loadTemplate('debian').manifest.defaults.parameters;
    for (const tp of params) expect(after.answers.parameters.find((p) => p.name === tp.name)).toEqual(tp);
    expect(after.base!['lib/steps.sh']).toBe(fresh.get('lib/steps.sh')!.content);
    const v = await validate(dir);
    expect(v.errors).toEqual([]);
    expect(v.code).toBe(0);
    // A second upgrade has nothing to do.
    const again = await upgrade(dir);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/is up to date with template/);
  });

  it('untouched, the whole definition ends as a fresh render', async () => {
    const dir = copy('blank-maint');
    const r = await upgrade(dir);
    expect(r.code).toBe(0);
    const p = provenance(dir);
    for (const f of renderTemplate(loadTemplate('blank'), p.answers)) {
      if (f.owner === 'tool') expect([f.path, read(path.join(dir, f.path))]).toEqual([f.path, f.content]);
    }
    expect(besides(dir)).toEqual([]);
  });
});

describe('a file upgrade cannot merge (no known base) fails upgrade and validate', () => {
  // A definition no shipped release wrote (a commit between releases), a file the admin edited
  // and the template changed since: its base is unknown.
  function unmergeable(): string {
    const dir = copy('debian', path.join(path.dirname(RELEASE_FIXTURES), 'upgrade'));
    age(dir, 'lib/steps.sh', setLine(1, '# lib/steps.sh of a template no release shipped'));
    fs.appendFileSync(path.join(dir, 'lib/steps.sh'), '# admin: site notes\n');
    return dir;
  }

  it('upgrade writes the new version beside it, names both, and exits 1; validate fails naming the file until it is merged', async () => {
    const dir = unmergeable();
    const mine = read(path.join(dir, 'lib/steps.sh'));
    const r = await upgrade(dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`lib/steps.sh (new: lib/steps.sh${BESIDE_SUFFIX})`);
    expect(r.err).toMatch(/not merged/);
    expect(read(path.join(dir, 'lib/steps.sh'))).toBe(mine);
    expect(besides(dir)).toEqual([`lib/steps.sh${BESIDE_SUFFIX}`]);
    const v = await validate(dir);
    expect(v.code).toBe(1);
    const e = v.errors.find((x) => x.code === 'upgrade-unmerged');
    expect(e?.file).toBe('lib/steps.sh');
    expect(e?.message).toContain(`lib/steps.sh${BESIDE_SUFFIX}`);
    // Upgrading again before merging: refused, naming it, nothing changed.
    const again = await upgrade(dir);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`lib/steps.sh${BESIDE_SUFFIX}`);
    expect(again.err).toMatch(/could not merge; nothing was changed/);
    // Merged by hand (the new version taken, the note kept) and the new file deleted: clean,
    // and the next upgrade keeps the merge (it was made against the new version).
    const merged = read(path.join(dir, `lib/steps.sh${BESIDE_SUFFIX}`)) + '# admin: site notes\n';
    fs.writeFileSync(path.join(dir, 'lib/steps.sh'), merged);
    fs.rmSync(path.join(dir, `lib/steps.sh${BESIDE_SUFFIX}`));
    const v2 = await validate(dir);
    expect(v2.errors).toEqual([]);
    expect(v2.code).toBe(0);
    const last = await upgrade(dir);
    expect(last.code).toBe(0);
    expect(read(path.join(dir, 'lib/steps.sh'))).toBe(merged);
    expect(besides(dir)).toEqual([]);
  });

  it('upgrade --force takes the template\'s version (yours backed up) and removes the file left beside', async () => {
    const dir = unmergeable();
    const mine = read(path.join(dir, 'lib/steps.sh'));
    expect((await upgrade(dir)).code).toBe(1);
    const forced = await runCommand(runUpgrade, dir, { force: true });
    expect(forced.code).toBe(0);
    expect(besides(dir)).toEqual([]);
    const p = provenance(dir);
    expect(read(path.join(dir, 'lib/steps.sh'))).toBe(renderTemplate(loadTemplate('debian'), p.answers).find((f) => f.path === 'lib/steps.sh')!.content);
    const backups = fs.readdirSync(path.join(dir, STATE_DIR, 'backups'));
    expect(backups.some((b) => fs.existsSync(path.join(dir, STATE_DIR, 'backups', b, 'lib/steps.sh')) && read(path.join(dir, STATE_DIR, 'backups', b, 'lib/steps.sh')) === mine)).toBe(true);
    expect((await validate(dir)).errors).toEqual([]);
  });

  it('--json: ok false, the unmerged files listed', async () => {
    const dir = unmergeable();
    const j = await cli(path.dirname(dir), ['upgrade', '--os-dir', dir, '--json']);
    expect(j.code).toBe(1);
    const doc = JSON.parse(j.stdout) as { ok: boolean; error: string; unmerged: { path: string; beside: string }[] };
    expect(doc.ok).toBe(false);
    expect(doc.error).toMatch(/not merged/);
    expect(doc.unmerged).toEqual([{ path: 'lib/steps.sh', beside: `lib/steps.sh${BESIDE_SUFFIX}` }]);
  });

  it('--dry-run says so too, and changes nothing', async () => {
    const dir = unmergeable();
    const before = fs.readdirSync(dir, { recursive: true }).map(String).sort();
    const prov = read(path.join(dir, PROVENANCE_FILE));
    const r = await upgrade(dir, '--dry-run');
    expect(r.code).toBe(1);
    expect(r.err).toContain('Nothing was changed (dry run).');
    expect(fs.readdirSync(dir, { recursive: true }).map(String).sort()).toEqual(before);
    expect(read(path.join(dir, PROVENANCE_FILE))).toBe(prov);
  });
});
