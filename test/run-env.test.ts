/**
 * `run --print-env --ganeti R` must equal release R's own OSEnvironment (and the export/import
 * environments of _GetImportExportIoCommand) for many instance shapes, on Ganeti 3.0 and 3.1.
 * Random UUIDs and times are normalised; everything else must match exactly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { def, writeCase } from './helpers/corpus';
import { GanetiAnswer, InstanceSpec, ganetiBatch } from './helpers/ganeti';
import { describeReleases } from './helpers/system';
import { cli, tempDir } from './helpers/cli';

const normalise = (env: Record<string, string>) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, /UUID$|_CTIME$|_MTIME$/.test(k) ? '<norm>' : v]));

interface Shape {
  label: string;
  spec: Omit<InstanceSpec, 'os_dir' | 'os'> & { variant?: string; nics?: (NonNullable<InstanceSpec['nics']>[number] & { vlan?: string })[] };
  args: string[];
  debug?: number;
}

describeReleases('run --print-env equals Ganeti OSEnvironment', {}, (release) => {
  let root: string;
  let osDir: string;
  let osDir10: string;
  let disk1: string;
  let disk2: string;

  beforeAll(() => {
    root = tempDir('runenv');
    const search = path.join(root, 'os');
    osDir = writeCase(search, { name: 'envos', files: def() });
    osDir10 = writeCase(path.join(root, 'os10'), { name: 'oldos', files: def({ ganeti_api_version: '10\n', verify: null }) });
    disk1 = path.join(root, 'disk1.img');
    disk2 = path.join(root, 'disk2.img');
    fs.writeFileSync(disk1, '');
    fs.truncateSync(disk1, 64 * 1024 * 1024);
    fs.writeFileSync(disk2, '');
    fs.truncateSync(disk2, 10 * 1024 * 1024 + 5);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const shapes = (): Shape[] => [
    { label: 'kvm, one file disk, no NIC', spec: { name: 'a.example.com', disks: [{ path: disk1 }] }, args: ['--name', 'a.example.com', '--disk', disk1] },
    {
      label: 'kvm, variant, debug, osparams',
      spec: { name: 'b', variant: 'minimal', disks: [{ path: disk1, size: 2048 }], osparams: { 'root-size': '10G' }, osparams_private: { filesystem: 'xfs' } } as Shape['spec'],
      args: ['--name', 'b', '--variant', 'minimal', '--disk', `${disk1}:2G`, '--osparam', 'root-size=10G', '--osparam-private', 'filesystem=xfs', '--debug'],
      debug: 1,
    },
    {
      label: 'xen-pvm, plain disks, two NICs',
      spec: {
        name: 'c',
        hypervisor: 'xen-pvm',
        disks: [
          { path: disk1, template: 'plain' },
          { path: disk2, template: 'plain', size: 12 },
        ],
        nics: [{ mac: 'aa:00:00:11:22:33', ip: '192.0.2.10' }, { mode: 'routed', link: 'br1', name: 'eth1' }],
      },
      args: ['--name', 'c', '--hypervisor', 'xen-pvm', '--disk-template', 'plain', '--disk', disk1, '--disk', `${disk2}:12`, '--nic', 'mac=aa:00:00:11:22:33,ip=192.0.2.10', '--nic', 'mode=routed,link=br1,name=eth1'],
    },
    {
      label: 'xen-hvm, hv overrides, be overrides',
      spec: {
        name: 'd',
        hypervisor: 'xen-hvm',
        disks: [{ path: disk2 }],
        nics: [{}],
        hvparams: { acpi: false, kernel_path: '/boot/vmlinuz', disk_type: 'ioemu', boot_order: 'cd' },
        beparams: { maxmem: 512, minmem: 256, vcpus: 2, auto_balance: false },
      },
      args: ['--name', 'd', '--hypervisor', 'xen-hvm', '--disk', disk2, '--nic', 'mode=bridged', '--hvparam', 'acpi=false', '--hvparam', 'kernel_path=/boot/vmlinuz', '--hvparam', 'disk_type=ioemu', '--hvparam', 'boot_order=cd', '--beparam', 'maxmem=512M', '--beparam', 'minmem=256', '--beparam', 'vcpus=2', '--beparam', 'auto_balance=False'],
    },
    {
      label: 'lxc, no disks, openvswitch NIC',
      spec: { name: 'e', hypervisor: 'lxc', disks: [], nics: [{ mode: 'openvswitch', link: 'ovs0' }] },
      args: ['--name', 'e', '--hypervisor', 'lxc', '--nic', 'mode=openvswitch,link=ovs0'],
    },
    {
      label: 'kvm, network with subnets and tags',
      spec: {
        name: 'f',
        disks: [{ path: disk1, name: 'root' }],
        nics: [{ ip: '10.0.0.5', network: { name: 'net1', subnet: '10.0.0.0/24', gateway: '10.0.0.1', subnet6: '2001:db8::/64', gateway6: '2001:db8::1', mac_prefix: 'aa:bb:cc', tags: ['prod'] } }],
      },
      args: ['--name', 'f', '--disk', `path=${disk1},name=root`, '--nic', 'ip=10.0.0.5,network=net1', '--network', 'name=net1,subnet=10.0.0.0/24,gateway=10.0.0.1,subnet6=2001:db8::/64,gateway6=2001:db8::1,mac-prefix=aa:bb:cc,tags=prod'],
    },
    {
      label: 'kvm, network name only, kvm hv overrides',
      spec: { name: 'g', disks: [{ path: disk1 }, { path: disk2 }], nics: [{ network: { name: 'lan' } }, {}], hvparams: { nic_type: 'e1000', disk_type: 'scsi', serial_console: false, migration_downtime: 100 } },
      args: ['--name', 'g', '--disk', disk1, '--disk', disk2, '--nic', 'network=lan', '--nic', 'link=xen-br0', '--hvparam', 'nic_type=e1000', '--hvparam', 'disk_type=scsi', '--hvparam', 'serial_console=false', '--hvparam', 'migration_downtime=100'],
    },
    { label: 'chroot', spec: { name: 'h', hypervisor: 'chroot', disks: [{ path: disk1 }] }, args: ['--name', 'h', '--hypervisor', 'chroot', '--disk', disk1] },
    { label: 'fake, sharedfile', spec: { name: 'i', hypervisor: 'fake', disks: [{ path: disk1, template: 'sharedfile' }] }, args: ['--name', 'i', '--hypervisor', 'fake', '--disk-template', 'sharedfile', '--disk', disk1] },
  ];

  const specOf = (s: Shape) => {
    const spec = { ...s.spec, os: s.spec.variant ? `envos+${s.spec.variant}` : 'envos', os_dir: osDir } as InstanceSpec;
    delete (spec as { variant?: string }).variant;
    return spec;
  };
  const oldSpec = (): InstanceSpec => ({ name: 'old', os: 'oldos', os_dir: osDir10, disks: [{ path: disk1 }], osparams: { x: '1' } });
  const ieSpec = (): InstanceSpec => ({ name: 'x', os: 'envos', os_dir: osDir, disks: [{ path: disk1 }, { path: disk2 }], nics: [{}] });
  const stream = (script: string) => path.join(root, `stream-${script}`);
  /** This release's answers, asked in one run of its code: each shape, API 10, export, import. */
  let theirs: GanetiAnswer[];
  beforeAll(() => {
    fs.writeFileSync(stream('import'), '');
    theirs = ganetiBatch(
      [
        ...shapes().map((s) => ({ action: 'env', instance: specOf(s), debug: s.debug ?? 0 })),
        { action: 'env', instance: oldSpec(), debug: 0 },
        { action: 'export', instance: ieSpec(), index: 1, output: stream('export') },
        { action: 'import', instance: ieSpec(), index: 1, input: stream('import') },
      ],
      release,
    );
  });

  it.each(shapes().map((s, i) => [s.label, i]))('%s', async (label, i) => {
    const s = shapes()[i as number];
    const g = theirs[i as number];
    if (!g.ok) throw new Error(`${g.error}\n${g.traceback}`);
    const noNics = s.spec.nics?.length ? [] : ['--no-nics']; // without --nic, run (as gnt-instance add) makes one NIC
    const r = await cli(root, ['run', 'create', '--os-dir', osDir, '--print-env', '--ganeti', release, ...s.args, ...noNics]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(normalise(JSON.parse(r.stdout))).toEqual(normalise(g.env as Record<string, string>));
    expect(Object.keys(JSON.parse(r.stdout))).toEqual(Object.keys(g.env as object));
  });

  it('API 10: no variant, OSP_ still exported', async () => {
    const g = theirs[shapes().length];
    const r = await cli(root, ['run', 'create', '--os-dir', osDir10, '--print-env', '--ganeti', release, '--name', 'old', '--disk', disk1, '--osparam', 'x=1', '--no-nics']);
    expect(r.code).toBe(0);
    expect(normalise(JSON.parse(r.stdout))).toEqual(normalise(g.env as Record<string, string>));
  });

  it('export and import environments match _GetImportExportIoCommand', async () => {
    for (const [k, script] of ['export', 'import'].entries()) {
      const g = theirs[shapes().length + 1 + k];
      const r = await cli(root, ['run', script, '--os-dir', osDir, '--print-env', '--ganeti', release, '--name', 'x', '--disk', disk1, '--disk', disk2, '--nic', 'mode=bridged', '--index', '1']);
      expect(r.code).toBe(0);
      const mine = normalise(JSON.parse(r.stdout));
      expect(mine).toEqual(normalise(g.env as Record<string, string>));
    }
  });
});
