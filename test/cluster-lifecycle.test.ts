/**
 * `ganeti-os cluster test`: every template's lifecycle through a real box (install, gnt-os
 * diagnose/info, add with a bad value and a bad variant refused, start — a login prompt on kvm —,
 * export, import, rename, reinstall, remove, verify), and the failures it must report.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeSystem } from './helpers/system';
import { box, BOX_NEED, expectHostAsBefore, hostSnapshot, onBox } from './helpers/box';
import { BIN, REPO } from './helpers/cli';

jest.setTimeout(1800000);

interface Step {
  name: string;
  ok: boolean;
  seconds: number;
  detail?: string;
  skipped?: boolean;
}
interface Result {
  ok: boolean;
  os: string;
  variant: string | null;
  steps: Step[];
}

const STEPS = [
  'install',
  'gnt-os diagnose',
  'gnt-os info',
  'bad parameter refused',
  'bad variant refused',
  'gnt-instance add',
  'gnt-backup export',
  'gnt-backup import (runs rename)',
  'gnt-instance rename',
  'gnt-instance reinstall',
  'gnt-instance remove',
  'gnt-cluster verify',
];

describeSystem('cluster test (lifecycle through the box)', { ...BOX_NEED, commands: [...BOX_NEED.commands, 'mmdebstrap', 'qemu-system-x86_64'] }, () => {
  let work: string;
  let state: string;
  let before: ReturnType<typeof hostSnapshot>;
  const timings: Record<string, Record<string, number>> = {};

  const newDef = (name: string, template: string, extra: string[] = []) => {
    const r = spawnSync(process.execPath, [BIN, 'new', name, '--template', template, '--yes', '-C', work, ...extra], { encoding: 'utf8', cwd: REPO });
    if (r.status !== 0) throw new Error(r.stderr);
    return path.join(work, name);
  };
  const lifecycle = (dir: string, args: string[]): { code: number; result: Result; stderr: string } => {
    const r = box(['test', '--os-dir', dir, '--json', ...args], state, {}, 1800000);
    let result: Result;
    try {
      result = JSON.parse(r.stdout) as Result;
    } catch {
      throw new Error(`no JSON from cluster test (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
    }
    timings[`${path.basename(dir)} ${args.join(' ')}`] = Object.fromEntries(result.steps.map((s) => [s.name, s.seconds]));
    return { code: r.code, result, stderr: r.stderr };
  };
  const step = (r: Result, name: string) => r.steps.find((s) => s.name.startsWith(name));
  const instances = () => onBox(state, ['gnt-instance', 'list', '--no-headers', '-o', 'name']).trim();

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'gos-lifecycle-'));
    state = path.join(work, 'box');
    before = hostSnapshot([state]);
    const up = box(['up'], state);
    if (up.code !== 0) throw new Error(`cluster up failed:\n${up.stderr}`);
  });
  afterAll(() => {
    box(['down'], state);
    // eslint-disable-next-line no-console
    console.log(`cluster test step times (s):\n${JSON.stringify(timings, null, 1)}`);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('debian with its defaults on kvm: every step passes and the instance reaches a login prompt', () => {
    const { code, result } = lifecycle(newDef('debian-os', 'debian'), []);
    expect(result.steps.filter((s) => !s.ok)).toEqual([]);
    expect(code).toBe(0);
    expect(result.ok).toBe(true);
    expect(result.variant).toBe('bookworm');
    for (const name of STEPS) expect(step(result, name)?.ok).toBe(true);
    expect(step(result, 'gnt-instance start (login prompt')?.detail).toMatch(/login prompt after .*login:/);
    // The bad value was one outside a declared parameter's choices, refused by the master.
    expect(step(result, 'bad parameter refused')?.skipped).toBeFalsy();
    expect(instances()).toBe('');
  });

  it('debian on fake with ext disks (no kernel installed) and a parameter', () => {
    const { code, result } = lifecycle(path.join(work, 'debian-os'), ['--hypervisor', 'fake', '--disk-template', 'ext', '--osparam', 'filesystem=ext3']);
    expect(result.steps.filter((s) => !s.ok)).toEqual([]);
    expect(code).toBe(0);
    expect(step(result, 'gnt-instance start')?.name).toBe('gnt-instance start');
    expect(instances()).toBe('');
  });

  it('blank on kvm (started, no boot expected) and on fake', () => {
    const blank = newDef('blank-os', 'blank');
    for (const args of [['--no-boot', '--disk-size', '64'], ['--hypervisor', 'fake', '--disk-size', '64', '--disk-template', 'ext']]) {
      const { code, result } = lifecycle(blank, args);
      expect(result.steps.filter((s) => !s.ok)).toEqual([]);
      expect(code).toBe(0);
      expect(step(result, 'bad parameter refused')?.skipped).toBe(true);
    }
    expect(instances()).toBe('');
  });

  it('a create that fails: add fails, the admin-down instance is removed, the cluster verifies clean', () => {
    const dir = newDef('failing-create', 'blank');
    fs.writeFileSync(path.join(dir, 'create'), '#!/bin/sh\necho "create fails on purpose" >&2\nexit 1\n', { mode: 0o755 });
    const { code, result } = lifecycle(dir, ['--hypervisor', 'fake', '--disk-size', '16']);
    expect(code).toBe(1);
    expect(result.ok).toBe(false);
    const add = step(result, 'gnt-instance add');
    expect(add?.ok).toBe(false);
    expect(add?.detail).toMatch(/stays in the configuration \(ADMIN_down\)/);
    expect(add?.detail).toContain('create fails on purpose');
    expect(step(result, 'cleanup')?.ok).toBe(true);
    expect(step(result, 'gnt-cluster verify')?.ok).toBe(true);
    expect(step(result, 'gnt-backup export')).toBeUndefined();
    expect(instances()).toBe('');
  });

  it('a bad variant and a failing verify are refused by the master; nothing stays behind', () => {
    const blank = path.join(work, 'blank-os');
    const v = lifecycle(blank, ['--hypervisor', 'fake', '--disk-size', '16', '--variant', 'no-such']);
    expect(v.code).toBe(1);
    expect(step(v.result, 'gnt-instance add')?.ok).toBe(false);
    expect(step(v.result, 'gnt-instance add')?.detail).toMatch(/variant/i);
    expect(step(v.result, 'cleanup')).toBeUndefined();

    const dir = newDef('failing-verify', 'blank');
    fs.writeFileSync(path.join(dir, 'verify'), '#!/bin/sh\necho "verify refuses everything" >&2\nexit 1\n', { mode: 0o755 });
    const f = lifecycle(dir, ['--hypervisor', 'fake', '--disk-size', '16']);
    expect(f.code).toBe(1);
    expect(step(f.result, 'gnt-instance add')?.ok).toBe(false);
    expect(step(f.result, 'gnt-instance add')?.detail).toContain('verify refuses everything');
    expect(step(f.result, 'gnt-cluster verify')?.ok).toBe(true);
    expect(instances()).toBe('');
  });

  it('prefill: a create that downloads on first use gets its cache through the host, written only into the state directory', () => {
    // A stand-in for the debian template's base-system cache: create needs a route out unless
    // its cache is filled. The box has no route out; the host has.
    const cache = `/var/cache/gos-prefill-test-${path.basename(work)}`;
    const dir = newDef('needs-download', 'blank');
    fs.writeFileSync(
      path.join(dir, 'create'),
      `#!/bin/sh\nset -eu\nif [ -f ${cache}/filled ]; then exit 0; fi\nif [ -z "$(ip -4 route show default)" ]; then echo "no route out and no cache" >&2; exit 1; fi\nmkdir -p ${cache}\necho filled > ${cache}/filled\n`,
      { mode: 0o755 },
    );
    const without = lifecycle(dir, ['--hypervisor', 'fake', '--disk-size', '16', '--no-prefill']);
    expect(without.code).toBe(1);
    expect(step(without.result, 'gnt-instance add')?.detail).toContain('no route out and no cache');
    const withPrefill = lifecycle(dir, ['--hypervisor', 'fake', '--disk-size', '16', '--prefill']);
    expect(withPrefill.result.steps.filter((x) => !x.ok)).toEqual([]);
    expect(step(withPrefill.result, 'prefill')?.ok).toBe(true);
    expect(fs.existsSync(cache)).toBe(false);
    expect(fs.readFileSync(path.join(state, 'nodes', 'node1', 'var.upper', 'cache', path.basename(cache), 'filled'), 'utf8')).toBe('filled\n');
    expect(instances()).toBe('');
  });

  it('refuses without a running box, naming how to start one', () => {
    const r = box(['test', '--os-dir', path.join(work, 'blank-os')], path.join(work, 'no-box'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no cluster box runs at .*cluster up/);
  });

  it('leaves the host as it was after down', () => {
    expect(box(['down'], state).code).toBe(0);
    expectHostAsBefore(before, [state]);
  });
});
