/**
 * `ganeti-os cluster up --nodes 3`: three nodes in namespaces of their own, each with private
 * overlays, joined over veth links and SSH with `gnt-node add`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeSystem } from './helpers/system';
import { box, BOX_NEED, expectHostAsBefore, hostSnapshot, onBox } from './helpers/box';
import { runCli, tempDir } from './helpers/cli';

jest.setTimeout(600000);

describeSystem('cluster box (three nodes)', BOX_NEED, () => {
  let work: string;
  let state: string;
  beforeAll(() => {
    work = tempDir('box3');
    state = path.join(work, 'box');
  });
  afterAll(() => {
    box(['down'], state);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('joins three nodes, keeps their files private, runs commands on all of them, and goes down cleanly', () => {
    const before = hostSnapshot([state]);
    const up = box(['up', '--nodes', '3', '--json'], state);
    expect(up.code).toBe(0);
    const desc = JSON.parse(up.stdout) as { nodes: { name: string; ip: string }[]; times: Record<string, number> };
    expect(desc.nodes.map((n) => n.name)).toEqual(['node1.example.com', 'node2.example.com', 'node3.example.com']);
    // up runs verify after joining (no ssh or config findings); the nodes are all there.
    expect(desc.times).toHaveProperty('verify');
    expect(onBox(state, ['gnt-node', 'list', '--no-headers', '-o', 'name']).trim().split('\n')).toEqual(desc.nodes.map((n) => n.name));

    // Each node its own hostname and address; commands reach all over SSH.
    const hostnames = onBox(state, ['gnt-cluster', 'command', '-M', 'hostname']);
    for (const n of desc.nodes) expect(hostnames).toContain(`${n.name}: ${n.name}`);
    expect(box(['exec', '--node', 'node3', '--', 'hostname'], state).stdout.trim()).toBe('node3.example.com');

    // Private overlays: a file written under /var/lib/dpkg on node2 is seen neither on node1 nor on the host.
    const marker = '/var/lib/dpkg/ganeti-os-box-test';
    expect(box(['exec', '--node', 'node2', '--', 'sh', '-c', `echo node2 > ${marker}`], state).code).toBe(0);
    expect(box(['exec', '--node', 'node2', '--', 'cat', marker], state).stdout).toBe('node2\n');
    expect(box(['exec', '--node', 'node1', '--', 'test', '-e', marker], state).code).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);

    // copyfile copies to every node (scp over SFTP with the shared host keys).
    fs.writeFileSync(path.join(state, 'nodes', 'node1', 'tmp', 'copied.txt'), 'from node1\n');
    onBox(state, ['gnt-cluster', 'copyfile', '/tmp/copied.txt']);
    for (const n of ['node2', 'node3']) expect(fs.readFileSync(path.join(state, 'nodes', n, 'tmp', 'copied.txt'), 'utf8')).toBe('from node1\n');

    // An instance on a joined node, with the definition installed on every node.
    const r = runCli(['new', 'blank-os', '--template', 'blank', '--yes', '-C', work], { env: process.env, timeout: 0 });
    expect(r.code).toBe(0);
    for (const n of ['node1', 'node2', 'node3']) fs.cpSync(path.join(work, 'blank-os'), path.join(state, 'nodes', n, 'srv', 'ganeti', 'os', 'blank-os'), { recursive: true });
    expect(onBox(state, ['gnt-os', 'list', '--no-headers'])).toContain('blank-os+default');
    onBox(state, ['gnt-instance', 'add', '-o', 'blank-os+default', '-t', 'ext', '--disk', '0:size=16M,provider=loopfile', '-H', 'fake', '--no-ip-check', '--no-name-check', '-n', 'node2.example.com', 'instance1.example.com']);
    expect(onBox(state, ['gnt-instance', 'list', '--no-headers', '-o', 'name,pnode,status'])).toMatch(/instance1\.example\.com\s+node2\.example\.com\s+running/);
    expect(fs.readdirSync(path.join(state, 'nodes', 'node2', 'srv', 'volumes')).length).toBe(1);

    const down = box(['down'], state);
    expect(down.code).toBe(0);
    expect(fs.existsSync(state)).toBe(false);
    expectHostAsBefore(before, [state]);
  });
});
