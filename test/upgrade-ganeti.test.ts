/**
 * Upgraded definitions judged by Ganeti 3.0: `_TryOSFromDisk` accepts every one, and the blank
 * template, upgraded with the admin's edits merged in, still installs an instance through
 * `InstanceOsAdd` (running the admin's merged step).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTemplate } from '../src/definition/templates';
import { instanceOsAdd, tryOsFromDisk } from './helpers/ganeti';
import { describeSystem } from './helpers/system';
import { age, fixture, provenance, read, recordExtra, setLine, upgrade } from './helpers/upgrade';

const works: string[] = [];
afterEach(() => {
  for (const w of works.splice(0)) fs.rmSync(w, { recursive: true, force: true });
});
function copy(set: string): string {
  const f = fixture(set);
  works.push(f.work);
  return f.dir;
}

/** A definition from the starting commit, edited by the admin, upgraded twice with template changes in between. */
async function edited(set: string, conflict = false): Promise<string> {
  const dir = copy(set);
  fs.appendFileSync(path.join(dir, 'README.md'), 'Site notes.\n');
  expect((await upgrade(dir)).code).toBe(0);
  const steps = age(dir, 'lib/steps.sh', setLine(1, '# steps of an older template'));
  age(dir, 'create', setLine(1, '# create of an older template'));
  recordExtra(dir, 'lib/dropped.sh', '# dropped by the template\n', '# dropped, edited by the admin\n');
  fs.rmSync(path.join(dir, 'DEBIAN.md'), { force: true });
  fs.chmodSync(path.join(dir, 'export'), 0o700);
  // variants.list kept elsewhere and symlinked, as ganeti-instance-debootstrap installs it.
  const etc = path.join(path.dirname(dir), 'etc');
  fs.mkdirSync(etc);
  fs.renameSync(path.join(dir, 'variants.list'), path.join(etc, 'variants.list'));
  fs.symlinkSync(path.join(etc, 'variants.list'), path.join(dir, 'variants.list'));
  fs.writeFileSync(path.join(dir, 'lib/steps.sh'), conflict ? setLine(1, '# the admin changed this line')(steps) : steps + 'gos_log "admin step: merged and running"\n');
  expect((await upgrade(dir)).code).toBe(conflict ? 1 : 0);
  return dir;
}

describeSystem('upgraded definitions judged by Ganeti 3.0', { ganeti: true }, () => {
  it.each(['blank', 'blank-maint', 'debian', 'debian-maint'])('%s from the starting commit, untouched: _TryOSFromDisk accepts it', async (set) => {
    const dir = copy(set);
    const before = tryOsFromDisk(dir);
    expect((await upgrade(dir)).code).toBe(0);
    const r = tryOsFromDisk(dir);
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.os!.variants).toEqual(before.os!.variants);
    // The admin's parameters all stay, in their order; any other is one the template added since
    // (placed where the template has it: test/upgrade.test.ts checks the order).
    // A description is the admin's as it was, or the template's now (the template changed it and
    // the admin had not: the template's of the release that wrote it is known, upgrade-release.ts).
    const had = new Set(before.os!.parameters.map((x) => x[0]));
    expect(r.os!.parameters.filter((x) => had.has(x[0])).map((x) => x[0])).toEqual(before.os!.parameters.map((x) => x[0]));
    const now = new Map(loadTemplate(provenance(dir).template).manifest.defaults.parameters.map((x) => [x.name, x.description]));
    for (const [name, description] of r.os!.parameters.filter((x) => had.has(x[0]))) {
      expect([name, [before.os!.parameters.find((x) => x[0] === name)![1], now.get(name)]]).toEqual([name, expect.arrayContaining([description])]);
    }
    const templateParams = loadTemplate(provenance(dir).template).manifest.defaults.parameters.map((x) => x.name);
    for (const [name] of r.os!.parameters.filter((x) => !had.has(x[0]))) expect(templateParams).toContain(name);
  });

  it.each([
    ['blank', false],
    ['debian-maint', false],
    ['blank', true],
  ])('%s edited, merged (conflict: %s): _TryOSFromDisk accepts it', async (set, conflict) => {
    const dir = await edited(set as string, conflict as boolean);
    const r = tryOsFromDisk(dir);
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(fs.lstatSync(path.join(dir, 'variants.list')).isSymbolicLink()).toBe(true);
    expect(fs.statSync(path.join(dir, 'export')).mode & 0o777).toBe(0o700);
    // A script with conflict markers is still "valid" to Ganeti: validate and pack must refuse it.
    expect(read(path.join(dir, 'lib/steps.sh')).includes('<<<<<<< ')).toBe(conflict);
  });

  it('blank edited and merged: InstanceOsAdd runs the upgraded create with the admin\'s step', async () => {
    const dir = await edited('blank');
    const work = path.dirname(dir);
    const disk = path.join(work, 'disk0.img');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 8 * 1024 * 1024);
    const logdir = path.join(work, 'log');
    const variant = provenance(dir).answers.variants[0]?.name;
    const add = instanceOsAdd({ name: 'inst1.example.com', os: `${path.basename(dir)}+${variant}`, os_dir: dir, disks: [{ path: disk }] }, { logdir });
    expect(add.error).toBeUndefined();
    const log = fs.readdirSync(logdir).map((f) => read(path.join(logdir, f))).join('');
    expect(log).toMatch(/admin step: merged and running/);
    expect(log).toMatch(/installs nothing/);
  });
});
