/**
 * The debian template's network through Ganeti 3.0's own code: one instance is created
 * (InstanceOsAdd), then RunRenameInstance rewrites its systemd-networkd files for every NIC shape
 * Ganeti can pass (bridged, routed, openvswitch; with and without a Ganeti network, its subnet
 * and gateway, IPv6 subnet and gateway; several NICs, which one gets the preferred default
 * route), and the files are read back from the disk. Every NIC with an address must end with a
 * default route (or DHCP, said in the log). The directives written must be known to the
 * instance's own systemd-networkd.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceSpec, instanceOsAdd, runRename } from './helpers/ganeti';
import { resources, sparseDisk, withMounted } from './helpers/disks';
import { DebianWorkspace, debianWorkspace, newestLog as newestLogIn, releaseWorkspace } from './helpers/debian';
import { describeSystem } from './helpers/system';

const NEEDS = ['mmdebstrap', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'blkid'];

type Nic = NonNullable<InstanceSpec['nics']>[number];

/** The systemd-networkd file of one NIC, as sections of key=value lines (repeated keys kept). */
type Unit = { section: string; keys: [string, string][] }[];
function parseUnit(text: string): Unit {
  const out: Unit = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) out.push({ section: m[1], keys: [] });
    else out[out.length - 1].keys.push([line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
  }
  return out;
}
const values = (u: Unit, section: string, key: string) => u.filter((s) => s.section === section).flatMap((s) => s.keys.filter(([k]) => k === key).map(([, v]) => v));
/** Default routes of a unit: [destination-or-gateway, metric]. */
function defaultRoutes(u: Unit): { via: string; metric: number; onlink: boolean }[] {
  return u
    .filter((s) => s.section === 'Route')
    .map((s) => Object.fromEntries(s.keys))
    .filter((r) => r.Gateway || r.Destination === '0.0.0.0/0' || r.Destination === '::/0')
    .map((r) => ({ via: r.Gateway ?? `${r.Destination} scope ${r.Scope}`, metric: Number(r.Metric), onlink: r.GatewayOnLink === 'yes' || r.Scope === 'link' }));
}
const dhcpMetric = (u: Unit) => Number(values(u, 'DHCPv4', 'RouteMetric')[0]);

describeSystem('debian template: network shapes through Ganeti', { root: true, ganeti: true, commands: NEEDS }, () => {
  let ws: DebianWorkspace;
  let defaults: string;
  let baseDefaults: string;
  let d0: string;
  const NAME = 'net1.example.com';

  const instance = (nics: Nic[], osparams: Record<string, string> = {}): InstanceSpec => ({
    name: NAME,
    os: 'debian-os+bookworm',
    os_dir: ws.osDir,
    disks: [{ path: d0 }],
    nics,
    hvparams: { kernel_path: '' },
    osparams: { 'install-kernel': 'no', ...osparams },
  });
  const setConfig = (lines: string[]) => fs.writeFileSync(defaults, baseDefaults + lines.join('\n') + '\n');
  const newestLog = (prefix: string) => newestLogIn(ws.logdir, prefix);
  /** Rename (names equal) through Ganeti with these NICs; the units read back, by NIC index, and the log. */
  function shape(nics: Nic[], config: string[] = [], osparams: Record<string, string> = {}) {
    setConfig(config);
    // Ganeti's log names have a one-second resolution: a fresh directory per run.
    fs.rmSync(ws.logdir, { recursive: true, force: true });
    try {
      const r = runRename(instance(nics, osparams), NAME, ws.logdir);
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
    } finally {
      setConfig([]);
    }
    expect(resources(ws.work, ws.tmp)).toEqual({ loops: [], mounts: [], temps: [] });
    const units = withMounted(d0, (root) => {
      const dir = path.join(root, 'etc/systemd/network');
      const out: Record<number, { text: string; unit: Unit }> = {};
      for (const f of fs.readdirSync(dir)) {
        const m = /^10-ganeti-nic(\d+)\.network$/.exec(f);
        if (m) {
          const text = fs.readFileSync(path.join(dir, f), 'utf8');
          out[Number(m[1])] = { text, unit: parseUnit(text) };
        }
      }
      return { files: out, hosts: fs.readFileSync(path.join(root, 'etc/hosts'), 'utf8') };
    });
    return { ...units, log: newestLog('rename-') };
  }

  beforeAll(() => {
    ws = debianWorkspace('debian-net');
    defaults = path.join(ws.osDir, 'defaults.conf');
    baseDefaults = fs.readFileSync(defaults, 'utf8');
    d0 = sparseDisk(path.join(ws.work, 'd0.img'), 2048);
  });

  afterAll(() => releaseWorkspace(ws));

  it('create: a bridged NIC with an IP and nothing else uses DHCP and says so; routed gets an on-link default route; no /32 without a route', () => {
    const nics: Nic[] = [
      { mac: 'aa:00:00:00:01:00', ip: '192.0.2.10', mode: 'bridged', link: 'xen-br0' },
      { mac: 'aa:00:00:00:01:01', ip: '198.51.100.20', mode: 'routed', link: '100' },
    ];
    const r = instanceOsAdd(instance(nics), { logdir: ws.logdir });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    const log = newestLog('add-');
    expect(log).toMatch(/NIC 0 \(bridged on xen-br0\): has the IP 192\.0\.2\.10 but no Ganeti network and no NETWORK_XEN_BR0_PREFIX\/_GATEWAY in the configuration, so it uses DHCP/);
    expect(log).toMatch(/NIC 1 \(routed on 100\): static 198\.51\.100\.20\/32, default route on-link through the node/);
    withMounted(d0, (root) => {
      const n0 = parseUnit(fs.readFileSync(path.join(root, 'etc/systemd/network/10-ganeti-nic0.network'), 'utf8'));
      expect(values(n0, 'Match', 'MACAddress')).toEqual(['aa:00:00:00:01:00']);
      expect(values(n0, 'Network', 'DHCP')).toEqual(['yes']);
      expect(values(n0, 'Network', 'Address')).toEqual([]);
      const n1 = parseUnit(fs.readFileSync(path.join(root, 'etc/systemd/network/10-ganeti-nic1.network'), 'utf8'));
      expect(values(n1, 'Network', 'Address')).toEqual(['198.51.100.20/32']);
      expect(defaultRoutes(n1)).toEqual([{ via: '0.0.0.0/0 scope link', metric: 1001, onlink: true }]);
      // NIC 0 has no static address: the name resolves locally, not to a DHCP-managed IP.
      expect(fs.readFileSync(path.join(root, 'etc/hosts'), 'utf8')).toMatch(/^127\.0\.1\.1\tnet1\.example\.com net1$/m);
      // Every directive written is one this instance's systemd-networkd knows.
      // (its directive table holds each as "Section.Key").
      const known = fs.readFileSync(path.join(root, 'lib/systemd/systemd-networkd')).toString('latin1');
      expect(known.includes('Route.NoSuchDirective')).toBe(false);
      for (const d of ['Route.GatewayOnLink', 'Route.Scope', 'Route.Metric', 'Route.Destination', 'Route.Gateway', 'DHCPv4.RouteMetric', 'IPv6AcceptRA.RouteMetric', 'Network.IPv6AcceptRA', 'Network.Address', 'Network.DHCP']) {
        expect([d, known.includes(d)]).toEqual([d, true]);
      }
    });
  }, 1200_000);

  const net4 = { name: 'lan', subnet: '192.0.2.0/24', gateway: '192.0.2.1' };
  const cases: [string, Nic, string[], { address?: string[]; dhcp?: boolean; routes: { via: string; onlink: boolean }[]; ra?: boolean; log: RegExp }][] = [
    ['bridged, IP, no network, nothing configured', { ip: '192.0.2.10', mode: 'bridged', link: 'br0' }, [], { dhcp: true, routes: [], log: /NIC 0 \(bridged on br0\): has the IP 192\.0\.2\.10 but no Ganeti network .* so it uses DHCP/ }],
    ['bridged, IP, no network, NETWORK_<LINK>_PREFIX/GATEWAY', { ip: '192.0.2.10', mode: 'bridged', link: 'br-lan.5' }, ['NETWORK_BR_LAN_5_PREFIX=24', 'NETWORK_BR_LAN_5_GATEWAY=192.0.2.254'], { address: ['192.0.2.10/24'], routes: [{ via: '192.0.2.254', onlink: true }], log: /static 192\.0\.2\.10\/24, default route via 192\.0\.2\.254/ }],
    ['bridged, IP, no network, only NETWORK_<LINK>_GATEWAY', { ip: '192.0.2.10', mode: 'bridged', link: 'br0' }, ['NETWORK_BR0_GATEWAY=192.0.2.254'], { address: ['192.0.2.10/32'], routes: [{ via: '192.0.2.254', onlink: true }], log: /static 192\.0\.2\.10\/32, default route via 192\.0\.2\.254/ }],
    ['bridged, IP, network with subnet and gateway', { ip: '192.0.2.10', mode: 'bridged', link: 'br0', network: net4 }, [], { address: ['192.0.2.10/24'], routes: [{ via: '192.0.2.1', onlink: true }], log: /static 192\.0\.2\.10\/24 \(Ganeti network lan\), default route via 192\.0\.2\.1/ }],
    ['bridged, IP, network gateway beats NETWORK_<LINK>_GATEWAY', { ip: '192.0.2.10', mode: 'bridged', link: 'br0', network: net4 }, ['NETWORK_BR0_GATEWAY=192.0.2.254'], { address: ['192.0.2.10/24'], routes: [{ via: '192.0.2.1', onlink: true }], log: /default route via 192\.0\.2\.1\b/ }],
    ['bridged, IP, network with a subnet and no gateway', { ip: '192.0.2.10', mode: 'bridged', link: 'br0', network: { name: 'backend', subnet: '192.0.2.0/26' } }, [], { address: ['192.0.2.10/26'], routes: [], log: /no default route through it \(Ganeti network backend has no gateway and no NETWORK_BR0_GATEWAY/ }],
    ['bridged, IP, network without gateway, NETWORK_<LINK>_GATEWAY fills it in', { ip: '192.0.2.10', mode: 'bridged', link: 'br0', network: { name: 'backend', subnet: '192.0.2.0/26' } }, ['NETWORK_BR0_GATEWAY=192.0.2.62'], { address: ['192.0.2.10/26'], routes: [{ via: '192.0.2.62', onlink: true }], log: /default route via 192\.0\.2\.62/ }],
    ['routed, IP, no network', { ip: '198.51.100.20', mode: 'routed', link: '100' }, [], { address: ['198.51.100.20/32'], routes: [{ via: '0.0.0.0/0 scope link', onlink: true }], log: /NIC 0 \(routed on 100\): static 198\.51\.100\.20\/32, default route on-link/ }],
    ['routed, IP, network with subnet and gateway', { ip: '192.0.2.10', mode: 'routed', link: 'rt', network: net4 }, [], { address: ['192.0.2.10/24'], routes: [{ via: '192.0.2.1', onlink: true }], log: /default route via 192\.0\.2\.1/ }],
    ['routed, IP, network with a subnet and no gateway', { ip: '192.0.2.10', mode: 'routed', link: 'rt', network: { subnet: '192.0.2.0/24' } }, [], { address: ['192.0.2.10/24'], routes: [{ via: '0.0.0.0/0 scope link', onlink: true }], log: /default route on-link/ }],
    ['openvswitch, IP, network with subnet and gateway', { ip: '192.0.2.10', mode: 'openvswitch', link: 'switch1', network: net4 }, [], { address: ['192.0.2.10/24'], routes: [{ via: '192.0.2.1', onlink: true }], log: /NIC 0 \(openvswitch on switch1\): static 192\.0\.2\.10\/24/ }],
    ['openvswitch, IP, no network', { ip: '192.0.2.10', mode: 'openvswitch', link: 'switch1' }, [], { dhcp: true, routes: [], log: /NIC 0 \(openvswitch on switch1\): has the IP 192\.0\.2\.10 but no Ganeti network and no NETWORK_SWITCH1_PREFIX\/_GATEWAY/ }],
    ['no IP', { mode: 'bridged', link: 'br0' }, [], { dhcp: true, routes: [], log: /NIC 0 \(bridged on br0\): DHCP/ }],
    ['IPv4 IP, network with IPv4 and IPv6 subnets and gateways', { ip: '192.0.2.10', mode: 'bridged', link: 'br0', network: { ...net4, subnet6: '2001:db8:1::/64', gateway6: '2001:db8:1::1' } }, [], { address: ['192.0.2.10/24'], ra: true, routes: [{ via: '192.0.2.1', onlink: true }, { via: '2001:db8:1::1', onlink: true }], log: /IPv6 default route via 2001:db8:1::1/ }],
    ['IPv6 IP, network with IPv6 subnet and gateway', { ip: '2001:db8:1::10', mode: 'bridged', link: 'br0', network: { name: 'v6', subnet6: '2001:db8:1::/64', gateway6: '2001:db8:1::1' } }, [], { address: ['2001:db8:1::10/64'], routes: [{ via: '2001:db8:1::1', onlink: true }], log: /static 2001:db8:1::10\/64 \(Ganeti network v6\), default route via 2001:db8:1::1/ }],
    ['IPv6 IP, routed, no network', { ip: '2001:db8:1::10', mode: 'routed', link: '100' }, [], { address: ['2001:db8:1::10/128'], routes: [{ via: '::/0 scope link', onlink: true }], log: /default route on-link/ }],
    ['IPv6 IP, bridged, NETWORK_<LINK>_PREFIX6/GATEWAY6', { ip: '2001:db8:1::10', mode: 'bridged', link: 'br0' }, ['NETWORK_BR0_PREFIX6=64', 'NETWORK_BR0_GATEWAY6=fe80::1'], { address: ['2001:db8:1::10/64'], routes: [{ via: 'fe80::1', onlink: true }], log: /default route via fe80::1/ }],
  ];
  it.each(cases)('%s', (_name, nic, config, want) => {
    const { files, log } = shape([{ mac: 'aa:00:00:00:02:00', ...nic }], config);
    expect(Object.keys(files)).toEqual(['0']);
    const u = files[0].unit;
    expect(values(u, 'Match', 'MACAddress')).toEqual(['aa:00:00:00:02:00']);
    expect(log).toMatch(want.log);
    if (want.dhcp) {
      expect(values(u, 'Network', 'DHCP')).toEqual(['yes']);
      expect(values(u, 'Network', 'Address')).toEqual([]);
      // The single NIC's DHCP routes are the preferred ones.
      expect(dhcpMetric(u)).toBe(100);
    } else {
      expect(values(u, 'Network', 'DHCP')).toEqual([]);
      expect(values(u, 'Network', 'Address')).toEqual(want.address);
    }
    expect(defaultRoutes(u).map(({ via, onlink }) => ({ via, onlink }))).toEqual(want.routes);
    for (const r of defaultRoutes(u)) expect(r.metric).toBe(100);
    expect(values(u, 'Network', 'IPv6AcceptRA')).toEqual(want.ra ? ['yes'] : []);
    // An address never stands alone: a default route, DHCP, or a log line saying why not.
    if (!want.dhcp && !want.routes.length) expect(log).toMatch(/no default route through it/);
  });

  it('several NICs: the first with a default route is preferred (metric 100), the others are fallbacks; DEFAULT_ROUTE_NIC chooses', () => {
    const nics: Nic[] = [
      { mac: 'aa:00:00:00:03:00', ip: '10.0.0.5', mode: 'bridged', link: 'backend', network: { name: 'backend', subnet: '10.0.0.0/24' } },
      { mac: 'aa:00:00:00:03:01', ip: '192.0.2.10', mode: 'bridged', link: 'br0', network: net4 },
      { mac: 'aa:00:00:00:03:02', ip: '198.51.100.20', mode: 'routed', link: '100' },
      { mac: 'aa:00:00:00:03:03', mode: 'openvswitch', link: 'switch1' },
    ];
    const a = shape(nics);
    expect(Object.keys(a.files)).toEqual(['0', '1', '2', '3']);
    expect(defaultRoutes(a.files[0].unit)).toEqual([]);
    expect(defaultRoutes(a.files[1].unit)).toEqual([{ via: '192.0.2.1', metric: 100, onlink: true }]);
    expect(defaultRoutes(a.files[2].unit)).toEqual([{ via: '0.0.0.0/0 scope link', metric: 1002, onlink: true }]);
    expect(dhcpMetric(a.files[3].unit)).toBe(1003);
    expect(a.log).toMatch(/NIC 1 .*default route via 192\.0\.2\.1 \(the preferred default route\)/);
    // /etc/hosts names NIC 0's static address.
    expect(a.hosts).toMatch(/^10\.0\.0\.5\tnet1\.example\.com net1$/m);

    const b = shape(nics, ['DEFAULT_ROUTE_NIC=2']);
    expect(defaultRoutes(b.files[1].unit)).toEqual([{ via: '192.0.2.1', metric: 1001, onlink: true }]);
    expect(defaultRoutes(b.files[2].unit)).toEqual([{ via: '0.0.0.0/0 scope link', metric: 100, onlink: true }]);
    expect(dhcpMetric(b.files[3].unit)).toBe(1003);

    // A NIC without a default route cannot be the preferred one: said, and the first one is used.
    const c = shape(nics, ['DEFAULT_ROUTE_NIC=0']);
    expect(c.log).toMatch(/DEFAULT_ROUTE_NIC is 0, but the instance has no NIC 0 with a default route/);
    expect(defaultRoutes(c.files[1].unit)[0].metric).toBe(100);

    // A DHCP NIC first is the preferred one.
    const d = shape([nics[3], nics[1]]);
    expect(dhcpMetric(d.files[0].unit)).toBe(100);
    expect(defaultRoutes(d.files[1].unit)[0].metric).toBe(1001);
    expect(d.hosts).toMatch(/^127\.0\.1\.1\tnet1\.example\.com net1$/m);
  });

  it('network=static keeps the address without network data (no DHCP) and says there is no route; network=dhcp ignores the IP', () => {
    const nic: Nic = { mac: 'aa:00:00:00:04:00', ip: '192.0.2.10', mode: 'bridged', link: 'br0' };
    const s = shape([nic], [], { network: 'static' });
    expect(values(s.files[0].unit, 'Network', 'Address')).toEqual(['192.0.2.10/32']);
    expect(values(s.files[0].unit, 'Network', 'DHCP')).toEqual([]);
    expect(s.log).toMatch(/no default route through it .*no NETWORK_BR0_GATEWAY in the configuration/);
    const d = shape([{ ...nic, network: net4 }], [], { network: 'dhcp' });
    expect(values(d.files[0].unit, 'Network', 'DHCP')).toEqual(['yes']);
    expect(values(d.files[0].unit, 'Network', 'Address')).toEqual([]);
  });

  it('refuses malformed NETWORK_* settings, naming them, and leaves the disk as it was', () => {
    const before = withMounted(d0, (root) => fs.readFileSync(path.join(root, 'etc/systemd/network/10-ganeti-nic0.network'), 'utf8'));
    for (const [line, msg] of [
      ['NETWORK_BR0_GATEWAY=gateway.example.com', /NETWORK_BR0_GATEWAY must be an IPv4 address, not 'gateway\.example\.com'/],
      ['NETWORK_BR0_PREFIX=33', /NETWORK_BR0_PREFIX must be a prefix length from 0 to 32, not '33'/],
      ['NETWORK_BR0_GATEWAY6=192.0.2.1', /NETWORK_BR0_GATEWAY6 must be an IPv6 address/],
      ['DEFAULT_ROUTE_NIC=first', /DEFAULT_ROUTE_NIC must be a NIC index/],
    ] as [string, RegExp][]) {
      setConfig([line]);
      try {
        const r = runRename(instance([{ mac: 'aa:00:00:00:05:00', ip: '192.0.2.10', link: 'br0' }]), NAME, ws.logdir);
        expect(r.ok).toBe(false);
        expect(String(r.error)).toMatch(msg);
      } finally {
        setConfig([]);
      }
      expect(resources(ws.work, ws.tmp)).toEqual({ loops: [], mounts: [], temps: [] });
    }
    expect(withMounted(d0, (root) => fs.readFileSync(path.join(root, 'etc/systemd/network/10-ganeti-nic0.network'), 'utf8'))).toBe(before);
  });
});
