/** The maintenance commands through the built CLI, as an administrator runs them. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tryOsFromDisk, validateOs } from './helpers/ganeti';
import { describeSystem } from './helpers/system';
import { REPO, foreignCopy, runCli, tempDir, treeHash } from './helpers/cli';

let work: string;
beforeAll(() => {
  if (!fs.existsSync(path.join(REPO, 'dist', 'commands', 'bump-api.js'))) throw new Error('run `npm run build` first (npm test does)');
});
beforeEach(() => {
  work = tempDir('maint-cli');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const MAINTAIN = ['add-variant', 'remove-variant', 'bump-api', 'add-param', 'remove-param'];

describe('maintenance commands on the command line', () => {
  it('each has help naming --os-dir, --dry-run, --json and --force', () => {
    const top = runCli(['--help'], { cwd: work });
    for (const c of MAINTAIN) {
      expect(top.stdout).toContain(c);
      const r = runCli([c, '--help'], { cwd: work });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: ganeti-os ${c}`));
      for (const o of ['--os-dir', '--dry-run', '--json', '--force']) expect(r.stdout).toContain(o);
    }
  });

  it('usage errors exit 2, failures exit 1, with nothing on stdout and nothing changed', () => {
    expect(runCli(['new', 'myos', '--template', 'blank', '--yes'], { cwd: work }).code).toBe(0);
    const dir = path.join(work, 'myos');
    const before = treeHash(work);
    const cases: [string[], string, number, RegExp][] = [
      [['bump-api'], dir, 2, /missing required argument 'version'/],
      [['bump-api', '5'], dir, 2, /Ganeti 1\.2/],
      [['bump-api', 'twenty'], dir, 2, /invalid API version 'twenty'/],
      [['add-variant', 'bad name'], dir, 2, /invalid variant name 'bad name'/],
      [['add-variant', 'x', '--set'], dir, 2, /argument missing/],
      [['add-param', 'x'], dir, 2, /missing required argument 'description'/],
      [['add-param', 'NAME', 'd'], dir, 2, /invalid parameter name 'NAME'/],
      [['add-param', 'x', 'd', '--choices', 'a,b', '--default', 'c'], dir, 2, /not one of the choices/],
      [['remove-param', 'x'], dir, 1, /has no parameter 'x'/],
      [['remove-variant', 'default'], dir, 1, /only variant/],
      [['add-variant', 'x'], work, 1, /is not an OS definition/],
      [['add-variant', 'x', '--os-dir', 'nope'], work, 1, /does not exist/],
      [['bump-api', '15', '--os-dir', 'myos/README.md'], work, 1, /is not a directory/],
    ];
    for (const [args, cwd, code, message] of cases) {
      const r = runCli(args, { cwd: cwd });
      expect([args, r.code]).toEqual([args, code]);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
    expect(treeHash(work)).toBe(before);
  });
});

describeSystem('maintenance sequences through the CLI, judged by Ganeti 3.0', { ganeti: true }, () => {
  it('new → add-variant → add-param → bump-api down and up → remove-param → remove-variant', () => {
    const dir = path.join(work, 'myos');
    const os = (...args: string[]) => runCli([...args, '--os-dir', dir], { cwd: work });
    const step = (args: string[], want: { api: number[]; variants: string[]; parameters: string[] }) => {
      const r = os(...args);
      expect([args, r.code, r.stderr]).toEqual([args, 0, expect.anything()]);
      const g = tryOsFromDisk(dir);
      expect([args, g.ok, g.error]).toEqual([args, true, undefined]);
      expect({ api: g.os!.api_versions, variants: g.os!.variants, parameters: g.os!.parameters.map((p) => p[0]) }).toEqual(want);
      return r;
    };
    expect(runCli(['new', 'myos', '--template', 'blank', '--yes'], { cwd: work }).code).toBe(0);
    let r = step(['add-variant', 'bookworm', '--set', 'SUITE=bookworm'], { api: [20, 15, 10], variants: ['default', 'bookworm'], parameters: [] });
    expect(r.stdout).toMatch(/^Added variant 'bookworm' to myos/);
    step(['add-variant', 'trixie', '--first'], { api: [20, 15, 10], variants: ['trixie', 'default', 'bookworm'], parameters: [] });

    r = step(['add-param', 'filesystem', 'Root filesystem', '--choices', 'ext4,xfs', '--default', 'ext4', '--json'], {
      api: [20, 15, 10],
      variants: ['trixie', 'default', 'bookworm'],
      parameters: ['filesystem'],
    });
    const doc = JSON.parse(r.stdout) as { applied: boolean; parameters: string[]; operations: { path: string; action: string }[] };
    expect(doc.applied).toBe(true);
    expect(doc.parameters).toEqual(['filesystem']);
    expect(doc.operations.find((o) => o.path === 'parameters.list')?.action).toBe('update');
    expect(doc.operations.find((o) => o.path === 'lib/parameters.sh')?.action).toBe('update');
    expect(validateOs(dir, 'myos+trixie', { filesystem: 'zfs' }).ok).toBe(false);
    expect(validateOs(dir, 'myos+trixie', { filesystem: 'xfs' })).toEqual({ ok: true });

    // Dry run: a plan, no change.
    const before = treeHash(dir);
    r = os('remove-param', 'filesystem', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/dry run, nothing changed/);
    expect(treeHash(dir)).toBe(before);

    r = os('bump-api', '15');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/remove-param/);
    step(['remove-param', 'filesystem'], { api: [20, 15, 10], variants: ['trixie', 'default', 'bookworm'], parameters: [] });
    step(['bump-api', '15'], { api: [15, 10], variants: ['trixie', 'default', 'bookworm'], parameters: [] });
    step(['bump-api', '20'], { api: [20, 15, 10], variants: ['trixie', 'default', 'bookworm'], parameters: [] });
    step(['remove-variant', 'trixie'], { api: [20, 15, 10], variants: ['default', 'bookworm'], parameters: [] });
    step(['remove-variant', 'bookworm'], { api: [20, 15, 10], variants: ['default'], parameters: [] });
    step(['bump-api', '10', '--force'], { api: [10], variants: [], parameters: [] });
    step(['bump-api', '20', '--only', '--force'], { api: [20], variants: ['default'], parameters: [] });
    r = runCli(['info', dir, '--json'], { cwd: work });
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, apiVersions: [20], variants: ['default'] });
  });

  it('maintains the ganeti-instance-debootstrap copy from inside its directory', () => {
    const { os: dir, etc } = foreignCopy(work);
    let r = runCli(['add-variant', 'bookworm'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(path.join(etc, 'variants.list'));
    r = runCli(['bump-api', '15', '--json'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ ok: false, error: expect.stringMatching(/declares parameters \(filesystem\)/), exitCode: 1 });
    r = runCli(['bump-api', '15', '--force', '--json'], { cwd: dir });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { apiVersions: number[]; notes: string[]; generatedByGanetiOs: boolean };
    expect(doc.apiVersions).toEqual([15, 10, 5]);
    expect(doc.generatedByGanetiOs).toBe(false);
    expect(doc.notes.join('\n')).toMatch(/left in place/);
    const g = tryOsFromDisk(dir);
    expect(g.ok).toBe(true);
    expect(g.os!.variants).toEqual(['default', 'bookworm']);
  });
});
