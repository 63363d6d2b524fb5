/**
 * What a new administrator's hands meet (issue 25): the same flags on every command that acts on
 * a definition, commands that find the definition from a subdirectory as git finds its
 * repository, parser errors that read like the tool's own, `new` that points a path to -C and
 * ends with the next steps, `info` with parameter defaults and choices, `upgrade --force`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STATE_DIR } from '../src/definition/upgrade';
import { cli, runCli, tempDir } from './helpers/cli';
import { age, provenance, read, recordExtra, setLine } from './helpers/upgrade';

let work: string;
let def: string;
beforeEach(async () => {
  work = tempDir();
  const r = await cli(work, ['new', 'web-os', '--template', 'debian', '--yes']);
  if (r.code !== 0) throw new Error(r.stderr);
  def = path.join(work, 'web-os');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describe('parser errors', () => {
  it.each([
    [['info', '--bogus'], /^ganeti-os: error: unknown option '--bogus'$/m],
    [['frobnicate'], /^ganeti-os: error: unknown command 'frobnicate'$/m],
    [['new'], /^ganeti-os: error: missing required argument 'name'$/m],
    [['add-variant', '--set'], /^ganeti-os: error: option '--set <KEY=VALUE>' argument missing$/m],
    // The OS-name rule is Ganeti's one (rules.ts checkOsName), checked before any node is asked.
    [['nodes-check', 'a.b'], /^ganeti-os: error: invalid OS name 'a\.b': Ganeti only accepts letters, digits, '_' and '-'/m],
  ])('%j: carry the ganeti-os: prefix, exit 2', (args, message) => {
    const r = runCli(args as string[], { cwd: work, env: { NO_COLOR: '1' } });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });
});

describe('--os-dir on every command that acts on a definition', () => {
  it('info --os-dir and validate --os-dir read the named definition', async () => {
    const info = await cli(work, ['info', '--os-dir', 'web-os', '--json']);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ name: 'web-os', path: def, valid: true });
    const validate = await cli(work, ['validate', '--os-dir', 'web-os', '--json']);
    expect(validate.code).toBe(0);
    expect(JSON.parse(validate.stdout).results.map((r: { dir: string }) => r.dir)).toEqual([def]);
  });

  it('info refuses two different definitions (argument and --os-dir)', async () => {
    const r = await cli(work, ['info', 'web-os', '--os-dir', 'other']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/two definitions given/);
  });
});

describe('from a subdirectory of a definition', () => {
  it('info, validate, the maintenance commands and upgrade find the definition above and say so', async () => {
    const lib = path.join(def, 'lib');
    const said = new RegExp(`Working on the OS definition ${def} \\(found above the current directory\\)`);
    const info = await cli(lib, ['info', '--json']);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout).path).toBe(def);
    expect(info.stderr).toMatch(said);
    const validate = await cli(lib, ['validate']);
    expect(validate.stdout).toContain(`${def}: valid`);
    expect(validate.code).toBe(0);
    const add = await cli(path.join(def, 'variants'), ['add-variant', 'noble', '--set', 'SUITE=noble']);
    expect(add.stderr).toMatch(said);
    expect(add.code).toBe(0);
    expect(read(path.join(def, 'variants.list'))).toMatch(/^noble$/m);
    expect(fs.existsSync(path.join(def, 'variants', 'noble.conf'))).toBe(true);
    const up = await cli(lib, ['upgrade', '--dry-run']);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`${def} is up to date`);
  });

  it('outside any definition, still says the current directory is not one', async () => {
    const r = await cli(work, ['add-variant', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${work} is not an OS definition`);
  });

  it('an explicit directory is taken as it is, not searched above', async () => {
    const r = await cli(work, ['validate', path.join(def, 'lib'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).results[0]).toMatchObject({ dir: path.join(def, 'lib'), valid: false });
  });
});

describe('new', () => {
  it('points a path given as the name to -C', async () => {
    const r = await cli(work, ['new', path.join(work, 'sites', 'web'), '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`ganeti-os new web -C ${path.join(work, 'sites')}`);
    expect(fs.existsSync(path.join(work, 'sites'))).toBe(false);
  });

  it('ends with the next steps (not with --json or --dry-run)', async () => {
    const r = await cli(work, ['new', 'next-os', '--template', 'blank', '--yes']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^Next steps:\n {2}cd next-os\n/m);
    for (const step of ['ganeti-os validate', 'ganeti-os add-variant NAME', 'ganeti-os test', 'ganeti-os pack']) expect(r.stderr).toContain(step);
    const json = await cli(work, ['new', 'json-os', '--template', 'blank', '--yes', '--json']);
    expect(json.stderr).not.toContain('Next steps');
    const dry = await cli(work, ['new', 'dry-os', '--template', 'blank', '--yes', '--dry-run']);
    expect(dry.stderr).not.toContain('Next steps');
  });
});

describe('info', () => {
  it("shows each parameter's default and choices, as recorded when ganeti-os wrote them", async () => {
    const add = await cli(def, ['add-param', 'tier', 'Service tier', '--default', 'gold', '--choices', 'gold,silver']);
    expect(add.code).toBe(0);
    const recorded = provenance(def).answers.parameters;
    const json = JSON.parse((await cli(def, ['info', '--json'])).stdout);
    expect(json.parameters).toContainEqual({ name: 'tier', description: 'Service tier', default: 'gold', choices: ['gold', 'silver'] });
    for (const p of recorded) expect(json.parameters).toContainEqual(expect.objectContaining({ name: p.name, ...(p.default !== undefined ? { default: p.default } : {}) }));
    const text = (await cli(def, ['info'])).stdout;
    expect(text).toMatch(/^ {4}tier +Service tier\n {4} +default: gold; choices: gold, silver$/m);
    const fs0 = recorded.find((p) => p.choices)!;
    expect(text).toContain(`choices: ${fs0.choices!.join(', ')}`);
  });
});

describe('upgrade --force', () => {
  /** A file the template changed since it wrote it, and that the admin changed on the same line. */
  function bothChanged(rel: string): { mine: string; template: string } {
    const template = read(path.join(def, rel));
    age(def, rel, setLine(1, '# an older template wrote this line'));
    const mine = setLine(1, '# the admin wrote this line')(read(path.join(def, rel)));
    fs.writeFileSync(path.join(def, rel), mine);
    return { mine, template };
  }

  it("without it: a conflict (exit 1); with it: the template's version, the admin's in the backup", async () => {
    const rel = 'lib/runtime.sh';
    const { mine, template } = bothChanged(rel);
    const dry = await cli(def, ['upgrade', '--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.stderr).toMatch(/conflicts/);
    const r = await cli(def, ['upgrade', '--force']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`R replaced +${rel}`));
    expect(read(path.join(def, rel))).toBe(template);
    const backups = fs.readdirSync(path.join(def, STATE_DIR, 'backups'));
    expect(backups).toHaveLength(1);
    expect(read(path.join(def, STATE_DIR, 'backups', backups[0], rel))).toBe(mine);
  });

  it('replaces a file still holding conflict markers and removes a dropped file the admin changed; defaults.conf stays', async () => {
    const marked = read(path.join(def, 'create')).replace(/\n/, '\n<<<<<<< yours\n=======\n>>>>>>> template\n');
    fs.writeFileSync(path.join(def, 'create'), marked);
    recordExtra(def, 'lib/old-helper.sh', 'old()\n{ :; }\n', 'old()\n{ echo mine; }\n');
    fs.appendFileSync(path.join(def, 'defaults.conf'), 'SUITE=trixie\n');
    const conf = read(path.join(def, 'defaults.conf'));
    const refused = await cli(def, ['upgrade']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/still has conflict markers[\s\S]*upgrade --force/);
    const r = await cli(def, ['upgrade', '--force']);
    expect(r.code).toBe(0);
    expect(read(path.join(def, 'create'))).not.toContain('<<<<<<<');
    expect(fs.existsSync(path.join(def, 'lib/old-helper.sh'))).toBe(false);
    expect(read(path.join(def, 'defaults.conf'))).toBe(conf);
    const validate = await cli(def, ['validate']);
    expect(validate.code).toBe(0);
  });
});
