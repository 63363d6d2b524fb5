/**
 * The node root's recipe and cache rules (src/cluster/node-root.ts), without building one: what
 * a root is built from (the node's own mirror, the release's suite), which cached roots count as
 * complete and fresh, and the refusal when the node's apt sources name no mirror.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/cli';
import { ARCHIVE_KEYRING, buildArgv, cachedRoots, fresh, resolveRootCache, ROOT_MAX_AGE_DAYS, ROOT_PACKAGES, rootLacks, rootRecipe, SCRIPT_PACKAGES } from '../src/cluster/node-root';

describe('node root recipe and cache', () => {
  let work: string;
  beforeEach(() => {
    work = tempDir('root');
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const aptEtc = (mirror: string | null) => {
    const dir = tempDir('apt', work);
    fs.mkdirSync(path.join(dir, 'sources.list.d'));
    if (mirror) {
      fs.writeFileSync(path.join(dir, 'sources.list.d', 'debian.sources'), `Types: deb\nURIs: ${mirror}\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://security.example.org/debian-security\nSuites: bookworm-security\nComponents: main\n`);
    }
    return dir;
  };

  it("builds from the node's own mirror and the release's suite, and refuses when the node names none", () => {
    const r = rootRecipe('3.1', aptEtc('http://mirror.example.org/debian/'));
    expect(r).toMatchObject({ release: '3.1', suite: 'trixie', mirror: 'http://mirror.example.org/debian' });
    expect(r.packages).toEqual(expect.arrayContaining(['ganeti', 'openssh-server', 'socat', 'iproute2']));
    const argv = buildArgv(r, '/cache/.building-x');
    expect(argv).toEqual(expect.arrayContaining(['mmdebstrap', 'trixie', '/cache/.building-x', `deb [signed-by=${ARCHIVE_KEYRING}] http://mirror.example.org/debian trixie main`]));
    // Its own mount and PID namespaces: mmdebstrap's mounts and processes end with the build.
    expect(argv.slice(0, argv.indexOf('mmdebstrap'))).toEqual(expect.arrayContaining(['unshare', '--mount', '--pid', '--kill-child']));
    expect(rootRecipe('3.0', aptEtc('http://mirror.example.org/debian')).suite).toBe('bookworm');
    expect(() => rootRecipe('3.1', aptEtc(null))).toThrow(/cannot build a Ganeti 3\.1 node root: this node's apt sources \(.*\) name no Debian mirror to download trixie from/);
  });

  it('a different mirror or release is a different root; the same input the same one', () => {
    const a = rootRecipe('3.1', aptEtc('http://a.example.org/debian'));
    expect(rootRecipe('3.1', aptEtc('http://a.example.org/debian')).key).toBe(a.key);
    expect(rootRecipe('3.1', aptEtc('http://b.example.org/debian')).key).not.toBe(a.key);
    expect(rootRecipe('3.0', aptEtc('http://a.example.org/debian')).key).not.toBe(a.key);
  });

  it('reuses only complete roots of the same recipe younger than the limit', () => {
    const r = rootRecipe('3.1', aptEtc('http://a.example.org/debian'));
    const now = Math.floor(Date.now() / 1000);
    const make = (name: string, complete: boolean) => {
      fs.mkdirSync(path.join(work, name));
      if (complete) fs.writeFileSync(path.join(work, `${name}.json`), '{}\n');
    };
    make(`ganeti-3.1-${r.key}-${now - 100}`, true);
    make(`ganeti-3.1-${r.key}-${now - 50}`, false); // no record beside it: a build that did not finish
    make(`.building-ganeti-3.1-${r.key}-${now}-12345`, false);
    make(`ganeti-3.1-${r.key}-${now - (ROOT_MAX_AGE_DAYS + 1) * 86400}`, true);
    make(`ganeti-3.1-000000000000-${now}`, true);
    const roots = cachedRoots(work);
    expect(roots.map((x) => path.basename(x.dir))).toEqual([`ganeti-3.1-000000000000-${now}`, `ganeti-3.1-${r.key}-${now - 100}`, `ganeti-3.1-${r.key}-${now - (ROOT_MAX_AGE_DAYS + 1) * 86400}`]);
    expect(roots.map((x) => fresh(x, r))).toEqual([false, true, false]);
    expect(cachedRoots(path.join(work, 'absent'))).toEqual([]);
  });

  it('a root without Ganeti, sshd or host keys is not used (links into the root count as present)', () => {
    const root = path.join(work, 'root');
    fs.mkdirSync(path.join(root, 'usr', 'sbin'), { recursive: true });
    expect(rootLacks(root, '3.1')).toEqual(expect.arrayContaining(["Ganeti 3.1's code (usr/share/ganeti/3.1)", 'usr/sbin/gnt-cluster', 'usr/sbin/sshd', 'SSH host keys (etc/ssh/ssh_host_*_key)']));
    fs.symlinkSync('/etc/ganeti/lib/usr/sbin/gnt-cluster-absent-on-the-host', path.join(root, 'usr', 'sbin', 'gnt-cluster'));
    expect(rootLacks(root, '3.1')).not.toContain('usr/sbin/gnt-cluster');
  });

  it("a root without the templates' tools is not used, and the package list is part of its key", () => {
    const root = path.join(work, 'root');
    fs.mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true });
    expect(rootLacks(root, '3.1')).toEqual(expect.arrayContaining(['usr/bin/mmdebstrap', 'usr/sbin/mke2fs', 'usr/sbin/sfdisk', 'usr/bin/qemu-img', 'usr/sbin/mkfs.vfat']));
    fs.writeFileSync(path.join(root, 'usr', 'bin', 'qemu-img'), '');
    expect(rootLacks(root, '3.1')).not.toContain('usr/bin/qemu-img');
    const r = rootRecipe('3.1', aptEtc('http://a.example.org/debian'));
    expect(r.packages).toEqual([...ROOT_PACKAGES].sort());
    expect(r.packages).toEqual(expect.arrayContaining(SCRIPT_PACKAGES));
    expect(buildArgv(r, '/x').find((a) => a.startsWith('--include='))?.split('=')[1].split(',')).toEqual(expect.arrayContaining(['mmdebstrap', 'e2fsprogs', 'fdisk', 'qemu-utils']));
  });

  it('the cache: --cache, else $GANETI_OS_CLUSTER_CACHE, else /var/cache/ganeti-os/cluster-roots', () => {
    expect(resolveRootCache('/w', 'c', { GANETI_OS_CLUSTER_CACHE: '/e' })).toBe('/w/c');
    expect(resolveRootCache('/w', undefined, { GANETI_OS_CLUSTER_CACHE: '/e' })).toBe('/e');
    expect(resolveRootCache('/w', undefined, {})).toBe('/var/cache/ganeti-os/cluster-roots');
  });
});
