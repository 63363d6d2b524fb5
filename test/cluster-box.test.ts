/**
 * `ganeti-os cluster up|down|status|exec` on one node: a real Ganeti 3.0 cluster in namespaces,
 * and what it must never do to the host.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeSystem } from './helpers/system';
import { box, BOX_NEED, eventually, expectHostAsBefore, hostSnapshot, onBox } from './helpers/box';
import { loopDevices } from '../src/system/kernel';
import { BIN, REPO, binForOtherUser, newDefinition, runCliAs, tempDir } from './helpers/cli';

jest.setTimeout(240000);

const pidNamespaces = (stateDir: string): string[] => {
  const s = JSON.parse(fs.readFileSync(path.join(stateDir, 'box.json'), 'utf8')) as { boxPid: number; nodes: { pid: number }[] };
  return [s.boxPid, ...s.nodes.map((n) => n.pid)].map((p) => fs.readlinkSync(`/proc/${p}/ns/pid`));
};
const livingIn = (namespaces: string[]): number[] =>
  fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return namespaces.includes(fs.readlinkSync(`/proc/${e}/ns/pid`)) && !/\) Z /.test(fs.readFileSync(`/proc/${e}/stat`, 'utf8'));
      } catch {
        return false;
      }
    })
    .map(Number);

function blankDefinition(parent: string): string {
  return newDefinition(parent, 'blank-os', ['--template', 'blank']);
}

describeSystem('cluster box (one node)', BOX_NEED, () => {
  let work: string;
  let def: string;
  beforeAll(() => {
    work = tempDir('box');
    def = blankDefinition(work);
  });
  afterAll(() => {
    for (const d of fs.readdirSync(work)) if (d !== 'blank-os') box(['down'], path.join(work, d));
    box(['down'], path.join(work, 'made-by-up', 'a'));
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('comes up, runs instances on file and ext disks, and goes down leaving the host as it was', () => {
    // A state directory whose parent up has to make too: down removes both.
    const state = path.join(work, 'made-by-up', 'a');
    const before = hostSnapshot([state]);
    const up = box(['up'], state, { GANETI_OS_LEAK_CHECK: 'caller-env' });
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('ganeti-os cluster exec');
    const st = box(['status'], state);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/node1\.example\.com 198\.51\.100\.11: running: .*ganeti-noded/);
    expect(st.stdout).toContain('ganeti-luxid');
    expect(st.stdout).toContain('ganeti-wconfd');
    const namespaces = pidNamespaces(state);

    // The caller's environment reaches no daemon.
    const daemons = livingIn(namespaces).filter((p) => /^ganeti-/.test(fs.readFileSync(`/proc/${p}/comm`, 'utf8')));
    expect(daemons.length).toBeGreaterThanOrEqual(5);
    for (const p of daemons) expect(fs.readFileSync(`/proc/${p}/environ`, 'utf8')).not.toContain('GANETI_OS_LEAK_CHECK');

    // Inside: its own hostname, address, hosts file; the host's Ganeti directories untouched.
    expect(onBox(state, ['hostname']).trim()).toBe('node1.example.com');
    expect(onBox(state, ['gnt-cluster', 'getmaster']).trim()).toBe('node1.example.com');
    const verify = box(['exec', '--', 'gnt-cluster', 'verify', '--error-codes', '-I', 'ENODESETUP'], state);
    expect(verify.code).toBe(0);
    expect(verify.stdout).not.toMatch(/ERROR:(?!ENODESETUP)/);

    fs.cpSync(def, path.join(state, 'nodes', 'node1', 'srv', 'ganeti', 'os', 'blank-os'), { recursive: true });
    expect(onBox(state, ['gnt-os', 'diagnose'])).toMatch(/OS: blank-os \[global status: valid\]/);
    const add = (name: string, disk: string[]) =>
      onBox(state, ['gnt-instance', 'add', '-o', 'blank-os+default', ...disk, '-H', 'fake', '--no-ip-check', '--no-name-check', '-n', 'node1.example.com', name]);
    add('instance1.example.com', ['-t', 'file', '--disk', '0:size=32M']);
    add('instance2.example.com', ['-t', 'ext', '--disk', '0:size=32M,provider=loopfile']);
    const list = onBox(state, ['gnt-instance', 'list', '--no-headers', '-o', 'name,status,disk_template']);
    expect(list).toMatch(/instance1\.example\.com\s+running\s+file/);
    expect(list).toMatch(/instance2\.example\.com\s+running\s+ext/);
    // The ext disk is a loop device attached by the provider, backed inside the state directory.
    const loops = loopDevices()
      .map((l) => `${l.name} ${l.backFile}`)
      .join('\n');
    expect(loops).toMatch(/\/srv\/volumes\/.*\.ext\.disk0/);
    expect(fs.readdirSync(path.join(state, 'nodes', 'node1', 'srv', 'volumes')).length).toBe(1);

    const down = box(['down'], state);
    expect(down.code).toBe(0);
    expect(down.stderr).toMatch(/detached \/dev\/loop\d+/);
    expect(livingIn(namespaces)).toEqual([]);
    expect(fs.existsSync(path.dirname(state))).toBe(false);
    expectHostAsBefore(before, [state]);
    // down is idempotent
    const again = box(['down'], state);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('nothing to do');
    expect(box(['status'], state).code).toBe(1);
  });

  it('refuses without root, without the ganeti package, in a used or foreign state directory', () => {
    const state = path.join(work, 'refuse');
    const other = binForOtherUser();
    const nobody = runCliAs(other, ['cluster', 'up', '--state', state], { timeout: 0 });
    other.dispose();
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/missing root/);
    expect(fs.existsSync(state)).toBe(false);

    // The Ganeti commands hidden in a private mount namespace: up names the package.
    const nopkg = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /usr/sbin && exec "$@"', 'sh', process.execPath, BIN, 'cluster', 'up', '--state', state], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(nopkg.status).toBe(1);
    expect(nopkg.stderr).toMatch(/Debian package 'ganeti'/);
    expect(nopkg.stderr).toMatch(/openssh-server/);
    expect(fs.existsSync(state)).toBe(false);

    const foreign = path.join(work, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'mine.txt'), 'keep me');
    const r = box(['up'], foreign);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not empty and holds no box/);
    expect(box(['down'], foreign).code).toBe(0);
    expect(fs.readFileSync(path.join(foreign, 'mine.txt'), 'utf8')).toBe('keep me');
    fs.rmSync(foreign, { recursive: true });
  });

  it('runs two boxes at once; the second up on a used state directory is refused', () => {
    const a = path.join(work, 'two-a');
    const b = path.join(work, 'two-b');
    expect(box(['up'], a).code).toBe(0);
    const busy = box(['up'], a);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/in use: a box runs there/);
    expect(box(['up'], b).code).toBe(0);
    fs.cpSync(def, path.join(a, 'nodes', 'node1', 'srv', 'ganeti', 'os', 'blank-os'), { recursive: true });
    onBox(a, ['gnt-instance', 'add', '-o', 'blank-os+default', '-t', 'file', '--disk', '0:size=16M', '-H', 'fake', '--no-start', '--no-ip-check', '--no-name-check', '-n', 'node1.example.com', 'instance1.example.com']);
    expect(onBox(a, ['gnt-instance', 'list', '--no-headers', '-o', 'name'])).toContain('instance1');
    expect(onBox(b, ['gnt-instance', 'list', '--no-headers', '-o', 'name'])).not.toContain('instance1');
    const nsA = pidNamespaces(a);
    expect(box(['down'], a).code).toBe(0);
    expect(livingIn(nsA)).toEqual([]);
    // b is untouched by a's teardown.
    expect(box(['status'], b).code).toBe(0);
    expect(onBox(b, ['gnt-cluster', 'getmaster']).trim()).toBe('node1.example.com');
    expect(box(['down'], b).code).toBe(0);
  });

  const interruptedUp = async (signal: NodeJS.Signals, state: string) => {
    const before = hostSnapshot([state]);
    const child = spawn(process.execPath, [BIN, 'cluster', 'up', '--state', state], { cwd: REPO, env: { PATH: process.env.PATH }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupted while Ganeti's init runs: the box, its node and sshd exist by then.
    const inInit = await eventually(() => {
      try {
        const s = JSON.parse(fs.readFileSync(path.join(state, 'box.json'), 'utf8')) as { times: Record<string, number> };
        return 'sshd-node1' in s.times;
      } catch {
        return false;
      }
    }, 60);
    expect(inInit).toBe(true);
    const namespaces = pidNamespaces(state);
    child.kill(signal);
    const code = await exited;
    return { before, code, namespaces };
  };

  it('Ctrl-C during up leaves nothing behind', async () => {
    const state = path.join(work, 'sigint');
    const { before, code, namespaces } = await interruptedUp('SIGINT', state);
    expect(code).toBe(1);
    expect(livingIn(namespaces)).toEqual([]);
    expect(fs.existsSync(state)).toBe(false);
    expectHostAsBefore(before, [state]);
  });

  it('a crash (SIGKILL) during up ends the box at once; down removes the rest', async () => {
    const state = path.join(work, 'sigkill');
    const { before, code, namespaces } = await interruptedUp('SIGKILL', state);
    expect(code).toBeNull();
    expect(await eventually(() => livingIn(namespaces).length === 0, 20)).toBe(true);
    expect(box(['status'], state).stdout).toMatch(/stopped/);
    const down = box(['down'], state);
    expect(down.code).toBe(0);
    expect(fs.existsSync(state)).toBe(false);
    expectHostAsBefore(before, [state]);
  });
});
