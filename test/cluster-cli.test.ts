/** `ganeti-os cluster`: the command line's refusals, which need no box (and no root). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runInProcess } from './helpers/cli';

describe('ganeti-os cluster (command line)', () => {
  let work: string;
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'gos-cluster-cli-'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const state = () => path.join(work, 'no-box');

  it.each([
    [['cluster', 'up', '--nodes', 'three'], /--nodes wants a number from 1 to 8, not 'three'/],
    [['cluster', 'up', '--nodes', '0'], /--nodes wants a number from 1 to 8/],
    [['cluster', 'up', '--nodes', '9'], /--nodes wants a number from 1 to 8/],
    [['cluster', 'test', '--hypervisor', 'xen-pvm'], /--hypervisor must be kvm or fake/],
    [['cluster', 'test', '--disk-template', 'plain'], /--disk-template must be file or ext/],
    [['cluster', 'test', '--disk-size', '1G'], /--disk-size wants a positive whole number/],
    [['cluster', 'test', '--osparam', 'a=b,c=d'], /'a=b,c=d' is not name=value/],
  ])('%j is a usage error, before anything is touched', async (args, message) => {
    const r = await runInProcess([...args, '--state', state()], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(fs.existsSync(state())).toBe(false);
  });

  it('exec without a command is a usage error', async () => {
    const r = await runInProcess(['cluster', 'exec', '--state', state()], { cwd: work });
    expect(r.code).toBe(2);
  });

  it('exec, test and status name the missing box', async () => {
    for (const args of [['exec', '--', 'true'], ['test', '--os-dir', work]]) {
      const r = await runInProcess(['cluster', ...args.slice(0, 1), '--state', state(), ...args.slice(1)], { cwd: work });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no cluster box runs at ${state()}`);
    }
    const s = await runInProcess(['cluster', 'status', '--state', state(), '--json'], { cwd: work });
    expect(s.code).toBe(1);
    expect(JSON.parse(s.stdout)).toMatchObject({ state: 'absent', stateDir: state() });
  });
});
