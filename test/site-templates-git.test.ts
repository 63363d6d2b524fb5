/**
 * Site templates from git (`--template git+URL[#ref]`): repositories made here with git init
 * (a working one and a bare clone, reached as git+/path and git+file:///path; no network),
 * the commit recorded, `upgrade` following the ref's new head, and the refusals.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROVENANCE_FILE, Provenance } from '../src/definition/provenance';
import { cli, read, tempDir, treeHash } from './helpers/cli';
import { describeSystem } from './helpers/system';

const record = (dir: string) => JSON.parse(read(path.join(dir, PROVENANCE_FILE))) as Provenance;

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.name=Site Admin', '-c', 'user.email=admin@example.org', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The checkouts the loader makes (removed on every path). */
const checkouts = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('ganeti-os-template-'));

describeSystem('site templates from git', { commands: ['git'] }, () => {
  let work: string;
  let repo: string;
  let bare: string;
  beforeEach(async () => {
    work = tempDir('sitetpl-git');
    repo = path.join(work, 'house');
    expect((await cli(work, ['template', 'init', 'house', '--from', 'blank'])).code).toBe(0);
    git(repo, 'init', '-q');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'house template 1');
    git(repo, 'tag', 'v1');
    bare = path.join(work, 'house.git');
    git(work, 'clone', '-q', '--bare', repo, bare);
  });
  afterEach(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('new from a bare repository by file:// URL and tag, and from a working repository by path: the commit is recorded', async () => {
    const before = checkouts();
    const r = await cli(work, ['new', 'web', '--template', `git+file://${bare}#v1`, '--yes']);
    expect(r.code).toBe(0);
    const commit = git(repo, 'rev-parse', 'v1^{commit}');
    expect(r.stdout).toContain(`template house from git+file://${bare}#v1 version 1 at ${commit.slice(0, 12)}`);
    expect(record(path.join(work, 'web')).templateSource).toMatchObject({ kind: 'git', location: `file://${bare}`, ref: 'v1', commit, version: '1' });
    expect(read(path.join(work, 'web', 'lib', 'steps.sh'))).toBe(read(path.join(repo, 'lib', 'steps.sh')));
    const p = await cli(work, ['new', 'db', '--template', 'git+./house', '--yes']);
    expect(p.code).toBe(0);
    const src = record(path.join(work, 'db')).templateSource!;
    expect(src).toMatchObject({ kind: 'git', location: repo, commit });
    expect(src.ref).toBeUndefined();
    expect(checkouts()).toEqual(before);
  });

  it('a template in a directory of a repository: git+URL#REF:DIR, or #:DIR for HEAD', async () => {
    const infra = path.join(work, 'infra');
    fs.mkdirSync(path.join(infra, 'ganeti'), { recursive: true });
    fs.cpSync(repo, path.join(infra, 'ganeti', 'house'), { recursive: true, filter: (p) => !p.includes(`${path.sep}.git`) });
    fs.writeFileSync(path.join(infra, 'README'), 'the infrastructure repository\n');
    git(infra, 'init', '-q');
    git(infra, 'add', '-A');
    git(infra, 'commit', '-q', '-m', 'infra');
    const r = await cli(work, ['new', 'web', '--template', `git+${infra}#main:ganeti/house`, '--yes']);
    expect(r.code).toBe(0);
    expect(record(path.join(work, 'web')).templateSource).toMatchObject({ kind: 'git', location: infra, ref: 'main', subdir: 'ganeti/house', commit: git(infra, 'rev-parse', 'HEAD') });
    expect(read(path.join(work, 'web', 'lib', 'steps.sh'))).toBe(read(path.join(repo, 'lib', 'steps.sh')));
    const head = await cli(work, ['new', 'db', '--template', `git+${infra}#:ganeti/house/`, '--yes']);
    expect(head.code).toBe(0);
    expect(record(path.join(work, 'db')).templateSource?.ref).toBeUndefined();
    expect(record(path.join(work, 'db')).templateSource?.subdir).toBe('ganeti/house');
    const snap = treeHash(work);
    const missing = await cli(work, ['new', 'x', '--template', `git+${infra}#main:ganeti/nope`, '--yes']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no template at git+${infra}#main:ganeti/nope: the repository has no directory ganeti/nope`);
    const up = await cli(work, ['new', 'x', '--template', `git+${infra}#main:../etc`, '--yes']);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain("'../etc' is not a directory of the repository");
    const top = await cli(work, ['new', 'x', '--template', `git+${infra}#main`, '--yes']);
    expect(top.code).toBe(1);
    expect(top.stderr).toMatch(/no manifest: template\.json is missing/);
    expect(treeHash(work)).toBe(snap);
  });

  it("upgrade follows the ref's new head: the change lands, the admin's edit is kept, the new commit recorded", async () => {
    expect((await cli(work, ['new', 'web', '--template', `git+${bare}#main`, '--yes'])).code).toBe(0);
    const def = path.join(work, 'web');
    fs.appendFileSync(path.join(def, 'lib', 'steps.sh'), '# local tweak\n');
    fs.writeFileSync(path.join(repo, 'lib', 'steps.sh'), '# house: installs nothing, on purpose\n' + read(path.join(repo, 'lib', 'steps.sh')));
    const tpl = JSON.parse(read(path.join(repo, 'template.json'))) as { version: string };
    tpl.version = '2';
    fs.writeFileSync(path.join(repo, 'template.json'), JSON.stringify(tpl, null, 2));
    git(repo, 'commit', '-q', '-a', '-m', 'house template 2');
    git(repo, 'push', '-q', bare, 'main');
    const head = git(repo, 'rev-parse', 'HEAD');
    const info = await cli(work, ['info', 'web']);
    expect(info.stdout).toContain(`site template git+${bare}#main version 1 at`);
    const dry = await cli(def, ['upgrade', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('+# house: installs nothing, on purpose');
    const up = await cli(def, ['upgrade']);
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/M merged +lib\/steps\.sh/);
    expect(up.stdout).toContain(`version 2 (commit ${head.slice(0, 12)}); was version 1; was commit`);
    const steps = read(path.join(def, 'lib', 'steps.sh'));
    expect(steps.startsWith('# house: installs nothing, on purpose\n')).toBe(true);
    expect(steps.endsWith('# local tweak\n')).toBe(true);
    expect(record(def).templateSource).toMatchObject({ commit: head, version: '2', ref: 'main' });
  });

  it('refuses a ref that is not there, and a repository that is gone, with nothing written and no checkout left', async () => {
    const before = checkouts();
    const snap = treeHash(work);
    const r = await cli(work, ['new', 'web', '--template', `git+${bare}#v9`, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot fetch 'v9' of the git repository ${bare}: couldn't find remote ref v9`);
    const bad = await cli(work, ['new', 'web', '--template', 'git+#main', '--yes']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('no repository after git+');
    expect(treeHash(work)).toBe(snap);
    expect((await cli(work, ['new', 'web', '--template', `git+${bare}`, '--yes'])).code).toBe(0);
    fs.rmSync(bare, { recursive: true });
    const def = path.join(work, 'web');
    const defBefore = treeHash(def);
    const up = await cli(def, ['upgrade']);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(`follows the site template git+${bare}, which cannot be loaded: cannot fetch the default branch of the git repository ${bare}`);
    expect(up.stderr).toContain('ganeti-os upgrade --template git+NEW-URL[#ref]');
    expect(treeHash(def)).toBe(defBefore);
    // Where it moved: followed from there on.
    const follow = await cli(def, ['upgrade', '--template', `git+file://${repo}#main`]);
    expect(follow.code).toBe(0);
    expect(record(def).templateSource).toMatchObject({ location: `file://${repo}`, ref: 'main' });
    expect(checkouts()).toEqual(before);
  });
});
