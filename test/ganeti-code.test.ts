/**
 * Where the test suite gets each Ganeti release's own code (test/helpers/ganeti-code.ts and
 * test/ganeti/fetch-ganeti-code.sh): 3.1 is Debian trixie's ganeti-3.1, fetched by apt with a
 * private configuration into a cache, unpacked, never installed; reused when present; fetched as
 * root or as an ordinary user; and when it cannot be had, the answer says why (describeSystem
 * then skips, or fails under GANETI_OS_SYSTEM_TESTS=required, naming it).
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FETCH_SCRIPT, GANETI_PYTHON, ROOT_CACHE, ganetiCode, ganetiCodeCache, presentCode } from './helpers/ganeti-code';
import { HARNESS } from './helpers/ganeti';
import { describeSystem, missing } from './helpers/system';
import { nodeMirror } from '../src/debian/apt-sources';
import { tempDir } from './helpers/trees';

const installed31 = fs.existsSync('/usr/share/ganeti/3.1/ganeti/backend.py');
let root: string;
beforeAll(() => {
  root = tempDir('code');
  fs.chmodSync(root, 0o755);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A cache holding an unpacked ganeti-3.1 of `version` (only its backend.py). */
const fakeTree = (cache: string, version: string) => {
  const code = path.join(cache, `ganeti-3.1_${version}`, 'usr/share/ganeti/3.1/ganeti');
  fs.mkdirSync(code, { recursive: true });
  fs.writeFileSync(path.join(code, 'backend.py'), '');
  return path.dirname(code);
};
/** The unpacked tree a PYTHONPATH (TREE/usr/share/ganeti/3.1) lies in. */
const treeOf = (pythonPath: string) => path.resolve(pythonPath, '../../../..');

describe("the harness's Ganeti code", () => {
  it("root's cache is /var/cache/ganeti-os/ganeti-code, an ordinary user's under $XDG_CACHE_HOME or ~/.cache", () => {
    expect(ganetiCodeCache(0, {})).toBe(ROOT_CACHE);
    expect(ganetiCodeCache(1000, { HOME: '/home/ann' })).toBe('/home/ann/.cache/ganeti-os/ganeti-code');
    expect(ganetiCodeCache(1000, { HOME: '/home/ann', XDG_CACHE_HOME: '/srv/c' })).toBe('/srv/c/ganeti-os/ganeti-code');
  });

  (installed31 ? it.skip : it)('a tree in a cache is found, keyed by the package version; an ordinary user reads root\'s too', () => {
    const mine = path.join(root, 'mine');
    const roots = path.join(root, 'roots');
    expect(presentCode('3.1', [mine, roots])).toBeUndefined();
    const tree = fakeTree(roots, '3.1.0~rc2-3');
    expect(presentCode('3.1', [mine, roots])).toEqual({ pythonPath: tree, version: '3.1.0~rc2-3', tree: treeOf(tree) });
    const own = fakeTree(mine, '3.1.1-1');
    expect(presentCode('3.1', [mine, roots])?.pythonPath).toBe(own);
  });

  it('the fetch reuses a tree already there: nothing is downloaded (an unusable mirror is never asked)', () => {
    const cache = path.join(root, 'reuse');
    const tree = treeOf(fakeTree(cache, '3.1.0~rc2-3'));
    const r = spawnSync('bash', [FETCH_SCRIPT, cache, 'ganeti-3.1', 'trixie', 'file:///nonexistent/debian'], { encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: `${tree}\n`, stderr: '' });
  });

  (installed31 ? it.skip : it)('when 3.1 cannot be had, the answer says why (and the tests needing it skip or fail naming it)', () => {
    const etc = path.join(root, 'apt-none');
    fs.mkdirSync(etc);
    const cache = path.join(root, 'nocache');
    const none = ganetiCode('3.1', { cache, caches: [cache], aptEtc: etc });
    expect(none).toEqual({ ok: false, missing: `Ganeti 3.1's code (Debian trixie's ganeti-3.1, fetched into ${cache}): this node's apt sources name no Debian mirror` });

    const broken = path.join(root, 'apt-broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, 'sources.list'), 'deb file:///nonexistent/debian bookworm main\n');
    const failed = ganetiCode('3.1', { cache, caches: [cache], aptEtc: broken });
    expect(failed.ok).toBe(false);
    expect(!failed.ok && failed.missing).toMatch(/^Ganeti 3\.1's code \(.*\): apt-get update \(file:\/\/\/nonexistent\/debian trixie\) (failed|fetched no package index): .*Release/);
    // A failed fetch leaves nothing in the cache but its lock.
    expect(fs.readdirSync(cache)).toEqual(['.lock']);
  });

  it('missing() names what a test needing a release lacks, or nothing', () => {
    const lack = missing({ ganeti: '3.1' });
    const code = ganetiCode('3.1');
    expect(lack).toEqual(code.ok ? [] : [code.missing]);
  });
});

const FETCH_NEEDS = ['apt-get', 'dpkg-deb', 'flock', 'runuser'];

describeSystem('fetching ganeti-3.1 as an ordinary user, leaving the host as it was', { root: true, commands: FETCH_NEEDS }, () => {
  const digest = (p: string) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  const listing = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

  it('downloads with its own apt configuration, unpacks, and the harness runs the code as that user', () => {
    const mirror = nodeMirror();
    if (!mirror) throw new Error("this node's apt sources name no Debian mirror");
    const before = { status: digest('/var/lib/dpkg/status'), lists: listing('/var/lib/apt/lists'), etc: listing('/etc/apt/sources.list.d'), archives: listing('/var/cache/apt/archives') };
    const cache = path.join(root, 'nobody-cache');
    fs.mkdirSync(cache);
    fs.chownSync(cache, 65534, 65534);
    const r = spawnSync('runuser', ['-u', 'nobody', '--', 'bash', FETCH_SCRIPT, cache, 'ganeti-3.1', 'trixie', mirror], { encoding: 'utf8', timeout: 600_000 });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const tree = r.stdout.trim();
    expect(path.basename(tree)).toMatch(/^ganeti-3\.1_3\.1\.\S+$/);
    expect(fs.statSync(path.join(tree, 'usr/share/ganeti/3.1/ganeti/backend.py')).uid).toBe(65534);
    expect(listing(cache).filter((n) => n.startsWith('.fetch-'))).toEqual([]);
    // The user's own Python run of the harness on that code.
    const osDir = path.join(root, 'os', 'x');
    fs.mkdirSync(osDir, { recursive: true });
    const h = spawnSync('runuser', ['-u', 'nobody', '--', 'env', `PYTHONPATH=${path.dirname(path.join(tree, 'usr/share/ganeti/3.1/ganeti'))}`, GANETI_PYTHON, HARNESS], {
      input: JSON.stringify({ action: 'tryos', dir: osDir }),
      encoding: 'utf8',
    });
    expect(JSON.parse(h.stdout)).toEqual({ ok: false, error: `Required file 'ganeti_api_version' not found under path ${osDir}: ENOENT` });
    // Never installed; the host's apt and dpkg state untouched.
    expect(spawnSync('dpkg-query', ['-W', 'ganeti-3.1']).status).not.toBe(0);
    expect({ status: digest('/var/lib/dpkg/status'), lists: listing('/var/lib/apt/lists'), etc: listing('/etc/apt/sources.list.d'), archives: listing('/var/cache/apt/archives') }).toEqual(before);
  }, 600_000);
});
