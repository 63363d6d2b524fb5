/**
 * rollout and nodes-check on a real 3-node Ganeti cluster: the disposable box of
 * `ganeti-os cluster up --nodes 3` (each node its own namespaces, overlays on /etc /usr /var so
 * dpkg's database is per node; the host stays as it was). Runs the built CLI (npm run build).
 * One box for the whole story, about 3 minutes on 2 cores: a clean rollout, a re-run (nothing to
 * do), a hand-edited create found and repaired, a node offline then caught up, a node whose
 * dpkg -i fails, and gnt-instance add on every node, each run as an admin runs it on a real
 * master: `ganeti-os cluster exec -- ganeti-os rollout ./NAME.deb` from the directory `pack`
 * wrote it to (the master's ganeti-os is the one that started the box). The same story on each supported release:
 * the host's (3.0 here; in CI) and, from a node root (`cluster up --ganeti 3.1`, node-root.ts),
 * the other one (`npm run test:matrix`; GANETI_OS_CLUSTER_CACHE, when set, is the root cache).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, tempDir } from './helpers/cli';
import { describeSystem, matrixCases } from './helpers/system';
import { GANETI_RELEASES, installedRelease } from '../src/ganeti/releases';

jest.setTimeout(1800000);

const NODES = ['node1.example.com', 'node2.example.com', 'node3.example.com'];

interface NodeReport {
  node: string;
  state: string;
  problems: string[];
  install?: string;
}

const HOST = installedRelease();
const ROOT_CACHE: Record<string, string> = process.env.GANETI_OS_CLUSTER_CACHE ? { GANETI_OS_CLUSTER_CACHE: process.env.GANETI_OS_CLUSTER_CACHE } : {};

// The host's release in CI; the other (about 6 minutes more here, 3-node box from a cached root) with GANETI_OS_MATRIX=full.
for (const release of matrixCases(GANETI_RELEASES.map((r) => r.release), (r) => r === (HOST ?? '3.0'))) {
  // The host's release runs from its /usr; the other from a node root mmdebstrap builds.
  const need = release === (HOST ?? '3.0') ? { root: true, ganeti: true, commands: ['gnt-cluster', 'dpkg-deb', 'sshd', 'socat'] } : { root: true, commands: ['dpkg-deb', 'mmdebstrap', 'unshare', 'nsenter'] };
  describeSystem(`rollout on a real 3-node cluster (Ganeti ${release})`, need, () => {
    let work: string;
    let state: string;

    const cli = (args: string[], timeout = 300000) => runCli(args, { cwd: work, env: { DEBFULLNAME: 'Site Admin', DEBEMAIL: 'admin@example.org', ...ROOT_CACHE }, timeout });
    /** A command on the master node, with the box's clean environment, in `work` (as an admin runs it there). */
    const onMaster = (args: string[]) => cli(['cluster', 'exec', '--state', state, '--', ...args]);
    /** ganeti-os on the master: the one that brought the box up (issue 25). */
    const gos = (args: string[]) => onMaster(['ganeti-os', ...args]);
    const onNode = (node: string, script: string) => {
      const r = onMaster(['gnt-cluster', 'command', '-n', node, script]);
      expect(r.stdout).toContain('return code = 0');
    };
    const rollout = (deb: string, extra: string[] = []) => {
      const r = gos(['rollout', `./${path.basename(deb)}`, '--json', ...extra]);
      const report = JSON.parse(r.stdout) as { ok: boolean; nodes: NodeReport[] };
      return { code: r.code, report, by: Object.fromEntries(report.nodes.map((n) => [n.node, n])) as Record<string, NodeReport>, stderr: r.stderr };
    };
    const pack = (version: string) => {
      const r = cli(['pack', '--os-dir', 'box-os', '--version', version]);
      expect(r.code).toBe(0);
      const deb = r.stdout.trim();
      expect(path.dirname(deb)).toBe(work);
      return deb;
    };

    beforeAll(() => {
      work = tempDir('rollout-box');
      state = path.join(work, 'box');
      const up = cli(['cluster', 'up', '--nodes', '3', '--state', state, '--ganeti', release], 1200000);
      if (up.code !== 0) throw new Error(`cluster up failed: ${up.stderr}`);
      expect(cli(['new', 'box-os', '--template', 'blank', '--yes', '--variant', 'default']).code).toBe(0);
    });
    afterAll(() => {
      if (state) cli(['cluster', 'down', '--state', state], 300000);
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it('rolls out, re-runs idempotently, finds and repairs a hand-edited create, catches up an offline node, reports a failing dpkg, and gnt-instance add works on every node', () => {
      // Clean rollout.
      const v1 = pack('1');
      const first = rollout(v1);
      expect(first.report.nodes.map((n) => [n.node, n.state, n.problems])).toEqual(NODES.map((n) => [n, 'done', []]));
      expect(first.code).toBe(0);
      expect(fs.existsSync('/usr/share/ganeti/os/box-os')).toBe(false); // the host is untouched

      // Re-running changes nothing.
      const again = rollout(v1);
      expect(again.code).toBe(0);
      expect(again.report.nodes.map((n) => [n.state, n.install])).toEqual(NODES.map(() => ['done', 'already']));
      expect(gos(['nodes-check', 'box-os']).code).toBe(0);

      // A hand-edited create on node3: Ganeti's verify does not see it; the digest and dpkg --verify do.
      onNode('node3.example.com', "echo '# by hand' >> /usr/share/ganeti/os/box-os/create");
      const edited = rollout(v1);
      expect(edited.code).toBe(1);
      expect(edited.by['node3.example.com'].state).toBe('failed');
      expect(edited.by['node3.example.com'].problems.join('\n')).toContain('create differs (content)');
      expect(edited.by['node1.example.com'].state).toBe('done');
      const check = gos(['nodes-check', 'box-os']);
      expect(check.code).toBe(1);
      expect(check.stdout).toMatch(/node3\.example\.com: differs[^\n]*\n\s+- create differs \(content\)/);
      expect(rollout(v1, ['--reinstall', '-n', 'node3.example.com']).code).toBe(0);
      expect(gos(['nodes-check', 'box-os']).code).toBe(0);

      // Version 2 while node3 is offline: done where possible, node3 named; then caught up.
      expect(cli(['add-variant', 'second', '--os-dir', 'box-os']).code).toBe(0);
      const v2 = pack('2');
      expect(onMaster(['gnt-node', 'modify', '--force', '-O', 'yes', 'node3.example.com']).code).toBe(0);
      const partial = rollout(v2);
      expect(partial.report.nodes.map((n) => [n.node, n.state])).toEqual([
        ['node1.example.com', 'done'],
        ['node2.example.com', 'done'],
        ['node3.example.com', 'offline'],
      ]);
      expect(partial.code).toBe(0);
      expect(onMaster(['gnt-node', 'modify', '--force', '-O', 'no', 'node3.example.com']).code).toBe(0);
      const caughtUp = rollout(v2, ['-n', 'node3.example.com']);
      expect(caughtUp.report.nodes.map((n) => [n.node, n.state])).toEqual([['node3.example.com', 'done']]);

      // Version 3 where node2's dpkg -i fails (a broken maintainer script of the installed version).
      fs.appendFileSync(path.join(work, 'box-os', 'defaults.conf'), '# v3\n');
      const v3 = pack('3');
      onNode('node2.example.com', "printf '#!/bin/sh\\nexit 1\\n' >/var/lib/dpkg/info/ganeti-os-box-os.prerm && chmod 755 /var/lib/dpkg/info/ganeti-os-box-os.prerm");
      const broken = rollout(v3);
      expect(broken.code).toBe(1);
      expect(broken.by['node2.example.com'].state).toBe('failed');
      expect(broken.by['node2.example.com'].problems.join('\n')).toMatch(/dpkg -i failed \(exit 1\): dpkg: warning: old ganeti-os-box-os package pre-removal script/);
      expect(broken.by['node2.example.com'].problems.join('\n')).toContain('installed: ganeti-os-box-os 2 (ii), expected 3');
      expect(broken.by['node1.example.com'].state).toBe('done');
      expect(broken.by['node3.example.com'].state).toBe('done');
      onNode('node2.example.com', 'rm -f /var/lib/dpkg/info/ganeti-os-box-os.prerm');
      const fixed = rollout(v3);
      expect(fixed.report.nodes.map((n) => n.state)).toEqual(['done', 'done', 'done']);
      expect(fixed.code).toBe(0);

      // Ganeti installs instances from the packaged definition on every node.
      NODES.forEach((node, i) => {
        const add = onMaster(['gnt-instance', 'add', '-o', 'box-os+second', '-t', 'file', '--disk', '0:size=64M', '-H', 'fake', '--no-start', '--no-ip-check', '--no-name-check', '-n', node, `inst${i + 1}.example.com`]);
        expect(add.code).toBe(0);
      });
      const list = onMaster(['gnt-instance', 'list', '--no-headers', '-o', 'name,pnode,os']);
      expect(list.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/))).toEqual(NODES.map((n, i) => [`inst${i + 1}.example.com`, n, 'box-os+second']));
    });
  });
}
