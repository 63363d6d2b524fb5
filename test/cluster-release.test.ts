/**
 * `ganeti-os cluster up --ganeti R` for the release this node does not run (here: 3.1 on
 * bookworm): the nodes run it from a node root built once by mmdebstrap from the node's mirror
 * and cached (src/cluster/node-root.ts). One box comes up, names its release, runs the blank
 * template's lifecycle through `test --cluster` and goes down leaving the host as before; a root
 * that cannot be built (no mirror, no space, Ctrl-C while building) fails `up` with the cause and
 * leaves no partial root. More (3 nodes, kvm, two boxes of different releases at once) with
 * GANETI_OS_MATRIX=full.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeSystem, matrixCases } from './helpers/system';
import { box, eventually, expectHostAsBefore, hostSnapshot, onBox, testOnBox } from './helpers/box';
import { BIN, REPO, newDefinition, runCli, tempDir } from './helpers/cli';
import { GANETI_RELEASES, GanetiRelease, installedRelease } from '../src/ganeti/releases';
import { cachedRoots, DEFAULT_ROOT_CACHE } from '../src/cluster/node-root';

jest.setTimeout(1200000);

/** The release this node does not run: the box needs a node root for it. */
const OTHER = GANETI_RELEASES.map((r) => r.release).find((r) => r !== installedRelease()) as GanetiRelease;
/** The node-root cache the boxes use: $GANETI_OS_CLUSTER_CACHE when set (as `cluster up` reads it), else root's default. */
const CACHE = process.env.GANETI_OS_CLUSTER_CACHE ?? DEFAULT_ROOT_CACHE;
const CACHE_ENV: Record<string, string> = process.env.GANETI_OS_CLUSTER_CACHE ? { GANETI_OS_CLUSTER_CACHE: CACHE } : {};
const ROOT_NEED = { root: true, commands: ['unshare', 'nsenter', 'losetup', 'mmdebstrap', 'ssh-keygen'] };

interface StatusJson {
  state: string;
  ganeti: { release: string | null; root: string | null };
}

describeSystem(`cluster box running Ganeti ${OTHER} from a node root`, ROOT_NEED, () => {
  let work: string;
  let blank: string;
  beforeAll(() => {
    work = tempDir('release');
    blank = newDefinition(work, 'blank-os', ['--template', 'blank']);
  });
  afterAll(() => {
    for (const d of fs.readdirSync(work)) if (d.startsWith('box')) box(['down'], path.join(work, d));
    fs.rmSync(work, { recursive: true, force: true });
  });

  it(`comes up on Ganeti ${OTHER}, names it, runs the blank lifecycle, and goes down leaving the host as before (the root stays cached)`, () => {
    const state = path.join(work, 'box-a');
    const before = hostSnapshot([state]);
    // The root is built into the cache when absent or stale (minutes), else reused (seconds).
    const up = box(['up', '--ganeti', OTHER], state, CACHE_ENV, 1200000);
    expect([up.code, up.stderr]).toEqual([0, expect.stringMatching(new RegExp(`(built|reusing) the node root ${CACHE}/ganeti-${OTHER}-`))]);
    expect(up.stdout).toContain(`(Ganeti ${OTHER} from the node root ${CACHE}/`);

    const st = box(['status'], state);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(new RegExp(`running \\(cluster cluster\\.example\\.com 198\\.51\\.100\\.10, Ganeti ${OTHER.replace('.', '\\.')} from the node root `));
    expect(st.stdout).toMatch(/node1\.example\.com 198\.51\.100\.11: running: .*ganeti-luxid.*ganeti-noded.*ganeti-wconfd/);
    const json = JSON.parse(box(['status', '--json'], state).stdout) as StatusJson;
    expect(json.ganeti.release).toBe(OTHER);
    const root = json.ganeti.root as string;
    expect(cachedRoots(CACHE).map((r) => r.dir)).toContain(root);

    // Inside, the commands are the release's, from its own Debian; the host's Ganeti is not there.
    expect(onBox(state, ['gnt-cluster', '--version'])).toMatch(new RegExp(`^gnt-cluster \\(ganeti ${OTHER.replace('.', '\\.')}[.~]`));
    expect(onBox(state, ['ls', '/usr/share/ganeti']).split('\n')).toEqual(expect.arrayContaining([OTHER]));
    expect(onBox(state, ['ls', '/usr/share/ganeti']).split('\n')).not.toContain(installedRelease());
    expect(onBox(state, ['cat', '/etc/debian_version']).trim()).toBe(fs.readFileSync(path.join(root, 'etc', 'debian_version'), 'utf8').trim());
    expect(onBox(state, ['hostname']).trim()).toBe('node1.example.com');
    const verify = box(['exec', '--', 'gnt-cluster', 'verify', '--error-codes', '-I', 'ENODESETUP'], state);
    expect(verify.code).toBe(0);

    // The blank template's lifecycle through the box, on the fake hypervisor: every step, the release named.
    const t = testOnBox(blank, ['--hypervisor', 'fake'], state);
    expect(t.run.steps.filter((s) => s.status === 'failed').map((s) => `${s.step}: ${s.detail}`)).toEqual([]);
    expect(t.code).toBe(0);
    expect(t.run.ganeti).toBe(OTHER);
    for (const name of ['install', 'diagnose', 'add', 'start', 'export', 'import', 'rename', 'reinstall', 'remove', 'cluster-verify']) {
      expect([name, t.run.steps.find((s) => s.step === name)?.status]).toEqual([name, 'passed']);
    }
    // Asking test --cluster for the other release is refused, naming the box's.
    const wrong = runCli(['test', '--cluster', '--state', state, '--os-dir', blank, '--ganeti', installedRelease() ?? '3.0'], { env: process.env, timeout: 0 });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`runs Ganeti ${OTHER}`);

    const down = box(['down'], state);
    expect(down.code).toBe(0);
    expect(fs.existsSync(state)).toBe(false);
    expectHostAsBefore(before, [state]);
    // The root stays for the next box.
    expect(fs.existsSync(path.join(root, 'usr', 'share', 'ganeti', OTHER))).toBe(true);
  });

  /** `cluster up --ganeti OTHER` with a private cache, wrapped in `sh -c SCRIPT` (private mount namespace); the cache's entries after. */
  const upWrapped = (name: string, script: string) => {
    const state = path.join(work, `box-${name}`);
    const cache = path.join(work, `cache-${name}`);
    fs.mkdirSync(cache);
    const before = hostSnapshot([state, cache]);
    const r = spawnSync(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', `set -e\n${script}\nset +e\n"$@"\nrc=$?\necho "cache: $(ls -A "$CACHE" | tr '\\n' ' ')"\nexit $rc`, 'sh', process.execPath, BIN, 'cluster', 'up', '--ganeti', OTHER, '--state', state, '--cache', cache],
      { encoding: 'utf8', env: { PATH: process.env.PATH, CACHE: cache }, timeout: 600000 },
    );
    const left = /cache: (.*)$/m.exec(r.stdout)?.[1].trim() ?? null;
    return { code: r.status, stderr: r.stderr, left, state, cache, before };
  };

  it("no mirror in the node's apt sources: the cause, nothing made", () => {
    const r = upWrapped('no-mirror', 'mount -t tmpfs tmpfs /etc/apt/sources.list.d\nif [ -e /etc/apt/sources.list ]; then mount --bind /dev/null /etc/apt/sources.list; fi');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot build a Ganeti 3\.\d node root: this node's apt sources \(\/etc\/apt\) name no Debian mirror/);
    expect(r.left).toBe('');
    expect(fs.existsSync(r.state)).toBe(false);
    expectHostAsBefore(r.before, [r.state, r.cache]);
  });

  it('no space for the root: fails with the cause half-way, the partial root removed', () => {
    const r = upWrapped('no-space', 'mount -t tmpfs -o size=48m tmpfs "$CACHE"');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/building the node root failed \(mmdebstrap exit \d+\); the partial root was removed/);
    expect(r.stderr).toMatch(/No space left on device|not enough free space|Write error/i);
    expect(r.left).toBe('');
    expect(fs.existsSync(r.state)).toBe(false);
    expectHostAsBefore(r.before, [r.state, r.cache]);
  });

  it('Ctrl-C while the root is built: the build ends, nothing of it stays', async () => {
    const state = path.join(work, 'box-sigint');
    const cache = path.join(work, 'cache-sigint');
    const before = hostSnapshot([state, cache]);
    const child = spawn(process.execPath, [BIN, 'cluster', 'up', '--ganeti', OTHER, '--state', state, '--cache', cache], { cwd: REPO, env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // mmdebstrap is downloading or unpacking into the partial root.
    const building = await eventually(() => {
      try {
        return fs.readdirSync(cache).some((e) => e.startsWith('.building-') && fs.existsSync(path.join(cache, e, 'var')));
      } catch {
        return false;
      }
    }, 120);
    expect(building).toBe(true);
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = Date.now();
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(Date.now() - t0).toBeLessThan(30000);
    expect(stderr).toMatch(/interrupted while building the node root \(the partial root was removed\)/);
    expect(fs.readdirSync(cache).filter((e) => !e.startsWith('.lock'))).toEqual([]);
    expect(fs.existsSync(state)).toBe(false);
    expectHostAsBefore(before, [state, cache]);
  });

  // The long matrix: 3 nodes and the kvm lifecycle; two boxes of different releases at once.
  for (const c of matrixCases(['3 nodes, blank on kvm', 'two boxes of different releases at once'], () => false)) {
    it(c, () => {
      const a = path.join(work, 'box-m1');
      const before = hostSnapshot([a]);
      if (c.startsWith('3 nodes')) {
        expect(box(['up', '--ganeti', OTHER, '--nodes', '3'], a, CACHE_ENV, 1200000).code).toBe(0);
        expect(onBox(a, ['gnt-node', 'list', '--no-headers', '-o', 'name']).trim().split('\n')).toEqual(['node1.example.com', 'node2.example.com', 'node3.example.com']);
        expect(box(['exec', '--node', 'node3', '--', 'gnt-cluster', '--version'], a).stdout).toContain(`ganeti ${OTHER}`);
        const t = testOnBox(blank, [], a);
        expect(t.run.steps.filter((s) => s.status === 'failed')).toEqual([]);
        expect(t.run.ganeti).toBe(OTHER);
      } else {
        const b = path.join(work, 'box-m2');
        const host = installedRelease() ?? OTHER;
        expect(box(['up', '--ganeti', OTHER], a, CACHE_ENV, 1200000).code).toBe(0);
        expect(box(['up', '--ganeti', host], b).code).toBe(0);
        expect((JSON.parse(box(['status', '--json'], b).stdout) as StatusJson).ganeti).toEqual({ release: host, root: host === OTHER ? expect.any(String) : null });
        expect(onBox(a, ['gnt-cluster', '--version'])).toContain(`ganeti ${OTHER}`);
        expect(onBox(b, ['gnt-cluster', '--version'])).toContain(`ganeti ${host}`);
        expect(box(['down'], b).code).toBe(0);
        expect(box(['status'], a).code).toBe(0);
      }
      expect(box(['down'], a).code).toBe(0);
      expectHostAsBefore(before, [a]);
    });
  }
});
