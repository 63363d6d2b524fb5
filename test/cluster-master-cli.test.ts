/**
 * The box's master runs the same ganeti-os as the host that started it (issue 25): `cluster
 * exec -- ganeti-os …` finds it on the master's PATH (the host's Node.js and package, bound
 * read-only into the nodes), and runs in the admin's current directory, also one under the
 * node's private /tmp, so the rehearsal of a rollout is the commands an admin types on a real
 * master: `ganeti-os pack`, then `ganeti-os cluster exec -- ganeti-os rollout ./NAME_1_all.deb`.
 * A 2-node box on the host's release (CI); on the other release, from its node root, with
 * GANETI_OS_MATRIX=full. Runs the built CLI (npm run build).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tempDir } from './helpers/cli';
import { describeSystem, matrixCases } from './helpers/system';
import { expectHostAsBefore, hostSnapshot } from './helpers/box';
import { mountTable } from '../src/system/kernel';
import { GANETI_RELEASES, installedRelease } from '../src/ganeti/releases';

jest.setTimeout(1200000);

const HOST = installedRelease() ?? '3.0';
const ROOT_CACHE: Record<string, string> = process.env.GANETI_OS_CLUSTER_CACHE ? { GANETI_OS_CLUSTER_CACHE: process.env.GANETI_OS_CLUSTER_CACHE } : {};
const NODES = ['node1.example.com', 'node2.example.com'];

/** Host mounts that name one of `paths` (as target or source): the box must never leave one. */
const mountsNaming = (paths: string[]) =>
  mountTable()
    .filter((m) => paths.some((p) => m.target.startsWith(p) || m.source.startsWith(p) || m.root.startsWith(p)))
    .map((m) => `${m.target} ${m.source} ${m.root}`);

for (const release of matrixCases(GANETI_RELEASES.map((r) => r.release), (r) => r === HOST)) {
  const need = release === HOST ? { root: true, ganeti: true, commands: ['gnt-cluster', 'dpkg-deb', 'sshd', 'socat', 'unshare', 'nsenter'] } : { root: true, commands: ['dpkg-deb', 'mmdebstrap', 'unshare', 'nsenter'] };
  describeSystem(`the box's master runs this ganeti-os (Ganeti ${release})`, need, () => {
    let work: string;
    let state: string;
    const cli = (args: string[], cwd: string, timeout = 300000) => runCli(args, { cwd, env: { DEBFULLNAME: 'Site Admin', DEBEMAIL: 'admin@example.org', ...ROOT_CACHE }, timeout });
    const onMaster = (args: string[], cwd: string) => cli(['cluster', 'exec', '--state', state, '--', ...args], cwd);

    beforeAll(() => {
      work = tempDir('master-cli');
      state = path.join(work, 'box');
    });
    afterAll(() => {
      if (state) cli(['cluster', 'down', '--state', state], '/', 300000);
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it('runs ganeti-os --version, pack then rollout ./x.deb from a directory under /tmp, and nodes-check; down leaves no mount', () => {
      const watched = [work, path.dirname(process.execPath), path.resolve(__dirname, '..')];
      const before = hostSnapshot([state]);
      const mountsBefore = mountsNaming(watched);
      const up = cli(['cluster', 'up', '--nodes', String(NODES.length), '--state', state, '--ganeti', release], work, 1200000);
      expect(up.code).toBe(0);

      // The same ganeti-os, read-only.
      const hostVersion = cli(['--version'], work);
      expect(hostVersion.code).toBe(0);
      const version = onMaster(['ganeti-os', '--version'], work);
      expect(version.stderr).toBe('');
      expect(version.code).toBe(0);
      expect(version.stdout).toBe(hostVersion.stdout);
      const which = onMaster(['sh', '-c', 'command -v ganeti-os'], work);
      expect(which.stdout.trim()).toBe('/usr/local/bin/ganeti-os');
      const write = onMaster(['sh', '-c', ': >/run/ganeti-os-box/cli/package/package.json'], work);
      expect(write.code).not.toBe(0);
      expect(write.stderr).toContain('Read-only file system');

      // The rehearsal, from a directory under /tmp (private on the nodes), as on a real master.
      expect(cli(['new', 'x', '--template', 'blank', '--yes', '--variant', 'default'], work).code).toBe(0);
      const pack = cli(['pack', '--os-dir', 'x', '--version', '1'], work);
      expect(pack.code).toBe(0);
      const deb = path.basename(pack.stdout.trim());
      expect(fs.existsSync(path.join(work, deb))).toBe(true);
      const pwd = onMaster(['pwd'], work);
      expect(pwd.stdout.trim()).toBe(work);
      const rollout = onMaster(['ganeti-os', 'rollout', `./${deb}`, '--json'], work);
      const report = JSON.parse(rollout.stdout) as { ok: boolean; nodes: { node: string; state: string; problems: string[] }[] };
      expect(report.nodes.map((n) => [n.node, n.state, n.problems])).toEqual(NODES.map((n) => [n, 'done', []]));
      expect(rollout.code).toBe(0);
      expect(fs.existsSync('/usr/share/ganeti/os/x')).toBe(false); // installed in the box only
      const check = onMaster(['ganeti-os', 'nodes-check', 'x'], work);
      expect(check.stdout).toContain(`x: same on all ${NODES.length} nodes`);
      expect(check.code).toBe(0);

      // A subdirectory: its parent is the host's too (../ works).
      const sub = path.join(work, 'sub');
      fs.mkdirSync(sub);
      const parent = onMaster(['ganeti-os', 'rollout', `../${deb}`, '--dry-run'], sub);
      expect(parent.code).toBe(0);
      expect(onMaster(['pwd'], sub).stdout.trim()).toBe(sub);

      // A directory the node cannot see is named (exit 1), never a bare nsenter error.
      const hidden = tempDir('master-cli', '/run');
      try {
        const r = onMaster(['pwd'], hidden);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`cannot run in ${hidden} on node1.example.com`);
        expect(r.stderr).not.toContain('nsenter');
      } finally {
        fs.rmSync(hidden, { recursive: true, force: true });
      }

      const down = cli(['cluster', 'down', '--state', state], '/', 300000);
      expect(down.code).toBe(0);
      expectHostAsBefore(before, [state]);
      expect(mountsNaming(watched)).toEqual(mountsBefore);
    });
  });
}
