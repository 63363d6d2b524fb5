/**
 * Seeded random instance shapes: `run --print-env --ganeti R` against release R's own
 * OSEnvironment (and the import/export environments) for every hypervisor, disk template, NIC
 * and parameter mix, on Ganeti 3.0 and 3.1 (the hypervisor parameters drawn from that release's
 * table). CI runs every shape on the release installed here and a third of them on the other;
 * the full matrix (FULL_MATRIX) runs them all on both.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GanetiDefaultsTable, ganetiDefaults } from '../src/ganeti/defaults';
import { GanetiRelease, installedRelease } from '../src/ganeti/releases';
import { def, writeCase } from './helpers/corpus';
import { cli, tempDir } from './helpers/cli';
import { InstanceSpec, ganetiBatch } from './helpers/ganeti';
import { describeReleases, matrixCases } from './helpers/system';

let seed = 4242;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)];
const words = ['a', 'x y', 'br0', '/dev/null', 'ünï', 'k=v', 'c,d', '', '0', 'None', 'True'];

const normalise = (env: Record<string, string>) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, /UUID$|_CTIME$|_MTIME$/.test(k) ? '<norm>' : v]));

interface Case {
  spec: InstanceSpec;
  args: string[];
  debug: number;
  script: 'create' | 'export' | 'import' | 'rename';
  index: number;
}

function makeCase(i: number, osDir: string, disks: string[], table: GanetiDefaultsTable): Case {
  const hv = pick(table.hypervisors);
  const args: string[] = ['--name', `inst${i}.example.com`, '--hypervisor', hv];
  const spec: InstanceSpec = { name: `inst${i}.example.com`, os: 'fz', os_dir: osDir, hypervisor: hv, disks: [], nics: [] };
  const variant = pick([undefined, 'default', 'minimal']);
  if (variant) {
    spec.os = `fz+${variant}`;
    args.push('--variant', variant);
  }
  const template = pick(['file', 'plain', 'sharedfile'] as const);
  args.push('--disk-template', template);
  const nd = int(4);
  for (let d = 0; d < nd; d++) {
    const p = pick(disks);
    const named = rnd() < 0.3;
    const size = rnd() < 0.5 ? 1 + int(5000) : undefined;
    spec.disks.push({ path: p, template, ...(size ? { size } : {}), ...(named ? { name: `disk${d}` } : {}) });
    if (named) args.push('--disk', `path=${p},name=disk${d}${size ? `,size=${size}` : ''}`);
    else args.push('--disk', size ? `${p}:${size}` : p);
  }
  const nn = int(4);
  if (!nn) args.push('--no-nics');
  for (let n = 0; n < nn; n++) {
    const nic: NonNullable<InstanceSpec['nics']>[number] = {};
    const kv: string[] = [];
    if (rnd() < 0.5) {
      nic.mac = `aa:00:00:${int(256).toString(16).padStart(2, '0')}:00:0${n}`;
      kv.push(`mac=${nic.mac}`);
    }
    if (rnd() < 0.5) {
      nic.ip = `192.0.2.${1 + int(250)}`;
      kv.push(`ip=${nic.ip}`);
    }
    if (rnd() < 0.5) {
      nic.mode = pick(table.nicModes);
      kv.push(`mode=${nic.mode}`);
    }
    if (rnd() < 0.5) {
      nic.link = pick(['br0', 'xen-br0', 'ovs1', '']);
      kv.push(`link=${nic.link}`);
    }
    if (rnd() < 0.3) {
      nic.name = `eth${n}`;
      kv.push(`name=${nic.name}`);
    }
    if (rnd() < 0.3) {
      const net: Record<string, unknown> = { name: `net${n}` };
      const nkv = [`name=net${n}`];
      if (rnd() < 0.5) {
        net.subnet = `10.${n}.0.0/24`;
        net.gateway = `10.${n}.0.1`;
        nkv.push(`subnet=10.${n}.0.0/24`, `gateway=10.${n}.0.1`);
      }
      if (rnd() < 0.5) {
        net.subnet6 = `2001:db8:${n}::/64`;
        nkv.push(`subnet6=2001:db8:${n}::/64`);
      }
      if (rnd() < 0.5) {
        net.mac_prefix = 'aa:bb:cc';
        nkv.push('mac-prefix=aa:bb:cc');
      }
      if (rnd() < 0.5) {
        net.tags = ['t1'];
        nkv.push('tags=t1');
      }
      nic.network = net;
      kv.push(`network=net${n}`);
      args.push('--network', nkv.join(','));
    }
    spec.nics!.push(nic);
    args.push('--nic', kv.length ? kv.join(',') : 'mode=bridged');
    if (!kv.length) nic.mode = 'bridged';
  }
  const hvp: Record<string, unknown> = {};
  for (const p of table.hv[hv]) {
    if (rnd() > 0.15) continue;
    if (p.type === 'bool') {
      const b = rnd() < 0.5;
      hvp[p.key] = b;
      args.push('--hvparam', `${p.key}=${b ? pick(['true', 'True', 'TRUE']) : pick(['false', 'False'])}`);
    } else if (p.type === 'int') {
      const v = int(100000);
      hvp[p.key] = v;
      args.push('--hvparam', `${p.key}=${v}`);
    } else {
      const v = pick(words.filter((w) => w !== 'None'));
      hvp[p.key] = v;
      args.push('--hvparam', `${p.key}=${v}`);
    }
  }
  const bep: Record<string, unknown> = {};
  for (const p of table.be) {
    if (rnd() > 0.3) continue;
    const v = p.type === 'bool' ? rnd() < 0.5 : p.type === 'size' ? 4 * (1 + int(4096)) : 1 + int(64);
    bep[p.key] = v;
    args.push('--beparam', `${p.key}=${String(v).toLowerCase()}`);
  }
  spec.hvparams = hvp;
  spec.beparams = bep;
  const osp: Record<string, string> = {};
  for (const k of ['root-size', 'filesystem']) {
    if (rnd() < 0.4) {
      osp[k] = pick(words);
      args.push('--osparam', `${k}=${osp[k]}`);
    }
  }
  spec.osparams = osp;
  const script = nd ? pick(['create', 'create', 'export', 'import', 'rename'] as const) : pick(['create', 'rename'] as const);
  const index = nd ? int(nd) : 0;
  const debug = script === 'create' || script === 'rename' ? int(2) : 0;
  if (debug) args.push('--debug');
  return { spec, args, debug, script, index };
}

const SHAPES = Array.from({ length: 30 }, (_, i) => i);
const shapesFor = (release: GanetiRelease) => matrixCases(SHAPES, (i) => release === (installedRelease() ?? '3.0') || i % 3 === 0);

describeReleases('run --print-env on random instance shapes', {}, (release) => {
  let root: string;
  let osDir: string;
  let disks: string[];
  beforeAll(() => {
    root = tempDir('envfuzz');
    osDir = writeCase(path.join(root, 'os'), { name: 'fz', files: def() });
    disks = [1, 7, 64].map((mib, i) => {
      const p = path.join(root, `d${i}.img`);
      fs.writeFileSync(p, '');
      fs.truncateSync(p, mib * 1024 * 1024 + i);
      return p;
    });
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  /** This release's answer for each shape, asked in one run of its code. */
  const cases = new Map<number, { c: Case; theirs: Record<string, string> }>();
  beforeAll(() => {
    const made = shapesFor(release).map((i) => {
      seed = 1000 + i * 7919;
      return { i, c: makeCase(i, osDir, disks, ganetiDefaults(release)) };
    });
    const answers = ganetiBatch(
      made.map(({ i, c }) => {
        if (c.script === 'create' || c.script === 'rename') return { action: 'env', instance: c.spec, debug: c.debug };
        const f = path.join(root, `stream${i}`);
        fs.writeFileSync(f, '');
        return { action: c.script, instance: c.spec, index: c.index, [c.script === 'export' ? 'output' : 'input']: c.script === 'export' ? '/dev/null' : f };
      }),
      release,
    );
    made.forEach(({ i, c }, k) => {
      const g = answers[k];
      if (c.script === 'create' || c.script === 'rename') {
        if (!g.ok) throw new Error(`shape ${i}: ${g.error}`);
      } else {
        c.args.push('--index', String(c.index));
      }
      let theirs = g.env as Record<string, string>;
      if (c.script === 'rename') theirs = { ...theirs, OLD_INSTANCE_NAME: 'instance1.example.com' }; // run's default: the fresh cluster's instance name
      cases.set(i, { c, theirs });
    });
  });

  it.each(shapesFor(release).map((i) => [i]))('shape %i', async (i) => {
    const { c, theirs } = cases.get(i as number)!;
    const r = await cli(root, ['run', c.script, '--os-dir', osDir, '--print-env', '--ganeti', release, ...c.args]);
    if (r.code !== 0) throw new Error(`${r.stderr}\nargs: ${c.args.join(' ')}`);
    const mine = JSON.parse(r.stdout);
    expect(normalise(mine)).toEqual(normalise(theirs));
    if (c.script === 'create') expect(Object.keys(mine)).toEqual(Object.keys(theirs));
  });
});
