/**
 * rollout and nodes-check without a cluster: Ganeti's outputs parsed (test/fixtures/rollout/,
 * in the formats of gnt_cluster.py, cli.py, gnt_os.py and cmdlib/cluster/verify.py), the node
 * script run for real with bash against unpacked packages, and the per-node verdicts of a
 * rollout driven through a fake gnt-* runner. The real multi-node run is test/rollout-cluster.test.ts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runInProcess, tempDir } from './helpers/cli';
import { describeSystem } from './helpers/system';
import {
  enodeosConcerns,
  parseCommandOutput,
  parseCopyfile,
  parseNodeFacts,
  parseOsDiagnose,
  parseVerifyErrors,
} from '../src/cluster/rollout-parse';
import { DebInfo, RunnerAnswer, dpkgReason, inspectDeb, listTree, listingDigest, nodeScript, nodesCheck, rollout, rolloutCommands } from '../src/cluster/rollout';

jest.setTimeout(60000);
const FIX = path.join(__dirname, 'fixtures', 'rollout');
const fixture = (n: string) => fs.readFileSync(path.join(FIX, n), 'utf8');

describe('parsing what Ganeti printed on a real 3-node cluster', () => {
  it('copyfile and command skip offline nodes with a note on stderr, exit 0 when a copy fails', () => {
    expect(parseCopyfile(fixture('real-offline.stderr'))).toEqual({ failed: new Map(), offline: ['node3.example.com', 'node3.example.com'], other: [] });
    const failed = parseCopyfile(fixture('real-copyfile-failed.stderr'));
    expect([...failed.failed.entries()]).toEqual([['node3.example.com', '/var/tmp/z.deb']]);
  });

  it('command: output per node, the master last, return codes', () => {
    expect(parseCommandOutput(fixture('real-command.stdout'))).toEqual([
      { node: 'node2.example.com', output: 'hi\nerr', returnCode: 3 },
      { node: 'node1.example.com', output: 'hi\nerr', returnCode: 3 },
    ]);
    // dpkg -i failed, but the last command of the line succeeded: return code 0, dpkg's words in the output.
    const [b] = parseCommandOutput(fixture('real-dpkg-fail.stdout'));
    expect(b.returnCode).toBe(0);
    expect(dpkgReason(b.output.split('\n'))).toBe(
      'dpkg: warning: old ganeti-os-debian-os package pre-removal script subprocess returned error exit status 1 / dpkg: error processing archive /var/tmp/y.deb (--install): / there is no script in the new version of the package - giving up',
    );
  });

  it('gnt-os diagnose names nodes by UUID; a node one variant behind is still "valid"', () => {
    const [os] = parseOsDiagnose(fixture('real-os-diagnose.stdout')).filter((o) => o.name === 'debian-os');
    expect(os.global).toBe('valid');
    expect(os.variants).toEqual(['bookworm', 'trixie']);
    expect(os.nodes.map((n) => [n.node, n.valid, n.path])).toEqual([
      ['087aa70f-a7ff-4083-8015-aebe5c5577f0', true, '/usr/share/ganeti/os/debian-os'],
      ['b1b2db3d-3a3b-44e0-9d23-fa195f9352ba', true, '/usr/share/ganeti/os/debian-os'],
      ['d24c58ec-9096-40d2-a8b9-1ace8244d5b5', true, '/usr/share/ganeti/os/debian-os'],
    ]);
  });

  it('gnt-cluster verify: the ENODEOS lines for the OS (different variants; shadowed)', () => {
    const variants = parseVerifyErrors(fixture('real-verify-enodeos.stdout')).filter((e) => e.code === 'ENODEOS');
    expect(variants.map((e) => [e.object, enodeosConcerns(e.message, 'debian-os'), enodeosConcerns(e.message, 'debian')])).toEqual([['node3.example.com', true, false]]);
    expect(variants[0].message).toBe('OS variants list for debian-os differs from reference node node2.example.com: [bookworm, trixie] vs. [bookworm, noble, trixie]');
    const shadow = parseVerifyErrors(fixture('real-verify-shadow.stdout')).filter((e) => e.code === 'ENODEOS');
    expect(shadow.map((e) => [e.level, e.object, enodeosConcerns(e.message, 'debian-os')])).toEqual([['ERROR', 'node2.example.com', true]]);
    expect(parseVerifyErrors(fixture('real-verify-shadow.stdout')).filter((e) => e.code === 'ENODESETUP').length).toBeGreaterThan(0);
  });
});

describe('parsing what gnt-cluster prints (it exits 0 when nodes fail)', () => {
  it('copyfile: failed copies and skipped offline nodes', () => {
    const r = parseCopyfile(fixture('copyfile-failed.stderr'));
    expect([...r.failed.keys()]).toEqual(['node2.example.com']);
    expect(r.failed.get('node2.example.com')).toBe('/var/tmp/ganeti-os-rollout.0123456789ab.ganeti-os-blank-os_1_all.deb');
    expect(r.offline).toEqual(['node3.example.com']);
    expect(r.other).toEqual([]);
    expect(parseCopyfile('Note: skipping offline node(s): a.example.com, b.example.com\nsomething else\n')).toEqual({ failed: new Map(), offline: ['a.example.com', 'b.example.com'], other: ['something else'] });
  });

  it('command: one block per node, output and return code, the master last', () => {
    const blocks = parseCommandOutput(fixture('command.stdout'));
    expect(blocks.map((b) => [b.node, b.returnCode])).toEqual([
      ['node2.example.com', 255],
      ['node3.example.com', 0],
      ['node1.example.com', 3],
    ]);
    expect(blocks[0].output).toMatch(/^ssh: connect to host node2\.example\.com port 22: Connection refused$/);
    expect(blocks[1].output).toBe('hello from node3\nreturn code = 7 (printed by the command itself)');
    expect(blocks[2].output).toBe('');
  });

  it('gnt-os diagnose: global status, variants, each node with path and hidden entries', () => {
    const d = parseOsDiagnose(fixture('os-diagnose.stdout'));
    expect(d.map((o) => [o.name, o.global])).toEqual([
      ['blank-os', 'partial valid'],
      ['debootstrap', 'valid'],
    ]);
    const b = d[0];
    expect(b.variants).toEqual(['default', 'extra']);
    expect(b.nodes.map((n) => [n.node, n.valid, n.path, n.hidden])).toEqual([
      ['5d1ff0f2-0000-4000-8000-000000000001', true, '/usr/share/ganeti/os/blank-os', []],
      ['5d1ff0f2-0000-4000-8000-000000000003', true, '/srv/ganeti/os/blank-os', ['/usr/share/ganeti/os/blank-os']],
      ['5d1ff0f2-0000-4000-8000-000000000002', false, '/usr/share/ganeti/os/blank-os', []],
    ]);
    expect(b.nodes[2].status).toBe("invalid - Missing required script 'rename'");
  });

  it('gnt-cluster verify --error-codes: ENODEOS lines, and which name an OS', () => {
    const errs = parseVerifyErrors(fixture('cluster-verify.stdout'));
    expect(errs.map((e) => [e.level, e.code, e.object])).toEqual([
      ['WARNING', 'ENODESETUP', 'node1.example.com'],
      ['ERROR', 'ENODEOS', 'node2.example.com'],
      ['ERROR', 'ENODEOS', 'node3.example.com'],
      ['ERROR', 'ENODEOS', 'node3.example.com'],
    ]);
    const os = errs.filter((e) => e.code === 'ENODEOS');
    expect(os.map((e) => enodeosConcerns(e.message, 'blank-os'))).toEqual([true, true, false]);
    expect(enodeosConcerns('OSes present on reference node node1.example.com but missing on this node: a, blank-os', 'blank-os')).toBe(true);
    expect(enodeosConcerns('OSes present on reference node node1.example.com but missing on this node: blank-os2', 'blank-os')).toBe(false);
    expect(enodeosConcerns("node hasn't returned valid OS data", 'blank-os')).toBe(true);
  });
});

let work: string;
beforeEach(() => {
  work = tempDir('rollout');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const cli = (args: string[]) => runInProcess(args, { cwd: work, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });

/** A packed blank definition, and its OS directory unpacked into a fake node's search path. */
async function packed(): Promise<{ info: DebInfo; deb: string; unpack: (node: string) => string[] }> {
  expect((await cli(['new', 'blank-os', '--template', 'blank', '--yes', '--variant', 'default', '--variant', 'extra'])).code).toBe(0);
  const r = await cli(['pack', '--os-dir', 'blank-os', '--maintainer', 'Site Admin <admin@example.org>']);
  expect(r.code).toBe(0);
  const deb = r.stdout.trim();
  const info = inspectDeb(deb);
  /** The node's search path, the package unpacked at its end. */
  const unpack = (node: string) => {
    const root = path.join(work, node);
    expect(spawnSync('dpkg-deb', ['-x', deb, root]).status).toBe(0);
    return ['/srv/ganeti/os', '/usr/local/lib/ganeti/os', '/usr/lib/ganeti/os', '/usr/share/ganeti/os'].map((d) => path.join(root, d));
  };
  return { info, deb, unpack };
}

/** What the node script prints on a node whose search path is `search` (the real script, run with bash). */
function nodeOutput(info: DebInfo, search: string[], head: string[]): string {
  const r = spawnSync('bash', ['-c', nodeScript({ osNames: [info.osName], searchPath: search })], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  // As the node prints it: paths without the test's scratch root.
  const root = search[0].slice(0, -'/srv/ganeti/os'.length);
  return [...head, r.stdout.trim().split(root).join('')].join('\n');
}

const SEP = '-'.repeat(48);
const block = (node: string, output: string, rc = 0) => `${SEP}\nnode: ${node}\n${output}\nreturn code = ${rc}\n`;
const NODES = ['node1.example.com', 'node2.example.com', 'node3.example.com'];
const uuid = (i: number) => `5d1ff0f2-0000-4000-8000-00000000000${i + 1}`;

interface FakeCluster {
  offline?: string[];
  copyFailed?: string[];
  /** Per node: its block in gnt-cluster command's output (absent: offline). */
  blocks: Record<string, { output: string; rc?: number }>;
  diagnose?: Record<string, string>;
  /** gnt-os diagnose raises, as Ganeti 3.0 does when an OS is shadowed on a node. */
  diagnoseCrash?: boolean;
  verify?: string;
}

/** A Runner answering like gnt-* on the master node1 of a 3-node cluster. */
function fakeRunner(c: FakeCluster, osName: string, seen: string[][]) {
  return (argv: string[]): RunnerAnswer => {
    seen.push(argv);
    const off = c.offline ?? [];
    const note = off.length ? `Note: skipping offline node(s): ${off.join(', ')}\n` : '';
    if (argv[0] === 'gnt-node') return { status: 0, stdout: NODES.map((n, i) => `${n}|${uuid(i)}|${off.includes(n) ? 'Y' : 'N'}|default|${i === 0 ? 'Y' : 'N'}`).join('\n') + '\n', stderr: '' };
    if (argv[1] === 'copyfile') {
      return { status: 0, stdout: '', stderr: note + (c.copyFailed ?? []).map((n) => `Copy of file ${argv[argv.length - 1]} to node ${n}:22 failed\n`).join('') };
    }
    if (argv[1] === 'command') {
      const order = [...NODES.slice(1), NODES[0]].filter((n) => !off.includes(n));
      return { status: 0, stdout: order.map((n) => block(n, c.blocks[n].output, c.blocks[n].rc ?? 0)).join(''), stderr: note };
    }
    if (argv[0] === 'gnt-os' && c.diagnoseCrash) {
      return { status: 1, stdout: '', stderr: 'Traceback (most recent call last):\n  File "/usr/sbin/gnt-os", line 21, in <module>\nValueError: too many values to unpack (expected 6)\n' };
    }
    if (argv[0] === 'gnt-os') {
      const lines = [`OS: ${osName} [global status: valid]`, '  Variants: [default, extra]'];
      NODES.forEach((n, i) => {
        if (!off.includes(n)) lines.push(`  Node: ${uuid(i)}, status: ${c.diagnose?.[n] ?? `valid (path: /usr/share/ganeti/os/${osName}) [API versions: 20, 15, 10] [variants: default, extra] [no parameters] [trusted]`}`);
      });
      return { status: 0, stdout: lines.join('\n') + '\n\n', stderr: '' };
    }
    if (argv[1] === 'verify') return { status: 1, stdout: c.verify ?? 'Mon Nov 30 10:00:00 2026   - WARNING:ENODESETUP:node:node1.example.com:no /proc/sysrq-trigger\n', stderr: '' };
    throw new Error(`unexpected command ${argv.join(' ')}`);
  };
}

describeSystem('rollout: per-node verdicts', { commands: ['dpkg-deb', 'dpkg', 'sha256sum'] }, () => {
  it('the node script lists what the package installs, finds an edited file and a shadowing copy', async () => {
    const { info, unpack } = await packed();
    const search = unpack('n1');
    const facts = parseNodeFacts(nodeOutput(info, search, []));
    const o = facts.os.get('blank-os')!;
    expect(o.path).toBe('/usr/share/ganeti/os/blank-os');
    expect(listingDigest(o.files)).toBe(listingDigest(info.files));
    expect(listingDigest(info.files)).toBe(listingDigest(listTree(path.join(search[3], 'blank-os'))));
    fs.appendFileSync(path.join(search[3], 'blank-os', 'create'), '# by hand\n');
    fs.mkdirSync(path.join(search[0], 'blank-os'), { recursive: true });
    const again = parseNodeFacts(nodeOutput(info, search, [])).os.get('blank-os')!;
    expect(again.path).toBe('/srv/ganeti/os/blank-os');
    expect(again.shadowed).toEqual(['/usr/share/ganeti/os/blank-os']);
  });

  it('reports each node: done, failed with the reason (dpkg, copy, edited create, diagnose, ENODEOS), offline', async () => {
    const { info, deb, unpack } = await packed();
    const good = (node: string) => nodeOutput(info, unpack(node), ['GOS|install|installed', 'GOS|pkg|ii |1']);
    const seen: string[][] = [];
    const clean = rollout(info, { deb }, fakeRunner({ blocks: Object.fromEntries(NODES.map((n) => [n, { output: good(n) }])) }, 'blank-os', seen), () => undefined);
    expect(clean.nodes.map((n) => [n.node, n.state, n.problems])).toEqual(NODES.map((n) => [n, 'done', []]));
    expect(clean.ok).toBe(true);
    // Exactly the commands --dry-run shows, through Ganeti's tools only (cp stages the file on the master).
    const planned = rolloutCommands(info, { deb }).commands;
    expect(seen).toEqual(planned.filter((c) => c[0] !== 'cp'));
    expect(fs.existsSync(rolloutCommands(info, { deb }).staged)).toBe(false);

    // node2: dpkg -i fails; node3: offline; node1 (master): create edited by hand, so dpkg --verify and the digest disagree.
    const edited = unpack('edited');
    fs.appendFileSync(path.join(edited[3], 'blank-os', 'create'), '# by hand\n');
    const c: FakeCluster = {
      offline: ['node3.example.com'],
      blocks: {
        'node2.example.com': {
          output: [
            'GOS|install|failed|1',
            "GOS|dpkg|dpkg: error processing archive /var/tmp/x.deb (--install):",
            "GOS|dpkg| new ganeti-os-blank-os package pre-installation script subprocess returned error exit status 1",
            'GOS|pkg|ii |0.9',
          ].join('\n'),
        },
        'node1.example.com': { output: nodeOutput(info, edited, ['GOS|install|already', 'GOS|pkg|ii |1', 'GOS|verify|??5??????   /usr/share/ganeti/os/blank-os/create']) },
      },
      diagnose: { 'node2.example.com': "invalid - Missing required script 'rename' (path: /usr/share/ganeti/os/blank-os) [API versions: 20] [no variants] [no parameters] [trusted]" },
      verify: "  - ERROR:ENODEOS:node:node2.example.com:OS variants for blank-os differs from reference node node1.example.com: [] vs. ['default', 'extra']\n",
    };
    const bad = rollout(info, { deb }, fakeRunner(c, 'blank-os', []), () => undefined);
    const by = Object.fromEntries(bad.nodes.map((n) => [n.node, n]));
    expect(bad.ok).toBe(false);
    expect(by['node3.example.com'].state).toBe('offline');
    expect(by['node2.example.com'].state).toBe('failed');
    expect(by['node2.example.com'].problems.join('\n')).toContain('dpkg -i failed (exit 1): dpkg: error processing archive /var/tmp/x.deb (--install): / new ganeti-os-blank-os package pre-installation script');
    expect(by['node2.example.com'].problems.join('\n')).toContain('installed: ganeti-os-blank-os 0.9 (ii), expected 1');
    expect(by['node2.example.com'].problems.join('\n')).toContain("gnt-os diagnose: invalid - Missing required script 'rename'");
    expect(by['node2.example.com'].problems.join('\n')).toContain('gnt-cluster verify: ERROR:ENODEOS: OS variants for blank-os differs');
    expect(by['node1.example.com'].state).toBe('failed');
    expect(by['node1.example.com'].problems).toContain('dpkg --verify: ??5??????   /usr/share/ganeti/os/blank-os/create');
    expect(by['node1.example.com'].problems.join('\n')).toMatch(/blank-os differs from the package: create differs \(content\)/);

    // A failed copy, and a node gnt-cluster command could not reach; an edited conffile is only a note.
    const c2: FakeCluster = {
      copyFailed: ['node2.example.com'],
      blocks: {
        'node1.example.com': { output: good('m') + '\nGOS|verify|??5?????? c /etc/ganeti/blank-os/defaults.conf' },
        'node2.example.com': { output: 'GOS|install|copy-missing\nGOS|pkg||' },
        'node3.example.com': { output: 'ssh: connect to host node3.example.com port 22: Connection refused', rc: 255 },
      },
    };
    const r2 = rollout(info, { deb }, fakeRunner(c2, 'blank-os', []), () => undefined);
    const by2 = Object.fromEntries(r2.nodes.map((n) => [n.node, n]));
    expect(by2['node1.example.com'].state).toBe('done');
    expect(by2['node1.example.com'].notes).toEqual(['site edit (conffile, kept by upgrades): /etc/ganeti/blank-os/defaults.conf']);
    expect(by2['node2.example.com'].problems[0]).toBe('gnt-cluster copyfile could not copy the package there');
    expect(by2['node3.example.com'].problems[0]).toBe('gnt-cluster command: return code 255: ssh: connect to host node3.example.com port 22: Connection refused');

    // gnt-os diagnose crashing is a warning of the run; the nodes keep their own verdicts.
    const r3 = rollout(info, { deb }, fakeRunner({ blocks: Object.fromEntries(NODES.map((n) => [n, { output: good(n) }])), diagnoseCrash: true }, 'blank-os', []), () => undefined);
    expect(r3.nodes.map((n) => n.state)).toEqual(['done', 'done', 'done']);
    expect(r3.warnings).toEqual([expect.stringContaining('gnt-os diagnose crashed (ValueError: too many values to unpack (expected 6))')]);
  });

  it('nodes-check names the nodes and files that differ from the majority', async () => {
    const { info, unpack } = await packed();
    const outputs: Record<string, string> = {};
    for (const n of NODES) outputs[n] = nodeOutput(info, unpack(n), []);
    const odd = unpack('odd');
    fs.appendFileSync(path.join(odd[3], 'blank-os', 'lib', 'steps.sh'), '# local\n');
    fs.chmodSync(path.join(odd[3], 'blank-os', 'import'), 0o644);
    outputs['node3.example.com'] = nodeOutput(info, odd, []);
    const runner = (argv: string[]): RunnerAnswer => {
      if (argv[0] === 'gnt-node') return { status: 0, stdout: NODES.map((n, i) => `${n}|${uuid(i)}|N|default|${i === 0 ? 'Y' : 'N'}`).join('\n'), stderr: '' };
      expect(argv.slice(0, 2)).toEqual(['gnt-cluster', 'command']);
      return { status: 0, stdout: NODES.map((n) => block(n, outputs[n])).join(''), stderr: '' };
    };
    const r = nodesCheck(['blank-os'], {}, runner);
    expect(r.ok).toBe(false);
    const nodes = Object.fromEntries(r.os[0].nodes.map((n) => [n.node, n]));
    expect(nodes['node1.example.com'].same).toBe(true);
    expect(nodes['node2.example.com'].same).toBe(true);
    expect(nodes['node3.example.com'].differences).toEqual(['import differs (mode 644, expected 755)', 'lib/steps.sh differs (content)']);
  });
});

describeSystem('rollout: command line', { commands: ['dpkg-deb'] }, () => {
  it('--dry-run prints the exact commands, quoted for a shell, and runs nothing', async () => {
    const { info, deb } = await packed();
    const r = await cli(['rollout', deb, '--dry-run', '-n', 'node2.example.com', '-n', 'node3.example.com']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const staged = `/var/tmp/ganeti-os-rollout.${info.sha256.slice(0, 12)}.ganeti-os-blank-os_1_all.deb`;
    expect(lines[0]).toBe("gnt-node list --no-headers '--separator=|' -o name,uuid,offline,group,master");
    expect(lines[1]).toBe(`cp ${deb} ${staged}`);
    expect(lines[2]).toBe(`gnt-cluster copyfile -n node2.example.com -n node3.example.com ${staged}`);
    expect(r.stdout).toContain("gnt-cluster command -n node2.example.com -n node3.example.com 'bash --norc -c '\\''export LC_ALL=C");
    expect(r.stdout).toContain('dpkg --force-confdef --force-confold -i "$deb"');
    expect(lines.slice(-2)).toEqual(['gnt-os diagnose', 'gnt-cluster verify --error-codes']);
    expect(fs.existsSync(staged)).toBe(false);
    const notDeb = await cli(['rollout', path.join(work, 'blank-os', 'create'), '--dry-run']);
    expect(notDeb.code).toBe(1);
    expect(notDeb.stderr).toContain('is not a Debian package');
  });
});
