/**
 * Ganeti's burnin as `test --cluster --burnin` reads it (src/lifecycle/burnin.ts): the command
 * line per hypervisor and release, and its output (real runs captured on the box:
 * test/fixtures/burnin/README.md) parsed into phases, each a step's outcome.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BURNIN, BURNIN_PHASES, BurninOptions, burninPlan, NO_HOTPLUG, osScriptWarnings, parseBurnin, phaseOutcome, PlannedPhase } from '../src/lifecycle/burnin';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, 'fixtures', 'burnin', name), 'utf8');

const options = (o: Partial<BurninOptions> = {}): BurninOptions => ({
  master: { name: 'node1.example.com', ip: '198.51.100.11', pid: 1 },
  release: '3.0',
  osName: 'blank-os+default',
  osparams: [],
  hypervisor: 'fake',
  hvparams: [],
  diskMib: 64,
  memoryMib: 512,
  instance: 'instance4.example.com',
  renameTo: 'instance5.example.com',
  ...o,
});

/** Every planned step's outcome for a captured run. */
const outcomes = (plan: PlannedPhase[], output: string, status: number) => {
  const r = parseBurnin(output, status);
  return Object.fromEntries(plan.map((p, i) => [p.name, phaseOutcome(plan, i, r)]));
};

describe('burnin command line', () => {
  it('fake, Ganeti 3.0: file disks on the master, the name checks off, no disk add/remove (no hotplug)', () => {
    const { argv, phases } = burninPlan(options({ osparams: ['a=1,2'] }));
    expect(argv).toEqual([
      BURNIN, '-o', 'blank-os+default', '-t', 'file', '-n', 'node1.example.com', '--disk-size', '64M', '-H', 'fake', '--mem-size', '512M', '--vcpu-count', '1',
      '--no-ip-check', '--no-name-check', '-O', 'a=1\\,2', '--no-add-disks', '--rename', 'instance5.example.com', '-v', 'instance4.example.com',
    ]);
    expect(phases.filter((p) => p.leftOut).map((p) => [p.name, p.leftOut])).toEqual([
      ['burnin-add-disks', NO_HOTPLUG],
      ['burnin-remove-disks', NO_HOTPLUG],
    ]);
    expect(NO_HOTPLUG).toMatch(/^not on fake: no hotplug/);
  });

  it('kvm, Ganeti 3.1: disks added and removed; 3.1 burnin has no --no-name-check (it checks only when asked)', () => {
    const { argv, phases } = burninPlan(options({ release: '3.1', hypervisor: 'kvm', hvparams: ['kernel_path='] }));
    expect(argv).toContain('kvm:kernel_path=');
    expect(argv.filter((a) => /check|add-disks/.test(a))).toEqual([]);
    expect(phases.every((p) => !p.leftOut)).toBe(true);
  });

  it('every planned phase is one of burnin.py\'s own phase texts, in its order', () => {
    const src = fs.existsSync('/usr/share/ganeti/3.0/ganeti/tools/burnin.py') ? fs.readFileSync('/usr/share/ganeti/3.0/ganeti/tools/burnin.py', 'utf8') : undefined;
    const order = BURNIN_PHASES.map((p) => p.title);
    const { phases } = burninPlan(options({ hypervisor: 'kvm' }));
    const idx = phases.map((p) => order.indexOf(p.title));
    expect(idx).toEqual([...idx].sort((a, b) => a - b));
    if (src) for (const t of order) expect([t, src.includes(`Log("${t}")`)]).toEqual([t, true]);
  });
});

describe('burnin output (captured runs)', () => {
  const fakePlan = burninPlan(options()).phases;

  it('a passing run on fake: every planned phase passes, with what it did; the disk phases are skipped saying why', () => {
    const r = parseBurnin(fixture('3.0-fake-passes.txt'), 0);
    expect(r.failedIn).toBeUndefined();
    expect(r.phases.map((p) => p.title)).toEqual(fakePlan.filter((p) => !p.leftOut).map((p) => p.title));
    const o = outcomes(fakePlan, fixture('3.0-fake-passes.txt'), 0);
    for (const p of fakePlan) expect([p.name, o[p.name].status]).toEqual([p.name, p.leftOut ? 'skipped' : 'passed']);
    expect(o['burnin-create'].detail).toBe('instance4.example.com: on node1.example.com');
    expect(o['burnin-reinstall'].detail).toBe('instance4.example.com: reinstall without passing the OS; reinstall specifying the OS');
    expect(o['burnin-reboot'].detail).toMatch(/reboot with type 'full'; reboot with type 'soft'; reboot with type 'hard'/);
    expect(o['burnin-confd'].detail).toBe('Ping: OK; Master: OK; Node role for master: OK');
    expect(o['burnin-add-disks'].detail).toBe(NO_HOTPLUG);
  });

  it('a create that fails: the create phase fails with the script\'s words, later phases need it, the removal runs', () => {
    const text = fixture('3.0-create-fails.txt');
    const r = parseBurnin(text, 1);
    expect(r.failedIn).toBe('Creating instances');
    expect(r.error).toBe('ganeti.errors.OpExecError: Could not add os for instance instance4.example.com on node node1.example.com: OS create script failed (exited with exit code 1), last lines in the log file:\ncreate fails on purpose');
    // The opcode buffer burnin prints after a failure is not read as phases or lines.
    expect(r.phases.map((p) => p.title)).toEqual(['Creating instances', 'Removing instances']);
    const o = outcomes(fakePlan, text, 1);
    expect(o['burnin-create'].status).toBe('failed');
    expect(o['burnin-create'].detail).toMatch(/^burnin failed in "Creating instances": ganeti\.errors\.OpExecError: .*create fails on purpose$/s);
    expect(o['burnin-create'].logTail?.slice(-2)).toEqual(['Mon Dec  7 16:14:22 2026 * running the instance OS create scripts...', 'Non-idempotent opcode failed, aborting']);
    expect(o['burnin-stop-start']).toMatchObject({ status: 'skipped', detail: 'needs burnin-create, which did not pass' });
    expect(o['burnin-rename'].status).toBe('skipped');
    expect(o['burnin-remove'].status).toBe('passed');
  });

  it('disks added and removed on fake without --no-add-disks: the phase Ganeti refuses fails, naming why', () => {
    const text = fixture('3.0-fake-disk-remove-refused.txt');
    const plan = burninPlan(options({ hypervisor: 'kvm' })).phases;
    const o = outcomes(plan, text, 1);
    expect(o['burnin-add-disks'].status).toBe('passed');
    expect(o['burnin-remove-disks']).toMatchObject({ status: 'failed', detail: expect.stringContaining("can't remove volume from a running instance without using hotplug") });
    expect(o['burnin-remove-disks'].detail).toMatch(/^burnin failed in "Attaching and removing disks"/);
    expect(o['burnin-rename'].detail).toBe('needs burnin-remove-disks, which did not pass');
    // "Skipping migration" is burnin's remark in the grow phase, not a phase of its own.
    expect(parseBurnin(text, 1).phases.find((p) => p.title === 'Growing disks')?.notes).toEqual(['Skipping migration (disk template file does not support it)']);
  });

  it('a phase burnin logs that the plan did not expect counts in the step before it', () => {
    const text = fixture('3.0-fake-passes.txt');
    const plan = fakePlan.filter((p) => p.name !== 'burnin-confd');
    const o = outcomes(plan, text, 0);
    expect(o['burnin-rename-same'].detail).toMatch(/\(also: Checking confd results\)$/);
  });

  it('Ganeti 3.1 on fake: the same phases pass; its warnings (no hotplug, no disk resize in the hypervisor) are named', () => {
    const text = fixture('3.1-fake-passes.txt');
    const o = outcomes(fakePlan, text, 0);
    for (const p of fakePlan) expect([p.name, o[p.name].status]).toEqual([p.name, p.leftOut ? 'skipped' : 'passed']);
    expect(o['burnin-nics'].detail).toBe('instance4.example.com: adding a NIC; changing a NIC; removing last NIC; Ganeti warned: Hotplug is not supported: Hotplug is not supported by this hypervisor');
    expect(o['burnin-grow'].detail).toMatch(/Ganeti warned: Disk resize in hypervisor failed: .*Disk resize is not supported by this hypervisor$/);
  });

  it('a rename script that fails is only a warning to Ganeti (burnin exits 0): both rename phases fail with the script\'s words', () => {
    const text = fixture('3.1-rename-script-fails.txt');
    const r = parseBurnin(text, 0);
    expect(r.failedIn).toBeUndefined();
    const o = outcomes(fakePlan, text, 0);
    expect(o['burnin-rename-same'].status).toBe('failed');
    expect(o['burnin-rename-same'].detail).toBe(
      'burnin went on, but in "Renaming the instances to their own name" Ganeti warned that an OS script failed: Could not run OS rename script for instance instance4.example.com on node node1.example.com (but the instance has been renamed in Ganeti): OS rename script failed (exited with exit code 1), last lines in the log file:\nrename fails on purpose',
    );
    expect(o['burnin-rename'].status).toBe('failed');
    expect(o['burnin-rename'].detail.match(/rename fails on purpose/g)).toHaveLength(2);
    for (const name of ['burnin-create', 'burnin-reinstall', 'burnin-confd', 'burnin-nics', 'burnin-remove']) expect([name, o[name].status]).toEqual([name, 'passed']);
    // The same reading for any command's output (gnt-instance rename in the lifecycle): three renames, each with the script's words; hotplug warnings are not OS scripts'.
    const w = osScriptWarnings(text);
    expect(w).toHaveLength(3);
    for (const x of w) expect(x).toMatch(/^Could not run OS rename script for instance .*\nrename fails on purpose$/s);
    expect(osScriptWarnings(fixture('3.1-fake-passes.txt'))).toEqual([]);
  });

  it('burnin ending before its first phase (an OS the box does not have): the first step fails with its words; a killed run is not a pass', () => {
    const o = outcomes(fakePlan, fixture('3.1-no-such-os.txt'), 1);
    expect(o['burnin-create']).toMatchObject({ status: 'failed', detail: "burnin exited 1 before creating instances: Can't get the OS list" });
    expect(o['burnin-stop-start']).toMatchObject({ status: 'skipped', detail: 'needs burnin, which exited 1' });
    const cut = fixture('3.0-fake-passes.txt').split('- Reinstalling instances')[0];
    const k = outcomes(fakePlan, cut, -1);
    expect(k['burnin-grow'].status).toBe('failed');
    expect(k['burnin-reinstall'].status).toBe('skipped');
  });
});
