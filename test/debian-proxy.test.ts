/**
 * Issue 9, "the node's proxy stays on the node": with PROXY set (and a mirror URL carrying a
 * user name and password), create downloads through the proxy — a forwarding proxy on 127.0.0.1
 * run by this test counts the requests — but neither the cached base system nor the installed
 * instance keeps the proxy, the credentials, or the node's resolv.conf and hostname that the
 * installer copies in. Through Ganeti's InstanceOsAdd, with a private cache directory so that the
 * base system is really installed (a small one: INSTALL_VARIANT=essential with apt and passwd).
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { instanceOsAdd } from './helpers/ganeti';
import { resources, sh, sparseDisk, withMounted } from './helpers/disks';
import { DebianWorkspace, debianWorkspace, releaseWorkspace } from './helpers/debian';
import { describeSystem } from './helpers/system';

const NEEDS = ['mmdebstrap', 'sfdisk', 'partx', 'losetup', 'mkfs.ext4', 'blkid', 'chroot', 'apt-config'];
const SECRET = 'gos-secret-4711';

/** Every regular file under dir whose content contains one of the needles (binary files too). */
function filesContaining(dir: string, needles: string[]): string[] {
  const r = spawnSync('grep', ['-rlaF', ...needles.flatMap((n) => ['-e', n]), '--', dir], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

describeSystem('debian template: the node proxy and credentials stay on the node', { root: true, ganeti: true, commands: NEEDS }, () => {
  let ws: DebianWorkspace;
  let work: string;
  let tmp: string;
  let osDir: string;
  let logdir: string;
  let proxy: ChildProcess;
  let port: string;
  let proxyLog: string;
  let mirror: string;

  beforeAll(async () => {
    ws = debianWorkspace('debian-proxy');
    ({ work, tmp, logdir, osDir } = ws);
    // The node's own mirror (never a hard-coded one), as the template reads it.
    mirror = sh('bash', ['-c', 'gos_die() { echo "$*" >&2; exit 1; }; gos_debug() { :; }; . "$1"; deb_node_mirror', 'x', path.join(osDir, 'lib/debian-system.sh')]).trim();
    proxyLog = path.join(work, 'proxy.log');
    proxy = spawn('/usr/bin/python3', [path.join(__dirname, 'helpers', 'forwarding-proxy.py'), proxyLog], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: '/usr/bin:/bin' } });
    port = await new Promise<string>((resolve, reject) => {
      proxy.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
      proxy.once('exit', (code) => reject(new Error(`the proxy exited (${code})`)));
    });
  });

  afterAll(() => {
    proxy?.kill();
    releaseWorkspace(ws);
  });

  it('installs through the proxy; the cache and the instance keep neither it nor the node\'s settings', () => {
    // apt sends a proxy only http:// requests: the test needs the node's mirror over http.
    expect(mirror).toMatch(/^http:\/\//);
    const withAuth = mirror.replace(/^http:\/\//, `http://gosuser:${SECRET}@`);
    const proxyUrl = `http://127.0.0.1:${port}`;
    const cache = path.join(work, 'cache');
    fs.appendFileSync(
      path.join(osDir, 'defaults.conf'),
      [`PROXY=${proxyUrl}`, `MIRROR=${withAuth}`, `CACHE_DIR=${cache}`, 'CACHE_IMAGES=no', 'INSTALL_VARIANT=essential', 'BASE_PACKAGES="apt passwd"', ''].join('\n'),
    );
    const d0 = sparseDisk(path.join(work, 'd0.img'), 2048);
    const r = instanceOsAdd(
      {
        name: 'px1.example.com',
        os: 'debian-os+bookworm',
        os_dir: osDir,
        disks: [{ path: d0 }],
        nics: [{ mac: 'aa:00:00:00:09:01', ip: '192.0.2.9', network: { subnet: '192.0.2.0/24', gateway: '192.0.2.1' } }],
        hvparams: { kernel_path: '' },
        osparams: { 'install-kernel': 'no' },
      },
      { logdir },
    );
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(resources(work, tmp)).toEqual({ loops: [], mounts: [], temps: [] });

    // The install itself went through the proxy, with the mirror's credentials.
    const requests = fs.readFileSync(proxyLog, 'utf8').split('\n').filter(Boolean);
    const debs = requests.filter((l) => / http:\/\/\S+\.deb auth=/.test(l));
    expect(debs.length).toBeGreaterThan(20);
    expect(debs.every((l) => l.endsWith('auth=yes'))).toBe(true);
    const log = fs.readdirSync(logdir).map((f) => fs.readFileSync(path.join(logdir, f), 'utf8')).join('');
    expect(log).toContain(`downloading through the proxy ${proxyUrl} (for the install only: instances do not keep it)`);
    expect(log).not.toContain(SECRET);
    expect(log).toContain("the mirror's credentials stay on the node");

    // The cached base system: no proxy, no credentials, no node resolv.conf/hostname or installer log.
    const tars = fs.readdirSync(cache).filter((f) => f.endsWith('.tar'));
    expect(tars.length).toBe(1);
    const tree = path.join(work, 'tree');
    fs.mkdirSync(tree);
    sh('tar', ['-xf', path.join(cache, tars[0]), '-C', tree, './etc', './var/log']);
    expect(filesContaining(tree, [`127.0.0.1:${port}`, SECRET, 'gosuser'])).toEqual([]);
    for (const f of ['etc/apt/apt.conf.d/99mmdebstrap', 'etc/hostname', 'etc/.resolv.conf.systemd-resolved.bak', 'var/log/bootstrap.log']) {
      expect([f, fs.existsSync(path.join(tree, f))]).toEqual([f, false]);
    }
    // Without systemd-resolved, the node's resolv.conf (a plain file) is not kept either.
    expect(fs.existsSync(path.join(tree, 'etc/resolv.conf'))).toBe(false);

    // The instance: apt inside it has no proxy; its sources name the mirror without credentials.
    withMounted(d0, (root) => {
      const dump = sh('chroot', [root, 'apt-config', 'dump']);
      expect(dump).toMatch(/^APT::Architecture /m);
      expect(dump).not.toMatch(/proxy/i);
      expect(filesContaining(path.join(root, 'etc'), [`127.0.0.1:${port}`, SECRET, 'gosuser'])).toEqual([]);
      expect(filesContaining(path.join(root, 'var/log'), [`127.0.0.1:${port}`, SECRET])).toEqual([]);
      expect(fs.readFileSync(path.join(root, 'etc/apt/sources.list'), 'utf8')).toContain(`deb ${mirror.replace(/\/$/, '')} bookworm main`);
      expect(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe('px1.example.com\n');
      // The instance's own resolv.conf: the name servers create chose (the node's, as documented
      // for dns-servers), the instance's domain, nothing else of the node's file.
      const servers = fs.readFileSync('/etc/resolv.conf', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).filter((w) => w[0] === 'nameserver' && !/^127\./.test(w[1]) && w[1] !== '::1').map((w) => w[1]);
      const resolv = path.join(root, 'etc/resolv.conf');
      if (servers.length) {
        expect(fs.readFileSync(resolv, 'utf8')).toBe(`# Written by the debian-os OS definition.\nsearch example.com\n${servers.map((n) => `nameserver ${n}\n`).join('')}`);
      } else {
        expect(fs.existsSync(resolv)).toBe(false);
      }
    });
  }, 1200_000);

  it('scrubs an instance made from a cache entry that still holds node settings (an older definition)', () => {
    // A tree as mmdebstrap left it before: proxy option file, nested proxy setting, the node's
    // resolv.conf and hostname, a mirror URL with credentials, an auth.conf.
    const t = path.join(work, 'old');
    for (const d of ['etc/apt/apt.conf.d', 'etc/apt/sources.list.d', 'etc/apt/auth.conf.d', 'var/log']) fs.mkdirSync(path.join(t, d), { recursive: true });
    fs.writeFileSync(path.join(t, 'etc/apt/apt.conf.d/99mmdebstrap'), 'Acquire::http::Proxy "http://proxy.node:3128";\n');
    fs.writeFileSync(path.join(t, 'etc/apt/apt.conf.d/20site'), 'APT::Keep "1";\nAcquire {\n  https::Proxy "http://proxy.node:3128";\n};\n');
    fs.writeFileSync(path.join(t, 'etc/apt/apt.conf.d/30keep'), 'APT::Other "1";\n');
    fs.writeFileSync(path.join(t, 'etc/apt/sources.list'), `deb http://u:${SECRET}@mirror.node/debian bookworm main\n`);
    fs.writeFileSync(path.join(t, 'etc/apt/auth.conf.d/node.conf'), `machine mirror.node login u password ${SECRET}\n`);
    fs.writeFileSync(path.join(t, 'etc/resolv.conf'), 'nameserver 10.0.0.53\nsearch node.internal\n');
    fs.writeFileSync(path.join(t, 'etc/.resolv.conf.systemd-resolved.bak'), 'nameserver 10.0.0.53\n');
    fs.writeFileSync(path.join(t, 'etc/hostname'), 'node1\n');
    fs.writeFileSync(path.join(t, 'var/log/bootstrap.log'), 'I: Retrieving http://u:secret@mirror.node\n');
    const script = 'set -euo pipefail; gos_die() { echo "$*" >&2; exit 1; }; gos_log() { :; }; gos_debug() { :; }; . "$1"; deb_scrub_node_settings "$2"';
    const s = spawnSync('bash', ['-c', script, 'x', path.join(osDir, 'lib/debian-system.sh'), t], { encoding: 'utf8' });
    expect(s.stderr).toBe('');
    expect(s.status).toBe(0);
    expect(filesContaining(t, ['proxy.node', SECRET, 'node1', '10.0.0.53'])).toEqual([]);
    expect(fs.readFileSync(path.join(t, 'etc/apt/apt.conf.d/20site'), 'utf8')).toBe('APT::Keep "1";\nAcquire {\n};\n');
    expect(fs.readFileSync(path.join(t, 'etc/apt/apt.conf.d/30keep'), 'utf8')).toBe('APT::Other "1";\n');
    expect(fs.readFileSync(path.join(t, 'etc/apt/sources.list'), 'utf8')).toBe('deb http://mirror.node/debian bookworm main\n');
    // apt still parses what is left.
    const dump = spawnSync('apt-config', ['dump'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', APT_CONFIG: path.join(t, 'etc/apt/apt.conf.d/20site') } });
    expect(dump.status).toBe(0);
    expect(dump.stdout).toMatch(/^APT::Keep "1";$/m);
  });
});
