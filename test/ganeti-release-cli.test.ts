/**
 * `--ganeti 3.0|3.1` through the real CLI: validate, diagnose, run and test take it (a release
 * Ganeti does not have is a usage error naming the supported ones), say which release they
 * followed (stderr; a `ganeti` field in --json), and follow it where the releases differ for an
 * instance: Ganeti 3.1 dropped the xen hypervisors' `xen_cmd`, and changed kvm's defaults
 * (disk_discard, vhost_net; the fidelity tests, test/run-env*.test.ts, hold every environment to
 * each release's own code).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { def, writeCase } from './helpers/corpus';
import { runCli, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';
import { chooseRelease } from '../src/ganeti/releases';

let root: string;
let osDir: string;
beforeAll(() => {
  root = tempDir('relcli');
  osDir = writeCase(path.join(root, 'os'), { name: 'relos', files: def() });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const COMMANDS: [string, string[]][] = [
  ['validate', ['validate', 'OS']],
  ['diagnose', ['diagnose', 'SEARCH']],
  ['run', ['run', 'create', '--os-dir', 'OS', '--print-env']],
  ['test', ['test', '--os-dir', 'OS']],
];
const withDirs = (args: string[]) => args.map((a) => (a === 'OS' ? osDir : a === 'SEARCH' ? path.dirname(osDir) : a));

describe('--ganeti through the CLI', () => {
  it.each(COMMANDS.flatMap(([name, args]) => ['2.16', '4'].map((bad) => [name, bad, args] as const)))('%s --ganeti %s: a usage error naming the supported releases', (_name, bad, args) => {
    const r = runCli([...withDirs(args), '--ganeti', bad], { cwd: root });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
    expect(r.stderr).toContain(`--ganeti ${bad}: not a supported Ganeti release; supported: 3.0, 3.1`);
  });

  it.each(COMMANDS.map(([name]) => [name]))('%s --help lists --ganeti', (name) => {
    const r = runCli([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--ganeti <release> +the Ganeti release to follow: 3\.0 or 3\.1/);
  });

  it('validate and diagnose say which release they followed: the option, else the installed one, else 3.1', () => {
    for (const release of ['3.0', '3.1']) {
      const v = runCli(['validate', osDir, '--json', '--ganeti', release]);
      expect(v.code).toBe(0);
      expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, ganeti: release });
      const d = runCli(['diagnose', path.dirname(osDir), '--json', '--ganeti', release]);
      expect(d.code).toBe(0);
      expect(JSON.parse(d.stdout)).toMatchObject({ ok: true, ganeti: release });
      expect(runCli(['validate', osDir, '--ganeti', release]).stderr).toContain(`following Ganeti ${release} (--ganeti)`);
      expect(runCli(['diagnose', path.dirname(osDir), '--ganeti', release]).stderr).toContain(`following Ganeti ${release} (--ganeti)`);
    }
    const node = chooseRelease(undefined);
    const why = node.why === 'installed' ? 'installed on this node' : "none installed on this node: Debian trixie's";
    expect(JSON.parse(runCli(['validate', osDir, '--json']).stdout).ganeti).toBe(node.release);
    expect(runCli(['validate', osDir]).stderr).toContain(`following Ganeti ${node.release} (${why})`);
    expect(JSON.parse(runCli(['diagnose', path.dirname(osDir), '--json']).stdout).ganeti).toBe(node.release);
  });

  it('run says which release built the environment (stderr, and --json)', () => {
    for (const release of ['3.0', '3.1']) {
      const e = runCli(['run', 'create', '--os-dir', osDir, '--print-env', '--ganeti', release]);
      expect(e.code).toBe(0);
      expect(e.stderr).toContain(`the environment Ganeti ${release} (--ganeti) gives create`);
      const v = runCli(['run', 'verify', '--os-dir', osDir, '--json', '--ganeti', release, '--log-dir', path.join(root, 'log')]);
      expect(v.code).toBe(0);
      expect(JSON.parse(v.stdout)).toMatchObject({ ganeti: release, script: 'verify', ok: true });
    }
  });

  it("a hypervisor parameter only one release has: xen_cmd is 3.0's (3.1 drives xl only)", () => {
    const xen = ['--hypervisor', 'xen-pvm', '--hvparam', 'xen_cmd=xl'];
    const ok = runCli(['run', 'create', '--os-dir', osDir, '--print-env', '--ganeti', '3.0', ...xen]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).INSTANCE_HV_xen_cmd).toBe('xl');
    const refused = runCli(['run', 'create', '--os-dir', osDir, '--print-env', '--ganeti', '3.1', ...xen]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("Unknown parameter 'xen_cmd'");
    expect(refused.stderr).toContain("'xen_cmd' is a parameter of Ganeti 3.0's xen-pvm (--ganeti 3.0), not of 3.1's");
    // test checks the parameters before anything runs, against the release it follows.
    const t = runCli(['test', '--os-dir', osDir, '--ganeti', '3.1', ...xen], { cwd: root });
    expect(t.code).toBe(2);
    expect(t.stderr).toContain("'xen_cmd' is a parameter of Ganeti 3.0's xen-pvm (--ganeti 3.0), not of 3.1's");
  });
});

describeSystem('test --ganeti: the local lifecycle builds the chosen release\'s environments', { root: true }, () => {
  it.each([
    ['3.0', 'default', 'False'],
    ['3.1', 'ignore', 'True'],
  ])('Ganeti %s: create gets disk_discard=%s, vhost_net=%s', (release, discard, vhost) => {
    const dir = writeCase(path.join(root, `env-${release}`), { name: 'envdump', files: def({ create: { mode: 0o755, content: '#!/bin/sh\nenv\n' } }) });
    const work = path.join(root, `work-${release}`);
    const r = runCli(['test', '--os-dir', dir, '--disk-size', '8M', '--variant', 'default', '--work-dir', work, '--keep', '--json', '--ganeti', release], { cwd: root, timeout: 120_000 });
    const doc = JSON.parse(r.stdout) as { runs: { steps: { step: string; status: string; logs: string[] }[] }[] };
    const create = doc.runs[0].steps.find((s) => s.step === 'create')!;
    expect(create.status).toBe('passed');
    const log = create.logs.map((l) => fs.readFileSync(l, 'utf8')).join('\n');
    expect(log).toMatch(new RegExp(`^INSTANCE_HV_disk_discard=${discard}$`, 'm'));
    expect(log).toMatch(new RegExp(`^INSTANCE_HV_vhost_net=${vhost}$`, 'm'));
  }, 120_000);
});
